package org.quant4j.kernel;

import jdk.incubator.vector.*;
import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static jdk.incubator.vector.VectorOperators.*;

/**
 * Integer dot products of the super-block types that {@link Q8Kernels} does not cover — Q2_K, Q3_K and IQ4_XS — with
 * activations quantized once per matmul to Q8_K, as llama.cpp's {@code ggml_vec_dot_q2_K_q8_K}, {@code _q3_K_q8_K}
 * and {@code _iq4_xs_q8_K} do. Per super-block of 256, with q_x the activation codes and d_x their scale:
 * <pre>
 *   Q2_K:   d·d_x·Σ_j sc_j·Σ_{i∈j} q_i·q_x,i − dmin·d_x·Σ_j m_j·bsum_j     16 sub-blocks of 16, q 0..3,
 *                                                                        sc_j, m_j the low and high nibbles of scales[j]
 *   Q3_K:   d·d_x·Σ_j (s_j − 32)·Σ_{i∈j} q_i·q_x,i                       16 sub-blocks of 16, q = 2 bits − (hmask ? 0 : 4),
 *                                                                        s_j 6 bits
 *   IQ4_XS: d·d_x·Σ_j (ls_j − 32)·Σ_{i∈j} kvalues[q_i]·q_x,i             8 sub-blocks of 32, ls_j 6 bits
 * </pre>
 * where bsum_j = Σ_{i∈j} q_x,i is the Q8_K block's per-16 sum ({@link Q8Activations#sum16}).
 *
 * <p>The Vector API kernels keep the whole super-block in integers: Q2_K's and Q3_K's sub-block scales are folded into
 * the int16 weight codes before the multiply (|scale·code| ≤ 128, times |q_x| ≤ 127, two products per lane: < 2^15),
 * IQ4_XS's are applied to the int32 pair sums; each super-block's int32 lanes turn into floats once, with one FMA by
 * d·d_x. IQ4_XS looks its indices up in the codebook by a byte shuffle as {@link Q8KernelsLegacy} does. The scalar
 * references ({@code dot*Scalar}) are ggml's generic C loops.
 */
final class Q8KernelsK {
    private Q8KernelsK() {}

    /** Whether this file has the type's kernels. */
    static boolean covers(GgmlType type) {
        return type == GgmlType.Q2_K || type == GgmlType.Q3_K || type == GgmlType.IQ4_XS;
    }

    static Q8Kernels.RowDot rowDot(GgmlType type, boolean vector) {
        return switch (type) {
            case Q2_K -> vector ? Q8KernelsK::dotQ2_K : Q8KernelsK::dotQ2_KScalar;
            case Q3_K -> vector ? Q8KernelsK::dotQ3_K : Q8KernelsK::dotQ3_KScalar;
            case IQ4_XS -> vector ? Q8KernelsK::dotIQ4_XS : Q8KernelsK::dotIQ4_XSScalar;
            default -> throw new IllegalArgumentException("no k-quant integer kernel for " + type);
        };
    }

