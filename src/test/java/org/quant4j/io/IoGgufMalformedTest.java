package org.quant4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufValueType;
import org.quant4j.util.Q4jException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Forged and damaged GGUF files: each must fail with a one-line {@link Q4jException} naming the file and the byte
 * offset (and the tensor where there is one) — never an OutOfMemoryError, never another exception type.
 */
class IoGgufMalformedTest {
    @TempDir Path tmp;

    /** Offsets of every field of the hand-built file, so each test can forge one. */
    static final class Layout {
        int tensorCount, kvCount;
        int kv0KeyLen, kv0Key, kv0Type, kv0ValueLen, kv0Value;
        int kv1Key, kv1Type, kv1ElemType, kv1Len, kv1Elem0Len, kv1Elem0;
        int kv2Type;
        int t0NameLen, t0Name, t0NDims, t0Dim0, t0Dim1, t0Type, t0Offset;
        int t1NameLen, t1Name, t1NDims, t1Dim0, t1Type, t1Offset;
        int dataStart;
        byte[] bytes;
    }

    /**
     * A valid v3 file: 3 metadata entries (a string, an array of strings, a u32), tensor "t0" F32 [2, 4] at data
     * offset 0 and tensor "t1" F16 [8] at data offset 32.
     */
    static Layout build() {
        Layout l = new Layout();
        IoBytes b = new IoBytes();
        b.u32(GgufFile.MAGIC).u32(3);
        l.tensorCount = b.pos(); b.u64(2);
        l.kvCount = b.pos(); b.u64(3);
        l.kv0KeyLen = b.pos(); b.u64(20); l.kv0Key = b.pos(); b.raw("general.architecture".getBytes(StandardCharsets.UTF_8));
        l.kv0Type = b.pos(); b.u32(GgufValueType.STRING.id);
        l.kv0ValueLen = b.pos(); b.u64(5); l.kv0Value = b.pos(); b.raw("llama".getBytes(StandardCharsets.UTF_8));
        b.u64(10); l.kv1Key = b.pos(); b.raw("test.array".getBytes(StandardCharsets.UTF_8));
        l.kv1Type = b.pos(); b.u32(GgufValueType.ARRAY.id);
        l.kv1ElemType = b.pos(); b.u32(GgufValueType.STRING.id);
        l.kv1Len = b.pos(); b.u64(2);
        l.kv1Elem0Len = b.pos(); b.u64(3); l.kv1Elem0 = b.pos(); b.raw("abc".getBytes(StandardCharsets.UTF_8));
        b.str("de");
        b.str("test.u32"); l.kv2Type = b.pos(); b.u32(GgufValueType.UINT32.id).u32(7);
        l.t0NameLen = b.pos(); b.u64(2); l.t0Name = b.pos(); b.raw("t0".getBytes(StandardCharsets.UTF_8));
        l.t0NDims = b.pos(); b.u32(2);
        l.t0Dim0 = b.pos(); b.u64(4);
        l.t0Dim1 = b.pos(); b.u64(2);
        l.t0Type = b.pos(); b.u32(GgmlType.F32.id());
        l.t0Offset = b.pos(); b.u64(0);
        l.t1NameLen = b.pos(); b.u64(2); l.t1Name = b.pos(); b.raw("t1".getBytes(StandardCharsets.UTF_8));
        l.t1NDims = b.pos(); b.u32(1);
        l.t1Dim0 = b.pos(); b.u64(8);
        l.t1Type = b.pos(); b.u32(GgmlType.F16.id());
        l.t1Offset = b.pos(); b.u64(32);
        b.padTo(32);
        l.dataStart = b.pos();
        for (int i = 0; i < 32 + 16; i++) b.u8(i);
        b.padTo(32);
        l.bytes = b.bytes();
        return l;
    }

