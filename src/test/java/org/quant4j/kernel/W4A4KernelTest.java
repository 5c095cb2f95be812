package org.quant4j.kernel;

import org.junit.jupiter.api.Test;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tensor.Tensor;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** W4A4 on the integer kernels: 4-bit per-token asymmetric activation codes × 4-bit weight codes → int32, with scales. */
class W4A4KernelTest {

    @Test
    void centredCodesLieOnTheSimulatedGrid() {
        float[] x = {-1f, 0f, 0.3f, 2f, 0f, 0f, 0f, 0f, 0.1f, -0.2f, 0.7f, 3.3f};     // (3, 4), the middle row all zero
        byte[] codes = new byte[x.length];
        float[] scales = new float[3], simulated = new float[x.length];
        Int8Kernels.quantizeRowsAsymmetric(x, 3, 4, 4, codes, scales);
        Int8Kernels.fakeQuantizeTokensAsymmetric(x, 3, 4, 4, simulated);
        assertEquals(3f / 15, scales[0], 1e-7);
        assertEquals(0f, scales[1]);
        for (int i = 0; i < x.length; i++) {
            assertTrue(Math.abs(codes[i]) <= 15, "code " + codes[i]);
            assertEquals(simulated[i], scales[i / 4] * codes[i], 1e-6, "value " + i);
        }
    }

    @Test
    void w4a4MatchesTheSimulationOnBothPaths() {
        boolean before = Kernels.vector();
        try {
            QuantScheme[] schemes = {QuantScheme.asymmetric(4, Granularity.CHANNEL), QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32),
                    QuantScheme.asymmetric(8, Granularity.CHANNEL)};
            for (QuantScheme scheme : schemes) {
                for (int n : new int[]{14, 26, 62, 64, 258}) {        // 4-bit rows hold an even count
                    for (int bits : new int[]{4, 6}) {
                        int rows = 9, batch = 5;
                        Random r = new Random(n * 31L + bits);
                        float[] wf = new float[rows * n];
                        for (int i = 0; i < wf.length; i++) wf[i] = (float) r.nextGaussian() * 0.05f + 0.01f;
                        Tensor w = Rtn.quantize(Tensor.ofFloats("w", wf, rows, n), scheme, Calibrator.MIN_MAX);
                        float[] x = new float[batch * n];
                        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() + (i % 11 == 0 ? 6 : 0));
                        // the simulation: activations quantized and dequantized, times the dequantized weights in float
                        float[] xq = new float[x.length];
                        Int8Kernels.fakeQuantizeTokensAsymmetric(x, batch, n, bits, xq);
                        float[] expected = new float[batch * rows], vec = new float[batch * rows], ref = new float[batch * rows];
                        Kernels.setVector(false);
                        MatMul.matmul(w, xq, expected, batch);
                        MatMul.matmulTokenAsymmetric(w, x, ref, batch, bits);
                        Kernels.setVector(true);
                        MatMul.matmulTokenAsymmetric(w, x, vec, batch, bits);
                        String what = scheme.describe() + " A" + bits + " n " + n;
                        assertArrayEquals(ref, vec, what + ": vector vs scalar");
                        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], vec[i], 1e-4 * Math.max(1, Math.abs(expected[i])), what);
                    }
                }
            }
        } finally {
            Kernels.setVector(before);
        }
    }

    @Test
    void refusesFloatWeightsAndEightBitActivations() {
        Tensor f = Tensor.ofFloats("w", new float[16], 2, 8);
        assertThrows(org.quant4j.util.Q4jException.class, () -> MatMul.matmulTokenAsymmetric(f, new float[8], new float[2], 1, 4));
        Tensor q = Rtn.quantize(Tensor.ofFloats("w", new float[]{1, 2, 3, 4, 5, 6, 7, 8}, 1, 8), QuantScheme.asymmetric(4, Granularity.CHANNEL), Calibrator.MIN_MAX);
        assertThrows(org.quant4j.util.Q4jException.class, () -> MatMul.matmulTokenAsymmetric(q, new float[8], new float[1], 1, 8));
    }
}
