package org.quant4j.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dense linear-algebra loops for calibrated methods (GPTQ's Hessians, Cholesky factors and lazy batch updates): a
 * float matrix product that accumulates into C (A or Aᵀ), the same with Aᵀ in double, a double axpy and dot product,
 * and GPTQ's per-column quantize step and group range across rows. Each has a scalar reference selected by
 * {@link Kernels#vector()}; {@code DenseKernelsParityTest} compares the two. Single-threaded: callers split the work (tiles of C) over {@link Parallel}.
 */
public final class DenseKernels {
    private DenseKernels() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    /** Rows of B's k dimension per pass: a (KC, 2 vectors) panel of B stays in L1 while every row of A passes it. */
    private static final int KC = 256;

    /** Rows of {@link #gemm}'s register tile: 6 rows × 2 vectors of C, 12 accumulators + 2 B vectors + 1 broadcast. */
    private static final int MR = 6;

    /** Rows of k per inner loop: nesting the k loop (a manual strip) keeps C2 from hoisting all six broadcasts and spilling
     *  five accumulators, as it did with the Parallel collector (no loop strip mining): 36 against 69 GFLOP/s. */
    private static final int KR = 64;

    /**
     * C[i, j] += alpha · Σ_p A[i, p] · B[p, j] for i < m, j < n, p < k; row-major matrices at the given offsets with
     * leading dimensions (row strides) lda, ldb, ldc. GPTQ's batch products (k up to the layer's width).
     */
    public static void gemm(int m, int n, int k, float alpha, float[] a, int aOff, int lda,
                            float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        if (!Kernels.vector()) {
            gemmScalar(0, m, 0, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
            return;
        }
        if (m <= 0 || n <= 0 || k <= 0) return;
        int L = F.length(), w = 2 * L, strips = (n + w - 1) / w;
        // For each KC slice of k and each strip of 2 vectors of columns, B's (kc, w) panel is packed once, contiguous and
        // zero-padded past n (B's rows are often a power of two apart, which would map them all onto one L1 set), and
        // every group of MR rows of A passes it, read along its rows. A tile that crosses C's edge goes through a buffer.
        int kc0 = Math.min(k, KC);
        float[] bPack = new float[kc0 * w];                              // (kc, w)
        float[] edge = new float[MR * w];                                // (MR, w)
        float[] aEdge = new float[MR * kc0];                             // (MR, kc) the last rows of A, zero past m
        for (int p0 = 0; p0 < k; p0 += KC) {
            int kc = Math.min(k, p0 + KC) - p0;
            for (int s = 0; s < strips; s++) {
                int j = s * w, valid = Math.min(w, n - j);
                for (int p = 0, dst = 0; p < kc; p++, dst += w) {
                    int src = bOff + (p0 + p) * ldb + j;
                    if (valid == w) {
                        FloatVector.fromArray(F, b, src).intoArray(bPack, dst);
                        FloatVector.fromArray(F, b, src + L).intoArray(bPack, dst + L);
                    } else {
                        for (int q = 0; q < w; q++) bPack[dst + q] = q < valid ? b[src + q] : 0f;
                    }
                }
                for (int i = 0; i < m; i += MR) {
                    int rows = Math.min(MR, m - i);
                    if (rows == MR && valid == w) {
                        tile6x16(a, aOff + i * lda + p0, lda, bPack, kc, alpha, c, cOff + i * ldc + j, ldc);
                        continue;
                    }
                    java.util.Arrays.fill(aEdge, 0f);
                    for (int r = 0; r < rows; r++) System.arraycopy(a, aOff + (i + r) * lda + p0, aEdge, r * kc, kc);
                    java.util.Arrays.fill(edge, 0f);
                    tile6x16(aEdge, 0, kc, bPack, kc, alpha, edge, 0, w);
                    for (int r = 0; r < rows; r++) {
                        for (int q = 0; q < valid; q++) c[cOff + (i + r) * ldc + j + q] += edge[r * w + q];
                    }
                }
            }
        }
    }

    /** C[r, q] += alpha · Σ_p a[aOff + r·lda + p] · bPack[p·w + q] for r < MR, q < w = 2 vectors, p < kc. */
    private static void tile6x16(float[] a, int aOff, int lda, float[] bPack, int kc, float alpha, float[] c, int cOff, int ldc) {
        int L = F.length();
        FloatVector c00 = FloatVector.zero(F), c01 = FloatVector.zero(F), c10 = FloatVector.zero(F), c11 = FloatVector.zero(F);
        FloatVector c20 = FloatVector.zero(F), c21 = FloatVector.zero(F), c30 = FloatVector.zero(F), c31 = FloatVector.zero(F);
        FloatVector c40 = FloatVector.zero(F), c41 = FloatVector.zero(F), c50 = FloatVector.zero(F), c51 = FloatVector.zero(F);
        for (int p0 = 0; p0 < kc; p0 += KR) {
            for (int p = p0, pe = Math.min(kc, p0 + KR), ap = aOff + p0, bp = p0 * 2 * L; p < pe; p++, ap++, bp += 2 * L) {
                FloatVector b0 = FloatVector.fromArray(F, bPack, bp), b1 = FloatVector.fromArray(F, bPack, bp + L);
                FloatVector x = FloatVector.broadcast(F, a[ap]);
                c00 = b0.fma(x, c00); c01 = b1.fma(x, c01);
                x = FloatVector.broadcast(F, a[ap + lda]);
                c10 = b0.fma(x, c10); c11 = b1.fma(x, c11);
                x = FloatVector.broadcast(F, a[ap + 2 * lda]);
                c20 = b0.fma(x, c20); c21 = b1.fma(x, c21);
                x = FloatVector.broadcast(F, a[ap + 3 * lda]);
                c30 = b0.fma(x, c30); c31 = b1.fma(x, c31);
                x = FloatVector.broadcast(F, a[ap + 4 * lda]);
                c40 = b0.fma(x, c40); c41 = b1.fma(x, c41);
                x = FloatVector.broadcast(F, a[ap + 5 * lda]);
                c50 = b0.fma(x, c50); c51 = b1.fma(x, c51);
            }
        }
        FloatVector al = FloatVector.broadcast(F, alpha);                // C += alpha · the tile, written out row by row
        int o = cOff;                                                    // (through a helper taking the vectors, C2 boxed them)
        c00.fma(al, FloatVector.fromArray(F, c, o)).intoArray(c, o); c01.fma(al, FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
        o += ldc;
        c10.fma(al, FloatVector.fromArray(F, c, o)).intoArray(c, o); c11.fma(al, FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
        o += ldc;
        c20.fma(al, FloatVector.fromArray(F, c, o)).intoArray(c, o); c21.fma(al, FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
        o += ldc;
        c30.fma(al, FloatVector.fromArray(F, c, o)).intoArray(c, o); c31.fma(al, FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
        o += ldc;
        c40.fma(al, FloatVector.fromArray(F, c, o)).intoArray(c, o); c41.fma(al, FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
        o += ldc;
        c50.fma(al, FloatVector.fromArray(F, c, o)).intoArray(c, o); c51.fma(al, FloatVector.fromArray(F, c, o + L)).intoArray(c, o + L);
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
                    for (int q = 0; q < kc; q += KR) {                   // nested as in tile6x16 (see KR)
                        for (int p = q, pe = Math.min(kc, q + KR), ap = i * kc + 4 * q, bp = q * w; p < pe; p++, ap += 4, bp += w) {
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

    // ---- GPTQ's column step across rows -------------------------------------------------------------------------

    /** 1.5 · 2²³: (y + RINT) − RINT is y rounded to an integer, half to even, for |y| < 2²². */
    private static final float RINT = 12582912f;

    /**
     * GPTQ's quantize step on one column, across n rows: for each r < n, with x = w[wOff + r], s = scale[sOff + r] and
     * z = zero[sOff + r], the code q = clamp(rint(x / s) + z, 0, maxq) (round half to even), the dequantized value
     * deq = s·(q − z) and the error e = (x − deq) / d go to q[qOff + r], deq[dOff + r] and err[eOff + r]. Returns Σ e²
     * (the scalar path sums in double, the vector path per lane in float, then in double).
     */
    public static double quantizeColumn(int n, float[] w, int wOff, float[] scale, float[] zero, int sOff, float maxq, float d,
                                        float[] q, int qOff, float[] deq, int dOff, float[] err, int eOff) {
        int r = 0;
        double loss = 0;
        if (Kernels.vector()) {
            int L = F.length();
            FloatVector magic = FloatVector.broadcast(F, RINT), big = FloatVector.broadcast(F, 4194304f);   // 2²²
            FloatVector zeroV = FloatVector.zero(F), maxV = FloatVector.broadcast(F, maxq), dv = FloatVector.broadcast(F, d);
            FloatVector acc = FloatVector.zero(F);
            for (; r + L <= n; r += L) {
                FloatVector x = FloatVector.fromArray(F, w, wOff + r), s = FloatVector.fromArray(F, scale, sOff + r);
                FloatVector z = FloatVector.fromArray(F, zero, sOff + r);
                FloatVector y = x.div(s);
                // |y| ≥ 2²² is an integer or far outside [−maxq, 2·maxq] (saturates either way): y itself then
                FloatVector rounded = y.add(magic).sub(magic).blend(y, y.abs().compare(jdk.incubator.vector.VectorOperators.GE, big));
                FloatVector qv = rounded.add(z).max(zeroV).min(maxV);
                FloatVector dq = s.mul(qv.sub(z));
                FloatVector e = x.sub(dq).div(dv);
                qv.intoArray(q, qOff + r);
                dq.intoArray(deq, dOff + r);
                e.intoArray(err, eOff + r);
                acc = e.fma(e, acc);
            }
            for (int l = 0; l < L; l++) loss += acc.lane(l);
        }
        for (; r < n; r++) {
            float x = w[wOff + r], s = scale[sOff + r], z = zero[sOff + r];
            float qv = Math.clamp((float) Math.rint(x / s) + z, 0f, maxq);
            float dq = s * (qv - z);
            float e = (x - dq) / d;
            q[qOff + r] = qv;
            deq[dOff + r] = dq;
            err[eOff + r] = e;
            loss += (double) e * e;
        }
        return loss;
    }

    /**
     * min[r] = min(0, x[xOff + c·ld + r] over c < count) and max[r] likewise (with 0), r < n: the range GPTQ's grid
     * takes for each row of a group whose columns are stored as rows of x (count of them, ld apart).
     */
    public static void columnRange(int n, int count, float[] x, int xOff, int ld, float[] min, float[] max) {
        int r = 0;
        if (Kernels.vector()) {
            int L = F.length();
            for (; r + L <= n; r += L) {
                FloatVector lo = FloatVector.zero(F), hi = FloatVector.zero(F);
                for (int c = 0; c < count; c++) {
                    FloatVector v = FloatVector.fromArray(F, x, xOff + c * ld + r);
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
                lo.intoArray(min, r);
                hi.intoArray(max, r);
            }
        }
        for (; r < n; r++) {
            float lo = 0, hi = 0;
            for (int c = 0; c < count; c++) {
                lo = Math.min(lo, x[xOff + c * ld + r]);
                hi = Math.max(hi, x[xOff + c * ld + r]);
            }
            min[r] = lo;
            max[r] = hi;
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
