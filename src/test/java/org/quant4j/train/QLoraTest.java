package org.quant4j.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.peft.PeftAdapter;
import org.quant4j.io.safetensors.SafetensorsFile;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.model.RandomModel;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tokenizer.Tokenizers;
import org.quant4j.train.Params.Param;

import java.nio.file.Path;
import java.util.EnumSet;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * QLoRA: adapters on a frozen 4-bit base. Gradients of A and B against finite differences (through the quantized
 * weights of later layers), the trainer against the runtime with the adapter attached, merged against attached, the
 * PEFT files round trip, and a short fine-tune of stories260K's W4 base that must lower the loss.
 */
class QLoraTest {
    static final Pattern LINEAR = Pattern.compile("^blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\\.weight$");

    static Model quantized(Model m, int bits, int group) {
        QuantScheme s = QuantScheme.symmetric(bits, Granularity.CHANNEL).withGroupSize(group);
        return Rtn.apply(m, new Rtn.Options(s, Calibrator.MIN_MAX, LINEAR, null));
    }

    /** A tiny random model with its linear weights in 4-bit groups of 8, and an adapter with random A and B. */
    record Setup(LlamaConfig config, Model base, Params params, Lora lora) {}

    static Setup setup(LlamaConfig c, int rank) {
        Model fp = Params.gaussian(c, 11, 0.3).toModel(RandomModel.placeholderTokenizer(c.vocabSize()), "tiny");
        Model base = quantized(fp, 4, 8);
        Params params = Params.fromModel(base, false);
        Lora lora = Lora.init(c, rank, 2f * rank, EnumSet.allOf(Lora.Target.class), 7);
        SplittableRandom r = new SplittableRandom(3);
        for (Lora.Pair p : lora.pairs()) for (int i = 0; i < p.b().value().length; i++) p.b().value()[i] = (float) (0.3 * r.nextGaussian());
        return new Setup(c, base, params, lora);
    }

    @Test void adapterGradientsMatchFiniteDifferencesThroughTheQuantizedBase() {
        LlamaConfig c = GradientCheckTest.tiny(false, LlamaConfig.RopeType.NORMAL);
        Setup s = setup(c, 3);
        int B = 2, T = 8;
        assertTrue(s.base().tensor(Model.attnQ(0)).type() instanceof org.quant4j.format.IntQuantType, "the base is 4-bit");
        LlamaTrainer tr = LlamaTrainer.qlora(s.params(), s.base(), s.lora(), B, T);
        int[][] data = GradientCheckTest.batch(B * T, c.vocabSize(), 5);
        s.lora().zeroGrad();
        tr.forward(data[0], data[1]);
        tr.backward();
        float eps = 1e-2f;
        for (Param q : s.lora().params()) {
            double num = 0, den1 = 0, den2 = 0;
            for (int i = 0; i < q.value().length; i++) {
                float old = q.value()[i];
                q.value()[i] = old + eps;
                double plus = tr.forward(data[0], data[1]);
                q.value()[i] = old - eps;
                double minus = tr.forward(data[0], data[1]);
                q.value()[i] = old;
                double fd = (plus - minus) / (2 * eps), g = q.grad()[i];
                num += (g - fd) * (g - fd);
                den1 += g * g;
                den2 += fd * fd;
            }
            double rel = Math.sqrt(num) / (Math.sqrt(den1) + Math.sqrt(den2) + 1e-12);
            System.out.printf("qlora gradcheck %-24s ‖g‖=%.4e rel.err=%.2e%n", q.name(), Math.sqrt(den1), rel);
            assertTrue(Math.sqrt(den1) > 1e-6, q.name() + ": gradient is zero, the check would prove nothing");
            assertTrue(rel < 5e-3, q.name() + ": relative error " + rel + " against finite differences");
        }
        // the frozen base has no float copy to update: its linear parameters hold nothing
        assertEquals(0, s.params().wq[0].value().length);
    }

