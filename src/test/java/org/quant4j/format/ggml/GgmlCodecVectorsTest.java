package org.quant4j.format.ggml;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.quant4j.format.GgmlType;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Byte-exact agreement with ggml (src/test/resources/ggml-vectors, made with ggml_quantize_chunk and dequantize_row_*):
 * for every row of MANIFEST.tsv whose type has a codec, quantizing each of the 16 input rows (with
 * imatrix_weights.f32 for the imatrix variants) gives exactly the .q bytes, and dequantizing the .q bytes gives exactly
 * the .deq.f32 floats, bit for bit. Every type in the manifest must have a codec; {@link #everyRegisteredTypeHasVectors}
 * keeps the test from passing vacuously.
 */
class GgmlCodecVectorsTest {
    private static final String DIR = "/ggml-vectors/";

    /** The types with codecs: legacy, k-quants, IQ4, ternary, 16-bit floats. */
    static final Set<GgmlType> LEGACY_TYPES = EnumSet.of(GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
            GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
            GgmlType.IQ4_NL, GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.F16, GgmlType.BF16);

    record Vector(String caseName, GgmlType type, boolean imatrix, int rows, int perRow, int quantBytes,
                  String quantFile, String dequantFile) {
        @Override public String toString() { return caseName + " " + type + (imatrix ? " imatrix" : ""); }
    }

    static List<Vector> manifest() {
        List<Vector> out = new ArrayList<>();
        String[] lines = new String(read("MANIFEST.tsv"), StandardCharsets.UTF_8).split("\n");
        for (int i = 1; i < lines.length; i++) {
            if (lines[i].isBlank()) continue;
            String[] f = lines[i].split("\t");
            out.add(new Vector(f[0], GgmlType.parse(f[1]), f[2].equals("1"), Integer.parseInt(f[3]),
                    Integer.parseInt(f[4]), Integer.parseInt(f[5]), f[6], f[7].trim()));
        }
        return out;
    }

    static Stream<Vector> vectors() { return manifest().stream(); }

    static byte[] read(String name) {
        try (InputStream in = GgmlCodecVectorsTest.class.getResourceAsStream(DIR + name)) {
            if (in == null) throw new IllegalStateException("missing test resource " + DIR + name);
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static float[] floats(String name) {
        byte[] b = read(name);
        float[] out = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    @Test
    void legacyAndIq4CodecsAreRegistered() {
        for (GgmlType t : LEGACY_TYPES) {
            BlockCodec c = GgmlCodecs.find(t);
            assertNotNull(c, "no codec registered for " + t);
            assertEquals(t, c.type());
        }
    }

    @Test
    void everyRegisteredTypeHasVectors() {
        Set<GgmlType> withVectors = EnumSet.noneOf(GgmlType.class);
        for (Vector v : manifest()) withVectors.add(v.type());
        for (GgmlType t : LEGACY_TYPES) assertTrue(withVectors.contains(t), "no vectors for " + t);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("vectors")
    void quantizesAndDequantizesAsGgml(Vector v) {
        BlockCodec codec = GgmlCodecs.find(v.type());
        assertNotNull(codec, "no codec for " + v.type());
        float[] x = floats(v.caseName() + ".f32");                                    // (rows, perRow)
        float[] importance = v.imatrix() ? floats("imatrix_weights.f32") : null;     // (perRow)
        byte[] expected = read(v.quantFile());                                        // (rows, rowBytes)
        float[] expectedDeq = floats(v.dequantFile());                                // (rows, perRow)
        long rowBytes = v.type().rowBytes(v.perRow());
        assertEquals(v.rows() * v.perRow(), x.length, "input size");
        assertEquals(v.quantBytes(), expected.length, "quantized size");
        assertEquals(v.rows() * rowBytes, expected.length, "row size of " + v.type());
        if (importance != null) assertEquals(v.perRow(), importance.length, "importance size");

        try (Arena arena = Arena.ofConfined()) {
            MemorySegment q = arena.allocate(expected.length);
            for (int r = 0; r < v.rows(); r++) codec.quantize(x, r * v.perRow(), v.perRow(), importance, q, r * rowBytes);
            byte[] got = q.toArray(ValueLayout.JAVA_BYTE);
            for (int i = 0; i < expected.length; i++) {
                if (got[i] != expected[i]) {
                    long row = i / rowBytes, inRow = i % rowBytes;
                    fail(v + ": byte " + i + " (row " + row + ", block " + inRow / v.type().typeSize() + ", offset "
                            + inRow % v.type().typeSize() + ") is " + (got[i] & 0xff) + ", ggml wrote " + (expected[i] & 0xff)
                            + "; " + countDiffs(got, expected) + " bytes differ");
                }
            }

            MemorySegment ggmlBytes = arena.allocate(expected.length);
            MemorySegment.copy(expected, 0, ggmlBytes, ValueLayout.JAVA_BYTE, 0, expected.length);
            float[] deq = new float[x.length];
            for (int r = 0; r < v.rows(); r++) codec.dequantize(ggmlBytes, r * rowBytes, deq, r * v.perRow(), v.perRow());
            for (int i = 0; i < deq.length; i++) {
                if (Float.floatToRawIntBits(deq[i]) != Float.floatToRawIntBits(expectedDeq[i])) {
                    fail(v + ": dequantized value " + i + " (row " + i / v.perRow() + ", col " + i % v.perRow() + ") is "
                            + deq[i] + ", ggml gave " + expectedDeq[i]);
                }
            }
        }
    }

    private static int countDiffs(byte[] a, byte[] b) {
        int n = 0;
        for (int i = 0; i < a.length; i++) if (a[i] != b[i]) n++;
        return n;
    }
}
