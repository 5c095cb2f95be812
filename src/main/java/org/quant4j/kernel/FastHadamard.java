package org.quant4j.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Hadamard matrices and the fast Walsh–Hadamard transform (O(n log n), in place) for online rotations (QuaRot's
 * Hadamard before the down projection, before the attention output, on keys and queries).
 *
 * <p>Orders: n = 2^k · m with m = 1 (Sylvester) or m = q + 1 for a prime q ≡ 3 (mod 4) (Paley I: 12, 20, 24, 32, 44,
 * 48, 60, 68, 72, 80, ...), the smallest such m dividing n (a power of two is pure Sylvester). The work per vector is
 * n·m for the base plus n·log₂(n/m) for the butterflies: 768 = 64 · 12 and 5120 = 256 · 20 are fast; 11008 = 2 · 5504
 * has a plan but a large dense base. H_n = H_2 ⊗ ... ⊗ H_2 ⊗ H_m (Sylvester doubling
 * [[H, H], [H, −H]] of the base), so with x viewed as X (2^k, m), H_nᵀ·x is X ← H_{2^k} · X · H_m: a dense m × m
 * product on each row of m values, then k butterfly stages over rows. Other orders (Williamson-only ones such as
 * stories260K's 172 = 4 · 43, which QuaRot hard-codes) have no Hadamard matrix here: {@link #plan} returns null and the
 * caller keeps a dense transform or none.
 */
public final class FastHadamard {
    private FastHadamard() {}

    /**
     * Whether the forward pass runs recognised Hadamard transforms in fast form (default) or as the stored dense
     * product ({@code -Dquant4j.hadamard=dense}, to measure what the fast form saves).
     */
    private static volatile boolean online = !"dense".equalsIgnoreCase(System.getProperty("quant4j.hadamard", "fast"));

    public static boolean online() { return online; }

    public static void setOnline(boolean on) { online = on; }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /**
     * How to build and apply the Hadamard matrix of order n.
     *
     * @param base (m, m) the ±1 Paley matrix, or {1} for a power of two
     */
    public record Plan(int n, int m, int[] base) {
        public int pow2() { return n / m; }

        /** H_n[r][c] = H_{2^k}[r / m][c / m] · H_m[r mod m][c mod m], with H_{2^k}[a][b] = (−1)^popcount(a AND b). */
        public int entry(int r, int c) {
            int sign = (Integer.bitCount((r / m) & (c / m)) & 1) == 0 ? 1 : -1;
            return sign * base[(r % m) * m + c % m];
        }
    }

    /** The plan for order n, or null when no Hadamard matrix of order n is known here. */
    public static Plan plan(int n) {
        if (n < 1) return null;
        int pow2 = Integer.lowestOneBit(n);
        for (; pow2 >= 1; pow2 /= 2) {                      // the smallest base first: most of the work in butterflies
            int m = n / pow2;
            if (m == 1) return new Plan(n, 1, new int[]{1});
            int[] base = paley(m);
            if (base != null) return new Plan(n, m, base);
        }
        return null;
    }

    /** The ±1 Hadamard matrix of order n (row-major n × n, H·Hᵀ = n·I), or null when none is known here. */
    public static int[] matrix(int n) {
        Plan p = plan(n);
        if (p == null) return null;
        int size = p.m();
        int[] h = p.base();
        while (size < n) {                                  // Sylvester doubling: [[H, H], [H, −H]]
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
        return h;
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

    // ---- the online transform ---------------------------------------------------------------------------------

    /**
     * x ← scale · H_nᵀ · (signs ⊙ x) on each of {@code rows} vectors of n values: a randomized Hadamard rotation
     * (signs ±1, or null for none; scale 1/√n makes it orthonormal).
     *
     * @param x (rows, n) from {@code start}, in place
     */
    public static void transform(Plan p, float[] signs, float scale, float[] x, int start, int rows) {
        int n = p.n();
        float[] row = new float[p.m()];                     // (m) one row of X before its base product
        boolean vector = Kernels.vector();
        for (int r = 0; r < rows; r++) {
            int off = start + r * n;
            if (signs != null) multiply(x, off, signs, n, vector);
            if (p.m() > 1) baseProduct(p, x, off, row);
            for (int half = p.m(); half < n; half *= 2) {   // butterflies over spans of `half` contiguous values
                for (int span = off; span < off + n; span += 2 * half) {
                    if (vector) butterfly(x, span, half);
                    else butterflyScalar(x, span, half);
                }
            }
            if (scale != 1f) scale(x, off, n, scale, vector);
        }
    }

    /** Each row of m values of X (2^k, m) becomes H_mᵀ · row (scalar in both paths: m ≤ a few dozen). */
    private static void baseProduct(Plan p, float[] x, int off, float[] row) {
        int m = p.m();
        int[] h = p.base();
        for (int start = off; start < off + p.n(); start += m) {
            System.arraycopy(x, start, row, 0, m);
            for (int c = 0; c < m; c++) {
                float s = 0;
                for (int k = 0; k < m; k++) s += h[k * m + c] * row[k];
                x[start + c] = s;
            }
        }
    }

    /** (a, b) ← (a + b, a − b) for a = x[start, start + half), b = x[start + half, start + 2·half). */
    static void butterflyScalar(float[] x, int start, int half) {
        for (int i = start; i < start + half; i++) {
            float a = x[i], b = x[i + half];
            x[i] = a + b;
            x[i + half] = a - b;
        }
    }

    static void butterfly(float[] x, int start, int half) {
        int L = F.length(), i = start, end = start + half;
        for (; i <= end - L; i += L) {
            FloatVector a = FloatVector.fromArray(F, x, i), b = FloatVector.fromArray(F, x, i + half);
            a.add(b).intoArray(x, i);
            a.sub(b).intoArray(x, i + half);
        }
        for (; i < end; i++) {
            float a = x[i], b = x[i + half];
            x[i] = a + b;
            x[i + half] = a - b;
        }
    }

    private static void multiply(float[] x, int off, float[] signs, int n, boolean vector) {
        int i = 0;
        if (vector) {
            for (; i <= n - F.length(); i += F.length()) {
                FloatVector.fromArray(F, x, off + i).mul(FloatVector.fromArray(F, signs, i)).intoArray(x, off + i);
            }
        }
        for (; i < n; i++) x[off + i] *= signs[i];
    }

    private static void scale(float[] x, int off, int n, float scale, boolean vector) {
        int i = 0;
        if (vector) {
            for (; i <= n - F.length(); i += F.length()) FloatVector.fromArray(F, x, off + i).mul(scale).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] *= scale;
    }

    // ---- recognising a stored transform ------------------------------------------------------------------------

    /**
     * A randomized Hadamard rotation in fast form: x ← scale · H_nᵀ · (signs ⊙ x).
     *
     * @param signs (n) ±1
     */
    public record Rotation(Plan plan, float[] signs, float scale) {
        /** x (rows, n) from {@code start}, in place. */
        public void apply(float[] x, int start, int rows) { transform(plan, signs, scale, x, start, rows); }

        /** The plain orthonormal Hadamard H_nᵀ/√n of order n (no signs), or null when none is known. */
        public static Rotation plain(int n) {
            Plan p = FastHadamard.plan(n);
            return p == null ? null : new Rotation(p, null, (float) (1 / Math.sqrt(n)));
        }
    }

    /**
     * Whether a dense transform T (n, n) is exactly H_nᵀ · diag(s) / √n for this class's H_n and some signs s — the
     * form QuaRot's online transforms are stored in ({@code *.input_transform} = (diag(s)·H_n/√n)ᵀ) — and if so its fast
     * form; null otherwise (the caller keeps the dense product). O(n²).
     */
    public static Rotation recognise(float[] t, int n) {
        Plan p = plan(n);
        if (p == null) return null;
        float inv = (float) (1 / Math.sqrt(n));
        float[] signs = new float[n];
        for (int j = 0; j < n; j++) {                       // T[0][j] = s_j · H[j][0] / √n
            float v = t[j];
            if (Math.abs(v) != inv) return null;
            signs[j] = (v > 0) == (p.entry(j, 0) > 0) ? 1f : -1f;
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (t[i * n + j] != signs[j] * (p.entry(j, i) * inv)) return null;
            }
        }
        return new Rotation(p, signs, inv);
    }
}
