package org.quant4j.kernel;

import jdk.incubator.vector.*;
import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static jdk.incubator.vector.VectorOperators.*;

/**
 * Integer dot products of the legacy blocks of 32 that {@link Q8Kernels} does not cover — Q4_1, Q5_0, Q5_1 and IQ4_NL —
 * with activations quantized once per matmul to Q8_0, as llama.cpp's {@code ggml_vec_dot_q4_1_q8_1},
 * {@code _q5_0_q8_0}, {@code _q5_1_q8_1} and {@code _iq4_nl_q8_0} do. Per block of 32, with q_x the activation codes
 * and d_x their scale:
 * <pre>
 *   Q4_1:   d_w·d_x·Σ q·q_x + m_w·s_x          q = 4-bit code 0..15
 *   Q5_1:   d_w·d_x·Σ q·q_x + m_w·s_x          q = 5-bit code 0..31 (fifth bit from qh)
 *   Q5_0:   d_w·d_x·(Σ q·q_x − 16·Σ q_x)       q = 5-bit code 0..31
 *   IQ4_NL: d_w·d_x·Σ kvalues[q]·q_x           q = 4-bit index into the non-linear codebook
 * </pre>
 * where s_x = d_x·Σ q_x is Q8_1's block sum: llama.cpp stores it in the Q8_1 block; here it comes from the per-32 sums
 * {@link Q8Activations#sum32} that every Q8_0 activation row already carries (the same value, without Q8_1's fp16 rounding).
 *
 * <p>The Vector API kernels follow {@link Q8Kernels}: 16 codes widened to int16 lanes, multiplied by the int16
 * activation codes (two products per lane, |·| ≤ 2·127·127 < 2^15), neighbouring lanes added through the int32 view,
 * one float FMA per block. Q5's fifth bits are spread over the lanes by testing bit j of qh in lane j (a compare, no
 * variable shift: AVX2 has none for 16-bit lanes). IQ4_NL's codebook lookup is a byte shuffle of a 16-entry table
 * ({@code selectFrom}, {@code vpshufb} on x86). The scalar references ({@code dot*Scalar}) are ggml's generic C loops:
 * integer sums per block, one float multiply-add per block.
 */
final class Q8KernelsLegacy {
    private Q8KernelsLegacy() {}

    /** Whether this file has the type's kernels. */
    static boolean covers(GgmlType type) {
        return type == GgmlType.Q4_1 || type == GgmlType.Q5_0 || type == GgmlType.Q5_1 || type == GgmlType.IQ4_NL;
    }

    static Q8Kernels.RowDot rowDot(GgmlType type, boolean vector) {
        return switch (type) {
            case Q4_1 -> vector ? Q8KernelsLegacy::dotQ4_1 : Q8KernelsLegacy::dotQ4_1Scalar;
            case Q5_0 -> vector ? Q8KernelsLegacy::dotQ5_0 : Q8KernelsLegacy::dotQ5_0Scalar;
            case Q5_1 -> vector ? Q8KernelsLegacy::dotQ5_1 : Q8KernelsLegacy::dotQ5_1Scalar;
            case IQ4_NL -> vector ? Q8KernelsLegacy::dotIQ4_NL : Q8KernelsLegacy::dotIQ4_NLScalar;
            default -> throw new IllegalArgumentException("no legacy integer kernel for " + type);
        };
    }

