package org.quant4j.kernel;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The fast Walsh–Hadamard transform against the dense Hadamard product, and its Vector API path against the scalar one. */
class FastHadamardTest {
    /** Powers of two, Paley bases (12, 20, 24, 44, 48, 60) and their multiples, odd sizes 1 and 2. */
    static final int[] SIZES = {1, 2, 4, 8, 12, 16, 20, 24, 40, 44, 48, 60, 64, 96, 160, 256, 384, 512, 768};

    @AfterEach
    void restore() { Kernels.setVector(true); }

    @Test
    void matricesAreHadamard() {
        for (int n : SIZES) {
            if (n > 256) continue;
            int[] h = FastHadamard.matrix(n);
            assertNotNull(h, "order " + n);
            FastHadamard.Plan p = FastHadamard.plan(n);
            for (int i = 0; i < n * n; i++) assertEquals(h[i], p.entry(i / n, i % n), "order " + n + ": entry " + i);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    int dot = 0;
                    for (int k = 0; k < n; k++) dot += h[i * n + k] * h[j * n + k];
                    assertEquals(i == j ? n : 0, dot, "order " + n + ", rows " + i + ", " + j);
                }
            }
        }
    }

    @Test
    void supportedOrders() {
        assertEquals(1, FastHadamard.plan(1024).m(), "a power of two is pure Sylvester");
        assertEquals(12, FastHadamard.plan(768).m());   // 64 · 12
        assertEquals(20, FastHadamard.plan(5120).m());  // 256 · 20
        assertEquals(172, 4 * 43);
        assertNull(FastHadamard.plan(172), "172 = 4 · 43 needs a Williamson matrix, not built here");
        assertEquals(5504, FastHadamard.plan(11008).m(), "11008 = 2 · 5504, 5503 prime: a large dense base");
        assertNull(FastHadamard.plan(28), "27 is a prime power, not a prime: no Paley matrix here");
        assertNull(FastHadamard.plan(36), "36 is Hadamard but neither Sylvester nor Paley I");
        assertNull(FastHadamard.plan(7));
    }

    /** y = scale · Hᵀ · (s ⊙ x), in double, from the dense matrix. */
    static float[] dense(int n, float[] signs, float scale, float[] x, int start, int rows) {
        int[] h = FastHadamard.matrix(n);
        float[] y = x.clone();
        for (int r = 0; r < rows; r++) {
            int off = start + r * n;
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int k = 0; k < n; k++) s += h[k * n + i] * (double) x[off + k] * (signs == null ? 1 : signs[k]);
                y[off + i] = (float) (s * scale);
            }
        }
        return y;
    }

    @Test
    void fastTransformEqualsDenseProductAndPathsAgreeBitForBit() {
        SplittableRandom rng = new SplittableRandom(3);
        for (int n : SIZES) {
            int rows = 3, start = 5;
            float[] x = new float[start + rows * n + 7];        // (rows, n) from an odd offset, with data after
            for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextGaussian() * (i % 13 == 0 ? 20 : 1));
            float[] signs = new float[n];
            for (int i = 0; i < n; i++) signs[i] = rng.nextBoolean() ? 1f : -1f;
            float scale = (float) (1 / Math.sqrt(n));
            FastHadamard.Plan p = FastHadamard.plan(n);
            float[] expected = dense(n, signs, scale, x, start, rows);

            Kernels.setVector(false);
            float[] scalar = x.clone();
            FastHadamard.transform(p, signs, scale, scalar, start, rows);
            Kernels.setVector(true);
            float[] vector = x.clone();
            FastHadamard.transform(p, signs, scale, vector, start, rows);

            assertArrayEquals(scalar, vector, "order " + n + ": vector and scalar paths differ");
            for (int i = 0; i < x.length; i++) {
                assertEquals(expected[i], vector[i], 1e-4 * (1 + Math.abs(expected[i])), "order " + n + ", index " + i);
            }
            assertEquals(x[0], vector[0]);                      // outside the rows: untouched
            assertEquals(x[x.length - 1], vector[x.length - 1]);
        }
    }

    @Test
    void orthonormalTransformIsItsOwnInverseForSylvester() {
        float[] x = {3, -1, 4, 1, -5, 9, 2, -6};
        float[] y = x.clone();
        FastHadamard.Rotation h = FastHadamard.Rotation.plain(8);
        h.apply(y, 0, 1);
        assertNotEquals(x[0], y[0]);
        h.apply(y, 0, 1);                                        // H/√n symmetric and orthogonal: H·H = I
        assertArrayEquals(x, y, 1e-5f);
    }

    @Test
    void recognisesRandomizedHadamardTransformsOnly() {
        SplittableRandom rng = new SplittableRandom(9);
        for (int n : new int[]{8, 12, 48, 96}) {
            int[] h = FastHadamard.matrix(n);
            float inv = (float) (1 / Math.sqrt(n));
            float[] signs = new float[n];
            for (int i = 0; i < n; i++) signs[i] = rng.nextBoolean() ? 1f : -1f;
            float[] t = new float[n * n];                       // (diag(s) · H/√n)ᵀ as QuaRot stores it
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) t[i * n + j] = signs[j] * (h[j * n + i] * inv);
            FastHadamard.Rotation r = FastHadamard.recognise(t, n);
            assertNotNull(r, "order " + n);
            assertArrayEquals(signs, r.signs());

            float[] x = new float[2 * n];                       // the fast form equals the dense T · x
            for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
            float[] fast = x.clone();
            r.apply(fast, 0, 2);
            for (int b = 0; b < 2; b++) {
                for (int i = 0; i < n; i++) {
                    double s = 0;
                    for (int k = 0; k < n; k++) s += t[i * n + k] * (double) x[b * n + k];
                    assertEquals(s, fast[b * n + i], 1e-5, "order " + n);
                }
            }

            t[n + 1] = -t[n + 1];                                // one entry off: not a Hadamard transform
            assertNull(FastHadamard.recognise(t, n));
        }
        float[] identity = new float[16 * 16];
        for (int i = 0; i < 16; i++) identity[i * 16 + i] = 1;
        assertNull(FastHadamard.recognise(identity, 16));
        assertNull(FastHadamard.recognise(new float[172 * 172], 172));
    }
}
