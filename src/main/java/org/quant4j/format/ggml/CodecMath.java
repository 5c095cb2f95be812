package org.quant4j.format.ggml;

import org.quant4j.format.FloatFormats;
import org.quant4j.format.GgmlType;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The helpers of ggml-quants.c that the legacy and IQ4 codecs share, with C's float semantics: every expression is
 * evaluated in float, in the order C evaluates it, without fused multiply-adds (the reference vectors match that; see
 * GgmlCodecVectorsTest), and with the rounding function C uses at that place.
 *
 * <p>On contraction: the vectors were made without FMA. Contracting {@code sumqx += w*q*x} in the IQ4 scale search to
 * an fma breaks the edge IQ4_NL/IQ4_XS imatrix vectors (36 and 130 bytes differ); fma in make_qx_quants' sumlx, in
 * make_qkx3_quants' error or in Q4_1's {@code q*d + m} changes no vector (those products are exact or the choices
 * robust), so plain float arithmetic is used everywhere.
 */
final class CodecMath {
    private CodecMath() {}

    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfByte I8 = ValueLayout.JAVA_BYTE;

    /** ggml's GROUP_MAX_EPS: a group whose largest |x| is below this is all zero. */
    static final float GROUP_MAX_EPS = 1e-15f;

    /** kvalues_iq4nl: the 16 non-linear levels of IQ4_NL / IQ4_XS. */
    static final byte[] KVALUES_IQ4NL = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    /** @throws Q4jException unless n is a whole, non-negative number of blocks of type */
    static void checkRow(GgmlType type, int n) {
        if (n < 0 || n % type.blockSize() != 0) {
            throw new Q4jException("a row of " + n + " values does not divide into " + type + " blocks of " + type.blockSize());
        }
    }

    /** @throws Q4jException unless importance is null or holds at least one weight for each of the n values */
    static void checkImportance(GgmlType type, float[] importance, int n) {
        if (importance != null && importance.length < n) {
            throw new Q4jException(type + ": " + importance.length + " importance weights for a row of " + n + " values");
        }
    }

    // ---- rounding ------------------------------------------------------------------------------------------------

    /**
     * ggml's nearest_int: adds 1.5·2^23 in float so that the sum's low mantissa bits hold the integer, rounded to
     * nearest even (valid for |x| < 2^22, which ggml asserts).
     */
    static int nearestInt(float x) {
        float val = x + 12582912f;
        return (Float.floatToRawIntBits(val) & 0x007fffff) - 0x00400000;
    }

    /** C's roundf / lroundf: nearest integer, halves away from zero (unlike {@link Math#rint} and {@link Math#round}). */
    static float roundf(float x) {
        if (Float.isNaN(x) || Float.isInfinite(x) || Math.abs(x) >= 0x1p23f) return x;
        float r = (float) Math.floor(Math.abs(x) + 0.5); // exact in double for |x| < 2^23
        return Math.copySign(r, x);
    }

    /** C's float → integer conversion: truncation toward zero (values in range). */
    static int truncate(float x) { return (int) x; }

    // ---- 16-bit floats ---------------------------------------------------------------------------------------------

    /**
     * GGML_FP32_TO_FP16: round to nearest even (what {@link Float#floatToFloat16} does), except that every NaN becomes
     * the quiet NaN 0x7E00 with the input's sign, as ggml's bit-twiddling conversion writes it.
     */
    static short fp32ToFp16(float f) { return FloatFormats.floatToF16(f); }

    static float fp16ToFp32(short h) { return Float.float16ToFloat(h); }

    /**
     * ggml_compute_fp32_to_bf16: round to nearest even on the upper 16 bits (an overflow rounds to infinity), and a NaN
     * keeps its upper bits with the quiet bit (64) forced on, rather than being rounded (which could make it infinite).
     */
    static short fp32ToBf16(float f) { return FloatFormats.floatToBf16(f); }

    static float bf16ToFp32(short h) { return Float.intBitsToFloat((h & 0xffff) << 16); }

    static short getHalf(MemorySegment seg, long off) { return seg.get(I16, off); }

    static void putHalf(MemorySegment seg, long off, short h) { seg.set(I16, off, h); }

    static int getByte(MemorySegment seg, long off) { return seg.get(I8, off) & 0xff; }

    static void putByte(MemorySegment seg, long off, int b) { seg.set(I8, off, (byte) b); }

    // ---- level search ----------------------------------------------------------------------------------------------

    /** best_index_int8: the index of the level of {@code val} (sorted ascending) nearest to x; ties go up. */
    static int bestIndexInt8(byte[] val, float x) {
        int n = val.length;
        if (x <= val[0]) return 0;
        if (x >= val[n - 1]) return n - 1;
        // ggml bisects for mu with val[mu-1] <= x < val[mu]; counting the levels <= x finds the same mu without
        // data-dependent branches (the bisection's mispredictions dominated IQ4 quantization time)
        int ml = 0;
        for (int k = 1; k < n - 1; k++) ml += x >= val[k] ? 1 : 0;
        int mu = ml + 1;
        return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
    }