    /** out[b·outDim + r] for rows [start, end) and every token b; one loop per type so that each call is static. */
    static void rows(GgmlType type, MemorySegment w, long rowBytes, int start, int end, Q8Activations x, float[] out, int outDim) {
        int batch = x.batch;
        switch (type) {
            case Q2_K -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ2_K(w, r * rowBytes, x, b); }
            case Q3_K -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ3_K(w, r * rowBytes, x, b); }
            case IQ4_XS -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotIQ4_XS(w, r * rowBytes, x, b); }
            default -> throw new IllegalArgumentException("no k-quant integer kernel for " + type);
        }
    }

    private static float f16(MemorySegment w, long off) { return Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off)); }

    private static int u8(MemorySegment w, long off) { return w.get(ValueLayout.JAVA_BYTE, off) & 0xFF; }

    /**
     * Q3_K's 16 six-bit scales (0..63, stored + 32) from the 12 bytes at {@code off}: the low nibbles of bytes 0-7 are
     * scales 0-7, their high nibbles 8-15, and byte 8 + (j mod 4) gives bits 4-5 of scale j in bit pair j / 4.
     */
    static void q3Scales(MemorySegment w, long off, int[] out) {
        long lo = w.get(ValueLayout.JAVA_LONG_UNALIGNED, off);
        int hi = w.get(ValueLayout.JAVA_INT_UNALIGNED, off + 8);
        for (int j = 0; j < 16; j++) {
            int low = (int) (lo >>> (8 * (j & 7) + 4 * (j >>> 3))) & 15;
            int high = (hi >>> (8 * (j & 3) + 2 * (j >>> 2))) & 3;
            out[j] = low | high << 4;
        }
    }

    // ---- scalar references: ggml-cpu/quants.c's generic loops -------------------------------------------------

    /** Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin} × Q8_K. */
    static float dotQ2_KScalar(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb, gr = row * (n / 16);
        float sum = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 84L * blk;
            int xb = xr + 256 * blk;
            int summs = 0;
            for (int j = 0; j < 16; j++) summs += a.sum16[gr + 16 * blk + j] * (u8(w, b + j) >>> 4);
            int isum = 0, is = 0;
            for (int half = 0; half < 2; half++) {
                long q2 = b + 16 + 32L * half;
                for (int j = 0; j < 4; j++) {
                    int shift = 2 * j, xo = xb + 128 * half + 32 * j;
                    for (int part = 0; part < 2; part++, is++) {
                        int isuml = 0;
                        for (int l = 16 * part; l < 16 * part + 16; l++) isuml += a.q[xo + l] * ((u8(w, q2 + l) >>> shift) & 3);
                        isum += (u8(w, b + is) & 15) * isuml;
                    }
                }
            }
            float dx = a.d[dr + blk];
            sum += f16(w, b + 80) * dx * isum - f16(w, b + 82) * dx * summs;
        }
        return sum;
    }

    /** Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d} × Q8_K. */
    static float dotQ3_KScalar(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb;
        int[] scales = new int[16];
        float sum = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 110L * blk;
            int xb = xr + 256 * blk;
            q3Scales(w, b + 96, scales);
            int isum = 0, is = 0;
            for (int half = 0; half < 2; half++) {
                long q3 = b + 32 + 32L * half;
                for (int j = 0; j < 4; j++) {
                    int shift = 2 * j, m = 4 * half + j, xo = xb + 128 * half + 32 * j;
                    for (int part = 0; part < 2; part++, is++) {
                        int isuml = 0;
                        for (int l = 16 * part; l < 16 * part + 16; l++) {
                            int q = ((u8(w, q3 + l) >>> shift) & 3) - (((u8(w, b + l) >>> m) & 1) != 0 ? 0 : 4);
                            isuml += a.q[xo + l] * q;
                        }
                        isum += (scales[is] - 32) * isuml;
                    }
                }
            }
            sum += f16(w, b + 108) * a.d[dr + blk] * isum;
        }
        return sum;
    }

    /** IQ4_XS {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]} × Q8_K. */
    static float dotIQ4_XSScalar(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb;
        byte[] kv = Q8KernelsLegacy.KVALUES_IQ4NL;
        float sum = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 136L * blk;
            int scalesH = w.get(ValueLayout.JAVA_SHORT_UNALIGNED, b + 2) & 0xFFFF;
            int scalesL = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + 4);
            int isum = 0;
            for (int ib = 0; ib < 8; ib++) {
                int ls = ((scalesL >>> (4 * ib)) & 15) | ((scalesH >>> (2 * ib)) & 3) << 4;
                long qs = b + 8 + 16L * ib;
                int xo = xr + 256 * blk + 32 * ib, sumi = 0;
                for (int j = 0; j < 16; j++) {
                    int q = u8(w, qs + j);
                    sumi += a.q[xo + j] * kv[q & 15] + a.q[xo + 16 + j] * kv[q >>> 4];
                }
                isum += (ls - 32) * sumi;
            }
            sum += f16(w, b) * a.d[dr + blk] * isum;
        }
        return sum;
    }

    // ---- Vector API ---------------------------------------------------------------------------------------------
    // The idioms of Q8Kernels, written out in place (see there): 16 bytes → 16 int16 lanes by a B2S conversion
    // (sign-extending: masks after shifts keep only the wanted bits), and 16 int16 lanes → 8 int32 neighbouring pair
    // sums through the int32 view: p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)).

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Q2_K × Q8_K: 2-bit codes times their 4-bit sub-block scale in int16, the minimums through the per-16 sums. */
    static float dotQ2_K(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb, gr = row * (n / 16);
        short[] xq = a.q;
        int[] bsum = a.sum16;
        FloatVector total = FloatVector.zero(F);
        float mins = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 84L * blk;
            int xb = xr + 256 * blk, g = gr + 16 * blk;
            long sc0 = w.get(ValueLayout.JAVA_LONG_UNALIGNED, b), sc1 = w.get(ValueLayout.JAVA_LONG_UNALIGNED, b + 8); // scales[16]
            IntVector acc = IntVector.zero(I);
            int summs = 0;
            for (int half = 0; half < 2; half++) {
                long sc = half == 0 ? sc0 : sc1;   // the 8 scale bytes of this 128
                ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 16 + 32L * half, LE).convertShape(B2S, S, 0);
                ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 32 + 32L * half, LE).convertShape(B2S, S, 0);
                for (int j = 0; j < 4; j++) {
                    int s0 = (int) (sc >>> (16 * j)) & 0xFF, s1 = (int) (sc >>> (16 * j + 8)) & 0xFF;
                    int xo = xb + 128 * half + 32 * j;
                    ShortVector p = q0.lanewise(LSHR, 2 * j).and((short) 3).mul((short) (s0 & 15)).mul(ShortVector.fromArray(S, xq, xo))
                            .add(q1.lanewise(LSHR, 2 * j).and((short) 3).mul((short) (s1 & 15)).mul(ShortVector.fromArray(S, xq, xo + 16)));
                    acc = acc.add(p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)));
                    int is = 8 * half + 2 * j;
                    summs += (s0 >>> 4) * bsum[g + is] + (s1 >>> 4) * bsum[g + is + 1];
                }
            }
            float dx = a.d[dr + blk];
            total = ((FloatVector) acc.convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b + 80) * dx), total);
            mins += f16(w, b + 82) * dx * summs;
        }
        FloatVector v = total;
        return ((v.lane(0) + v.lane(4)) + (v.lane(2) + v.lane(6))) + ((v.lane(1) + v.lane(5)) + (v.lane(3) + v.lane(7))) - mins;
    }

    /** Q3_K × Q8_K: 3-bit codes (2 bits, minus 4 where the hmask bit is clear) times their signed 6-bit scale in int16. */
    static float dotQ3_K(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        int[] scales = new int[16];
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 110L * blk;
            int xb = xr + 256 * blk;
            q3Scales(w, b + 96, scales);
            ShortVector h0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b, LE).convertShape(B2S, S, 0);
            ShortVector h1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 16, LE).convertShape(B2S, S, 0);
            IntVector acc = IntVector.zero(I);
            for (int half = 0; half < 2; half++) {
                ShortVector q0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 32 + 32L * half, LE).convertShape(B2S, S, 0);
                ShortVector q1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 48 + 32L * half, LE).convertShape(B2S, S, 0);
                for (int j = 0; j < 4; j++) {
                    int m = 4 * half + j, is = 8 * half + 2 * j, xo = xb + 128 * half + 32 * j;
                    // code = (q >> 2j & 3) + 4·(hmask bit m) − 4, in −4..3
                    ShortVector c0 = q0.lanewise(LSHR, 2 * j).and((short) 3).add(h0.lanewise(LSHR, m).and((short) 1).lanewise(LSHL, 2)).sub((short) 4);
                    ShortVector c1 = q1.lanewise(LSHR, 2 * j).and((short) 3).add(h1.lanewise(LSHR, m).and((short) 1).lanewise(LSHL, 2)).sub((short) 4);
                    ShortVector p = c0.mul((short) (scales[is] - 32)).mul(ShortVector.fromArray(S, xq, xo))
                            .add(c1.mul((short) (scales[is + 1] - 32)).mul(ShortVector.fromArray(S, xq, xo + 16)));
                    acc = acc.add(p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)));
                }
            }
            total = ((FloatVector) acc.convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b + 108) * a.d[dr + blk]), total);
        }
        FloatVector v = total;
        return ((v.lane(0) + v.lane(4)) + (v.lane(2) + v.lane(6))) + ((v.lane(1) + v.lane(5)) + (v.lane(3) + v.lane(7)));
    }

    /** IQ4_XS × Q8_K: codebook lookup by byte shuffle, int16 products, int32 pair sums times the 6-bit block scale. */
    static float dotIQ4_XS(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        ByteVector kv = Q8KernelsLegacy.KVALUES;
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 136L * blk;
            int xb = xr + 256 * blk;
            int scalesH = w.get(ValueLayout.JAVA_SHORT_UNALIGNED, b + 2) & 0xFFFF;
            int scalesL = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + 4);
            IntVector acc = IntVector.zero(I);
            for (int ib = 0; ib < 8; ib++) {
                int ls = ((scalesL >>> (4 * ib)) & 15) | ((scalesH >>> (2 * ib)) & 3) << 4;
                int xo = xb + 32 * ib;
                ByteVector q = ByteVector.fromMemorySegment(B128, w, b + 8 + 16L * ib, LE);
                ShortVector p = ((ShortVector) q.and((byte) 15).selectFrom(kv).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo))
                        .add(((ShortVector) q.lanewise(LSHR, 4).and((byte) 15).selectFrom(kv).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 16)));
                acc = p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)).mul(ls - 32).add(acc);
            }
            total = ((FloatVector) acc.convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b) * a.d[dr + blk]), total);
        }
        FloatVector v = total;
        return ((v.lane(0) + v.lane(4)) + (v.lane(2) + v.lane(6))) + ((v.lane(1) + v.lane(5)) + (v.lane(3) + v.lane(7)));
    }
}
