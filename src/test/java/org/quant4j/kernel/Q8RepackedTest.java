package org.quant4j.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.quant4j.format.GgmlType;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The eight-rows-at-a-time kernels on row-interleaved copies ({@link Q8Repacked}) against the scalar reference of the
 * row kernels, through {@link MatMul#matmul} on read-only weights (as a mapped model file is): one, two and three
 * groups of eight rows (the pair kernel and the single-group kernel), 1, 3 and 7 blocks, batches 1-3, one and two
 * threads; Q8_0 also at the extremes of its codes, where the int16 sums are closest to overflowing.
 */
class Q8RepackedTest {

    @ParameterizedTest
    @EnumSource(names = {"Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void repackedMatvecMatchesTheScalarReference(GgmlType type) {
        int saved = Parallel.threads();
        try {
            for (int threads : new int[]{1, 2}) {
                Parallel.setThreads(threads);
                for (int rows : new int[]{8, 16, 24, 40}) {
                    for (int blocks : new int[]{1, 3, 7}) {
                        int cols = type.blockSize() * blocks;
                        Tensor writable = BlockKernelParityTest.randomTensor(type, rows, cols, 31L * rows + blocks);
                        Tensor t = new Tensor("w", type, writable.shape(), writable.data().asReadOnly());
                        assertTrue(Q8Repacked.covers(type, t.data(), rows));
                        assertFalse(Q8Repacked.covers(type, writable.data(), rows), "writable weights are not copied");
                        for (int batch = 1; batch <= 3; batch++) {
                            float[] x = Q8KernelParityTest.gaussian(batch * cols, rows + blocks + batch, true);
                            float[] out = new float[batch * rows], rowKernels = new float[batch * rows];
                            MatMul.matmul(t, x, out, batch);
                            MatMul.matmul(writable, x, rowKernels, batch);
                            Q8Activations a = Q8Activations.quantize(Q8Kernels.kindOf(type), x, batch, cols);
                            Q8Kernels.RowDot reference = Q8Kernels.rowDot(type, false);
                            for (int b = 0; b < batch; b++) {
                                for (int r = 0; r < rows; r++) {
                                    float expected = reference.dot(t.data(), r * type.rowBytes(cols), a, b);
                                    String where = type + " " + rows + "x" + cols + ", token " + b + " of " + batch + ", row " + r + ", " + threads + " threads";
                                    double tol = 2e-5 * (Math.abs(expected) + 1) + 1e-5 * Math.sqrt(cols);
                                    assertEquals(expected, out[b * rows + r], tol, where);
                                    assertEquals(rowKernels[b * rows + r], out[b * rows + r], tol, where + " (row kernels)");
                                }
                            }
                        }
                    }
                }
            }
        } finally {
            Parallel.setThreads(saved);
        }
    }

    /** A new segment object at the address of an older one (a file mapped at a recycled address) gets its own copy. */
    @org.junit.jupiter.api.Test
    void aNewSegmentAtAnOldAddressIsRepackedAgain() {
        GgmlType type = GgmlType.Q4_0;
        int rows = 16, cols = 64;
        Tensor first = BlockKernelParityTest.randomTensor(type, rows, cols, 1), second = BlockKernelParityTest.randomTensor(type, rows, cols, 2);
        java.lang.foreign.MemorySegment base = java.lang.foreign.Arena.ofAuto().allocate(first.data().byteSize(), 64);
        base.copyFrom(first.data());
        Tensor a = new Tensor("a", type, first.shape(), base.asReadOnly());
        float[] x = Q8KernelParityTest.gaussian(cols, 3, false), outA = new float[rows], outB = new float[rows], expected = new float[rows];
        MatMul.matmul(a, x, outA, 1);
        base.copyFrom(second.data());                                   // the same address, other weights
        Tensor b = new Tensor("b", type, first.shape(), base.asReadOnly());
        assertEquals(a.data(), b.data(), "MemorySegment equality is by address");
        MatMul.matmul(b, x, outB, 1);
        MatMul.matmul(second, x, expected, 1);                          // writable: the row kernels
        for (int r = 0; r < rows; r++) assertEquals(expected[r], outB[r], 1e-4 * (Math.abs(expected[r]) + 1), "row " + r);
        assertNotNull(a); // keeps the first segment (and its cache entry) alive until here
    }

    @Test
    void copiesStopAtTheMemoryBudgetAndTheRowKernelsTakeOver() {
        long saved = Q8Repacked.budget;
        try {
            Tensor writable = BlockKernelParityTest.randomTensor(GgmlType.Q4_0, 64, 256, 77);
            Tensor t = new Tensor("w", GgmlType.Q4_0, writable.shape(), writable.data().asReadOnly());
            Q8Repacked.setBudget(Q8Repacked.liveBytes() + t.data().byteSize()); // less than the copy's 4/3 bound
            assertFalse(Q8Repacked.covers(GgmlType.Q4_0, t.data(), 64), "over the budget: no copy");
            float[] x = Q8KernelParityTest.gaussian(256, 5, true), out = new float[64], rowKernels = new float[64];
            long before = Q8Repacked.liveBytes();
            MatMul.matmul(t, x, out, 1);
            assertEquals(before, Q8Repacked.liveBytes(), "nothing was copied");
            MatMul.matmul(writable, x, rowKernels, 1);
            assertArrayEquals(rowKernels, out, "the row kernels ran");
            Q8Repacked.setBudget(Long.MAX_VALUE);
            assertTrue(Q8Repacked.covers(GgmlType.Q4_0, t.data(), 64));
            MatMul.matmul(t, x, out, 1);
            assertEquals(before + 64 / 8 * (256 / 32) * Q8Repacked.Q4_0_BLOCK, Q8Repacked.liveBytes(), "the copy is counted");
            assertTrue(Q8Repacked.covers(GgmlType.Q4_0, t.data(), 64), "an existing copy is always used");
        } finally {
            Q8Repacked.setBudget(saved);
        }
    }

    /**
     * Q8_0 codes of −128 and 127 against activation codes of ±127: the largest products (128·127), two per int16 lane,
     * and even lanes at both ends of the bias; in every sign combination the repacked kernel equals the scalar
     * reference.
     */
    @Test
    void q8_0AtTheExtremesOfItsCodes() {
        int rows = 24, cols = 96, nb = cols / 32;
        byte[] bytes = new byte[rows * nb * 34];
        java.util.SplittableRandom rng = new java.util.SplittableRandom(9);
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < nb; k++) {
                int o = (r * nb + k) * 34;
                short one = Float.floatToFloat16(r % 3 == 0 ? 1f : 0.5f);
                bytes[o] = (byte) one;
                bytes[o + 1] = (byte) (one >> 8);
                for (int i = 0; i < 32; i++) {
                    // rows 0-7 all −128, rows 8-15 all 127, rows 16-23 mixed extremes
                    bytes[o + 2 + i] = (byte) (r < 8 ? -128 : r < 16 ? 127 : rng.nextBoolean() ? -128 : 127);
                }
            }
        }
        MemorySegment data = MemorySegment.ofArray(bytes);
        Tensor t = new Tensor("w", GgmlType.Q8_0, new long[]{rows, cols}, data.asReadOnly());
        assertTrue(Q8Repacked.covers(GgmlType.Q8_0, t.data(), rows));
        int batch = 3;
        float[] x = new float[batch * cols];
        for (int i = 0; i < cols; i++) {
            x[i] = 1f;                                  // token 0: every code 127
            x[cols + i] = -1f;                          // token 1: every code −127
            x[2 * cols + i] = rng.nextBoolean() ? 1f : -1f;
        }
        float[] out = new float[batch * rows];
        MatMul.matmul(t, x, out, batch);
        Q8Activations a = Q8Activations.quantize(Q8Activations.Kind.Q8_0, x, batch, cols);
        Q8Kernels.RowDot reference = Q8Kernels.rowDot(GgmlType.Q8_0, false);
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) {
                float expected = reference.dot(t.data(), r * GgmlType.Q8_0.rowBytes(cols), a, b);
                assertEquals(expected, out[b * rows + r], 1e-6 * Math.abs(expected) + 1e-6, "token " + b + ", row " + r);
            }
        }
        assertEquals(-128f * cols, out[0], 1e-3, "row 0, token 0: d_w·d_x·Σ(−128·127) = 1·(1/127)·(−128·127·cols)");
    }
}
