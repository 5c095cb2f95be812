package org.quant4j.model;

import org.quant4j.kernel.FastHadamard;
import org.quant4j.kernel.FloatKernels;
import org.quant4j.kernel.Int8Kernels;
import org.quant4j.kernel.MatMul;
import org.quant4j.kernel.Parallel;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

/**
 * The Llama-family forward pass (Llama 1-3, Mistral, Qwen2, SmolLM, TinyLlama): token embedding → N × [RMSNorm →
 * grouped-query attention with RoPE → residual → RMSNorm → SwiGLU feed-forward → residual] → RMSNorm → output head.
 *
 * <p>Weights stay in their storage type (mmapped or heap); every linear layer goes through {@link MatMul}, which
 * picks the kernel for the storage type. {@link #forward} processes a batch of consecutive tokens at once (prompt
 * processing reads each weight once per batch) and appends their keys and values to the {@link State}'s cache.
 */
public final class Llama {
    public final LlamaConfig config;
    public final Model model;

    // ---- weights ----------------------------------------------------------------------------------------------
    private final Tensor tokenEmbedding;     // [vocab, dim]
    private final Tensor output;             // [vocab, dim] (the embedding when tied)
    private final float[] outputNorm;        // (dim)
    private final float[][] attnNorm;        // [layer](dim)
    private final float[][] ffnNorm;         // [layer](dim)
    private final Tensor[] wq, wk, wv, wo;    // [layer] [qDim, dim], [kvDim, dim], [kvDim, dim], [dim, qDim]
    private final Tensor[] wGate, wUp, wDown; // [layer] [hidden, dim], [hidden, dim], [dim, hidden]
    private final float[][] bq, bk, bv;      // [layer](qDim), (kvDim), (kvDim) or null
    private final float[] ropeFrequencies;   // (headDim / 2): angle per position for each rotated pair

    // ---- activation quantization (W8A8) ----------------------------------------------------------------------
    /** Metadata key naming how linear layers quantize their inputs: absent (float), "int8-dynamic", "int8-static". */
    public static final String ACTIVATIONS_KEY = "quant4j.activations";
    /** Suffix of the F32 [1] tensor holding a weight's static input scale: "blk.0.attn_q.input_scale". */
    public static final String INPUT_SCALE = ".input_scale";
    private final String activationMode;
    private final java.util.Map<String, Float> inputScales = new java.util.HashMap<>();
    /** "llm-int8[:threshold]": LLM.int8() mixed-precision decomposition on 8-bit per-channel symmetric weights. */
    public static final String LLM_INT8 = "llm-int8";
    private float llmInt8Threshold;
    /**
     * "int{b}-token-asym": per-token asymmetric b-bit activations; on 4- or 8-bit integer weights (b &lt; 8) the integer
     * kernels run ({@link MatMul#matmulTokenAsymmetric}), otherwise — or with {@code -Dquant4j.w4a4=simulate} — the exact
     * simulation (quantize-dequantize, then the float matmul).
     */
    static final boolean INTEGER_LOW_BIT_ACTIVATIONS = !"simulate".equalsIgnoreCase(System.getProperty("quant4j.w4a4", "integer"));
    private int simulatedActivationBits;

    // ---- online input transforms (QuaRot's online Hadamard, DuQuant's rotations) -------------------------------
    /**
     * Suffix of an F32 [cols, cols] tensor T applied to a linear layer's input before the layer (x ← T·x), stored next
     * to the weight ("blk.0.ffn_down.input_transform"). q, k and v read one input, as do gate and up: their transforms
     * must be equal, and run once.
     */
    public static final String INPUT_TRANSFORM = ".input_transform";
    private final Tensor[][] inputTransforms; // [layer][site: 0 q/k/v input, 1 attn_output input, 2 gate/up input, 3 ffn_down input] or null
    /** [layer][site] the fast Walsh–Hadamard form of an input transform that is a randomized Hadamard matrix, or null. */
    private final FastHadamard.Rotation[][] fastTransforms;

