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
        int[] L = new int[QK_K];            // (256) codes 0..15
        byte[] Ls = new byte[32], Laux = new byte[32];
        float[] weights = new float[32], mins = new float[8], scales = new float[8], sw = new float[8], theMin = new float[1];
        int[] ls = new int[8], lm = new int[8];
        byte[] scales12 = new byte[12];
        for (int i = 0; i < n / QK_K; i++) {
            int xb = xOff + QK_K * i;
            long yb = dstOff + (long) BLOCK_BYTES * i;
            float d, dmin;
            if (importance == null) {
                // quantize_row_q4_K_ref: weights av_x + |x| per sub-block, make_qkx2_quants, scales relative to the largest
                float maxScale = 0, maxMin = 0;
                for (int j = 0; j < 8; ++j) {
                    float sumX2 = 0;
                    for (int l = 0; l < 32; ++l) sumX2 += x[xb + 32 * j + l] * x[xb + 32 * j + l];
                    float avX = (float) Math.sqrt(sumX2 / 32);
                    for (int l = 0; l < 32; ++l) weights[l] = avX + Math.abs(x[xb + 32 * j + l]);
                    scales[j] = makeQkx3Quants(32, 15, x, xb + 32 * j, weights, Ls, theMin, Laux, -1f, 0.1f, 20);
                    mins[j] = theMin[0];
                    for (int l = 0; l < 32; ++l) L[32 * j + l] = Ls[l] & 0xFF;
                    if (scales[j] > maxScale) maxScale = scales[j];
                    if (mins[j] > maxMin) maxMin = mins[j];
                }
                float invScale = maxScale > 0 ? 63f / maxScale : 0f;
                float invMin = maxMin > 0 ? 63f / maxMin : 0f;
                for (int j = 0; j < 8; ++j) {
                    ls[j] = Math.min(63, nearestInt(invScale * scales[j]) & 0xFF);
                    lm[j] = Math.min(63, nearestInt(invMin * mins[j]) & 0xFF);
                }
                d = maxScale / 63f;
                dmin = maxMin / 63f;
            } else {
                // quantize_row_q4_K_impl: weights qw·sqrt(σ² + x²), make_qkx3_quants, scales and mins by make_qp_quants
                float sumX2 = 0;
                for (int l = 0; l < QK_K; ++l) sumX2 += x[xb + l] * x[xb + l];
                float sigma2 = 2 * sumX2 / QK_K;
                for (int j = 0; j < 8; ++j) {
                    for (int l = 0; l < 32; ++l) {
                        float xv = x[xb + 32 * j + l];
                        weights[l] = importance[QK_K * i + 32 * j + l] * (float) Math.sqrt(sigma2 + xv * xv);
                    }
                    float sumw = 0;
                    for (int l = 0; l < 32; ++l) sumw += weights[l];
                    sw[j] = sumw;
                    scales[j] = makeQkx3Quants(32, 15, x, xb + 32 * j, weights, Ls, theMin, Laux, -0.9f, 0.05f, 36);
                    mins[j] = theMin[0];
                    for (int l = 0; l < 32; ++l) L[32 * j + l] = Ls[l] & 0xFF;
                }
                d = makeQpQuants(8, 63, scales, ls, sw);
                dmin = makeQpQuants(8, 63, mins, lm, sw);
            }
            java.util.Arrays.fill(scales12, (byte) 0);
            packScalesMins(ls, lm, scales12);
            short dh = fp32ToFp16(d), dminh = fp32ToFp16(dmin);
            putHalf(dst, yb, dh);
            putHalf(dst, yb + 2, dminh);
            for (int k = 0; k < 12; ++k) putByte(dst, yb + 4 + k, scales12[k]);
            for (int j = 0; j < 8; ++j) {
                int sm = scaleMinK4(j, scales12);
                float dd = fp16ToFp32(dh) * (sm & 0xFF);
                if (dd == 0) continue;
                float dm = fp16ToFp32(dminh) * (sm >>> 8);
                for (int ii = 0; ii < 32; ++ii) {
                    int l = nearestInt((x[xb + 32 * j + ii] + dm) / dd);
                    L[32 * j + ii] = Math.max(0, Math.min(15, l));
                }
            }
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
