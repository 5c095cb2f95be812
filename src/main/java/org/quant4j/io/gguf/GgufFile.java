package org.quant4j.io.gguf;

import org.quant4j.format.GgmlType;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.*;

/**
 * A GGUF file (versions 2 and 3), memory-mapped. Metadata is parsed eagerly; tensor data is never copied: each
 * {@link #tensor(String)} is a slice of the mapping. Every count and length is checked against the bytes left in the
 * file before anything is allocated, so a forged header gives a {@link Q4jException} naming the file and offset.
 */
public final class GgufFile implements AutoCloseable {
    public static final int MAGIC = 0x46554747; // "GGUF" little-endian
    public static final int DEFAULT_ALIGNMENT = 32;
    private static final int MAX_DIMS = 8;

    /** One entry of the tensor-info table. {@code ggmlDims} is innermost first, as GGUF stores it. */
    public record TensorInfo(String name, GgmlType type, long[] ggmlDims, long offset, long byteSize) {
        /** Row-major shape, outermost first (the reverse of GGUF's order). */
        public long[] shape() {
            long[] s = new long[ggmlDims.length];
            for (int i = 0; i < s.length; i++) s[i] = ggmlDims[ggmlDims.length - 1 - i];
            return s;
        }
    }

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final int version;
    private final LinkedHashMap<String, GgufValue> metadata;
    private final LinkedHashMap<String, TensorInfo> tensors;
    private final long alignment;
    private final long dataStart;

