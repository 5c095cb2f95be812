package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.quant4j.format.ggml.CodecMath.*;
import static org.quant4j.format.ggml.KQuants.*;

/**
 * Q3_K: super-blocks of 256 values in 16 sub-blocks of 16, each with a 6-bit signed scale (stored + 32, packed in 12
 * bytes), times the fp16 d: x = d·scale·(q − 4) with 3-bit q (2 low bits in qs, the high bit in hmask).
 * Layout: hmask (32), qs (64), scales (12), d (2).
 */
public final class Q3_KCodec implements BlockCodec {
    public static final Q3_KCodec INSTANCE = new Q3_KCodec();
    private static final int BLOCK_BYTES = 110;

    private Q3_KCodec() {}

    @Override public GgmlType type() { return GgmlType.Q3_K; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        checkImportance(type(), importance, n);
        int[] L = new int[QK_K], Lsub = new int[16];
        byte[] Lb = new byte[16], Ls = new byte[16];
        float[] scales = new float[16], weight = new float[16], sw = new float[16];
        int[] sc12 = new int[12];
        for (int i = 0; i < n / QK_K; i++) {
            int xb = xOff + QK_K * i;
            long yb = dstOff + (long) BLOCK_BYTES * i;
            java.util.Arrays.fill(sc12, 0);
            short dh;
            if (importance == null) {
                // quantize_row_q3_K_ref: make_q3_quants per sub-block, 6-bit scales relative to the largest |scale|
                float maxScale = 0, amax = 0;
                for (int j = 0; j < 16; ++j) {
                    scales[j] = makeQ3Quants(16, 4, x, xb + 16 * j, Lsub);
                    System.arraycopy(Lsub, 0, L, 16 * j, 16);
                    float scale = Math.abs(scales[j]);
                    if (scale > amax) { amax = scale; maxScale = scales[j]; }
                }
                if (maxScale != 0) {
                    float iscale = -32f / maxScale;
                    for (int j = 0; j < 16; ++j) {
                        int l = (byte) nearestInt(iscale * scales[j]);   // C stores it in an int8_t
                        packScale(sc12, j, Math.max(-32, Math.min(31, l)) + 32);
                    }
                    dh = fp32ToFp16(1 / iscale);
                } else {
                    dh = fp32ToFp16(0f);
                }
            } else {
                // quantize_row_q3_K_impl: make_qx_quants weighted by qw·sqrt(σ² + x²), the scales by make_qx_quants too
                float sumX2 = 0;
                for (int j = 0; j < QK_K; ++j) sumX2 += x[xb + j] * x[xb + j];
                float sigma2 = 2 * sumX2 / QK_K;
                for (int j = 0; j < 16; ++j) {
                    for (int l = 0; l < 16; ++l) {
                        float xv = x[xb + 16 * j + l];
                        weight[l] = importance[QK_K * i + 16 * j + l] * (float) Math.sqrt(sigma2 + xv * xv);
                    }
                    float sumw = 0;
                    for (int l = 0; l < 16; ++l) sumw += weight[l];
                    sw[j] = sumw;
                    scales[j] = makeQxQuants(16, 4, x, xb + 16 * j, Lb, weight);
                    for (int l = 0; l < 16; ++l) L[16 * j + l] = Lb[l];
                }
                float dBlock = makeQxQuants(16, 32, scales, 0, Ls, sw);
                for (int j = 0; j < 16; ++j) packScale(sc12, j, Ls[j]);
                dh = fp32ToFp16(dBlock);
            }
            float d0 = fp16ToFp32(dh);
            for (int j = 0; j < 16; ++j) {
                int sc = j < 8 ? sc12[j] & 0xF : sc12[j - 8] >> 4;
                sc = (sc | (((sc12[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
                float d = d0 * sc;
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ++ii) {
                    int l = nearestInt(x[xb + 16 * j + ii] / d);
                    L[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
                }
            }
            // the high bit of the first 32 values goes to bit 0 of hmask[0..32), of the next 32 to bit 1, ...
            int[] hmask = new int[32];
            for (int j = 0, m = 0, hm = 1; j < QK_K; ++j) {
                if (L[j] > 3) {
                    hmask[m] |= hm;
                    L[j] -= 4;
                }
                if (++m == 32) { m = 0; hm <<= 1; }
            }
            for (int j = 0; j < 32; ++j) putByte(dst, yb + j, hmask[j]);
            for (int j = 0; j < QK_K; j += 128) {
                for (int l = 0; l < 32; ++l) {
                    putByte(dst, yb + 32 + j / 4 + l, L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
                }
            }
            for (int j = 0; j < 12; ++j) putByte(dst, yb + 96 + j, sc12[j]);
            putHalf(dst, yb + 108, dh);
        }
    }

    /** Puts the 6-bit scale code l (0..63) of sub-block j into Q3_K's 12 scale bytes. */
    private static void packScale(int[] sc12, int j, int l) {
        if (j < 8) sc12[j] = l & 0xF;
        else sc12[j - 8] |= (l & 0xF) << 4;
        l >>= 4;
        sc12[j % 4 + 8] |= l << (2 * (j / 4));
        sc12[j % 4 + 8] &= 0xFF;
    }

    /** Unpacks Q3_K's sixteen 6-bit scales from its 12 bytes (ggml's kmask1 / kmask2 shuffle). */
    public static void unpackScales(MemorySegment w, long off, int[] out) {
        int a0 = w.get(ValueLayout.JAVA_INT_UNALIGNED, off), a1 = w.get(ValueLayout.JAVA_INT_UNALIGNED, off + 4);
        int tmp = w.get(ValueLayout.JAVA_INT_UNALIGNED, off + 8);
        final int kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        int[] aux = {
                (a0 & kmask2) | (((tmp) & kmask1) << 4),
                (a1 & kmask2) | (((tmp >>> 2) & kmask1) << 4),
                ((a0 >>> 4) & kmask2) | (((tmp >>> 4) & kmask1) << 4),
                ((a1 >>> 4) & kmask2) | (((tmp >>> 6) & kmask1) << 4)};
        for (int i = 0; i < 16; i++) out[i] = (aux[i / 4] >>> (8 * (i % 4))) & 0xFF;
    }

    /** dequantize_row_q3_K */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        int[] scales = new int[16];
        for (int i = 0; i < n / QK_K; i++) {
            long xb = srcOff + (long) BLOCK_BYTES * i;
            float dAll = fp16ToFp32(getHalf(src, xb + 108));
            unpackScales(src, xb + 96, scales);
            int y = dstOff + QK_K * i, is = 0, m = 1;
            long q = xb + 32;
            for (int nn = 0; nn < QK_K; nn += 128, q += 32) {
                for (int j = 0, shift = 0; j < 4; ++j, shift += 2, m <<= 1) {
                    float dl = dAll * ((byte) scales[is++] - 32);
                    for (int l = 0; l < 16; ++l) dst[y++] = dl * (((getByte(src, q + l) >> shift) & 3) - ((getByte(src, xb + l) & m) != 0 ? 0 : 4));
                    dl = dAll * ((byte) scales[is++] - 32);
                    for (int l = 0; l < 16; ++l) dst[y++] = dl * (((getByte(src, q + l + 16) >> shift) & 3) - ((getByte(src, xb + l + 16) & m) != 0 ? 0 : 4));
                }
            }
        }
    }
}
