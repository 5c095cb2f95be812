package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * Q8_0: blocks of 32 values, an fp16 scale d and 32 signed bytes q; x = d·q. Layout: d (2 bytes), qs (32 bytes).
 * ggml ignores an importance matrix for this type.
 */
public final class Q8_0Codec implements BlockCodec {
    public static final Q8_0Codec INSTANCE = new Q8_0Codec();
    private static final int QK = 32, BLOCK_BYTES = 34;

    private Q8_0Codec() {}

    @Override public GgmlType type() { return GgmlType.Q8_0; }

    /** quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d) (halves away from zero). */
    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK; i++) {
            int xb = xOff + i * QK;
            long yb = dstOff + (long) i * BLOCK_BYTES;
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[xb + j]));
            float d = amax / ((1 << 7) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            putHalf(dst, yb, fp32ToFp16(d));
            for (int j = 0; j < QK; ++j) putByte(dst, yb + 2 + j, (int) roundf(x[xb + j] * id));
        }
    }

    /** dequantize_row_q8_0 */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            int yb = dstOff + i * QK;
            float d = fp16ToFp32(getHalf(src, xb));
            for (int j = 0; j < QK; ++j) dst[yb + j] = src.get(I8, xb + 2 + j) * d;
        }
    }
}
