package org.quant4j.method.rotation;

import org.quant4j.kernel.MatMul;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * QuaRot-style rotation (Ashkboos et al., seed 004): rotate the residual stream by a randomized Hadamard matrix Q so
 * that no channel of any linear layer's input carries an outlier, with the rotation fused into the weights so the
 * float function is unchanged. In row-vector form (x is a token's (dim) residual):
 * <ol>
 *   <li>fold every RMSNorm scale g into the layers that read the norm (W ← W · diag(g), g ← 1): RMSNorm without a
 *       scale commutes with an orthogonal Q, rmsnorm(x·Q) = rmsnorm(x)·Q;</li>
 *   <li>the residual stream becomes x·Q: the embedding E ← E·Q, every layer reading it (q, k, v, gate, up and the
 *       output head) W ← W·Q, every layer writing to it (attention output, down) W ← Qᵀ·W;</li>
 *   <li>online Hadamard transforms H where no offline fusion reaches: before the down projection (x ← x·H,
 *       W_down ← W_down·H, stored as an input transform the forward pass applies) and before the attention output
 *       projection (QuaRot fuses the per-head part into v and runs the across-heads part online; this applies the
 *       whole qDim-order Hadamard online, the same product). Skipped, and reported, where no Hadamard of that order
 *       is known here (stories260K's hidden size 172). Stored as dense {@code *.input_transform} tensors; the
 *       forward pass recognises them and runs the fast Walsh–Hadamard transform ({@link org.quant4j.kernel.FastHadamard}).</li>
 * </ol>
 * The model's head is untied from the embedding (they differ once the output norm is folded into the head).
 * With {@code rotateKv} (for a quantized KV cache) the values and keys are rotated per head too, as QuaRot does: an
 * orthonormal Hadamard H of the head size is fused into v's output rows (v ← H·v per head) and into the attention
 * output's input columns (W_o ← W_o · blockdiag(Hᵀ)), and queries and keys get H online after RoPE
 * ({@link Llama#KV_HADAMARD_KEY}), which leaves q·k unchanged.
 */
public final class QuaRot {
    private QuaRot() {}

    /** @param skipped the online transforms left out (no Hadamard of that order), for the caller to report */
    public record Result(Model model, List<String> skipped) {}

    public static Result rotate(Model model, long seed) { return rotate(model, seed, false, false); }

    /**
     * @param orthogonalFallback where no Hadamard of an online transform's order is known, use a seeded random
     *                           orthogonal matrix instead of skipping it (not QuaRot: a dense transform with no fast
     *                           Walsh–Hadamard form; it shows what the missing rotation costs)
     * @param rotateKv           also rotate values and keys per head (for a quantized KV cache)
     */
    public static Result rotate(Model model, long seed, boolean orthogonalFallback, boolean rotateKv) {
        LlamaConfig c = model.config();
        int dim = c.dim(), vocab = c.vocabSize();
        float[] q = Rotations.randomizedHadamard(dim, seed); // (dim, dim)
        if (q == null) throw new Q4jException(model.source() + ": no Hadamard matrix of order " + dim + " (the model dimension) is known here; QuaRot cannot rotate this model");
        Map<String, Tensor> out = new LinkedHashMap<>();
        List<String> skipped = new ArrayList<>();

        float[] embedding = MatMul.toFloats(model.tensor(Model.TOKEN_EMBD));                              // (vocab, dim)
        float[] head = c.tiedEmbeddings() || !model.has(Model.OUTPUT) ? embedding.clone() : MatMul.toFloats(model.tensor(Model.OUTPUT));
        scaleColumns(head, dim, MatMul.toFloats(model.tensor(Model.OUTPUT_NORM)));
        out.put(Model.TOKEN_EMBD, Tensor.ofFloats(Model.TOKEN_EMBD, Rotations.mulRight(embedding, vocab, dim, q), vocab, dim));
        out.put(Model.OUTPUT, Tensor.ofFloats(Model.OUTPUT, Rotations.mulRight(head, vocab, dim, q), vocab, dim));
        out.put(Model.OUTPUT_NORM, ones(Model.OUTPUT_NORM, dim));

        float[] hDown = Rotations.randomizedHadamard(c.hiddenDim(), seed + 1); // (hidden, hidden) or null
        float[] hOut = Rotations.randomizedHadamard(c.qDim(), seed + 2);       // (qDim, qDim) or null
        if (hDown == null) {
            skipped.add("online Hadamard before ffn_down (no Hadamard of order " + c.hiddenDim() + ")" + (orthogonalFallback ? ": random orthogonal instead" : ""));
            if (orthogonalFallback) hDown = Rotations.randomOrthogonal(c.hiddenDim(), seed + 1);
        }
        if (hOut == null) {
            skipped.add("online Hadamard before attn_output (no Hadamard of order " + c.qDim() + ")" + (orthogonalFallback ? ": random orthogonal instead" : ""));
            if (orthogonalFallback) hOut = Rotations.randomOrthogonal(c.qDim(), seed + 2);
        }
        int hd = c.headDim();
        float[] headRotation = rotateKv ? Rotations.hadamard(hd) : null; // (hd, hd)
        if (rotateKv && headRotation == null) throw new Q4jException(model.source() + ": no Hadamard matrix of the head size " + hd + " is known here; QuaRot cannot rotate the KV cache");
        for (int l = 0; l < c.nLayers(); l++) {
            float[] attnNorm = MatMul.toFloats(model.tensor(Model.attnNorm(l)));
            for (String name : new String[]{Model.attnQ(l), Model.attnK(l), Model.attnV(l)}) readsResidual(model, name, attnNorm, q, out);
            float[] wo = MatMul.toFloats(model.tensor(Model.attnOutput(l))); // (dim, qDim)
            if (headRotation != null) {
                String v = Model.attnV(l), bias = Model.blk(l, "attn_v.bias");
                out.put(v, Tensor.ofFloats(v, rotateHeadRows(MatMul.toFloats(out.get(v)), c.kvDim(), dim, headRotation, hd), c.kvDim(), dim));
                if (model.has(bias)) out.put(bias, Tensor.ofFloats(bias, rotateHeadRows(MatMul.toFloats(model.tensor(bias)), c.kvDim(), 1, headRotation, hd), c.kvDim()));
                wo = rotateHeadColumns(wo, dim, c.qDim(), headRotation, hd);
            }
            float[] ffnNorm = MatMul.toFloats(model.tensor(Model.ffnNorm(l)));
            for (String name : new String[]{Model.ffnGate(l), Model.ffnUp(l)}) readsResidual(model, name, ffnNorm, q, out);
            out.put(Model.attnNorm(l), ones(Model.attnNorm(l), dim));
            out.put(Model.ffnNorm(l), ones(Model.ffnNorm(l), dim));
            writesResidual(Model.attnOutput(l), wo, c.qDim(), q, hOut, out);
            writesResidual(Model.ffnDown(l), MatMul.toFloats(model.tensor(Model.ffnDown(l))), c.hiddenDim(), q, hDown, out);
        }
        Model rotated = new Model(c.withTiedEmbeddings(false), merged(model, out), model.metadata(), model.source(), List.of());
        if (rotateKv) rotated = rotated.withMetadata(java.util.Map.of(Llama.KV_HADAMARD_KEY, org.quant4j.io.gguf.GgufValue.bool(true)));
        return new Result(rotated, skipped);
    }

    /** Each head's block of rows of w (heads · hd, cols) becomes H · block: w[h·hd + c, :] ← Σ_j H[c][j] · w[h·hd + j, :]. */
    static float[] rotateHeadRows(float[] w, int rows, int cols, float[] h, int hd) {
        float[] out = new float[w.length];
        for (int base = 0; base < rows; base += hd) {
            for (int c = 0; c < hd; c++) {
                for (int j = 0; j < hd; j++) {
                    float f = h[c * hd + j];
                    for (int k = 0; k < cols; k++) out[(base + c) * cols + k] += f * w[(base + j) * cols + k];
                }
            }
        }
        return out;
    }

    /** w (rows, heads · hd) ← w · blockdiag(Hᵀ): w[r, h·hd + c] ← Σ_j w[r, h·hd + j] · H[c][j]. */
    static float[] rotateHeadColumns(float[] w, int rows, int cols, float[] h, int hd) {
        float[] out = new float[w.length];
        for (int r = 0; r < rows; r++) {
            for (int base = 0; base < cols; base += hd) {
                for (int c = 0; c < hd; c++) {
                    float sum = 0;
                    for (int j = 0; j < hd; j++) sum += w[r * cols + base + j] * h[c * hd + j];
                    out[r * cols + base + c] = sum;
                }
            }
        }
        return out;
    }

    /** A layer reading the normalized residual: W ← W · diag(g) · Q. */
    private static void readsResidual(Model model, String name, float[] norm, float[] q, Map<String, Tensor> out) {
        Tensor t = model.tensor(name);
        int rows = (int) t.rows(), dim = (int) t.cols();
        float[] w = MatMul.toFloats(t); // (rows, dim)
        scaleColumns(w, dim, norm);
        out.put(name, Tensor.ofFloats(name, Rotations.mulRight(w, rows, dim, q), t.shape()));
    }

    /** A layer writing to the residual: W ← Qᵀ · W (· H with an online transform x ← Hᵀ·x on its input). */
    private static void writesResidual(String name, float[] weight, int cols, float[] q, float[] online, Map<String, Tensor> out) {
        int dim = weight.length / cols;
        float[] w = Rotations.mulLeftTransposed(q, dim, weight, cols); // (dim, cols)
        if (online != null) {
            w = Rotations.mulRight(w, dim, cols, online);
            String transform = name.replace(".weight", Llama.INPUT_TRANSFORM);
            out.put(transform, Tensor.ofFloats(transform, Rotations.transpose(online, cols, cols), cols, cols));
        }
        out.put(name, Tensor.ofFloats(name, w, dim, cols));
    }

    /** The model's tensors with {@code replaced} swapped in, new ones (output head, transforms) after their weight. */
    static Map<String, Tensor> merged(Model model, Map<String, Tensor> replaced) {
        Map<String, Tensor> all = new LinkedHashMap<>();
        for (Tensor t : model.tensors().values()) {
            all.put(t.name(), replaced.getOrDefault(t.name(), t));
            String transform = t.name().replace(".weight", Llama.INPUT_TRANSFORM);
            if (!transform.equals(t.name()) && replaced.containsKey(transform)) all.put(transform, replaced.get(transform));
        }
        for (Map.Entry<String, Tensor> e : replaced.entrySet()) all.putIfAbsent(e.getKey(), e.getValue());
        return all;
    }

    static void scaleColumns(float[] w, int cols, float[] g) {
        for (int r = 0; r < w.length / cols; r++) for (int j = 0; j < cols; j++) w[r * cols + j] *= g[j];
    }

    private static Tensor ones(String name, int n) {
        float[] v = new float[n];
        java.util.Arrays.fill(v, 1f);
        return Tensor.ofFloats(name, v, n);
    }
}