    Path write(String name, byte[] bytes) throws Exception {
        Path p = tmp.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    /** Opens a forged file and returns the one-line message, checking it names the file and an offset. */
    String fails(byte[] bytes, String... mustContain) throws Exception {
        Path p = write("forged.gguf", bytes);
        Q4jException e = assertThrows(Q4jException.class, () -> GgufFile.open(p).close());
        String m = e.getMessage();
        assertTrue(m.startsWith(p.toString()), "names the file: " + m);
        assertTrue(m.contains("offset"), "names the offset: " + m);
        assertFalse(m.contains("\n"), "one line: " + m);
        for (String s : mustContain) assertTrue(m.contains(s), "mentions '" + s + "': " + m);
        return m;
    }

    @Test
    void theBaseFileIsValid() throws Exception {
        Layout l = build();
        try (GgufFile f = GgufFile.open(write("ok.gguf", l.bytes))) {
            assertEquals(l.dataStart, f.dataStart());
            assertEquals(2, f.tensorInfos().size());
            assertEquals("llama", f.getString("general.architecture", null));
            assertEquals(7, f.getLong("test.u32", 0));
        }
    }

    @Test
    void truncatedAtEveryOffset() throws Exception {
        Layout l = build();
        int tensorDataEnd = l.dataStart + 32 + 16;
        for (int cut = 0; cut < tensorDataEnd; cut++) {
            String m = fails(Arrays.copyOf(l.bytes, cut));
            if (cut > l.t1Name + 2 && cut < l.t1Offset + 8) assertTrue(m.contains("t1"), "cut " + cut + " names tensor t1: " + m);
            if (cut > l.t0Name + 2 && cut < l.t0Offset + 8) assertTrue(m.contains("t0"), "cut " + cut + " names tensor t0: " + m);
            if (cut >= l.dataStart + 32 && cut < tensorDataEnd) assertTrue(m.contains("t1"), "cut " + cut + " names tensor t1: " + m);
        }
        // Only the final padding is missing: llama.cpp accepts that too (the last tensor ends inside the file).
        try (GgufFile f = GgufFile.open(write("nopad.gguf", Arrays.copyOf(l.bytes, tensorDataEnd)))) {
            assertEquals(16, f.tensor("t1").data().byteSize());
        }
    }

    @Test
    void forgedTensorOffset() throws Exception {
        Layout l = build();
        for (long off : new long[]{1L << 40, Long.MAX_VALUE - 31, -32L, 64, 4096}) {
            byte[] b = l.bytes.clone();
            IoBytes.putU64(b, l.t1Offset, off);
            fails(b, "t1");
        }
        byte[] b = l.bytes.clone();
        IoBytes.putU64(b, l.t1Offset, 33); // not aligned
        fails(b, "t1", "alignment");
    }

    @Test
    void forgedLengthRunsPastEndOfFile() throws Exception {
        Layout l = build();
        byte[] b = l.bytes.clone();
        IoBytes.putU64(b, l.t1Dim0, 1 << 20);
        fails(b, "t1", "past end of file");
        b = l.bytes.clone();
        IoBytes.putU64(b, l.t0Dim1, 1L << 40);
        fails(b, "t0", "past end of file");
    }

    @Test
    void forgedDimensions() throws Exception {
        Layout l = build();
        byte[] b = l.bytes.clone();
        IoBytes.putU64(b, l.t0Dim0, -4);
        fails(b, "t0", "negative");
        b = l.bytes.clone();
        IoBytes.putU64(b, l.t0Dim0, 1L << 40);
        IoBytes.putU64(b, l.t0Dim1, 1L << 40);
        fails(b, "t0", "overflow");
        b = l.bytes.clone();
        IoBytes.putU64(b, l.t0Dim0, 1L << 62); // numel fits, bytes (x4) do not
        IoBytes.putU64(b, l.t0Dim1, 1);
        fails(b, "t0");
        for (int nDims : new int[]{-1, 9, Integer.MAX_VALUE}) {
            b = l.bytes.clone();
            IoBytes.putU32(b, l.t0NDims, nDims);
            fails(b, "t0");
        }
    }

    @Test
    void forgedCounts() throws Exception {
        Layout l = build();
        long huge = 1L << 62;
        int[] at = {l.tensorCount, l.kvCount, l.kv1Len, l.kv0KeyLen, l.kv0ValueLen, l.kv1Elem0Len, l.t0NameLen};
        for (int off : at) {
            for (long v : new long[]{huge, -1L, Long.MIN_VALUE, 1L << 31, 100_000}) {
                byte[] b = l.bytes.clone();
                IoBytes.putU64(b, off, v);
                fails(b);
            }
        }
        byte[] b = l.bytes.clone();
        IoBytes.putU64(b, l.tensorCount, huge);
        fails(b, "tensor count", "offset " + l.tensorCount);
        b = l.bytes.clone();
        IoBytes.putU64(b, l.kv1Len, huge);
        fails(b, "test.array", "offset " + l.kv1Len);
        b = l.bytes.clone();
        IoBytes.putU64(b, l.kv0ValueLen, huge);
        fails(b, "general.architecture");
        b = l.bytes.clone();
        IoBytes.putU64(b, l.t1NameLen, huge);
        fails(b, "tensor name");
    }

    @Test
    void unknownGgmlType() throws Exception {
        Layout l = build();
        for (int type : new int[]{4, 5, 31, 99, -1, Integer.MAX_VALUE}) {
            byte[] b = l.bytes.clone();
            IoBytes.putU32(b, l.t0Type, type);
            fails(b, "t0", "type", "offset " + l.t0Type);
        }
        byte[] b = l.bytes.clone();
        IoBytes.putU32(b, l.t0Type, GgmlType.Q4_0.id()); // known type, but 4-wide rows cannot hold 32-blocks
        fails(b, "t0");
    }

    @Test
    void unknownValueType() throws Exception {
        Layout l = build();
        for (int type : new int[]{13, 99, -1}) {
            byte[] b = l.bytes.clone();
            IoBytes.putU32(b, l.kv0Type, type);
            fails(b, "general.architecture", "offset " + l.kv0Type);
            b = l.bytes.clone();
            IoBytes.putU32(b, l.kv1ElemType, type);
            fails(b, "test.array", "offset " + l.kv1ElemType);
            b = l.bytes.clone();
            IoBytes.putU32(b, l.kv2Type, type);
            fails(b, "test.u32");
        }
    }

    @Test
    void badUtf8InStrings() throws Exception {
        Layout l = build();
        int[] at = {l.kv0Key, l.kv0Value, l.kv1Key, l.kv1Elem0, l.t0Name};
        for (byte[] bad : new byte[][]{{(byte) 0xff}, {(byte) 0xc3}, {(byte) 0xed, (byte) 0xa0}}) {
            for (int off : at) {
                byte[] b = l.bytes.clone();
                System.arraycopy(bad, 0, b, off, bad.length);
                fails(b, "UTF-8", "offset");
            }
        }
    }

    @Test
    void badMagicVersionAndBool() throws Exception {
        Layout l = build();
        byte[] b = l.bytes.clone();
        b[0] = 'X';
        fails(b, "magic");
        b = l.bytes.clone();
        IoBytes.putU32(b, 4, 99);
        fails(b, "version");
        fails(new byte[0]);
        fails(new byte[]{'G', 'G'});
    }

    /** Random damage to a valid file: whatever happens, only Q4jException may escape. */
    @Test
    void randomCorruptionOnlyEverGivesQ4jException() throws Exception {
        Layout l = build();
        Random r = new Random(42);
        Path p = tmp.resolve("fuzz.gguf");
        int failures = 0;
        for (int round = 0; round < 3000; round++) {
            byte[] b = l.bytes.clone();
            int edits = 1 + r.nextInt(4);
            for (int e = 0; e < edits; e++) {
                int at = r.nextInt(l.dataStart); // damage the header, metadata and tensor infos
                switch (r.nextInt(3)) {
                    case 0 -> b[at] = (byte) r.nextInt(256);
                    case 1 -> b[at] ^= (byte) (1 << r.nextInt(8));
                    default -> { if (at + 8 <= b.length) IoBytes.putU64(b, at, r.nextBoolean() ? r.nextLong() : 1L << r.nextInt(64)); }
                }
            }
            Files.write(p, b);
            try (GgufFile f = GgufFile.open(p)) {
                for (GgufFile.TensorInfo t : f.tensorInfos()) f.tensor(t.name()).data().byteSize();
            } catch (Q4jException e) {
                failures++;
                assertFalse(e.getMessage().contains("\n"), e.getMessage());
                assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
            } catch (Throwable t) {
                fail("round " + round + ": " + t, t);
            }
        }
        assertTrue(failures > 1000, "most damage is detected: " + failures);
    }
}
