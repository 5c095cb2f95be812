package org.quant4j.format.ggml;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * The k-quant helpers of ggml-quants.c that CodecMath does not have, with C's float semantics (float arithmetic in C's
 * order, no fused multiply-adds, values stored into uint8 wrapping as C's conversion does).
 */
final class KQuants {
    private KQuants() {}

    static final int QK_K = 256;

    /**
     * make_qp_quants: non-negative levels L[i] ∈ [0, nmax] for x[0 .. n) (the sub-block scales or mins of a k-quant
     * super-block) with one scale, searched over 9 scales and refined by up to five passes of coordinate descent, all
     * weighted by {@code w}.
     *
     * @param L receives the levels as C's uint8 holds them (0..255)
     * @return the scale
     */
    static float makeQpQuants(int n, int nmax, float[] x, int[] L, float[] w) {
        float max = 0;
        for (int i = 0; i < n; ++i) max = Math.max(max, x[i]);
        if (max < CodecMath.GROUP_MAX_EPS) {
            for (int i = 0; i < n; ++i) L[i] = 0;
            return 0f;
        }
        float iscale = nmax / max;
        for (int i = 0; i < n; ++i) L[i] = nearestInt(iscale * x[i]) & 0xFF;
        float scale = 1 / iscale;
        float bestMse = 0;
        for (int i = 0; i < n; ++i) {
            float diff = x[i] - scale * L[i];
            bestMse += w[i] * diff * diff;
        }
        for (int is = -4; is <= 4; ++is) {
            if (is == 0) continue;
            float iscaleIs = (0.1f * is + nmax) / max;
            float scaleIs = 1 / iscaleIs;
            float mse = 0;
            for (int i = 0; i < n; ++i) {
                int l = Math.min(nmax, nearestInt(iscaleIs * x[i]));
                float diff = x[i] - scaleIs * l;
                mse += w[i] * diff * diff;
            }
            if (mse < bestMse) {
                bestMse = mse;
                iscale = iscaleIs;
            }
        }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = Math.min(nmax, nearestInt(iscale * x[i]));
            L[i] = l & 0xFF;
            sumlx += w[i] * x[i] * l;
            suml2 += w[i] * l * l;
        }
        for (int itry = 0; itry < 5; ++itry) {
            int changed = 0;
            for (int i = 0; i < n; ++i) {
                float wi = w[i];
                float slx = sumlx - wi * x[i] * L[i];
                float sl2 = suml2 - wi * L[i] * L[i];
                if (slx > 0 && sl2 > 0) {
                    int newL = Math.min(nmax, nearestInt(x[i] * sl2 / slx));
                    if (newL != L[i]) {
                        slx += wi * x[i] * newL;
                        sl2 += wi * newL * newL;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[i] = newL & 0xFF;
                            sumlx = slx;
                            suml2 = sl2;
                            ++changed;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }

    /** Packs eight 6-bit scales and eight 6-bit mins into Q4_K / Q5_K's 12 bytes. */
    static void packScalesMins(int[] ls, int[] lm, byte[] scales12) {
        for (int j = 0; j < 8; ++j) {
            if (j < 4) {
                scales12[j] = (byte) ls[j];
                scales12[j + 4] = (byte) lm[j];
            } else {
                scales12[j + 4] = (byte) ((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
                scales12[j - 4] |= (byte) ((ls[j] >>> 4) << 6);
                scales12[j] |= (byte) ((lm[j] >>> 4) << 6);
            }
        }
    }

    /** get_scale_min_k4: the scale (low byte) and min (next byte) of sub-block j. */
    static int scaleMinK4(int j, byte[] q) {
        int sc, m;
        if (j < 4) {
            sc = q[j] & 63;
            m = q[j + 4] & 63;
        } else {
            sc = (q[j + 4] & 0xF) | (((q[j - 4] & 0xFF) >>> 6) << 4);
            m = ((q[j + 4] & 0xFF) >>> 4) | (((q[j] & 0xFF) >>> 6) << 4);
        }
        return sc | m << 8;
    }

    /** Scratch for {@link #quantizeScaleMinBlock}, one per quantize call. */
    static final class ScaleMinWork {
        final byte[] Ls = new byte[32], Laux = new byte[32];
        final float[] weights = new float[32], mins = new float[8], scales = new float[8], sw = new float[8], theMin = new float[1];
        final int[] ls = new int[8], lm = new int[8];
    }

    /**
     * One super-block of Q4_K (nmax 15) or Q5_K (nmax 31): codes L[0..256) and the 12 packed scale/min bytes, as
     * quantize_row_qN_K_ref does without an importance matrix (weights av_x + |x|, make_qkx2_quants with the given rmin,
     * rdelta, nstep; 6-bit scales relative to the largest) and as quantize_row_qN_K_impl does with one (weights
     * qw·sqrt(σ² + x²), make_qkx3_quants(-0.9, 0.05, 36), scales and mins by make_qp_quants).
     *
     * @param clampQp whether the imatrix path clamps make_qp_quants' levels to 63 (Q5_K does, Q4_K does not)
     * @return the fp16 bits of d (low 16 bits) and dmin (high 16 bits)
     */
    static int quantizeScaleMinBlock(float[] x, int xb, float[] importance, int impOff, int nmax, float rmin, float rdelta,
                                     int nstep, boolean clampQp, int[] L, byte[] scales12, ScaleMinWork w) {
        float d, dmin;
        if (importance == null) {
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 8; ++j) {
                float sumX2 = 0;
                for (int l = 0; l < 32; ++l) sumX2 += x[xb + 32 * j + l] * x[xb + 32 * j + l];
                float avX = (float) Math.sqrt(sumX2 / 32);
                for (int l = 0; l < 32; ++l) w.weights[l] = avX + Math.abs(x[xb + 32 * j + l]);
                // make_qkx2_quants equals make_qkx3_quants when weights are given
                w.scales[j] = makeQkx3Quants(32, nmax, x, xb + 32 * j, w.weights, w.Ls, w.theMin, w.Laux, rmin, rdelta, nstep);
                w.mins[j] = w.theMin[0];
                for (int l = 0; l < 32; ++l) L[32 * j + l] = w.Ls[l] & 0xFF;
                if (w.scales[j] > maxScale) maxScale = w.scales[j];
                if (w.mins[j] > maxMin) maxMin = w.mins[j];
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            for (int j = 0; j < 8; ++j) {
                w.ls[j] = Math.min(63, nearestInt(invScale * w.scales[j]) & 0xFF);
                w.lm[j] = Math.min(63, nearestInt(invMin * w.mins[j]) & 0xFF);
            }
            d = maxScale / 63f;
            dmin = maxMin / 63f;
        } else {
            float sumX2 = 0;
            for (int l = 0; l < QK_K; ++l) sumX2 += x[xb + l] * x[xb + l];
            float sigma2 = 2 * sumX2 / QK_K;
            for (int j = 0; j < 8; ++j) {
                for (int l = 0; l < 32; ++l) {
                    float xv = x[xb + 32 * j + l];
                    w.weights[l] = importance[impOff + 32 * j + l] * (float) Math.sqrt(sigma2 + xv * xv);
                }
                float sumw = 0;
                for (int l = 0; l < 32; ++l) sumw += w.weights[l];
                w.sw[j] = sumw;
                w.scales[j] = makeQkx3Quants(32, nmax, x, xb + 32 * j, w.weights, w.Ls, w.theMin, w.Laux, -0.9f, 0.05f, 36);
                w.mins[j] = w.theMin[0];
                for (int l = 0; l < 32; ++l) L[32 * j + l] = w.Ls[l] & 0xFF;
            }
            d = makeQpQuants(8, 63, w.scales, w.ls, w.sw);
            dmin = makeQpQuants(8, 63, w.mins, w.lm, w.sw);
            if (clampQp) {
                for (int j = 0; j < 8; ++j) {
                    w.ls[j] = Math.min(63, w.ls[j]);
                    w.lm[j] = Math.min(63, w.lm[j]);
                }
            }
        }
        java.util.Arrays.fill(scales12, (byte) 0);
        packScalesMins(w.ls, w.lm, scales12);
        short dh = fp32ToFp16(d), dminh = fp32ToFp16(dmin);
        for (int j = 0; j < 8; ++j) {
            int sm = scaleMinK4(j, scales12);
            float dd = fp16ToFp32(dh) * (sm & 0xFF);
            if (dd == 0) continue;
            float dm = fp16ToFp32(dminh) * (sm >>> 8);
            for (int ii = 0; ii < 32; ++ii) {
                int l = nearestInt((x[xb + 32 * j + ii] + dm) / dd);
                L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
            }
        }
        return (dh & 0xFFFF) | (dminh & 0xFFFF) << 16;
    }

    /**
     * make_q3_quants with do_rmse: symmetric levels in [-nmax, nmax) weighted by x², refined by up to five passes of
     * coordinate descent; L receives level + nmax.
     */
    static float makeQ3Quants(int n, int nmax, float[] x, int xOff, int[] L) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; ++i) {
            float ax = Math.abs(x[xOff + i]);
            if (ax > amax) { amax = ax; max = x[xOff + i]; }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; ++i) L[i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; ++i) {
            float xi = x[xOff + i];
            int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * xi)));
            L[i] = l;
            float w = xi * xi;
            sumlx += w * xi * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; ++itry) {
            int changed = 0;
            for (int i = 0; i < n; ++i) {
                float xi = x[xOff + i];
                float w = xi * xi;
                float slx = sumlx - w * xi * L[i];
                if (slx > 0) {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int newL = Math.max(-nmax, Math.min(nmax - 1, nearestInt(xi * sl2 / slx)));
                    if (newL != L[i]) {
                        slx += w * xi * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[i] = newL;
                            sumlx = slx;
                            suml2 = sl2;
                            ++changed;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < n; ++i) L[i] += nmax;
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }
}
