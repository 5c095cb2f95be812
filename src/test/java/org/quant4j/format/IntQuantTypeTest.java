package org.quant4j.format;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class IntQuantTypeTest {

    static IntQuantType[] types() {
        return new IntQuantType[]{new IntQuantType(8, 64, true), new IntQuantType(8, 32, false), new IntQuantType(4, 32, true),
                new IntQuantType(4, 64, false), new IntQuantType(4, 128, true), new IntQuantType(3, 32, false), new IntQuantType(2, 32, true),
                new IntQuantType(5, 8, false), new IntQuantType(6, 4, true), new IntQuantType(8, 72, true), IntQuantType.perChannel(8, true),
                IntQuantType.perChannel(4, false), IntQuantType.perChannel(3, true), new IntQuantType(7, 16, false)};
    }

    /** Rows of several lengths (whole groups, a ragged last group, shorter than a group): codes and scales round-trip,
     * the decoded row is scale·(q − z), and the vector dot matches the scalar reference. */
    @Test
    void rowsRoundTripAndVectorDotMatchesScalar() {
        Random r = new Random(11);
        for (IntQuantType t : types()) {
            for (int cols : new int[]{172, 256, 64, 18, 330, 2}) {
                long rowBytes = t.rowBytes(cols);
                MemorySegment seg = MemorySegment.ofArray(new byte[(int) rowBytes + 3]);
                int[] q = new int[cols];
                float[] expected = new float[cols];
                for (int g = 0; g < t.groupsPerRow(cols); g++) {
                    int n = t.groupLength(cols, g), base = t.perChannel() ? 0 : g * t.groupSize();
                    float scale = Float.float16ToFloat(Float.floatToFloat16((float) Math.abs(r.nextGaussian()) * 0.01f + 1e-3f));
                    int zero = t.symmetric() ? 0 : r.nextInt(t.qmax() - t.qmin() + 1) + t.qmin();
                    for (int i = 0; i < n; i++) {
                        q[base + i] = r.nextInt(t.qmax() - t.qmin() + 1) + t.qmin();
                        expected[base + i] = scale * (q[base + i] - zero);
                    }
                    t.writeGroup(seg, 3 + t.groupOffset(cols, g), n, scale, zero, q, base);
                    for (int i = 0; i < n; i++) assertEquals(q[base + i], t.code(seg, 3 + t.groupOffset(cols, g), n, i), t.name());
                }
                float[] decoded = new float[cols];
                t.decodeRow(seg, 3, cols, decoded, 0);
                assertArrayEquals(expected, decoded, 0f, t.name() + " cols=" + cols);
                float[] x = new float[cols];
                for (int i = 0; i < cols; i++) x[i] = (float) r.nextGaussian();
                double exact = 0;
                for (int i = 0; i < cols; i++) exact += (double) expected[i] * x[i];
                assertEquals(exact, t.dotScalar(seg, 3, x, 0, cols), 1e-4, t.name() + " scalar cols=" + cols);
                assertEquals(exact, t.dot(seg, 3, x, 0, cols), 1e-4, t.name() + " vector cols=" + cols);
            }
        }
    }

    @Test
    void sizes() {
        assertEquals(18, new IntQuantType(4, 32, true).rowBytes(32));
        assertEquals(19, new IntQuantType(4, 32, false).rowBytes(32));
        assertEquals(5 * 18 + (2 + 6), new IntQuantType(4, 32, true).rowBytes(172), "ragged last group of 12");
        assertEquals(2 + 172, IntQuantType.perChannel(8, true).rowBytes(172));
        assertEquals(4.5, new IntQuantType(4, 32, true).bitsPerWeight());
        assertThrows(IllegalArgumentException.class, () -> new IntQuantType(4, 32, true).rowBytes(33));
    }

    /** Symmetric INT4 g32 and INT8 g32 groups have ggml's Q4_0 and Q8_0 block layouts: ggml's bytes decode to ggml's values. */
    @Test
    void symmetricGroupsOf32AreGgmlQ4_0AndQ8_0Blocks() throws IOException {
        for (String[] c : new String[][]{{"q4_0", "4"}, {"q8_0", "8"}}) {
            for (String kase : new String[]{"gauss", "outliers", "edge", "stories260K_slice"}) {
                byte[] q = resource(kase + "." + c[0] + ".q");
                byte[] deq = resource(kase + "." + c[0] + ".deq.f32");
                IntQuantType t = new IntQuantType(Integer.parseInt(c[1]), 32, true);
                MemorySegment seg = MemorySegment.ofArray(q), expected = MemorySegment.ofArray(deq);
                float[] row = new float[256];
                for (int r = 0; r < 16; r++) {
                    t.decodeRow(seg, r * t.rowBytes(256), 256, row, 0);
                    for (int i = 0; i < 256; i++) {
                        assertEquals(expected.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, r * 256 + i), row[i], 0f, kase + " " + c[0] + " row " + r + " value " + i);
                    }
                }
            }
        }
    }

    static byte[] resource(String name) throws IOException {
        try (InputStream in = IntQuantTypeTest.class.getResourceAsStream("/ggml-vectors/" + name)) {
            assertNotNull(in, name);
            return in.readAllBytes();
        }
    }
}
