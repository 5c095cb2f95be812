package org.quant4j.kernel;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The Vector API GELU against its scalar reference, on odd lengths and edge values. */
class GeluKernelTest {
    @Test void vectorPathMatchesTheScalarReference() {
        Random r = new Random(3);
        for (int n : new int[]{1, 7, 13, 31, 257, 1536}) {
            float[] x = new float[n + 5];
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (i % 3 == 0 ? 6 : 1));
            float[] edges = {0f, -0f, 1e-30f, -1e-30f, 3e4f, -3e4f, 9.5f, -9.5f, 5e-4f, -5e-4f, Float.MIN_VALUE, 1f};
            for (int i = 0; i < Math.min(edges.length, n); i++) x[2 + i] = edges[i];
            float[] a = x.clone(), b = x.clone();
            GeluKernel.geluErfScalar(a, 2, n);
            GeluKernel.geluErfVector(b, 2, n);
            for (int i = 0; i < x.length; i++) {
                if (i < 2 || i >= n + 2) {
                    assertEquals(x[i], b[i], "outside the run: untouched");
                    continue;
                }
                assertEquals(a[i], b[i], 3e-7 * Math.max(1, Math.abs(x[i])), "x = " + x[i]);
            }
        }
    }

    /** The same bits before and after the JIT compiles the vector path (a lanewise EXP gave 1-ulp differences). */
    @Test void vectorPathIsTheSameColdAndWarm() {
        Random r = new Random(5);
        float[] x = new float[4096];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * 3;
        float[] cold = x.clone();
        GeluKernel.geluErfVector(cold, 0, cold.length);
        for (int k = 0; k < 20_000; k++) GeluKernel.geluErfVector(x.clone(), 0, x.length);
        float[] warm = x.clone();
        GeluKernel.geluErfVector(warm, 0, warm.length);
        assertArrayEquals(cold, warm);
    }

    @Test void knownValues() {
        // GELU(1) = Φ(1) = 0.841344746..., GELU(−1) = −0.158655254..., GELU(0) = 0, GELU(x) → x for large x
        for (boolean vector : new boolean[]{false, true}) {
            float[] x = {1f, -1f, 0f, 12f, -12f, 2f};
            if (vector) GeluKernel.geluErfVector(x, 0, x.length); else GeluKernel.geluErfScalar(x, 0, x.length);
            assertEquals(0.8413447f, x[0], 1e-6f);
            assertEquals(-0.1586553f, x[1], 1e-6f);
            assertEquals(0f, x[2]);
            assertEquals(12f, x[3], 1e-6f);
            assertEquals(0f, x[4], 1e-6f);
            assertEquals(1.9544997f, x[5], 1e-6f);
        }
    }
}