    /** out[b·outDim + r] for rows [start, end) and every token b; one loop per type so that each call is static. */
    static void rows(GgmlType type, MemorySegment w, long rowBytes, int start, int end, Q8Activations x, float[] out, int outDim) {
        int batch = x.batch;
        switch (type) {
            case Q4_1 -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ4_1(w, r * rowBytes, x, b); }
            case Q5_0 -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ5_0(w, r * rowBytes, x, b); }
            case Q5_1 -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotQ5_1(w, r * rowBytes, x, b); }
            case IQ4_NL -> { for (int r = start; r < end; r++) for (int b = 0; b < batch; b++) out[b * outDim + r] = dotIQ4_NL(w, r * rowBytes, x, b); }
            default -> throw new IllegalArgumentException("no legacy integer kernel for " + type);
        }
    }

    /** kvalues_iq4nl (ggml-common.h): the 16 non-linear levels of IQ4_NL and IQ4_XS. */
    static final byte[] KVALUES_IQ4NL = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    private static float f16(MemorySegment w, long off) { return Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off)); }

    private static int u8(MemorySegment w, long off) { return w.get(ValueLayout.JAVA_BYTE, off) & 0xFF; }

    // ---- scalar references: ggml-cpu/quants.c's generic loops -------------------------------------------------

    /** Q4_1 {f16 d; f16 m; u8 qs[16]} × Q8_0 with block sums. */
    static float dotQ4_1Scalar(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        float sum = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 20L * blk;
            int xo = xr + 32 * blk, sumi = 0;
            for (int j = 0; j < 16; j++) {
                int q = u8(w, b + 4 + j);
                sumi += (q & 15) * a.q[xo + j] + (q >>> 4) * a.q[xo + 16 + j];
            }
            float dx = a.d[dr + blk];
            sum += f16(w, b) * dx * sumi + f16(w, b + 2) * (dx * a.sum32[dr + blk]);
        }
        return sum;
    }

    /** Q5_0 {f16 d; u32 qh; u8 qs[16]} × Q8_0: codes (nibble | bit j of qh << 4) − 16. */
    static float dotQ5_0Scalar(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        float sum = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 22L * blk;
            int qh = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + 2);
            int xo = xr + 32 * blk, sumi = 0;
            for (int j = 0; j < 16; j++) {
                int q = u8(w, b + 6 + j);
                int x0 = ((q & 15) | ((qh >>> j) & 1) << 4) - 16, x1 = ((q >>> 4) | ((qh >>> (j + 16)) & 1) << 4) - 16;
                sumi += x0 * a.q[xo + j] + x1 * a.q[xo + 16 + j];
            }
            sum += f16(w, b) * a.d[dr + blk] * sumi;
        }
        return sum;
    }

    /** Q5_1 {f16 d; f16 m; u32 qh; u8 qs[16]} × Q8_0 with block sums. */
    static float dotQ5_1Scalar(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        float sum = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 24L * blk;
            int qh = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + 4);
            int xo = xr + 32 * blk, sumi = 0;
            for (int j = 0; j < 16; j++) {
                int q = u8(w, b + 8 + j);
                int x0 = (q & 15) | ((qh >>> j) & 1) << 4, x1 = (q >>> 4) | ((qh >>> (j + 16)) & 1) << 4;
                sumi += x0 * a.q[xo + j] + x1 * a.q[xo + 16 + j];
            }
            float dx = a.d[dr + blk];
            sum += f16(w, b) * dx * sumi + f16(w, b + 2) * (dx * a.sum32[dr + blk]);
        }
        return sum;
    }

    /** IQ4_NL {f16 d; u8 qs[16]} × Q8_0: values kvalues[nibble]. */
    static float dotIQ4_NLScalar(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        float sum = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 18L * blk;
            int xo = xr + 32 * blk, sumi = 0;
            for (int j = 0; j < 16; j++) {
                int q = u8(w, b + 2 + j);
                sumi += KVALUES_IQ4NL[q & 15] * a.q[xo + j] + KVALUES_IQ4NL[q >>> 4] * a.q[xo + 16 + j];
            }
            sum += f16(w, b) * a.d[dr + blk] * sumi;
        }
        return sum;
    }

    // ---- Vector API ---------------------------------------------------------------------------------------------
    // The idioms of Q8Kernels, written out in place for the same reason (C2 does not inline helpers into methods this
    // large, and a vector crossing a call that is not inlined is boxed):
    //   16 bytes → 16 int16 lanes:  (ShortVector) ByteVector.fromMemorySegment(B128, w, off, LE).convertShape(B2S, S, 0)
    //   16 int16 lanes → 8 floats of neighbouring pair sums:
    //     (FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16)
    //                     .add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)
    // The lanes are added once per row with reduceLanes (an intrinsic) rather than FloatKernels.sum: that helper's
    // loop of rearranges, inlined into a kernel that C2 compiles while the helper has no type profile yet (the first
    // kernel a JVM runs, compiled early), stays as virtual calls into the Java fallback, about 1 µs per row.

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Lane j holds 1 << j: lane j of a broadcast qh word, ANDed with this, equals it iff bit j is set. */
    private static final ShortVector BIT = ShortVector.fromArray(S, new short[]{
            1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, (short) 32768}, 0);

    /** The codebook as a 16-lane byte table for {@code selectFrom}. */
    static final ByteVector KVALUES = ByteVector.fromArray(B128, KVALUES_IQ4NL, 0);

    /** Q4_1 × Q8_0: Q4_0's kernel without the offset, the minimum through the block sums. */
    static float dotQ4_1(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        FloatVector total = FloatVector.zero(F);
        float mins = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 20L * blk;
            int xo = xr + 32 * blk;
            ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 4, LE).convertShape(B2S, S, 0);
            ShortVector p = q.and((short) 15).mul(ShortVector.fromArray(S, xq, xo))
                    .add(q.lanewise(LSHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, xo + 16)));
            float dx = a.d[dr + blk];
            total = ((FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b) * dx), total);
            mins += f16(w, b + 2) * (dx * a.sum32[dr + blk]);
        }
        FloatVector v = total;
        return ((v.lane(0) + v.lane(4)) + (v.lane(2) + v.lane(6))) + ((v.lane(1) + v.lane(5)) + (v.lane(3) + v.lane(7))) + mins;
    }

    /** Q5_0 × Q8_0: 5-bit codes 0..31 in integers, the −16 offset through the block sums. */
    static float dotQ5_0(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        FloatVector total = FloatVector.zero(F);
        ShortVector zero = ShortVector.zero(S);
        float offsets = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 22L * blk;
            int xo = xr + 32 * blk;
            int qh = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + 2);
            ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 6, LE).convertShape(B2S, S, 0);
            ShortVector hLo = zero.blend((short) 16, ShortVector.broadcast(S, (short) qh).and(BIT).eq(BIT));
            ShortVector hHi = zero.blend((short) 16, ShortVector.broadcast(S, (short) (qh >>> 16)).and(BIT).eq(BIT));
            ShortVector p = q.and((short) 15).or(hLo).mul(ShortVector.fromArray(S, xq, xo))
                    .add(q.lanewise(LSHR, 4).and((short) 15).or(hHi).mul(ShortVector.fromArray(S, xq, xo + 16)));
            float f = f16(w, b) * a.d[dr + blk];
            total = ((FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f), total);
            offsets += f * a.sum32[dr + blk];
        }
        FloatVector v = total;
        return ((v.lane(0) + v.lane(4)) + (v.lane(2) + v.lane(6))) + ((v.lane(1) + v.lane(5)) + (v.lane(3) + v.lane(7))) - 16 * offsets;
    }

    /** Q5_1 × Q8_0: 5-bit codes 0..31 in integers, the minimum through the block sums. */
    static float dotQ5_1(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        FloatVector total = FloatVector.zero(F);
        ShortVector zero = ShortVector.zero(S);
        float mins = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 24L * blk;
            int xo = xr + 32 * blk;
            int qh = w.get(ValueLayout.JAVA_INT_UNALIGNED, b + 4);
            ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 8, LE).convertShape(B2S, S, 0);
            ShortVector hLo = zero.blend((short) 16, ShortVector.broadcast(S, (short) qh).and(BIT).eq(BIT));
            ShortVector hHi = zero.blend((short) 16, ShortVector.broadcast(S, (short) (qh >>> 16)).and(BIT).eq(BIT));
            ShortVector p = q.and((short) 15).or(hLo).mul(ShortVector.fromArray(S, xq, xo))
                    .add(q.lanewise(LSHR, 4).and((short) 15).or(hHi).mul(ShortVector.fromArray(S, xq, xo + 16)));
            float dx = a.d[dr + blk];
            total = ((FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b) * dx), total);
            mins += f16(w, b + 2) * (dx * a.sum32[dr + blk]);
        }
        FloatVector v = total;
        return ((v.lane(0) + v.lane(4)) + (v.lane(2) + v.lane(6))) + ((v.lane(1) + v.lane(5)) + (v.lane(3) + v.lane(7))) + mins;
    }

    /** IQ4_NL × Q8_0: the 4-bit indices looked up in the codebook by a byte shuffle, then int16 products. */
    static float dotIQ4_NL(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F);
        int blk = 0;
        for (; blk + 2 <= nb; blk += 2) {
            long b = off + 18L * blk;
            int xo = xr + 32 * blk;
            ByteVector q0 = ByteVector.fromMemorySegment(B128, w, b + 2, LE), q1 = ByteVector.fromMemorySegment(B128, w, b + 20, LE);
            ShortVector p0 = ((ShortVector) q0.and((byte) 15).selectFrom(KVALUES).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo))
                    .add(((ShortVector) q0.lanewise(LSHR, 4).and((byte) 15).selectFrom(KVALUES).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 16)));
            ShortVector p1 = ((ShortVector) q1.and((byte) 15).selectFrom(KVALUES).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 32))
                    .add(((ShortVector) q1.lanewise(LSHR, 4).and((byte) 15).selectFrom(KVALUES).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 48)));
            t0 = ((FloatVector) p0.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p0.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b) * a.d[dr + blk]), t0);
            t1 = ((FloatVector) p1.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p1.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b + 18) * a.d[dr + blk + 1]), t1);
        }
        for (; blk < nb; blk++) {
            long b = off + 18L * blk;
            int xo = xr + 32 * blk;
            ByteVector q = ByteVector.fromMemorySegment(B128, w, b + 2, LE);
            ShortVector p = ((ShortVector) q.and((byte) 15).selectFrom(KVALUES).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo))
                    .add(((ShortVector) q.lanewise(LSHR, 4).and((byte) 15).selectFrom(KVALUES).convertShape(B2S, S, 0)).mul(ShortVector.fromArray(S, xq, xo + 16)));
            t0 = ((FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f16(w, b) * a.d[dr + blk]), t0);
        }
        FloatVector v = t0.add(t1);
        return ((v.lane(0) + v.lane(4)) + (v.lane(2) + v.lane(6))) + ((v.lane(1) + v.lane(5)) + (v.lane(3) + v.lane(7)));
    }
}
