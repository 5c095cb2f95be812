package org.quant4j.method;

import org.junit.jupiter.api.Test;
import org.quant4j.format.GgmlType;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.gguf.GgufWriter.PendingTensor;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.actquant.ChannelStats;
import org.quant4j.method.rotation.QuaRot;
import org.quant4j.method.rotation.Rotations;
import org.quant4j.method.smoothquant.SmoothQuant;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.model.RandomModel;
import org.quant4j.tensor.Tensor;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The outlier methods' transforms leave the float model's function unchanged (before any rounding). */
class OutlierMethodsTest {
    static final int[][] CALIBRATION = {RtnTest.TOKENS, {1, 5, 6, 7, 8, 9, 10, 300, 301, 450, 12, 13}};

    static Model stories() { return ModelLoader.load(Path.of("models/stories260K/stories260K.bin")); }

    static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    /**
     * A random model whose sizes all allow Hadamard matrices (dim 32, hidden 96 = 8 · 12), with non-trivial norm
     * scales (so folding them matters) and a few large input channels (so smoothing does something).
     */
    static Model hadamardFriendly(boolean tied) {
        LlamaConfig c = new LlamaConfig("llama", 32, 96, 2, 4, 2, 8, 64, 64, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, tied, false);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        SplittableRandom rng = new SplittableRandom(7);
        for (PendingTensor p : RandomModel.tensors(c, GgmlType.F32, 11)) {
            Tensor t = new Tensor(p.name(), p.type(), p.shape(), p.data().get());
            if (p.name().endsWith("norm.weight")) {
                float[] g = new float[(int) t.size()];
                for (int i = 0; i < g.length; i++) g[i] = (float) (0.5 + rng.nextDouble() * (i % 7 == 0 ? 8 : 1));
                t = Tensor.ofFloats(p.name(), g, t.shape());
            } else if (p.name().equals(Model.TOKEN_EMBD)) {
                float[] e = MatMul.toFloats(t);
                for (int i = 0; i < e.length; i++) e[i] *= 50;      // residual of order 1 so the layers matter
                t = Tensor.ofFloats(p.name(), e, t.shape());
            } else if (t.rank() == 2) {
                float[] w = MatMul.toFloats(t);
                for (int i = 0; i < w.length; i++) w[i] *= 10;
                t = Tensor.ofFloats(p.name(), w, t.shape());
            }
            tensors.put(p.name(), t);
        }
        return new Model(c, tensors, RandomModel.placeholderTokenizer(64), "hadamard-friendly random model", List.of());
    }

    static final int[] SMALL_TOKENS = {1, 5, 9, 33, 17, 60, 2, 44, 44, 8, 13, 21};

    static float[] logits(Model m, int[] tokens) {
        Llama l = new Llama(m);
        return l.forward(l.newState(64, 5), tokens, true);
    }

    @Test
    void smoothQuantLeavesFloatLogitsUnchanged() {
        try (Model base = stories()) {
            ChannelStats stats = ChannelStats.collect(base, CALIBRATION, 0);
            for (float alpha : new float[]{0.5f, 0.85f}) {
                Model smoothed = SmoothQuant.smooth(base, stats, alpha);
                assertNotEquals(MatMul.toFloats(base.tensor(Model.attnNorm(0)))[3], MatMul.toFloats(smoothed.tensor(Model.attnNorm(0)))[3]);
                double d = maxAbsDiff(RtnTest.logits(base), RtnTest.logits(smoothed));
                assertTrue(d < 1e-3, "alpha " + alpha + ": max |Δlogit| " + d);
            }
        }
    }

    @Test
    void smoothingFactorsFollowTheFormula() {
        float[] act = {4f, 1f, 0f};
        float[][] w = {{1f, 2f, 0.5f, -1f, 0.25f, 3f}, {-8f, 0.5f, 1f, 1f, 1f, 1f}}; // two layers, (2, 3) each
        float[] s = SmoothQuant.factors(act, w, 3, 0.5f);
        assertEquals(Math.sqrt(4) / Math.sqrt(8), s[0], 1e-6);   // max|W_0| over both layers = 8
        assertEquals(Math.sqrt(1) / Math.sqrt(2), s[1], 1e-6);   // max|W_1| = 2
        assertEquals(Math.sqrt(1e-5) / Math.sqrt(3), s[2], 1e-6); // dead channel: clamped, finite
    }

