package org.quant4j.kernel;

import org.quant4j.format.FloatFormats;
import org.quant4j.format.GgmlType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** The Vector API kernels against their scalar references, on odd sizes and edge values. */
class KernelParityTest {

    static Stream<Object[]> cases() {
        return Stream.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16)
                .flatMap(t -> Stream.of(1, 7, 13, 31, 64, 257, 1000).map(n -> new Object[]{t, n}));
    }

    static MemorySegment encode(GgmlType type, float[] v) {
        MemorySegment seg = MemorySegment.ofArray(new byte[(int) type.byteSize(v.length) + 6]);
        FloatFormats.encodeRow(type, v, 0, v.length, seg, 6); // misaligned on purpose
        return seg;
    }

    @ParameterizedTest(name = "{0} n={1}")
    @MethodSource("cases")
    void vectorDotMatchesScalar(GgmlType type, int n) {
        Random r = new Random(n * 31L + type.ordinal());
        float[] w = new float[n], x = new float[n];
        for (int i = 0; i < n; i++) { w[i] = (float) r.nextGaussian(); x[i] = (float) r.nextGaussian(); }
        MemorySegment seg = encode(type, w);
        float scalar = MatMul.rowDot(type, false).dot(seg, 6, x, 0, n);
        float vector = MatMul.rowDot(type, true).dot(seg, 6, x, 0, n);
        double mag = 0;
        for (int i = 0; i < n; i++) mag += Math.abs(w[i] * x[i]);
        assertEquals(scalar, vector, 1e-5 * mag + 1e-6, type + " n=" + n);
    }

    @Test
    void f16EdgeValuesAreExact() {
        // subnormal halves, the largest finite half, signed zeros: the vector path must decode them exactly
        short[] halves = {0x0001, (short) 0x8001, 0x03ff, 0x0400, 0x7bff, (short) 0xfbff, 0x0000, (short) 0x8000, 0x3c00, 0x3555, 0x1234, (short) 0x9234,
                0x0200, 0x0100, 0x7000, 0x2000};
        MemorySegment seg = MemorySegment.ofArray(new byte[2 * halves.length]);
        for (int i = 0; i < halves.length; i++) seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, halves[i]);
        for (int k = 0; k < halves.length; k++) {
            float[] x = new float[halves.length];
            x[k] = 1f;
            float expected = Float.float16ToFloat(halves[k]);
            assertEquals(expected, FloatKernels.dotF16(seg, 0, x, 0, halves.length), 0f, "half 0x" + Integer.toHexString(halves[k] & 0xffff));
        }
    }

    @Test
    void f16InfinityAndNaNFollowTheScalarPath() {
        int n = 32;
        MemorySegment seg = MemorySegment.ofArray(new byte[2 * n]);
        float[] x = new float[n];
        java.util.Arrays.fill(x, 1f);
        seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, 3, (short) 0x7c00); // +inf
        assertEquals(Float.POSITIVE_INFINITY, FloatKernels.dotF16(seg, 0, x, 0, n));
        seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, 5, (short) 0x7e00); // NaN
        assertTrue(Float.isNaN(FloatKernels.dotF16(seg, 0, x, 0, n)));
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals((short) 0x3f80, FloatFormats.floatToBf16(1f));
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0)
        assertEquals((short) 0x3f80, FloatFormats.floatToBf16(Float.intBitsToFloat(0x3f808000)));
        assertEquals((short) 0x3f82, FloatFormats.floatToBf16(Float.intBitsToFloat(0x3f818000)));
        assertTrue(Float.isNaN(FloatFormats.bf16ToFloat(FloatFormats.floatToBf16(Float.NaN))));
    }

    @Test
    void matmulBatchMatchesRowByRowOnBothPaths() {
        int rows = 37, cols = 45, batch = 5;
        Random r = new Random(3);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        float[] x = new float[batch * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (GgmlType type : new GgmlType[]{GgmlType.F32, GgmlType.F16, GgmlType.BF16}) {
            MemorySegment seg = MemorySegment.ofArray(new byte[(int) type.byteSize(w.length)]);
            FloatFormats.encodeRow(type, w, 0, w.length, seg, 0);
            var t = new org.quant4j.tensor.Tensor("w", type, new long[]{rows, cols}, seg);
            float[] vec = new float[batch * rows], ref = new float[batch * rows];
            boolean before = Kernels.vector();
            try {
                Kernels.setVector(true);
                MatMul.matmul(t, x, vec, batch);
                Kernels.setVector(false);
                MatMul.matmul(t, x, ref, batch);
            } finally {
                Kernels.setVector(before);
            }
            float[] row = new float[cols];
            for (int b = 0; b < batch; b++) {
                for (int o = 0; o < rows; o++) {
                    MatMul.dequantizeRow(t, o, row, 0);
                    double expect = 0;
                    for (int i = 0; i < cols; i++) expect += (double) row[i] * x[b * cols + i];
                    assertEquals(expect, ref[b * rows + o], 1e-3, type + " scalar");
                    assertEquals(expect, vec[b * rows + o], 1e-3, type + " vector");
                }
            }
        }
    }
}
