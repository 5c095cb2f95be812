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
                new IntQuantType(5, 8, false), new IntQuantType(6, 4, true), new IntQuantType(8, 72, true)};
    }

    @Test
    void codesRoundTripAndVectorDotMatchesScalar() {
        Random r = new Random(11);
        for (IntQuantType t : types()) {
            int groups = 5, n = groups * t.groupSize();
            MemorySegment seg = MemorySegment.ofArray(new byte[(int) t.byteSize(n) + 3]);
            int[] q = new int[n];
            int qmax = (1 << (t.bits() - 1)) - 1;
            float[] scales = new float[groups];
            int[] zeros = new int[groups];
            for (int g = 0; g < groups; g++) {
                scales[g] = (float) Math.abs(r.nextGaussian()) * 0.01f + 1e-3f;
                zeros[g] = t.symmetric() ? 0 : r.nextInt(qmax - t.qmin() + 1) + t.qmin();
                for (int i = 0; i < t.groupSize(); i++) q[g * t.groupSize() + i] = r.nextInt(qmax - t.qmin() + 1) + t.qmin();
                t.writeGroup(seg, 3 + (long) g * t.typeSize(), scales[g], zeros[g], q, g * t.groupSize());
            }
            float[] decoded = new float[n];
            t.decode(seg, 3, decoded, 0, n);
            for (int g = 0; g < groups; g++) {
                long go = 3 + (long) g * t.typeSize();
                assertEquals(zeros[g], t.zeroPoint(seg, go), t.name());
                float s = Float.float16ToFloat(Float.floatToFloat16(scales[g]));
                for (int i = 0; i < t.groupSize(); i++) {
                    int k = g * t.groupSize() + i;
                    assertEquals(q[k], t.code(seg, go, i), t.name() + " code " + k);
                    assertEquals(s * (q[k] - zeros[g]), decoded[k], 0f, t.name());
                }
            }
            float[] x = new float[n];
            for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
            double exact = 0;
            for (int i = 0; i < n; i++) exact += (double) decoded[i] * x[i];
            assertEquals(exact, t.dotScalar(seg, 3, x, 0, n), 1e-4, t.name() + " scalar");
            assertEquals(exact, t.dot(seg, 3, x, 0, n), 1e-4, t.name() + " vector");
        }
    }

    /** Symmetric INT4 g32 and INT8 g32 groups have ggml's Q4_0 and Q8_0 block layouts: ggml's bytes decode to ggml's values. */
    @Test
    void symmetricGroupsOf32AreGgmlQ4_0AndQ8_0Blocks() throws IOException {
        for (String[] c : new String[][]{{"q4_0", "4"}, {"q8_0", "8"}}) {
            for (String kase : new String[]{"gauss", "outliers", "edge", "stories260K_slice"}) {
                byte[] q = resource(kase + "." + c[0] + ".q");
                byte[] deq = resource(kase + "." + c[0] + ".deq.f32");
                IntQuantType t = new IntQuantType(Integer.parseInt(c[1]), 32, true);
                float[] out = new float[16 * 256];
                t.decode(MemorySegment.ofArray(q), 0, out, 0, out.length);
                MemorySegment expected = MemorySegment.ofArray(deq);
                for (int i = 0; i < out.length; i++) {
                    assertEquals(expected.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i), out[i], 0f, kase + " " + c[0] + " value " + i);
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