    // ---- KV-cache quantization (QuaRot / DuQuant's KV4, KV8), simulated exactly ---------------------------------
    /** Metadata key (int): bits of the per-token, per-head asymmetric K and V cache entries; absent or 0: float. */
    public static final String KV_BITS_KEY = "quant4j.kv_bits";
    /** Metadata key (bool): queries and keys get a Hadamard rotation per head after RoPE (QuaRot's online K rotation). */
    public static final String KV_HADAMARD_KEY = "quant4j.kv_hadamard";
    private final int kvBits;
    private final FastHadamard.Rotation keyRotation; // (headDim) orthonormal Hadamard on q and k heads, or null

    /** Sees the input of every linear layer (calibration, importance matrices, outlier analysis). */
    @FunctionalInterface
    public interface LinearObserver {
        /** @param x (batch, cols): the input of the layer whose weight is {@code weightName} */
        void onInput(String weightName, float[] x, int batch, int cols);
    }

    private LinearObserver observer;

    public void setObserver(LinearObserver observer) { this.observer = observer; }

    public Llama(Model model) {
        this.model = model;
        this.config = model.config();
        LlamaConfig c = config;
        Model.checkTensors(c, model.tensors(), model.source());
        tokenEmbedding = model.tensor(Model.TOKEN_EMBD);
        output = c.tiedEmbeddings() || !model.has(Model.OUTPUT) ? tokenEmbedding : model.tensor(Model.OUTPUT);
        outputNorm = MatMul.toFloats(model.tensor(Model.OUTPUT_NORM));
        int L = c.nLayers();
        attnNorm = new float[L][];
        ffnNorm = new float[L][];
        wq = new Tensor[L]; wk = new Tensor[L]; wv = new Tensor[L]; wo = new Tensor[L];
        wGate = new Tensor[L]; wUp = new Tensor[L]; wDown = new Tensor[L];
        bq = new float[L][]; bk = new float[L][]; bv = new float[L][];
        inputTransforms = new Tensor[L][4];
        fastTransforms = new FastHadamard.Rotation[L][4];
        for (int l = 0; l < L; l++) {
            attnNorm[l] = MatMul.toFloats(model.tensor(Model.attnNorm(l)));
            ffnNorm[l] = MatMul.toFloats(model.tensor(Model.ffnNorm(l)));
            wq[l] = model.tensor(Model.attnQ(l));
            wk[l] = model.tensor(Model.attnK(l));
            wv[l] = model.tensor(Model.attnV(l));
            wo[l] = model.tensor(Model.attnOutput(l));
            wGate[l] = model.tensor(Model.ffnGate(l));
            wUp[l] = model.tensor(Model.ffnUp(l));
            wDown[l] = model.tensor(Model.ffnDown(l));
            if (model.has(Model.blk(l, "attn_q.bias"))) bq[l] = MatMul.toFloats(model.tensor(Model.blk(l, "attn_q.bias")));
            if (model.has(Model.blk(l, "attn_k.bias"))) bk[l] = MatMul.toFloats(model.tensor(Model.blk(l, "attn_k.bias")));
            if (model.has(Model.blk(l, "attn_v.bias"))) bv[l] = MatMul.toFloats(model.tensor(Model.blk(l, "attn_v.bias")));
            inputTransforms[l][0] = sharedTransform(model, c.dim(), Model.attnQ(l), Model.attnK(l), Model.attnV(l));
            inputTransforms[l][1] = sharedTransform(model, c.qDim(), Model.attnOutput(l));
            inputTransforms[l][2] = sharedTransform(model, c.dim(), Model.ffnGate(l), Model.ffnUp(l));
            inputTransforms[l][3] = sharedTransform(model, c.hiddenDim(), Model.ffnDown(l));
            for (int site = 0; site < 4; site++) {
                Tensor t = inputTransforms[l][site];
                if (t != null && FastHadamard.online()) fastTransforms[l][site] = FastHadamard.recognise(MatMul.toFloats(t), (int) t.dim(0));
            }
        }
        var kv = model.metadata().get(KV_BITS_KEY);
        kvBits = kv == null ? 0 : ((Number) kv.value()).intValue();
        if (kvBits != 0 && (kvBits < 2 || kvBits > 8)) throw new Q4jException(model.source() + ": " + KV_BITS_KEY + " must be 2..8 (or 0 for a float cache), not " + kvBits);
        var kvHadamard = model.metadata().get(KV_HADAMARD_KEY);
        if (kvHadamard != null && Boolean.TRUE.equals(kvHadamard.value())) {
            keyRotation = FastHadamard.Rotation.plain(c.headDim());
            if (keyRotation == null) throw new Q4jException(model.source() + ": " + KV_HADAMARD_KEY + " needs a Hadamard matrix of the head size " + c.headDim());
        } else {
            keyRotation = null;
        }
        ropeFrequencies = ropeFrequencies(c, model.has("rope_freqs.weight") ? MatMul.toFloats(model.tensor("rope_freqs.weight")) : null);
        var mode = model.metadata().get(ACTIVATIONS_KEY);
        activationMode = mode == null ? null : mode.asString();
        if (activationMode != null && activationMode.startsWith(LLM_INT8)) {
            llmInt8Threshold = 6f;
            if (activationMode.startsWith(LLM_INT8 + ":")) {
                try {
                    llmInt8Threshold = Float.parseFloat(activationMode.substring(LLM_INT8.length() + 1));
                } catch (NumberFormatException e) {
                    throw new Q4jException(model.source() + ": bad LLM.int8() threshold in '" + activationMode + "'");
                }
            }
        } else if (activationMode != null && activationMode.matches("int[2-8]-token-asym")) {
            simulatedActivationBits = activationMode.charAt(3) - '0';
        } else if (activationMode != null && !activationMode.equals("int8-dynamic") && !activationMode.equals("int8-static")) {
            throw new Q4jException(model.source() + ": unknown activation quantization '" + activationMode + "'");
        }
        for (Tensor t : model.tensors().values()) {
            if (t.name().endsWith(LORA_A)) {
                String w = t.name().substring(0, t.name().length() - LORA_A.length());
                Tensor b = model.tensor(w + LORA_B), base = model.tensor(w);
                if (t.cols() != base.cols() || b.rows() != base.rows() || b.cols() != t.rows()) throw new Q4jException(model.source() + ": LoRA tensors of " + w + " do not fit its shape");
                var s = model.metadata().get(LORA_SCALING_KEY);
                if (s == null) throw new Q4jException(model.source() + ": LoRA tensors without " + LORA_SCALING_KEY);
                loraScaling = (float) s.asDouble();
                lora.put(w, new Tensor[]{t, b});
            }
            if (t.name().endsWith(INPUT_SCALE)) inputScales.put(t.name().substring(0, t.name().length() - INPUT_SCALE.length()) + ".weight", MatMul.toFloats(t)[0]);
        }
    }

