package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * TQ2_0 (ternary, 2.0625 bits per weight): super-blocks of 256 values t ∈ {-1, 0, 1} times an fp16 scale d = amax,
 * stored as t + 1 in two bits, four per byte: byte m of each 32-byte group holds values m + 32n in bits 2n..2n+1.
 * Layout: qs (64 bytes), d (2 bytes). ggml ignores an importance matrix for this type.
 */
public final class TQ2_0Codec implements BlockCodec {
    public static final TQ2_0Codec INSTANCE = new TQ2_0Codec();
    private static final int QK_K = 256, BLOCK_BYTES = 66, QS = 64;

    private TQ2_0Codec() {}

    @Override public GgmlType type() { return GgmlType.TQ2_0; }

    /** quantize_row_tq2_0_ref: t = lroundf(x/amax) (halves away from zero). */
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
            putHalf(dst, yb + QS, fp32ToFp16(d));
            for (int j = 0; j < QS; j += 32) {
                int at = xb + 4 * j; // 128 values per 32 bytes
                for (int m = 0; m < 32; ++m) {
                    int q = 0;
                    for (int k = 0; k < 4; ++k) {
                        int xi = (int) roundf(x[at + m + k * 32] * id) + 1; // -1, 0, 1 -> 0, 1, 2
                        q += (xi & 3) << (2 * k);
                    }
                    putByte(dst, yb + j + m, q);
                }
            }
        }
    }

    /** dequantize_row_tq2_0 */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK_K; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            float d = fp16ToFp32(getHalf(src, xb + QS));
            int y = dstOff + i * QK_K;
            for (int j = 0; j < QS; j += 32) {
                for (int k = 0; k < 4; ++k) {
                    for (int m = 0; m < 32; ++m) dst[y++] = (((getByte(src, xb + j + m) >>> (2 * k)) & 3) - 1) * d;
                }
            }
        }
    }
}
