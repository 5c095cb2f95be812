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
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    // Two idioms are written out in place below rather than as helper methods: C2 stops inlining small helpers in
    // methods this large ("callee is too large"), and a vector crossing a call that is not inlined is boxed on the heap,
    // which made these kernels 3-5x slower. They are:
    //   16 bytes → 16 int16 lanes:  (ShortVector) ByteVector.fromMemorySegment(B128, w, off, LE).convertShape(B2S, S, 0)
    //   16 int16 lanes → 8 floats of neighbouring pair sums p[2k] + p[2k+1], through the int32 view of the same bits:
    //     (FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16)
    //                     .add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)

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
        return FloatKernels.sum(t0.add(t1));
    }

    /**
     * Q4_0 × Q8_0: Σ_blocks d_w·d_x·(Σ nibble·q_x − 8·Σ q_x), low nibbles the first 16 values of each block; the
     * offset goes through the activation sums rather than into every lane.
     */
    static float dotQ4_0(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 32, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        FloatVector total = FloatVector.zero(F);
        float offsets = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 18L * blk;
            int xo = xr + 32 * blk;
            ShortVector q = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 2, LE).convertShape(B2S, S, 0);
            ShortVector p = q.and((short) 15).mul(ShortVector.fromArray(S, xq, xo))
                    .add(q.lanewise(LSHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, xo + 16)));
            float f = f16(w, b) * a.d[dr + blk];
            total = ((FloatVector) p.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, f), total);
            offsets += f * a.sum32[dr + blk];
        }
        return FloatKernels.sum(total) - 8 * offsets;
    }

    /**
     * Q4_K × Q8_K: per sub-block j of 32, d·sc_j·Σ q·q_x − dmin·m_j·Σ q_x, times d_x; each 32 bytes of codes hold
     * sub-block 2j in their low nibbles and 2j+1 in their high nibbles.
     */
    static float dotQ4_K(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb, sr = row * (n / 32);
        short[] xq = a.q;
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F);
        float mins = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 144L * blk;
            int xb = xr + 256 * blk;
            float dx = a.d[dr + blk], d = f16(w, b) * dx, dmin = f16(w, b + 2) * dx;
            long sLo = BlockKernels.scalesLo(w, b + 4);   // the 12 bytes of 6-bit scales and minimums
            int sHi = BlockKernels.scalesHi(w, b + 4);
            int msum = 0;
            for (int j = 0; j < 4; j++) {
                int sc1 = BlockKernels.kScale(sLo, sHi, 2 * j), m1 = BlockKernels.kMin(sLo, sHi, 2 * j), sc2 = BlockKernels.kScale(sLo, sHi, 2 * j + 1), m2 = BlockKernels.kMin(sLo, sHi, 2 * j + 1);
                long q = b + 16 + 32L * j;
                int xo = xb + 64 * j;
                ShortVector v0 = ((ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(B2S, S, 0)), v1 = ((ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(B2S, S, 0));
                ShortVector pLo = v0.and((short) 15).mul(ShortVector.fromArray(S, xq, xo))
                        .add(v1.and((short) 15).mul(ShortVector.fromArray(S, xq, xo + 16)));
                ShortVector pHi = v0.lanewise(LSHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, xo + 32))
                        .add(v1.lanewise(LSHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xq, xo + 48)));
                t0 = ((FloatVector) pLo.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(pLo.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d * sc1), t0);
                t1 = ((FloatVector) pHi.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(pHi.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d * sc2), t1);
                int g = sr + 8 * blk + 2 * j;
                msum += m1 * a.sum32[g] + m2 * a.sum32[g + 1];
            }
            mins += dmin * msum;
        }
        return FloatKernels.sum(t0.add(t1)) - mins;
    }

    /** Q5_K × Q8_K: Q4_K's sub-blocks with a fifth bit per code from qh (bit 2j for sub-block 2j, 2j+1 for 2j+1). */
    static float dotQ5_K(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb, sr = row * (n / 32);
        short[] xq = a.q;
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F);
        float mins = 0;
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 176L * blk;
            int xb = xr + 256 * blk;
            float dx = a.d[dr + blk], d = f16(w, b) * dx, dmin = f16(w, b + 2) * dx;
            long sLo = BlockKernels.scalesLo(w, b + 4);   // the 12 bytes of 6-bit scales and minimums
            int sHi = BlockKernels.scalesHi(w, b + 4);
            ShortVector h0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 16, LE).convertShape(B2S, S, 0);
            ShortVector h1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, b + 32, LE).convertShape(B2S, S, 0);
            int msum = 0;
            for (int j = 0; j < 4; j++) {
                int sc1 = BlockKernels.kScale(sLo, sHi, 2 * j), m1 = BlockKernels.kMin(sLo, sHi, 2 * j), sc2 = BlockKernels.kScale(sLo, sHi, 2 * j + 1), m2 = BlockKernels.kMin(sLo, sHi, 2 * j + 1);
                long q = b + 48 + 32L * j;
                int xo = xb + 64 * j;
                ShortVector v0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q, LE).convertShape(B2S, S, 0);
                ShortVector v1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, q + 16, LE).convertShape(B2S, S, 0);
                ShortVector lo0 = v0.and((short) 15).or(h0.lanewise(LSHR, 2 * j).and((short) 1).lanewise(LSHL, 4));
                ShortVector lo1 = v1.and((short) 15).or(h1.lanewise(LSHR, 2 * j).and((short) 1).lanewise(LSHL, 4));
                ShortVector hi0 = v0.lanewise(LSHR, 4).and((short) 15).or(h0.lanewise(LSHR, 2 * j + 1).and((short) 1).lanewise(LSHL, 4));
                ShortVector hi1 = v1.lanewise(LSHR, 4).and((short) 15).or(h1.lanewise(LSHR, 2 * j + 1).and((short) 1).lanewise(LSHL, 4));
                ShortVector pLo = lo0.mul(ShortVector.fromArray(S, xq, xo)).add(lo1.mul(ShortVector.fromArray(S, xq, xo + 16)));
                ShortVector pHi = hi0.mul(ShortVector.fromArray(S, xq, xo + 32)).add(hi1.mul(ShortVector.fromArray(S, xq, xo + 48)));
                t0 = ((FloatVector) pLo.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(pLo.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d * sc1), t0);
                t1 = ((FloatVector) pHi.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(pHi.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d * sc2), t1);
                int g = sr + 8 * blk + 2 * j;
                msum += m1 * a.sum32[g] + m2 * a.sum32[g + 1];
            }
            mins += dmin * msum;
        }
        return FloatKernels.sum(t0.add(t1)) - mins;
    }

    /**
     * Q6_K × Q8_K: 16 sub-blocks of 16 with int8 scales, codes (6 bits − 32): per sub-block d·sc·Σ q·q_x, times d_x.
     */
    static float dotQ6_K(MemorySegment w, long off, Q8Activations a, int row) {
        int n = a.n, nb = n / 256, xr = row * n, dr = row * nb;
        short[] xq = a.q;
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F);
        for (int blk = 0; blk < nb; blk++) {
            long b = off + 210L * blk;
            int xb = xr + 256 * blk;
            float d = f16(w, b + 208) * a.d[dr + blk];
            for (int half = 0; half < 2; half++) {
                long ql = b + 64L * half, qh = b + 128 + 32L * half, sc = b + 192 + 8L * half;
                int xo = xb + 128 * half;
                for (int is = 0; is < 2; is++) {
                    int l = 16 * is;
                    ShortVector lo = ((ShortVector) ByteVector.fromMemorySegment(B128, w, ql + l, LE).convertShape(B2S, S, 0)), hi = ((ShortVector) ByteVector.fromMemorySegment(B128, w, ql + 32 + l, LE).convertShape(B2S, S, 0)), h = ((ShortVector) ByteVector.fromMemorySegment(B128, w, qh + l, LE).convertShape(B2S, S, 0));
                    ShortVector q1 = lo.and((short) 15).or(h.and((short) 3).lanewise(LSHL, 4)).sub((short) 32);
                    ShortVector q2 = hi.and((short) 15).or(h.lanewise(LSHR, 2).and((short) 3).lanewise(LSHL, 4)).sub((short) 32);
                    ShortVector q3 = lo.lanewise(LSHR, 4).and((short) 15).or(h.lanewise(LSHR, 4).and((short) 3).lanewise(LSHL, 4)).sub((short) 32);
                    ShortVector q4 = hi.lanewise(LSHR, 4).and((short) 15).or(h.lanewise(LSHR, 6).and((short) 3).lanewise(LSHL, 4)).sub((short) 32);
                    ShortVector p1 = q1.mul(ShortVector.fromArray(S, xq, xo + l));
                    t0 = ((FloatVector) p1.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p1.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is)), t0);
                    ShortVector p2 = q2.mul(ShortVector.fromArray(S, xq, xo + 32 + l));
                    t1 = ((FloatVector) p2.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p2.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2)), t1);
                    ShortVector p3 = q3.mul(ShortVector.fromArray(S, xq, xo + 64 + l));
                    t0 = ((FloatVector) p3.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p3.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4)), t0);
                    ShortVector p4 = q4.mul(ShortVector.fromArray(S, xq, xo + 96 + l));
                    t1 = ((FloatVector) p4.reinterpretAsInts().lanewise(LSHL, 16).lanewise(ASHR, 16).add(p4.reinterpretAsInts().lanewise(ASHR, 16)).convertShape(I2F, F, 0)).fma(FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6)), t1);
                }
            }
        }
        return FloatKernels.sum(t0.add(t1));
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
