package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;
import static org.quant4j.format.ggml.KQuants.*;

/**
 * Q4_K: super-blocks of 256 values in 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min (packed in 12 bytes),
 * scaled by the super-block's fp16 d and dmin: x = d·sc·q − dmin·m with 4-bit q.
 * Layout: d (2), dmin (2), scales (12), qs (128: sub-blocks 2k and 2k+1 share 32 bytes, low and high nibbles).
 */
public final class Q4_KCodec implements BlockCodec {
    public static final Q4_KCodec INSTANCE = new Q4_KCodec();
    private static final int BLOCK_BYTES = 144;

    private Q4_KCodec() {}

    @Override public GgmlType type() { return GgmlType.Q4_K; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        checkImportance(type(), importance, n);
        int[] L = new int[QK_K];            // (256) codes 0..15
        byte[] scales12 = new byte[12];
        KQuants.ScaleMinWork work = new KQuants.ScaleMinWork();
        for (int i = 0; i < n / QK_K; i++) {
            long yb = dstOff + (long) BLOCK_BYTES * i;
            int dh = KQuants.quantizeScaleMinBlock(x, xOff + QK_K * i, importance, QK_K * i, 15, -1f, 0.1f, 20, false, L, scales12, work);
            putHalf(dst, yb, (short) dh);
            putHalf(dst, yb + 2, (short) (dh >>> 16));
            for (int k = 0; k < 12; ++k) putByte(dst, yb + 4 + k, scales12[k]);
            for (int j = 0, q = 0; j < QK_K; j += 64, q += 32) {
                for (int l = 0; l < 32; ++l) putByte(dst, yb + 16 + q + l, L[j + l] | (L[j + l + 32] << 4));
            }
        }
    }

    /** dequantize_row_q4_K */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        byte[] scales12 = new byte[12];
        for (int i = 0; i < n / QK_K; i++) {
            long xb = srcOff + (long) BLOCK_BYTES * i;
            int y = dstOff + QK_K * i;
            float d = fp16ToFp32(getHalf(src, xb)), min = fp16ToFp32(getHalf(src, xb + 2));
            for (int k = 0; k < 12; ++k) scales12[k] = (byte) getByte(src, xb + 4 + k);
            long q = xb + 16;
            for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
                int s1 = scaleMinK4(is, scales12), s2 = scaleMinK4(is + 1, scales12);
                float d1 = d * (s1 & 0xFF), m1 = min * (s1 >>> 8);
                float d2 = d * (s2 & 0xFF), m2 = min * (s2 >>> 8);
                for (int l = 0; l < 32; ++l) dst[y++] = d1 * (getByte(src, q + l) & 0xF) - m1;
                for (int l = 0; l < 32; ++l) dst[y++] = d2 * (getByte(src, q + l) >>> 4) - m2;
            }
        }
    }
}
