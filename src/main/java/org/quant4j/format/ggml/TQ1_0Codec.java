package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * TQ1_0 (ternary, 1.6875 bits per weight): super-blocks of 256 values t ∈ {-1, 0, 1} times an fp16 scale d = amax.
 * Trits are stored base 3, five per byte in qs (the first 160 values as 32 bytes whose n-th trit is value m + 32n,
 * then 80 values as 16 bytes, value m + 16n) and four per byte in qh (value j + 4m, shifted up one trit), each byte
 * holding ceil(t·256/243) so that the n-th trit is the top of (byte·3^n mod 256)·3 / 256. Layout: qs (48 bytes),
 * qh (4 bytes), d (2 bytes). ggml ignores an importance matrix for this type.
 */
public final class TQ1_0Codec implements BlockCodec {
    public static final TQ1_0Codec INSTANCE = new TQ1_0Codec();
    private static final int QK_K = 256, BLOCK_BYTES = 54, QS = 48, QH = 4;
    private static final int[] POW3 = {1, 3, 9, 27, 81, 243};

    private TQ1_0Codec() {}

    @Override public GgmlType type() { return GgmlType.TQ1_0; }

    /** quantize_row_tq1_0_ref: t = lroundf(x/amax) (halves away from zero). */
    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK_K; i++) {
            int xb = xOff + i * QK_K;
            long yb = dstOff + (long) i * BLOCK_BYTES;
            float amax = 0;
            for (int j = 0; j < QK_K; j++) amax = Math.max(amax, Math.abs(x[xb + j]));
            float d = amax;
            float id = d != 0 ? 1.0f / d : 0.0f;
            putHalf(dst, yb + QS + QH, fp32ToFp16(d));
            int at = xb;
            // 5 values per byte, along 32 bytes
            for (int m = 0; m < 32; ++m) putByte(dst, yb + m, pack(x, at + m, 32, 5, id, false));
            at += 5 * 32;
            // 5 values per byte, along 16 bytes
            for (int m = 0; m < 16; ++m) putByte(dst, yb + 32 + m, pack(x, at + m, 16, 5, id, false));
            at += 5 * 16;
            // 4 values per byte
            for (int j = 0; j < QH; ++j) putByte(dst, yb + QS + j, pack(x, at + j, QH, 4, id, true));
        }
    }

    /** count trits x[first + stride·k]·id, most significant first, scaled to a byte by ceiling division. */
    private static int pack(float[] x, int first, int stride, int count, float id, boolean shift) {
        int q = 0;
        for (int k = 0; k < count; ++k) {
            int xi = (int) roundf(x[first + k * stride] * id) + 1; // -1, 0, 1 -> 0, 1, 2
            q = (q * 3 + xi) & 0xff;
        }
        if (shift) q = (q * 3) & 0xff; // the first value in the most significant of five trits
        return (q * 256 + (243 - 1)) / 243;
    }

    /** dequantize_row_tq1_0 */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK_K; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            float d = fp16ToFp32(getHalf(src, xb + QS + QH));
            int y = dstOff + i * QK_K;
            for (int k = 0; k < 5; ++k) {
                for (int m = 0; m < 32; ++m) dst[y++] = (trit(getByte(src, xb + m), k) - 1) * d;
            }
            for (int k = 0; k < 5; ++k) {
                for (int m = 0; m < 16; ++m) dst[y++] = (trit(getByte(src, xb + 32 + m), k) - 1) * d;
            }
            for (int k = 0; k < 4; ++k) {
                for (int j = 0; j < QH; ++j) dst[y++] = (trit(getByte(src, xb + QS + j), k) - 1) * d;
            }
        }
    }

    /** The k-th trit (most significant first) of a byte written by {@link #pack}. */
    private static int trit(int b, int k) {
        int q = (b * POW3[k]) & 0xff;
        return (q * 3) >>> 8;
    }
}
