package org.quant4j.tensor;

import org.quant4j.format.GgmlType;
import org.quant4j.format.StorageType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A named tensor: storage type, shape and bytes.
 *
 * <p>{@code shape} is row-major with the outermost dimension first, as PyTorch and safetensors write it: a linear
 * layer's weight with {@code out} outputs and {@code in} inputs has shape {@code [out, in]}, each row one output.
 * (GGUF lists dimensions innermost first; the GGUF reader and writer reverse them.) The bytes are little-endian,
 * laid out exactly as the storage type defines (quantized types in ggml blocks along the last dimension), and may live
 * on the heap or in a memory-mapped file.
 */
public record Tensor(String name, StorageType type, long[] shape, MemorySegment data) {

    public Tensor {
        shape = shape.clone();
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("tensor " + name + ": negative dimension in " + Arrays.toString(shape));
            n = Math.multiplyExact(n, d);
        }
        long expected = byteSize(name, type, shape);
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + name + ": " + type + " " + Arrays.toString(shape) + " needs "
                    + expected + " bytes, storage has " + data.byteSize());
        }
    }

    /** Bytes a tensor of this type and shape occupies: rows × bytes per row. */
    public static long byteSize(String name, StorageType type, long[] shape) {
        long cols = shape.length == 0 ? 1 : shape[shape.length - 1];
        long rows = 1;
        for (int i = 0; i < shape.length - 1; i++) rows = Math.multiplyExact(rows, shape[i]);
        try {
            return Math.multiplyExact(rows, type.rowBytes(cols));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("tensor " + name + ": rows of " + cols + " values cannot be stored as " + type.name() + ": " + e.getMessage());
        }
    }

    /** Number of values. */
    public long size() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    /** Length of the last (innermost) dimension: the row length. */
    public long cols() { return shape.length == 0 ? 1 : shape[shape.length - 1]; }

    /** Product of every dimension but the last. */
    public long rows() { return shape.length == 0 ? 1 : size() / Math.max(1, cols()); }

    public int rank() { return shape.length; }

    /** The storage type as a ggml type, for formats that hold only those (GGUF). */
    public GgmlType ggmlType() {
        if (type instanceof GgmlType g) return g;
        throw new IllegalStateException("tensor " + name + " is stored as " + type.name() + ", not a ggml type");
    }

    public long dim(int i) { return shape[i]; }

    @Override public long[] shape() { return shape.clone(); }

    public Tensor withName(String newName) { return new Tensor(newName, type, shape, data); }

    /** A heap F32 tensor holding a copy of {@code values}. */
    public static Tensor ofFloats(String name, float[] values, long... shape) {
        MemorySegment seg = MemorySegment.ofArray(new byte[values.length * 4]);
        MemorySegment.copy(values, 0, seg, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, values.length);
        return new Tensor(name, GgmlType.F32, shape, seg);
    }

    /** A freshly allocated heap tensor of the given type and shape, zero-filled. */
    public static Tensor allocate(String name, StorageType type, long... shape) {
        long bytes = byteSize(name, type, shape);
        if (bytes > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("tensor " + name + ": " + bytes + " bytes is too large for one heap array");
        }
        return new Tensor(name, type, shape, MemorySegment.ofArray(new byte[(int) bytes]));
    }

    @Override public String toString() {
        return name + " " + type + " " + Arrays.toString(shape);
    }

    @Override public boolean equals(Object o) { return this == o; }

    @Override public int hashCode() { return System.identityHashCode(this); }
}
