package org.quant4j.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.quant4j.format.GgmlType;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Ternary matrix-vector products (BitNet b1.58 weights stored as ggml TQ2_0 / TQ1_0) without weight multiplies.
 *
 * <p>As llama.cpp's TQ kernels do, the activations are quantized once per matmul to Q8_K: per block of 256 values an
 * int8 code a_i = min(127, rint(x_i · (−127 / max))) (max: the value of largest magnitude, sign kept) and a float
 * scale d_x = 1 / (−127 / max). A weight block is d_w · t_i with t_i ∈ {−1, 0, 1} (d_w fp16), so
 * <pre>
 *   Σ_i w_i · x_i ≈ Σ_blocks d_w · d_x · (Σ_{t_i = 1} a_i − Σ_{t_i = −1} a_i)
 * </pre>
 * The inner sum only adds and subtracts int8 codes (selected by the ternary codes through masks); there is one float
 * multiply per 256-block. The block sum is an exact int, so the Vector API path and the scalar reference give
 * bit-identical results (the float accumulation over blocks is the same loop in both).
 *
 * <p>Layouts (ggml-common.h): TQ2_0 {u8 qs[64]; f16 d}: byte m of 32-byte group g holds values 128g + 32k + m in
 * bits 2k..2k+1 as t + 1. TQ1_0 {u8 qs[48]; u8 qh[4]; f16 d}: base-3 digits, byte b's k-th trit is
 * ((b·3^k mod 256)·3) >> 8, i.e. 0 below 86, 1 below 171, else 2 (t + 1); qs[0..32) hold values m + 32k (k < 5),
 * qs[32..48) values 160 + m + 16k (k < 5), qh[j] values 240 + 4k + j (k < 4).
 */
public final class TernaryKernels {
    private TernaryKernels() {}

    static final int QK_K = 256;
    private static final int TQ2_BYTES = 66, TQ1_BYTES = 54;

    private static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    // ---- the matmul -------------------------------------------------------------------------------------------

    /**
     * out[b * outDim + r] = Σ_i W[r, i] · x[b * in + i] for a TQ1_0 or TQ2_0 weight [outDim, in], the activations of
     * each of the {@code batch} tokens quantized to Q8_K once, rows shared among the {@link Parallel} threads.
     */
    public static void matmul(Tensor w, float[] x, float[] out, int batch) {
        GgmlType type = (GgmlType) w.type();
        int in = (int) w.cols(), outDim = (int) w.rows();
        if (in % QK_K != 0) throw new Q4jException("tensor " + w.name() + ": " + type + " rows of " + in + " values do not divide into blocks of 256");
        int blocks = in / QK_K;
        byte[] a = new byte[batch * in];          // (batch, in) int8 activation codes
        float[] dx = new float[batch * blocks];   // (batch, blocks) activation scales
        for (int b = 0; b < batch; b++) Q8Activations.quantizeQ8K(x, b * in, in, a, b * in, dx, b * blocks);
        boolean vector = Kernels.vector();
        long rowBytes = type.rowBytes(in);
        MemorySegment seg = Kernels.view(w.data()); // one segment class for every kernel (see Kernels.view)
        Parallel.forRange(outDim, MatMul.grain(in, batch), (start, end) -> {
            for (int r = start; r < end; r++) {
                long off = r * rowBytes;
                for (int b = 0; b < batch; b++) out[b * outDim + r] = dot(type, vector, seg, off, a, b * in, dx, b * blocks, in);
            }
        });
    }

    /** One weight row against one token's Q8_K activations, on the selected path. */
    public static float dot(GgmlType type, boolean vector, MemorySegment w, long off, byte[] a, int aOff, float[] dx, int dxOff, int n) {
        return switch (type) {
            case TQ2_0 -> vector ? dotTQ2_0(w, off, a, aOff, dx, dxOff, n) : dotTQ2_0Scalar(w, off, a, aOff, dx, dxOff, n);
            case TQ1_0 -> vector ? dotTQ1_0(w, off, a, aOff, dx, dxOff, n) : dotTQ1_0Scalar(w, off, a, aOff, dx, dxOff, n);
            default -> throw new Q4jException("no ternary kernel for " + type);
        };
    }

    // ---- scalar reference -------------------------------------------------------------------------------------

