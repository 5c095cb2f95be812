package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/**
 * BF16: the upper half of an IEEE float, little-endian; "quantizing" is ggml_fp32_to_bf16_row_ref (what
 * ggml_quantize_chunk calls): round to nearest even, NaNs kept quiet rather than rounded, subnormals kept.
 */
public final class BF16Codec implements BlockCodec {
    public static final BF16Codec INSTANCE = new BF16Codec();

    private BF16Codec() {}

    @Override public GgmlType type() { return GgmlType.BF16; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        for (int i = 0; i < n; i++) putHalf(dst, dstOff + 2L * i, fp32ToBf16(x[xOff + i]));
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n; i++) dst[dstOff + i] = bf16ToFp32(getHalf(src, srcOff + 2L * i));
    }
}
