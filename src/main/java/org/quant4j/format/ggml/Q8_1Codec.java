package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * Q8_1: the activation format of ggml's Q4_1 / Q5_1 dot products. Blocks of 32 values, an fp16 scale d, an fp16
 * s = d·Σq and 32 signed bytes q; x = d·q. Layout: d, s (2 bytes each), qs (32 bytes). ggml never stores weights in
 * it and has no dequantize_row_q8_1; {@link #dequantize} is the plain d·q.
 */
public final class Q8_1Codec implements BlockCodec {
    public static final Q8_1Codec INSTANCE = new Q8_1Codec();
    private static final int QK = 32, BLOCK_BYTES = 36;

    private Q8_1Codec() {}

    @Override public GgmlType type() { return GgmlType.Q8_1; }

    /** quantize_row_q8_1_ref: d = amax/127, q = roundf(x/d), s = fp16(Σq · d). */
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
            int sum = 0;
            for (int j = 0; j < QK; ++j) {
                int q = (byte) (int) roundf(x[xb + j] * id);
                putByte(dst, yb + 4 + j, q);
                sum += q;
            }
            putHalf(dst, yb + 2, fp32ToFp16(sum * d));
        }
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            int yb = dstOff + i * QK;
            float d = fp16ToFp32(getHalf(src, xb));
            for (int j = 0; j < QK; ++j) dst[yb + j] = src.get(I8, xb + 4 + j) * d;
        }
    }
}
