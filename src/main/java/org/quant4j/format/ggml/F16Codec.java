package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

import static org.quant4j.format.ggml.CodecMath.*;

/** F16: IEEE half precision, little-endian; "quantizing" is ggml_fp32_to_fp16_row (round to nearest even). */
public final class F16Codec implements BlockCodec {
    public static final F16Codec INSTANCE = new F16Codec();

    private F16Codec() {}

    @Override public GgmlType type() { return GgmlType.F16; }

    @Override
    public void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        checkRow(type(), n);
        for (int i = 0; i < n; i++) putHalf(dst, dstOff + 2L * i, fp32ToFp16(x[xOff + i]));
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        checkRow(type(), n);
        for (int i = 0; i < n; i++) dst[dstOff + i] = fp16ToFp32(getHalf(src, srcOff + 2L * i));
    }
}
