package org.quant4j.method;

import org.junit.jupiter.api.Test;
import org.quant4j.io.ModelLoader;
import org.quant4j.kernel.Int8Kernels;
import org.quant4j.kernel.Kernels;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class ActivationQuantTest {

    @Test
    void int8DotMatchesScalarOnOddLengths() {
        Random r = new Random(3);
        for (int n : new int[]{1, 7, 15, 16, 17, 31, 64, 257}) {
            byte[] w = new byte[n + 5], a = new byte[n + 2];
            r.nextBytes(w);
            r.nextBytes(a);
            for (int i = 0; i < w.length; i++) if (w[i] == -128) w[i] = -127;
            MemorySegment seg = MemorySegment.ofArray(w);
            long exact = 0;
            for (int i = 0; i < n; i++) exact += w[5 + i] * a[2 + i];
            assertEquals(exact, Int8Kernels.dotScalar(seg, 5, a, 2, n));
            assertEquals(exact, Int8Kernels.dot(seg, 5, a, 2, n));
        }
    }

    @Test
    void w8a8DynamicAndStaticStayCloseToW8A16() {
        try (Model base = ModelLoader.load(Path.of("models/stories260K/stories260K.bin"))) {
            int[] tokens = RtnTest.TOKENS;
            for (QuantScheme s : new QuantScheme[]{QuantScheme.symmetric(8, Granularity.CHANNEL), QuantScheme.asymmetric(8, Granularity.CHANNEL).withGroupSize(32)}) {
                Model w8 = Rtn.apply(base, Rtn.Options.of(s));
                float[] a16 = RtnTest.logits(w8);
                Model dynamic = ActivationQuant.dynamicInt8(w8);
                Model stat = ActivationQuant.staticInt8(w8, new int[][]{tokens, {1, 5, 6, 7, 8, 9, 10, 300, 301}});
                float[] dyn = RtnTest.logits(dynamic), st = RtnTest.logits(stat);
                double eDyn = RtnTest.rms(a16, dyn), eStat = RtnTest.rms(a16, st);
                assertTrue(eDyn > 0 && eDyn < 0.1, s.describe() + " dynamic: " + eDyn);
                assertTrue(eStat > 0 && eStat < 0.3, s.describe() + " static: " + eStat);
                assertTrue(stat.has("blk.0.attn_q.input_scale"));
                boolean before = Kernels.vector();
                try {
                    Kernels.setVector(false);
                    float[] ref = RtnTest.logits(dynamic);
                    assertTrue(RtnTest.rms(ref, dyn) < 1e-5, "int8 kernels: vector vs scalar");
                } finally {
                    Kernels.setVector(before);
                }
            }
        }
    }

    @Test
    void observerSeesEveryLinearInput() {
        try (Model base = ModelLoader.load(Path.of("models/stories260K/stories260K.bin"))) {
            Llama l = new Llama(base);
            java.util.Set<String> seen = new java.util.TreeSet<>();
            l.setObserver((name, x, batch, cols) -> { seen.add(name); assertEquals(3, batch); });
            l.forward(l.newState(16, 4), new int[]{1, 2, 3}, false);
            assertEquals(5 * 7, seen.size(), seen.toString());
        }
    }
}
