package org.quant4j.method.rotation;

import org.quant4j.kernel.MatMul;
import org.quant4j.method.actquant.ChannelStats;
import org.quant4j.method.smoothquant.SmoothQuant;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * DuQuant (Lin et al., seed 004): dual transformations that spread outliers across channels before quantization.
 * For each linear layer's input X (rows = calibration tokens, n channels), with weights W reading it:
 * <pre>
 *   X̂ = X · Λ⁻¹ · R̂₁ · P · R̂₂        Ŵ = W · Λ · R̂₁ · P · R̂₂        so X̂ · Ŵᵀ = X · Wᵀ
 * </pre>
 * <ul>
 *   <li>Λ: SmoothQuant's smoothing, λ_j = max|X_j|^α / max|W_j|^(1−α);</li>
 *   <li>R̂₁, R̂₂: block-diagonal rotations (blocks of {@code blockSize} channels), each block built greedily: N times,
 *       find the channel d holding the largest |x|, swap it to the block's first column and apply an orthogonal
 *       matrix whose first row is uniform (a Householder reflection taking e₁ to (1, ..., 1)/√b, here followed by a
 *       random orthogonal matrix on the other b − 1 columns), which spreads that channel's outlier over the block;
 *       stop when the largest |x| no longer falls;</li>
 *   <li>P: the zigzag permutation: channels sorted by their largest |x| after R̂₁ are dealt to blocks 1, 2, ..., K,
 *       K, ..., 1, 1, 2, ... so every block gets a like share of outliers, which R̂₂ then spreads.</li>
 * </ul>
 * quant4j applies the whole transform T = (Λ⁻¹ R̂₁ P R̂₂)ᵀ online as a dense input transform (the forward pass's
 * {@link Llama#INPUT_TRANSFORM}) at every linear input: q/k/v, attention output, gate/up, down. (DuQuant folds Λ into
 * the preceding norm where one exists; keeping it inside T is the same product.) The float function is unchanged.
 */
public final class DuQuant {
    private DuQuant() {}

    /**
     * @param alpha     smoothing strength
     * @param blockSize rotation block size (the paper's 128); smaller for narrow layers: the largest divisor of the
     *                  width that is at most min(blockSize, width / 2), so there are at least two blocks to permute
     * @param steps     greedy steps N per block
     */
    public record Options(float alpha, int blockSize, int steps, long seed) {
        public static Options defaults() { return new Options(0.5f, 128, 256, 1234); }
    }

    /** What the transform did to one input: largest |x| before, after smoothing, after the whole transform. */
    public record SiteReport(String weight, int blockSize, int stepsFirst, int stepsSecond, float maxBefore, float maxSmoothed, float maxAfter) {}

    public record Result(Model model, java.util.List<SiteReport> sites) {}

    public static Result transform(Model model, ChannelStats stats, Options o) {
        LlamaConfig c = model.config();
        Map<String, Tensor> out = new LinkedHashMap<>();
        java.util.List<SiteReport> sites = new java.util.ArrayList<>();
        for (int l = 0; l < c.nLayers(); l++) {
            sites.add(site(model, stats, o, out, Model.attnQ(l), Model.attnK(l), Model.attnV(l)));
            sites.add(site(model, stats, o, out, Model.attnOutput(l)));
            sites.add(site(model, stats, o, out, Model.ffnGate(l), Model.ffnUp(l)));
            sites.add(site(model, stats, o, out, Model.ffnDown(l)));
        }
        return new Result(model.withTensors(QuaRot.merged(model, out)), sites);
    }

    private static SiteReport site(Model model, ChannelStats stats, Options o, Map<String, Tensor> out, String... weightNames) {
        float[] actMax = stats.channelAbsMax().get(weightNames[0]);
        float[] x = stats.samples().get(weightNames[0]);
        if (actMax == null || x == null) throw new Q4jException(model.source() + ": no calibration activations for " + weightNames[0]);
        int n = actMax.length, rows = stats.sampleRows().get(weightNames[0]);
        float[][] w = new float[weightNames.length][];
        for (int i = 0; i < w.length; i++) w[i] = MatMul.toFloats(model.tensor(weightNames[i])); // (out_i, n)
        float[] lambda = SmoothQuant.factors(actMax, w, n, o.alpha());                            // (n)

        float[] xs = new float[rows * n];                                                          // (rows, n) X Λ⁻¹
        for (int r = 0; r < rows; r++) for (int j = 0; j < n; j++) xs[r * n + j] = x[r * n + j] / lambda[j];
        int b = blockSize(n, o.blockSize());
        int[] steps = new int[2];
        float[] r1 = blockRotation(xs, rows, n, b, o.steps(), o.seed(), steps, 0);               // (n, n)
        float[] x1 = Rotations.mulRight(xs, rows, n, r1);
        int[] perm = zigzag(columnAbsMax(x1, rows, n), n / b, b);                                  // new column p ← old perm[p]
        float[] x2 = permuteColumns(x1, rows, n, perm);
        float[] r2 = blockRotation(x2, rows, n, b, o.steps(), o.seed() + 1, steps, 1);
        float[] m = Rotations.mulRight(permuteColumns(r1, n, n, perm), n, n, r2);                 // (n, n) R̂₁ P R̂₂

        float[] t = new float[n * n];                                                              // (n, n) (Λ⁻¹ M)ᵀ
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) t[i * n + j] = m[j * n + i] / lambda[j];
        for (int i = 0; i < w.length; i++) {
            int outRows = w[i].length / n;
            for (int r = 0; r < outRows; r++) for (int j = 0; j < n; j++) w[i][r * n + j] *= lambda[j];
            Tensor orig = model.tensor(weightNames[i]);
            out.put(weightNames[i], Tensor.ofFloats(weightNames[i], Rotations.mulRight(w[i], outRows, n, m), orig.shape()));
            String tn = weightNames[i].replace(".weight", Llama.INPUT_TRANSFORM);
            out.put(tn, Tensor.ofFloats(tn, t, n, n));
        }
        float[] after = Rotations.mulRight(x2, rows, n, r2);
        return new SiteReport(weightNames[0], b, steps[0], steps[1], max(x), max(xs), max(after));
    }

    /** The largest divisor of n that is at most min(blockSize, n / 2) (n itself when n < 4). */
    static int blockSize(int n, int blockSize) {
        if (n < 4) return n;
        for (int b = Math.min(blockSize, n / 2); b > 1; b--) if (n % b == 0) return b;
        return n;
    }

    /** The block-diagonal greedy rotation R̂ (n × n) for X (rows, n) in blocks of b channels. */
    static float[] blockRotation(float[] x, int rows, int n, int b, int steps, long seed, int[] stepsTaken, int slot) {
        float[] g = uniformFirstRow(b, seed);                       // (b, b) orthogonal, first row uniform
        float[] r = new float[n * n];
        for (int k = 0; k < n / b; k++) {
            float[] xb = new float[rows * b];                       // (rows, b) this block's channels
            for (int i = 0; i < rows; i++) System.arraycopy(x, i * n + k * b, xb, i * b, b);
            float[] rb = greedy(xb, rows, b, g, steps, stepsTaken, slot);
            for (int i = 0; i < b; i++) System.arraycopy(rb, i * b, r, (k * b + i) * n + k * b, b);
        }
        return r;
    }

    /**
     * Greedy search in one block: R = R⁽¹⁾ R⁽²⁾ ..., R⁽ⁱ⁾ = E_d · G with d the channel of the largest |x| and E_d the
     * swap of channels 1 and d; stops after {@code steps} or when the largest |x| stops falling.
     */
    public static float[] greedy(float[] xb, int rows, int b, float[] g, int steps, int[] stepsTaken, int slot) {
        float[] r = identity(b), cur = xb;
        float best = max(cur);
        for (int s = 0; s < steps; s++) {
            float[] colMax = columnAbsMax(cur, rows, b);
            int d = 0;
            for (int j = 1; j < b; j++) if (colMax[j] > colMax[d]) d = j;
            float[] step = g.clone();                               // E_d · G: rows 0 and d of G swapped
            if (d != 0) {
                System.arraycopy(g, d * b, step, 0, b);
                System.arraycopy(g, 0, step, d * b, b);
            }
            float[] next = Rotations.mulRight(cur, rows, b, step);
            float m = max(next);
            if (!(m < best)) break;
            best = m;
            cur = next;
            r = Rotations.mulRight(r, b, b, step);
            stepsTaken[slot]++;
        }
        return r;
    }

    /**
     * G = diag(1, Q') · H_u: H_u the Householder reflection with e₁ ↦ u = (1, ..., 1)/√b (symmetric, first row and
     * column u), Q' a random orthogonal matrix mixing the other b − 1 channels first (the paper's extra randomness).
     * G's first row is u, so x · G spreads channel 1 (the outlier swapped there) evenly, x₁/√b, over every channel.
     */
    public static float[] uniformFirstRow(int b, long seed) {
        double[] v = new double[b];                                 // v = e₁ − u
        double u = 1 / Math.sqrt(b), vv = 0;
        for (int i = 0; i < b; i++) { v[i] = (i == 0 ? 1 : 0) - u; vv += v[i] * v[i]; }
        float[] h = new float[b * b];
        for (int i = 0; i < b; i++) for (int j = 0; j < b; j++) h[i * b + j] = (float) ((i == j ? 1 : 0) - (vv == 0 ? 0 : 2 * v[i] * v[j] / vv));
        if (b < 3) return h;
        float[] q = Rotations.randomOrthogonal(b - 1, seed);
        float[] mix = identity(b);                                  // diag(1, Q')
        for (int i = 0; i < b - 1; i++) System.arraycopy(q, i * (b - 1), mix, (i + 1) * b + 1, b - 1);
        return Rotations.mulRight(mix, b, b, h);
    }

    /** The zigzag permutation: channels by descending magnitude dealt to blocks 0..K−1, K−1..0, 0..K−1, ... */
    public static int[] zigzag(float[] magnitude, int blocks, int b) {
        int n = magnitude.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (p, q) -> Float.compare(magnitude[q], magnitude[p]));
        int[][] members = new int[blocks][b];
        int[] fill = new int[blocks];
        for (int i = 0; i < n; i++) {
            int round = i / blocks, pos = i % blocks;
            int block = round % 2 == 0 ? pos : blocks - 1 - pos;
            members[block][fill[block]++] = order[i];
        }
        int[] perm = new int[n];
        for (int k = 0; k < blocks; k++) System.arraycopy(members[k], 0, perm, k * b, b);
        return perm;
    }

    static float[] permuteColumns(float[] a, int rows, int n, int[] perm) {
        float[] out = new float[rows * n];
        for (int r = 0; r < rows; r++) for (int p = 0; p < n; p++) out[r * n + p] = a[r * n + perm[p]];
        return out;
    }

    static float[] columnAbsMax(float[] a, int rows, int n) {
        float[] m = new float[n];
        for (int r = 0; r < rows; r++) for (int j = 0; j < n; j++) m[j] = Math.max(m[j], Math.abs(a[r * n + j]));
        return m;
    }

    private static float max(float[] a) {
        float m = 0;
        for (float v : a) m = Math.max(m, Math.abs(v));
        return m;
    }

    private static float[] identity(int n) {
        float[] r = new float[n * n];
        for (int i = 0; i < n; i++) r[i * n + i] = 1;
        return r;
    }
}
