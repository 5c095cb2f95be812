package org.quant4j.quant;

import org.junit.jupiter.api.Test;
import org.quant4j.numeric.IntRange;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class LinearQuantizerTest {

    /** Seed 002's worked example: scale 3.5 and zero point −70 on a 3×3 tensor, INT8, torch.round. */
    @Test
    void seedWorkedExampleWithScaleAndZeroPoint() {
        float[] r = {191.6f, -13.5f, 728.6f, 92.14f, 295.5f, -184f, 0f, 684.6f, 245.5f};
        int[] expected = {-15, -74, 127, -44, 14, -123, -70, 126, 0};
        IntRange int8 = IntRange.signed(8);
        for (int i = 0; i < r.length; i++) {
            assertEquals(expected[i], LinearQuantizer.quantizeValue(r[i], 3.5f, -70, int8), "value " + r[i]);
        }
        // and its scale / zero point formula: s = (rmax − rmin)/(qmax − qmin), z = round(qmin − rmin/s)
        float[] sz = LinearQuantizer.scaleAndZeroPoint(QuantScheme.asymmetric(8, Granularity.TENSOR), -184f, 728.6f);
        assertEquals((728.6f + 184f) / 255f, sz[0], 1e-6f);
        assertEquals(Math.rint(-128 + 184 / ((728.6 + 184) / 255)), sz[1], 0.0);
    }

    @Test
    void symmetricAbsmaxUsesTheRestrictedRange() {
        float[] x = {-3.0f, 1.5f, 0.2f, 10.8f};
        var q = LinearQuantizer.quantize(x, 1, 4, QuantScheme.symmetric(8, Granularity.TENSOR));
        assertEquals(10.8f / 127, q.scale()[0], 1e-7f);
        assertEquals(0, q.zeroPoint()[0]);
        assertEquals(127, q.codes()[3]);
        assertEquals(Math.rint(-3.0 / (10.8 / 127)), q.codes()[0], 0.0);
        float[] back = q.dequantize();
        for (int i = 0; i < 4; i++) assertEquals(x[i], back[i], q.scale()[0] / 2 + 1e-6);
    }

    @Test
    void finerGranularityIsMorePrecise() {
        Random rnd = new Random(1);
        int rows = 16, cols = 96;
        float[] x = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            float rowScale = (float) Math.exp(rnd.nextGaussian() * 1.5);
            for (int c = 0; c < cols; c++) x[r * cols + c] = (float) rnd.nextGaussian() * rowScale;
        }
        double tensor = mse(x, rows, cols, QuantScheme.symmetric(4, Granularity.TENSOR));
        double channel = mse(x, rows, cols, QuantScheme.symmetric(4, Granularity.CHANNEL));
        double group = mse(x, rows, cols, QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32));
        double ragged = mse(x, rows, cols, QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(40)); // 40+40+16
        assertTrue(channel < tensor / 2, channel + " vs " + tensor);
        assertTrue(group < channel, group + " vs " + channel);
        assertTrue(ragged < channel, "ragged groups work too");
        assertEquals(rows * 3, LinearQuantizer.paramCount(QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(40), rows, cols));
    }

    @Test
    void asymmetricBeatsSymmetricOnOneSidedData() {
        Random rnd = new Random(2);
        float[] x = new float[1000];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.abs(rnd.nextGaussian()); // ReLU-like, all ≥ 0
        for (int bits = 2; bits <= 8; bits++) {
            double sym = mse(x, 1, x.length, QuantScheme.symmetric(bits, Granularity.TENSOR));
            double asym = mse(x, 1, x.length, QuantScheme.asymmetric(bits, Granularity.TENSOR));
            assertTrue(asym < sym, bits + " bits: asym " + asym + " sym " + sym);
        }
    }

    @Test
    void codesStayInRangeAndConstantsAreExact() {
        for (int bits = 2; bits <= 8; bits++) {
            for (boolean sym : new boolean[]{true, false}) {
                QuantScheme s = sym ? QuantScheme.symmetric(bits, Granularity.CHANNEL) : QuantScheme.asymmetric(bits, Granularity.CHANNEL);
                float[] x = {5, 5, 5, 0, 0, 0, -1e-30f, 2e-30f, 1e30f};
                var q = LinearQuantizer.quantize(x, 3, 3, s);
                for (byte c : q.codes()) assertTrue(c >= s.range().min() && c <= s.range().max());
                float[] back = q.dequantize();
                assertEquals(5f, back[0], 5f / s.range().max());
                assertEquals(0f, back[3]);
            }
        }
    }

    @Test
    void errorMetrics() {
        float[] x = {1, 2, 3, 4};
        ErrorMetrics same = ErrorMetrics.of(x, x.clone());
        assertEquals(0, same.mse());
        assertEquals(1.0, same.cosine(), 1e-12);
        assertEquals(Double.POSITIVE_INFINITY, same.sqnrDb());
        ErrorMetrics e = ErrorMetrics.of(x, new float[]{1, 2, 3, 5});
        assertEquals(0.25, e.mse(), 1e-12);
        assertEquals(1.0, e.maxAbs(), 1e-12);
        assertEquals(10 * Math.log10(30.0 / 1.0), e.sqnrDb(), 1e-9);
    }

    static double mse(float[] x, int rows, int cols, QuantScheme s) {
        return ErrorMetrics.of(x, LinearQuantizer.quantize(x, rows, cols, s).dequantize()).mse();
    }
}
