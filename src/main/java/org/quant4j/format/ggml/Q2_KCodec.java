package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;
import static org.quant4j.format.ggml.KQuants.*;

/**
 * Q2_K: super-blocks of 256 values in 16 sub-blocks of 16, each with a 4-bit scale and a 4-bit min (one byte):
 * x = d·(sc & 15)·q − dmin·(sc >> 4) with 2-bit q, four per byte.
 * Layout: scales (16), qs (64), d (2), dmin (2).
 */
public final class Q2_KCodec implements BlockCodec {
    public static final Q2_KCodec INSTANCE = new Q2_KCodec();
    private static final int BLOCK_BYTES = 84;

    private Q2_KCodec() {}

    @Override public GgmlType type() { return GgmlType.Q2_K; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        checkImportance(type(), importance, n);
        int[] L = new int[QK_K], Ls = new int[16], Lm = new int[16];
        byte[] Lb = new byte[16], Lauxb = new byte[16];
        float[] weights = new float[16], mins = new float[16], scales = new float[16], sw = new float[16], theMin = new float[1];
        int[] sc = new int[16];
        for (int i = 0; i < n / QK_K; i++) {
            int xb = xOff + QK_K * i;
            long yb = dstOff + (long) BLOCK_BYTES * i;
            short dh, dminh;
            if (importance == null) {
                // quantize_row_q2_K_ref: weights |x|, make_qkx2_quants with absolute error, 4-bit scales and mins
                float maxScale = 0, maxMin = 0;
                for (int j = 0; j < 16; ++j) {
                    for (int l = 0; l < 16; ++l) weights[l] = Math.abs(x[xb + 16 * j + l]);
                    scales[j] = makeQkx3Quants(16, 3, x, xb + 16 * j, weights, Lb, theMin, Lauxb, -0.5f, 0.1f, 15, true);
                    mins[j] = theMin[0];
                    for (int l = 0; l < 16; ++l) L[16 * j + l] = Lb[l] & 0xFF;
                    if (scales[j] > maxScale) maxScale = scales[j];
                    if (mins[j] > maxMin) maxMin = mins[j];
                }
                final float q4scale = 15f;
                if (maxScale > 0) {
                    float iscale = q4scale / maxScale;
                    for (int j = 0; j < 16; ++j) sc[j] = nearestInt(iscale * scales[j]) & 0xFF;
                    dh = fp32ToFp16(maxScale / q4scale);
                } else {
                    for (int j = 0; j < 16; ++j) sc[j] = 0;
                    dh = fp32ToFp16(0f);
                }
                if (maxMin > 0) {
                    float iscale = q4scale / maxMin;
                    for (int j = 0; j < 16; ++j) sc[j] = (sc[j] | (nearestInt(iscale * mins[j]) << 4)) & 0xFF;
                    dminh = fp32ToFp16(maxMin / q4scale);
                } else {
                    dminh = fp32ToFp16(0f);
                }
            } else {
                // quantize_row_q2_K_impl: weights qw·sqrt(σ² + x²), make_qkx3_quants, scales and mins by make_qp_quants
                float sumX2 = 0;
                for (int j = 0; j < QK_K; ++j) sumX2 += x[xb + j] * x[xb + j];
                float sigma2 = sumX2 / QK_K;
                for (int j = 0; j < 16; ++j) {
                    for (int l = 0; l < 16; ++l) {
                        float xv = x[xb + 16 * j + l];
                        weights[l] = importance[QK_K * i + 16 * j + l] * (float) Math.sqrt(sigma2 + xv * xv);
                    }
                    sw[j] = 0;
                    for (int l = 0; l < 16; ++l) sw[j] += weights[l];
                    scales[j] = makeQkx3Quants(16, 3, x, xb + 16 * j, weights, Lb, theMin, Lauxb, -0.9f, 0.05f, 36);
                    mins[j] = theMin[0];
                    for (int l = 0; l < 16; ++l) L[16 * j + l] = Lb[l] & 0xFF;
                }
                float dm = makeQpQuants(16, 15, scales, Ls, sw);
                float mm = makeQpQuants(16, 15, mins, Lm, sw);
                dh = fp32ToFp16(dm);
                dminh = fp32ToFp16(mm);
                for (int j = 0; j < 16; ++j) sc[j] = (Ls[j] | (Lm[j] << 4)) & 0xFF;
            }
            float d0 = fp16ToFp32(dh), m0 = fp16ToFp32(dminh);
            for (int j = 0; j < 16; ++j) {
                float d = d0 * (sc[j] & 0xF);
                if (d == 0) continue;
                float dm = m0 * (sc[j] >> 4);
                for (int ii = 0; ii < 16; ++ii) {
                    int l = nearestInt((x[xb + 16 * j + ii] + dm) / d);
                    L[16 * j + ii] = Math.max(0, Math.min(3, l));
                }
            }
            for (int j = 0; j < 16; ++j) putByte(dst, yb + j, sc[j]);
            for (int j = 0; j < QK_K; j += 128) {
                for (int l = 0; l < 32; ++l) {
                    putByte(dst, yb + 16 + j / 4 + l, L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
                }
            }
            putHalf(dst, yb + 80, dh);
            putHalf(dst, yb + 82, dminh);
        }
    }

    /** dequantize_row_q2_K */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n / QK_K; i++) {
            long xb = srcOff + (long) BLOCK_BYTES * i;
            float d = fp16ToFp32(getHalf(src, xb + 80)), min = fp16ToFp32(getHalf(src, xb + 82));
            int y = dstOff + QK_K * i, is = 0;
            long q = xb + 16;
            for (int nn = 0; nn < QK_K; nn += 128, q += 32) {
                for (int j = 0, shift = 0; j < 4; ++j, shift += 2) {
                    int sc = getByte(src, xb + is++);
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l) dst[y++] = dl * ((getByte(src, q + l) >> shift) & 3) - ml;
                    sc = getByte(src, xb + is++);
                    dl = d * (sc & 0xF);
                    ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l) dst[y++] = dl * ((getByte(src, q + l + 16) >> shift) & 3) - ml;
                }
            }
        }
    }
}
