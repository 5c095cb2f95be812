package org.quant4j.model;

import org.quant4j.format.IntQuantType;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.kernel.FloatKernels;
import org.quant4j.kernel.LlmInt8Kernel;
import org.quant4j.kernel.MatMul;
import org.quant4j.kernel.Parallel;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.util.Q4jException;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The BERT-family encoder forward pass (BERT, MiniLM, BGE, E5, ...): word + position + token-type embeddings →
 * LayerNorm → N × [bidirectional multi-head attention with biases → residual → LayerNorm → GELU feed-forward →
 * residual → LayerNorm] (post-LayerNorm blocks) → pooling (mean over tokens or the [CLS] token) → L2 normalisation.
 *
 * <p>Tensors carry llama.cpp's {@code bert} names ({@code token_embd.weight}, {@code position_embd.weight},
 * {@code token_types.weight}, {@code token_embd_norm.*}, {@code blk.N.attn_q.*} ... {@code blk.N.layer_output_norm.*}),
 * linear weights stored [out, in] like every quant4j weight, so quantized weights run through the same {@link MatMul}
 * kernels as the Llama family. The {@link Model}'s {@link LlamaConfig} carries the sizes (architecture {@code bert},
 * {@code normEps} the LayerNorm epsilon, {@code contextLength} the number of positions); the pooling, the
 * normalisation and the GELU form are GGUF-style metadata ({@link #POOLING_KEY}, {@link #NORMALIZE_KEY},
 * {@link #GELU_KEY}).
 */
public final class Bert {

    /** How token states become one sentence embedding; the codes are llama.cpp's {@code llama_pooling_type}. */
    public enum Pooling {
        NONE(0), MEAN(1), CLS(2);

        public final int ggufCode;

        Pooling(int ggufCode) { this.ggufCode = ggufCode; }

        public static Pooling ofCode(long code) {
            for (Pooling p : values()) if (p.ggufCode == code) return p;
            throw new Q4jException("unknown pooling type " + code + " (0 none, 1 mean, 2 cls)");
        }
    }

    /** The two GELU forms BERT exports use: exact x·Φ(x) (Hugging Face's "gelu") and the tanh approximation. */
    public enum Gelu { ERF, TANH }

    public static final String ARCHITECTURE = "bert";
    public static final String POOLING_KEY = "bert.pooling_type";
    public static final String NORMALIZE_KEY = "quant4j.embedding.normalize";
    public static final String GELU_KEY = "quant4j.bert.gelu";

    // ---- tensor names (llama.cpp's LLM_ARCH_BERT) -------------------------------------------------------------
    public static final String TOKEN_EMBD = "token_embd.weight";
    public static final String POSITION_EMBD = "position_embd.weight";
    public static final String TOKEN_TYPES = "token_types.weight";
    public static final String TOKEN_EMBD_NORM = "token_embd_norm";
    /** The linear layers of a block, in order: q, k, v, attention output, feed-forward up and down. */
    public static final String[] LINEAR = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_down"};

    public final LlamaConfig config;
    public final Model model;
    public final Pooling pooling;
    public final boolean normalize;
    public final Gelu gelu;
    /** Linear layers with 8- or 4-bit integer weights quantize their inputs per token ({@link Llama#ACTIVATIONS_KEY} "int8-dynamic"). */
    public final boolean dynamicInt8Activations;
    /** LLM.int8() ({@link Llama#ACTIVATIONS_KEY} "llm-int8:6.0"): input columns with an |x| at or above it run in float; 0 when off. */
    public final float llmInt8Threshold;
    /**
     * Static W8A8 ({@link Llama#ACTIVATIONS_KEY} "int8-static"): each integer layer quantizes its input with one
     * calibrated scale ({@code <layer>.input_scale}, {@link org.quant4j.method.actquant.ActivationQuant#staticInt8}).
     */
    public final boolean staticInt8Activations;
    private final Map<String, Float> inputScales = new HashMap<>(); // weight name → static activation scale

    // ---- weights ----------------------------------------------------------------------------------------------
    private final Tensor wordEmbedding;      // [vocab, dim]
    private final Tensor positionEmbedding;  // [positions, dim]
    private final Tensor tokenTypeEmbedding; // [types, dim] or null
    private final float[] embNormW, embNormB; // (dim)
    private final Tensor[] wq, wk, wv, wo;    // [layer] [dim, dim] each
    private final Tensor[] wUp, wDown;        // [layer] [hidden, dim], [dim, hidden]
    private final float[][] bq, bk, bv, bo, bUp, bDown; // [layer](dim) ... (hidden), (dim)
    private final float[][] attnNormW, attnNormB;     // [layer](dim): LayerNorm after attention + residual
    private final float[][] outNormW, outNormB;       // [layer](dim): LayerNorm after feed-forward + residual

    // ---- online input transforms (encoder SmoothQuant and rotation, method/encoder/EncoderTransforms) ----------
    /** Suffix of an F32 (cols) vector s by which a linear layer's input is divided, channel by channel: x ← x / s. */
    public static final String INPUT_SMOOTH = ".input_smooth";
    /** The first weight of each input site: q/k/v share the block input, then attention output, up, down. */
    public static final String[] SITES = {"attn_q", "attn_output", "ffn_up", "ffn_down"};
    private final float[][][] inputSmooth;    // [layer][site](cols) or null
    private final Tensor[][] inputTransform;  // [layer][site] [cols, cols] (x ← T·x, Llama.INPUT_TRANSFORM) or null

    public Bert(Model model) {
        this.model = model;
        this.config = model.config();
        LlamaConfig c = config;
        if (!ARCHITECTURE.equals(c.architecture())) throw new Q4jException(model.source() + ": a " + c.architecture() + " model is not a BERT encoder");
        Map<String, GgufValue> meta = model.metadata();
        pooling = meta.containsKey(POOLING_KEY) ? Pooling.ofCode(meta.get(POOLING_KEY).asLong()) : Pooling.MEAN;
        normalize = !meta.containsKey(NORMALIZE_KEY) || meta.get(NORMALIZE_KEY).asLong() != 0;
        gelu = meta.containsKey(GELU_KEY) ? Gelu.valueOf(meta.get(GELU_KEY).asString().toUpperCase(java.util.Locale.ROOT)) : Gelu.ERF;
        GgufValue activations = meta.get(Llama.ACTIVATIONS_KEY);
        String mode = activations == null ? null : activations.asString();
        float threshold = 0;
        if (mode != null && mode.startsWith(Llama.LLM_INT8)) {
            threshold = 6f;
            if (mode.startsWith(Llama.LLM_INT8 + ":")) {
                try {
                    threshold = Float.parseFloat(mode.substring(Llama.LLM_INT8.length() + 1));
                } catch (NumberFormatException e) {
                    throw new Q4jException(model.source() + ": bad LLM.int8() threshold in '" + mode + "'");
                }
            }
        } else if (mode != null && !mode.equals("int8-dynamic") && !mode.equals("int8-static")) {
            throw new Q4jException(model.source() + ": BERT encoders support dynamic or static int8 activations and LLM.int8() only, not '" + mode + "'");
        }
        llmInt8Threshold = threshold;
        staticInt8Activations = "int8-static".equals(mode);
        dynamicInt8Activations = mode != null && threshold == 0 && !staticInt8Activations;
        for (Tensor t : model.tensors().values()) {
            String name = t.name();
            if (name.endsWith(Llama.INPUT_SCALE)) inputScales.put(name.substring(0, name.length() - Llama.INPUT_SCALE.length()) + ".weight", MatMul.toFloats(t)[0]);
        }
        checkTensors(c, model.tensors(), model.source());
        int dim = c.dim();
        wordEmbedding = model.tensor(TOKEN_EMBD);
        positionEmbedding = model.tensor(POSITION_EMBD);
        tokenTypeEmbedding = model.has(TOKEN_TYPES) ? model.tensor(TOKEN_TYPES) : null;
        embNormW = floats(TOKEN_EMBD_NORM + ".weight");
        embNormB = floats(TOKEN_EMBD_NORM + ".bias");
        int L = c.nLayers();
        wq = new Tensor[L]; wk = new Tensor[L]; wv = new Tensor[L]; wo = new Tensor[L]; wUp = new Tensor[L]; wDown = new Tensor[L];
        bq = new float[L][]; bk = new float[L][]; bv = new float[L][]; bo = new float[L][]; bUp = new float[L][]; bDown = new float[L][];
        attnNormW = new float[L][]; attnNormB = new float[L][]; outNormW = new float[L][]; outNormB = new float[L][];
        for (int l = 0; l < L; l++) {
            wq[l] = model.tensor(Model.blk(l, "attn_q.weight"));
            wk[l] = model.tensor(Model.blk(l, "attn_k.weight"));
            wv[l] = model.tensor(Model.blk(l, "attn_v.weight"));
            wo[l] = model.tensor(Model.blk(l, "attn_output.weight"));
            wUp[l] = model.tensor(Model.blk(l, "ffn_up.weight"));
            wDown[l] = model.tensor(Model.blk(l, "ffn_down.weight"));
            bq[l] = floats(Model.blk(l, "attn_q.bias"));
            bk[l] = floats(Model.blk(l, "attn_k.bias"));
            bv[l] = floats(Model.blk(l, "attn_v.bias"));
            bo[l] = floats(Model.blk(l, "attn_output.bias"));
            bUp[l] = floats(Model.blk(l, "ffn_up.bias"));
            bDown[l] = floats(Model.blk(l, "ffn_down.bias"));
            attnNormW[l] = floats(Model.blk(l, "attn_output_norm.weight"));
            attnNormB[l] = floats(Model.blk(l, "attn_output_norm.bias"));
            outNormW[l] = floats(Model.blk(l, "layer_output_norm.weight"));
            outNormB[l] = floats(Model.blk(l, "layer_output_norm.bias"));
        }
        inputSmooth = new float[L][SITES.length][];
        inputTransform = new Tensor[L][SITES.length];
        for (int l = 0; l < L; l++) {
            for (int site = 0; site < SITES.length; site++) {
                String base = Model.blk(l, SITES[site]);
                if (model.has(base + INPUT_SMOOTH)) inputSmooth[l][site] = floats(base + INPUT_SMOOTH);
                if (model.has(base + Llama.INPUT_TRANSFORM)) inputTransform[l][site] = model.tensor(base + Llama.INPUT_TRANSFORM);
            }
        }
        if (dim != c.nHeads() * c.headDim()) throw new Q4jException(model.source() + ": " + c.nHeads() + " heads of " + c.headDim() + " do not make width " + dim);
    }

    private float[] floats(String name) { return MatMul.toFloats(model.tensor(name)); }

    /** Checks that every tensor a BERT encoder of this config needs is present with the right shape. */
    public static void checkTensors(LlamaConfig c, Map<String, Tensor> t, String source) {
        int dim = c.dim(), hidden = c.hiddenDim();
        expect(t, source, TOKEN_EMBD, c.vocabSize(), dim);
        expect(t, source, POSITION_EMBD, c.contextLength(), dim);
        if (t.containsKey(TOKEN_TYPES) && (t.get(TOKEN_TYPES).rank() != 2 || t.get(TOKEN_TYPES).cols() != dim)) {
            throw new Q4jException(source + ": tensor " + TOKEN_TYPES + " has shape " + Arrays.toString(t.get(TOKEN_TYPES).shape()) + ", expected [types, " + dim + "]");
        }
        expect(t, source, TOKEN_EMBD_NORM + ".weight", dim);
        expect(t, source, TOKEN_EMBD_NORM + ".bias", dim);
        for (int l = 0; l < c.nLayers(); l++) {
            for (String q : new String[]{"attn_q", "attn_k", "attn_v", "attn_output"}) {
                expect(t, source, Model.blk(l, q + ".weight"), dim, dim);
                expect(t, source, Model.blk(l, q + ".bias"), dim);
            }
            expect(t, source, Model.blk(l, "ffn_up.weight"), hidden, dim);
            expect(t, source, Model.blk(l, "ffn_up.bias"), hidden);
            expect(t, source, Model.blk(l, "ffn_down.weight"), dim, hidden);
            expect(t, source, Model.blk(l, "ffn_down.bias"), dim);
            for (String n : new String[]{"attn_output_norm", "layer_output_norm"}) {
                expect(t, source, Model.blk(l, n + ".weight"), dim);
                expect(t, source, Model.blk(l, n + ".bias"), dim);
            }
        }
    }

    private static void expect(Map<String, Tensor> t, String source, String name, long... shape) {
        Tensor x = t.get(name);
        if (x == null) throw new Q4jException(source + ": tensor " + name + " is missing (a BERT encoder needs it)");
        if (!Arrays.equals(x.shape(), shape)) {
            throw new Q4jException(source + ": tensor " + name + " has shape " + Arrays.toString(x.shape()) + ", the config needs " + Arrays.toString(shape));
        }
    }

    // ---- observing linear-layer inputs (calibration, outlier analysis) ----------------------------------------

    private Llama.LinearObserver observer;

    public void setObserver(Llama.LinearObserver observer) { this.observer = observer; }

    /** out = x · Wᵀ + b; integer weights take int8 activations (one scale per token) or LLM.int8() when the model asks. */
    private void linear(Tensor w, float[] bias, float[] x, float[] out, int n) {
        if (observer != null) observer.onInput(w.name(), x, n, (int) w.cols());
        if (llmInt8Threshold > 0 && w.type() instanceof IntQuantType) LlmInt8Kernel.matmul(w, x, out, n, llmInt8Threshold);
        else if (dynamicInt8Activations && w.type() instanceof IntQuantType q && (q.bits() == 8 || q.bits() == 4)) MatMul.matmulA8(w, x, out, n, 0);
        else if (staticInt8Activations && w.type() instanceof IntQuantType q && (q.bits() == 8 || q.bits() == 4)) {
            Float scale = inputScales.get(w.name());
            if (scale == null) throw new Q4jException(model.source() + ": static activation quantization needs " + w.name().replace(".weight", Llama.INPUT_SCALE));
            MatMul.matmulA8(w, x, out, n, scale);
        }
        else MatMul.matmul(w, x, out, n);
        int outDim = bias.length;
        for (int t = 0; t < n; t++) for (int i = 0; i < outDim; i++) out[t * outDim + i] += bias[i];
    }

    /** The input a site's layers read: x itself, or x / s and then T·x when the model stores a smoothing or a transform. */
    private float[] siteInput(int l, int site, float[] x, int n) {
        float[] s = inputSmooth[l][site];
        Tensor t = inputTransform[l][site];
        if (s == null && t == null) return x;
        int cols = s != null ? s.length : (int) t.cols();
        float[] in = new float[n * cols]; // (n, cols)
        if (s != null) for (int i = 0; i < n * cols; i++) in[i] = x[i] / s[i % cols];
        else System.arraycopy(x, 0, in, 0, n * cols);
        if (t != null) {
            float[] rotated = new float[n * cols]; // (n, cols)
            MatMul.matmul(t, in, rotated, n);
            in = rotated;
        }
        return in;
    }

    // ---- forward ----------------------------------------------------------------------------------------------

    /** The sentence embedding of a text: tokenised with [CLS] … [SEP], cut to the model's positions, pooled. */
    public float[] embed(Tokenizer tokenizer, String text) {
        return embed(truncate(tokenizer.encode(text, true, false)));
    }

    /** Token ids cut to the model's positions, keeping the final [SEP] when there is one. */
    public int[] truncate(int[] ids) {
        int max = config.contextLength();
        if (ids.length <= max) return ids;
        int[] cut = Arrays.copyOf(ids, max);
        cut[max - 1] = ids[ids.length - 1];
        return cut;
    }

    /** The pooled (and, as the model asks, L2-normalised) embedding of one sequence of token ids (dim). */
    public float[] embed(int[] ids) {
        float[] h = hiddenStates(ids, null);
        return pool(h, ids.length, config.dim(), pooling, normalize);
    }

    /**
     * The last hidden states (n, dim) of one sequence: what the ONNX graph's {@code last_hidden_state} output holds.
     *
     * @param typeIds token type (segment) ids, or null for all zero
     */
    public float[] hiddenStates(int[] ids, int[] typeIds) {
        float[] x = embeddings(ids, typeIds); // (n, dim) the residual stream
        for (int l = 0; l < config.nLayers(); l++) block(l, x, ids.length);
        return x;
    }

    /** The embedding layer: word + position + token-type embeddings, LayerNorm; returns (n, dim). */
    public float[] embeddings(int[] ids, int[] typeIds) {
        LlamaConfig c = config;
        int n = ids.length, dim = c.dim();
        if (n == 0) throw new Q4jException("cannot embed an empty sequence");
        if (n > c.contextLength()) throw new Q4jException(n + " tokens exceed the model's " + c.contextLength() + " positions");
        float[] x = new float[n * dim];        // (n, dim)
        float[] row = new float[dim];          // (dim)
        for (int t = 0; t < n; t++) {
            int id = ids[t];
            if (id < 0 || id >= c.vocabSize()) throw new Q4jException("token id " + id + " is outside the vocabulary (" + c.vocabSize() + ")");
            MatMul.dequantizeRow(wordEmbedding, id, x, t * dim);
            MatMul.dequantizeRow(positionEmbedding, t, row, 0);
            for (int i = 0; i < dim; i++) x[t * dim + i] += row[i];
            if (tokenTypeEmbedding != null) {
                MatMul.dequantizeRow(tokenTypeEmbedding, typeIds == null ? 0 : typeIds[t], row, 0);
                for (int i = 0; i < dim; i++) x[t * dim + i] += row[i];
            }
        }
        layerNorm(x, n, dim, embNormW, embNormB, c.normEps());
        return x;
    }

    /** One post-LayerNorm encoder block over the residual stream x (n, dim), in place. */
    public void block(int l, float[] x, int n) {
        LlamaConfig c = config;
        int dim = c.dim(), hidden = c.hiddenDim();
        float[] q = new float[n * dim], k = new float[n * dim], v = new float[n * dim]; // (n, dim) each
        float[] attn = new float[n * dim];    // (n, dim) heads concatenated
        float[] proj = new float[n * dim];    // (n, dim)
        float[] up = new float[n * hidden];   // (n, hidden)
        float[] in = siteInput(l, 0, x, n);
        linear(wq[l], bq[l], in, q, n);
        linear(wk[l], bk[l], in, k, n);
        linear(wv[l], bv[l], in, v, n);
        attention(q, k, v, attn, n);
        linear(wo[l], bo[l], siteInput(l, 1, attn, n), proj, n);
        for (int i = 0; i < n * dim; i++) x[i] += proj[i];
        layerNorm(x, n, dim, attnNormW[l], attnNormB[l], c.normEps());

        linear(wUp[l], bUp[l], siteInput(l, 2, x, n), up, n);
        if (gelu == Gelu.ERF) org.quant4j.kernel.GeluKernel.geluErf(up, 0, up.length);
        else for (int i = 0; i < up.length; i++) up[i] = geluTanh(up[i]);
        linear(wDown[l], bDown[l], siteInput(l, 3, up, n), proj, n);
        for (int i = 0; i < n * dim; i++) x[i] += proj[i];
        layerNorm(x, n, dim, outNormW[l], outNormB[l], c.normEps());
    }

    /** Bidirectional scaled dot-product attention over all n tokens, one head per task. */
    private void attention(float[] q, float[] k, float[] v, float[] out, int n) {
        int dim = config.dim(), headDim = config.headDim();
        float scale = (float) (1.0 / Math.sqrt(headDim));
        Parallel.forRange(config.nHeads(), 1, (h0, h1) -> {
            float[] score = new float[n]; // (n) one query's attention weights
            for (int h = h0; h < h1; h++) {
                int ho = h * headDim;
                for (int i = 0; i < n; i++) {
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        score[j] = FloatKernels.dot(q, i * dim + ho, k, j * dim + ho, headDim) * scale;
                        max = Math.max(max, score[j]);
                    }
                    float sum = 0;
                    for (int j = 0; j < n; j++) { score[j] = (float) Math.exp(score[j] - max); sum += score[j]; }
                    int oo = i * dim + ho;
                    Arrays.fill(out, oo, oo + headDim, 0f);
                    for (int j = 0; j < n; j++) FloatKernels.axpy(score[j] / sum, v, j * dim + ho, out, oo, headDim);
                }
            }
        });
    }

    /** y = (x − mean) / sqrt(var + eps) · weight + bias on each of n rows of width dim, in place. */
    static void layerNorm(float[] x, int n, int dim, float[] weight, float[] bias, float eps) {
        for (int t = 0; t < n; t++) {
            int o = t * dim;
            double mean = 0;
            for (int i = 0; i < dim; i++) mean += x[o + i];
            mean /= dim;
            double var = 0;
            for (int i = 0; i < dim; i++) { double d = x[o + i] - mean; var += d * d; }
            var /= dim;
            float inv = (float) (1.0 / Math.sqrt(var + eps));
            for (int i = 0; i < dim; i++) x[o + i] = (float) (x[o + i] - mean) * inv * weight[i] + bias[i];
        }
    }

    /** GELU(x) = x · Φ(x) = x/2 · (1 + erf(x / √2)) ({@link org.quant4j.kernel.GeluKernel}, which runs it over arrays). */
    public static float geluErf(float x) { return org.quant4j.kernel.GeluKernel.geluErf(x); }

    /** GELU's tanh approximation: x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))). */
    public static float geluTanh(float x) { return (float) (0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)))); }

    static double erf(double x) { return org.quant4j.kernel.GeluKernel.erf(x); }

    /** Pools hidden states (n, dim) into one vector (dim): the mean over tokens or the first token, L2-normalised. */
    public static float[] pool(float[] h, int n, int dim, Pooling pooling, boolean normalize) {
        float[] e = new float[dim]; // (dim)
        switch (pooling) {
            case MEAN -> {
                double[] acc = new double[dim];
                for (int t = 0; t < n; t++) for (int i = 0; i < dim; i++) acc[i] += h[t * dim + i];
                for (int i = 0; i < dim; i++) e[i] = (float) (acc[i] / n);
            }
            case CLS -> System.arraycopy(h, 0, e, 0, dim);
            case NONE -> throw new Q4jException("the model has no pooling; use hiddenStates for per-token vectors");
        }
        if (normalize) normalizeL2(e);
        return e;
    }

    /** Scales v to unit length (as torch.nn.functional.normalize: a zero vector stays zero). */
    public static void normalizeL2(float[] v) {
        double ss = 0;
        for (float f : v) ss += (double) f * f;
        double norm = Math.max(Math.sqrt(ss), 1e-12);
        for (int i = 0; i < v.length; i++) v[i] = (float) (v[i] / norm);
    }

    /** Cosine similarity of two vectors. */
    public static double cosine(float[] a, float[] b) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.length; i++) { ab += (double) a[i] * b[i]; aa += (double) a[i] * a[i]; bb += (double) b[i] * b[i]; }
        return ab / Math.sqrt(aa * bb);
    }

    /** The metadata a BERT model carries beside its tensors. */
    public static Map<String, GgufValue> metadata(Pooling pooling, boolean normalize, Gelu gelu) {
        Map<String, GgufValue> m = new HashMap<>();
        m.put(POOLING_KEY, GgufValue.u32(pooling.ggufCode));
        m.put(NORMALIZE_KEY, GgufValue.bool(normalize));
        m.put(GELU_KEY, GgufValue.string(gelu.name().toLowerCase(java.util.Locale.ROOT)));
        return m;
    }
}
