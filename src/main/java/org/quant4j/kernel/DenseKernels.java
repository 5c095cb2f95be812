package org.quant4j.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dense linear-algebra loops for calibrated methods (GPTQ's Hessians, Cholesky factors and lazy batch updates): a
 * float matrix product that accumulates into C, and a double dot product. Each has a scalar reference selected by
 * {@link Kernels#vector()}; {@code DenseKernelsParityTest} compares the two. Single-threaded: callers split rows.
 */
public final class DenseKernels {
    private DenseKernels() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    /**
     * C[i, j] += alpha · Σ_p A[i, p] · B[p, j] for i < m, j < n, p < k; row-major matrices at the given offsets with
     * leading dimensions (row strides) lda, ldb, ldc.
     */
    public static void gemm(int m, int n, int k, float alpha, float[] a, int aOff, int lda,
                            float[] b, int bOff, int ldb, float[] c, int cOff, int ldc) {
        if (!Kernels.vector()) {
            gemmScalar(0, m, 0, n, k, alpha, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
            return;
        }
        int L = F.length(), w = 2 * L;
        int m4 = m - m % 4, nw = n - n % w;
        // 4 rows × 2 vectors of C in registers; each B load serves 4 rows, each A broadcast 2 vectors
        for (int i = 0; i < m4; i += 4) {
            int a0 = aOff + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            for (int j = 0; j < nw; j += w) {
                FloatVector c00 = FloatVector.zero(F), c01 = FloatVector.zero(F), c10 = FloatVector.zero(F), c11 = FloatVector.zero(F);
                FloatVector c20 = FloatVector.zero(F), c21 = FloatVector.zero(F), c30 = FloatVector.zero(F), c31 = FloatVector.zero(F);
                int bp = bOff + j;
                for (int p = 0; p < k; p++, bp += ldb) {
                    FloatVector b0 = FloatVector.fromArray(F, b, bp), b1 = FloatVector.fromArray(F, b, bp + L);
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