    /** TQ2_0 · Q8_K, one value at a time: code 2 adds a, code 0 subtracts it. */
    public static float dotTQ2_0Scalar(MemorySegment w, long off, byte[] a, int aOff, float[] dx, int dxOff, int n) {
        float sum = 0;
        for (int blk = 0; blk < n / QK_K; blk++) {
            long wb = off + (long) TQ2_BYTES * blk;
            int ab = aOff + blk * QK_K;
            int s = 0;
            for (int g = 0; g < 2; g++) {
                for (int m = 0; m < 32; m++) {
                    int q = u8(w, wb + 32 * g + m);
                    for (int k = 0; k < 4; k++) {
                        int c = (q >>> (2 * k)) & 3, ai = a[ab + 128 * g + 32 * k + m];
                        if (c == 2) s += ai;
                        else if (c == 0) s -= ai;
                    }
                }
            }
            sum += f16(w, wb + 64) * dx[dxOff + blk] * s;
        }
        return sum;
    }

    /** TQ1_0 · Q8_K, one value at a time, trits decoded as ggml's dequantize_row_tq1_0 does. */
    public static float dotTQ1_0Scalar(MemorySegment w, long off, byte[] a, int aOff, float[] dx, int dxOff, int n) {
        float sum = 0;
        for (int blk = 0; blk < n / QK_K; blk++) {
            long wb = off + (long) TQ1_BYTES * blk;
            int ab = aOff + blk * QK_K;
            int s = 0;
            for (int k = 0; k < 5; k++) {
                for (int m = 0; m < 32; m++) s += signed(trit(u8(w, wb + m), k), a[ab + 32 * k + m]);
                for (int m = 0; m < 16; m++) s += signed(trit(u8(w, wb + 32 + m), k), a[ab + 160 + 16 * k + m]);
            }
            for (int k = 0; k < 4; k++) {
                for (int j = 0; j < 4; j++) s += signed(trit(u8(w, wb + 48 + j), k), a[ab + 240 + 4 * k + j]);
            }
            sum += f16(w, wb + 52) * dx[dxOff + blk] * s;
        }
        return sum;
    }

    private static final int[] POW3 = {1, 3, 9, 27, 81};

    /** The k-th base-3 digit (0, 1, 2 = t + 1) of a TQ1_0 byte. */
    private static int trit(int b, int k) { return (((b * POW3[k]) & 0xff) * 3) >>> 8; }

    /** a selected by the trit: +a for t = 1, −a for t = −1, 0 for t = 0 (no multiply). */
    private static int signed(int trit, int a) { return trit == 2 ? a : trit == 0 ? -a : 0; }

    private static int u8(MemorySegment w, long off) { return w.get(ValueLayout.JAVA_BYTE, off) & 0xff; }

