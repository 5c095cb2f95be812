package org.quant4j.quant;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class CalibrationAndPackingTest {

    @Test
    void packingRoundTripsEveryWidthAndLength() {
        Random r = new Random(9);
        for (int bits = 1; bits <= 8; bits++) {
            for (int n : new int[]{0, 1, 2, 3, 7, 8, 9, 31, 32, 33, 100, 257}) {
                int[] codes = new int[n];
                for (int i = 0; i < n; i++) codes[i] = r.nextInt(1 << bits);
                byte[] packed = BitPacking.pack(codes, bits);
                assertEquals((n * bits + 7) / 8, packed.length);
                assertArrayEquals(codes, BitPacking.unpack(packed, n, bits), bits + " bits, n=" + n);
            }
        }
        // the documented bit order: first code in the low bits
        assertArrayEquals(new byte[]{(byte) 0x21, (byte) 0x43}, BitPacking.pack(new int[]{1, 2, 3, 4}, 4));
        assertArrayEquals(new byte[]{(byte) 0b11_10_01_00}, BitPacking.pack(new int[]{0, 1, 2, 3}, 2));
        assertThrows(IllegalArgumentException.class, () -> BitPacking.pack(new int[]{8}, 3));
    }

    /**
     * A tensor with outliers (1% of values ×40, as ../shared's "outliers" case): clipping calibrators reduce the error on
     * the non-outliers compared with min-max, and pay for it on the outliers.
     */
    @Test
    void clippingHelpsTheBulkAndCostsTheOutliers() {
        Random r = new Random(4);
        int n = 20000;
        float[] x = new float[n];
        boolean[] outlier = new boolean[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * 0.02);
            if (r.nextDouble() < 0.01) { x[i] *= 40; outlier[i] = true; }
        }
        for (int bits : new int[]{4, 8}) {
            QuantScheme s = QuantScheme.symmetric(bits, Granularity.TENSOR);
            double[] minMax = errors(x, outlier, s, Calibrator.MIN_MAX);
            for (Calibrator c : new Calibrator[]{Calibrator.percentile(99.0), Calibrator.kl(2048)}) {
                double[] e = errors(x, outlier, s, c);
                assertTrue(e[0] < minMax[0] * 0.5, bits + " bits " + c.name() + ": bulk MSE " + e[0] + " vs min-max " + minMax[0]);
                assertTrue(e[1] > minMax[1], bits + " bits " + c.name() + ": outlier MSE " + e[1] + " vs min-max " + minMax[1]);
            }
            // the MSE search minimises the total error by construction; at 4 bits the total is lowest with the full range
            // (the bulk rounds to zero either way), at 8 bits it clips and the bulk gains
            double[] mse = errors(x, outlier, s, Calibrator.mse(100, 0.05));
            assertTrue(mse[2] <= minMax[2], bits + " bits: total " + mse[2] + " vs " + minMax[2]);
            if (bits == 8) {
                assertTrue(mse[0] < minMax[0], "8 bits MSE: bulk " + mse[0] + " vs " + minMax[0]);
                assertTrue(mse[1] > minMax[1], "8 bits MSE: outliers " + mse[1] + " vs " + minMax[1]);
            }
        }
    }

    /** {MSE on non-outliers, MSE on outliers, total MSE} */
    static double[] errors(float[] x, boolean[] outlier, QuantScheme s, Calibrator c) {
        float[][] ranges = Calibrator.ranges(c, x, 1, x.length, s);
        float[] back = LinearQuantizer.quantize(x, 1, x.length, s, ranges[0], ranges[1]).dequantize();
        double bulk = 0, out = 0;
        int nb = 0, no = 0;
        for (int i = 0; i < x.length; i++) {
            double e = (x[i] - back[i]) * (x[i] - back[i]);
            if (outlier[i]) { out += e; no++; } else { bulk += e; nb++; }
        }
        return new double[]{bulk / nb, out / no, (bulk + out) / x.length};
    }
}
