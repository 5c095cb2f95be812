package org.quant4j.method;

import org.junit.jupiter.api.Test;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.ModelLoader;
import org.quant4j.kernel.Kernels;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;

import java.nio.file.Path;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

class RtnTest {
    static final int[] TOKENS = {1, 403, 407, 261, 378, 388, 45, 300, 12, 77, 500, 2, 9, 260, 261, 262, 300, 301, 302, 303};

    static float[] logits(Model m) {
        Llama l = new Llama(m);
        return l.forward(l.newState(64, 8), TOKENS, true);
    }

    static double rms(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return Math.sqrt(s / a.length);
    }

    @Test
    void fewerBitsMoveTheLogitsMoreAndDefaultsKeepEmbeddingAndHead() {
        try (Model base = ModelLoader.load(Path.of("models/stories260K/stories260K.bin"))) {
            float[] ref = logits(base);
            double prev = 0;
            for (QuantScheme s : new QuantScheme[]{QuantScheme.symmetric(8, Granularity.CHANNEL), QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32),
                    QuantScheme.asymmetric(3, Granularity.CHANNEL).withGroupSize(32), QuantScheme.asymmetric(2, Granularity.CHANNEL).withGroupSize(32)}) {
                Model q = Rtn.apply(base, Rtn.Options.of(s));
                assertInstanceOf(IntQuantType.class, q.tensor(Model.attnQ(0)).type());
                assertEquals(base.tensor(Model.TOKEN_EMBD).type(), q.tensor(Model.TOKEN_EMBD).type(), "embedding stays");
                assertEquals(base.tensor(Model.attnNorm(0)).type(), q.tensor(Model.attnNorm(0)).type(), "norms stay");
                double e = rms(ref, logits(q));
                assertTrue(e > prev, s.describe() + ": logit RMS error " + e + " should exceed " + prev);
                prev = e;
                // the integer kernels and the scalar reference agree on the quantized model
                boolean before = Kernels.vector();
                try {
                    Kernels.setVector(false);
                    float[] scalar = logits(q);
                    Kernels.setVector(true);
                    assertTrue(rms(scalar, logits(q)) < 1e-4, s.describe() + " vector vs scalar");
                } finally {
                    Kernels.setVector(before);
                }
            }
            assertTrue(prev > 0.1, "2-bit RTN visibly damages the model");
        }
    }

    @Test
    void eachWeightIsWithinHalfAStepOfItsValue() {
        try (Model base = ModelLoader.load(Path.of("models/stories260K/stories260K.bin"))) {
            QuantScheme s = QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32);
            Model q = Rtn.apply(base, new Rtn.Options(s, null, Pattern.compile("ffn_down"), null));
            assertEquals(base.tensor(Model.attnQ(0)).type(), q.tensor(Model.attnQ(0)).type(), "include pattern respected");
            var t = q.tensor(Model.ffnDown(2));
            IntQuantType type = (IntQuantType) t.type();
            float[] w = MatMul.toFloats(base.tensor(Model.ffnDown(2))), deq = MatMul.toFloats(t);
            int cols = (int) t.cols();
            for (int r = 0; r < t.rows(); r++) {
                for (int g = 0; g < type.groupsPerRow(cols); g++) {
                    long go = r * type.rowBytes(cols) + type.groupOffset(cols, g);
                    float scale = type.scale(t.data(), go);
                    for (int i = 0; i < type.groupLength(cols, g); i++) {
                        int k = r * cols + g * 32 + i;
                        assertEquals(w[k], deq[k], scale * 0.5 + 1e-3 * scale, "w[" + k + "]");
                    }
                }
            }
        }
    }
}
