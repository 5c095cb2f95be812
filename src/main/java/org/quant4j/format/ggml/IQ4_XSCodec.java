package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * IQ4_XS: super-blocks of 256 values in 8 blocks of 32; an fp16 super-block scale d, a 6-bit signed scale ls - 32 per
 * block (low nibbles in scales_l, two per byte; high 2 bits in the 16-bit scales_h, 2 bits per block) and 256 four-bit
 * indices into kvalues_iq4nl packed as in IQ4_NL per block of 32; x = d·(ls - 32)·kvalues[q]. Layout: d (2 bytes),
 * scales_h (2 bytes), scales_l (4 bytes), qs (128 bytes).
 */
public final class IQ4_XSCodec implements BlockCodec {
    public static final IQ4_XSCodec INSTANCE = new IQ4_XSCodec();
    private static final int QK_K = 256, BLOCK_BYTES = 136;

    private IQ4_XSCodec() {}

    @Override public GgmlType type() { return GgmlType.IQ4_XS; }

    /** quantize_iq4_xs: quantize_row_iq4_nl_impl(256, 32, ntry 7) per super-block. */
    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        IQ4_NLCodec.Scratch s = new IQ4_NLCodec.Scratch(QK_K, 32);
        for (int ibl = 0; ibl < n / QK_K; ++ibl) {
            long yb = dstOff + (long) ibl * BLOCK_BYTES;
            IQ4_NLCodec.quantizeImpl(QK_K, 32, x, xOff + QK_K * ibl, dst, yb, yb + 8, yb + 2, yb + 4, s, importance,
                    QK_K * ibl, IQ4_NLCodec.NTRY);
        }
    }

    /** dequantize_row_iq4_xs */
    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        byte[] values = KVALUES_IQ4NL;
        for (int i = 0; i < n / QK_K; i++) {
            long xb = srcOff + (long) i * BLOCK_BYTES;
            float d = fp16ToFp32(getHalf(src, xb));
            int scalesH = getHalf(src, xb + 2) & 0xffff;
            for (int ib = 0; ib < QK_K / 32; ++ib) {
                int ls = ((getByte(src, xb + 4 + ib / 2) >>> (4 * (ib % 2))) & 0xf) | (((scalesH >>> (2 * ib)) & 3) << 4);
                float dl = d * (ls - 32);
                long qs = xb + 8 + 16L * ib;
                int yb = dstOff + i * QK_K + 32 * ib;
                for (int j = 0; j < 16; ++j) {
                    int q = getByte(src, qs + j);
                    dst[yb + j] = dl * values[q & 0xf];
                    dst[yb + j + 16] = dl * values[q >>> 4];
                }
            }
        }
    }
}
