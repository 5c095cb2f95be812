package org.quant4j.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.kernel.Kernels;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.model.RandomModel;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tensor.Tensor;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class TrainerTest {

    static LlamaConfig small() {
        return new LlamaConfig("llama", 32, 48, 2, 4, 2, 8, 40, 64, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, true, false);
    }

    /** A token stream with structure to learn: a repeating pattern with noise. */
    static TokenData data(int n, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(10) == 0 ? r.nextInt(vocab) : (i * 7 + i / 5) % vocab;
        return new TokenData("synthetic", t);
    }

    static Trainer.Options options(int steps) {
        return new Trainer.Options(steps, 4, 16, 3e-3f, 3e-4f, 3, 1f, AdamW.Hyper.defaults(), 42, 0, 8);
    }

    @Test void trainerLossEqualsTheRuntimesCrossEntropy() {
        for (boolean tied : new boolean[]{true, false}) {
            LlamaConfig c = small().withTiedEmbeddings(tied);
            Params p = Params.gaussian(c, 3, 0.1);
            int T = 12;
            LlamaTrainer tr = new LlamaTrainer(p, 1, T);
            TokenData d = data(200, c.vocabSize(), 1);
            int[] in = new int[T], tg = new int[T];
            d.sequential(3, 1, T, in, tg);
            float loss = tr.forward(in, tg);
            Llama llama = new Llama(p.toModel(RandomModel.placeholderTokenizer(c.vocabSize()), "test"));
            float[] logits = llama.forward(llama.newState(T, T), in, true);
            double ref = 0;
            for (int t = 0; t < T; t++) {
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int i = 0; i < c.vocabSize(); i++) max = Math.max(max, logits[t * c.vocabSize() + i]);
                for (int i = 0; i < c.vocabSize(); i++) sum += Math.exp(logits[t * c.vocabSize() + i] - max);
                ref += -(logits[t * c.vocabSize() + tg[t]] - max - Math.log(sum));
            }
            assertEquals(ref / T, loss, 1e-4, "tied=" + tied);
        }
    }

    @Test void lossFallsOnLearnableData() {
        LlamaConfig c = small();
        Trainer tr = new Trainer(Params.random(c, 1), data(2000, c.vocabSize(), 2), data(600, c.vocabSize(), 3), options(60), null, false);
        float first = tr.peekLoss();
        Trainer.Point last = null;
        for (int i = 0; i < 60; i++) last = tr.trainStep();
        assertTrue(first > 3.4, "initial loss near ln(40): " + first);
        assertTrue(last.valLoss() < first - 1.0, "validation loss " + last.valLoss() + " after 60 steps, started at " + first);
    }

    @Test void resumingGivesTheSameNextLossAsNotStopping(@TempDir Path dir) {
        LlamaConfig c = small();
        TokenData train = data(2000, c.vocabSize(), 2);
        Trainer straight = new Trainer(Params.random(c, 7), train, null, options(10), null, false);
        for (int i = 0; i < 5; i++) straight.trainStep();
        Path ckpt = dir.resolve("ckpt.gguf");
        straight.save(ckpt, RandomModel.placeholderTokenizer(c.vocabSize()));
        straight.trainStep();
        float expected = straight.peekLoss();

        Trainer resumed = new Trainer(Trainer.loadParams(ckpt), train, null, options(10), null, false);
        resumed.loadOptimizer(ckpt);
        assertEquals(5, resumed.step());
        resumed.trainStep();
        assertEquals(expected, resumed.peekLoss(), 0f, "bit-identical continuation");

        Trainer fresh = new Trainer(Trainer.loadParams(ckpt), train, null, options(10), null, false); // without the optimizer state
        fresh.trainStep();
        assertNotEquals(expected, fresh.peekLoss(), "the optimizer state matters, so the test above can fail");
    }

    @Test void fakeQuantGivesExactlyWhatRtnStores() {
        SplittableRandom r = new SplittableRandom(9);
        int rows = 7, cols = 70;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextGaussian() * 0.05 + (i % 13 == 0 ? 0.3 : 0));
        for (QuantScheme s : List.of(QuantScheme.symmetric(2, Granularity.CHANNEL).withGroupSize(32), QuantScheme.asymmetric(3, Granularity.CHANNEL).withGroupSize(32),
                QuantScheme.symmetric(4, Granularity.CHANNEL), QuantScheme.asymmetric(8, Granularity.TENSOR), QuantScheme.symmetric(3, Granularity.TENSOR))) {
            float[] fake = new FakeQuant.Linear(s).apply(w, rows, cols);
            float[] rtn = MatMul.toFloats(Rtn.quantize(Tensor.ofFloats("w", w, rows, cols), s, Calibrator.MIN_MAX));
            assertArrayEquals(rtn, fake, 0f, s.describe());
        }
    }

    @Test void bitnetWeightsAreTernaryOrBinaryWithTheMeanAbsScale() {
        float[] w = {0.5f, -0.02f, 0.1f, -0.4f, 0.0f, 0.3f};
        float gamma = (0.5f + 0.02f + 0.1f + 0.4f + 0f + 0.3f) / 6;
        float[] t = FakeQuant.BitNet.TERNARY.apply(w, 2, 3);
        assertArrayEquals(new float[]{gamma, 0, 0, -gamma, 0, gamma}, t, 1e-7f);
        float[] b = FakeQuant.BitNet.BINARY.apply(w, 2, 3);
        float mean = (0.5f - 0.02f + 0.1f - 0.4f + 0.3f) / 6; // centring before sign: 0.1 - 0.08 > 0
        for (int i = 0; i < w.length; i++) assertEquals(w[i] - mean > 0 ? gamma : -gamma, b[i], 1e-7f);
        float[] x = {1f, -0.5f, 0.25f, 0.001f};
        FakeQuant.activations8bit(x, 1, 4);
        assertArrayEquals(new float[]{1f, -64 / 127f, 32 / 127f, 0f}, x, 1e-7f);
    }

    @Test void qatStepsAndGradientsFlowThroughTheStraightThroughEstimator() {
        LlamaConfig c = small();
        for (FakeQuant fq : List.of(FakeQuant.parse("w2g16"), FakeQuant.BitNet.TERNARY)) {
            Trainer tr = new Trainer(Params.random(c, 1), data(2000, c.vocabSize(), 2), data(600, c.vocabSize(), 3), options(60), fq, fq instanceof FakeQuant.BitNet);
            float first = tr.peekLoss();
            Trainer.Point last = null;
            for (int i = 0; i < 60; i++) last = tr.trainStep();
            assertTrue(last.valLoss() < first - 0.5, fq.describe() + ": validation loss " + last.valLoss() + " from " + first);
        }
    }

    @Test void straightThroughEstimatorHandsTheGradientAtTheQuantizedWeightsToTheMasterWeights() {
        // STE: ∂L/∂w under QAT is exactly ∂L/∂ŵ, the full-precision gradient of the model whose weights are ŵ
        LlamaConfig c = small();
        TokenData d = data(300, c.vocabSize(), 4);
        int[] in = new int[2 * 16], tg = new int[2 * 16];
        d.sequential(0, 2, 16, in, tg);
        for (FakeQuant fq : List.of(FakeQuant.parse("w3g16asym"), FakeQuant.BitNet.TERNARY, FakeQuant.BitNet.BINARY)) {
            Params master = Params.gaussian(c, 8, 0.2);
            Params quantized = master.copy();
            for (Params.Param p : quantized.all()) if (p.linear()) System.arraycopy(fq.apply(p.value(), p.rows(), p.cols()), 0, p.value(), 0, p.value().length);
            float[] losses = new float[2];
            int k = 0;
            for (var pr : List.of(new Object[]{master, fq}, new Object[]{quantized, null})) {
                Params p = (Params) pr[0];
                LlamaTrainer tr = new LlamaTrainer(p, 2, 16, (FakeQuant) pr[1], false);
                p.zeroGrad();
                losses[k++] = tr.forward(in, tg);
                tr.backward();
            }
            assertEquals(losses[1], losses[0], 0f, fq.describe());
            for (int i = 0; i < master.all().size(); i++) {
                assertArrayEquals(quantized.all().get(i).grad(), master.all().get(i).grad(), 0f, fq.describe() + " " + master.all().get(i).name());
            }
            assertFalse(java.util.Arrays.equals(master.wq[0].value(), quantized.wq[0].value()), "the quantizer changed the weights");
        }
    }

    @Test void scalarAndVectorKernelsGiveTheSameGradients() {
        LlamaConfig c = new LlamaConfig("llama", 40, 56, 1, 5, 1, 8, 37, 64, 1e-5f, 10000f, LlamaConfig.RopeType.NEOX, null, false, false);
        int[] in = new int[2 * 13], tg = new int[2 * 13];
        TokenData d = data(300, c.vocabSize(), 4);
        d.sequential(0, 2, 13, in, tg);
        boolean before = Kernels.vector();
        float[][] grads = new float[2][];
        float[] losses = new float[2];
        try {
            for (int k = 0; k < 2; k++) {
                Kernels.setVector(k == 1);
                Params p = Params.gaussian(c, 5, 0.2);
                LlamaTrainer tr = new LlamaTrainer(p, 2, 13);
                p.zeroGrad();
                losses[k] = tr.forward(in, tg);
                tr.backward();
                grads[k] = p.wq[0].grad().clone();
                float[] emb = p.tokenEmbedding.grad();
                grads[k] = concat(grads[k], emb, p.output.grad(), p.wDown[0].grad());
            }
        } finally {
            Kernels.setVector(before);
        }
        assertEquals(losses[0], losses[1], 1e-5f);
        for (int i = 0; i < grads[0].length; i++) assertEquals(grads[0][i], grads[1][i], 1e-5f + 1e-3f * Math.abs(grads[0][i]), "gradient " + i);
    }

    private static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) n += p.length;
        float[] out = new float[n];
        int o = 0;
        for (float[] p : parts) { System.arraycopy(p, 0, out, o, p.length); o += p.length; }
        return out;
    }
}