    @Test void trainerEqualsRuntimeWithTheAdapterAttachedAndMergedEqualsAttached(@TempDir Path dir) {
        LlamaConfig c = GradientCheckTest.tiny(true, LlamaConfig.RopeType.NORMAL);
        Setup s = setup(c, 4);
        int T = 8;
        int[][] data = GradientCheckTest.batch(T, c.vocabSize(), 9);
        float trainerLoss = LlamaTrainer.qlora(s.params(), s.base(), s.lora(), 1, T).forward(data[0], data[1]);

        Model attached = s.lora().toPeft().attach(s.base());
        float[] separate = logits(attached, data[0]);
        assertEquals(crossEntropy(separate, data[1], c.vocabSize()), trainerLoss, 1e-4, "trainer vs runtime with the adapter attached");
        float[] base = logits(s.base(), data[0]);
        assertTrue(maxAbsDiff(base, separate) > 1e-2, "the adapter changes the output");

        float[] merged = logits(s.lora().merge(s.base()), data[0]);
        assertTrue(maxAbsDiff(separate, merged) < 1e-4, "merged vs separate: " + maxAbsDiff(separate, merged));

        // PEFT files: names, shapes, and the same outputs after a round trip (q/k lora_B permuted to HF order and back)
        Path adapter = dir.resolve("adapter");
        s.lora().toPeft().write(adapter, c, "tiny");
        try (SafetensorsFile f = SafetensorsFile.open(adapter.resolve(PeftAdapter.WEIGHTS))) {
            assertArrayEquals(new long[]{4, 16}, f.info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape());
            assertArrayEquals(new long[]{16, 4}, f.info("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").shape());
            assertArrayEquals(new long[]{24, 4}, f.info("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight").shape());
            float[] qB = org.quant4j.kernel.MatMul.toFloats(f.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"));
            assertFalse(java.util.Arrays.equals(qB, s.lora().pair(Model.attnQ(0)).b().value()), "q's lora_B is stored in HF row order");
            // in Hugging Face's layout, the file's B·A is exactly what merging adds to HF's q_proj (llama.cpp's q rows un-permuted)
            float[] qA = org.quant4j.kernel.MatMul.toFloats(f.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
            float[] hfMerged = org.quant4j.kernel.MatMul.toFloats(org.quant4j.io.hf.HfCheckpoint.permute(s.lora().merge(s.base()).tensor(Model.attnQ(0)), c.nHeads(), false));
            float[] hfBase = org.quant4j.kernel.MatMul.toFloats(org.quant4j.io.hf.HfCheckpoint.permute(s.base().tensor(Model.attnQ(0)), c.nHeads(), false));
            int in = c.dim(), r = 4;
            for (int o = 0; o < c.qDim(); o++) {
                for (int i = 0; i < in; i++) {
                    float delta = 0;
                    for (int k = 0; k < r; k++) delta += qB[o * r + k] * qA[k * in + i];
                    assertEquals(hfBase[o * in + i] + s.lora().scaling() * delta, hfMerged[o * in + i], 1e-5f, "HF q_proj row " + o + " col " + i);
                }
            }
        }
        PeftAdapter back = PeftAdapter.read(adapter, c);
        assertEquals(4, back.rank());
        assertEquals(8f, back.alpha());
        for (Lora.Pair p : s.lora().pairs()) {
            assertArrayEquals(p.a().value(), back.a().get(p.weight()), p.weight());
            assertArrayEquals(p.b().value(), back.b().get(p.weight()), p.weight());
        }
        assertArrayEquals(separate, logits(PeftAdapter.attach(s.base(), adapter), data[0]));
        Lora reread = Lora.fromPeft(back, c);
        assertEquals(EnumSet.allOf(Lora.Target.class), reread.targets);
    }

    @Test void aShortFineTuneOfStories260KOnItsW4BaseLowersTheLoss() {
        try (Model fp = ModelLoader.load(Path.of("models/stories260K/stories260K.bin"))) {
            Model base = quantized(fp, 4, 32);
            LlamaConfig c = base.config();
            TokenData text = TokenData.fromText(Path.of("data/text/tinystories_sample.txt"), Tokenizers.fromMetadata(fp.metadata(), "stories260K"));
            Params params = Params.fromModel(base, false);
            Lora lora = Lora.init(c, 4, 8, EnumSet.allOf(Lora.Target.class), 1);
            Trainer.Options o = new Trainer.Options(25, 4, 32, 3e-3f, 3e-4f, 3, 1f, AdamW.Hyper.defaults(), 1, 0, 8);
            Trainer tr = Trainer.qlora(params, base, lora, text, text, o);
            double before = tr.validationLoss();
            byte[] q0 = base.tensor(Model.ffnDown(2)).data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            for (int i = 0; i < o.steps(); i++) tr.trainStep();
            double after = tr.validationLoss();
            System.out.printf("stories260K W4 g32 base: loss %.4f → %.4f after %d QLoRA steps%n", before, after, o.steps());
            assertTrue(after < before - 0.02, "loss " + before + " → " + after);
            assertArrayEquals(q0, base.tensor(Model.ffnDown(2)).data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), "the base stays frozen");
            // the runtime with the adapter attached scores what the trainer scores
            int[] in = new int[32], tg = new int[32];
            text.sequential(0, 1, 32, in, tg);
            float trainerLoss = LlamaTrainer.qlora(params, base, lora, 1, 32).forward(in, tg);
            assertEquals(trainerLoss, crossEntropy(logits(lora.toPeft().attach(base), in), tg, c.vocabSize()), 1e-4);
        }
    }

    static float[] logits(Model m, int[] tokens) {
        Llama llama = new Llama(m);
        return llama.forward(llama.newState(tokens.length, tokens.length), tokens, true);
    }

    static double crossEntropy(float[] logits, int[] targets, int vocab) {
        double sum = 0;
        for (int t = 0; t < targets.length; t++) {
            double max = Double.NEGATIVE_INFINITY, z = 0;
            for (int i = 0; i < vocab; i++) max = Math.max(max, logits[t * vocab + i]);
            for (int i = 0; i < vocab; i++) z += Math.exp(logits[t * vocab + i] - max);
            sum += -(logits[t * vocab + targets[t]] - max - Math.log(z));
        }
        return sum / targets.length;
    }

    static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
