package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * IQ4_NL: blocks of 32 values, an fp16 scale d and 32 four-bit indices into the non-linear levels kvalues_iq4nl
 * (value j in the low nibble of byte j, value j+16 in the high nibble); x = d·kvalues[q]. Layout: d (2 bytes), qs
 * (16 bytes). The search ({@link #quantizeImpl}) is ggml's quantize_row_iq4_nl_impl, which IQ4_XS shares.
 */
public final class IQ4_NLCodec implements BlockCodec {
    public static final IQ4_NLCodec INSTANCE = new IQ4_NLCodec();
    private static final int QK = 32, BLOCK_BYTES = 18;
    /** ggml_quantize_chunk calls quantize_iq4_nl, which searches ±7 scale steps with and without an imatrix. */
    static final int NTRY = 7;

    private IQ4_NLCodec() {}

    @Override public GgmlType type() { return GgmlType.IQ4_NL; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        Scratch s = new Scratch(QK, QK);
        for (int ibl = 0; ibl < n / QK; ++ibl) {
            long yb = dstOff + (long) ibl * BLOCK_BYTES;
            quantizeImpl(QK, 32, x, xOff + QK * ibl, dst, yb, yb + 2, -1, -1, s, importance, QK * ibl, NTRY);
        }
    }

    /** Scratch buffers of quantize_row_iq4_nl_impl. */
    record Scratch(float[] scales, float[] weight, byte[] L) {
        Scratch(int superBlockSize, int blockSize) {
            this(new float[superBlockSize / blockSize], new float[blockSize], new byte[superBlockSize]);
        }
    }

    /**
     * quantize_row_iq4_nl_impl for one super-block of {@code superBlockSize} values at x[xOff ..]: per block of
     * {@code blockSize}, the scale d minimising Σ w·(x - d·kvalues[q])² over 2·ntry+1 candidate scales, with
     * w = qw·sqrt(σ² + x²) (σ² = 2·Σx²/superBlockSize) given importances, else w = x². With more than one block the
     * block scales are then quantized to 6 bits against a super-block fp16 scale (IQ4_XS) and the indices recomputed.
     *
     * @param dOff       where the fp16 super-block scale goes
     * @param qsOff      where the superBlockSize/2 index bytes go
     * @param scalesHOff where the 16-bit high scale bits go (IQ4_XS), or -1
     * @param scalesLOff where the superBlockSize/64 low scale nibble bytes go (IQ4_XS), or -1
     * @param qw         importances, used from qwOff, or null
     */
    static void quantizeImpl(int superBlockSize, int blockSize, float[] x, int xOff, MemorySegment dst, long dOff,
                             long qsOff, long scalesHOff, long scalesLOff, Scratch s, float[] qw, int qwOff, int ntry) {
        byte[] values = KVALUES_IQ4NL;
        float[] scales = s.scales(), weight = s.weight();
        byte[] L = s.L();
        float sigma2 = 0;
        for (int j = 0; j < superBlockSize; ++j) sigma2 += x[xOff + j] * x[xOff + j];
        sigma2 *= 2.f / superBlockSize;

        float maxScale = 0, amaxScale = 0;
        for (int ib = 0; ib < superBlockSize / blockSize; ++ib) {
            int xb = xOff + ib * blockSize;
            int lb = ib * blockSize;
            if (qw != null) {
                for (int j = 0; j < blockSize; ++j) {
                    weight[j] = qw[qwOff + ib * blockSize + j] * (float) Math.sqrt(sigma2 + x[xb + j] * x[xb + j]);
                }
            } else {
                for (int j = 0; j < blockSize; ++j) weight[j] = x[xb + j] * x[xb + j];
            }
            float amax = 0, max = 0;
            for (int j = 0; j < blockSize; ++j) {
                float ax = Math.abs(x[xb + j]);
                if (ax > amax) { amax = ax; max = x[xb + j]; }
            }
            if (amax < GROUP_MAX_EPS) {
                scales[ib] = 0;
                continue;
            }
            float d = ntry > 0 ? -max / values[0] : max / values[0];
            float id = 1 / d;
            float sumqx = 0, sumq2 = 0;
            for (int j = 0; j < blockSize; ++j) {
                float al = id * x[xb + j];
                int l = bestIndexInt8(values, al);
                L[lb + j] = (byte) l;
                float q = values[l];
                float w = weight[j];
                sumqx += w * q * x[xb + j];
                sumq2 += w * q * q;
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
            float best = d * sumqx;
            for (int itry = -ntry; itry <= ntry; ++itry) {
                id = (itry + values[0]) / max;
                sumqx = sumq2 = 0;
                for (int j = 0; j < blockSize; ++j) {
                    float al = id * x[xb + j];
                    int l = bestIndexInt8(values, al);
                    float q = values[l];
                    float w = weight[j];
                    sumqx += w * q * x[xb + j];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
            scales[ib] = d;
            float absD = Math.abs(d);
            if (absD > amaxScale) { amaxScale = absD; maxScale = d; }
        }

        int nb = superBlockSize / blockSize;
        if (nb > 1) {
            int scalesH = 0;
            float d = -maxScale / 32;
            putHalf(dst, dOff, fp32ToFp16(d));
            float id = d != 0 ? 1 / d : 0.f;
            for (int ib = 0; ib < nb; ++ib) {
                int l = nearestInt(id * scales[ib]);
                l = Math.max(-32, Math.min(31, l));
                float dl = d * l;
                float idl = dl != 0 ? 1 / dl : 0.f;
                int xb = xOff + ib * blockSize;
                for (int j = 0; j < blockSize; ++j) L[ib * blockSize + j] = (byte) bestIndexInt8(values, idl * x[xb + j]);
                l += 32;
                int lLow = l & 0xf, lHigh = l >>> 4;
                long at = scalesLOff + ib / 2;
                if (ib % 2 == 0) putByte(dst, at, lLow);
                else putByte(dst, at, getByte(dst, at) | (lLow << 4));
                scalesH |= lHigh << (2 * (ib % 8));
            }
            putHalf(dst, scalesHOff, (short) scalesH);
        } else {
            putHalf(dst, dOff, fp32ToFp16(scales[0]));
            if (ntry > 0) {
                float id = scales[0] != 0 ? 1 / scales[0] : 0;
                for (int j = 0; j < superBlockSize; ++j) L[j] = (byte) bestIndexInt8(values, id * x[xOff + j]);
            }
        }

        for (int i = 0; i < superBlockSize / 32; ++i) {
            for (int j = 0; j < 16; ++j) putByte(dst, qsOff + 16 * i + j, L[32 * i + j] | (L[32 * i + 16 + j] << 4));
        }
    }

    /** dequantize_row_iq4_nl */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        byte[] values = KVALUES_IQ4NL;
        for (int i = 0; i < n / QK; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            int yb = dstOff + i * QK;
            float d = fp16ToFp32(getHalf(src, xb));
            for (int j = 0; j < QK / 2; ++j) {
                int q = getByte(src, xb + 2 + j);
                dst[yb + j] = d * values[q & 0xf];
                dst[yb + j + QK / 2] = d * values[q >>> 4];
            }
        }
    }
}