    /**
     * make_qx_quants with rmse_type 1: symmetric levels L[i] ∈ [0, 2·nmax) (stored with the +nmax offset) for
     * x[xOff .. xOff + n), searching 19 scales around -nmax/max for the one that minimises the weighted squared error.
     *
     * @param qw the weights (n of them from qwOff), or null for x²
     * @return the scale d (x ≈ d·(L - nmax))
     */
    static float makeQxQuants(int n, int nmax, float[] x, int xOff, byte[] L, float[] qw) {
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
            int l = nearestInt(iscale * xi);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[i] = (byte) (l + nmax);
            float w = qw != null ? qw[i] : xi * xi;
            sumlx += w * xi * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; ++is) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; ++i) {
                float xi = x[xOff + i];
                int l = nearestInt(iscale * xi);
                l = Math.max(-nmax, Math.min(nmax - 1, l));
                float w = qw != null ? qw[i] : xi * xi;
                sumlx += w * xi * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; ++i) {
                    int l = nearestInt(iscale * x[xOff + i]);
                    L[i] = (byte) (nmax + Math.max(-nmax, Math.min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /**
     * make_qkx3_quants without MAD: asymmetric levels L[i] ∈ [0, nmax] for x[xOff .. xOff + n) with a scale and a
     * minimum, trying nstep+1 scales (rmin + rdelta·is + nmax)/(max - min) and solving weighted least squares for each.
     *
     * @param weights n weights, or null for x²
     * @param theMin  receives -min at index 0 (ggml's *the_min; the block stores -theMin)
     * @param Laux    scratch, n entries
     * @return the scale
     */
    static float makeQkx3Quants(int n, int nmax, float[] x, int xOff, float[] weights, byte[] L, float[] theMin,
                                byte[] Laux, float rmin, float rdelta, int nstep) {
        return makeQkx3Quants(n, nmax, x, xOff, weights, L, theMin, Laux, rmin, rdelta, nstep, false);
    }

    /**
     * The same search with the error measured as |diff| when {@code useMad} (make_qkx2_quants with use_mad, which
     * Q2_K's reference path uses); with weights given, make_qkx2_quants and make_qkx3_quants are the same function.
     */
    static float makeQkx3Quants(int n, int nmax, float[] x, int xOff, float[] weights, byte[] L, float[] theMin,
                                byte[] Laux, float rmin, float rdelta, int nstep, boolean useMad) {
        float min = x[xOff], max = x[xOff];
        float sumW = weights != null ? weights[0] : x[xOff] * x[xOff];
        float sumX = sumW * x[xOff];
        for (int i = 1; i < n; ++i) {
            float xi = x[xOff + i];
            if (xi < min) min = xi;
            if (xi > max) max = xi;
            float w = weights != null ? weights[i] : xi * xi;
            sumW += w;
            sumX += w * xi;
        }
        if (min > 0) min = 0;
        if (max <= min) {
            for (int i = 0; i < n; ++i) L[i] = 0;
            theMin[0] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestMad = 0;
        for (int i = 0; i < n; ++i) {
            float xi = x[xOff + i];
            int l = nearestInt(iscale * (xi - min));
            L[i] = (byte) Math.max(0, Math.min(nmax, l));
            float diff = scale * (L[i] & 0xff) + min - xi;
            diff = useMad ? Math.abs(diff) : diff * diff;
            float w = weights != null ? weights[i] : xi * xi;
            bestMad += w * diff;
        }
        if (nstep < 1) {
            theMin[0] = -min;
            return scale;
        }
        for (int is = 0; is <= nstep; ++is) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; ++i) {
                float xi = x[xOff + i];
                int l = nearestInt(iscale * (xi - min));
                l = Math.max(0, Math.min(nmax, l));
                Laux[i] = (byte) l;
                float w = weights != null ? weights[i] : xi * xi;
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * xi;
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float mad = 0;
                for (int i = 0; i < n; ++i) {
                    float xi = x[xOff + i];
                    float diff = thisScale * (Laux[i] & 0xff) + thisMin - xi;
                    diff = useMad ? Math.abs(diff) : diff * diff;
                    float w = weights != null ? weights[i] : xi * xi;
                    mad += w * diff;
                }
                if (mad < bestMad) {
                    System.arraycopy(Laux, 0, L, 0, n);
                    bestMad = mad;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }

    /**
     * ggml's per-row importance of each value when an imatrix is given (legacy types): qw[j]·sqrt(σ² + x[j]²) with
     * σ² = Σx²/n over the whole row.
     */
    static float rowSigma2(float[] x, int xOff, int n) {
        float sumX2 = 0;
        for (int j = 0; j < n; ++j) sumX2 += x[xOff + j] * x[xOff + j];
        return sumX2 / n;
    }
}
