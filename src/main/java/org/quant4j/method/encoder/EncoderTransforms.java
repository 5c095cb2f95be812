package org.quant4j.method.encoder;

import org.quant4j.kernel.MatMul;
import org.quant4j.method.rotation.Rotations;
import org.quant4j.method.smoothquant.SmoothQuant;
import org.quant4j.model.Bert;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * SmoothQuant and QuaRot-style rotation for post-LayerNorm encoders (BERT, MiniLM, BGE), where the decoder recipes
 * do not transfer:
 * <ul>
 *   <li>In a pre-norm Llama block the norm's output feeds only q/k/v (or gate/up), so SmoothQuant folds 1/s into the
 *       RMSNorm weight. In a post-LN BERT block the LayerNorm's output is also the residual stream: folding 1/s into
 *       its weight and bias would scale the residual, and the next LayerNorm is not invariant to per-channel scales.
 *       Here the smoothing stays explicit: each site stores s ({@link Bert#INPUT_SMOOTH}) and the forward pass divides
 *       the input by it (n · cols divisions, nothing beside a matmul) while the weights get W ← W · diag(s).</li>
 *   <li>QuaRot rotates the whole residual stream once, which needs norm(x·Q) = norm(x)·Q: true for RMSNorm without a
 *       scale, false for LayerNorm, whose mean subtraction commutes only with rotations that fix the all-ones vector
 *       and whose per-channel γ, β sit on the residual stream itself in a post-LN block. Here every site gets QuaRot's
 *       online form instead: x ← T·x with T a randomized Hadamard (stored as {@link Llama#INPUT_TRANSFORM}, a dense
 *       [cols, cols] matrix run as a matmul), W ← W · Tᵀ, so W·x is unchanged in exact arithmetic while the rotated
 *       input has its outliers spread over all channels.</li>
 * </ul>
 * Sites: the block input (q, k, v), the attention output (attn_output), the post-attention LayerNorm's output
 * (ffn_up), GELU's output (ffn_down). Both transforms leave a float model; quantize it afterwards.
 */
public final class EncoderTransforms {
    private EncoderTransforms() {}

    /** The layers reading each site's input, by the site's first layer ({@link Bert#SITES}). */
    static final String[][] READERS = {{"attn_q", "attn_k", "attn_v"}, {"attn_output"}, {"ffn_up"}, {"ffn_down"}};

    /** max|x_j| of every linear layer's input over the calibration sentences: weight name → (cols). */
    public static Map<String, float[]> channelAbsMax(Model model, int[][] sentences) {
        Bert bert = new Bert(model);
        Map<String, float[]> max = new HashMap<>();
        bert.setObserver((name, x, n, cols) -> {
            float[] m = max.computeIfAbsent(name, k -> new float[cols]);
            for (int t = 0; t < n; t++) for (int j = 0; j < cols; j++) m[j] = Math.max(m[j], Math.abs(x[t * cols + j]));
        });
        for (int[] ids : sentences) bert.embed(ids);
        return max;
    }

    /** SmoothQuant with explicit per-site smoothing vectors: s_j = max|X_j|^α / max|W_j|^(1−α), x ← x/s, W ← W·diag(s). */
    public static Model smooth(Model model, Map<String, float[]> actAbsMax, float alpha) {
        requireBert(model);
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (int l = 0; l < model.config().nLayers(); l++) {
            for (String[] site : READERS) {
                String first = Model.blk(l, site[0] + ".weight");
                float[] act = actAbsMax.get(first);
                if (act == null) throw new Q4jException(model.source() + ": no calibration statistics for " + first);
                int cols = act.length;
                float[][] w = new float[site.length][];
                for (int i = 0; i < site.length; i++) w[i] = MatMul.toFloats(model.tensor(Model.blk(l, site[i] + ".weight"))); // (rows, cols)
                float[] s = SmoothQuant.factors(act, w, cols, alpha); // (cols)
                String smoothName = Model.blk(l, site[0] + Bert.INPUT_SMOOTH);
                out.put(smoothName, Tensor.ofFloats(smoothName, s, cols));
                for (int i = 0; i < site.length; i++) {
                    for (int r = 0; r < w[i].length / cols; r++) for (int j = 0; j < cols; j++) w[i][r * cols + j] *= s[j];
                    String name = Model.blk(l, site[i] + ".weight");
                    out.put(name, Tensor.ofFloats(name, w[i], model.tensor(name).shape()));
                }
            }
        }
        return model.withTensors(out);
    }

    /** Online randomized-Hadamard rotation at every site: T (cols, cols) orthogonal, x ← T·x, W ← W·Tᵀ. */
    public static Model rotate(Model model, long seed) {
        boolean[] all = new boolean[READERS.length];
        java.util.Arrays.fill(all, true);
        return rotate(model, seed, all);
    }

    /**
     * As {@link #rotate(Model, long)} at the chosen sites only ({@link Bert#SITES} order: q/k/v input, attention
     * output, up input, down input), say the two that read the 384-wide LayerNorm outputs.
     */
    public static Model rotate(Model model, long seed, boolean[] sites) {
        requireBert(model);
        if (sites == null || sites.length != READERS.length) throw new Q4jException("rotate: one flag per site (" + READERS.length + ")");
        LlamaConfig c = model.config();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (int l = 0; l < c.nLayers(); l++) {
            for (int site = 0; site < READERS.length; site++) {
                if (!sites[site]) continue;
                String[] readers = READERS[site];
                int cols = (int) model.tensor(Model.blk(l, readers[0] + ".weight")).cols();
                float[] t = Rotations.randomizedHadamard(cols, seed + 31L * l + site); // (cols, cols)
                if (t == null) throw new Q4jException(model.source() + ": no Hadamard matrix of order " + cols + " is known here; cannot rotate " + Model.blk(l, readers[0]));
                String tName = Model.blk(l, readers[0] + Llama.INPUT_TRANSFORM);
                out.put(tName, Tensor.ofFloats(tName, t, cols, cols));
                for (String reader : readers) {
                    String name = Model.blk(l, reader + ".weight");
                    Tensor wt = model.tensor(name);
                    int rows = (int) wt.rows();
                    float[] w = MatMul.toFloats(wt);                   // (rows, cols)
                    float[] rotated = new float[rows * cols];          // (rows, cols) W · Tᵀ: row r = T · w_r
                    MatMul.matmul(Tensor.ofFloats(tName, t, cols, cols), w, rotated, rows);
                    out.put(name, Tensor.ofFloats(name, rotated, rows, cols));
                }
            }
        }
        return model.withTensors(out);
    }

    private static void requireBert(Model model) {
        if (!Bert.ARCHITECTURE.equals(model.config().architecture())) {
            throw new Q4jException(model.source() + ": encoder transforms are for BERT encoders; decoders use SmoothQuant / QuaRot");
        }
    }
}
