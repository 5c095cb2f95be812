package org.quant4j.kernel;

import jdk.incubator.vector.*;
import org.quant4j.format.GgmlType;
import org.quant4j.format.ggml.BlockCodec;
import org.quant4j.format.ggml.GgmlCodecs;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static jdk.incubator.vector.VectorOperators.*;

/**
 * Integer dot products of one row of ggml blocks with activations quantized once per matmul ({@link Q8Activations}),
 * the way llama.cpp's {@code ggml_vec_dot_*_q8_*} work: inside a (sub-)block the weight codes times the activation codes
 * are summed in integers, and that sum is scaled once by d_w·d_x; offsets and minimums are applied through the sums of
 * the activation codes.
 *
 * <p>On AVX2 the Vector API has no byte multiply-add into 16 or 32 bits, so codes are widened to int16 lanes
 * (16 per 256-bit vector), multiplied with {@code vpmullw} (every product fits: |q_w| ≤ 127 and |q_x| ≤ 127, or a 6-bit
 * code times 127, and two products are added before anything wider is needed), and neighbouring int16 lanes are added
 * into int32 lanes through a reinterpretation (see the note on the idioms below). That is about 1.5× faster than dequantizing to floats
 * in registers ({@link BlockKernels}) on this machine's AVX2 cores.
 *
 * <p>The scalar reference ({@link #reference}) dequantizes the weight row with the type's codec and the activations with
 * their scales, and sums the products: the same value up to float rounding order.
 */
public final class Q8Kernels {
    private Q8Kernels() {}

    /** The dot product of a stored weight row with row {@code b} of quantized activations. */
    @FunctionalInterface
    public interface RowDot {
        float dot(MemorySegment w, long rowByteOffset, Q8Activations x, int b);
    }

    /** The activation format a type's integer kernel consumes, or null when the type runs on float activations. */
    public static Q8Activations.Kind kindOf(org.quant4j.format.StorageType type) {
        if (!(type instanceof GgmlType g)) return null;
        return switch (g) {
            case Q4_0, Q8_0 -> Q8Activations.Kind.Q8_0;
            case Q4_1, Q5_0, Q5_1, IQ4_NL -> Q8Activations.Kind.Q8_0; // Q8KernelsLegacy (Q4_1, Q5_1: Q8_1 = Q8_0 + sum32)
            case Q4_K, Q5_K, Q6_K, TQ1_0, TQ2_0 -> Q8Activations.Kind.Q8_K; // the ternary types: TernaryKernels
            case Q2_K, Q3_K, IQ4_XS -> Q8Activations.Kind.Q8_K; // Q8KernelsK
            default -> null;
        };
    }

    /** The kernel for a type on the selected path; the type must have a {@link #kindOf kind} and not be ternary. */
    public static RowDot rowDot(GgmlType type, boolean vector) {
        if (Q8KernelsLegacy.covers(type)) return Q8KernelsLegacy.rowDot(type, vector);
        if (Q8KernelsK.covers(type)) return Q8KernelsK.rowDot(type, vector);
        if (!vector) return reference(GgmlCodecs.of(type));
        return switch (type) {
            case Q8_0 -> Q8Kernels::dotQ8_0;
            case Q4_0 -> Q8Kernels::dotQ4_0;
            case Q4_K -> Q8Kernels::dotQ4_K;
            case Q5_K -> Q8Kernels::dotQ5_K;
            case Q6_K -> Q8Kernels::dotQ6_K;
            default -> throw new IllegalArgumentException("no integer kernel for " + type);
        };
    }

