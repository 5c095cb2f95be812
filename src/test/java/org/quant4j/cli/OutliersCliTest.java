package org.quant4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.ModelLoader;
import org.quant4j.method.actquant.WeightActivationScheme;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** quantize --method llm-int8 | smoothquant | quarot | duquant writes checkpoints that reload to the same model. */
class OutliersCliTest {
    static final Path MODEL = Path.of("models/stories260K/stories260K.bin");
    static final int[] TOKENS = {1, 403, 407, 261, 378, 388, 45, 300, 12, 77, 500, 2, 9, 260};

    static float[] logits(Model m) {
        Llama l = new Llama(m);
        return l.forward(l.newState(32, 8), TOKENS, true);
    }

    @Test
    void everyMethodRunsFromTheCliAndReloads(@TempDir Path dir) {
        String[][] cases = {{"llm-int8", "w8a8", "llm-int8:6.0"}, {"smoothquant", "w8a8", "int8-dynamic"},
                {"quarot", "w4a4", "int4-token-asym"}, {"duquant", "w4a8", "int8-dynamic"}};
        try (Model base = ModelLoader.load(MODEL)) {
            int[][] calibration = Calibration.samples(base, Defaults.calibrationText(), 8, 128);
            float[] fp32 = logits(base);
            for (String[] c : cases) {
                Path out = dir.resolve(c[0]);
                CliTest.Outcome o = CliTest.run("quantize", MODEL.toString(), out.toString(), "--method", c[0], "--scheme", c[1]);
                assertEquals(0, o.code(), c[0] + ": " + o.err());
                Model expected = OutlierMethods.apply(c[0], base, calibration, WeightActivationScheme.parse(c[1]), OutlierMethods.Settings.defaults()).model();
                try (Model saved = ModelLoader.load(out)) {
                    assertEquals(c[2], saved.metadata().get(Llama.ACTIVATIONS_KEY).asString(), c[0]);
                    if (c[0].equals("duquant")) assertTrue(saved.has("blk.0.ffn_down.input_transform"));
                    float[] a = logits(expected), b = logits(saved);
                    assertArrayEquals(a, b, 1e-5f, c[0] + ": reloaded logits");
                    double diff = 0;
                    for (int i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - fp32[i]));
                    assertTrue(diff > 1e-4, c[0] + ": quantization changes the logits");
                }
            }
        }
        CliTest.Outcome bad = CliTest.run("quantize", MODEL.toString(), dir.resolve("x").toString(), "--method", "spinquant");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("duquant"), bad.err());
    }

    @Test
    void quaRotWithGptqWeightsAndAFourBitCacheRoundTrips(@TempDir Path dir) {
        try (Model base = ModelLoader.load(MODEL)) {
            int[][] calibration = Calibration.samples(base, Defaults.calibrationText(), 8, 128);
            Path out = dir.resolve("quarot-gptq-kv4");
            CliTest.Outcome o = CliTest.run("quantize", MODEL.toString(), out.toString(), "--method", "quarot", "--scheme", "w4a4",
                    "--weights", "gptq", "--kv-bits", "4");
            assertEquals(0, o.code(), o.err());
            assertTrue(o.out().contains("W4A4KV4 (GPTQ weights)"), o.out());
            var settings = OutlierMethods.Settings.defaults().withWeights(true).withKvBits(4);
            Model expected = OutlierMethods.apply("quarot", base, calibration, WeightActivationScheme.W4A4, settings).model();
            try (Model saved = ModelLoader.load(out)) {
                assertEquals(4, ((Number) saved.metadata().get(Llama.KV_BITS_KEY).value()).intValue());
                assertEquals(Boolean.TRUE, saved.metadata().get(Llama.KV_HADAMARD_KEY).value());
                assertArrayEquals(logits(expected), logits(saved), 1e-5f, "reloaded logits");
            }
        }
        CliTest.Outcome bad = CliTest.run("quantize", MODEL.toString(), dir.resolve("x").toString(), "--method", "quarot", "--weights", "awq");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--weights must be rtn or gptq"), bad.err());
    }

    @Test
    void gptqWeightsOnTheRotatedModelBeatRtnWeights() {
        // W4A8 (activations nearly exact) so the weights' error dominates; held-out tokens, not the calibration text
        try (Model base = ModelLoader.load(MODEL)) {
            int[][] calibration = Calibration.samples(base, Defaults.calibrationText(), 8, 128);
            float[] fp32 = logits(base);
            double[] err = new double[2];
            for (int g = 0; g < 2; g++) {
                var settings = OutlierMethods.Settings.defaults().withWeights(g == 1);
                float[] q = logits(OutlierMethods.apply("quarot", base, calibration, WeightActivationScheme.W4A8, settings).model());
                for (int i = 0; i < q.length; i++) err[g] += (q[i] - fp32[i]) * (double) (q[i] - fp32[i]);
            }
            assertTrue(err[1] < 0.8 * err[0], "squared logit error: GPTQ " + err[1] + ", RTN " + err[0]);
        }
    }

    @Test
    void evalKvBitsQuantizesTheCache() {
        CliTest.Outcome plain = CliTest.run("eval", "--chunks", "2", "--json", "--no-progress");
        CliTest.Outcome kv4 = CliTest.run("eval", "--chunks", "2", "--json", "--no-progress", "--kv-bits", "4");
        assertEquals(0, plain.code(), plain.err());
        assertEquals(0, kv4.code(), kv4.err());
        double a = ppl(plain.out()), b = ppl(kv4.out());
        assertTrue(b > a * 1.01, "a 4-bit cache costs perplexity: " + a + " → " + b);
        CliTest.Outcome bad = CliTest.run("eval", "--chunks", "1", "--kv-bits", "12");
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("2..8"), bad.err());
    }

    static double ppl(String json) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"ppl\"\\s*:\\s*([0-9.]+)").matcher(json);
        assertTrue(m.find(), json);
        return Double.parseDouble(m.group(1));
    }
}
