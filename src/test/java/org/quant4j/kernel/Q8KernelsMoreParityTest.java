package org.quant4j.kernel;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.quant4j.format.GgmlType;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The integer kernels of {@link Q8KernelsLegacy} (Q4_1, Q5_0, Q5_1, IQ4_NL on Q8_0 activations) and {@link Q8KernelsK}
 * (Q2_K, Q3_K, IQ4_XS on Q8_K): the Vector API kernel and the scalar reference (ggml's generic loops) each against an
 * exact sum of the codec's dequantized weights times the dequantized activations, on 1, 3 and 7 blocks, on codec-made
 * rows and on raw random, all-zero and all-one bytes (every code, the extreme scales, saturated activations); and the
 * whole matmul (odd row counts, 1 to 3 threads, batches) against the scalar switch.
 */
class Q8KernelsMoreParityTest {

    @AfterEach
    void restore() { Parallel.setThreads(Runtime.getRuntime().availableProcessors()); }

    private static float[] gaussian(int n, long seed) { return Q8KernelParityTest.gaussian(n, seed, true); }

    /** Byte offsets of the fp16 scale fields in one block of each type (ggml-common.h). */
    private static int[] halfFields(GgmlType type) {
        return switch (type) {
            case Q4_1, Q5_1 -> new int[]{0, 2};
            case Q5_0, IQ4_NL, IQ4_XS -> new int[]{0};
            case Q2_K -> new int[]{80, 82};
            case Q3_K -> new int[]{108};
            default -> throw new IllegalArgumentException(type.name());
        };
    }

    /**
     * A tensor of raw block bytes: {@code fill} −1 for random bytes, else every byte {@code fill}; the fp16 scales are
     * then set to random finite values in ±[0.001, 0.1) so that the dot products stay finite.
     */
    private static Tensor rawTensor(GgmlType type, int rows, int cols, int fill, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        long rowBytes = type.rowBytes(cols);
        byte[] data = new byte[Math.toIntExact(rowBytes * rows)];
        for (int i = 0; i < data.length; i++) data[i] = (byte) (fill < 0 ? rng.nextInt(256) : fill);
        MemorySegment seg = MemorySegment.ofArray(data);
        for (long blk = 0; blk < data.length / type.typeSize(); blk++) {
            for (int f : halfFields(type)) {
                float v = (float) ((0.001 + 0.099 * rng.nextDouble()) * (rng.nextBoolean() ? 1 : -1));
                seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, blk * type.typeSize() + f, Float.floatToFloat16(v));
            }
        }
        return new Tensor("w", type, new long[]{rows, cols}, seg);
    }

    /** Every row of t times every token of a, vector and scalar, against the exact product of the dequantized values. */
    private static void assertRowsMatch(Tensor t, Q8Activations a, String what) {
        GgmlType type = (GgmlType) t.type();
        int cols = (int) t.cols();
        float[] xhat = a.dequantize(); // (batch, cols)
        float[] row = new float[cols];
        Q8Kernels.RowDot vector = Q8Kernels.rowDot(type, true), scalar = Q8Kernels.rowDot(type, false);
        for (int r = 0; r < t.rows(); r++) {
            MatMul.dequantizeRow(t, r, row, 0);
            long off = r * type.rowBytes(cols);
            for (int b = 0; b < a.batch; b++) {
                double expected = 0, magnitude = 0;
                for (int i = 0; i < cols; i++) {
                    expected += (double) row[i] * xhat[b * cols + i];
                    magnitude += Math.abs((double) row[i] * xhat[b * cols + i]);
                }
                float v = vector.dot(t.data(), off, a, b), s = scalar.dot(t.data(), off, a, b);
                String where = type + " " + what + ", row " + r + ", token " + b;
                assertEquals(expected, s, 1e-5 * magnitude + 1e-6, where + " (scalar)");
                assertEquals(expected, v, 1e-5 * magnitude + 1e-6, where + " (vector)");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "IQ4_XS"})
    void codecRowsMatchTheExactProduct(GgmlType type) {
        Q8Activations.Kind kind = Q8Kernels.kindOf(type);
        assertNotNull(kind, type + " runs in integers");
        assertEquals(type.blockSize() == 256 ? Q8Activations.Kind.Q8_K : Q8Activations.Kind.Q8_0, kind);
        for (int blocks : new int[]{1, 3, 7}) {
            int cols = type.blockSize() * blocks;
            Tensor t = BlockKernelParityTest.randomTensor(type, 5, cols, 17L * blocks + type.ordinal());
            Q8Activations a = Q8Activations.quantize(kind, gaussian(3 * cols, blocks), 3, cols);
            assertRowsMatch(t, a, blocks + " blocks");
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "IQ4_XS"})
    void rawAndExtremeCodesMatchTheExactProduct(GgmlType type) {
        Q8Activations.Kind kind = Q8Kernels.kindOf(type);
        int cols = type.blockSize() * 3;
        // saturated activations: all +1 (every code 127), alternating ±1 (±127), then Gaussian with outliers
        float[] x = new float[3 * cols];
        for (int i = 0; i < cols; i++) {
            x[i] = 1;
            x[cols + i] = i % 2 == 0 ? 1 : -1;
        }
        System.arraycopy(gaussian(cols, 3), 0, x, 2 * cols, cols);
        Q8Activations a = Q8Activations.quantize(kind, x, 3, cols);
        assertEquals(127, Math.abs(a.q[0]));
        for (int fill : new int[]{-1, 0x00, 0xFF}) {
            assertRowsMatch(rawTensor(type, 7, cols, fill, fill + 11L * type.ordinal()), a, fill < 0 ? "random bytes" : "bytes 0x" + Integer.toHexString(fill));
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "IQ4_XS"})
    void matmulWithThreadsAndBatchesMatchesScalar(GgmlType type) {
        int cols = 512, rows = 37;   // 37 rows: not a multiple of 2 or 3 threads, nor of the grain
        Tensor t = BlockKernelParityTest.randomTensor(type, rows, cols, 7);
        for (int threads : new int[]{1, 2, 3}) {
            Parallel.setThreads(threads);
            for (int batch : new int[]{1, 3, 5}) {
                float[] x = gaussian(batch * cols, batch);
                float[] fast = new float[batch * rows], slow = new float[batch * rows];
                MatMul.matmul(t, x, fast, batch);
                boolean was = Kernels.vector();
                Kernels.setVector(false);
                try {
                    MatMul.matmul(t, x, slow, batch);
                } finally {
                    Kernels.setVector(was);
                }
                // both quantize the same activations the same way; the dot products agree to float rounding
                for (int i = 0; i < fast.length; i++) {
                    assertEquals(slow[i], fast[i], 1e-4f * (1 + Math.abs(slow[i])), type + ", " + threads + " threads, batch " + batch + " at " + i);
                }
            }
        }
    }

    @org.junit.jupiter.api.Test
    void q3ScalesFollowTheCodec() {
        SplittableRandom rng = new SplittableRandom(1);
        byte[] b = new byte[12];
        int[] mine = new int[16], codec = new int[16];
        for (int trial = 0; trial < 100; trial++) {
            for (int i = 0; i < 12; i++) b[i] = (byte) rng.nextInt(256);
            MemorySegment s = MemorySegment.ofArray(b);
            Q8KernelsK.q3Scales(s, 0, mine);
            org.quant4j.format.ggml.Q3_KCodec.unpackScales(s, 0, codec);
            assertArrayEquals(codec, mine);
        }
    }
}