    /** out[b·outDim + r] for rows [start, end) and every token b, one loop per type so that each call is static. */
    static void rows(GgmlType type, MemorySegment w, long rowBytes, int start, int end, Q8Activations x, float[] out, int outDim) {
        int batch = x.batch;
        switch (type) {
            case Q8_0 -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ8_0(w, r * rowBytes, x, b); }
            case Q4_0 -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ4_0(w, r * rowBytes, x, b); }
            case Q4_K -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ4_K(w, r * rowBytes, x, b); }
            case Q5_K -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ5_K(w, r * rowBytes, x, b); }
            case Q6_K -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ6_K(w, r * rowBytes, x, b); }
            case Q4_1, Q5_0, Q5_1, IQ4_NL -> Q8KernelsLegacy.rows(type, w, rowBytes, start, end, x, out, outDim);
            case Q2_K, Q3_K, IQ4_XS -> Q8KernelsK.rows(type, w, rowBytes, start, end, x, out, outDim);
            default -> throw new IllegalArgumentException("no integer kernel for " + type);
        }
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    // Two idioms are written out in place below rather than as helper methods: C2 stops inlining small helpers in
    // methods this large ("callee is too large"), and a vector crossing a call that is not inlined is boxed on the heap,
    // which made these kernels 3-5x slower. They are:
    //   16 bytes → 16 int16 lanes:  (ShortVector) ByteVector.fromMemorySegment(B128, w, off, LE).convertShape(B2S, S, 0)
    //   16 int16 lanes → 8 floats of neighbouring pair sums p[2k] + p[2k+1], through the int32 view of the same bits:
    //     (FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16)
    //                     .add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)
    //   or, where every pair sum p[2k] + p[2k+1] itself fits in int16 (one operation fewer): with v the int32 view,
    //     v.add(v.lanewise(LSHL, 16)).lanewise(ASHR, 16) — the high half of v + (v << 16) is p[2k+1] + p[2k] mod 2^16.
    // The result is reduced with reduceLanes, an intrinsic: a vector passed to a helper that C2 does not inline
    // (FloatKernels.sum here once) is boxed, and its box was then allocated in every iteration of the loop.

    private static float f16(MemorySegment w, long off) { return Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off)); }

    /** Q8_0 × Q8_0: Σ_blocks d_w·d_x·Σ q_w·q_x. */
    static float dotQ8_0(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F);
        int blk = 0;
        for (; blk + 2 <= nb; blk += 2) {
            long b = off + 34L * blk;
            int xo = xr + 32 * blk;
            ShortVector p0 = ((ShortVector) ByteVector.fromMemorySegment(B128, w, b + 2, LE).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo)).add(((ShortVector) ByteVector.fromMemorySegment(B128, w, b + 18, LE).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 16)));
            ShortVector p1 = ((ShortVector) ByteVector.fromMemorySegment(B128, w, b + 36, LE).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 32)).add(((ShortVector) ByteVector.fromMemorySegment(B128, w, b + 52, LE).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 48)));
            t0 = ((FloatVector) p0.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p0.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b) * a.d[dr + blk]), t0);
            t1 = ((FloatVector) p1.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p1.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b + 34) * a.d[dr + blk + 1]), t1);
        }
        for (; blk < nb; blk++) {
            long b = off + 34L * blk;
            int xo = xr + 32 * blk;
            ShortVector p = ((ShortVector) ByteVector.fromMemorySegment(B128, w, b + 2, LE).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo)).add(((ShortVector) ByteVector.fromMemorySegment(B128, w, b + 18, LE).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 16)));
            t0 = ((FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b) * a.d[dr + blk]), t0);
        }
        return t0.add(t1).reduceLanes(ADD);
    }

    /**
     * Q4_0 × Q8_0: Σ_blocks d_w·d_x·(Σ nibble·q_x − 8·Σ q_x), low nibbles the first 16 values of each block; the
     * offset goes through the activation sums (d_x·Σ q_x, {@link Q8Activations#dsum}) rather than into every lane.
     * Two blocks per step into two accumulators. The codes are zero-extended, so a low nibble is {@code & 15} and a
     * high one {@code >>> 4}; a lane of products holds two of at most 15·127, so a pair of lanes still fits in int16
     * and is summed into int32 by the three-operation idiom below.
     */
    static float dotQ4_0(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        float[] xd = a.d, xs = a.dsum;
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F);
        float o0 = 0, o1 = 0;
        int blk = 0;
        for (; blk + 2 <= nb; blk += 2) {
            long b = off + 18L * blk;
            int xo = xr + 32 * blk;
            ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 2, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
            ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 20, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
            IntVector p0 = q0.and((short) 15).mul(ShortVector.fromArray(S, xq, xo)).add(q0.lanewise(LSHR, 4).mul(ShortVector.fromArray(S, xq, xo + 16))).reinterpretAsInts();
            IntVector p1 = q1.and((short) 15).mul(ShortVector.fromArray(S, xq, xo + 32)).add(q1.lanewise(LSHR, 4).mul(ShortVector.fromArray(S, xq, xo + 48))).reinterpretAsInts();
            float dw0 = f16(w, b), dw1 = f16(w, b + 18);
            t0 = ((FloatVector) p0.add(p0.lanewise(LSHL, 16)).lanewise(ASHR, 16).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, dw0 * xd[dr + blk]), t0);
            t1 = ((FloatVector) p1.add(p1.lanewise(LSHL, 16)).lanewise(ASHR, 16).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, dw1 * xd[dr + blk + 1]), t1);
            o0 += dw0 * xs[dr + blk];
            o1 += dw1 * xs[dr + blk + 1];
        }
        for (; blk < nb; blk++) {
            long b = off + 18L * blk;
            int xo = xr + 32 * blk;
            ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 2, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
            IntVector p0 = q0.and((short) 15).mul(ShortVector.fromArray(S, xq, xo)).add(q0.lanewise(LSHR, 4).mul(ShortVector.fromArray(S, xq, xo + 16))).reinterpretAsInts();
            float dw0 = f16(w, b);
            t0 = ((FloatVector) p0.add(p0.lanewise(LSHL, 16)).lanewise(ASHR, 16).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, dw0 * xd[dr + blk]), t0);
            o0 += dw0 * xs[dr + blk];
        }
        return t0.add(t1).reduceLanes(ADD) - 8 * (o0 + o1);
    }

    /**
     * Q4_K × Q8_K: per sub-block j of 32, d·sc_j·Σ q·q_x − dmin·m_j·Σ q_x, times d_x; each 32 bytes of codes hold
     * sub-block 2j in their low nibbles and 2j+1 in their high nibbles. As in llama.cpp, the 6-bit scales multiply the
     * integer sums, which accumulate in int32 over the whole super-block (|Σ| ≤ 256·15·127·63 < 2^31); one conversion
     * to float per super-block. The scales and minimums are unpacked with constant shifts ({@link #kScales}).
     */
    static float dotQ4_K(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb, sr = row * (n / 32);
        short[] xq = a.q;
        int[] sums = a.sum32;
        FloatVector t = FloatVector.zero(F);
        float mins = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 144L * blk;
            int xb = xr + 256 * blk;
            // the scalars first: C2 stops inlining (NodeCountInliningCutoff) after the vector code below, and a call
            // here would spill the accumulators
            int dd = w.get(ValueLayout.JAVA_INT_UNALIGNED, b);          // f16 d, f16 dmin
            long lo = w.get(ValueLayout.JAVA_LONG_UNALIGNED, b + 4);   // the 12 bytes of 6-bit scales and minimums
            int hi = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + 12);
            float dx = a.d[dr + blk], d = Float.float16ToFloat((short) dd) * dx, dmin = Float.float16ToFloat((short) (dd >>> 16)) * dx;
            long sc = kScales(lo, hi), m = kMins(lo, hi);             // a byte each, sub-block 0 lowest
            mins += dmin * minSum(m, sums, sr + 8 * blk);
            IntVector acc0 = IntVector.zero(I), acc1 = IntVector.zero(I);
            for (int j = 0; j < 4; j++) {
                long q = b + 16 + 32L * j;
                int xo = xb + 64 * j;
                ShortVector v0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector v1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                IntVector pLo = v0.and((short) 15).mul(ShortVector.fromArray(S, xq, xo))
                        .add(v1.and((short) 15).mul(ShortVector.fromArray(S, xq, xo + 16))).reinterpretAsInts();
                IntVector pHi = v0.lanewise(LSHR, 4).mul(ShortVector.fromArray(S, xq, xo + 32))
                        .add(v1.lanewise(LSHR, 4).mul(ShortVector.fromArray(S, xq, xo + 48))).reinterpretAsInts();
                int s1 = (int) (sc >>> (16 * j)) & 0xFF, s2 = (int) (sc >>> (16 * j + 8)) & 0xFF;
                acc0 = pLo.add(pLo.lanewise(LSHL, 16)).lanewise(ASHR, 16).mul(s1).add(acc0);
                acc1 = pHi.add(pHi.lanewise(LSHL, 16)).lanewise(ASHR, 16).mul(s2).add(acc1);
            }
            t = ((FloatVector) acc0.add(acc1).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d), t);
        }
        return t.reduceLanes(ADD) - mins;
    }

    private static final long KMASK1 = 0x3f3f3f3fL, KMASK2 = 0x0f0f0f0fL, KMASK3 = 0x03030303L;

    /**
     * The eight 6-bit scales of a Q4_K/Q5_K super-block as bytes of a long (sub-block j in byte j), from the 12 scale
     * bytes read as lo (bytes 0-7) and hi (8-11): the low 6 bits of bytes 0-3 for j < 4; for j ≥ 4 the low nibble of
     * byte j+4 and the top two bits of byte j−4 (llama.cpp's kmask unpacking, four sub-blocks at a time).
     */
    static long kScales(long lo, int hi) {
        long u0 = lo & 0xFFFFFFFFL, u2 = hi & 0xFFFFFFFFL;
        return (u0 & KMASK1) | (((u2 & KMASK2) | (((u0 >>> 6) & KMASK3) << 4)) << 32);
    }

    /** The eight 6-bit minimums likewise: the low 6 bits of bytes 4-7; for j ≥ 4 the high nibble of byte j+4 and the top two bits of byte j. */
    static long kMins(long lo, int hi) {
        long u1 = lo >>> 32, u2 = hi & 0xFFFFFFFFL;
        return (u1 & KMASK1) | ((((u2 >>> 4) & KMASK2) | (((u1 >>> 6) & KMASK3) << 4)) << 32);
    }

    /** Σ_j m_j · sums[g + j] over a super-block's eight sub-blocks, m_j byte j of m (from {@link #kMins}). */
    static int minSum(long m, int[] sums, int g) {
        return (int) (m & 0xFF) * sums[g] + (int) (m >>> 8 & 0xFF) * sums[g + 1] + (int) (m >>> 16 & 0xFF) * sums[g + 2] + (int) (m >>> 24 & 0xFF) * sums[g + 3]
                + (int) (m >>> 32 & 0xFF) * sums[g + 4] + (int) (m >>> 40 & 0xFF) * sums[g + 5] + (int) (m >>> 48 & 0xFF) * sums[g + 6] + (int) (m >>> 56) * sums[g + 7];
    }

    /**
     * Q5_K × Q8_K: Q4_K's sub-blocks with a fifth bit per code from qh (bit 2j for sub-block 2j, 2j+1 for 2j+1), the
     * same integer accumulation (|Σ| ≤ 256·31·127·63 < 2^31; a pair of product lanes ≤ 4·31·127 fits in int16).
     */
    static float dotQ5_K(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb, sr = row * (n / 32);
        short[] xq = a.q;
        int[] sums = a.sum32;
        FloatVector t = FloatVector.zero(F);
        float mins = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 176L * blk;
            int xb = xr + 256 * blk;
            int dd = w.get(ValueLayout.JAVA_INT_UNALIGNED, b);          // f16 d, f16 dmin
            long lo = w.get(ValueLayout.JAVA_LONG_UNALIGNED, b + 4);   // the 12 bytes of 6-bit scales and minimums
            int hi = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + 12);
            float dx = a.d[dr + blk], d = Float.float16ToFloat((short) dd) * dx, dmin = Float.float16ToFloat((short) (dd >>> 16)) * dx;
            long sc = kScales(lo, hi), m = kMins(lo, hi);             // a byte each, sub-block 0 lowest
            mins += dmin * minSum(m, sums, sr + 8 * blk);
            ShortVector h0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 16, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
            ShortVector h1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 32, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
            IntVector acc0 = IntVector.zero(I), acc1 = IntVector.zero(I);
            for (int j = 0; j < 4; j++) {   // h0, h1 shifted right by 2j: bit 0 for sub-block 2j, bit 1 for 2j+1
                long q = b + 48 + 32L * j;
                int xo = xb + 64 * j;
                ShortVector v0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                ShortVector v1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                IntVector pLo = v0.and((short) 15).or(h0.lanewise(LSHL, 4).and((short) 16)).mul(ShortVector.fromArray(S, xq, xo))
                        .add(v1.and((short) 15).or(h1.lanewise(LSHL, 4).and((short) 16)).mul(ShortVector.fromArray(S, xq, xo + 16))).reinterpretAsInts();
                IntVector pHi = v0.lanewise(LSHR, 4).or(h0.lanewise(LSHL, 3).and((short) 16)).mul(ShortVector.fromArray(S, xq, xo + 32))
                        .add(v1.lanewise(LSHR, 4).or(h1.lanewise(LSHL, 3).and((short) 16)).mul(ShortVector.fromArray(S, xq, xo + 48))).reinterpretAsInts();
                int s1 = (int) (sc >>> (16 * j)) & 0xFF, s2 = (int) (sc >>> (16 * j + 8)) & 0xFF;
                acc0 = pLo.add(pLo.lanewise(LSHL, 16)).lanewise(ASHR, 16).mul(s1).add(acc0);
                acc1 = pHi.add(pHi.lanewise(LSHL, 16)).lanewise(ASHR, 16).mul(s2).add(acc1);
                h0 = h0.lanewise(LSHR, 2);
                h1 = h1.lanewise(LSHR, 2);
            }
            t = ((FloatVector) acc0.add(acc1).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d), t);
        }
        return t.reduceLanes(ADD) - mins;
    }

    /**
     * Q6_K × Q8_K: 16 sub-blocks of 16 with int8 scales, codes (6 bits − 32): per sub-block sc·Σ q·q_x summed in
     * int32 over the super-block (|Σ| ≤ 256·32·127·128 < 2^31), then times d·d_x. A product lane holds one product,
     * so a pair of lanes fits in int16.
     */
    static float dotQ6_K(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        FloatVector t = FloatVector.zero(F);
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 210L * blk;
            int xb = xr + 256 * blk;
            float d = f16(w, b + 208) * a.d[dr + blk];
            long sc0 = w.get(ValueLayout.JAVA_LONG_UNALIGNED, b + 192), sc1 = w.get(ValueLayout.JAVA_LONG_UNALIGNED, b + 200);
            IntVector acc0 = IntVector.zero(I), acc1 = IntVector.zero(I);
            for (int half = 0; half < 2; half++) {
                long ql = b + 64L * half, qh = b + 128 + 32L * half, sc = half == 0 ? sc0 : sc1;
                int xo = xb + 128 * half;
                for (int is = 0; is < 2; is++) {
                    int l = 16 * is;
                    ShortVector lo = (ShortVector) ByteVector.fromMemorySegment(B128, w, ql + l, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                    ShortVector hi = (ShortVector) ByteVector.fromMemorySegment(B128, w, ql + 32 + l, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                    ShortVector h = (ShortVector) ByteVector.fromMemorySegment(B128, w, qh + l, LE).convertShape(ZERO_EXTEND_B2S, S, 0);
                    IntVector p1 = lo.and((short) 15).or(h.lanewise(LSHL, 4).and((short) 0x30)).sub((short) 32).mul(ShortVector.fromArray(S, xq, xo + l)).reinterpretAsInts();
                    IntVector p2 = hi.and((short) 15).or(h.lanewise(LSHL, 2).and((short) 0x30)).sub((short) 32).mul(ShortVector.fromArray(S, xq, xo + 32 + l)).reinterpretAsInts();
                    IntVector p3 = lo.lanewise(LSHR, 4).or(h.and((short) 0x30)).sub((short) 32).mul(ShortVector.fromArray(S, xq, xo + 64 + l)).reinterpretAsInts();
                    IntVector p4 = hi.lanewise(LSHR, 4).or(h.lanewise(LSHR, 2).and((short) 0x30)).sub((short) 32).mul(ShortVector.fromArray(S, xq, xo + 96 + l)).reinterpretAsInts();
                    int s1 = (byte) (sc >>> (8 * is)), s2 = (byte) (sc >>> (8 * is + 16)), s3 = (byte) (sc >>> (8 * is + 32)), s4 = (byte) (sc >>> (8 * is + 48));
                    acc0 = p1.add(p1.lanewise(LSHL, 16)).lanewise(ASHR, 16).mul(s1).add(acc0);
                    acc1 = p2.add(p2.lanewise(LSHL, 16)).lanewise(ASHR, 16).mul(s2).add(acc1);
                    acc0 = p3.add(p3.lanewise(LSHL, 16)).lanewise(ASHR, 16).mul(s3).add(acc0);
                    acc1 = p4.add(p4.lanewise(LSHL, 16)).lanewise(ASHR, 16).mul(s4).add(acc1);
                }
            }
            t = ((FloatVector) acc0.add(acc1).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d), t);
        }
        return t.reduceLanes(ADD);
    }

    /** A per-thread row buffer for {@link #reference}. */
    private static final ThreadLocal<float[]> ROW = ThreadLocal.withInitial(() -> new float[0]);

    /** The scalar reference: the row dequantized by its codec, times the dequantized activations. */
    static RowDot reference(BlockCodec codec) {
        return (w, off, a, row) -> {
            int n = a.n;
            float[] wr = ROW.get(); // (n)
            if (wr.length < n) ROW.set(wr = new float[n]);
            codec.dequantize(w, off, wr, 0, n);
            int blocks = n / a.kind.block;
            float s = 0;
            for (int i = 0; i < n; i++) s += wr[i] * (a.d[row * blocks + i / a.kind.block] * a.q[row * n + i]);
            return s;
        };
    }
}