    /** The input transform of weights that share one input (all equal, or all absent), checked to be [cols, cols]. */
    private static Tensor sharedTransform(Model model, int cols, String... weights) {
        Tensor first = null;
        for (int i = 0; i < weights.length; i++) {
            String name = weights[i].replace(".weight", INPUT_TRANSFORM);
            Tensor t = model.has(name) ? model.tensor(name) : null;
            if (t != null && (t.rank() != 2 || t.dim(0) != cols || t.dim(1) != cols)) {
                throw new Q4jException(model.source() + ": tensor " + name + " has shape " + java.util.Arrays.toString(t.shape()) + ", needs [" + cols + ", " + cols + "]");
            }
            if (i == 0) first = t;
            else if ((first == null) != (t == null) || (t != null && first.data().mismatch(t.data()) != -1)) {
                throw new Q4jException(model.source() + ": " + weights[0] + " and " + weights[i] + " read one input; their input transforms must be equal");
            }
        }
        return first;
    }

    /** x ← T·x for each of batch rows of x (cols values), when the site has a transform. */
    private void transformInput(State s, int l, int site, float[] x, int batch, int cols) {
        Tensor t = inputTransforms[l][site];
        if (t == null) return;
        if (fastTransforms[l][site] != null) {
            fastTransforms[l][site].apply(x, 0, batch);
            return;
        }
        MatMul.matmul(t, x, s.transformed, batch);
        System.arraycopy(s.transformed, 0, x, 0, batch * cols);
    }

