package org.quant4j.method.awq;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.quant4j.format.GgmlType;
import org.quant4j.kernel.Gemm;
import org.quant4j.kernel.Kernels;
import org.quant4j.kernel.Parallel;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * AWQ's inner loops, vectorised and multithreaded: the fake quantization of the α grid (Q(W·diag(s))·diag(s)⁻¹ for
 * every layer of a scaling group, per α) and the clip search's candidate errors dᵀ G d. Each fast path has its scalar
 * reference, selected by {@link Kernels#vector()} off ({@code -Dquant4j.kernels=scalar}): the loops {@link Awq} ran
 * before, kept as they were.
 *
 * <p>The vector quantizer gives the same bits as {@link Awq#quantizeGroup}: the min / max reductions are exact in
 * any order, the division, clamp and products are the same IEEE operations lane by lane, and round-half-even
 * (Math.rint) is (x + 1.5·2²³) − 1.5·2²³ on |x| ≤ 2²² (x is clamped there first: beyond it the code clamps to the
 * grid's end either way). The clip errors go through the float GEMM ({@link Gemm}), so they differ from the scalar
 * double sums by float rounding order; the clip chosen is the same but for near-ties.
 */
final class AwqKernels {
    private AwqKernels() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_256;
    private static final int L = F.length();
    /** 1.5 · 2²³: adding and subtracting it rounds a float of magnitude ≤ 2²² to an integer, half to even. */
    private static final float MAGIC = 12582912f;
    private static final float BIG = 4194304f;                          // 2²²

    // ---- fake quantization ------------------------------------------------------------------------------------

    /** Q(W · diag(s)) · diag(s)⁻¹ for W (rows, cols), every group quantized as {@link Awq#quantizeGroup} does. */
    static float[] scaledQuantized(float[] w, int rows, int cols, float[] s, Awq.Options o) {
        float[] out = new float[rows * cols];                             // (rows, cols)
        int gs = Awq.groupLength(cols, o);
        boolean vector = Kernels.vector();
        Parallel.forRange(rows, 16, (r0, r1) -> {
            float[] buf = new float[gs];                                  // (gs) one group of W · diag(s)
            for (int r = r0; r < r1; r++) {
                for (int c0 = 0; c0 < cols; c0 += gs) {
                    int n = Math.min(gs, cols - c0), off = r * cols + c0;
                    if (vector) {
                        int i = 0;
                        for (; i + L <= n; i += L) FloatVector.fromArray(F, w, off + i).mul(FloatVector.fromArray(F, s, c0 + i)).intoArray(buf, i);
                        for (; i < n; i++) buf[i] = w[off + i] * s[c0 + i];
                        quantizeGroup(buf, 0, n, o, buf, 0);
                        i = 0;
                        for (; i + L <= n; i += L) FloatVector.fromArray(F, buf, i).div(FloatVector.fromArray(F, s, c0 + i)).intoArray(out, off + i);
                        for (; i < n; i++) out[off + i] = buf[i] / s[c0 + i];
                    } else {
                        for (int i = 0; i < n; i++) buf[i] = w[off + i] * s[c0 + i];
                        Awq.quantizeGroup(buf, 0, n, o, buf, 0, null, null);
                        for (int i = 0; i < n; i++) out[off + i] = buf[i] / s[c0 + i];
                    }
                }
            }
        });
        return out;
    }

    /**
     * {@link Awq#quantizeGroup} without codes: w[off, off+n) quantized and dequantized into deq[deqOff, ...) (which
     * may be w itself), in vectors when {@link Kernels#vector()}.
     */
    static void quantizeGroup(float[] w, int off, int n, Awq.Options o, float[] deq, int deqOff) {
        if (!Kernels.vector()) {
            Awq.quantizeGroup(w, off, n, o, deq, deqOff, null, null);
            return;
        }
        float scale, zero, qmin, qmax;
        int i = 0;
        if (o.zeroPoint()) {
            FloatVector vmax = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY), vmin = FloatVector.broadcast(F, Float.POSITIVE_INFINITY);
            for (; i + L <= n; i += L) {
                FloatVector v = FloatVector.fromArray(F, w, off + i);
                vmax = vmax.max(v);
                vmin = vmin.min(v);
            }
            float max = vmax.reduceLanes(VectorOperators.MAX), min = vmin.reduceLanes(VectorOperators.MIN);
            for (; i < n; i++) { max = Math.max(max, w[off + i]); min = Math.min(min, w[off + i]); }
            qmin = 0;
            qmax = (1 << o.bits()) - 1;
            scale = Awq.fp16(Math.max(max - min, 1e-5f) / qmax);
            zero = Math.clamp((float) -Math.rint(min / scale), 0f, qmax);
        } else {
            FloatVector vmax = FloatVector.zero(F);
            for (; i + L <= n; i += L) vmax = vmax.max(FloatVector.fromArray(F, w, off + i).abs());
            float max = vmax.reduceLanes(VectorOperators.MAX);
            for (; i < n; i++) max = Math.max(max, Math.abs(w[off + i]));
            qmin = -(1 << (o.bits() - 1));
            qmax = (1 << (o.bits() - 1)) - 1;
            scale = Awq.fp16(Math.max(max, 1e-5f) / qmax);
            zero = 0;
        }
        FloatVector vs = FloatVector.broadcast(F, scale), vz = FloatVector.broadcast(F, zero);
        FloatVector lo = FloatVector.broadcast(F, qmin), hi = FloatVector.broadcast(F, qmax);
        FloatVector big = FloatVector.broadcast(F, BIG), nbig = FloatVector.broadcast(F, -BIG), magic = FloatVector.broadcast(F, MAGIC);
        i = 0;
        for (; i + L <= n; i += L) {
            FloatVector x = FloatVector.fromArray(F, w, off + i).div(vs).max(nbig).min(big);
            FloatVector q = x.add(magic).sub(magic).add(vz).max(lo).min(hi);
            q.sub(vz).mul(vs).intoArray(deq, deqOff + i);
        }
        for (; i < n; i++) {
            float q = Math.clamp((float) Math.rint(w[off + i] / scale) + zero, qmin, qmax);
            deq[deqOff + i] = (q - zero) * scale;
        }
    }

    // ---- the clip search's errors -----------------------------------------------------------------------------

    /**
     * The clip search's candidate for one group: d[dOff, dOff+n) = Q(clamp(w_g, −max, max)) − w_g, w_g = w[off, off+n).
     * {@code cur} is scratch (n).
     */
    static void clipCandidate(float[] w, int off, int n, float max, Awq.Options o, float[] cur, float[] d, int dOff) {
        if (!Kernels.vector()) {
            for (int i = 0; i < n; i++) cur[i] = Math.clamp(w[off + i], -max, max);
            Awq.quantizeGroup(cur, 0, n, o, d, dOff, null, null);
            for (int i = 0; i < n; i++) d[dOff + i] -= w[off + i];
            return;
        }
        FloatVector hi = FloatVector.broadcast(F, max), lo = FloatVector.broadcast(F, -max);
        int i = 0;
        for (; i + L <= n; i += L) FloatVector.fromArray(F, w, off + i).max(lo).min(hi).intoArray(cur, i);
        for (; i < n; i++) cur[i] = Math.clamp(w[off + i], -max, max);
        quantizeGroup(cur, 0, n, o, d, dOff);
        i = 0;
        for (; i + L <= n; i += L) FloatVector.fromArray(F, d, dOff + i).sub(FloatVector.fromArray(F, w, off + i)).intoArray(d, dOff + i);
        for (; i < n; i++) d[dOff + i] -= w[off + i];
    }

    /**
     * G = mean_t x_g x_gᵀ (n, n) for the columns [c0, c0+n) of x (tokens, cols), summed in double in token order. The
     * vector path adds the same double products in the same order, lane by lane (a product of two floats is exact in
     * double, and no fused multiply-add is used), so it gives the same bits.
     */
    static float[] gram(float[] x, int tokens, int cols, int c0, int n) {
        double[] acc = new double[n * n];                                 // (n, n)
        if (!Kernels.vector()) {
            for (int t = 0; t < tokens; t++) {
                int xo = t * cols + c0;
                for (int i = 0; i < n; i++) {
                    double xi = x[xo + i];
                    if (xi == 0) continue;
                    for (int j = 0; j < n; j++) acc[i * n + j] += xi * x[xo + j];
                }
            }
        } else {
            int dl = D.length();
            double[] xd = new double[n];                                  // (n) one token's x_g in double
            for (int t = 0; t < tokens; t++) {
                int xo = t * cols + c0;
                for (int j = 0; j < n; j++) xd[j] = x[xo + j];
                for (int i = 0; i < n; i++) {
                    double xi = xd[i];
                    if (xi == 0) continue;
                    DoubleVector vi = DoubleVector.broadcast(D, xi);
                    int row = i * n, j = 0;
                    for (; j + dl <= n; j += dl) {
                        DoubleVector.fromArray(D, acc, row + j).add(vi.mul(DoubleVector.fromArray(D, xd, j))).intoArray(acc, row + j);
                    }
                    for (; j < n; j++) acc[row + j] += xi * xd[j];
                }
            }
        }
        float[] g = new float[n * n];
        for (int i = 0; i < n * n; i++) g[i] = (float) (acc[i] / tokens);
        return g;
    }

    /**
     * err[k] = d_kᵀ G d_k for the m vectors d (m, n) and the symmetric G (n, n). The fast path is one GEMM,
     * (G · dᵀ) (n, m) with d as the weight (its m rows shared among the threads), then m dot products; the reference
     * sums in double as {@link Awq} did.
     */
    static void quadraticForms(float[] gram, int n, float[] d, int m, double[] err, float[] scratch) {
        if (!Kernels.vector()) {
            for (int k = 0; k < m; k++) {
                int dk = k * n;
                double e = 0;
                for (int i = 0; i < n; i++) {
                    if (d[dk + i] == 0) continue;
                    double row = 0;
                    for (int j = 0; j < n; j++) row += gram[i * n + j] * d[dk + j];
                    e += d[dk + i] * row;
                }
                err[k] = e;
            }
            return;
        }
        float[] gd = scratch;                                             // (n, m) G · dᵀ
        Tensor dt = new Tensor("clip candidates", GgmlType.F32, new long[]{m, n}, MemorySegment.ofArray(d).asSlice(0, (long) m * n * Float.BYTES));
        Gemm.matmul(dt, gram, gd, n);
        Parallel.forRange(m, 64, (k0, k1) -> {
            double[] e = new double[64];
            for (int b0 = k0; b0 < k1; b0 += 64) {                      // 64 vectors at a time: rows of gd read in runs
                int b1 = Math.min(k1, b0 + 64);
                java.util.Arrays.fill(e, 0);
                for (int i = 0; i < n; i++) {
                    for (int k = b0; k < b1; k++) e[k - b0] += (double) d[k * n + i] * gd[i * m + k];
                }
                System.arraycopy(e, 0, err, b0, b1 - b0);
            }
        });
    }
}
