package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * Q5_0: blocks of 32 values, an fp16 scale d and 32 five-bit codes q; x = d·(q - 16). The low four bits are packed as
 * in Q4_0 (value j low nibble of qs[j], value j+16 high nibble), the fifth bit of value j is bit j of the
 * little-endian 32-bit qh. Layout: d (2 bytes), qh (4 bytes), qs (16 bytes).
 */
public final class Q5_0Codec implements BlockCodec {
    public static final Q5_0Codec INSTANCE = new Q5_0Codec();
    private static final int QK = 32, BLOCK_BYTES = 22;

    private Q5_0Codec() {}

    @Override public GgmlType type() { return GgmlType.Q5_0; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        if (importance == null) quantizeRef(x, xOff, n, dst, dstOff);
        else quantizeImpl(x, xOff, n, importance, dst, dstOff);
    }

    /** quantize_row_q5_0_ref: d = max/-16 where max is the value of largest magnitude; codes truncate x/d + 16.5. */
    static void quantizeRef(float[] x, int xOff, int n, MemorySegment dst, long dstOff) {
        for (int i = 0; i < n / QK; i++) {
            int xb = xOff + i * QK;
            long yb = dstOff + (long) i * BLOCK_BYTES;
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++) {
                float v = x[xb + j];
                if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
            }
            float d = max / -16;
            float id = d != 0 ? 1.0f / d : 0.0f;
            putHalf(dst, yb, fp32ToFp16(d));
            int qh = 0;
            for (int j = 0; j < QK / 2; ++j) {
                float x0 = x[xb + j] * id;
                float x1 = x[xb + QK / 2 + j] * id;
                int xi0 = Math.min(31, (byte) truncate(x0 + 16.5f));
                int xi1 = Math.min(31, (byte) truncate(x1 + 16.5f));
                putByte(dst, yb + 6 + j, (xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10) >>> 4) << j;
                qh |= ((xi1 & 0x10) >>> 4) << (j + QK / 2);
            }
            dst.set(I32, yb + 2, qh);
        }
    }

    /** quantize_row_q5_0_impl: make_qx_quants(nmax 16) per block with weights qw·sqrt(σ² + x²). */
    static void quantizeImpl(float[] x, int xOff, int n, float[] qw, MemorySegment dst, long dstOff) {
        float[] weight = new float[QK]; // (QK)
        byte[] L = new byte[QK];        // (QK) codes 0..31
        float sigma2 = rowSigma2(x, xOff, n);
        for (int ib = 0; ib < n / QK; ++ib) {
            int xb = xOff + QK * ib;
            long yb = dstOff + (long) ib * BLOCK_BYTES;
            for (int j = 0; j < QK; ++j) {
                weight[j] = qw[QK * ib + j] * (float) Math.sqrt(sigma2 + x[xb + j] * x[xb + j]);
            }
            float d = makeQxQuants(QK, 16, x, xb, L, weight);
            putHalf(dst, yb, fp32ToFp16(d));
            int qh = 0;
            for (int j = 0; j < 16; ++j) {
                int xi0 = L[j], xi1 = L[j + 16];
                putByte(dst, yb + 6 + j, (xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10) >>> 4) << j;
                qh |= ((xi1 & 0x10) >>> 4) << (j + QK / 2);
            }
            dst.set(I32, yb + 2, qh);
        }
    }

    /** dequantize_row_q5_0 */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            int yb = dstOff + i * QK;
            float d = fp16ToFp32(getHalf(src, xb));
            int qh = src.get(I32, xb + 2);
            for (int j = 0; j < QK / 2; ++j) {
                int q = getByte(src, xb + 6 + j);
                int xh0 = ((qh >>> j) << 4) & 0x10;
                int xh1 = (qh >>> (j + 12)) & 0x10;
                dst[yb + j] = (((q & 0x0F) | xh0) - 16) * d;
                dst[yb + j + QK / 2] = (((q >>> 4) | xh1) - 16) * d;
            }
        }
    }
}
