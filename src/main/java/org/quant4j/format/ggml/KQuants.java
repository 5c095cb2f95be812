package org.quant4j.format.ggml;

import static org.quant4j.format.ggml.CodecMath.nearestInt;

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
}