    private GgufFile(Path path, Arena arena, MemorySegment file, int version, LinkedHashMap<String, GgufValue> metadata,
                     LinkedHashMap<String, TensorInfo> tensors, long alignment, long dataStart) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.alignment = alignment;
        this.dataStart = dataStart;
    }

    public static GgufFile open(Path path) {
        return org.quant4j.util.MappedFile.map(path, (arena, seg) -> parse(path, arena, seg));
    }

    private static GgufFile parse(Path path, Arena arena, MemorySegment seg) {
        Cursor c = new Cursor(path, seg);
        if (seg.byteSize() < 4 || c.i32() != MAGIC) {
            throw new Q4jException(path + ": not a GGUF file (bad magic at offset 0)");
        }
        long vpos = c.pos;
        int version = c.i32();
        if (version != 2 && version != 3) {
            throw new Q4jException(path + ": unsupported GGUF version " + version + " at offset " + vpos + " (supported: 2, 3)");
        }
        long nTensors = c.count("tensor count", 8 + 4 + 8 + 4);
        long nKv = c.count("metadata count", 8 + 4 + 1);

        LinkedHashMap<String, GgufValue> meta = new LinkedHashMap<>();
        for (long i = 0; i < nKv; i++) {
            long at = c.pos;
            c.context = "metadata key #" + i;
            String key = c.string("metadata key #" + i);
            c.context = "metadata '" + key + "'";
            int typeId = c.i32();
            GgufValueType type = GgufValueType.byId(typeId);
            if (type == null) {
                throw new Q4jException(path + ": metadata '" + key + "': unknown value type " + typeId + " at offset " + (c.pos - 4));
            }
            if (meta.containsKey(key)) throw new Q4jException(path + ": duplicate metadata key '" + key + "' at offset " + at);
            meta.put(key, new GgufValue(type, c.value(type, key, 0)));
        }

        long alignment = DEFAULT_ALIGNMENT;
        GgufValue al = meta.get("general.alignment");
        if (al != null) {
            long a = al.type() == GgufValueType.UINT32 || al.type() == GgufValueType.INT32 || al.type() == GgufValueType.UINT64 ? al.asLong() : -1;
            if (a <= 0 || (a & (a - 1)) != 0 || a > (1 << 20)) {
                throw new Q4jException(path + ": general.alignment must be a power of two, got " + al);
            }
            alignment = a;
        }

        LinkedHashMap<String, TensorInfo> infos = new LinkedHashMap<>();
        for (long i = 0; i < nTensors; i++) {
            c.context = "tensor info #" + i;
            String name = c.string("tensor name #" + i);
            c.context = "tensor " + name + ": info";
            long dimsAt = c.pos;
            int nDims = c.i32();
            if (nDims < 0 || nDims > MAX_DIMS) {
                throw new Q4jException(path + ": tensor " + name + ": " + nDims + " dimensions at offset " + dimsAt + " (at most " + MAX_DIMS + ")");
            }
            long[] dims = new long[nDims];
            long numel = 1;
            for (int d = 0; d < nDims; d++) {
                long at = c.pos;
                dims[d] = c.i64();
                if (dims[d] < 0) {
                    throw new Q4jException(path + ": tensor " + name + ": negative dimension " + dims[d] + " at offset " + at);
                }
                try {
                    numel = Math.multiplyExact(numel, dims[d]);
                } catch (ArithmeticException e) {
                    throw new Q4jException(path + ": tensor " + name + ": dimensions " + Arrays.toString(dims) + " overflow at offset " + at);
                }
            }
            long typeAt = c.pos;
            int typeId = c.i32();
            GgmlType type = GgmlType.byId(typeId);
            if (type == null) throw new Q4jException(path + ": tensor " + name + ": unknown ggml type " + typeId + " at offset " + typeAt);
            long offAt = c.pos;
            long offset = c.i64();
            if (nDims > 0 && dims[0] % type.blockSize() != 0) {
                throw new Q4jException(path + ": tensor " + name + ": row length " + dims[0] + " is not a multiple of the "
                        + type + " block size " + type.blockSize() + " (offset " + dimsAt + ")");
            }
            long bytes;
            try {
                bytes = type.byteSize(numel);
            } catch (ArithmeticException | IllegalArgumentException e) {
                throw new Q4jException(path + ": tensor " + name + ": size of " + type + " " + Arrays.toString(dims) + " overflows (offset " + dimsAt + ")");
            }
            if (offset < 0 || offset % alignment != 0) {
                throw new Q4jException(path + ": tensor " + name + ": data offset " + offset + " at offset " + offAt + " is not a multiple of the alignment " + alignment);
            }
            if (infos.containsKey(name)) throw new Q4jException(path + ": duplicate tensor name '" + name + "' at offset " + dimsAt);
            infos.put(name, new TensorInfo(name, type, dims, offset, bytes));
        }
        long dataStart = alignUp(c.pos, alignment);
        long fileSize = seg.byteSize();
        if (nTensors > 0 && dataStart > fileSize) {
            throw new Q4jException(path + ": tensor data should start at offset " + dataStart + ", past the end of the file (" + fileSize + " bytes)");
        }
        for (TensorInfo t : infos.values()) {
            long start = dataStart + t.offset;
            if (t.offset > fileSize || start > fileSize || t.byteSize > fileSize - start) {
                throw new Q4jException(path + ": tensor " + t.name + ": offset " + start + " + " + t.byteSize
                        + " bytes runs past end of file (" + fileSize + " bytes)");
            }
        }
        return new GgufFile(path, arena, seg, version, meta, infos, alignment, dataStart);
    }

    static long alignUp(long x, long a) { return (x + a - 1) / a * a; }

    public Path path() { return path; }
    public int version() { return version; }
    public long alignment() { return alignment; }
    public long dataStart() { return dataStart; }
    public long fileSize() { return file.byteSize(); }

    /** All metadata in file order (unmodifiable). */
    public Map<String, GgufValue> metadata() { return Collections.unmodifiableMap(metadata); }

    public GgufValue get(String key) { return metadata.get(key); }

    public boolean has(String key) { return metadata.containsKey(key); }

    public String getString(String key, String fallback) {
        GgufValue v = metadata.get(key);
        return v == null ? fallback : v.asString();
    }

    public long getLong(String key, long fallback) {
        GgufValue v = metadata.get(key);
        return v == null ? fallback : v.asLong();
    }

    public double getDouble(String key, double fallback) {
        GgufValue v = metadata.get(key);
        return v == null ? fallback : v.asDouble();
    }

    /** The metadata value at {@code key}, failing with a clear error if missing. */
    public GgufValue require(String key) {
        GgufValue v = metadata.get(key);
        if (v == null) throw new Q4jException(path + ": required metadata '" + key + "' is missing");
        return v;
    }

    /** Tensor infos in file order. */
    public Collection<TensorInfo> tensorInfos() { return Collections.unmodifiableCollection(tensors.values()); }

    public boolean hasTensor(String name) { return tensors.containsKey(name); }

    /** The tensor's bytes as a slice of the mapping (no copy). */
    public Tensor tensor(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw new Q4jException(path + ": tensor " + name + " is missing");
        return new Tensor(name, t.type, t.shape(), file.asSlice(dataStart + t.offset, t.byteSize));
    }

    /** Every tensor, in file order, as slices of the mapping. */
    public List<Tensor> tensors() {
        List<Tensor> out = new ArrayList<>(tensors.size());
        for (String n : tensors.keySet()) out.add(tensor(n));
        return out;
    }

    /** Unmaps the file. Tensors obtained from it become invalid. */
    @Override public void close() { arena.close(); }

    // ------------------------------------------------------------------------------------------------------------

    /** A bounds-checked little-endian reader over the mapped file. */
    private static final class Cursor {
        final Path path;
        final MemorySegment seg;
        long pos;
        /** What is being read, for truncation messages: "header", "metadata 'key'", "tensor NAME: info". */
        String context = "header";

        Cursor(Path path, MemorySegment seg) { this.path = path; this.seg = seg; }

        void need(long n, String what) {
            if (n < 0 || pos + n > seg.byteSize() || pos + n < 0) {
                throw new Q4jException(path + ": truncated file: " + what + " at offset " + pos + " needs " + n
                        + " bytes, file has " + seg.byteSize());
            }
        }

        byte i8() { need(1, context); return seg.get(ValueLayout.JAVA_BYTE, pos++); }
        short i16() { need(2, context); short v = seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, pos); pos += 2; return v; }
        int i32() { need(4, context); int v = seg.get(ValueLayout.JAVA_INT_UNALIGNED, pos); pos += 4; return v; }
        long i64() { need(8, context); long v = seg.get(ValueLayout.JAVA_LONG_UNALIGNED, pos); pos += 8; return v; }
        float f32() { need(4, context); float v = seg.get(ValueLayout.JAVA_FLOAT_UNALIGNED, pos); pos += 4; return v; }
        double f64() { need(8, context); double v = seg.get(ValueLayout.JAVA_DOUBLE_UNALIGNED, pos); pos += 8; return v; }

        /** A u64 count of items each at least {@code minItemBytes} long, checked against the bytes left. */
        long count(String what, long minItemBytes) {
            long at = pos;
            long n = i64();
            long left = seg.byteSize() - pos;
            if (n < 0 || (minItemBytes > 0 && n > left / minItemBytes)) {
                throw new Q4jException(path + ": " + what + " " + Long.toUnsignedString(n) + " at offset " + at
                        + " cannot fit in the " + left + " bytes left in the file");
            }
            return n;
        }

        String string(String what) {
            long at = pos;
            long len = count(what + " length", 1);
            if (len > Integer.MAX_VALUE - 8) {
                throw new Q4jException(path + ": " + what + " at offset " + at + ": string of " + len + " bytes is too long");
            }
            need(len, what);
            byte[] b = new byte[(int) len];
            MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, b, 0, (int) len);
            pos += len;
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b)).toString();
            } catch (CharacterCodingException e) {
                throw new Q4jException(path + ": " + what + " at offset " + at + " is not valid UTF-8");
            }
        }

        Object value(GgufValueType type, String key, int depth) {
            return switch (type) {
                case UINT8, INT8 -> i8();
                case UINT16, INT16 -> i16();
                case UINT32, INT32 -> i32();
                case UINT64, INT64 -> i64();
                case FLOAT32 -> f32();
                case FLOAT64 -> f64();
                case BOOL -> {
                    long at = pos;
                    byte b = i8();
                    if (b != 0 && b != 1) throw new Q4jException(path + ": metadata '" + key + "': bad bool " + b + " at offset " + at);
                    yield b == 1;
                }
                case STRING -> string("metadata '" + key + "'");
                case ARRAY -> array(key, depth);
            };
        }

        GgufValue.Array array(String key, int depth) {
            if (depth > 8) throw new Q4jException(path + ": metadata '" + key + "': arrays nested too deep at offset " + pos);
            long typeAt = pos;
            int typeId = i32();
            GgufValueType et = GgufValueType.byId(typeId);
            if (et == null) throw new Q4jException(path + ": metadata '" + key + "': unknown array element type " + typeId + " at offset " + typeAt);
            long minSize = et.size > 0 ? et.size : (et == GgufValueType.STRING ? 8 : 12);
            long n = count("metadata '" + key + "' array length", minSize);
            if (n > Integer.MAX_VALUE - 8) throw new Q4jException(path + ": metadata '" + key + "': array of " + n + " elements is too long");
            int len = (int) n;
            Object arr = switch (et) {
                case UINT8, INT8 -> { byte[] a = new byte[len]; for (int i = 0; i < len; i++) a[i] = i8(); yield a; }
                case UINT16, INT16 -> { short[] a = new short[len]; for (int i = 0; i < len; i++) a[i] = i16(); yield a; }
                case UINT32, INT32 -> { int[] a = new int[len]; for (int i = 0; i < len; i++) a[i] = i32(); yield a; }
                case UINT64, INT64 -> { long[] a = new long[len]; for (int i = 0; i < len; i++) a[i] = i64(); yield a; }
                case FLOAT32 -> { float[] a = new float[len]; for (int i = 0; i < len; i++) a[i] = f32(); yield a; }
                case FLOAT64 -> { double[] a = new double[len]; for (int i = 0; i < len; i++) a[i] = f64(); yield a; }
                case BOOL -> {
                    boolean[] a = new boolean[len];
                    for (int i = 0; i < len; i++) a[i] = (Boolean) value(GgufValueType.BOOL, key, depth);
                    yield a;
                }
                case STRING -> { String[] a = new String[len]; for (int i = 0; i < len; i++) a[i] = string("metadata '" + key + "'[" + i + "]"); yield a; }
                case ARRAY -> {
                    GgufValue.Array[] a = new GgufValue.Array[len];
                    for (int i = 0; i < len; i++) a[i] = array(key, depth + 1);
                    yield a;
                }
            };
            return new GgufValue.Array(et, arr);
        }
    }
}
