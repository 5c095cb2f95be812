package org.quant4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.safetensors.SafetensorsDtype;
import org.quant4j.io.safetensors.SafetensorsFile;
import org.quant4j.io.safetensors.SafetensorsWriter;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Forged and damaged safetensors files: each must fail with a one-line {@link Q4jException} naming the file and the
 * byte offset (and the tensor where there is one), never an OutOfMemoryError or another exception type.
 */
class IoSafetensorsMalformedTest {
    @TempDir Path tmp;

    /** A file with the given header JSON (unpadded) and {@code dataBytes} bytes of data. */
    static byte[] file(String json, int dataBytes) {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        return new IoBytes().u64(h.length).raw(h).zeros(dataBytes).bytes();
    }

    static String tensor(String name, String dtype, String shape, String offsets) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    }

    /** Two tensors: w F32 [2, 3] at [0, 24] and b F16 [3] at [24, 30]. */
    static final String GOOD = "{\"__metadata__\":{\"format\":\"pt\"}," + tensor("w", "F32", "[2,3]", "[0,24]") + "," + tensor("b", "F16", "[3]", "[24,30]") + "}";

    String fails(byte[] bytes, String... mustContain) throws Exception {
        Path p = tmp.resolve("forged.safetensors");
        Files.write(p, bytes);
        Q4jException e = assertThrows(Q4jException.class, () -> SafetensorsFile.open(p).close());
        String m = e.getMessage();
        assertTrue(m.startsWith(p.toString()), "names the file: " + m);
        assertTrue(m.contains("offset"), "names the offset: " + m);
        assertFalse(m.contains("\n"), "one line: " + m);
        for (String s : mustContain) assertTrue(m.contains(s), "mentions '" + s + "': " + m);
        if (System.getProperty("io.print") != null) System.out.println("MSG " + m);
        return m;
    }

    String failsHeader(String json, int dataBytes, String... mustContain) throws Exception {
        return fails(file(json, dataBytes), mustContain);
    }

    @Test
    void theBaseFileIsValid() throws Exception {
        Path p = tmp.resolve("ok.safetensors");
        Files.write(p, file(GOOD, 30));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(2, f.tensorInfos().size());
            assertEquals("pt", f.metadata().get("format"));
        }
    }

    @Test
    void tooShortForTheHeaderLength() throws Exception {
        for (int n = 0; n < 8; n++) fails(new byte[n], "offset 0");
    }

    @Test
    void forgedHeaderLength() throws Exception {
        byte[] good = file(GOOD, 30);
        for (long n : new long[]{1L << 62, -1L, Long.MIN_VALUE, SafetensorsFile.MAX_HEADER_BYTES + 1, good.length - 7, 1L << 31, 0, 1, 2}) {
            byte[] b = good.clone();
            IoBytes.putU64(b, 0, n);
            fails(b);
        }
        byte[] b = good.clone();
        IoBytes.putU64(b, 0, 1L << 62);
        fails(b, "header length", "offset 0", "limit");
        b = good.clone();
        IoBytes.putU64(b, 0, 1000);
        fails(b, "header length 1000", "past end of file");
    }

    @Test
    void truncatedAtEveryOffset() throws Exception {
        Path ok = tmp.resolve("ok.safetensors");
        SafetensorsWriter.write(ok, Map.of("format", "pt"), List.of(
                new SafetensorsWriter.Entry("w", SafetensorsDtype.F32, new long[]{2, 3}, MemorySegment.ofArray(new byte[24])),
                new SafetensorsWriter.Entry("b", SafetensorsDtype.F16, new long[]{3}, MemorySegment.ofArray(new byte[6]))));
        byte[] good = Files.readAllBytes(ok);
        int dataStart = good.length - 30;
        for (int cut = 0; cut < good.length; cut++) {
            String m = fails(Arrays.copyOf(good, cut));
            if (cut >= dataStart && cut < dataStart + 24) assertTrue(m.contains("tensor w"), "cut " + cut + ": " + m);
            if (cut >= dataStart + 24) assertTrue(m.contains("tensor b"), "cut " + cut + ": " + m);
        }
        fails(Arrays.copyOf(good, good.length + 1), "follow the last tensor");
    }

    @Test
    void invalidJson() throws Exception {
        for (String json : new String[]{"", " ", "{", "{\"a\":", "[]", "null", "42", "\"x\"", "{\"a\" 1}", "{}x", "{} {}",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", "{'w':1}", "{\"w\":[1,2]}",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}}", "[".repeat(5000)}) {
            failsHeader(json, 0);
        }
        failsHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]} ,", 4, "offset");
    }

    @Test
    void duplicateKeys() throws Exception {
        failsHeader("{" + tensor("w", "F32", "[1]", "[0,4]") + "," + tensor("w", "F32", "[1]", "[4,8]") + "}", 8, "w");
        failsHeader("{" + tensor("w", "F32", "[1]", "[0,4]") + ",\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 4);
    }

    @Test
    void badUtf8InTheHeader() throws Exception {
        byte[] b = file(GOOD, 30);
        int at = 8 + GOOD.indexOf("format") + 1;
        b[at] = (byte) 0xff;
        fails(b, "UTF-8", "offset " + at);
        b = file(GOOD, 30);
        b[at] = (byte) 0xc3;
        fails(b, "UTF-8", "offset " + at);
    }

    @Test
    void badDtype() throws Exception {
        for (String dtype : new String[]{"F12", "f32", "", "FLOAT", "Q4_0", "PackedI4"}) {
            failsHeader("{" + tensor("w", dtype, "[1]", "[0,4]") + "}", 4, "tensor w", "dtype", "offset 9");
        }
        failsHeader("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor w", "dtype");
        failsHeader("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor w", "no dtype");
        failsHeader("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor w", "no shape");
        failsHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor w", "no data_offsets");
    }

    @Test
    void badShapes() throws Exception {
        failsHeader("{" + tensor("w", "F32", "[-1]", "[0,4]") + "}", 4, "tensor w", "shape");
        failsHeader("{" + tensor("w", "F32", "[1.5]", "[0,4]") + "}", 4, "tensor w", "shape");
        failsHeader("{" + tensor("w", "F32", "[\"1\"]", "[0,4]") + "}", 4, "tensor w", "shape");
        failsHeader("{" + tensor("w", "F32", "[99999999999999999999999]", "[0,4]") + "}", 4, "tensor w", "shape");
        failsHeader("{" + tensor("w", "F32", "[4294967296,4294967296]", "[0,4]") + "}", 4, "tensor w", "overflows");
        failsHeader("{" + tensor("w", "F64", "[1152921504606846976,8]", "[0,4]") + "}", 4, "tensor w", "overflows");
        failsHeader("{" + tensor("w", "F32", "{}", "[0,4]") + "}", 4, "tensor w", "shape");
        failsHeader("{" + tensor("w", "F4", "[3]", "[0,2]") + "}", 2, "tensor w", "whole number of bytes");
        failsHeader("{" + tensor("w", "F6_E2M3", "[2]", "[0,2]") + "}", 2, "tensor w", "whole number of bytes");
    }

    @Test
    void badDataOffsets() throws Exception {
        failsHeader("{" + tensor("w", "F32", "[1]", "[0]") + "}", 4, "tensor w", "data_offsets");
        failsHeader("{" + tensor("w", "F32", "[1]", "[0,4,8]") + "}", 4, "tensor w", "data_offsets");
        failsHeader("{" + tensor("w", "F32", "[1]", "[-4,0]") + "}", 4, "tensor w", "data_offsets");
        failsHeader("{" + tensor("w", "F32", "[1]", "[4,0]") + "}", 4, "tensor w", "end before");
        failsHeader("{" + tensor("w", "F32", "[1]", "[0,4]") + "}", 3, "tensor w", "data_offsets [0, 4]", "past end of file");
        failsHeader("{" + tensor("w", "F32", "[1]", "[0,9223372036854775807]") + "}", 4, "tensor w", "past end of file");
        failsHeader("{" + tensor("w", "F32", "[2]", "[0,4]") + "}", 4, "tensor w", "needs 8");
        failsHeader("{" + tensor("w", "F32", "[1]", "[0,8]") + "}", 8, "tensor w", "hold 8 bytes");
    }

    @Test
    void overlapsGapsAndTrailingBytes() throws Exception {
        failsHeader("{" + tensor("a", "F32", "[2]", "[0,8]") + "," + tensor("b", "F32", "[2]", "[4,12]") + "}", 12, "tensor b", "overlap tensor a");
        failsHeader("{" + tensor("a", "F32", "[2]", "[0,8]") + "," + tensor("b", "F32", "[2]", "[0,8]") + "}", 8, "overlap");
        failsHeader("{" + tensor("a", "F32", "[1]", "[0,4]") + "," + tensor("b", "F32", "[1]", "[8,12]") + "}", 12, "tensor b", "unused");
        failsHeader("{" + tensor("a", "F32", "[1]", "[4,8]") + "}", 8, "tensor a", "unused");
        failsHeader("{" + tensor("a", "F32", "[1]", "[0,4]") + "}", 5, "follow the last tensor");
        failsHeader("{}", 1, "follow the last tensor");
        // Zero-size tensors may share an offset with others.
        Path p = tmp.resolve("zero.safetensors");
        Files.write(p, file("{" + tensor("a", "F32", "[0]", "[0,0]") + "," + tensor("b", "F32", "[1]", "[0,4]") + "," + tensor("c", "U8", "[]", "[4,5]") + "}", 5));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(3, f.tensorInfos().size());
        }
    }

    @Test
    void badMetadata() throws Exception {
        failsHeader("{\"__metadata__\":{\"a\":1}}", 0, "__metadata__");
        failsHeader("{\"__metadata__\":[\"a\"]}", 0, "__metadata__");
        failsHeader("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", 0, "__metadata__");
    }

    /** Random damage anywhere in the header: whatever happens, only Q4jException may escape. */
    @Test
    void randomCorruptionOnlyEverGivesQ4jException() throws Exception {
        Path ok = tmp.resolve("ok.safetensors");
        SafetensorsWriter.write(ok, Map.of("format", "pt"), List.of(
                new SafetensorsWriter.Entry("model.layers.0.w", SafetensorsDtype.F32, new long[]{2, 3}, MemorySegment.ofArray(new byte[24])),
                new SafetensorsWriter.Entry("b", SafetensorsDtype.BF16, new long[]{3}, MemorySegment.ofArray(new byte[6])),
                new SafetensorsWriter.Entry("c", SafetensorsDtype.F4, new long[]{4}, MemorySegment.ofArray(new byte[2]))));
        byte[] good = Files.readAllBytes(ok);
        int headerEnd = good.length - 32;
        Random r = new Random(7);
        Path p = tmp.resolve("fuzz.safetensors");
        int failures = 0;
        for (int round = 0; round < 3000; round++) {
            byte[] b = good.clone();
            int edits = 1 + r.nextInt(3);
            for (int e = 0; e < edits; e++) {
                int at = r.nextInt(headerEnd);
                switch (r.nextInt(3)) {
                    case 0 -> b[at] = (byte) r.nextInt(256);
                    case 1 -> b[at] = (byte) "{}[],:\"0123456789-.eE \\u".charAt(r.nextInt(24));
                    default -> b[at] ^= (byte) (1 << r.nextInt(8));
                }
            }
            if (r.nextInt(10) == 0) b = Arrays.copyOf(b, r.nextInt(b.length + 16));
            Files.write(p, b);
            try (SafetensorsFile f = SafetensorsFile.open(p)) {
                for (SafetensorsFile.TensorInfo t : f.tensorInfos()) f.bytes(t.name()).byteSize();
            } catch (Q4jException e) {
                failures++;
                assertFalse(e.getMessage().contains("\n"), e.getMessage());
                assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
            } catch (Throwable t) {
                fail("round " + round + ": " + t, t);
            }
        }
        assertTrue(failures > 1500, "most damage is detected: " + failures);
    }
}
