package org.quant4j.method.awq;

import org.junit.jupiter.api.Test;
import org.quant4j.format.GgmlType;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.gguf.GgufWriter.PendingTensor;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.calib.CalibrationWindows;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.model.RandomModel;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class AwqTest {
    static final Path MODEL = Path.of("models/stories260K/stories260K.bin");

    static int[][] calibration(Model m, int n, int len) throws Exception {
        Tokenizer tok = Tokenizers.fromModel(m);
        return CalibrationWindows.sample(tok.encode(Files.readString(Path.of("data/text/tinystories_sample.txt")), false, false), n, len, 7, tok.bosId());
    }

    static int[] heldOut(Model m, int n) throws Exception {
        Tokenizer tok = Tokenizers.fromModel(m);
        return java.util.Arrays.copyOf(tok.encode(Files.readString(Path.of("data/text/tinystories_valid_excerpt.txt")), true, false), n);
    }

    static float[] logits(Model m, int[] tokens) {
        Llama l = new Llama(m);
        return l.forward(l.newState(tokens.length, 16), tokens, true);
    }

    static double maxAbsDiff(float[] a, float[] b) {
        double d = 0;
        for (int i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        return d;
    }

    /** Mean KL(p_base ‖ p_model) of the next-token distributions over the tokens (GPTQ's pipeline test has it). */
    static double kl(Model base, Model m, int[] tokens) {
        return org.quant4j.method.gptq.GptqPipelineTest.kl(base, m, tokens);
    }

    /** A random multi-head model (v and o of one shape, so the v → o scaling applies) with a few large channels. */
    static Model multiHead() {
        LlamaConfig c = new LlamaConfig("llama", 32, 96, 2, 4, 4, 8, 64, 64, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, true, false);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        SplittableRandom rng = new SplittableRandom(3);
        for (PendingTensor p : RandomModel.tensors(c, GgmlType.F32, 5)) {
            Tensor t = new Tensor(p.name(), p.type(), p.shape(), p.data().get());
            float[] v = MatMul.toFloats(t);
            if (p.name().endsWith("norm.weight")) {
                for (int i = 0; i < v.length; i++) v[i] = (float) (0.5 + rng.nextDouble() * (i % 5 == 0 ? 6 : 1));
            } else if (p.name().equals(Model.TOKEN_EMBD)) {
                for (int i = 0; i < v.length; i++) v[i] *= 50;
            } else if (t.rank() == 2) {
                for (int i = 0; i < v.length; i++) v[i] *= 10;
            }
            tensors.put(p.name(), Tensor.ofFloats(p.name(), v, t.shape()));
        }
        return new Model(c, tensors, RandomModel.placeholderTokenizer(64), "random multi-head model", List.of());
    }

    @Test
    void foldedScalesLeaveTheFloatLogitsUnchanged() throws Exception {
        try (Model m = ModelLoader.load(MODEL)) {
            int[] tokens = heldOut(m, 60);
            List<String> log = new ArrayList<>();
            Model folded = Awq.apply(m, calibration(m, 4, 64), Awq.Options.of(3, 32).scalesOnly(), log::add, null);
            assertNotEquals(m.tensor(Model.attnNorm(0)).data().get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0),
                    folded.tensor(Model.attnNorm(0)).data().get(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0), "scales were folded");
            assertTrue(log.stream().anyMatch(s -> s.contains("α = 0.") && !s.contains("α = 0.00,")), "some α > 0: " + log);
            double d = maxAbsDiff(logits(m, tokens), logits(folded, tokens));
            assertTrue(d < 1e-3, "max |Δlogit| " + d);
        }
        Model mh = multiHead();
        int[] tokens = {1, 5, 9, 33, 17, 60, 2, 44, 44, 8, 13, 21};
        List<String> log = new ArrayList<>();
        Model folded = Awq.apply(mh, new int[][]{{1, 7, 9, 3, 11, 40, 2, 5}, {1, 50, 51, 52, 8, 9, 10, 11}}, Awq.Options.of(4, 32).scalesOnly(), log::add, null);
        assertTrue(log.stream().anyMatch(s -> s.startsWith("blk.0 attn_output:")), "v → o scaled: " + log);
        double d = maxAbsDiff(logits(mh, tokens), logits(folded, tokens));
        assertTrue(d < 1e-3, "multi-head: max |Δlogit| " + d);
    }

    @Test
    void scalesFollowLlmAwqsNormalisation() {
        float[] x = {4f, 1f, 0.25f, 0f};
        float[] s = Awq.scales(x, 0.5);
        // x^0.5 = {2, 1, 0.5, 0 → 1e-4}, divided by sqrt(2 · 1e-4)
        double norm = Math.sqrt(2 * 1e-4);
        assertArrayEquals(new float[]{(float) (2 / norm), (float) (1 / norm), (float) (0.5 / norm), (float) (1e-4 / norm)}, s, 1e-3f);
        assertArrayEquals(new float[]{1, 1, 1, 1}, Awq.scales(x, 0), 0f, "α = 0: no scaling");
    }

    @Test
    void storedWeightsAreTheOnesTheSearchMeasured() {
        SplittableRandom rng = new SplittableRandom(1);
        int rows = 6, cols = 100;                                        // 100 = 3 groups of 32 + a ragged group of 4
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) rng.nextGaussian() * (i % 17 == 0 ? 5 : 1);
        for (boolean zp : new boolean[]{true, false}) {
            for (int bits : new int[]{3, 4, 8}) {
                Awq.Options o = Awq.Options.of(bits, 32).withZeroPoint(zp);
                Tensor t = Awq.toTensor("w", w, rows, cols, o);
                assertEquals(new IntQuantType(bits, 32, !zp), t.type());
                assertArrayEquals(Awq.pseudoQuantize(w, rows, cols, o), MatMul.toFloats(t), 0f, o.describe());
            }
        }
    }

    @Test
    void quantizerIsLlmAwqsPseudoQuantize() {
        // one group of 4 values, 2 bits: max 1.5, min −0.3 → scale 1.8 / 3 = 0.6 (F16: 0.60009766), zero = −round(−0.49992) = 0
        float[] w = {-0.3f, 0.2f, 1.0f, 1.5f};
        float[] out = new float[4];
        float[] params = new float[2];
        Awq.quantizeGroup(w, 0, 4, Awq.Options.of(2, 4), out, 0, null, params);
        float s = Awq.fp16(0.6f);
        assertEquals(s, params[0]);
        assertEquals(0f, params[1]);
        assertArrayEquals(new float[]{0, 0, 2 * s, 2 * s}, out, 0f); // 0.2 / s = 0.33 → 0; 1.0 / s = 1.67 → 2; 1.5 / s = 2.4996 → 2
    }

    @Test
    void clipSearchNeverIncreasesTheOutputErrorOfAGroup() {
        SplittableRandom rng = new SplittableRandom(2);
        int rows = 8, cols = 64, tokens = 300;
        float[] w = new float[rows * cols], x = new float[tokens * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) (rng.nextGaussian() * (rng.nextInt(40) == 0 ? 8 : 1));
        for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
        Awq.Options o = Awq.Options.of(3, 32);
        float[] clipped = Awq.clip(w, rows, cols, x, tokens, o);
        double before = Awq.squaredOutput(x, tokens, cols, Awq.minus(Awq.pseudoQuantize(w, rows, cols, o), w), rows);
        double after = Awq.squaredOutput(x, tokens, cols, Awq.minus(Awq.pseudoQuantize(clipped, rows, cols, o), w), rows);
        assertTrue(after < before, "clipping: " + after + " vs " + before);
        boolean anyClipped = false;
        for (int i = 0; i < w.length; i++) anyClipped |= clipped[i] != w[i];
        assertTrue(anyClipped);
    }

    @Test
    void awqBeatsRtnAtThreeBitsOnHeldOutText() throws Exception {
        try (Model m = ModelLoader.load(MODEL)) {
            int[] heldOut = heldOut(m, 200);
            List<String> log = new ArrayList<>();
            long[] last = {0};
            Model a = Awq.apply(m, calibration(m, 16, 128), Awq.Options.of(3, 32), log::add, (done, total, stage) -> {
                assertTrue(done > last[0] && done <= total, stage);
                last[0] = done;
            });
            for (Tensor t : a.tensors().values()) {
                boolean linear = t.name().startsWith("blk.") && t.rank() == 2;
                if (linear) assertEquals(new IntQuantType(3, 32, false), t.type(), t.name());
            }
            Model r = Rtn.apply(m, Rtn.Options.of(QuantScheme.asymmetric(3, Granularity.CHANNEL).withGroupSize(32)));
            double klAwq = kl(m, a, heldOut), klRtn = kl(m, r, heldOut);
            System.out.println("W3 g32 KL: AWQ " + klAwq + ", RTN " + klRtn + "\n" + String.join("\n", log));
            assertTrue(klAwq < 0.8 * klRtn, "KL AWQ " + klAwq + " vs RTN " + klRtn);
        }
    }
}
