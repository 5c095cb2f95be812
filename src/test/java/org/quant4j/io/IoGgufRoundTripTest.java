package org.quant4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.gguf.GgufValueType;
import org.quant4j.io.gguf.GgufWriter;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

import static org.junit.jupiter.api.Assertions.*;

/** GGUF read → write → read, on llama.cpp's own output and on every metadata value type. */
class IoGgufRoundTripTest {
    static final Path STORIES = Path.of("models/stories260K/stories260K-f32.llamacpp.gguf");

    @TempDir Path tmp;

    @Test
    void llamaCppFileRewritesByteIdentical() throws Exception {
        Path out = tmp.resolve("copy.gguf");
        try (GgufFile in = GgufFile.open(STORIES)) {
            assertEquals(48, in.tensorInfos().size());
            GgufWriter.write(out, in.metadata(), in.tensors(), STORIES);
        }
        assertArrayEquals(Files.readAllBytes(STORIES), Files.readAllBytes(out));
        try (GgufFile again = GgufFile.open(out); GgufFile orig = GgufFile.open(STORIES)) {
            assertEquals(orig.metadata(), again.metadata());
            assertEquals(orig.dataStart(), again.dataStart());
        }
    }

    @Test
    void writerRefusesToOverwriteItsInput() {
        try (GgufFile in = GgufFile.open(STORIES)) {
            var e = assertThrows(org.quant4j.util.Q4jException.class,
                    () -> GgufWriter.write(STORIES, in.metadata(), in.tensors(), STORIES));
            assertTrue(e.getMessage().contains("refusing"), e.getMessage());
        }
    }

    /** Every value type as a scalar and as an array element, nested arrays, empty arrays, non-ASCII strings. */
    static Map<String, GgufValue> everyValueType() {
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("general.architecture", GgufValue.string("llama"));
        m.put("t.uint8", new GgufValue(GgufValueType.UINT8, (byte) 0xff));
        m.put("t.int8", new GgufValue(GgufValueType.INT8, (byte) -7));
        m.put("t.uint16", new GgufValue(GgufValueType.UINT16, (short) 0xfffe));
        m.put("t.int16", new GgufValue(GgufValueType.INT16, (short) -300));
        m.put("t.uint32", new GgufValue(GgufValueType.UINT32, 0xfffffffd));
        m.put("t.int32", new GgufValue(GgufValueType.INT32, -70000));
        m.put("t.float32", new GgufValue(GgufValueType.FLOAT32, 1e-5f));
        m.put("t.bool", new GgufValue(GgufValueType.BOOL, true));
        m.put("t.string", GgufValue.string("héllo ✓ 𝄞"));
        m.put("t.uint64", new GgufValue(GgufValueType.UINT64, -1L));
        m.put("t.int64", new GgufValue(GgufValueType.INT64, Long.MIN_VALUE));
        m.put("t.float64", new GgufValue(GgufValueType.FLOAT64, Math.PI));
        m.put("t.empty_string", GgufValue.string(""));
        m.put("a.uint8", arr(GgufValueType.UINT8, new byte[]{1, (byte) 200}));
        m.put("a.int8", arr(GgufValueType.INT8, new byte[]{-1, 2}));
        m.put("a.uint16", arr(GgufValueType.UINT16, new short[]{1, (short) 60000}));
        m.put("a.int16", arr(GgufValueType.INT16, new short[]{-1, 2}));
        m.put("a.uint32", arr(GgufValueType.UINT32, new int[]{1, -2}));
        m.put("a.int32", arr(GgufValueType.INT32, new int[]{-1, 2, 3}));
        m.put("a.float32", arr(GgufValueType.FLOAT32, new float[]{0.5f, Float.NaN, -0f}));
        m.put("a.bool", arr(GgufValueType.BOOL, new boolean[]{true, false, true}));
        m.put("a.string", arr(GgufValueType.STRING, new String[]{"a", "", "ü"}));
        m.put("a.uint64", arr(GgufValueType.UINT64, new long[]{-1L}));
        m.put("a.int64", arr(GgufValueType.INT64, new long[]{Long.MAX_VALUE, 0}));
        m.put("a.float64", arr(GgufValueType.FLOAT64, new double[]{1e300, -2.5}));
        m.put("a.empty", arr(GgufValueType.INT32, new int[0]));
        GgufValue.Array inner1 = new GgufValue.Array(GgufValueType.STRING, new String[]{"x", "yz"});
        GgufValue.Array inner2 = new GgufValue.Array(GgufValueType.STRING, new String[0]);
        m.put("a.nested", arr(GgufValueType.ARRAY, new GgufValue.Array[]{inner1, inner2}));
        GgufValue.Array deep = new GgufValue.Array(GgufValueType.ARRAY, new GgufValue.Array[]{
                new GgufValue.Array(GgufValueType.INT16, new short[]{1, 2, 3})});
        m.put("a.nested2", arr(GgufValueType.ARRAY, new GgufValue.Array[]{deep, new GgufValue.Array(GgufValueType.ARRAY, new GgufValue.Array[0])}));
        return m;
    }

