package org.quant4j.format;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Encoding floats into ggml's plain float storage types: F32, F16 (IEEE half, round to nearest even, as
 * {@code ggml_fp32_to_fp16}), BF16 (round to nearest even, NaN kept quiet, as {@code ggml_fp32_to_bf16}).
 */
public final class FloatFormats {
    private FloatFormats() {}

    /** float → bfloat16 bits as ggml rounds: nearest even; NaN becomes a quiet NaN. */
    public static short floatToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (short) ((u >>> 16) | 64);
        return (short) ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16);
    }

    /** fp32 → fp16 as ggml writes it: round to nearest even, every NaN as the quiet NaN 0x7E00 with the input's sign. */
    public static short floatToF16(float f) {
        if (Float.isNaN(f)) return (short) (((Float.floatToRawIntBits(f) >>> 16) & 0x8000) | 0x7E00);
        return Float.floatToFloat16(f);
    }

    public static float bf16ToFloat(short b) { return Float.intBitsToFloat((b & 0xffff) << 16); }

    /** Writes {@code n} floats from {@code src[off..]} into {@code dst} at {@code dstOff} in the given storage type. */
    public static void encodeRow(GgmlType type, float[] src, int off, int n, MemorySegment dst, long dstOff) {
        switch (type) {
            case F32 -> MemorySegment.copy(src, off, dst, ValueLayout.JAVA_FLOAT_UNALIGNED, dstOff, n);
            case F16 -> { for (int i = 0; i < n; i++) dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, dstOff + 2L * i, floatToF16(src[off + i])); }
            case BF16 -> { for (int i = 0; i < n; i++) dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, dstOff + 2L * i, floatToBf16(src[off + i])); }
            default -> throw new IllegalArgumentException("not a plain float type: " + type);
        }
    }
}