    @Test
    void hadamardMatricesAreOrthonormal() {
        for (int n : new int[]{1, 2, 4, 8, 12, 20, 24, 44, 64, 96, 768}) {
            float[] h = Rotations.randomizedHadamard(n, 3);
            assertNotNull(h, "order " + n);
            float expected = (float) (1 / Math.sqrt(n));
            for (float v : h) assertEquals(expected, Math.abs(v), 1e-6, "order " + n);
            assertOrthogonal(h, n, 1e-5);
        }
        assertNull(Rotations.hadamard(172), "172 = 4 · 43 has no construction here");
        assertFalse(Rotations.hasHadamard(172));
        assertOrthogonal(Rotations.randomOrthogonal(13, 5), 13, 1e-5);
    }

    static void assertOrthogonal(float[] q, int n, double tol) {
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double dot = 0;
                for (int k = 0; k < n; k++) dot += q[i * n + k] * q[j * n + k];
                assertEquals(i == j ? 1 : 0, dot, tol, "rows " + i + ", " + j + " of an order-" + n + " matrix");
            }
        }
    }

    @Test
    void quaRotLeavesFloatLogitsUnchangedOnStories260K() {
        try (Model base = stories()) {
            QuaRot.Result r = QuaRot.rotate(base, 42);
            assertEquals(1, r.skipped().size(), "hidden 172 has no Hadamard: " + r.skipped());
            assertTrue(r.model().has("blk.0.attn_output.input_transform"));
            assertFalse(r.model().has("blk.0.ffn_down.input_transform"));
            assertFalse(r.model().config().tiedEmbeddings());
            double d = maxAbsDiff(RtnTest.logits(base), RtnTest.logits(r.model()));
            assertTrue(d < 1e-3, "max |Δlogit| " + d);
            QuaRot.Result o = QuaRot.rotate(base, 42, true, false);
            assertTrue(o.model().has("blk.0.ffn_down.input_transform"), "random orthogonal where no Hadamard exists");
            d = maxAbsDiff(RtnTest.logits(base), RtnTest.logits(o.model()));
            assertTrue(d < 1e-3, "orthogonal fallback: max |Δlogit| " + d);
        }
    }

    @Test
    void quaRotWithOnlineDownHadamardLeavesFloatLogitsUnchanged() {
        for (boolean tied : new boolean[]{true, false}) {
            Model base = hadamardFriendly(tied);
            QuaRot.Result r = QuaRot.rotate(base, 9);
            assertTrue(r.skipped().isEmpty(), r.skipped().toString());
            assertTrue(r.model().has("blk.1.ffn_down.input_transform"));
            float[] before = logits(base, SMALL_TOKENS), after = logits(r.model(), SMALL_TOKENS);
            double spread = 0;
            for (float v : before) spread = Math.max(spread, Math.abs(v));
            assertTrue(spread > 0.5, "the test model's logits should not be flat: " + spread);
            double d = maxAbsDiff(before, after);
            assertTrue(d < 1e-3, "tied " + tied + ": max |Δlogit| " + d);
        }
    }

    @Test
    void onlineHadamardsRunInFastFormWithTheDenseProductsResults() {
        Model rotated = QuaRot.rotate(hadamardFriendly(false), 9).model();
        float[] fast = logits(rotated, SMALL_TOKENS);
        org.quant4j.kernel.FastHadamard.setOnline(false);
        float[] dense;
        try {
            dense = logits(rotated, SMALL_TOKENS);
        } finally {
            org.quant4j.kernel.FastHadamard.setOnline(true);
        }
        double d = maxAbsDiff(fast, dense);
        assertTrue(d > 0, "the fast path should run (float rounding differs from the dense product)");
        assertTrue(d < 1e-4, "max |Δlogit| fast vs dense " + d);
    }

    @Test
    void quaRotKvRotationLeavesFloatLogitsUnchanged() {
        Model base = hadamardFriendly(false);
        Model r = QuaRot.rotate(base, 9, false, true).model();
        assertEquals(Boolean.TRUE, r.metadata().get(Llama.KV_HADAMARD_KEY).value());
        assertNotEquals(MatMul.toFloats(QuaRot.rotate(base, 9).model().tensor(Model.attnV(0)))[0], MatMul.toFloats(r.tensor(Model.attnV(0)))[0]);
        double d = maxAbsDiff(logits(base, SMALL_TOKENS), logits(r, SMALL_TOKENS));
        assertTrue(d < 1e-3, "max |Δlogit| " + d);
    }

    /** Mean squared logit error against the float model on the calibration-free SMALL_TOKENS. */
    static double logitError(Model base, Model q, int[] tokens) {
        float[] a = logits(base, tokens), b = logits(q, tokens);
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (a[i] - b[i]) * (double) (a[i] - b[i]);
        return s / a.length;
    }

    @Test
    void kvCacheQuantizationCostsMoreAtFourBitsThanEight() {
        try (Model base = stories()) {
            int[] tokens = RtnTest.TOKENS;
            double e8 = logitError(base, base.withMetadata(Map.of(Llama.KV_BITS_KEY, org.quant4j.io.gguf.GgufValue.u32(8))), tokens);
            double e4 = logitError(base, base.withMetadata(Map.of(Llama.KV_BITS_KEY, org.quant4j.io.gguf.GgufValue.u32(4))), tokens);
            assertTrue(e8 > 0, "an 8-bit cache changes the logits");
            assertTrue(e4 > 4 * e8, "4-bit error " + e4 + " vs 8-bit " + e8);
            assertThrows(org.quant4j.util.Q4jException.class, () -> new Llama(base.withMetadata(Map.of(Llama.KV_BITS_KEY, org.quant4j.io.gguf.GgufValue.u32(12)))));
        }
    }

    @Test
    void rotationSpreadsAnOutlierChannel() {
        // a residual with one channel 100× the rest: after a Hadamard rotation its largest |x| falls by ~√n
        int n = 64;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (i % 2 == 0 ? 1 : -1) * 0.5f;
        x[17] = 50;
        float[] rotated = Rotations.mulRight(x, 1, n, Rotations.randomizedHadamard(n, 1));
        float max = 0;
        for (float v : rotated) max = Math.max(max, Math.abs(v));
        assertTrue(max < 50 / Math.sqrt(n) + 0.5 * Math.sqrt(n) + 1e-3 && max < 10, "max after rotation " + max);
    }

    @Test
    void duQuantLeavesFloatLogitsUnchanged() {
        try (Model base = stories()) {
            ChannelStats stats = ChannelStats.collect(base, CALIBRATION, 64);
            org.quant4j.method.rotation.DuQuant.Result r = org.quant4j.method.rotation.DuQuant.transform(base, stats, org.quant4j.method.rotation.DuQuant.Options.defaults());
            assertTrue(r.model().has("blk.4.ffn_down.input_transform"));
            assertEquals(20, r.sites().size());
            for (var s : r.sites()) {
                assertTrue(s.maxAfter() <= s.maxSmoothed() * 1.0001f, s.toString());
                assertEquals(s.weight().contains("ffn_down") ? 86 : 32, s.blockSize(), s.toString());
            }
            double d = maxAbsDiff(RtnTest.logits(base), RtnTest.logits(r.model()));
            assertTrue(d < 1e-3, "max |Δlogit| " + d);
        }
    }

    @Test
    void duQuantPiecesAreOrthogonalAndZigzagBalances() {
        for (int b : new int[]{2, 5, 32}) assertOrthogonal(org.quant4j.method.rotation.DuQuant.uniformFirstRow(b, 3), b, 1e-5);
        float[] g = org.quant4j.method.rotation.DuQuant.uniformFirstRow(16, 3);
        for (int j = 0; j < 16; j++) assertEquals(0.25, g[j], 1e-6, "first row uniform: channel 1 spread evenly");
        // 8 channels, magnitudes 8..1 dealt to 2 blocks in zigzag: block 0 gets 8, 5, 4, 1 and block 1 gets 7, 6, 3, 2
        int[] perm = org.quant4j.method.rotation.DuQuant.zigzag(new float[]{1, 2, 3, 4, 5, 6, 7, 8}, 2, 4);
        assertArrayEquals(new int[]{7, 4, 3, 0, 6, 5, 2, 1}, perm);
        // a single outlier channel in a block is spread by the greedy rotation
        int rows = 4, b = 16;
        float[] x = new float[rows * b];
        for (int i = 0; i < x.length; i++) x[i] = (i % 3) - 1;
        x[2 * b + 5] = 100;
        float[] r = org.quant4j.method.rotation.DuQuant.greedy(x, rows, b, g, 8, new int[1], 0);
        float[] rotated = Rotations.mulRight(x, rows, b, r);
        float max = 0;
        for (float v : rotated) max = Math.max(max, Math.abs(v));
        assertTrue(max < 40, "largest |x| after the greedy rotation: " + max);
    }
}
