package org.quant4j.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dense linear-algebra loops for calibrated methods (GPTQ's Hessians, Cholesky factors and lazy batch updates): a
 * float matrix product that accumulates into C (A or Aᵀ), the same with Aᵀ in double, a double axpy and dot product. Each has a scalar reference selected by
 * {@link Kernels#vector()}; {@code DenseKernelsParityTest} compares the two. Single-threaded: callers split the work (tiles of C) over {@link Parallel}.
 */
public final class DenseKernels {
    private DenseKernels() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    /** Rows of B's k dimension per pass: a (KC, 2 vectors) panel of B stays in L1 while every row of A passes it. */
    private static final int KC = 256;

    /**
     * C[i, j] += alpha · Σ_p A[i, p] · B[p, j] for i < m, j < n, p < k; row-major matrices at the given offsets with
     * leading dimensions (row strides) lda, ldb, ldc. GPTQ's lazy batch update (k = 128).
     */
    public static void gemm(int m, int n, int k, float alpha, float[] a, int aOff, int lda,
                            float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        if (!Kernels.vector()) {
            gemmScalar(0, m, 0, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
            return;
        }
        int L = F.length(), w = 2 * L;
        int m4 = m - m % 4, nw = n - n % w;
        // 4 rows × 2 vectors of C in registers; each B load serves 4 rows, each A broadcast 2 vectors. Columns outside,
        // rows inside: B's (KC, 2 vectors) panel is copied once into a contiguous buffer (B's rows are often a power of
        // two apart, which would map them all onto one L1 set) and read from L1 by every group of 4 rows.
        float[] bPack = new float[Math.min(k, KC) * w];                 // (KC, 2 vectors)
        for (int p0 = 0; p0 < k; p0 += KC) {
            int p1 = Math.min(k, p0 + KC);
            for (int j = 0; j < nw; j += w) {
                if (m4 == 0) break;
                for (int p = p0; p < p1; p++) {
                    int src = bOff + p * ldb + j, dst = (p - p0) * w;
                    FloatVector.fromArray(F, b, src).intoArray(bPack, dst);
                    FloatVector.fromArray(F, b, src + L).intoArray(bPack, dst + L);
                }
                for (int i = 0; i < m4; i += 4) {
                    int a0 = aOff + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
                    FloatVector c00 = FloatVector.zero(F), c01 = FloatVector.zero(F), c10 = FloatVector.zero(F), c11 = FloatVector.zero(F);
                    FloatVector c20 = FloatVector.zero(F), c21 = FloatVector.zero(F), c30 = FloatVector.zero(F), c31 = FloatVector.zero(F);
                    for (int p = p0, bp = 0; p < p1; p++, bp += w) {
                        FloatVector b0 = FloatVector.fromArray(F, bPack, bp), b1 = FloatVector.fromArray(F, bPack, bp + L);
                        FloatVector x = FloatVector.broadcast(F, a[a0 + p]);
                        c00 = b0.fma(x, c00); c01 = b1.fma(x, c01);
                        x = FloatVector.broadcast(F, a[a1 + p]);
                        c10 = b0.fma(x, c10); c11 = b1.fma(x, c11);
                        x = FloatVector.broadcast(F, a[a2 + p]);
                        c20 = b0.fma(x, c20); c21 = b1.fma(x, c21);
                        x = FloatVector.broadcast(F, a[a3 + p]);
                        c30 = b0.fma(x, c30); c31 = b1.fma(x, c31);
                    }
                    int c0 = cOff + i * ldc + j;
                    store(c00, c01, alpha, c, c0, L);
                    store(c10, c11, alpha, c, c0 + ldc, L);
                    store(c20, c21, alpha, c, c0 + 2 * ldc, L);
                    store(c30, c31, alpha, c, c0 + 3 * ldc, L);
                }
            }
        }
        gemmScalar(0, m4, nw, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);   // right edge
        gemmScalar(m4, m, 0, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);    // bottom rows
    }

    private static void store(FloatVector v0, FloatVector v1, float alpha, float[] c, int off, int L) {
        FloatVector a = FloatVector.broadcast(F, alpha);
        v0.fma(a, FloatVector.fromArray(F, c, off)).intoArray(c, off);
        v1.fma(a, FloatVector.fromArray(F, c, off + L)).intoArray(c, off + L);
    }

    /** Scalar reference of {@link #gemm} on rows [i0, i1) and columns [j0, j1). */
    static void gemmScalar(int i0, int i1, int j0, int j1, int k, float alpha, float[] a, int aOff, int lda,
                           float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        for (int i = i0; i < i1; i++) {
            for (int j = j0; j < j1; j++) {
                float s = 0;
                for (int p = 0; p < k; p++) s += a[aOff + i * lda + p] * b[bOff + p * ldb + j];
                c[cOff + i * ldc + j] += alpha * s;
            }
        }
    }

    /**
     * C[i, j] += alpha · Σ_p A[p, i] · B[p, j] (C += α AᵀB) for i < m, j < n, p < k, in float: GPTQ's Hessian X Xᵀ
     * with A = B = the layer inputs (tokens, cols), one tile of the symmetric product per call.
     */
    public static void gemmTN(int m, int n, int k, float alpha, float[] a, int aOff, int lda,
                              float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        if (!Kernels.vector()) {
            gemmTNScalar(0, m, 0, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
            return;
        }
        int L = F.length(), w = 2 * L;
        int m4 = m - m % 4, nw = n - n % w;
        // Both panels are packed: A's (KC, m) block as groups of 4 columns, each (KC, 4) contiguous, and B's (KC,
        // 2 vectors) panel, so the inner loop reads two sequential streams whatever the row strides are.
        float[] aPack = new float[Math.min(k, KC) * m4];                   // (m / 4, KC, 4)
        float[] bPack = new float[Math.min(k, KC) * w];                    // (KC, 2 vectors)
        for (int p0 = 0; p0 < k; p0 += KC) {
            int p1 = Math.min(k, p0 + KC), kc = p1 - p0;
            if (m4 == 0 || nw == 0) break;
            for (int p = 0; p < kc; p++) {
                int src = aOff + (p0 + p) * lda;
                for (int i = 0; i < m4; i += 4) {
                    int dst = i * kc + p * 4;
                    aPack[dst] = a[src + i]; aPack[dst + 1] = a[src + i + 1]; aPack[dst + 2] = a[src + i + 2]; aPack[dst + 3] = a[src + i + 3];
                }
            }
            for (int j = 0; j < nw; j += w) {
                for (int p = 0; p < kc; p++) {
                    int src = bOff + (p0 + p) * ldb + j;
                    FloatVector.fromArray(F, b, src).intoArray(bPack, p * w);
                    FloatVector.fromArray(F, b, src + L).intoArray(bPack, p * w + L);
                }
                for (int i = 0; i < m4; i += 4) {
                    FloatVector c00 = FloatVector.zero(F), c01 = FloatVector.zero(F), c10 = FloatVector.zero(F), c11 = FloatVector.zero(F);
                    FloatVector c20 = FloatVector.zero(F), c21 = FloatVector.zero(F), c30 = FloatVector.zero(F), c31 = FloatVector.zero(F);
                    for (int p = 0, ap = i * kc, bp = 0; p < kc; p++, ap += 4, bp += w) {
                        FloatVector b0 = FloatVector.fromArray(F, bPack, bp), b1 = FloatVector.fromArray(F, bPack, bp + L);
                        FloatVector x = FloatVector.broadcast(F, aPack[ap]);
                        c00 = b0.fma(x, c00); c01 = b1.fma(x, c01);
                        x = FloatVector.broadcast(F, aPack[ap + 1]);
                        c10 = b0.fma(x, c10); c11 = b1.fma(x, c11);
                        x = FloatVector.broadcast(F, aPack[ap + 2]);
                        c20 = b0.fma(x, c20); c21 = b1.fma(x, c21);
                        x = FloatVector.broadcast(F, aPack[ap + 3]);
                        c30 = b0.fma(x, c30); c31 = b1.fma(x, c31);
                    }
                    int c0 = cOff + i * ldc + j;
                    store(c00, c01, alpha, c, c0, L);
                    store(c10, c11, alpha, c, c0 + ldc, L);
                    store(c20, c21, alpha, c, c0 + 2 * ldc, L);
                    store(c30, c31, alpha, c, c0 + 3 * ldc, L);
                }
            }
        }
        gemmTNScalar(0, m4, nw, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        gemmTNScalar(m4, m, 0, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
    }

    /** Scalar reference of the float {@link #gemmTN} on rows [i0, i1) and columns [j0, j1). */
    static void gemmTNScalar(int i0, int i1, int j0, int j1, int k, float alpha, float[] a, int aOff, int lda,
                             float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        for (int i = i0; i < i1; i++) {
            for (int j = j0; j < j1; j++) {
                float s = 0;
                for (int p = 0; p < k; p++) s += a[aOff + p * lda + i] * b[bOff + p * ldb + j];
                c[cOff + i * ldc + j] += alpha * s;
            }
        }
    }

    /**
     * C[i, j] += alpha · Σ_p A[p, i] · B[p, j] (C += α AᵀB) in double: the panel updates of GPTQ's blocked Cholesky
     * factorisation and triangular inverse.
     */
    public static void gemmTN(int m, int n, int k, double alpha, double[] a, int aOff, int lda,
                              double[] b, int bOff, int ldb, double[] c, int cOff, int ldc) {
        if (!Kernels.vector()) {
            gemmTNScalar(0, m, 0, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
            return;
        }
        int L = D.length(), w = 2 * L;
        int m4 = m - m % 4, nw = n - n % w;
        // Both panels are packed: A's (KC, m) block as groups of 4 columns, each (KC, 4) contiguous, and B's (KC,
        // 2 vectors) panel, so the inner loop reads two sequential streams whatever the row strides are.
        double[] aPack = new double[Math.min(k, KC) * m4];                   // (m / 4, KC, 4)
        double[] bPack = new double[Math.min(k, KC) * w];                    // (KC, 2 vectors)
        for (int p0 = 0; p0 < k; p0 += KC) {
            int p1 = Math.min(k, p0 + KC), kc = p1 - p0;
            if (m4 == 0 || nw == 0) break;
            for (int p = 0; p < kc; p++) {
                int src = aOff + (p0 + p) * lda;
                for (int i = 0; i < m4; i += 4) {
                    int dst = i * kc + p * 4;
                    aPack[dst] = a[src + i]; aPack[dst + 1] = a[src + i + 1]; aPack[dst + 2] = a[src + i + 2]; aPack[dst + 3] = a[src + i + 3];
                }
            }
            for (int j = 0; j < nw; j += w) {
                for (int p = 0; p < kc; p++) {
                    int src = bOff + (p0 + p) * ldb + j;
                    DoubleVector.fromArray(D, b, src).intoArray(bPack, p * w);
                    DoubleVector.fromArray(D, b, src + L).intoArray(bPack, p * w + L);
                }
                for (int i = 0; i < m4; i += 4) {
                    DoubleVector c00 = DoubleVector.zero(D), c01 = DoubleVector.zero(D), c10 = DoubleVector.zero(D), c11 = DoubleVector.zero(D);
                    DoubleVector c20 = DoubleVector.zero(D), c21 = DoubleVector.zero(D), c30 = DoubleVector.zero(D), c31 = DoubleVector.zero(D);
                    for (int p = 0, ap = i * kc, bp = 0; p < kc; p++, ap += 4, bp += w) {
                        DoubleVector b0 = DoubleVector.fromArray(D, bPack, bp), b1 = DoubleVector.fromArray(D, bPack, bp + L);
                        DoubleVector x = DoubleVector.broadcast(D, aPack[ap]);
                        c00 = b0.fma(x, c00); c01 = b1.fma(x, c01);
                        x = DoubleVector.broadcast(D, aPack[ap + 1]);
                        c10 = b0.fma(x, c10); c11 = b1.fma(x, c11);
                        x = DoubleVector.broadcast(D, aPack[ap + 2]);
                        c20 = b0.fma(x, c20); c21 = b1.fma(x, c21);
                        x = DoubleVector.broadcast(D, aPack[ap + 3]);
                        c30 = b0.fma(x, c30); c31 = b1.fma(x, c31);
                    }
                    int c0 = cOff + i * ldc + j;
                    store(c00, c01, alpha, c, c0, L);
                    store(c10, c11, alpha, c, c0 + ldc, L);
                    store(c20, c21, alpha, c, c0 + 2 * ldc, L);
                    store(c30, c31, alpha, c, c0 + 3 * ldc, L);
                }
            }
        }
        gemmTNScalar(0, m4, nw, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        gemmTNScalar(m4, m, 0, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
    }

    private static void store(DoubleVector v0, DoubleVector v1, double alpha, double[] c, int off, int L) {
        DoubleVector a = DoubleVector.broadcast(D, alpha);
        v0.fma(a, DoubleVector.fromArray(D, c, off)).intoArray(c, off);
        v1.fma(a, DoubleVector.fromArray(D, c, off + L)).intoArray(c, off + L);
    }

    /** Scalar reference of the double {@link #gemmTN} on rows [i0, i1) and columns [j0, j1). */
    static void gemmTNScalar(int i0, int i1, int j0, int j1, int k, double alpha, double[] a, int aOff, int lda,
                             double[] b, int bOff, int ldb, double[] c, int cOff, int ldc) {
        for (int i = i0; i < i1; i++) {
            for (int j = j0; j < j1; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += a[aOff + p * lda + i] * b[bOff + p * ldb + j];
                c[cOff + i * ldc + j] += alpha * s;
            }
        }
    }

    /** y[yOff + i] += alpha · x[xOff + i] in double. */
    public static void axpy(double alpha, double[] x, int xOff, double[] y, int yOff, int n) {
        int i = 0;
        if (Kernels.vector()) {
            int L = D.length();
            DoubleVector va = DoubleVector.broadcast(D, alpha);
            for (; i + L <= n; i += L) {
                DoubleVector.fromArray(D, x, xOff + i).fma(va, DoubleVector.fromArray(D, y, yOff + i)).intoArray(y, yOff + i);
            }
        }
        for (; i < n; i++) y[yOff + i] += alpha * x[xOff + i];
    }

    /** Σ_i a[aOff + i] · b[bOff + i] in double. */
    public static double dot(double[] a, int aOff, double[] b, int bOff, int n) {
        int i = 0;
        double s = 0;
        if (Kernels.vector()) {
            int L = D.length();
            // four accumulators keep four FMA chains in flight (an FMA's latency is about four cycles)
            DoubleVector acc0 = DoubleVector.zero(D), acc1 = DoubleVector.zero(D), acc2 = DoubleVector.zero(D), acc3 = DoubleVector.zero(D);
            for (; i + 4 * L <= n; i += 4 * L) {
                acc0 = DoubleVector.fromArray(D, a, aOff + i).fma(DoubleVector.fromArray(D, b, bOff + i), acc0);
                acc1 = DoubleVector.fromArray(D, a, aOff + i + L).fma(DoubleVector.fromArray(D, b, bOff + i + L), acc1);
                acc2 = DoubleVector.fromArray(D, a, aOff + i + 2 * L).fma(DoubleVector.fromArray(D, b, bOff + i + 2 * L), acc2);
                acc3 = DoubleVector.fromArray(D, a, aOff + i + 3 * L).fma(DoubleVector.fromArray(D, b, bOff + i + 3 * L), acc3);
            }
            for (; i + L <= n; i += L) acc0 = DoubleVector.fromArray(D, a, aOff + i).fma(DoubleVector.fromArray(D, b, bOff + i), acc0);
            acc0 = acc0.add(acc1).add(acc2.add(acc3));
            for (int l = 0; l < L; l++) s += acc0.lane(l);
        }
        for (; i < n; i++) s += a[aOff + i] * b[bOff + i];
        return s;
    }
}
