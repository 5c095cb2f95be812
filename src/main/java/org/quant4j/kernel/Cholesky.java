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
 * Both O(n² nb) and O(n³) parts run on one register tile: an MR × NR block of C (4 × 2 DoubleVectors, 8 accumulators)
 * stays in registers while the k loop reads two packed slivers sequentially, (k, MR) and (k, NR) contiguous. The
 * forward substitution solves MR rows of a strip at a time (the rows above them through the tile, against U11 packed
 * by columns, then the MR × MR triangle) and writes the solved rows straight into the slivers the syrk reads, so U12 is
 * packed once per panel. The syrk hands columns out to the threads in blocks of {@link #NC}, widest work first, from a
 * shared counter (a descheduled thread on a shared machine does not hold the others up); inside a block, rows go by
 * {@link #MC} so the A slivers stay in L2 while each B sliver sits in L1. {@link #tileScalar} is the tile's reference
 * under {@link Kernels#vector()} false; {@link #upperUnblocked} the textbook loop the parity tests compare with.
 */
public final class Cholesky {
    private Cholesky() {}

    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    /** Rows per panel (the syrk's k); rows and columns of a register tile; columns per work unit; rows per L2 block. */
    static final int NB = 128, MR = 4, NR = 2 * D.length(), NC = 8 * NR, MC = 128;

    /** Factors a in place; false (a partly overwritten) when A is not positive definite. */
    public static boolean upper(double[] a, int n) {
        double[] packU = new double[NB * NB];                            // (nb / MR, nb, MR) slivers of U11's columns
        double[] packA = new double[NB * round(n, NR)];                 // (n / MR, nb, MR) slivers of U12's columns
        double[] packB = new double[NB * round(n, NR)];                 // (n / NR, nb, NR)
        for (int k0 = 0; k0 < n; k0 += NB) {
            final int k1 = Math.min(k0 + NB, n), nb = k1 - k0, panel = k0;
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
                for (int s = 0; s < NR / MR; s++) System.arraycopy(x, r * NR + s * MR, packA, (c / MR + s) * nb * MR + (i + r) * MR, MR);
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
                for (int i0 = 0; i0 < j1; i0 += MC) {
                    int i1 = Math.min(Math.min(i0 + MC, j1), cols);
                    for (int j = j0; j < j1; j += NR) {
                        int bOff = (j / NR) * nb * NR;
                        for (int i = i0; i < Math.min(i1, j + NR); i += MR) {
                            int aOff = (i / MR) * nb * MR;
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
        for (int p = 0, ap = aOff, bp = bOff; p < k; p++, ap += MR, bp += NR) {
            DoubleVector b0 = DoubleVector.fromArray(D, pb, bp), b1 = DoubleVector.fromArray(D, pb, bp + L);
            DoubleVector x = DoubleVector.broadcast(D, pa[ap]);
            c00 = b0.fma(x, c00); c01 = b1.fma(x, c01);
            x = DoubleVector.broadcast(D, pa[ap + 1]);
            c10 = b0.fma(x, c10); c11 = b1.fma(x, c11);
            x = DoubleVector.broadcast(D, pa[ap + 2]);
            c20 = b0.fma(x, c20); c21 = b1.fma(x, c21);
            x = DoubleVector.broadcast(D, pa[ap + 3]);
            c30 = b0.fma(x, c30); c31 = b1.fma(x, c31);
        }
        subtract(c00, c01, c, cOff, L);
        subtract(c10, c11, c, cOff + ldc, L);
        subtract(c20, c21, c, cOff + 2 * ldc, L);
        subtract(c30, c31, c, cOff + 3 * ldc, L);
    }

    private static void subtract(DoubleVector v0, DoubleVector v1, double[] c, int off, int L) {
        DoubleVector.fromArray(D, c, off).sub(v0).intoArray(c, off);
        DoubleVector.fromArray(D, c, off + L).sub(v1).intoArray(c, off + L);
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
