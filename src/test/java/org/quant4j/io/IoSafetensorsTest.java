package org.quant4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.GgmlType;
import org.quant4j.io.safetensors.*;
import org.quant4j.io.safetensors.SafetensorsWriter.Entry;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

import static org.junit.jupiter.api.Assertions.*;

/** safetensors: every dtype round-trips, the header is byte-for-byte the reference library's, sharding as HF does it. */
class IoSafetensorsTest {
    @TempDir Path tmp;

    static MemorySegment randomBytes(long n, long seed) {
        byte[] b = new byte[(int) n];
        new Random(seed).nextBytes(b);
        return MemorySegment.ofArray(b);
    }

    static Entry entry(String name, SafetensorsDtype dtype, long... shape) {
        long count = 1;
        for (long d : shape) count *= d;
        return new Entry(name, dtype, shape, randomBytes(dtype.byteSize(count), name.hashCode()));
    }

    @Test
    void everyDtypeRoundTrips() throws Exception {
        List<Entry> entries = new ArrayList<>();
        for (SafetensorsDtype d : SafetensorsDtype.values()) {
            entries.add(entry("t." + d.name().toLowerCase(), d, 3, 4)); // 12 values: whole bytes even for F4 and F6
            entries.add(entry("scalar." + d.name(), d, d.bits() % 8 == 0 ? new long[0] : new long[]{4}));
            entries.add(entry("empty." + d.name(), d, 0, 5));
        }
        Path p = tmp.resolve("all.safetensors");
        SafetensorsWriter.write(p, Map.of("format", "pt", "note", "é \"quoted\"\n"), entries);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(Map.of("format", "pt", "note", "é \"quoted\"\n"), f.metadata());
            assertEquals(0, f.dataStart() % 8, "header padded to a multiple of 8");
            assertEquals(entries.size(), f.tensorInfos().size());
            for (Entry e : entries) {
                SafetensorsFile.TensorInfo info = f.info(e.name());
                assertEquals(e.dtype(), info.dtype(), e.name());
                assertArrayEquals(e.shape(), info.shape(), e.name());
                assertEquals(-1, f.bytes(e.name()).mismatch(e.data()), e.name());
                assertEquals(0, (f.dataStart() + info.begin()) % Math.max(1, e.dtype().bits() / 8), "aligned: " + e.name());
                GgmlType g = e.dtype().ggmlType();
                if (g != null) {
                    Tensor t = f.tensor(e.name());
                    assertEquals(g, t.type());
                    assertTrue(t.data().isMapped(), "a slice of the mapping, not a copy");
                } else {
                    var ex = assertThrows(Q4jException.class, () -> f.tensor(e.name()));
                    assertTrue(ex.getMessage().contains(e.dtype().name()), ex.getMessage());
                }
            }
        }
        // Each dtype alone, then read → write → read gives the same bytes.
        for (SafetensorsDtype d : SafetensorsDtype.values()) {
            Path one = tmp.resolve(d + ".safetensors");
            SafetensorsWriter.write(one, null, List.of(entry("x", d, 2, 6)));
            Path again = tmp.resolve(d + ".again.safetensors");
            try (SafetensorsFile f = SafetensorsFile.open(one)) {
                assertTrue(f.metadata().isEmpty());
                SafetensorsFile.TensorInfo i = f.info("x");
                SafetensorsWriter.write(again, null, List.of(new Entry("x", i.dtype(), i.shape(), f.bytes("x"))));
            }
            assertArrayEquals(Files.readAllBytes(one), Files.readAllBytes(again), d.name());
        }
    }

    @Test
    void ggmlTensorsRoundTrip() throws Exception {
        List<Tensor> tensors = List.of(
                Tensor.ofFloats("w", new float[]{1, 2, 3, 4, 5, 6}, 2, 3),
                new Tensor("h", GgmlType.F16, new long[]{3}, randomBytes(6, 1)),
                new Tensor("b", GgmlType.BF16, new long[]{2, 2}, randomBytes(8, 2)),
                new Tensor("i", GgmlType.I64, new long[]{1}, randomBytes(8, 3)));
        Path p = tmp.resolve("g.safetensors");
        SafetensorsWriter.writeTensors(p, null, tensors);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            for (Tensor t : tensors) {
                Tensor r = f.tensor(t.name());
                assertEquals(t.type(), r.type());
                assertArrayEquals(t.shape(), r.shape());
                assertEquals(-1, r.data().mismatch(t.data()));
            }
        }
        Tensor q = new Tensor("q", GgmlType.Q4_0, new long[]{32}, randomBytes(18, 4));
        var e = assertThrows(Q4jException.class, () -> SafetensorsWriter.writeTensors(tmp.resolve("q.safetensors"), null, List.of(q)));
        assertTrue(e.getMessage().contains("Q4_0") && e.getMessage().contains("q"), e.getMessage());
    }

    /** The exact bytes safetensors' Rust serializer produces: dtype-descending then name order, compact JSON, space padding. */
    @Test
    void headerMatchesTheReferenceLibrary() throws Exception {
        List<Entry> entries = List.of(
                new Entry("a", SafetensorsDtype.F16, new long[]{3}, randomBytes(6, 1)),
                new Entry("c", SafetensorsDtype.F32, new long[]{1}, randomBytes(4, 2)),
                new Entry("b", SafetensorsDtype.F32, new long[]{2}, randomBytes(8, 3)));
        Path p = tmp.resolve("h.safetensors");
        SafetensorsWriter.write(p, Map.of("format", "pt"), entries);
        String json = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                + "\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[12,18]}}";
        assertEquals(194, json.length());
        byte[] file = Files.readAllBytes(p);
        assertEquals(200, file[0] & 0xff);
        for (int i = 1; i < 8; i++) assertEquals(0, file[i]);
        assertEquals(json + "      ", new String(file, 8, 200, StandardCharsets.UTF_8));
        assertEquals(8 + 200 + 18, file.length);
        assertEquals(-1, MemorySegment.ofArray(file).asSlice(208, 8).mismatch(entries.get(2).data()), "b's bytes come first");
    }

    /** The example file from safetensors' documentation: unpadded header (60 bytes), I32 [2, 2]. */
    @Test
    void readsTheReferenceDocumentationExample() throws Exception {
        IoBytes b = new IoBytes();
        String json = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
        b.u64(json.length()).raw(json.getBytes(StandardCharsets.UTF_8));
        for (int i = 0; i < 4; i++) b.u32(i + 1);
        Path p = tmp.resolve("doc.safetensors");
        Files.write(p, b.bytes());
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            Tensor t = f.tensor("test");
            assertEquals(GgmlType.I32, t.type());
            assertArrayEquals(new long[]{2, 2}, t.shape());
            assertEquals(3, t.data().get(ValueLayout.JAVA_INT_UNALIGNED, 8));
            assertEquals(68, f.dataStart());
        }
    }

    /** Files past 2 GB map and slice (a sparse file: no disk or heap is spent). */
    @Test
    void filesLargerThan2GbMap() throws Exception {
        long big = 3L << 30;
        String json = "{\"small\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                + "\"big\":{\"dtype\":\"F32\",\"shape\":[" + (big / 4) + "],\"data_offsets\":[8," + (8 + big) + "]}}";
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        Path p = tmp.resolve("big.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.write(new IoBytes().u64(header.length).raw(header).bytes());
            f.setLength(8 + header.length + 8 + big);
            f.seek(8 + header.length + 8 + big - 4);
            f.write(new IoBytes().f32(7.5f).bytes());
        }
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            Tensor t = f.tensor("big");
            assertEquals(big, t.data().byteSize());
            assertEquals(7.5f, t.data().get(ValueLayout.JAVA_FLOAT_UNALIGNED, big - 4));
            assertEquals(big / 4, t.size());
        }
    }

    // ---- sharded --------------------------------------------------------------------------------------------

    static List<Entry> modelLike(int n) {
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < n; i++) entries.add(entry("layer." + i + ".weight", i % 3 == 0 ? SafetensorsDtype.BF16 : SafetensorsDtype.F32, 4, 8 + i));
        return entries;
    }

    @Test
    void shardedRoundTrip() throws Exception {
        List<Entry> entries = modelLike(9);
        long total = entries.stream().mapToLong(Entry::byteSize).sum();
        Path dir = tmp.resolve("ckpt");
        long limit = 600; // tensor sizes 64 144 160 88 | 192 208 112 | 240 256
        List<Path> written = SafetensorsWriter.writeSharded(dir, Map.of("format", "pt"), entries, limit);
        assertEquals(List.of(dir.resolve("model-00001-of-00003.safetensors"), dir.resolve("model-00002-of-00003.safetensors"),
                dir.resolve("model-00003-of-00003.safetensors"), dir.resolve("model.safetensors.index.json")), written);

        String index = Files.readString(dir.resolve("model.safetensors.index.json"));
        assertTrue(index.startsWith("{\n  \"metadata\": {\n    \"total_size\": " + total + "\n  },\n  \"weight_map\": {\n    \"layer.0.weight\": \"model-00001-of-00003.safetensors\","), index);
        assertTrue(index.endsWith("\"\n  }\n}\n"), index);

        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
            assertEquals(total, c.totalSize());
            assertEquals(3, c.shardNames().size());
            assertEquals(entries.size(), c.names().size());
            for (Entry e : entries) {
                assertEquals(-1, c.bytes(e.name()).mismatch(e.data()), e.name());
                assertArrayEquals(e.shape(), c.info(e.name()).shape());
            }
            // The reference split: in order, a new shard whenever the next tensor would tip the current one over.
            int[] expectedShard = {1, 1, 1, 1, 2, 2, 2, 3, 3};
            for (int i = 0; i < entries.size(); i++) {
                assertEquals(SafetensorsWriter.shardName(expectedShard[i], 3), c.shardOf(entries.get(i).name()).getFileName().toString());
            }
        }
        // Opening the index file directly, or any shard alone, works too.
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir.resolve("model.safetensors.index.json"))) {
            assertEquals(entries.size(), c.names().size());
        }
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir.resolve("model-00002-of-00003.safetensors"))) {
            assertFalse(c.names().isEmpty());
        }

        // Rewritten with a larger limit: one model.safetensors, and the old shards and index are gone.
        written = SafetensorsWriter.writeSharded(dir, Map.of("format", "pt"), entries, 0);
        assertEquals(List.of(dir.resolve("model.safetensors")), written);
        try (var files = Files.list(dir)) {
            assertEquals(List.of("model.safetensors"), files.map(f -> f.getFileName().toString()).toList());
        }
    }

    @Test
    void tensorLargerThanTheLimitGetsItsOwnShard() {
        List<Entry> entries = List.of(entry("a", SafetensorsDtype.U8, 10), entry("big", SafetensorsDtype.U8, 100), entry("b", SafetensorsDtype.U8, 10));
        Path dir = tmp.resolve("own");
        SafetensorsWriter.writeSharded(dir, null, entries, 50);
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
            // huggingface_hub: "big" is appended as its own shard, "a" and "b" share the open one, closed last.
            assertEquals("model-00001-of-00002.safetensors", c.shardOf("big").getFileName().toString());
            assertEquals("model-00002-of-00002.safetensors", c.shardOf("a").getFileName().toString());
            assertEquals("model-00002-of-00002.safetensors", c.shardOf("b").getFileName().toString());
        }
    }

    @Test
    void shardsOpenLazily() throws Exception {
        List<Entry> entries = modelLike(9);
        Path dir = tmp.resolve("lazy");
        SafetensorsWriter.writeSharded(dir, null, entries, 600);
        Path third = dir.resolve("model-00003-of-00003.safetensors");
        Files.write(third, new byte[]{1, 2, 3}); // damaged, but nothing reads it yet
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
            String first = entries.get(0).name();
            assertEquals(-1, c.bytes(first).mismatch(entries.get(0).data()));
            String last = entries.get(entries.size() - 1).name();
            var e = assertThrows(Q4jException.class, () -> c.tensor(last));
            assertTrue(e.getMessage().contains("model-00003-of-00003.safetensors"), e.getMessage());
        }
    }

    @Test
    void brokenIndexes() throws Exception {
        List<Entry> entries = modelLike(6);
        Path dir = tmp.resolve("broken");
        SafetensorsWriter.writeSharded(dir, null, entries, 500); // 64 144 160 88 | 192 208
        Path index = dir.resolve("model.safetensors.index.json");
        String good = Files.readString(index);

        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        var e = assertThrows(Q4jException.class, () -> SafetensorsCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors") && e.getMessage().contains("missing"), e.getMessage());

        Files.writeString(index, good.replace("\"layer.0.weight\": \"model-00001-of-00002.safetensors\"", "\"layer.0.weight\": \"../../etc/passwd\""));
        e = assertThrows(Q4jException.class, () -> SafetensorsCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("layer.0.weight"), e.getMessage());

        Files.writeString(index, good.replace("\"layer.0.weight\"", "\"layer.99.weight\""));
        SafetensorsWriter.writeSharded(tmp.resolve("tmp2"), null, entries, 500);
        Files.copy(tmp.resolve("tmp2").resolve("model-00002-of-00002.safetensors"), dir.resolve("model-00002-of-00002.safetensors"));
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
            e = assertThrows(Q4jException.class, () -> c.tensor("layer.99.weight"));
            assertTrue(e.getMessage().contains("layer.99.weight") && e.getMessage().contains("model-00001-of-00002.safetensors"), e.getMessage());
            e = assertThrows(Q4jException.class, () -> c.tensor("nope"));
            assertTrue(e.getMessage().contains("nope"), e.getMessage());
        }

        Files.writeString(index, "{\"weight_map\": [1, 2]}");
        assertThrows(Q4jException.class, () -> SafetensorsCheckpoint.open(dir));
        Files.writeString(index, "{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}");
        assertThrows(Q4jException.class, () -> SafetensorsCheckpoint.open(dir));
        Files.writeString(index, "{\"weight_map\"");
        e = assertThrows(Q4jException.class, () -> SafetensorsCheckpoint.open(dir));
        assertFalse(e.getMessage().contains("\n"));
    }
}
