package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;
import static org.quant4j.format.ggml.KQuants.QK_K;

/**
 * Q6_K: super-blocks of 256 values in 16 sub-blocks of 16, each with an int8 scale, times the super-block's fp16 d:
 * x = d·scale·(q − 32) with 6-bit q (low 4 bits in ql, high 2 bits in qh).
 * Layout: ql (128), qh (64), scales (16 × int8), d (2).
 */
public final class Q6_KCodec implements BlockCodec {
    public static final Q6_KCodec INSTANCE = new Q6_KCodec();
    private static final int BLOCK_BYTES = 210;

    private Q6_KCodec() {}

    @Override public GgmlType type() { return GgmlType.Q6_K; }

    /** quantize_row_q6_K_ref (no importance) and quantize_row_q6_K_impl (make_qx_quants weighted by the imatrix itself). */
    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        checkImportance(type(), importance, n);
        int[] L = new int[QK_K];          // (256) codes 0..63
        byte[] Lsub = new byte[16];
        float[] scales = new float[16], qw = new float[16];
        for (int i = 0; i < n / QK_K; i++) {
            int xb = xOff + QK_K * i;
            long yb = dstOff + (long) BLOCK_BYTES * i;
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ++ib) {
                if (importance != null) System.arraycopy(importance, QK_K * i + 16 * ib, qw, 0, 16);
                float scale = makeQxQuants(16, 32, x, xb + 16 * ib, Lsub, importance != null ? qw : null);
                for (int l = 0; l < 16; ++l) L[16 * ib + l] = Lsub[l];
                scales[ib] = scale;
                float abs = Math.abs(scale);
                if (abs > maxAbsScale) {
                    maxAbsScale = abs;
                    maxScale = scale;
                }
            }
            if (maxAbsScale < GROUP_MAX_EPS) {
                for (int k = 0; k < BLOCK_BYTES; ++k) putByte(dst, yb + k, 0);
                putHalf(dst, yb + 208, fp32ToFp16(0f));
                continue;
            }
            float iscale = -128f / maxScale;
            short dh = fp32ToFp16(1 / iscale);
            putHalf(dst, yb + 208, dh);
            byte[] sc = new byte[16];
            for (int ib = 0; ib < 16; ++ib) {
                sc[ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
                putByte(dst, yb + 192 + ib, sc[ib]);
            }
            for (int j = 0; j < 16; ++j) {
                float d = fp16ToFp32(dh) * sc[j];
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ++ii) {
                    int l = nearestInt(x[xb + 16 * j + ii] / d);
                    L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
                }
            }
            long ql = yb, qh = yb + 128;
            for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
                for (int l = 0; l < 32; ++l) {
                    int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                    putByte(dst, ql + l, q1 | (q3 << 4));
                    putByte(dst, ql + l + 32, q2 | (q4 << 4));
                    putByte(dst, qh + l, (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
            }
        }
    }

    /** dequantize_row_q6_K */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK_K; i++) {
            long xb = srcOff + (long) BLOCK_BYTES * i;
            float d = fp16ToFp32(getHalf(src, xb + 208));
            long ql = xb, qh = xb + 128, sc = xb + 192;
            int y = dstOff + QK_K * i;
            for (int nn = 0; nn < QK_K; nn += 128, y += 128, ql += 64, qh += 32, sc += 8) {
                for (int l = 0; l < 32; ++l) {
                    int is = l / 16;
                    int h = getByte(src, qh + l), lo = getByte(src, ql + l), hi = getByte(src, ql + l + 32);
                    int q1 = ((lo & 0xF) | ((h & 3) << 4)) - 32;
                    int q2 = ((hi & 0xF) | (((h >> 2) & 3) << 4)) - 32;
                    int q3 = ((lo >> 4) | (((h >> 4) & 3) << 4)) - 32;
                    int q4 = ((hi >> 4) | (((h >> 6) & 3) << 4)) - 32;
                    dst[y + l] = d * (byte) getByte(src, sc + is) * q1;
                    dst[y + l + 32] = d * (byte) getByte(src, sc + is + 2) * q2;
                    dst[y + l + 64] = d * (byte) getByte(src, sc + is + 4) * q3;
                    dst[y + l + 96] = d * (byte) getByte(src, sc + is + 6) * q4;
                }
            }
        }
    }
}