    static GgufValue arr(GgufValueType et, Object elements) {
        return new GgufValue(GgufValueType.ARRAY, new GgufValue.Array(et, elements));
    }

    @Test
    void everyMetadataValueTypeRoundTrips() throws Exception {
        Map<String, GgufValue> meta = everyValueType();
        List<Tensor> tensors = List.of(Tensor.ofFloats("w", new float[]{1, 2, 3, 4, 5, 6}, 2, 3));
        Path a = tmp.resolve("a.gguf");
        Path b = tmp.resolve("b.gguf");
        GgufWriter.write(a, meta, tensors);
        try (GgufFile f = GgufFile.open(a)) {
            assertEquals(new ArrayList<>(meta.keySet()), new ArrayList<>(f.metadata().keySet()), "key order");
            for (var e : meta.entrySet()) assertEquals(e.getValue(), f.get(e.getKey()), e.getKey());
            GgufWriter.write(b, f.metadata(), f.tensors());
            assertArrayEquals(new long[]{2, 3}, f.tensor("w").shape());
        }
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
    }

    @Test
    void alignmentOtherThan32IsHonoured() throws Exception {
        for (int alignment : new int[]{1, 8, 64, 4096}) {
            Map<String, GgufValue> meta = new LinkedHashMap<>();
            meta.put("general.architecture", GgufValue.string("llama"));
            meta.put("general.alignment", GgufValue.u32(alignment));
            List<Tensor> tensors = new ArrayList<>();
            Random r = new Random(alignment);
            for (int i = 0; i < 4; i++) {
                float[] v = new float[3 + 5 * i]; // odd sizes: padding between tensors matters
                for (int k = 0; k < v.length; k++) v[k] = r.nextFloat();
                tensors.add(Tensor.ofFloats("t" + i, v, v.length));
            }
            tensors.add(new Tensor("q", GgmlType.Q8_0, new long[]{2, 32}, MemorySegment.ofArray(new byte[2 * 34])));
            Path p = tmp.resolve("al" + alignment + ".gguf");
            GgufWriter.write(p, meta, tensors);
            try (GgufFile f = GgufFile.open(p)) {
                assertEquals(alignment, f.alignment());
                assertEquals(0, f.dataStart() % alignment);
                for (GgufFile.TensorInfo info : f.tensorInfos()) assertEquals(0, info.offset() % alignment, info.name());
                for (Tensor t : tensors) {
                    assertEquals(-1, f.tensor(t.name()).data().mismatch(t.data()), t.name());
                }
                assertEquals(f.fileSize(), f.dataStart() + (f.tensorInfos().stream().mapToLong(i -> (i.byteSize() + alignment - 1) / alignment * alignment).sum()));
            }
        }
    }

    @Test
    void readerUsesTheFilesAlignmentNotTheDefault() throws Exception {
        // Hand-built: alignment 64, one F32 tensor of 1 value at data offset 64 (offset 0 holds another).
        IoBytes b = new IoBytes();
        b.u32(GgufFile.MAGIC).u32(3).u64(2).u64(1);
        b.str("general.alignment").u32(GgufValueType.UINT32.id).u32(64);
        b.str("a").u32(1).u64(1).u32(GgmlType.F32.id()).u64(0);
        b.str("b").u32(1).u64(1).u32(GgmlType.F32.id()).u64(64);
        b.padTo(64);
        int dataStart = b.pos();
        b.f32(1.5f).zeros(60).f32(2.5f).zeros(60);
        Path p = tmp.resolve("hand.gguf");
        Files.write(p, b.bytes());
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(dataStart, f.dataStart());
            assertEquals(1.5f, f.tensor("a").data().get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
            assertEquals(2.5f, f.tensor("b").data().get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
        }
    }
}
