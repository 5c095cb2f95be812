package org.quant4j.method.rotation;

import org.quant4j.kernel.FastHadamard;
import org.quant4j.kernel.Parallel;

import java.util.SplittableRandom;

/**
 * Orthogonal matrices for the rotation methods (row-major float[] n × n) and the products that fuse them into
 * weights. Hadamard matrices H (entries ±1, H·Hᵀ = n·I) come from {@link FastHadamard}: n = 2^k · m with m = 1
 * (Sylvester) or m = q + 1 for a prime q ≡ 3 (mod 4) (Paley I: 12, 20, 24, 44, 48, 60, ...), as QuaRot builds its
 * Hadamard-of-known-order × power-of-two matrices; the run-time transforms use the same matrices in fast form. Other
 * orders (stories260K's 172 = 4 · 43) have none here.
 */
public final class Rotations {
    private Rotations() {}

    /** An orthonormal Hadamard matrix H/√n (n × n), or null when {@link FastHadamard} cannot build one of order n. */
    public static float[] hadamard(int n) {
        int[] h = FastHadamard.matrix(n);
        if (h == null) return null;
        float[] out = new float[n * n];
        float inv = (float) (1 / Math.sqrt(n));
        for (int i = 0; i < out.length; i++) out[i] = h[i] * inv;
        return out;
    }

    /** Whether {@link #hadamard} can build order n. */
    public static boolean hasHadamard(int n) { return FastHadamard.plan(n) != null; }

    /** QuaRot's randomized Hadamard: diag(±1) · H/√n with seeded random signs (n × n), or null when none of order n. */
    public static float[] randomizedHadamard(int n, long seed) {
        float[] h = hadamard(n);
        if (h == null) return null;
        SplittableRandom rng = new SplittableRandom(seed);
        for (int r = 0; r < n; r++) {
            if (rng.nextBoolean()) for (int c = 0; c < n; c++) h[r * n + c] = -h[r * n + c];
        }
        return h;
    }

    /** A random orthogonal matrix (n × n): Gram–Schmidt on Gaussian columns, seeded. */
    public static float[] randomOrthogonal(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[] a = new double[n * n];
        for (int i = 0; i < a.length; i++) a[i] = gaussian(rng);
        for (int c = 0; c < n; c++) {                       // modified Gram–Schmidt over columns, twice for accuracy
            for (int pass = 0; pass < 2; pass++) {
                for (int p = 0; p < c; p++) {
                    double dot = 0;
                    for (int r = 0; r < n; r++) dot += a[r * n + c] * a[r * n + p];
                    for (int r = 0; r < n; r++) a[r * n + c] -= dot * a[r * n + p];
                }
            }
            double norm = 0;
            for (int r = 0; r < n; r++) norm += a[r * n + c] * a[r * n + c];
            norm = Math.sqrt(norm);
            for (int r = 0; r < n; r++) a[r * n + c] /= norm;
        }
        float[] out = new float[n * n];
        for (int i = 0; i < out.length; i++) out[i] = (float) a[i];
        return out;
    }

    private static double gaussian(SplittableRandom rng) {
        double u = rng.nextDouble(), v = rng.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }

    /** W · Q for W (rows, n) and Q (n, n), accumulated in double. */
    public static float[] mulRight(float[] w, int rows, int n, float[] q) {
        float[] out = new float[rows * n];
        Parallel.forRange(rows, 8, (start, end) -> {
            double[] acc = new double[n];
            for (int r = start; r < end; r++) {
                java.util.Arrays.fill(acc, 0);
                for (int k = 0; k < n; k++) {
                    double x = w[r * n + k];
                    if (x == 0) continue;
                    for (int c = 0; c < n; c++) acc[c] += x * q[k * n + c];
                }
                for (int c = 0; c < n; c++) out[r * n + c] = (float) acc[c];
            }
        });
        return out;
    }

    /** Qᵀ · W for Q (n, n) and W (n, cols). */
    public static float[] mulLeftTransposed(float[] q, int n, float[] w, int cols) {
        return transpose(mulRight(transpose(w, n, cols), cols, n, q), cols, n);
    }

    /** The transpose of a (rows, cols) matrix. */
    public static float[] transpose(float[] a, int rows, int cols) {
        float[] t = new float[rows * cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
        return t;
    }
}
