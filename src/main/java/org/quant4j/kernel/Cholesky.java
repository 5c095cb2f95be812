package org.quant4j.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * In-place upper Cholesky factorisation A = UᵀU of a symmetric positive definite (n, n) double matrix, row-major,
 * U in A's upper triangle (the strict lower triangle is scratch): GPTQ's one O(n³) step. Blocked right-looking by
 * panels of {@link #NB} rows, as LAPACK's dpotrf orders it:
 * <pre>
 *   U11 = chol(A11)                     the (nb, nb) diagonal block, unblocked
 *   U12 = U11⁻ᵀ A12                     the panel's rows right of it, (nb, n − k1), strips of NR columns over the threads
 *   A22 −= U12ᵀ U12                     the trailing matrix, upper tiles only (a syrk): all but O(n² nb) of the flops
 * </pre>
 * Both O(n² nb) and O(n³) parts run on one register tile: an MR × NR block of C (5 × 2 DoubleVectors, 10
 * accumulators) stays in registers while the k loop reads two packed slivers sequentially, (k, MR) and (k, NR)
 * contiguous. Five rows, not four or six: with AVX2's 16 registers, 4 × 8 (8 accumulators) leaves FMA latency uncovered
 * (about 31 GFLOP/s on L1 data against 37–42 for 5 × 8, one core), and 6 × 8 (12 accumulators + 2 B vectors + the
 * broadcasts) makes C2 spill an accumulator to the stack every k step (about 19). The forward substitution solves MR
 * rows of a strip at a time (the rows above them through the tile, against U11 packed by columns, then the MR × MR
 * triangle) and writes the solved rows straight into the slivers the syrk reads, so U12 is packed once per panel. The
 * syrk hands columns out to the threads in blocks of {@link #NC}, widest work first, from a shared counter (a
 * descheduled thread on a shared machine does not hold the others up); inside a block it walks C row by row, so a
 * tile's C lines follow the previous tile's in the same rows and pages (down the columns, every tile touched MR new
 * pages of the trailing matrix: about 15 % slower), the block's B slivers in L2 and each A sliver in L1 for the block.
 * {@link #tileScalar} is the tile's reference under {@link Kernels#vector()} false; {@link #upperUnblocked} the
 * textbook loop the parity tests compare with.
 */
public final class Cholesky {
    private Cholesky() {}

    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    /** Rows per panel (the syrk's k, a multiple of MR); rows and columns of a register tile; columns per work unit. */
    static final int NB = 200, MR = 5, NR = 2 * D.length(), NC = 8 * NR;

    /** Factors a in place; false (a partly overwritten) when A is not positive definite. */
    public static boolean upper(double[] a, int n) { return upper(a, n, NB); }

    /** {@link #upper(double[], int)} with panels of {@code panelRows} rows (a multiple of MR), for tests and tuning. */
    static boolean upper(double[] a, int n, int panelRows) {
        if (panelRows % MR != 0) throw new IllegalArgumentException("Cholesky: panel rows " + panelRows + " not a multiple of " + MR);
        double[] packU = new double[panelRows * panelRows];              // (nb / MR, nb, MR) slivers of U11's columns
        double[] packA = new double[panelRows * round(round(n, NR), MR)]; // (n / MR, nb, MR) slivers of U12's columns
        double[] packB = new double[panelRows * round(n, NR)];          // (n / NR, nb, NR)
        for (int k0 = 0; k0 < n; k0 += panelRows) {
            final int k1 = Math.min(k0 + panelRows, n), nb = k1 - k0, panel = k0;
            if (!diagonalBlock(a, n, k0, k1)) return false;
            if (k1 == n) break;
            for (int r = 0; r < nb; r++) {                               // U11's column r as sliver r / MR, rows p ≤ r
                for (int p = 0; p <= r; p++) packU[(r / MR) * nb * MR + p * MR + r % MR] = a[(k0 + p) * n + k0 + r];
            }
            int cols = n - k1;
            Parallel.forRange((cols + NC - 1) / NC, 1, (s, e) -> {       // U12 = U11⁻ᵀ A12 by strips of NR columns, packed
                double[] x = new double[MR * NR];                        // (MR, NR) rows of the strip being solved
                for (int c = s * NC; c < Math.min(cols, e * NC); c += NR) solveStrip(a, n, panel, nb, c, packU, packA, packB, x);
            });
            syrk(a, n, k1, nb, packA, packB);
        }
        return true;
    }

    private static int round(int x, int m) { return (x + m - 1) / m * m; }

    /** U11 = chol(A[k0:k1, k0:k1]), right-looking row by row; false at a pivot ≤ 0 (or NaN). */
    private static boolean diagonalBlock(double[] a, int n, int k0, int k1) {
        for (int i = k0; i < k1; i++) {
            double d = a[i * n + i];
            if (!(d > 0)) return false;
            double uii = Math.sqrt(d);
            a[i * n + i] = uii;
            for (int j = i + 1; j < k1; j++) a[i * n + j] /= uii;
            for (int i2 = i + 1; i2 < k1; i2++) DenseKernels.axpy(-a[i * n + i2], a, i * n + i2, a, i2 * n + i2, k1 - i2);
        }
        return true;
    }

    /**
     * Columns [c, c + NR) of U12 (relative to k1 = k0 + nb; past the end they are 0): X = U11⁻ᵀ A12 by forward
     * substitution, MR rows at a time. Rows i..i+MR first take every solved row above them in one tile product,
     * x_i −= Σ_{p<i} U[p, i] x_p (the packed U11 sliver against the strip's own packed rows), then the MR × MR triangle
     * is finished in place. The solved rows go to A, to packB's sliver and to packA's.
     */
    private static void solveStrip(double[] a, int n, int k0, int nb, int c, double[] packU, double[] packA, double[] packB, double[] x) {
        int k1 = k0 + nb, cols = n - k1, valid = Math.min(NR, cols - c), bOff = (c / NR) * nb * NR;
        for (int i = 0; i < nb; i += MR) {
            for (int r = 0; r < MR; r++) {
                int row = (k0 + i + r) * n + k1 + c;
                for (int j = 0; j < NR; j++) x[r * NR + j] = j < valid ? a[row + j] : 0;
            }
            tile(packU, (i / MR) * nb * MR, packB, bOff, i, x, 0, NR);
            for (int r = 0; r < MR; r++) {
                int ur = (k0 + i + r) * n + k0 + i + r;
                for (int r2 = 0; r2 < r; r2++) {
                    double u = a[(k0 + i + r2) * n + k0 + i + r];
                    for (int j = 0; j < NR; j++) x[r * NR + j] -= u * x[r2 * NR + j];
                }
                double inv = 1 / a[ur];
                for (int j = 0; j < NR; j++) x[r * NR + j] *= inv;
                int row = (k0 + i + r) * n + k1 + c;
                for (int j = 0; j < valid; j++) a[row + j] = x[r * NR + j];
                System.arraycopy(x, r * NR, packB, bOff + (i + r) * NR, NR);
                for (int j = 0; j < NR; j++) packA[((c + j) / MR) * nb * MR + (i + r) * MR + (c + j) % MR] = x[r * NR + j];
            }
        }
    }

    /** A[k1:, k1:] −= U12ᵀ U12 on the upper tiles (tiles that cross the diagonal also write below it: scratch). */
    private static void syrk(double[] a, int n, int k1, int nb, double[] packA, double[] packB) {
        int cols = n - k1, units = (cols + NC - 1) / NC;
        AtomicInteger next = new AtomicInteger();
        Parallel.forRange(Parallel.threads(), 1, (s, e) -> {
            double[] edge = new double[MR * NR];                         // (MR, NR) a tile that crosses C's edge
            for (int u; (u = next.getAndIncrement()) < units; ) {
                int j0 = (units - 1 - u) * NC, j1 = Math.min(cols, j0 + NC);   // widest columns (most rows) first
                for (int i = 0; i < j1; i += MR) {                       // row by row: a tile's C lines follow the last's
                    int aOff = (i / MR) * nb * MR;
                    for (int j = Math.max(j0, i / NR * NR); j < j1; j += NR) {  // strips that reach the diagonal
                        int bOff = (j / NR) * nb * NR;
                        if (i + MR <= cols && j + NR <= cols) {
                            tile(packA, aOff, packB, bOff, nb, a, (k1 + i) * n + k1 + j, n);
                        } else {
                            java.util.Arrays.fill(edge, 0);
                            tile(packA, aOff, packB, bOff, nb, edge, 0, NR);
                            for (int r = 0; r < MR && i + r < cols; r++) {
                                for (int c = 0; c < NR && j + c < cols; c++) a[(k1 + i + r) * n + k1 + j + c] += edge[r * NR + c];
                            }
                        }
                    }
                }
            }
        });
    }

    /** C[r, c] −= Σ_p pa[aOff + p·MR + r] · pb[bOff + p·NR + c], r < MR, c < NR, p < k. */
    static void tile(double[] pa, int aOff, double[] pb, int bOff, int k, double[] c, int cOff, int ldc) {
        if (!Kernels.vector()) {
            tileScalar(pa, aOff, pb, bOff, k, c, cOff, ldc);
            return;
        }
        int L = D.length();
        DoubleVector c00 = DoubleVector.zero(D), c01 = DoubleVector.zero(D), c10 = DoubleVector.zero(D), c11 = DoubleVector.zero(D);
        DoubleVector c20 = DoubleVector.zero(D), c21 = DoubleVector.zero(D), c30 = DoubleVector.zero(D), c31 = DoubleVector.zero(D);
        DoubleVector c40 = DoubleVector.zero(D), c41 = DoubleVector.zero(D);
        for (int p = 0; p < k; p++) {
            int ap = aOff + p * MR, bp = bOff + p * NR;
            DoubleVector b0 = DoubleVector.fromArray(D, pb, bp), b1 = DoubleVector.fromArray(D, pb, bp + L);
            DoubleVector x0 = DoubleVector.broadcast(D, pa[ap]);
            c00 = b0.fma(x0, c00); c01 = b1.fma(x0, c01);
            DoubleVector x1 = DoubleVector.broadcast(D, pa[ap + 1]);
            c10 = b0.fma(x1, c10); c11 = b1.fma(x1, c11);
            DoubleVector x2 = DoubleVector.broadcast(D, pa[ap + 2]);
            c20 = b0.fma(x2, c20); c21 = b1.fma(x2, c21);
            DoubleVector x3 = DoubleVector.broadcast(D, pa[ap + 3]);
            c30 = b0.fma(x3, c30); c31 = b1.fma(x3, c31);
            DoubleVector x4 = DoubleVector.broadcast(D, pa[ap + 4]);
            c40 = b0.fma(x4, c40); c41 = b1.fma(x4, c41);
        }
        int o = cOff;                                                    // C −= the tile, row by row (written out: with a
        DoubleVector.fromArray(D, c, o).sub(c00).intoArray(c, o);        // helper taking the vectors, C2 boxed one in the loop)
        DoubleVector.fromArray(D, c, o + L).sub(c01).intoArray(c, o + L);
        o += ldc;
        DoubleVector.fromArray(D, c, o).sub(c10).intoArray(c, o);
        DoubleVector.fromArray(D, c, o + L).sub(c11).intoArray(c, o + L);
        o += ldc;
        DoubleVector.fromArray(D, c, o).sub(c20).intoArray(c, o);
        DoubleVector.fromArray(D, c, o + L).sub(c21).intoArray(c, o + L);
        o += ldc;
        DoubleVector.fromArray(D, c, o).sub(c30).intoArray(c, o);
        DoubleVector.fromArray(D, c, o + L).sub(c31).intoArray(c, o + L);
        o += ldc;
        DoubleVector.fromArray(D, c, o).sub(c40).intoArray(c, o);
        DoubleVector.fromArray(D, c, o + L).sub(c41).intoArray(c, o + L);
    }

    /** Scalar reference of {@link #tile}. */
    static void tileScalar(double[] pa, int aOff, double[] pb, int bOff, int k, double[] c, int cOff, int ldc) {
        for (int r = 0; r < MR; r++) {
            for (int col = 0; col < NR; col++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += pa[aOff + p * MR + r] * pb[bOff + p * NR + col];
                c[cOff + r * ldc + col] -= s;
            }
        }
    }

    /** The textbook unblocked factorisation (row by row, right-looking), single-threaded: the parity tests' reference. */
    static boolean upperUnblocked(double[] a, int n) {
        for (int i = 0; i < n; i++) {
            double d = a[i * n + i];
            if (!(d > 0)) return false;
            double uii = Math.sqrt(d);
            a[i * n + i] = uii;
            for (int j = i + 1; j < n; j++) a[i * n + j] /= uii;
            for (int i2 = i + 1; i2 < n; i2++) {
                double f = a[i * n + i2];
                for (int j = i2; j < n; j++) a[i2 * n + j] -= f * a[i * n + j];
            }
        }
        return true;
    }
}
