package org.quant4j.io.gguf;

import org.quant4j.tensor.Tensor;
import org.quant4j.util.AtomicOutput;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Writes GGUF version 3 files as llama.cpp does: header, metadata, tensor infos, zero padding to the alignment, then
 * each tensor's data padded with zeros to the alignment. Offsets are assigned in list order. A file read by
 * {@link GgufFile} and written back with the same metadata and tensors is byte-identical.
 */
public final class GgufWriter {
    private GgufWriter() {}

    /**
     * A tensor to be written whose bytes are produced only when the writer reaches it, so a model can be converted
     * or quantized tensor by tensor without holding it all in memory.
     */
    public record PendingTensor(String name, org.quant4j.format.GgmlType type, long[] shape, Supplier<MemorySegment> data) {
        public long byteSize() {
            long n = 1;
            for (long d : shape) n = Math.multiplyExact(n, d);
            return type.byteSize(n);
        }

        public static PendingTensor of(Tensor t) { return new PendingTensor(t.name(), t.ggmlType(), t.shape(), t::data); }
    }

    public static void write(Path out, Map<String, GgufValue> metadata, List<Tensor> tensors, Path... inputs) {
        List<PendingTensor> pending = new ArrayList<>(tensors.size());
        for (Tensor t : tensors) pending.add(PendingTensor.of(t));
        writePending(out, metadata, pending, inputs);
    }

    public static void writePending(Path out, Map<String, GgufValue> metadata, List<PendingTensor> tensors, Path... inputs) {
        long alignment = GgufFile.DEFAULT_ALIGNMENT;
        GgufValue al = metadata.get("general.alignment");
        if (al != null) alignment = al.asLong();
        final long align = alignment;
        AtomicOutput.write(out, ch -> writeTo(ch, metadata, tensors, align), inputs);
    }

    private static void writeTo(FileChannel ch, Map<String, GgufValue> metadata, List<PendingTensor> tensors, long alignment) throws IOException {
        Bytes h = new Bytes();
        h.i32(GgufFile.MAGIC);
        h.i32(3);
        h.i64(tensors.size());
        h.i64(metadata.size());
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            h.string(e.getKey());
            h.i32(e.getValue().type().id);
            h.value(e.getValue().type(), e.getValue().value());
        }
        long offset = 0;
        for (PendingTensor t : tensors) {
            h.string(t.name());
            long[] shape = t.shape();
            h.i32(shape.length);
            for (int i = shape.length - 1; i >= 0; i--) h.i64(shape[i]);
            h.i32(t.type().id());
            h.i64(offset);
            offset = GgufFile.alignUp(offset + t.byteSize(), alignment);
        }
        long headerLen = h.size();
        h.zeros(GgufFile.alignUp(headerLen, alignment) - headerLen);
        writeFully(ch, ByteBuffer.wrap(h.toByteArray()));
        for (PendingTensor t : tensors) {
            MemorySegment d = t.data().get();
            long n = d.byteSize();
            if (n != t.byteSize()) {
                throw new IllegalStateException("tensor " + t.name() + ": produced " + n + " bytes, expected " + t.byteSize());
            }
            for (long pos = 0; pos < n; ) {
                long chunk = Math.min(n - pos, 1L << 28);
                writeFully(ch, d.asSlice(pos, chunk).asByteBuffer());
                pos += chunk;
            }
            long pad = GgufFile.alignUp(n, alignment) - n;
            if (pad > 0) writeFully(ch, ByteBuffer.allocate((int) pad));
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    /** A growable little-endian byte buffer for the header. */
    private static final class Bytes extends ByteArrayOutputStream {
        void i8(int v) { write(v); }
        void i16(int v) { write(v); write(v >>> 8); }
        void i32(int v) { for (int i = 0; i < 4; i++) write(v >>> (8 * i)); }
        void i64(long v) { for (int i = 0; i < 8; i++) write((int) (v >>> (8 * i))); }
        void zeros(long n) { for (long i = 0; i < n; i++) write(0); }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            i64(b.length);
            write(b, 0, b.length);
        }

        void value(GgufValueType type, Object v) {
            switch (type) {
                case UINT8, INT8 -> i8((Byte) v);
                case UINT16, INT16 -> i16((Short) v);
                case UINT32, INT32 -> i32(((Number) v).intValue());
                case UINT64, INT64 -> i64(((Number) v).longValue());
                case FLOAT32 -> i32(Float.floatToRawIntBits((Float) v));
                case FLOAT64 -> i64(Double.doubleToRawLongBits((Double) v));
                case BOOL -> i8((Boolean) v ? 1 : 0);
                case STRING -> string((String) v);
                case ARRAY -> array((GgufValue.Array) v);
            }
        }

        void array(GgufValue.Array a) {
            i32(a.elementType().id);
            int n = a.length();
            i64(n);
            Object e = a.elements();
            switch (a.elementType()) {
                case UINT8, INT8 -> write((byte[]) e, 0, n);
                case UINT16, INT16 -> { for (short s : (short[]) e) i16(s); }
                case UINT32, INT32 -> { for (int x : (int[]) e) i32(x); }
                case UINT64, INT64 -> { for (long x : (long[]) e) i64(x); }
                case FLOAT32 -> { for (float x : (float[]) e) i32(Float.floatToRawIntBits(x)); }
                case FLOAT64 -> { for (double x : (double[]) e) i64(Double.doubleToRawLongBits(x)); }
                case BOOL -> { for (boolean x : (boolean[]) e) i8(x ? 1 : 0); }
                case STRING -> { for (String s : (String[]) e) string(s); }
                case ARRAY -> { for (GgufValue.Array x : (GgufValue.Array[]) e) array(x); }
            }
        }
    }
}
