package org.quant4j.method.gptq;

import org.junit.jupiter.api.Test;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.ModelLoader;
import org.quant4j.method.calib.CalibrationWindows;
import org.quant4j.method.calib.SequentialCalibration;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

public class GptqPipelineTest {
    static final Path MODEL = Path.of("models/stories260K/stories260K.bin");

    static int[][] calibration(Model m, int n, int len) throws Exception {
        Tokenizer tok = Tokenizers.fromModel(m);
        return CalibrationWindows.sample(tok.encode(Files.readString(Path.of("data/text/tinystories_sample.txt")), false, false), n, len, 7, tok.bosId());
    }

    /** Mean KL(p_base ‖ p_model) of the next-token distributions over held-out text. */
    public static double kl(Model base, Model m, int[] tokens) {
        Llama a = new Llama(base), b = new Llama(m);
        float[] la = a.forward(a.newState(tokens.length, 64), tokens, true), lb = b.forward(b.newState(tokens.length, 64), tokens, true);
        int v = base.config().vocabSize();
        double total = 0;
        for (int t = 0; t < tokens.length; t++) {
            double[] p = softmax(la, t * v, v), q = softmax(lb, t * v, v);
            for (int i = 0; i < v; i++) if (p[i] > 0) total += p[i] * Math.log(p[i] / q[i]);
        }
        return total / tokens.length;
    }

    static double[] softmax(float[] x, int off, int n) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        double[] p = new double[n];
        for (int i = 0; i < n; i++) sum += p[i] = Math.exp(x[off + i] - max);
        for (int i = 0; i < n; i++) p[i] /= sum;
        return p;
    }

    @Test
    void blockByBlockInputsEqualTheFullForwardPass() throws Exception {
        try (Model m = ModelLoader.load(MODEL)) {
            int[][] samples = calibration(m, 3, 40);
            // what each layer sees in the model's own forward pass
            Map<String, List<float[]>> full = new HashMap<>();
            Llama llama = new Llama(m);
            llama.setObserver((name, x, batch, cols) -> full.computeIfAbsent(name, k -> new ArrayList<>()).add(java.util.Arrays.copyOf(x, batch * cols)));
            for (int[] s : samples) llama.forward(llama.newState(64, 64), s, false);
            // what the pipeline shows a method that changes nothing
            Map<String, List<float[]>> seen = new HashMap<>();
            Model out = SequentialCalibration.run(m, samples, (layer, names, cols) -> new SequentialCalibration.Job() {
                @Override public void observe(float[] x, int tokens) { seen.computeIfAbsent(names.getFirst(), k -> new ArrayList<>()).add(x.clone()); }

                @Override public Map<String, Tensor> finish(Model current) { return Map.of(); }
            }, null);
            assertEquals(5 * 4, seen.size(), "4 sets of layers per block, 5 blocks");
            for (var e : seen.entrySet()) {
                List<float[]> want = full.get(e.getKey());
                assertEquals(samples.length, e.getValue().size(), e.getKey());
                for (int i = 0; i < samples.length; i++) assertArrayEquals(want.get(i), e.getValue().get(i), 1e-5f, e.getKey() + " sample " + i);
            }
            assertSame(m.tensor(Model.attnQ(0)), out.tensor(Model.attnQ(0)));
        }
    }

    @Test
    void gptqQuantizesEveryBlockLayerAndBeatsRtnAtThreeBits() throws Exception {
        try (Model m = ModelLoader.load(MODEL)) {
            Tokenizer tok = Tokenizers.fromModel(m);
            int[] heldOut = tok.encode(Files.readString(Path.of("data/text/tinystories_valid_excerpt.txt")), true, false);
            heldOut = java.util.Arrays.copyOf(heldOut, 200);
            List<String> log = new ArrayList<>();
            long[] last = {0};
            Model g = Gptq.apply(m, calibration(m, 16, 128), Gptq.Options.of(3, false, 32), log::add, (done, total, stage) -> {
                assertTrue(done > last[0] && done <= total, stage);
                last[0] = done;
            });
            for (Tensor t : g.tensors().values()) {
                boolean linear = t.name().startsWith("blk.") && t.rank() == 2;
                if (linear) assertEquals(new IntQuantType(3, 32, false), t.type(), t.name());
                else assertEquals(m.tensor(t.name()).type(), t.type(), t.name() + " stays");
            }
            assertEquals(35, log.stream().filter(s -> s.contains("GPTQ W3 asym g32")).count(), String.join("\n", log));
            Model r = Rtn.apply(m, Rtn.Options.of(QuantScheme.asymmetric(3, Granularity.CHANNEL).withGroupSize(32)));
            double klGptq = kl(m, g, heldOut), klRtn = kl(m, r, heldOut);
            assertTrue(klGptq < 0.8 * klRtn, "KL GPTQ " + klGptq + " vs RTN " + klRtn);
        }
    }

    @Test
    void actOrderWithGroupsStoresStaticGroups() throws Exception {
        try (Model m = ModelLoader.load(MODEL)) {
            List<String> log = new ArrayList<>();
            Model g = Gptq.apply(m, calibration(m, 2, 32), Gptq.Options.of(4, true, 32).withActOrder(true), log::add, null);
            assertEquals(new IntQuantType(4, 32, true), g.tensor(Model.ffnDown(2)).type());
            assertTrue(log.getFirst().contains("static groups"), log.getFirst());
        }
    }

    @Test
    void choleskyFailureRaisesTheDampingTenfoldAndSaysSo() {
        // eigenvalues 4 and −2: damping 0.01, 0.1 and 1 × mean(diag H) fail, 10 succeeds
        double[] h = {1, 3, 3, 1};
        List<String> log = new ArrayList<>();
        Gptq.Prepared p = Gptq.prepare(h, 2, Gptq.Options.of(4, true, 0), log::add);
        assertEquals(10.0, p.percdamp(), 1e-9);
        assertEquals(3, log.size(), log.toString());
        assertTrue(log.getFirst().contains("Cholesky failed"), log.getFirst());
        // T is the upper triangular factor with T Tᵀ = H + 10·I (the reference's Hinv is T⁻¹)
        double[] a = {11, 3, 3, 11};
        float[] t = p.t();
        assertEquals(0f, t[2], "upper triangular");
        double[] ttT = {t[0] * t[0] + t[1] * t[1], t[1] * t[3], t[1] * t[3], t[3] * t[3]};
        for (int i = 0; i < 4; i++) assertEquals(a[i], ttT[i], 1e-5);
    }

    @Test
    void deadColumnsAreZeroedAndActOrderRecordsGIdx() {
        int rows = 4, cols = 64;
        java.util.Random rnd = new java.util.Random(3);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
        double[] h = new double[cols * cols];
        for (int i = 0; i < cols; i++) h[i * cols + i] = i == 5 ? 0 : 1 + i;   // column 5 never sees input
        var o = Gptq.Options.of(4, false, 16).withActOrder(true).withFp16Scales(false);
        Gptq.Prepared p = Gptq.prepare(h, cols, o, null);
        assertTrue(p.dead()[5]);
        assertEquals(cols - 1, p.perm()[0], "largest diag(H) first");
        Gptq.Result r = Gptq.quantize(w, rows, cols, p, o);
        float[] deq = r.dequantize();
        for (int row = 0; row < rows; row++) assertEquals(0f, deq[row * cols + 5], 1e-6f, "dead column quantizes 0");
        assertEquals(0, r.gIdx()[cols - 1], "the first permuted group holds the largest-diag columns");
        assertEquals(3, r.gIdx()[0]);
        assertFalse(r.naturalGroups());
    }
}
