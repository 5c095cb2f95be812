package org.quant4j.io.hf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.GgmlType;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.gguf.GgufModelWriter;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.awq.Awq;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** GPTQ / AWQ integer groups of 32 written as llama.cpp types: asymmetric 4-bit as Q4_1, symmetric as Q4_0 / Q8_0. */
class GgufReencodeTest {
    static final int[][] SAMPLES = {{1, 5, 9, 13, 2, 7, 40, 41, 42, 3, 3, 8}, {1, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70}};

    /** Writes q as GGUF, reads it back, and compares every quantized weight's values with q's. */
    static void check(Model q, Path file, GgmlType expected, boolean exact) {
        GgufModelWriter.write(q, file, null);
        try (Model back = ModelLoader.load(file)) {
            int n = 0, changed = 0;
            for (Tensor t : q.tensors().values()) {
                if (!(t.type() instanceof IntQuantType type)) continue;
                Tensor g = back.tensor(t.name());
                assertEquals(expected, g.type(), t.name());
                float[] want = MatMul.toFloats(t), got = MatMul.toFloats(g);
                int cols = (int) t.cols();
                for (int i = 0; i < want.length; i++) {
                    if (exact) {
                        assertEquals(want[i], got[i], 0f, t.name() + "[" + i + "]");
                        continue;
                    }
                    // Q4_1: d = scale exactly, m = −scale · (z' + 8) rounded to F16: half an F16 ulp of m, plus float rounding
                    long go = (i / cols) * type.rowBytes(cols) + type.groupOffset(cols, (i % cols) / 32);
                    float scale = type.scale(t.data(), go), m = -scale * (type.zeroPoint(t.data(), go) + 8);
                    float tol = halfUlpF16(m) + 2 * Math.ulp(Math.abs(m) + 16 * scale);
                    assertEquals(want[i], got[i], tol, t.name() + "[" + i + "]");
                    if (want[i] != got[i]) changed++;
                }
                n++;
            }
            assertEquals(14, n);
            if (!exact) assertTrue(changed > 0, "m's F16 rounding shows somewhere (the comparison reads the Q4_1 values)");
        }
    }

    static float halfUlpF16(float x) {
        float h = Math.abs(Float.float16ToFloat(Float.floatToFloat16(x)));
        float next = Float.float16ToFloat((short) (Float.floatToFloat16(h) + 1));
        return (next - h) / 2;
    }

    @Test
    void asymmetricFourBitGroupsOf32BecomeQ4_1(@TempDir Path dir) {
        try (Model base = GptqLayoutTest.randomModel()) {
            check(Awq.apply(base, SAMPLES, Awq.Options.of(4, 32), null, null), dir.resolve("awq.gguf"), GgmlType.Q4_1, false);
            check(Gptq.apply(base, SAMPLES, Gptq.Options.of(4, false, 32), null, null), dir.resolve("gptq.gguf"), GgmlType.Q4_1, false);
        }
    }

    @Test
    void symmetricGroupsOf32AreQ4_0AndQ8_0ByteForByte(@TempDir Path dir) {
        try (Model base = GptqLayoutTest.randomModel()) {
            check(Awq.apply(base, SAMPLES, Awq.Options.of(4, 32).withZeroPoint(false), null, null), dir.resolve("awq-sym.gguf"), GgmlType.Q4_0, true);
            check(Gptq.apply(base, SAMPLES, Gptq.Options.of(4, true, 32), null, null), dir.resolve("gptq-sym.gguf"), GgmlType.Q4_0, true);
            check(Gptq.apply(base, SAMPLES, Gptq.Options.of(8, true, 32), null, null), dir.resolve("gptq-8.gguf"), GgmlType.Q8_0, true);
        }
    }
}
