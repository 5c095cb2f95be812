package org.quant4j.method.rotation;

import org.quant4j.kernel.Parallel;

import java.util.SplittableRandom;

/**
 * Orthogonal matrices for the rotation methods (row-major float[] n × n) and the products that fuse them into
 * weights. Hadamard matrices H (entries ±1, H·Hᵀ = n·I) exist here for n = 2^k · m with m = 1 (Sylvester) or
 * m = q + 1 for a prime q ≡ 3 (mod 4) (Paley I: 12, 20, 24, 44, 48, 60, ...), as QuaRot builds its
 * Hadamard-of-known-order × power-of-two matrices. Other orders (stories260K's 172 = 4 · 43) have none here.
 */
public final class Rotations {
    private Rotations() {}

    /** An orthonormal Hadamard matrix H/√n (n × n), or null when this class cannot build one of order n. */
    public static float[] hadamard(int n) {
        int m = n, k = 0;
        while (m % 2 == 0 && paley(m) == null && m > 1) { m /= 2; k++; }
        int[] base = m == 1 ? new int[]{1} : paley(m);
        if (base == null) return null;
        int size = m;
        int[] h = base;
        for (int i = 0; i < k; i++) {                       // Sylvester doubling: [[H, H], [H, −H]]
            int[] next = new int[4 * size * size];
            for (int r = 0; r < size; r++) {
                for (int c = 0; c < size; c++) {
                    int v = h[r * size + c];
                    next[r * 2 * size + c] = v;
                    next[r * 2 * size + c + size] = v;
                    next[(r + size) * 2 * size + c] = v;
                    next[(r + size) * 2 * size + c + size] = -v;
                }
            }
            h = next;
            size *= 2;
        }
        float[] out = new float[n * n];
        float inv = (float) (1 / Math.sqrt(n));
        for (int i = 0; i < out.length; i++) out[i] = h[i] * inv;
        return out;
    }

    /** Whether {@link #hadamard} can build order n. */
    public static boolean hasHadamard(int n) {
        int m = n;
        while (m % 2 == 0 && paley(m) == null && m > 1) m /= 2;
        return m == 1 || paley(m) != null;
    }

    /** Paley construction I of order q + 1 for a prime q ≡ 3 (mod 4), entries ±1; null for other orders. */
    static int[] paley(int n) {
        int q = n - 1;
        if (q < 3 || q % 4 != 3 || !prime(q)) return null;
        boolean[] residue = new boolean[q];
        for (int x = 1; x < q; x++) residue[(x * x) % q] = true;
        // H = I + S, S = [[0, 1ᵀ], [−1, Q]] with Q[i][j] = χ(j − i), the quadratic character mod q (χ(0) = 0)
        int[] h = new int[n * n];
        for (int j = 1; j < n; j++) { h[j] = 1; h[j * n] = -1; }
        for (int i = 0; i < q; i++) {
            for (int j = 0; j < q; j++) {
                int d = ((j - i) % q + q) % q;
                h[(i + 1) * n + j + 1] = d == 0 ? 0 : residue[d] ? 1 : -1;
            }
        }
        for (int i = 0; i < n; i++) h[i * n + i] += 1;
        return h;
    }

    private static boolean prime(int q) {
        for (int d = 2; d * d <= q; d++) if (q % d == 0) return false;
        return q > 1;
    }

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
