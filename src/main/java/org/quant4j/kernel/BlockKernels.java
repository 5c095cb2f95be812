package org.quant4j.kernel;

import jdk.incubator.vector.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Vector API dot products of one row of ggml blocks with F32 activations, dequantizing in registers: each block's
 * integer codes are widened to 8-lane int vectors, turned into floats and multiplied with x; a sub-block's sum is
 * scaled once (one FMA with its scale), and its offset or minimum is applied through the sum of x over the sub-block,
 * Σ (d·q − m)·x = d·Σ q·x − m·Σ x. Lanes are added once per row. The scalar reference of each kernel is the type's
 * codec (dequantize, then a plain dot product; see {@link MatMul#rowDot}). Layouts follow ggml-common.h.
 */
public final class BlockKernels {
    private BlockKernels() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    // ---- loads ------------------------------------------------------------------------------------------------

    /** 8 bytes at {@code off} as 8 int lanes 0..255. */
    private static IntVector u8(MemorySegment w, long off) {
        return ((IntVector) ByteVector.fromMemorySegment(B64, w, off, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
    }

    /** 8 bytes at {@code off} as 8 int lanes −128..127. */
    private static IntVector s8(MemorySegment w, long off) {
        return (IntVector) ByteVector.fromMemorySegment(B64, w, off, LE).convertShape(VectorOperators.B2I, I, 0);
    }

    private static FloatVector fl(IntVector v) { return (FloatVector) v.convertShape(VectorOperators.I2F, F, 0); }

    private static float f16(MemorySegment w, long off) { return Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off)); }

    private static int u8at(MemorySegment w, long off) { return w.get(ValueLayout.JAVA_BYTE, off) & 0xFF; }

    /** Lane indices 0..7, for per-lane bit extraction. */
    private static final IntVector LANE = IntVector.fromArray(I, new int[]{0, 1, 2, 3, 4, 5, 6, 7}, 0);

    // ---- legacy blocks of 32 ----------------------------------------------------------------------------------

    /** Q8_0: {f16 d; int8 q[32]}, value = d·q. */
    public static float dotQ8_0(MemorySegment w, long off, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0, nb = n / 32; blk < nb; blk++) {
            long b = off + 34L * blk;
            int xo = xOff + 32 * blk;
            FloatVector a0 = ((FloatVector) (((IntVector) ByteVector.fromMemorySegment(B64, w, b + 2, LE).convertShape(VectorOperators.B2I, I, 0))).convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xo));
            FloatVector a1 = ((FloatVector) (((IntVector) ByteVector.fromMemorySegment(B64, w, b + 10, LE).convertShape(VectorOperators.B2I, I, 0))).convertShape(VectorOperators.I2F, F, 0)).mul(FloatVector.fromArray(F, x, xo + 8));
            a0 = ((FloatVector) (((IntVector) ByteVector.fromMemorySegment(B64, w, b + 18, LE).convertShape(VectorOperators.B2I, I, 0))).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + 16), a0);
            a1 = ((FloatVector) (((IntVector) ByteVector.fromMemorySegment(B64, w, b + 26, LE).convertShape(VectorOperators.B2I, I, 0))).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + 24), a1);
            total = a0.add(a1).fma(FloatVector.broadcast(F, f16(w, b)), total);
        }
        return FloatKernels.sum(total);
    }

    /** Q4_0: {f16 d; u8 qs[16]}, value j = d·((qs[j] & 15) − 8), value j+16 = d·((qs[j] >> 4) − 8). */
    public static float dotQ4_0(MemorySegment w, long off, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0, nb = n / 32; blk < nb; blk++) {
            long b = off + 18L * blk;
            int xo = xOff + 32 * blk;
            FloatVector acc = FloatVector.zero(F), sum = FloatVector.zero(F);
            for (int j = 0; j < 16; j += 8) {
                IntVector q = ((IntVector) ByteVector.fromMemorySegment(B64, w, b + 2 + j, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                FloatVector xl = FloatVector.fromArray(F, x, xo + j), xh = FloatVector.fromArray(F, x, xo + 16 + j);
                acc = ((FloatVector) (q.and(15)).convertShape(VectorOperators.I2F, F, 0)).fma(xl, acc);
                acc = ((FloatVector) (q.lanewise(VectorOperators.LSHR, 4)).convertShape(VectorOperators.I2F, F, 0)).fma(xh, acc);
                sum = sum.add(xl).add(xh);
            }
            float d = f16(w, b);
            total = acc.fma(FloatVector.broadcast(F, d), total);
            total = sum.fma(FloatVector.broadcast(F, -8 * d), total);
        }
        return FloatKernels.sum(total);
    }

    /** Q4_1: {f16 d; f16 m; u8 qs[16]}, value = d·nibble + m. */
    public static float dotQ4_1(MemorySegment w, long off, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0, nb = n / 32; blk < nb; blk++) {
            long b = off + 20L * blk;
            int xo = xOff + 32 * blk;
            FloatVector acc = FloatVector.zero(F), sum = FloatVector.zero(F);
            for (int j = 0; j < 16; j += 8) {
                IntVector q = ((IntVector) ByteVector.fromMemorySegment(B64, w, b + 4 + j, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                FloatVector xl = FloatVector.fromArray(F, x, xo + j), xh = FloatVector.fromArray(F, x, xo + 16 + j);
                acc = ((FloatVector) (q.and(15)).convertShape(VectorOperators.I2F, F, 0)).fma(xl, acc);
                acc = ((FloatVector) (q.lanewise(VectorOperators.LSHR, 4)).convertShape(VectorOperators.I2F, F, 0)).fma(xh, acc);
                sum = sum.add(xl).add(xh);
            }
            total = acc.fma(FloatVector.broadcast(F, f16(w, b)), total);
            total = sum.fma(FloatVector.broadcast(F, f16(w, b + 2)), total);
        }
        return FloatKernels.sum(total);
    }

    /**
     * Q5_0: {f16 d; u32 qh; u8 qs[16]}: value j = d·((qs[j] & 15 | bit j of qh << 4) − 16), value j+16 the high nibble
     * with bit j+16.
     */
    public static float dotQ5_0(MemorySegment w, long off, float[] x, int xOff, int n) {
        return dotQ5(w, off, x, xOff, n, false);
    }

    /** Q5_1: {f16 d; f16 m; u32 qh; u8 qs[16]}: value = d·(5-bit code) + m. */
    public static float dotQ5_1(MemorySegment w, long off, float[] x, int xOff, int n) {
        return dotQ5(w, off, x, xOff, n, true);
    }

    private static float dotQ5(MemorySegment w, long off, float[] x, int xOff, int n, boolean withMin) {
        int blockBytes = withMin ? 24 : 22, head = withMin ? 4 : 2;
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0, nb = n / 32; blk < nb; blk++) {
            long b = off + (long) blockBytes * blk;
            int xo = xOff + 32 * blk;
            int qh = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + head);
            FloatVector acc = FloatVector.zero(F), sum = FloatVector.zero(F);
            for (int j = 0; j < 16; j += 8) {
                IntVector q = ((IntVector) ByteVector.fromMemorySegment(B64, w, b + head + 4 + j, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                IntVector hl = IntVector.broadcast(I, qh >>> j).lanewise(VectorOperators.LSHR, LANE).and(1).lanewise(VectorOperators.LSHL, 4);
                IntVector hh = IntVector.broadcast(I, qh >>> (j + 16)).lanewise(VectorOperators.LSHR, LANE).and(1).lanewise(VectorOperators.LSHL, 4);
                FloatVector xl = FloatVector.fromArray(F, x, xo + j), xh = FloatVector.fromArray(F, x, xo + 16 + j);
                acc = ((FloatVector) (q.and(15).or(hl)).convertShape(VectorOperators.I2F, F, 0)).fma(xl, acc);
                acc = ((FloatVector) (q.lanewise(VectorOperators.LSHR, 4).or(hh)).convertShape(VectorOperators.I2F, F, 0)).fma(xh, acc);
                sum = sum.add(xl).add(xh);
            }
            float d = f16(w, b);
            total = acc.fma(FloatVector.broadcast(F, d), total);
            total = sum.fma(FloatVector.broadcast(F, withMin ? f16(w, b + 2) : -16 * d), total);
        }
        return FloatKernels.sum(total);
    }

    // ---- k-quants: super-blocks of 256 ------------------------------------------------------------------------

    // get_scale_min_k4 on the 12 packed bytes of a k-quant super-block's 6-bit scales and minimums, read with two loads
    // (bytes 0-7 in lo, 8-11 in hi): the scale and the minimum of sub-block j.

    /** The 12 scale bytes' first eight, at {@code q}. */
    static long scalesLo(MemorySegment w, long q) { return w.get(ValueLayout.JAVA_LONG_UNALIGNED, q); }

    /** The 12 scale bytes' last four, at {@code q}. */
    static int scalesHi(MemorySegment w, long q) { return w.get(ValueLayout.JAVA_INT_UNALIGNED, q + 8); }

    static int kScale(long lo, int hi, int j) {
        return j < 4 ? kByte(lo, hi, j) & 63 : (kByte(lo, hi, j + 4) & 0xF) | ((kByte(lo, hi, j - 4) >>> 6) << 4);
    }

    static int kMin(long lo, int hi, int j) {
        return j < 4 ? kByte(lo, hi, j + 4) & 63 : (kByte(lo, hi, j + 4) >>> 4) | ((kByte(lo, hi, j) >>> 6) << 4);
    }

    private static int kByte(long lo, int hi, int i) { return i < 8 ? (int) (lo >>> (8 * i)) & 0xFF : (hi >>> (8 * (i - 8))) & 0xFF; }

    /** Q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}, 8 sub-blocks of 32: value = d·sc·q − dmin·m. */
    public static float dotQ4_K(MemorySegment w, long off, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0, nb = n / 256; blk < nb; blk++) {
            long b = off + 144L * blk;
            int xb = xOff + 256 * blk;
            float d = f16(w, b), dmin = f16(w, b + 2);
            long sLo = scalesLo(w, b + 4);
            int sHi = scalesHi(w, b + 4);
            for (int j = 0; j < 4; j++) {
                int sc1 = kScale(sLo, sHi, 2 * j), m1 = kMin(sLo, sHi, 2 * j), sc2 = kScale(sLo, sHi, 2 * j + 1), m2 = kMin(sLo, sHi, 2 * j + 1);
                long q = b + 16 + 32L * j;
                int xo = xb + 64 * j;
                FloatVector accLo = FloatVector.zero(F), accHi = FloatVector.zero(F);
                FloatVector sumLo = FloatVector.zero(F), sumHi = FloatVector.zero(F);
                for (int l = 0; l < 32; l += 8) {
                    IntVector v = ((IntVector) ByteVector.fromMemorySegment(B64, w, q + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    FloatVector xl = FloatVector.fromArray(F, x, xo + l), xh = FloatVector.fromArray(F, x, xo + 32 + l);
                    accLo = ((FloatVector) (v.and(15)).convertShape(VectorOperators.I2F, F, 0)).fma(xl, accLo);
                    accHi = ((FloatVector) (v.lanewise(VectorOperators.LSHR, 4)).convertShape(VectorOperators.I2F, F, 0)).fma(xh, accHi);
                    sumLo = sumLo.add(xl);
                    sumHi = sumHi.add(xh);
                }
                total = accLo.fma(FloatVector.broadcast(F, d * sc1), total);
                total = accHi.fma(FloatVector.broadcast(F, d * sc2), total);
                total = sumLo.fma(FloatVector.broadcast(F, -dmin * m1), total);
                total = sumHi.fma(FloatVector.broadcast(F, -dmin * m2), total);
            }
        }
        return FloatKernels.sum(total);
    }

    /** Q5_K: {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: Q4_K's codes plus a fifth bit from qh. */
    public static float dotQ5_K(MemorySegment w, long off, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0, nb = n / 256; blk < nb; blk++) {
            long b = off + 176L * blk;
            int xb = xOff + 256 * blk;
            float d = f16(w, b), dmin = f16(w, b + 2);
            long sLo = scalesLo(w, b + 4);
            int sHi = scalesHi(w, b + 4);
            for (int j = 0; j < 4; j++) {
                int sc1 = kScale(sLo, sHi, 2 * j), m1 = kMin(sLo, sHi, 2 * j), sc2 = kScale(sLo, sHi, 2 * j + 1), m2 = kMin(sLo, sHi, 2 * j + 1);
                long q = b + 48 + 32L * j;
                int xo = xb + 64 * j;
                FloatVector accLo = FloatVector.zero(F), accHi = FloatVector.zero(F);
                FloatVector sumLo = FloatVector.zero(F), sumHi = FloatVector.zero(F);
                for (int l = 0; l < 32; l += 8) {
                    IntVector v = ((IntVector) ByteVector.fromMemorySegment(B64, w, q + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    IntVector h = ((IntVector) ByteVector.fromMemorySegment(B64, w, b + 16 + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                    IntVector hLo = h.lanewise(VectorOperators.LSHR, 2 * j).and(1).lanewise(VectorOperators.LSHL, 4);
                    IntVector hHi = h.lanewise(VectorOperators.LSHR, 2 * j + 1).and(1).lanewise(VectorOperators.LSHL, 4);
                    FloatVector xl = FloatVector.fromArray(F, x, xo + l), xh = FloatVector.fromArray(F, x, xo + 32 + l);
                    accLo = ((FloatVector) (v.and(15).or(hLo)).convertShape(VectorOperators.I2F, F, 0)).fma(xl, accLo);
                    accHi = ((FloatVector) (v.lanewise(VectorOperators.LSHR, 4).or(hHi)).convertShape(VectorOperators.I2F, F, 0)).fma(xh, accHi);
                    sumLo = sumLo.add(xl);
                    sumHi = sumHi.add(xh);
                }
                total = accLo.fma(FloatVector.broadcast(F, d * sc1), total);
                total = accHi.fma(FloatVector.broadcast(F, d * sc2), total);
                total = sumLo.fma(FloatVector.broadcast(F, -dmin * m1), total);
                total = sumHi.fma(FloatVector.broadcast(F, -dmin * m2), total);
            }
        }
        return FloatKernels.sum(total);
    }

    /**
     * Q6_K: {u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d}, 16 sub-blocks of 16: value = d·scale·(6-bit code − 32),
     * the low 4 bits from ql, the high 2 from qh.
     */
    public static float dotQ6_K(MemorySegment w, long off, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0, nb = n / 256; blk < nb; blk++) {
            long b = off + 210L * blk;
            int xb = xOff + 256 * blk;
            float d = f16(w, b + 208);
            for (int half = 0; half < 2; half++) {
                long ql = b + 64L * half, qh = b + 128 + 32L * half, sc = b + 192 + 8L * half;
                int xo = xb + 128 * half;
                for (int is = 0; is < 2; is++) {   // l in [16·is, 16·is + 16): scales sc[is], sc[is+2], sc[is+4], sc[is+6]
                    FloatVector a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F), a4 = FloatVector.zero(F);
                    for (int l = 16 * is; l < 16 * is + 16; l += 8) {
                        IntVector lo = ((IntVector) ByteVector.fromMemorySegment(B64, w, ql + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF), hi = ((IntVector) ByteVector.fromMemorySegment(B64, w, ql + 32 + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF), h = ((IntVector) ByteVector.fromMemorySegment(B64, w, qh + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF);
                        IntVector q1 = lo.and(15).or(h.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        IntVector q2 = hi.and(15).or(h.lanewise(VectorOperators.LSHR, 2).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        IntVector q3 = lo.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 4).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        IntVector q4 = hi.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 6).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        a1 = ((FloatVector) (q1).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + l), a1);
                        a2 = ((FloatVector) (q2).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + 32 + l), a2);
                        a3 = ((FloatVector) (q3).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + 64 + l), a3);
                        a4 = ((FloatVector) (q4).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + 96 + l), a4);
                    }
                    total = a1.fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is)), total);
                    total = a2.fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2)), total);
                    total = a3.fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4)), total);
                    total = a4.fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6)), total);
                }
            }
        }
        return FloatKernels.sum(total);
    }

    /**
     * Q2_K: {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}, 16 sub-blocks of 16: value = d·(sc & 15)·q − dmin·(sc >> 4),
     * 2-bit codes, four per byte.
     */
    public static float dotQ2_K(MemorySegment w, long off, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(F);
        for (int blk = 0, nb = n / 256; blk < nb; blk++) {
            long b = off + 84L * blk;
            int xb = xOff + 256 * blk;
            float d = f16(w, b + 80), dmin = f16(w, b + 82);
            int is = 0;
            for (int half = 0; half < 2; half++) {
                long q = b + 16 + 32L * half;
                for (int j = 0; j < 4; j++) {
                    int shift = 2 * j;
                    for (int part = 0; part < 2; part++, is++) {  // values 16·part .. 16·part + 16 of this 32
                        int sc = u8at(w, b + is);
                        int xo = xb + 128 * half + 32 * j + 16 * part;
                        FloatVector acc = FloatVector.zero(F), sum = FloatVector.zero(F);
                        for (int l = 0; l < 16; l += 8) {
                            IntVector v = ((IntVector) ByteVector.fromMemorySegment(B64, w, q + 16 * part + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF).lanewise(VectorOperators.LSHR, shift).and(3);
                            FloatVector xv = FloatVector.fromArray(F, x, xo + l);
                            acc = ((FloatVector) (v).convertShape(VectorOperators.I2F, F, 0)).fma(xv, acc);
                            sum = sum.add(xv);
                        }
                        total = acc.fma(FloatVector.broadcast(F, d * (sc & 0xF)), total);
                        total = sum.fma(FloatVector.broadcast(F, -dmin * (sc >>> 4)), total);
                    }
                }
            }
        }
        return FloatKernels.sum(total);
    }

    /**
     * Q3_K: {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}, 16 sub-blocks of 16 with 6-bit scales (stored − 32):
     * value = d·scale·(2-bit code − (hmask bit clear ? 4 : 0)).
     */
    public static float dotQ3_K(MemorySegment w, long off, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(F);
        int[] scales = new int[16];
        for (int blk = 0, nb = n / 256; blk < nb; blk++) {
            long b = off + 110L * blk;
            int xb = xOff + 256 * blk;
            float d = f16(w, b + 108);
            org.quant4j.format.ggml.Q3_KCodec.unpackScales(w, b + 96, scales);
            int is = 0;
            for (int half = 0; half < 2; half++) {
                long q = b + 32 + 32L * half;
                for (int j = 0; j < 4; j++) {
                    int shift = 2 * j, m = half * 4 + j;   // hmask bit for this 32
                    for (int part = 0; part < 2; part++, is++) {
                        int xo = xb + 128 * half + 32 * j + 16 * part;
                        FloatVector acc = FloatVector.zero(F);
                        for (int l = 0; l < 16; l += 8) {
                            IntVector v = ((IntVector) ByteVector.fromMemorySegment(B64, w, q + 16 * part + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF).lanewise(VectorOperators.LSHR, shift).and(3);
                            IntVector hm = ((IntVector) ByteVector.fromMemorySegment(B64, w, b + 16 * part + l, LE).convertShape(VectorOperators.B2I, I, 0)).and(0xFF).lanewise(VectorOperators.LSHR, m).and(1); // 1: no offset
                            IntVector code = v.sub(IntVector.broadcast(I, 4).sub(hm.lanewise(VectorOperators.LSHL, 2)));
                            acc = ((FloatVector) (code).convertShape(VectorOperators.I2F, F, 0)).fma(FloatVector.fromArray(F, x, xo + l), acc);
                        }
                        total = acc.fma(FloatVector.broadcast(F, d * (scales[is] - 32)), total);
                    }
                }
            }
        }
        return FloatKernels.sum(total);
    }
}
