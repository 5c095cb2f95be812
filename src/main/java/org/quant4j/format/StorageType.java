package org.quant4j.format;

/**
 * How a tensor's values are stored: ggml's types (plain floats, legacy and k-quant blocks, ternary...) or quant4j's
 * linear integer groups. Every storage type cuts rows into blocks of {@link #blockSize()} values, each
 * {@link #typeSize()} bytes long; kernels dispatch on the storage type and know nothing else.
 */
public sealed interface StorageType permits GgmlType, IntQuantType {
    String name();

    /** Values per block. */
    int blockSize();

    /** Bytes per block. */
    int typeSize();

    /** Bytes that {@code count} values occupy (a whole number of blocks). */
    long byteSize(long count);

    default double bitsPerWeight() { return 8.0 * typeSize() / blockSize(); }

    /** Bytes one row of {@code cols} values occupies. */
    default long rowBytes(long cols) { return byteSize(cols); }
}
