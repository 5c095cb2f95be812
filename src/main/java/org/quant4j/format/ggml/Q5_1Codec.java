package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * Q5_1: blocks of 32 values, an fp16 scale d, an fp16 minimum m and 32 five-bit codes q; x = d·q + m. Bits are packed
 * as in Q5_0. Layout: d, m (2 bytes each), qh (4 bytes), qs (16 bytes).
 */
public final class Q5_1Codec implements BlockCodec {
    public static final Q5_1Codec INSTANCE = new Q5_1Codec();
    private static final int QK = 32, BLOCK_BYTES = 24;

    private Q5_1Codec() {}

    @Override public GgmlType type() { return GgmlType.Q5_1; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        if (importance == null) quantizeRef(x, xOff, n, dst, dstOff);
        else quantizeImpl(x, xOff, n, importance, dst, dstOff);
    }

    /** quantize_row_q5_1_ref: d = (max - min)/31, m = min, codes truncate (x - min)/d + 0.5 (no clamp, as in ggml). */
    static void quantizeRef(float[] x, int xOff, int n, MemorySegment dst, long dstOff) {
        for (int i = 0; i < n / QK; i++) {
            int xb = xOff + i * QK;
            long yb = dstOff + (long) i * BLOCK_BYTES;
            float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
            for (int j = 0; j < QK; j++) {
                float v = x[xb + j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float d = (max - min) / ((1 << 5) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            putHalf(dst, yb, fp32ToFp16(d));
            putHalf(dst, yb + 2, fp32ToFp16(min));
            int qh = 0;
            for (int j = 0; j < QK / 2; ++j) {
                float x0 = (x[xb + j] - min) * id;
                float x1 = (x[xb + QK / 2 + j] - min) * id;
                int xi0 = truncate(x0 + 0.5f) & 0xff; // (uint8_t)
                int xi1 = truncate(x1 + 0.5f) & 0xff;
                putByte(dst, yb + 8 + j, (xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10) >>> 4) << j;
                qh |= ((xi1 & 0x10) >>> 4) << (j + QK / 2);
            }
            dst.set(I32, yb + 4, qh);
        }
    }

    /** quantize_row_q5_1_impl: make_qkx3_quants(nmax 31, rmin -0.9, rdelta 0.05, 36 steps) with qw·sqrt(σ² + x²). */
    static void quantizeImpl(float[] x, int xOff, int n, float[] qw, MemorySegment dst, long dstOff) {
        float[] weight = new float[QK];  // (QK)
        byte[] L = new byte[QK];         // (QK) codes 0..31
        byte[] Laux = new byte[QK];      // (QK) scratch
        float[] theMin = new float[1];
        float sigma2 = rowSigma2(x, xOff, n);
        for (int ib = 0; ib < n / QK; ++ib) {
            int xb = xOff + QK * ib;
            long yb = dstOff + (long) ib * BLOCK_BYTES;
            for (int j = 0; j < QK; ++j) {
                weight[j] = qw[QK * ib + j] * (float) Math.sqrt(sigma2 + x[xb + j] * x[xb + j]);
            }
            float d = makeQkx3Quants(QK, 31, x, xb, weight, L, theMin, Laux, -0.9f, 0.05f, 36);
            putHalf(dst, yb, fp32ToFp16(d));
            putHalf(dst, yb + 2, fp32ToFp16(-theMin[0]));
            int qh = 0;
            for (int j = 0; j < 16; ++j) {
                int xi0 = L[j], xi1 = L[j + 16];
                putByte(dst, yb + 8 + j, (xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10) >>> 4) << j;
                qh |= ((xi1 & 0x10) >>> 4) << (j + QK / 2);
            }
            dst.set(I32, yb + 4, qh);
        }
    }

    /** dequantize_row_q5_1 */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            int yb = dstOff + i * QK;
            float d = fp16ToFp32(getHalf(src, xb));
            float m = fp16ToFp32(getHalf(src, xb + 2));
            int qh = src.get(I32, xb + 4);
            for (int j = 0; j < QK / 2; ++j) {
                int q = getByte(src, xb + 8 + j);
                int xh0 = ((qh >>> j) << 4) & 0x10;
                int xh1 = (qh >>> (j + 12)) & 0x10;
                dst[yb + j] = ((q & 0x0F) | xh0) * d + m;
                dst[yb + j + QK / 2] = ((q >>> 4) | xh1) * d + m;
            }
        }
    }
}
