package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * Q4_0: blocks of 32 values, an fp16 scale d and 32 four-bit codes q (two per byte, value j in the low nibble of byte j,
 * value j+16 in the high nibble); x = d·(q - 8). Layout: d (2 bytes), qs (16 bytes).
 */
public final class Q4_0Codec implements BlockCodec {
    public static final Q4_0Codec INSTANCE = new Q4_0Codec();
    private static final int QK = 32, BLOCK_BYTES = 18;

    private Q4_0Codec() {}

    @Override public GgmlType type() { return GgmlType.Q4_0; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        if (importance == null) quantizeRef(x, xOff, n, dst, dstOff);
        else quantizeImpl(x, xOff, n, importance, dst, dstOff);
    }

    /** quantize_row_q4_0_ref: d = max/-8 where max is the value of largest magnitude; codes truncate x/d + 8.5. */
    static void quantizeRef(float[] x, int xOff, int n, MemorySegment dst, long dstOff) {
        for (int i = 0; i < n / QK; i++) {
            int xb = xOff + i * QK;
            long yb = dstOff + (long) i * BLOCK_BYTES;
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++) {
                float v = x[xb + j];
                if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            putHalf(dst, yb, fp32ToFp16(d));
            for (int j = 0; j < QK / 2; ++j) {
                float x0 = x[xb + j] * id;
                float x1 = x[xb + QK / 2 + j] * id;
                int xi0 = Math.min(15, (byte) truncate(x0 + 8.5f));
                int xi1 = Math.min(15, (byte) truncate(x1 + 8.5f));
                putByte(dst, yb + 2 + j, xi0 | (xi1 << 4));
            }
        }
    }

    /** quantize_row_q4_0_impl: make_qx_quants per block with weights qw·sqrt(σ² + x²). */
    static void quantizeImpl(float[] x, int xOff, int n, float[] qw, MemorySegment dst, long dstOff) {
        float[] weight = new float[QK]; // (QK)
        byte[] L = new byte[QK];        // (QK) codes 0..15
        float sigma2 = rowSigma2(x, xOff, n);
        for (int ib = 0; ib < n / QK; ++ib) {
            int xb = xOff + QK * ib;
            long yb = dstOff + (long) ib * BLOCK_BYTES;
            for (int j = 0; j < QK; ++j) {
                weight[j] = qw[QK * ib + j] * (float) Math.sqrt(sigma2 + x[xb + j] * x[xb + j]);
            }
            float d = makeQxQuants(QK, 8, x, xb, L, weight);
            putHalf(dst, yb, fp32ToFp16(d));
            for (int j = 0; j < 16; ++j) putByte(dst, yb + 2 + j, L[j] | (L[j + 16] << 4));
        }
    }

    /** dequantize_row_q4_0 */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            int yb = dstOff + i * QK;
            float d = fp16ToFp32(getHalf(src, xb));
            for (int j = 0; j < QK / 2; ++j) {
                int q = getByte(src, xb + 2 + j);
                dst[yb + j] = ((q & 0x0F) - 8) * d;
                dst[yb + j + QK / 2] = ((q >>> 4) - 8) * d;
            }
        }
    }
}
