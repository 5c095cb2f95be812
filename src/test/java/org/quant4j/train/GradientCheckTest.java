package org.quant4j.train;

import org.junit.jupiter.api.Test;
import org.quant4j.model.LlamaConfig;
import org.quant4j.train.Params.Param;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every parameter tensor's gradient against central finite differences, (L(θ + ε) − L(θ − ε)) / 2ε, element by
 * element, on a tiny config (dim 16, 2 layers, 4 heads, 2 kv heads, vocab 32, T 8).
 *
 * <p>The trainer computes in float, so the check does too, and it uses a relative error per tensor,
 * ‖g − g_fd‖ / (‖g‖ + ‖g_fd‖). Why that is sound: with ε = 1e-2 the truncation error of the central difference is
 * O(ε²) ≈ 1e-4 of the third derivative, and float rounding of a loss near ln 32 ≈ 3.5 is about 3.5 · 6e-8 per
 * evaluation, ≈ 2e-5 / (2ε) after the division, while gradients of these random weights (std 0.3) are 1e-3 to 1e-1.
 * Both errors stay around 1e-3 relative; a wrong backward (a missing term, a wrong index, a transposed product)
 * gives O(1). Measured: 3e-5 to 7e-4 on every tensor; the bound 5e-3 sits between the two.
 */
class GradientCheckTest {

    static LlamaConfig tiny(boolean tied, LlamaConfig.RopeType rope) {
        return new LlamaConfig("llama", 16, 24, 2, 4, 2, 4, 32, 64, 1e-5f, 10000f, rope, null, tied, false);
    }

    static int[][] batch(int n, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] in = new int[n], tgt = new int[n];
        for (int i = 0; i < n; i++) { in[i] = r.nextInt(vocab); tgt[i] = r.nextInt(vocab); }
        return new int[][]{in, tgt};
    }

    /** Largest relative error over tensors, after asserting each one. */
    static double check(LlamaConfig c, FakeQuant fq, boolean actQuant, double bound) { return check(c, fq, actQuant, bound, false); }

    static double check(LlamaConfig c, FakeQuant fq, boolean actQuant, double bound, boolean distill) {
        int B = 2, T = 8;
        Params p = Params.gaussian(c, 11, 0.3);
        LlamaTrainer tr = new LlamaTrainer(p, B, T, fq, actQuant);
        int[][] data = batch(B * T, c.vocabSize(), 5);
        float[] soft = null;
        if (distill) {
            LlamaTrainer teacher = new LlamaTrainer(Params.gaussian(c, 99, 0.3), B, T);
            teacher.forward(data[0], data[1]);
            soft = teacher.probabilities().clone();
        }
        float[] s = soft;
        java.util.function.Supplier<Float> loss = () -> tr.forward(data[0], data[1], s);
        p.zeroGrad();
        loss.get();
        tr.backward();
        float eps = 1e-2f;
        double worst = 0;
        for (Param q : p.all()) {
            double num = 0, den1 = 0, den2 = 0;
            for (int i = 0; i < q.value().length; i++) {
                float old = q.value()[i];
                q.value()[i] = old + eps;
                double plus = loss.get();
                q.value()[i] = old - eps;
                double minus = loss.get();
                q.value()[i] = old;
                double fd = (plus - minus) / (2 * eps);
                double g = q.grad()[i];
                num += (g - fd) * (g - fd);
                den1 += g * g;
                den2 += fd * fd;
            }
            double rel = Math.sqrt(num) / (Math.sqrt(den1) + Math.sqrt(den2) + 1e-12);
            System.out.printf("gradcheck %-22s ‖g‖=%.4e rel.err=%.2e%n", q.name(), Math.sqrt(den1), rel);
            assertTrue(Math.sqrt(den1) > 1e-6, q.name() + ": gradient is zero, the check would prove nothing");
            assertTrue(rel < bound, q.name() + ": relative error " + rel + " against finite differences");
            worst = Math.max(worst, rel);
        }
        return worst;
    }

    @Test void separateHeadAdjacentRope() {
        check(tiny(false, LlamaConfig.RopeType.NORMAL), null, false, 5e-3);
    }

    @Test void tiedHeadNeoxRope() {
        check(tiny(true, LlamaConfig.RopeType.NEOX), null, false, 5e-3);
    }

    @Test void distillationSoftTargets() {
        check(tiny(false, LlamaConfig.RopeType.NORMAL), null, false, 5e-3, true);
    }

    @Test void aWrongGradientIsCaught() {
        // the same check on a deliberately broken gradient must fail: flip one element's sign in wq of layer 1
        LlamaConfig c = tiny(false, LlamaConfig.RopeType.NORMAL);
        Params p = Params.gaussian(c, 11, 0.3);
        LlamaTrainer tr = new LlamaTrainer(p, 2, 8);
        int[][] data = batch(16, 32, 5);
        p.zeroGrad();
        tr.forward(data[0], data[1]);
        tr.backward();
        Param wq = p.wq[1];
        float[] g = wq.grad().clone();
        int worstIndex = 0;
        for (int i = 0; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[worstIndex])) worstIndex = i;
        float old = wq.value()[worstIndex];
        wq.value()[worstIndex] = old + 1e-2f;
        double plus = tr.forward(data[0], data[1]);
        wq.value()[worstIndex] = old - 1e-2f;
        double minus = tr.forward(data[0], data[1]);
        wq.value()[worstIndex] = old;
        double fd = (plus - minus) / 2e-2;
        assertEquals(fd, g[worstIndex], 2e-2 * Math.abs(fd));
        assertNotEquals(fd, -g[worstIndex], 0.5 * Math.abs(fd));
    }
}
