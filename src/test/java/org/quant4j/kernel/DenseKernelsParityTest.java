package org.quant4j.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** DenseKernels' Vector API paths against their scalar references on odd sizes. */
class DenseKernelsParityTest {

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {1, 7, 13, 31, 64, 257})
    void gemmMatchesScalar(int n) {
        Random r = new Random(n);
        int m = n % 9 + 3, k = n % 5 + 17, lda = k + 2, ldb = n + 3, ldc = n + 1;
        float[] a = new float[1 + m * lda], b = new float[2 + k * ldb], c0 = new float[3 + m * ldc];
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian();
        for (int i = 0; i < c0.length; i++) c0[i] = (float) r.nextGaussian();
        float[] vec = c0.clone(), ref = c0.clone();
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(true);
            DenseKernels.gemm(m, n, k, -0.75f, a, 1, lda, b, 2, ldb, vec, 3, ldc);
            Kernels.setVector(false);
            DenseKernels.gemm(m, n, k, -0.75f, a, 1, lda, b, 2, ldb, ref, 3, ldc);
        } finally {
            Kernels.setVector(before);
        }
        for (int i = 0; i < c0.length; i++) assertEquals(ref[i], vec[i], 1e-4f * (1 + Math.abs(ref[i])), "C[" + i + "]");
        assertEquals(c0[0], vec[0], "outside C untouched");
    }

    /** Long k (two KC passes and a partial one) and every row count mod 5 (the vector tile's height). */
    @ParameterizedTest(name = "m={0}")
    @ValueSource(ints = {1, 4, 5, 6, 12, 23})
    void gemmLongKMatchesScalar(int m) {
        Random r = new Random(m + 3);
        int n = 40, k = 600, lda = k + 1, ldb = n + 7, ldc = n + 2;
        float[] a = new float[m * lda], b = new float[k * ldb], c0 = new float[m * ldc];
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian();
        for (int i = 0; i < c0.length; i++) c0[i] = (float) r.nextGaussian();
        float[] vec = c0.clone(), ref = c0.clone();
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(true);
            DenseKernels.gemm(m, n, k, 1f, a, 0, lda, b, 0, ldb, vec, 0, ldc);
            Kernels.setVector(false);
            DenseKernels.gemm(m, n, k, 1f, a, 0, lda, b, 0, ldb, ref, 0, ldc);
        } finally {
            Kernels.setVector(before);
        }
        for (int i = 0; i < c0.length; i++) assertEquals(ref[i], vec[i], 2e-4f * (float) Math.sqrt(k) * (1 + Math.abs(ref[i])), "C[" + i + "]");
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {1, 7, 13, 31, 64, 257, 300})
    void gemmWithTransposedAMatchesScalar(int n) {
        Random r = new Random(n + 7);
        int m = n % 11 + 5, k = n + 3, lda = m + 3, ldb = n + 5, ldc = n + 1;   // k = 260, 303: more than one KC pass
        float[] a = new float[1 + k * lda], b = new float[2 + k * ldb], c0 = new float[3 + m * ldc];
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian();
        for (int i = 0; i < c0.length; i++) c0[i] = (float) r.nextGaussian();
        float[] vec = c0.clone(), ref = c0.clone();
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(true);
            DenseKernels.gemmTN(m, n, k, 1.5f, a, 1, lda, b, 2, ldb, vec, 3, ldc);
            Kernels.setVector(false);
            DenseKernels.gemmTN(m, n, k, 1.5f, a, 1, lda, b, 2, ldb, ref, 3, ldc);
        } finally {
            Kernels.setVector(before);
        }
        for (int i = 0; i < c0.length; i++) assertEquals(ref[i], vec[i], 2e-4f * (1 + Math.abs(ref[i])) * (float) Math.sqrt(k), "C[" + i + "]");
        for (int i = 0; i < 3; i++) assertEquals(c0[i], vec[i], "outside C untouched");
        float s = 0;                                                    // and against the definition, one element
        for (int p = 0; p < k; p++) s += a[1 + p * lda + m - 1] * b[2 + p * ldb + n - 1];
        assertEquals(c0[3 + (m - 1) * ldc + n - 1] + 1.5f * s, vec[3 + (m - 1) * ldc + n - 1], 1e-3f * (float) Math.sqrt(k));
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {1, 7, 13, 31, 64, 257, 300})
    void doubleGemmWithTransposedAMatchesScalar(int n) {
        Random r = new Random(n + 11);
        int m = n % 13 + 4, k = n + 2, lda = m + 1, ldb = n + 2, ldc = n + 4;
        double[] a = new double[5 + k * lda], b = new double[1 + k * ldb], c0 = new double[2 + m * ldc];
        for (int i = 0; i < a.length; i++) a[i] = r.nextGaussian();
        for (int i = 0; i < b.length; i++) b[i] = r.nextGaussian();
        for (int i = 0; i < c0.length; i++) c0[i] = r.nextGaussian();
        double[] vec = c0.clone(), ref = c0.clone();
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(true);
            DenseKernels.gemmTN(m, n, k, -1.0, a, 5, lda, b, 1, ldb, vec, 2, ldc);
            Kernels.setVector(false);
            DenseKernels.gemmTN(m, n, k, -1.0, a, 5, lda, b, 1, ldb, ref, 2, ldc);
        } finally {
            Kernels.setVector(before);
        }
        for (int i = 0; i < c0.length; i++) assertEquals(ref[i], vec[i], 1e-12 * (1 + Math.abs(ref[i])) * k, "C[" + i + "]");
        assertEquals(c0[0], vec[0], "outside C untouched");
        assertEquals(c0[1], vec[1], "outside C untouched");
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {0, 1, 7, 13, 31, 64, 257})
    void doubleAxpyMatchesScalar(int n) {
        Random r = new Random(n + 200);
        double[] x = new double[n + 2], y0 = new double[n + 3];
        for (int i = 0; i < x.length; i++) x[i] = r.nextGaussian();
        for (int i = 0; i < y0.length; i++) y0[i] = r.nextGaussian();
        double[] vec = y0.clone(), ref = y0.clone();
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(true);
            DenseKernels.axpy(-0.3, x, 2, vec, 3, n);
            Kernels.setVector(false);
            DenseKernels.axpy(-0.3, x, 2, ref, 3, n);
        } finally {
            Kernels.setVector(before);
        }
        for (int i = 0; i < y0.length; i++) assertEquals(ref[i], vec[i], 1e-14 * (1 + Math.abs(ref[i])), "y[" + i + "]");
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {0, 1, 7, 13, 31, 64, 257})
    void doubleDotMatchesScalar(int n) {
        Random r = new Random(n + 100);
        double[] a = new double[n + 3], b = new double[n + 5];
        for (int i = 0; i < a.length; i++) a[i] = r.nextGaussian();
        for (int i = 0; i < b.length; i++) b[i] = r.nextGaussian();
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(true);
            double v = DenseKernels.dot(a, 3, b, 5, n);
            Kernels.setVector(false);
            double s = DenseKernels.dot(a, 3, b, 5, n);
            assertEquals(s, v, 1e-12 * (1 + n));
        } finally {
            Kernels.setVector(before);
        }
    }

    /**
     * GPTQ's column step: codes, dequantized values and errors bit for bit (the same IEEE operations lane by lane),
     * with ties x / s = k + ½ (round half to even), values far outside the grid (|x / s| ≥ 2²²) and every tail length.
     */
    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {1, 7, 8, 13, 64, 257})
    void quantizeColumnMatchesScalar(int n) {
        Random r = new Random(n + 200);
        float[] w = new float[n + 2], scale = new float[n + 1], zero = new float[n + 1];
        for (int i = 0; i < n; i++) {
            float s = (float) Math.scalb(1.0, -r.nextInt(8));              // a power of two: x = s·(k + ½) is exact
            scale[i + 1] = s;
            zero[i + 1] = r.nextInt(16);
            w[i + 2] = switch (i % 4) {
                case 0 -> s * (r.nextInt(40) - 20 + 0.5f);                  // a tie
                case 1 -> (float) r.nextGaussian() * 5 * s;
                case 2 -> (r.nextBoolean() ? 1 : -1) * s * 1e7f;           // |x / s| ≥ 2²²
                default -> (float) r.nextGaussian() * s * 8;
            };
        }
        float[][] vec = {new float[n + 3], new float[n + 4], new float[n + 5]}, ref = {new float[n + 3], new float[n + 4], new float[n + 5]};
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(true);
            double lv = DenseKernels.quantizeColumn(n, w, 2, scale, zero, 1, 15f, 0.75f, vec[0], 3, vec[1], 4, vec[2], 5);
            Kernels.setVector(false);
            double ls = DenseKernels.quantizeColumn(n, w, 2, scale, zero, 1, 15f, 0.75f, ref[0], 3, ref[1], 4, ref[2], 5);
            assertEquals(ls, lv, 1e-5 * ls);
        } finally {
            Kernels.setVector(before);
        }
        for (int k = 0; k < 3; k++) assertArrayEquals(ref[k], vec[k], "output " + k);
        for (int i = 0; i < n; i++) {
            float q = ref[0][3 + i];
            assertTrue(q >= 0 && q <= 15 && q == Math.rint(q), "code " + q);
        }
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {1, 7, 8, 13, 64, 257})
    void columnRangeMatchesScalar(int n) {
        Random r = new Random(n + 300);
        int count = n % 5 + 1, ld = n + 3;
        float[] x = new float[2 + count * ld];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() + (i % 3 == 0 ? 2 : 0);
        float[] minV = new float[n], maxV = new float[n], minS = new float[n], maxS = new float[n];
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(true);
            DenseKernels.columnRange(n, count, x, 2, ld, minV, maxV);
            Kernels.setVector(false);
            DenseKernels.columnRange(n, count, x, 2, ld, minS, maxS);
        } finally {
            Kernels.setVector(before);
        }
        assertArrayEquals(minS, minV);
        assertArrayEquals(maxS, maxV);
        for (int i = 0; i < n; i++) assertTrue(minS[i] <= 0 && maxS[i] >= 0);
    }
}