    /** LoRA adapters applied at run time (see io/peft/PeftAdapter.attach): W.lora_a (r, in), W.lora_b (out, r), scale α/r. */
    public static final String LORA_A = ".lora_a", LORA_B = ".lora_b", LORA_SCALING_KEY = "quant4j.lora.scaling";
    private final java.util.Map<String, Tensor[]> lora = new java.util.HashMap<>(); // weight name → {A, B}
    private float loraScaling;

    /** out = x · Wᵀ for one linear layer, plus (α/r)·(x·Aᵀ)·Bᵀ when a LoRA adapter is attached to W. */
    private void linear(Tensor w, float[] x, float[] out, int batch) {
        linearBase(w, x, out, batch);
        Tensor[] ab = lora.isEmpty() ? null : lora.get(w.name());
        if (ab == null) return;
        int r = (int) ab[0].rows(), outDim = (int) w.rows();
        float[] u = new float[batch * r], delta = new float[batch * outDim]; // (batch, r) x·Aᵀ; (batch, out) u·Bᵀ
        MatMul.matmul(ab[0], x, u, batch);
        MatMul.matmul(ab[1], u, delta, batch);
        for (int i = 0; i < batch * outDim; i++) out[i] += loraScaling * delta[i];
    }

    /** out = x · Wᵀ for one linear layer, with activation quantization when the model asks for it. */
    private void linearBase(Tensor w, float[] x, float[] out, int batch) {
        if (observer != null) observer.onInput(w.name(), x, batch, (int) w.cols());
        if (simulatedActivationBits > 0 && simulatedActivationBits < 8 && INTEGER_LOW_BIT_ACTIVATIONS
                && w.type() instanceof org.quant4j.format.IntQuantType q && (q.bits() == 4 || q.bits() == 8)) {
            MatMul.matmulTokenAsymmetric(w, x, out, batch, simulatedActivationBits); // W4A4 on integer kernels
            return;
        }
        if (simulatedActivationBits > 0 && w.type() instanceof org.quant4j.format.IntQuantType) {
            int cols = (int) w.cols();
            float[] xq = new float[batch * cols]; // (batch, cols) activations on their quantization grid
            org.quant4j.kernel.Int8Kernels.fakeQuantizeTokensAsymmetric(x, batch, cols, simulatedActivationBits, xq);
            MatMul.matmul(w, xq, out, batch);
            return;
        }
        if (llmInt8Threshold > 0 && w.type() instanceof org.quant4j.format.IntQuantType) {
            org.quant4j.kernel.LlmInt8Kernel.matmul(w, x, out, batch, llmInt8Threshold);
            return;
        }
        // int8 activations on integer kernels: W8A8 (dynamic or static), W4A8 (dynamic)
        if (activationMode == null || !(w.type() instanceof org.quant4j.format.IntQuantType q)
                || (q.bits() != 8 && !(q.bits() == 4 && activationMode.equals("int8-dynamic")))) {
            MatMul.matmul(w, x, out, batch);
            return;
        }
        float staticScale = 0;
        if (activationMode.equals("int8-static")) {
            Float s = inputScales.get(w.name());
            if (s == null) throw new Q4jException(model.source() + ": static activation quantization needs " + w.name().replace(".weight", INPUT_SCALE));
            staticScale = s;
        }
        MatMul.matmulA8(w, x, out, batch, staticScale);
    }

