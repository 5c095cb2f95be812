package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;
import static org.quant4j.format.ggml.KQuants.*;

/**
 * Q5_K: Q4_K's super-block with 5-bit codes: x = d·sc·q − dmin·m, the fifth bit of each code in qh.
 * Layout: d (2), dmin (2), scales (12), qh (32: bit 2k for sub-block 2k, bit 2k+1 for 2k+1), qs (128).
 */
public final class Q5_KCodec implements BlockCodec {
    public static final Q5_KCodec INSTANCE = new Q5_KCodec();
    private static final int BLOCK_BYTES = 176;

    private Q5_KCodec() {}

    @Override public GgmlType type() { return GgmlType.Q5_K; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        checkImportance(type(), importance, n);
        int[] L = new int[QK_K];            // (256) codes 0..31
        byte[] scales12 = new byte[12];
        ScaleMinWork work = new ScaleMinWork();
        for (int i = 0; i < n / QK_K; i++) {
            long yb = dstOff + (long) BLOCK_BYTES * i;
            int dh = quantizeScaleMinBlock(x, xOff + QK_K * i, importance, QK_K * i, 31, -0.5f, 0.1f, 15, true, L, scales12, work);
            putHalf(dst, yb, (short) dh);
            putHalf(dst, yb + 2, (short) (dh >>> 16));
            for (int k = 0; k < 12; ++k) putByte(dst, yb + 4 + k, scales12[k]);
            int[] qh = new int[32];
            int m1 = 1, m2 = 2;
            for (int nn = 0, q = 0; nn < QK_K; nn += 64, q += 32, m1 <<= 2, m2 <<= 2) {
                for (int j = 0; j < 32; ++j) {
                    int l1 = L[nn + j], l2 = L[nn + j + 32];
                    if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                    if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                    putByte(dst, yb + 48 + q + j, l1 | (l2 << 4));
                }
            }
            for (int j = 0; j < 32; ++j) putByte(dst, yb + 16 + j, qh[j]);
        }
    }

    /** dequantize_row_q5_K */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        byte[] scales12 = new byte[12];
        for (int i = 0; i < n / QK_K; i++) {
            long xb = srcOff + (long) BLOCK_BYTES * i;
            int y = dstOff + QK_K * i;
            float d = fp16ToFp32(getHalf(src, xb)), min = fp16ToFp32(getHalf(src, xb + 2));
            for (int k = 0; k < 12; ++k) scales12[k] = (byte) getByte(src, xb + 4 + k);
            long ql = xb + 48, qh = xb + 16;
            int u1 = 1, u2 = 2;
            for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
                int s1 = scaleMinK4(is, scales12), s2 = scaleMinK4(is + 1, scales12);
                float d1 = d * (s1 & 0xFF), m1 = min * (s1 >>> 8);
                float d2 = d * (s2 & 0xFF), m2 = min * (s2 >>> 8);
                for (int l = 0; l < 32; ++l) dst[y++] = d1 * ((getByte(src, ql + l) & 0xF) + ((getByte(src, qh + l) & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; ++l) dst[y++] = d2 * ((getByte(src, ql + l) >>> 4) + ((getByte(src, qh + l) & u2) != 0 ? 16 : 0)) - m2;
            }
        }
    }
}
