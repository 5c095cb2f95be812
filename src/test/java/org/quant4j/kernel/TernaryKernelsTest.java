package org.quant4j.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.quant4j.format.GgmlType;
import org.quant4j.format.ggml.GgmlCodecs;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The ternary kernels: Q8_K activation quantization as ggml rounds it; each row's result against an integer
 * reference computed from the ternary values that were encoded (not from the kernel's own decoding); the Vector API
 * path bit-identical to the scalar reference on odd row counts and 1, 2, 3, 5, 16 blocks; the matmul (threads,
 * batches) against a float product of the dequantized weights within the error of 8-bit activations.
 */
class TernaryKernelsTest {

    /** BitNet-like weights: γ · t with t ∈ {−1, 0, 1} (one γ for the matrix), some all-zero blocks. */
    record Ternary(int[] t, float gamma, Tensor tensor) {}

    static Ternary ternary(GgmlType type, int rows, int cols, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] t = new int[rows * cols];   // (rows, cols)
        for (int i = 0; i < t.length; i++) t[i] = rng.nextInt(3) - 1;
        if (cols >= 512) java.util.Arrays.fill(t, 256, 512, 0);   // row 0, block 1: all zero (d = 0)
        float gamma = 0.0371f;
        float[] w = new float[t.length];
        for (int i = 0; i < t.length; i++) w[i] = gamma * t[i];
        long rowBytes = type.rowBytes(cols);
        MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * rows)]);
        for (int r = 0; r < rows; r++) GgmlCodecs.of(type).quantize(w, r * cols, cols, null, data, r * rowBytes);
        return new Ternary(t, gamma, new Tensor("w", type, new long[]{rows, cols}, data));
    }

    static float[] gaussian(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rng.nextGaussian() * (rng.nextInt(64) == 0 ? 8 : 1));
        return x;
    }

    @Test
    void q8kRoundsAsGgml() {
        float[] x = new float[512];
        x[0] = -127f;              // the largest magnitude, negative: iscale = −127 / −127 = 1
        x[1] = 2.5f; x[2] = 3.5f; x[3] = -2.5f; x[4] = 126.5f; x[5] = 0.49f;
        // block 1 all zero
        byte[] a = new byte[512];
        float[] d = new float[2];
        Q8Activations.quantizeQ8K(x, 0, 512, a, 0, d, 0);
        assertEquals(1f, d[0]);
        assertArrayEquals(new byte[]{-127, 2, 4, -2, 126, 0}, java.util.Arrays.copyOf(a, 6), "half to even");
        assertEquals(0f, d[1]);
        for (int i = 256; i < 512; i++) assertEquals(0, a[i]);
        // a positive maximum: scale negative, codes negated, d · a reproduces x
        float[] y = gaussian(256, 3);
        y[17] = 100f;   // beyond every other |y|
        Q8Activations.quantizeQ8K(y, 0, 256, a, 0, d, 0);
        assertTrue(d[0] < 0);
        assertEquals(-127, a[17]);
        for (int i = 0; i < 256; i++) assertEquals(y[i], d[0] * a[i], Math.abs(d[0]) * 0.5001f, "value " + i);
    }

    @ParameterizedTest
    @EnumSource(names = {"TQ1_0", "TQ2_0"})
    void everyRowEqualsTheIntegerReferenceOnBothPaths(GgmlType type) {
        for (int blocks : new int[]{1, 2, 3, 5, 16}) {
            int rows = 7, cols = 256 * blocks;
            Ternary w = ternary(type, rows, cols, 11L * blocks);
            float[] x = gaussian(cols, blocks);
            byte[] a = new byte[cols];
            float[] dx = new float[blocks];
            Q8Activations.quantizeQ8K(x, 0, cols, a, 0, dx, 0);
            float dw = Float.float16ToFloat(Float.floatToFloat16(w.gamma()));
            for (int r = 0; r < rows; r++) {
                float expected = 0;
                for (int blk = 0; blk < blocks; blk++) {
                    int s = 0;
                    boolean any = false;
                    for (int i = 0; i < 256; i++) {
                        int ti = w.t()[r * cols + blk * 256 + i];
                        s += ti * a[blk * 256 + i];
                        any |= ti != 0;
                    }
                    expected += (any ? dw : 0f) * dx[blk] * s;
                }
                long off = r * type.rowBytes(cols);
                assertEquals(expected, TernaryKernels.dot(type, false, w.tensor().data(), off, a, 0, dx, 0, cols), type + " scalar, " + blocks + " blocks, row " + r);
                assertEquals(expected, TernaryKernels.dot(type, true, w.tensor().data(), off, a, 0, dx, 0, cols), type + " vector, " + blocks + " blocks, row " + r);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"TQ1_0", "TQ2_0"})
    void extremeActivationsDoNotOverflow(GgmlType type) {
        int cols = 256 * 3;
        Ternary w = ternary(type, 3, cols, 5);
        byte[] a = new byte[cols];
        float[] dx = {1f, 1f, 1f};
        for (int r = 0; r < 3; r++) {
            java.util.Arrays.fill(a, (byte) 127);
            for (int i = 0; i < cols; i++) if (w.t()[r * cols + i] < 0) a[i] = -127;   // every nonzero product +127
            long off = r * type.rowBytes(cols);
            float scalar = TernaryKernels.dot(type, false, w.tensor().data(), off, a, 0, dx, 0, cols);
            float vector = TernaryKernels.dot(type, true, w.tensor().data(), off, a, 0, dx, 0, cols);
            int nonzero = 0;
            for (int i = 0; i < cols; i++) if (w.t()[r * cols + i] != 0) nonzero++;
            assertTrue(nonzero > 300);
            assertEquals(scalar, vector, type + " row " + r);
            assertEquals(Float.float16ToFloat(Float.floatToFloat16(w.gamma())) * 127f * nonzero, scalar, 1e-3f * scalar);
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"TQ1_0", "TQ2_0"})
    void matmulWithThreadsAndBatches(GgmlType type) {
        int rows = 37, cols = 1024;
        Ternary w = ternary(type, rows, cols, 9);
        for (int batch : new int[]{1, 3, 6}) {
            float[] x = gaussian(batch * cols, 100 + batch);
            float[] fast = new float[batch * rows], slow = new float[batch * rows];
            boolean was = Kernels.vector();
            try {
                Kernels.setVector(true);
                MatMul.matmul(w.tensor(), x, fast, batch);
                Kernels.setVector(false);
                MatMul.matmul(w.tensor(), x, slow, batch);
            } finally {
                Kernels.setVector(was);
            }
            assertArrayEquals(slow, fast, type + " batch " + batch + ": vector and scalar paths");
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                MatMul.dequantizeRow(w.tensor(), r, row, 0);
                for (int b = 0; b < batch; b++) {
                    double exact = 0, magnitude = 0;
                    for (int i = 0; i < cols; i++) {
                        exact += (double) row[i] * x[b * cols + i];
                        magnitude += Math.abs((double) row[i] * x[b * cols + i]);
                    }
                    // 8-bit activations: each product off by at most d_x / 2 · |w|, d_x ≤ max|x| / 127 per block
                    assertEquals(exact, fast[b * rows + r], 0.02 * magnitude, type + " row " + r + " token " + b);
                }
            }
        }
    }

    /**
     * A BitLinear forward (absmean ternary weights, 8-bit absmax activations per token, as the trainer computes it)
     * against the TQ matmul of the packed weights: equal up to float rounding where a row is one 256-block (the
     * trainer's per-token scale is then Q8_K's per-block scale); for longer rows Q8_K's finer per-block scales
     * differ from the per-token one by about the 8-bit rounding error.
     */
    @ParameterizedTest
    @EnumSource(names = {"TQ1_0", "TQ2_0"})
    void packedBitLinearComputesTheTrainedForward(GgmlType type) {
        for (int cols : new int[]{256, 768}) {
            int rows = 9;
            float[] master = gaussian(rows * cols, 77);
            float[] what = org.quant4j.train.FakeQuant.BitNet.TERNARY.apply(master, rows, cols);   // (rows, cols) γ · t
            float gamma = 0;
            for (float v : what) gamma = Math.max(gamma, Math.abs(v));
            float gamma16 = Float.float16ToFloat(Float.floatToFloat16(gamma));
            long rowBytes = type.rowBytes(cols);
            MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * rows)]);
            for (int r = 0; r < rows; r++) GgmlCodecs.of(type).quantize(what, r * cols, cols, null, data, r * rowBytes);
            Tensor packed = new Tensor("w", type, new long[]{rows, cols}, data);
            float[] x = gaussian(cols, 78);
            float[] xq = x.clone();
            org.quant4j.train.FakeQuant.activations8bit(xq, 1, cols);
            float[] out = new float[rows];
            MatMul.matmul(packed, x, out, 1);
            for (int r = 0; r < rows; r++) {
                double trained = 0, magnitude = 0;
                for (int i = 0; i < cols; i++) {
                    trained += Math.signum(what[r * cols + i]) * gamma16 * xq[i];
                    magnitude += Math.abs(what[r * cols + i] * xq[i]);
                }
                double tolerance = cols == 256 ? 1e-5 * magnitude : 0.01 * magnitude;
                assertEquals(trained, out[r], tolerance, type + " cols " + cols + " row " + r);
            }
        }
    }
}
