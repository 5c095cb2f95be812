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
}