    /** θ_j = base^(−2j/headDim), divided by Llama-3 scaling factors when the model has them. */
    public static float[] ropeFrequencies(LlamaConfig c, float[] storedFactors) {
        int half = c.headDim() / 2;
        float[] freq = new float[half];
        for (int j = 0; j < half; j++) {
            double f = Math.pow(c.ropeTheta(), -2.0 * j / c.headDim());
            if (storedFactors != null) {
                f /= storedFactors[j];
            } else if (c.ropeScaling() != null) {
                LlamaConfig.RopeScaling s = c.ropeScaling();
                double lowWavelen = s.originalContextLength() / s.lowFreqFactor();
                double highWavelen = s.originalContextLength() / s.highFreqFactor();
                double wavelen = 2 * Math.PI / f;
                if (wavelen > lowWavelen) {
                    f /= s.factor();
                } else if (wavelen >= highWavelen) {
                    double smooth = (s.originalContextLength() / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                    f = (1 - smooth) * f / s.factor() + smooth * f;
                }
            }
            freq[j] = (float) f;
        }
        return freq;
    }

    // ---- state ------------------------------------------------------------------------------------------------

    /** The KV cache and scratch buffers of one sequence. */
    public final class State {
        public final int maxBatch;
        public final int contextLength;
        public int position;                 // tokens already in the cache
        final float[][] keyCache, valueCache; // [layer](context, kvDim)
        final float[] x, xb, xb2;            // (batch, dim)
        final float[] q;                     // (batch, qDim)
        final float[] k, v;                  // (batch, kvDim)
        final float[] attOut;                // (batch, qDim)
        final float[] hb, hb2;               // (batch, hidden)
        final float[] att;                   // (batch * nHeads, context) attention weights
        final float[] lastX;                 // (dim)
        final float[] transformed;           // (batch, max(dim, qDim, hidden)) scratch for input transforms

        State(int contextLength, int maxBatch) {
            LlamaConfig c = config;
            this.contextLength = contextLength;
            this.maxBatch = maxBatch;
            if ((long) contextLength * c.kvDim() > Integer.MAX_VALUE - 16) {
                throw new Q4jException("context of " + contextLength + " tokens is too long for one KV-cache array");
            }
            keyCache = new float[c.nLayers()][contextLength * c.kvDim()];
            valueCache = new float[c.nLayers()][contextLength * c.kvDim()];
            x = new float[maxBatch * c.dim()];
            xb = new float[maxBatch * c.dim()];
            xb2 = new float[maxBatch * c.dim()];
            q = new float[maxBatch * c.qDim()];
            k = new float[maxBatch * c.kvDim()];
            v = new float[maxBatch * c.kvDim()];
            attOut = new float[maxBatch * c.qDim()];
            hb = new float[maxBatch * c.hiddenDim()];
            hb2 = new float[maxBatch * c.hiddenDim()];
            att = new float[maxBatch * c.nHeads() * contextLength];
            lastX = new float[c.dim()];
            transformed = new float[maxBatch * Math.max(c.hiddenDim(), Math.max(c.dim(), c.qDim()))];
        }

        public void reset() { position = 0; }
    }

    public State newState(int contextLength, int maxBatch) {
        return new State(contextLength, Math.max(1, maxBatch));
    }

    public State newState() { return newState(config.contextLength(), 64); }

    // ---- forward ----------------------------------------------------------------------------------------------

    /** Feeds one token; returns the logits (vocab) for the next. */
    public float[] forward(State s, int token) {
        return forward(s, new int[]{token}, false);
    }

    /**
     * Feeds {@code tokens} at positions {@code s.position ...} (in batches of at most {@code s.maxBatch}) and returns
     * logits: (tokens.length, vocab) when {@code allLogits}, else only the last token's (vocab).
     */
    public float[] forward(State s, int[] tokens, boolean allLogits) {
        LlamaConfig c = config;
        int vocab = c.vocabSize();
        float[] logits = new float[(allLogits ? tokens.length : 1) * vocab];
        for (int start = 0; start < tokens.length; start += s.maxBatch) {
            int batch = Math.min(s.maxBatch, tokens.length - start);
            if (s.position + batch > s.contextLength) {
                throw new Q4jException("context full: " + (s.position + batch) + " tokens exceed the context of " + s.contextLength);
            }
            for (int b = 0; b < batch; b++) {
                int t = tokens[start + b];
                if (t < 0 || t >= vocab) throw new Q4jException("token id " + t + " is outside the vocabulary (" + vocab + ")");
                MatMul.dequantizeRow(tokenEmbedding, t, s.x, b * c.dim());
            }
            for (int l = 0; l < c.nLayers(); l++) layer(s, l, batch);
            if (allLogits) {
                float[] out = new float[batch * vocab];
                rmsnorm(s.xb, s.x, outputNorm, batch, c.dim(), c.normEps());
                MatMul.matmul(output, s.xb, out, batch);
                System.arraycopy(out, 0, logits, start * vocab, batch * vocab);
            } else if (start + batch == tokens.length) {
                rmsnorm(s.lastX, 0, s.x, (batch - 1) * c.dim(), outputNorm, c.dim(), c.normEps());
                MatMul.matmul(output, s.lastX, logits, 1);
            }
            s.position += batch;
        }
        return logits;
    }

    // ---- one block at a time (calibration pipelines) -----------------------------------------------------------

    /** The token embeddings of one sequence: (tokens.length, dim). */
    public float[] embed(int[] tokens) {
        int dim = config.dim();
        float[] x = new float[tokens.length * dim];
        for (int b = 0; b < tokens.length; b++) {
            if (tokens[b] < 0 || tokens[b] >= config.vocabSize()) throw new Q4jException("token id " + tokens[b] + " is outside the vocabulary (" + config.vocabSize() + ")");
            MatMul.dequantizeRow(tokenEmbedding, tokens[b], x, b * dim);
        }
        return x;
    }

    /**
     * Runs transformer block {@code l} alone over one sequence's hidden states x (len, dim) at positions 0..len−1,
     * with a fresh KV cache (the state's cache for that layer is overwritten); x is updated in place. The observer
     * sees the block's linear-layer inputs as in {@link #forward}.
     */
    public void block(State s, int l, float[] x, int len) {
        int dim = config.dim();
        if (len > s.contextLength) throw new Q4jException("context full: " + len + " tokens exceed the context of " + s.contextLength);
        s.position = 0;
        for (int start = 0; start < len; start += s.maxBatch) {
            int batch = Math.min(s.maxBatch, len - start);
            System.arraycopy(x, start * dim, s.x, 0, batch * dim);
            layer(s, l, batch);
            System.arraycopy(s.x, 0, x, start * dim, batch * dim);
            s.position += batch;
        }
        s.position = 0;
    }

    private void layer(State s, int l, int batch) {
        LlamaConfig c = config;
        int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hidden = c.hiddenDim();
        int pos0 = s.position;

        // attention: xb = rmsnorm(x); q, k, v = xb · Wq/Wk/Wvᵀ (+ bias)
        rmsnorm(s.xb, s.x, attnNorm[l], batch, dim, c.normEps());
        transformInput(s, l, 0, s.xb, batch, dim);
        linear(wq[l], s.xb, s.q, batch);
        linear(wk[l], s.xb, s.k, batch);
        linear(wv[l], s.xb, s.v, batch);
        for (int b = 0; b < batch; b++) {
            if (bq[l] != null) addInPlace(s.q, b * qDim, bq[l]);
            if (bk[l] != null) addInPlace(s.k, b * kvDim, bk[l]);
            if (bv[l] != null) addInPlace(s.v, b * kvDim, bv[l]);
            int pos = pos0 + b;
            rope(s.q, b * qDim, c.nHeads(), pos);
            rope(s.k, b * kvDim, c.nKvHeads(), pos);
            if (keyRotation != null) {                      // q·k unchanged: (Hq)·(Hk) = q·k
                keyRotation.apply(s.q, b * qDim, c.nHeads());
                keyRotation.apply(s.k, b * kvDim, c.nKvHeads());
            }
            System.arraycopy(s.k, b * kvDim, s.keyCache[l], pos * kvDim, kvDim);
            System.arraycopy(s.v, b * kvDim, s.valueCache[l], pos * kvDim, kvDim);
            if (kvBits > 0) {                               // each head of the new token on its own asymmetric grid
                Int8Kernels.fakeQuantizeTokensAsymmetric(s.keyCache[l], pos * kvDim, c.nKvHeads(), c.headDim(), kvBits, s.keyCache[l]);
                Int8Kernels.fakeQuantizeTokensAsymmetric(s.valueCache[l], pos * kvDim, c.nKvHeads(), c.headDim(), kvBits, s.valueCache[l]);
            }
        }
        attention(s, l, batch, pos0);
        transformInput(s, l, 1, s.attOut, batch, qDim);
        linear(wo[l], s.attOut, s.xb2, batch);
        addInPlace(s.x, s.xb2, batch * dim);

        // feed-forward: x += W_down · (silu(W_gate · xb) ⊙ (W_up · xb))
        rmsnorm(s.xb, s.x, ffnNorm[l], batch, dim, c.normEps());
        transformInput(s, l, 2, s.xb, batch, dim);
        linear(wGate[l], s.xb, s.hb, batch);
        linear(wUp[l], s.xb, s.hb2, batch);
        for (int i = 0; i < batch * hidden; i++) {
            float g = s.hb[i];
            s.hb[i] = g / (1f + (float) Math.exp(-g)) * s.hb2[i];
        }
        transformInput(s, l, 3, s.hb, batch, hidden);
        linear(wDown[l], s.hb, s.xb2, batch);
        addInPlace(s.x, s.xb2, batch * dim);
    }

    /** Causal grouped-query attention for each token of the batch and each head, in parallel over (token, head). */
    private void attention(State s, int l, int batch, int pos0) {
        LlamaConfig c = config;
        int headDim = c.headDim(), nHeads = c.nHeads(), kvDim = c.kvDim(), kvMul = c.kvMul(), qDim = c.qDim();
        float scale = (float) (1.0 / Math.sqrt(headDim));
        float[] keys = s.keyCache[l], values = s.valueCache[l];
        // share (token, head) pairs so each thread gets at least ~16K multiply-adds of scores and values
        int grain = Math.max(1, (1 << 14) / Math.max(1, (pos0 + batch) * headDim * 2));
        Parallel.forRange(batch * nHeads, grain, (start, end) -> {
            for (int bh = start; bh < end; bh++) {
                int b = bh / nHeads, h = bh % nHeads;
                int pos = pos0 + b;
                int qOff = b * qDim + h * headDim;
                int kvOff = (h / kvMul) * headDim;
                int attOff = bh * s.contextLength;
                float max = FloatKernels.scaledDots(s.q, qOff, keys, kvOff, kvDim, pos + 1, headDim, scale, s.att, attOff);
                float sum = 0;
                for (int t = 0; t <= pos; t++) {
                    float e = (float) Math.exp(s.att[attOff + t] - max);
                    s.att[attOff + t] = e;
                    sum += e;
                }
                int outOff = b * qDim + h * headDim;
                FloatKernels.weightedSum(s.att, attOff, 1f / sum, pos + 1, values, kvOff, kvDim, s.attOut, outOff, headDim);
            }
        });
    }

    /** Rotates each head's pairs by pos·θ_j: adjacent pairs (2j, 2j+1) in NORMAL layout, (j, j + headDim/2) in NEOX. */
    private void rope(float[] vec, int off, int heads, int pos) {
        int headDim = config.headDim(), half = headDim / 2;
        boolean neox = config.ropeType() == LlamaConfig.RopeType.NEOX;
        for (int j = 0; j < half; j++) {
            float angle = pos * ropeFrequencies[j];
            float cos = (float) Math.cos(angle), sin = (float) Math.sin(angle);
            for (int h = 0; h < heads; h++) {
                int base = off + h * headDim;
                int i0 = neox ? base + j : base + 2 * j;
                int i1 = neox ? base + j + half : base + 2 * j + 1;
                float a = vec[i0], b = vec[i1];
                vec[i0] = a * cos - b * sin;
                vec[i1] = a * sin + b * cos;
            }
        }
    }

    // ---- small helpers ----------------------------------------------------------------------------------------

    static void rmsnorm(float[] out, float[] x, float[] weight, int batch, int dim, float eps) {
        for (int b = 0; b < batch; b++) rmsnorm(out, b * dim, x, b * dim, weight, dim, eps);
    }

    static void rmsnorm(float[] out, int outOff, float[] x, int xOff, float[] weight, int dim, float eps) {
        float ss = FloatKernels.dot(x, xOff, x, xOff, dim);
        float inv = (float) (1.0 / Math.sqrt(ss / dim + eps));
        for (int i = 0; i < dim; i++) out[outOff + i] = weight[i] * (inv * x[xOff + i]);
    }

    private static void addInPlace(float[] dst, int off, float[] add) {
        for (int i = 0; i < add.length; i++) dst[off + i] += add[i];
    }

    private static void addInPlace(float[] dst, float[] add, int n) {
        for (int i = 0; i < n; i++) dst[i] += add[i];
    }
}
