package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.MemorySegment;

/**
 * Encode and decode one ggml block type, byte for byte as ggml does ({@code ggml-quants.c}): the bytes a
 * {@link #quantize} call writes equal what {@code ggml_quantize_chunk} writes for the same row, with or without an
 * importance matrix, and {@link #dequantize} equals ggml's {@code dequantize_row_*}. A codec knows its storage type and
 * nothing else (no files, no methods); {@link GgmlCodecs#of} finds the codec of a type.
 */
public interface BlockCodec {
    /** The storage type this codec writes. */
    GgmlType type();

    /**
     * Quantizes one row, as {@code ggml_quantize_chunk} does for a row of {@code n} values.
     *
     * @param x          the values, {@code x[xOff .. xOff + n)}; {@code n} a multiple of the block size
     * @param importance one weight per column ({@code importance[0 .. n)}, llama.cpp's imatrix entry for the tensor),
     *                   or null for ggml's path without an importance matrix
     * @param dst        where the row's blocks go, {@code type().rowBytes(n)} bytes from {@code dstOff}
     */
    void quantize(float[] x, int xOff, int n, float[] importance, MemorySegment dst, long dstOff);

    /** Decodes {@code n} values (a multiple of the block size) stored from {@code srcOff} into {@code dst[dstOff ..]}. */
    void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n);

    /** Whether llama.cpp insists on an importance matrix for this type (IQ2/IQ1 types); false for every type here. */
    default boolean requiresImportance() { return false; }
}