    private static float f16(MemorySegment w, long off) { return Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off)); }

    // ---- Vector API -------------------------------------------------------------------------------------------
    //
    // Per block, each group of 32 (or 16) codes selects its activations with two masks (t = 1, t = −1); the selected
    // int8 values, a or −a or 0, are widened in pairs into 16-bit lanes (a byte pair seen as one short: low byte
    // (s << 8) >> 8, high byte s >> 8) and summed there (at most 16 · 127 per lane per block); the block's int sum
    // is reduced once per block.

    /** TQ2_0 · Q8_K with the Vector API (AVX2: 32 byte lanes). */
    public static float dotTQ2_0(MemorySegment w, long off, byte[] a, int aOff, float[] dx, int dxOff, int n) {
        float sum = 0;
        ByteVector zero = ByteVector.zero(B256);
        for (int blk = 0; blk < n / QK_K; blk++) {
            long wb = off + (long) TQ2_BYTES * blk;
            int ab = aOff + blk * QK_K;
            ShortVector acc = ShortVector.zero(ShortVector.SPECIES_256);   // (16) pairs of selected activations
            for (int g = 0; g < 2; g++) {
                ByteVector q = ByteVector.fromMemorySegment(B256, w, wb + 32 * g, LE);
                for (int k = 0; k < 4; k++) {
                    ByteVector c = q.lanewise(VectorOperators.LSHR, 2 * k).and((byte) 3);     // t + 1
                    ByteVector act = ByteVector.fromArray(B256, a, ab + 128 * g + 32 * k);
                    ByteVector sel = zero.blend(act, c.eq((byte) 2)).sub(zero.blend(act, c.eq((byte) 0)));
                    ShortVector s = sel.reinterpretAsShorts();
                    acc = acc.add(s.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8)).add(s.lanewise(VectorOperators.ASHR, 8));
                }
            }
            IntVector pairs = acc.reinterpretAsInts();
            int s = pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(pairs.lanewise(VectorOperators.ASHR, 16)).reduceLanes(VectorOperators.ADD);
            sum += f16(w, wb + 64) * dx[dxOff + blk] * s;
        }
        return sum;
    }

    /** Lane 4k + j of the qh vector multiplies qh[j] by 3^k. */
    private static final ByteVector QH_POW3 = ByteVector.fromArray(B128, new byte[]{1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27}, 0);

    /** TQ1_0 · Q8_K with the Vector API: trits by unsigned thresholds on b·3^k mod 256 (×3 as two byte adds). */
    public static float dotTQ1_0(MemorySegment w, long off, byte[] a, int aOff, float[] dx, int dxOff, int n) {
        float sum = 0;
        ByteVector zero = ByteVector.zero(B256), zero16 = ByteVector.zero(B128);
        for (int blk = 0; blk < n / QK_K; blk++) {
            long wb = off + (long) TQ1_BYTES * blk;
            int ab = aOff + blk * QK_K;
            ShortVector acc = ShortVector.zero(ShortVector.SPECIES_256);   // (16) from qs[0..32)
            ShortVector acc16 = ShortVector.zero(ShortVector.SPECIES_128); // (8) from qs[32..48) and qh
            ByteVector q = ByteVector.fromMemorySegment(B256, w, wb, LE);          // b · 3^k mod 256
            ByteVector q16 = ByteVector.fromMemorySegment(B128, w, wb + 32, LE);
            for (int k = 0; k < 5; k++) {
                ByteVector act = ByteVector.fromArray(B256, a, ab + 32 * k);
                ByteVector sel = zero.blend(act, q.compare(VectorOperators.UGE, (byte) 171)).sub(zero.blend(act, q.compare(VectorOperators.ULT, (byte) 86)));
                ShortVector s = sel.reinterpretAsShorts();
                acc = acc.add(s.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8)).add(s.lanewise(VectorOperators.ASHR, 8));
                ByteVector act16 = ByteVector.fromArray(B128, a, ab + 160 + 16 * k);
                ByteVector sel16 = zero16.blend(act16, q16.compare(VectorOperators.UGE, (byte) 171)).sub(zero16.blend(act16, q16.compare(VectorOperators.ULT, (byte) 86)));
                ShortVector s16 = sel16.reinterpretAsShorts();
                acc16 = acc16.add(s16.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8)).add(s16.lanewise(VectorOperators.ASHR, 8));
                q = q.add(q).add(q);
                q16 = q16.add(q16).add(q16);
            }
            // qh: the 4 bytes repeated over 16 lanes, lane 4k + j scaled to its k-th trit
            int qh = w.get(ValueLayout.JAVA_INT_UNALIGNED, wb + 48);
            ByteVector h = IntVector.broadcast(IntVector.SPECIES_128, qh).reinterpretAsBytes().mul(QH_POW3);
            ByteVector actH = ByteVector.fromArray(B128, a, ab + 240);
            ByteVector selH = zero16.blend(actH, h.compare(VectorOperators.UGE, (byte) 171)).sub(zero16.blend(actH, h.compare(VectorOperators.ULT, (byte) 86)));
            ShortVector sH = selH.reinterpretAsShorts();
            acc16 = acc16.add(sH.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 8)).add(sH.lanewise(VectorOperators.ASHR, 8));
            IntVector pairs = acc.reinterpretAsInts(), pairs16 = acc16.reinterpretAsInts();
            int s = pairs.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(pairs.lanewise(VectorOperators.ASHR, 16)).reduceLanes(VectorOperators.ADD)
                    + pairs16.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(pairs16.lanewise(VectorOperators.ASHR, 16)).reduceLanes(VectorOperators.ADD);
            sum += f16(w, wb + 52) * dx[dxOff + blk] * s;
        }
        return sum;
    }
}
