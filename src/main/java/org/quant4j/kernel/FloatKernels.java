package org.quant4j.kernel;

import jdk.incubator.vector.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Dot products of a weight row stored as F32, F16 or BF16 with an F32 activation vector, and the float helpers the
 * forward pass needs. Each has a scalar reference ({@code *Scalar}) and a Vector API version; F16 and BF16 are
 * widened to F32 in registers.
 */
public final class FloatKernels {
    private FloatKernels() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Int lanes matching F's width, for bit-level widening of 16-bit floats. */
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    /** Half-width short species: F.length() shorts, widened to F.length() ints. */
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    // ---- deterministic horizontal sum ---------------------------------------------------------------------------

    /** Lane permutations that swap neighbouring blocks of 1, 2, 4, ... lanes. */
    private static final VectorShuffle<Float>[] SWAPS = swaps();
    /** The same permutations as constants of their own (exact classes for the JIT); null where longer than F. */
    private static final VectorShuffle<Float> SWAP1 = swap(1), SWAP2 = swap(2), SWAP4 = swap(4), SWAP8 = swap(8);

    private static VectorShuffle<Float> swap(int step) {
        return step < F.length() ? SWAPS[Integer.numberOfTrailingZeros(step)] : null;
    }

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] swaps() {
        int L = F.length();
        VectorShuffle<Float>[] out = new VectorShuffle[Integer.numberOfTrailingZeros(L) + 1];
        for (int step = 1; step < L; step *= 2) {
            int[] idx = new int[L];
            for (int i = 0; i < L; i++) idx[i] = i ^ step;
            out[Integer.numberOfTrailingZeros(step)] = VectorShuffle.fromArray(F, idx, 0);
        }
        return out;
    }

    /**
     * Σ of the lanes in a fixed pairwise order. {@code reduceLanes(ADD)} may add in another order once the JIT has
     * compiled it than before, which makes results differ in the last bit between otherwise identical runs; this does
     * not, so a model gives the same logits however warm the JVM is.
     */
    public static float sum(FloatVector v) {
        // written out rather than as a loop over SWAPS: a loop-carried vector, or a shuffle loaded from an array,
        // has no exact class for C2, so in a kernel compiled before this method has a type profile (the first kernel
        // a JVM runs) the rearranges stayed virtual calls into the Java fallback, about 1 µs per call. Same order.
        if (F.length() > 16) {
            for (int step = F.length() / 2; step >= 1; step /= 2) v = v.add(v.rearrange(SWAPS[Integer.numberOfTrailingZeros(step)]));
            return v.lane(0);
        }
        if (F.length() > 8) v = v.add(v.rearrange(SWAP8));
        if (F.length() > 4) v = v.add(v.rearrange(SWAP4));
        if (F.length() > 2) v = v.add(v.rearrange(SWAP2));
        if (F.length() > 1) v = v.add(v.rearrange(SWAP1));
        return v.lane(0);
    }

    // ---- F32 -------------------------------------------------------------------------------------------------

    /** sum_i w[off/4 + i] * x[xOff + i], w stored F32 at byte offset {@code off}. */
    public static float dotF32Scalar(MemorySegment w, long off, float[] x, int xOff, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += w.get(F32, off + 4L * i) * x[xOff + i];
        return s;
    }

    public static float dotF32(MemorySegment w, long off, float[] x, int xOff, int n) {
        int L = F.length();
        int upper = n - n % (4 * L);
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        int i = 0;
        for (; i < upper; i += 4 * L) {
            a0 = FloatVector.fromMemorySegment(F, w, off + 4L * i, LE).fma(FloatVector.fromArray(F, x, xOff + i), a0);
            a1 = FloatVector.fromMemorySegment(F, w, off + 4L * (i + L), LE).fma(FloatVector.fromArray(F, x, xOff + i + L), a1);
            a2 = FloatVector.fromMemorySegment(F, w, off + 4L * (i + 2 * L), LE).fma(FloatVector.fromArray(F, x, xOff + i + 2 * L), a2);
            a3 = FloatVector.fromMemorySegment(F, w, off + 4L * (i + 3 * L), LE).fma(FloatVector.fromArray(F, x, xOff + i + 3 * L), a3);
        }
        for (; i + L <= n; i += L) {
            a0 = FloatVector.fromMemorySegment(F, w, off + 4L * i, LE).fma(FloatVector.fromArray(F, x, xOff + i), a0);
        }
        float s = sum(a0.add(a1).add(a2.add(a3)));
        for (; i < n; i++) s += w.get(F32, off + 4L * i) * x[xOff + i];
        return s;
    }

    // ---- F16 -------------------------------------------------------------------------------------------------

    public static float dotF16Scalar(MemorySegment w, long off, float[] x, int xOff, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += Float.float16ToFloat(w.get(I16, off + 2L * i)) * x[xOff + i];
        return s;
    }

    /** IEEE half bits (in the low 16 bits of each int lane) to float, exactly, subnormals and inf/NaN included. */
    static FloatVector halfToFloat(IntVector h) {
        IntVector h16 = h.and(0xffff);
        IntVector magnitude = h16.and(0x7fff).lanewise(VectorOperators.LSHL, 13);
        // (e, m) scaled by 2^112 rebias the exponent from 15 to 127 and normalise subnormals exactly
        FloatVector finite = magnitude.reinterpretAsFloats().mul(0x1p112f);
        VectorMask<Integer> infNan = h16.and(0x7c00).compare(VectorOperators.EQ, 0x7c00);
        IntVector bits = finite.reinterpretAsInts().blend(magnitude.or(0x7f800000), infNan);
        return bits.or(h16.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    static FloatVector loadF16(MemorySegment w, long byteOff) {
        ShortVector s = ShortVector.fromMemorySegment(S, w, byteOff, LE);
        return halfToFloat((IntVector) s.convertShape(VectorOperators.S2I, I, 0));
    }

    /**
     * Half bits in the low 16 bits of each lane → float, exact for finite values (normals and subnormals: the magnitude
     * shifted into float position and scaled by 2^112 rebiases the exponent from 15 to 127). Infinities and NaNs are
     * not handled here: callers track the largest magnitude and fall back to the scalar path when one occurs.
     */
    static FloatVector finiteHalfToFloat(IntVector h, IntVector magnitude) {
        return magnitude.lanewise(VectorOperators.LSHL, 13).or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16))
                .reinterpretAsFloats().mul(0x1p112f);
    }

    public static float dotF16(MemorySegment w, long off, float[] x, int xOff, int n) {
        int L = F.length();
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        IntVector maxMagnitude = IntVector.zero(I);
        int i = 0;
        for (; i + 2 * L <= n; i += 2 * L) {
            IntVector h0 = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
            IntVector h1 = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * (i + L), LE).convertShape(VectorOperators.S2I, I, 0);
            IntVector m0 = h0.and(0x7fff), m1 = h1.and(0x7fff);
            maxMagnitude = maxMagnitude.max(m0).max(m1);
            a0 = finiteHalfToFloat(h0, m0).fma(FloatVector.fromArray(F, x, xOff + i), a0);
            a1 = finiteHalfToFloat(h1, m1).fma(FloatVector.fromArray(F, x, xOff + i + L), a1);
        }
        if (maxMagnitude.reduceLanes(VectorOperators.MAX) >= 0x7c00) {
            return dotF16Scalar(w, off, x, xOff, n); // an infinity or NaN in this row: take the exact path
        }
        for (; i + L <= n; i += L) a0 = loadF16(w, off + 2L * i).fma(FloatVector.fromArray(F, x, xOff + i), a0);
        float s = sum(a0.add(a1));
        for (; i < n; i++) s += Float.float16ToFloat(w.get(I16, off + 2L * i)) * x[xOff + i];
        return s;
    }

    // ---- BF16 ------------------------------------------------------------------------------------------------

    public static float bf16ToFloat(short b) { return Float.intBitsToFloat((b & 0xffff) << 16); }

    public static float dotBF16Scalar(MemorySegment w, long off, float[] x, int xOff, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += bf16ToFloat(w.get(I16, off + 2L * i)) * x[xOff + i];
        return s;
    }

    static FloatVector loadBF16(MemorySegment w, long byteOff) {
        ShortVector s = ShortVector.fromMemorySegment(S, w, byteOff, LE);
        IntVector v = (IntVector) s.convertShape(VectorOperators.S2I, I, 0);
        return v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    public static float dotBF16(MemorySegment w, long off, float[] x, int xOff, int n) {
        int L = F.length();
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        int i = 0;
        for (; i + 2 * L <= n; i += 2 * L) {
            a0 = loadBF16(w, off + 2L * i).fma(FloatVector.fromArray(F, x, xOff + i), a0);
            a1 = loadBF16(w, off + 2L * (i + L)).fma(FloatVector.fromArray(F, x, xOff + i + L), a1);
        }
        for (; i + L <= n; i += L) a0 = loadBF16(w, off + 2L * i).fma(FloatVector.fromArray(F, x, xOff + i), a0);
        float s = sum(a0.add(a1));
        for (; i < n; i++) s += bf16ToFloat(w.get(I16, off + 2L * i)) * x[xOff + i];
        return s;
    }

    // ---- float-array helpers ---------------------------------------------------------------------------------

    /** sum_i a[aOff+i] * b[bOff+i] */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        if (!Kernels.vector()) {
            float s = 0;
            for (int i = 0; i < n; i++) s += a[aOff + i] * b[bOff + i];
            return s;
        }
        int L = F.length();
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (; i + L <= n; i += L) acc = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc);
        float s = sum(acc);
        for (; i < n; i++) s += a[aOff + i] * b[bOff + i];
        return s;
    }

    /**
     * Four dot products at once: out[outOff + k·stride] = w[k·n ..][0, n) · x[xOff ..] for k = 0..3, each activation
     * vector loaded once for four weight rows (prompt processing).
     */
    public static void dot4(float[] w, int n, float[] x, int xOff, float[] out, int outOff, int stride) {
        if (!Kernels.vector()) {
            for (int k = 0; k < 4; k++) out[outOff + k * stride] = dot(w, k * n, x, xOff, n);
            return;
        }
        int L = F.length();
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector xv = FloatVector.fromArray(F, x, xOff + i);
            a0 = FloatVector.fromArray(F, w, i).fma(xv, a0);
            a1 = FloatVector.fromArray(F, w, n + i).fma(xv, a1);
            a2 = FloatVector.fromArray(F, w, 2 * n + i).fma(xv, a2);
            a3 = FloatVector.fromArray(F, w, 3 * n + i).fma(xv, a3);
        }
        float s0 = sum(a0), s1 = sum(a1);
        float s2 = sum(a2), s3 = sum(a3);
        for (; i < n; i++) {
            float xi = x[xOff + i];
            s0 += w[i] * xi; s1 += w[n + i] * xi; s2 += w[2 * n + i] * xi; s3 += w[3 * n + i] * xi;
        }
        out[outOff] = s0;
        out[outOff + stride] = s1;
        out[outOff + 2 * stride] = s2;
        out[outOff + 3 * stride] = s3;
    }

    /**
     * {@link #dot4} for two activation vectors at once (x at xOff and xOff + n): out[outOff + k·stride] and
     * out[outOff + outStep + k·stride], each weight vector loaded once for two tokens. Every result has the same
     * accumulation order as dot4's, so the two give identical bits.
     */
    public static void dot4x2(float[] w, int n, float[] x, int xOff, float[] out, int outOff, int stride, int outStep) {
        if (!Kernels.vector()) {
            dot4(w, n, x, xOff, out, outOff, stride);
            dot4(w, n, x, xOff + n, out, outOff + outStep, stride);
            return;
        }
        int L = F.length();
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        FloatVector b0 = FloatVector.zero(F), b1 = FloatVector.zero(F), b2 = FloatVector.zero(F), b3 = FloatVector.zero(F);
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector xa = FloatVector.fromArray(F, x, xOff + i), xb = FloatVector.fromArray(F, x, xOff + n + i);
            FloatVector w0 = FloatVector.fromArray(F, w, i), w1 = FloatVector.fromArray(F, w, n + i);
            FloatVector w2 = FloatVector.fromArray(F, w, 2 * n + i), w3 = FloatVector.fromArray(F, w, 3 * n + i);
            a0 = w0.fma(xa, a0); a1 = w1.fma(xa, a1); a2 = w2.fma(xa, a2); a3 = w3.fma(xa, a3);
            b0 = w0.fma(xb, b0); b1 = w1.fma(xb, b1); b2 = w2.fma(xb, b2); b3 = w3.fma(xb, b3);
        }
        float s0 = sum(a0), s1 = sum(a1), s2 = sum(a2), s3 = sum(a3);
        float t0 = sum(b0), t1 = sum(b1), t2 = sum(b2), t3 = sum(b3);
        for (; i < n; i++) {
            float xi = x[xOff + i], yi = x[xOff + n + i];
            s0 += w[i] * xi; s1 += w[n + i] * xi; s2 += w[2 * n + i] * xi; s3 += w[3 * n + i] * xi;
            t0 += w[i] * yi; t1 += w[n + i] * yi; t2 += w[2 * n + i] * yi; t3 += w[3 * n + i] * yi;
        }
        out[outOff] = s0; out[outOff + stride] = s1; out[outOff + 2 * stride] = s2; out[outOff + 3 * stride] = s3;
        int o = outOff + outStep;
        out[o] = t0; out[o + stride] = t1; out[o + 2 * stride] = t2; out[o + 3 * stride] = t3;
    }

    /** y[yOff+i] += alpha * x[xOff+i] */
    public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        if (Kernels.vector()) {
            int L = F.length();
            FloatVector va = FloatVector.broadcast(F, alpha);
            for (; i + L <= n; i += L) {
                FloatVector.fromArray(F, x, xOff + i).fma(va, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
            }
        }
        for (; i < n; i++) y[yOff + i] += alpha * x[xOff + i];
    }

    // ---- attention: scores and the weighted sum of values --------------------------------------------------------

    /**
     * s[sOff + t] = {@link #dot}(q[qOff ..], k[kOff + t·stride ..], n) · scale for t < count, bit for bit, and returns
     * their maximum (the first loop of attention). The vector path runs four keys' dot products side by side (four
     * independent fused multiply-add chains instead of one) and sums each as {@link #dot} does.
     */
    public static float scaledDots(float[] q, int qOff, float[] k, int kOff, int stride, int count, int n, float scale, float[] s, int sOff) {
        float max = Float.NEGATIVE_INFINITY;
        int L = F.length(), t = 0;
        if (Kernels.vector()) {
            int nv = n - n % L;
            for (; t + 4 <= count; t += 4) {
                int k0 = kOff + t * stride, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride;
                FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
                for (int i = 0; i < nv; i += L) {
                    FloatVector qv = FloatVector.fromArray(F, q, qOff + i);
                    a0 = qv.fma(FloatVector.fromArray(F, k, k0 + i), a0);
                    a1 = qv.fma(FloatVector.fromArray(F, k, k1 + i), a1);
                    a2 = qv.fma(FloatVector.fromArray(F, k, k2 + i), a2);
                    a3 = qv.fma(FloatVector.fromArray(F, k, k3 + i), a3);
                }
                float s0 = sum(a0), s1 = sum(a1), s2 = sum(a2), s3 = sum(a3);
                for (int i = nv; i < n; i++) {
                    s0 += q[qOff + i] * k[k0 + i];
                    s1 += q[qOff + i] * k[k1 + i];
                    s2 += q[qOff + i] * k[k2 + i];
                    s3 += q[qOff + i] * k[k3 + i];
                }
                s[sOff + t] = s0 * scale;
                s[sOff + t + 1] = s1 * scale;
                s[sOff + t + 2] = s2 * scale;
                s[sOff + t + 3] = s3 * scale;
            }
        }
        for (; t < count; t++) s[sOff + t] = dot(q, qOff, k, kOff + t * stride, n) * scale;
        for (t = 0; t < count; t++) if (s[sOff + t] > max) max = s[sOff + t];
        return max;
    }

    /**
     * out[outOff, outOff + n) = 0, then {@link #axpy}(p[pOff + t]·mul, v[vOff + t·stride ..], out[outOff ..], n) for
     * t = 0 … count − 1 in order, bit for bit (the weighted sum of attention's values). The vector path keeps up to 8
     * vectors of the sum in registers across all t instead of reading and writing them back for each t.
     */
    public static void weightedSum(float[] p, int pOff, float mul, int count, float[] v, int vOff, int stride, float[] out, int outOff, int n) {
        if (!Kernels.vector()) {
            java.util.Arrays.fill(out, outOff, outOff + n, 0f);   // the vector path below writes every element itself
            for (int t = 0; t < count; t++) axpy(p[pOff + t] * mul, v, vOff + t * stride, out, outOff, n);
            return;
        }
        int L = F.length(), nv = n - n % L, i0 = 0;
        for (; i0 + 8 * L <= nv; i0 += 8 * L) {
            FloatVector y0 = FloatVector.zero(F), y1 = FloatVector.zero(F), y2 = FloatVector.zero(F), y3 = FloatVector.zero(F);
            FloatVector y4 = FloatVector.zero(F), y5 = FloatVector.zero(F), y6 = FloatVector.zero(F), y7 = FloatVector.zero(F);
            for (int t = 0; t < count; t++) {
                FloatVector a = FloatVector.broadcast(F, p[pOff + t] * mul);
                int x = vOff + t * stride + i0;
                y0 = FloatVector.fromArray(F, v, x).fma(a, y0);
                y1 = FloatVector.fromArray(F, v, x + L).fma(a, y1);
                y2 = FloatVector.fromArray(F, v, x + 2 * L).fma(a, y2);
                y3 = FloatVector.fromArray(F, v, x + 3 * L).fma(a, y3);
                y4 = FloatVector.fromArray(F, v, x + 4 * L).fma(a, y4);
                y5 = FloatVector.fromArray(F, v, x + 5 * L).fma(a, y5);
                y6 = FloatVector.fromArray(F, v, x + 6 * L).fma(a, y6);
                y7 = FloatVector.fromArray(F, v, x + 7 * L).fma(a, y7);
            }
            int o = outOff + i0;
            y0.intoArray(out, o); y1.intoArray(out, o + L); y2.intoArray(out, o + 2 * L); y3.intoArray(out, o + 3 * L);
            y4.intoArray(out, o + 4 * L); y5.intoArray(out, o + 5 * L); y6.intoArray(out, o + 6 * L); y7.intoArray(out, o + 7 * L);
        }
        for (; i0 < nv; i0 += L) {
            FloatVector y = FloatVector.zero(F);
            for (int t = 0; t < count; t++) y = FloatVector.fromArray(F, v, vOff + t * stride + i0).fma(FloatVector.broadcast(F, p[pOff + t] * mul), y);
            y.intoArray(out, outOff + i0);
        }
        for (int i = nv; i < n; i++) {
            float y = 0;
            for (int t = 0; t < count; t++) y += p[pOff + t] * mul * v[vOff + t * stride + i];
            out[outOff + i] = y;
        }
    }
}
