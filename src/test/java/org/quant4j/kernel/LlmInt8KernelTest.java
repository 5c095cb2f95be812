package org.quant4j.kernel;

import org.junit.jupiter.api.Test;
import org.quant4j.format.IntQuantType;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tensor.Tensor;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class LlmInt8KernelTest {

    /** A random INT8S_C weight (rows, n) and activations (batch, n) with a few outlier columns. */
    static Tensor weight(int rows, int n, long seed) {
        Random r = new Random(seed);
        float[] w = new float[rows * n];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.05f;
        return Rtn.quantize(Tensor.ofFloats("blk.0.ffn_down.weight", w, rows, n), QuantScheme.symmetric(8, Granularity.CHANNEL), Calibrator.MIN_MAX);
    }

    static float[] activations(int batch, int n, long seed, int... outlierCols) {
        Random r = new Random(seed);
        float[] x = new float[batch * n];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (int j : outlierCols) x[(batch - 1) * n + j] = 40f * (j % 2 == 0 ? 1 : -1); // one token holds the outlier
        return x;
    }

    @Test
    void vectorAndScalarPathsAgreeExactlyOnOddSizes() {
        boolean before = Kernels.vector();
        try {
            for (int n : new int[]{7, 13, 31, 64, 257}) {
                for (int batch : new int[]{1, 3, 8}) {
                    Tensor w = weight(11, n, n);
                    float[] x = activations(batch, n, n + batch, 0, n / 2, n - 1);
                    float[] vec = new float[batch * 11], ref = new float[batch * 11];
                    Kernels.setVector(true);
                    int outliersV = LlmInt8Kernel.matmul(w, x, vec, batch, 6f);
                    Kernels.setVector(false);
                    int outliersS = LlmInt8Kernel.matmul(w, x, ref, batch, 6f);
                    assertEquals(outliersV, outliersS);
                    assertArrayEquals(ref, vec, "n " + n + " batch " + batch);
                }
            }
        } finally {
            Kernels.setVector(before);
        }
    }

    @Test
    void decompositionKeepsOutlierColumnsExactAndBeatsPlainInt8() {
        int n = 257, rows = 9, batch = 4;
        Tensor w = weight(rows, n, 5);
        float[] x = activations(batch, n, 6, 3, 100, 200);
        assertArrayEquals(new int[]{3, 100, 200}, LlmInt8Kernel.outlierColumns(x, batch, n, 6f));
        float[] exact = new float[batch * rows], mixed = new float[batch * rows], plain = new float[batch * rows];
        MatMul.matmul(w, x, exact, batch);                     // float activations × the same int8 weights
        LlmInt8Kernel.matmul(w, x, mixed, batch, 6f);
        MatMul.matmulA8(w, x, plain, batch, 0);                // naive per-token int8: the outliers crush the rest
        double eMixed = 0, ePlain = 0;
        for (int i = 0; i < exact.length; i++) {
            eMixed = Math.max(eMixed, Math.abs(mixed[i] - exact[i]));
            ePlain = Math.max(ePlain, Math.abs(plain[i] - exact[i]));
        }
        assertTrue(eMixed < 0.02, "mixed-precision error " + eMixed);
        assertTrue(ePlain > 4 * eMixed, "plain int8 error " + ePlain + " vs mixed " + eMixed);
        // with every column below the threshold the decomposition is plain vector-wise int8
        float[] calm = activations(batch, n, 7), a = new float[batch * rows], b = new float[batch * rows];
        assertEquals(0, LlmInt8Kernel.matmul(w, calm, a, batch, 6f));
        MatMul.matmulA8(w, calm, b, batch, 0);
        for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-5 * Math.max(1, Math.abs(b[i])));
    }

    @Test
    void refusesWeightsThatAreNotVectorWiseInt8() {
        Tensor g = Rtn.quantize(Tensor.ofFloats("w", new float[64], 2, 32), QuantScheme.asymmetric(8, Granularity.CHANNEL).withGroupSize(16), Calibrator.MIN_MAX);
        assertInstanceOf(IntQuantType.class, g.type());
        assertThrows(org.quant4j.util.Q4jException.class, () -> LlmInt8Kernel.matmul(g, new float[32], new float[2], 1, 6f));
    }

    @Test
    void perTokenAsymmetricActivationsLandOnTheirGrid() {
        float[] x = {-1f, 0f, 0.3f, 2f, 5f, 5f, 5f, 5f, 0.1f, -0.2f, 0.7f, 3.3f};   // (3, 4): a normal row, a constant row, ...
        float[] out = new float[x.length];
        Int8Kernels.fakeQuantizeTokensAsymmetric(x, 3, 4, 4, out);
        float scale = 3f / 15;                                                         // row 0: (max − min) / (2^4 − 1)
        float zero = Math.round(1f / scale);
        for (int i = 0; i < 4; i++) {
            float q = (out[i] / scale) + zero;
            assertEquals(Math.rint(q), q, 1e-4, "value " + i + " sits on the grid");
            assertTrue(Math.abs(out[i] - x[i]) <= scale / 2 + 1e-6, "error within half a step");
        }
        assertEquals(0f, out[1], "zero stays exactly zero");
        for (int i = 4; i < 8; i++) assertEquals(5f, out[i], 5f / 15 / 2 + 1e-6);
        for (int i = 8; i < 12; i++) assertEquals(x[i], out[i], (3.5f / 15) / 2 + 1e-6);
        float[] eight = new float[x.length];
        Int8Kernels.fakeQuantizeTokensAsymmetric(x, 3, 4, 8, eight);
        for (int i = 0; i < 4; i++) assertEquals(x[i], eight[i], 3f / 255 / 2 + 1e-6);
    }

    @Test
    void w4a8MatchesTheFloatProductOfItsCodesOnBothPaths() {
        boolean before = Kernels.vector();
        try {
            for (QuantScheme scheme : new QuantScheme[]{QuantScheme.asymmetric(4, Granularity.CHANNEL), QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32)}) {
                for (int n : new int[]{14, 64, 258}) {
                    int rows = 7, batch = 3;
                    Random r = new Random(n);
                    float[] wf = new float[rows * n];
                    for (int i = 0; i < wf.length; i++) wf[i] = (float) r.nextGaussian() * 0.05f + 0.01f;
                    Tensor w = Rtn.quantize(Tensor.ofFloats("w", wf, rows, n), scheme, Calibrator.MIN_MAX);
                    float[] x = activations(batch, n, n);
                    // the reference: int8 per-token activations, dequantized, times the dequantized 4-bit weights in float
                    byte[] qx = new byte[batch * n];
                    float[] sx = new float[batch], xq = new float[batch * n];
                    Int8Kernels.quantizeRows(x, batch, n, 0, qx, sx);
                    for (int i = 0; i < xq.length; i++) xq[i] = qx[i] * sx[i / n];
                    float[] expected = new float[batch * rows], vec = new float[batch * rows], ref = new float[batch * rows];
                    Kernels.setVector(false);
                    MatMul.matmul(w, xq, expected, batch);
                    MatMul.matmulA8(w, x, ref, batch, 0);
                    Kernels.setVector(true);
                    MatMul.matmulA8(w, x, vec, batch, 0);
                    assertArrayEquals(ref, vec, scheme.describe() + " n " + n + ": vector vs scalar");
                    for (int i = 0; i < expected.length; i++) assertEquals(expected[i], vec[i], 1e-4 * Math.max(1, Math.abs(expected[i])), scheme.describe() + " n " + n);
                }
            }
        } finally {
            Kernels.setVector(before);
        }
    }
}
