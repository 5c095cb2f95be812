package org.quant4j.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.quant4j.format.GgmlType;
import org.quant4j.tensor.Tensor;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The integer kernels over 8-bit activations ({@link Q8Kernels}): the Vector API kernel against the scalar reference
 * on odd row counts and 1, 3 and 7 blocks, both against an exact sum of the dequantized weights times the dequantized
 * activations, and the activation quantization itself against llama.cpp's definitions.
 */
class Q8KernelParityTest {

    /** Standard normal values, one in 40 of them times 30 when {@code outliers}. */
    static float[] gaussian(int n, long seed, boolean outliers) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rng.nextGaussian() * (outliers && rng.nextInt(40) == 0 ? 30 : 1));
        return x;
    }

    @ParameterizedTest
    @EnumSource(names = {"Q4_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K"})
    void vectorKernelMatchesTheScalarReference(GgmlType type) {
        Q8Activations.Kind kind = Q8Kernels.kindOf(type);
        assertNotNull(kind);
        for (int blocks : new int[]{1, 3, 7}) {
            int cols = type.blockSize() * blocks, rows = 5, batch = 3;
            Tensor t = BlockKernelParityTest.randomTensor(type, rows, cols, 17L * blocks + type.ordinal());
            Q8Activations a = Q8Activations.quantize(kind, gaussian(batch * cols, blocks, true), batch, cols);
            float[] xhat = a.dequantize();
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                MatMul.dequantizeRow(t, r, row, 0);
                long off = r * type.rowBytes(cols);
                for (int b = 0; b < batch; b++) {
                    double expected = 0, magnitude = 0;
                    for (int i = 0; i < cols; i++) {
                        expected += (double) row[i] * xhat[b * cols + i];
                        magnitude += Math.abs((double) row[i] * xhat[b * cols + i]);
                    }
                    float vector = Q8Kernels.rowDot(type, true).dot(t.data(), off, a, b);
                    float scalar = Q8Kernels.rowDot(type, false).dot(t.data(), off, a, b);
                    String where = type + ", " + blocks + " blocks, row " + r + ", token " + b;
                    assertEquals(expected, scalar, 1e-5 * magnitude + 1e-6, where + " (scalar)");
                    assertEquals(expected, vector, 1e-5 * magnitude + 1e-6, where + " (vector)");
                }
            }
        }
    }

    /** Every type on 8-bit activations, the ones in {@link Q8KernelsLegacy} and {@link Q8KernelsK} included. */
    @ParameterizedTest
    @EnumSource(names = {"Q4_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "IQ4_XS"})
    void quantizedActivationsStayCloseToTheFloatProduct(GgmlType type) {
        int cols = 1024, rows = 33;
        Tensor t = BlockKernelParityTest.randomTensor(type, rows, cols, 5);
        float[] x = gaussian(cols, 9, false);
        float[] out = new float[rows];
        MatMul.matmul(t, x, out, 1);
        float[] row = new float[cols];
        double err = 0, norm = 0;
        for (int r = 0; r < rows; r++) {
            MatMul.dequantizeRow(t, r, row, 0);
            double exact = 0;
            for (int i = 0; i < cols; i++) exact += (double) row[i] * x[i];
            err += (out[r] - exact) * (out[r] - exact);
            norm += exact * exact;
        }
        // 8-bit activations: a relative error of a few tenths of a percent, far below the weights' own rounding
        assertTrue(Math.sqrt(err / norm) < 0.01, type + " relative error " + Math.sqrt(err / norm));
        assertTrue(err > 0, "the activations really are quantized");
    }

    @Test
    void activationFormatsFollowLlamaCpp() {
        float[] x = gaussian(512, 3, true);
        Q8Activations q0 = Q8Activations.quantize(Q8Activations.Kind.Q8_0, x, 1, 512);
        for (int blk = 0; blk < 16; blk++) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[32 * blk + i]));
            assertEquals(amax / 127, q0.d[blk], 0f);
            int sum = 0;
            for (int i = 0; i < 32; i++) {
                assertEquals(Math.round(x[32 * blk + i] / (amax / 127)), q0.q[32 * blk + i], 1);
                sum += q0.q[32 * blk + i];
            }
            assertEquals(sum, q0.sum32[blk]);
        }
        Q8Activations qk = Q8Activations.quantize(Q8Activations.Kind.Q8_K, x, 1, 512);
        for (int blk = 0; blk < 2; blk++) {
            int at = 0;
            for (int i = 1; i < 256; i++) if (Math.abs(x[256 * blk + i]) > Math.abs(x[256 * blk + at])) at = i;
            // the value of largest magnitude maps to −127 exactly: d = max / −127
            assertEquals(-127, qk.q[256 * blk + at]);
            assertEquals(1 / (-127f / x[256 * blk + at]), qk.d[blk], 0f);
        }
        // every code as quantize_row_q8_K_ref writes it: min(127, nearest_int(iscale·x)), half to even, iscale = −127 / max
        byte[] codes = new byte[512];
        float[] scales = new float[2];
        for (int blk = 0; blk < 2; blk++) {
            float max = 0;
            for (int i = 0; i < 256; i++) if (Math.abs(x[256 * blk + i]) > Math.abs(max)) max = x[256 * blk + i];
            float iscale = -127f / max;
            for (int i = 0; i < 256; i++) codes[256 * blk + i] = (byte) Math.min(127, (int) Math.rint(iscale * x[256 * blk + i]));
            scales[blk] = 1 / iscale;
        }
        for (int i = 0; i < 512; i++) assertEquals(codes[i], qk.q[i], "code " + i);
        assertArrayEquals(scales, qk.d);
        // d·Σq per 32, the offsets and minimums the kernels subtract: each 32 with its own (Q8_0) or its 256's (Q8_K) scale
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int i = 0; i < 32; i++) s += qk.q[32 * g + i];
            assertEquals(s, qk.sum32[g]);
            assertEquals(s * qk.d[g / 8], qk.dsum[g], 0f);
            assertEquals(q0.sum32[g] * q0.d[g], q0.dsum[g], 0f);
        }
        assertThrows(IllegalArgumentException.class, () -> Q8Activations.quantize(Q8Activations.Kind.Q8_K, x, 1, 500));
    }
}
