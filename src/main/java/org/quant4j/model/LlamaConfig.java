package org.quant4j.model;

import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.gguf.GgufValueType;
import org.quant4j.util.Q4jException;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hyper-parameters of a Llama-family decoder (Llama 1-3, Mistral, Qwen2, SmolLM, TinyLlama).
 *
 * @param architecture  GGUF architecture name ("llama", "qwen2", ...)
 * @param dim           embedding width (hidden size)
 * @param hiddenDim     feed-forward width
 * @param nLayers       transformer blocks
 * @param nHeads        query heads
 * @param nKvHeads      key/value heads (grouped-query attention when fewer than nHeads)
 * @param headDim       width of one head (usually dim / nHeads)
 * @param vocabSize     tokens in the vocabulary
 * @param contextLength longest sequence the model was trained for
 * @param normEps       RMSNorm epsilon
 * @param ropeTheta     RoPE base frequency
 * @param ropeType      which pairs RoPE rotates: adjacent (NORMAL, llama.cpp's Llama layout) or halves (NEOX)
 * @param ropeScaling   Llama-3 style frequency scaling, or null
 * @param tiedEmbeddings the output head reuses the token embedding
 * @param qkvBias       q, k and v projections carry a bias (Qwen2)
 */
public record LlamaConfig(String architecture, int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int headDim,
                          int vocabSize, int contextLength, float normEps, float ropeTheta, RopeType ropeType,
                          RopeScaling ropeScaling, boolean tiedEmbeddings, boolean qkvBias) {

    public enum RopeType { NORMAL, NEOX }

    /** Llama-3.1 rope scaling ("rope_type": "llama3" in config.json). */
    public record RopeScaling(float factor, float lowFreqFactor, float highFreqFactor, int originalContextLength) {}

    public LlamaConfig {
        if (dim <= 0 || hiddenDim <= 0 || nLayers <= 0 || nHeads <= 0 || nKvHeads <= 0 || headDim <= 0 || vocabSize <= 0) {
            throw new Q4jException("invalid model config: every size must be positive: " + describe(dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize));
        }
        if (nHeads % nKvHeads != 0) {
            throw new Q4jException("invalid model config: " + nHeads + " heads do not divide into " + nKvHeads + " kv heads");
        }
        if (headDim % 2 != 0) throw new Q4jException("invalid model config: head size " + headDim + " is odd; RoPE needs pairs");
        if (dim > 1 << 20 || hiddenDim > 1 << 22 || nLayers > 4096 || vocabSize > 1 << 24 || nHeads > 1024) {
            throw new Q4jException("invalid model config: implausible sizes: " + describe(dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize));
        }
        if (contextLength <= 0) contextLength = 2048;
    }

    private static String describe(int dim, int hidden, int layers, int heads, int kv, int headDim, int vocab) {
        return "dim=" + dim + " hidden=" + hidden + " layers=" + layers + " heads=" + heads + " kv_heads=" + kv
                + " head_dim=" + headDim + " vocab=" + vocab;
    }

    public int qDim() { return nHeads * headDim; }

    public int kvDim() { return nKvHeads * headDim; }

    /** Query heads per key/value head. */
    public int kvMul() { return nHeads / nKvHeads; }

    public LlamaConfig withContextLength(int n) {
        return new LlamaConfig(architecture, dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, n, normEps,
                ropeTheta, ropeType, ropeScaling, tiedEmbeddings, qkvBias);
    }

    public LlamaConfig withTiedEmbeddings(boolean tied) {
        return new LlamaConfig(architecture, dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, contextLength,
                normEps, ropeTheta, ropeType, ropeScaling, tied, qkvBias);
    }

    /** Parameters in the model's tensors (embedding, blocks, norms, head). */
    public long parameterCount() {
        long perLayer = (long) dim * qDim() * 2 + (long) dim * kvDim() * 2 + 3L * dim * hiddenDim + 2L * dim;
        if (qkvBias) perLayer += qDim() + 2L * kvDim();
        return (long) vocabSize * dim * (tiedEmbeddings ? 1 : 2) + (long) nLayers * perLayer + dim;
    }

    /** The RoPE layout an architecture uses in GGUF (llama.cpp's llama_model_rope_type). */
    public static RopeType ropeTypeOf(String architecture) {
        return switch (architecture) {
            case "qwen2", "qwen2moe", "qwen3", "phi3", "gemma", "gemma2", "stablelm", "gptneox", "falcon", "olmo2" -> RopeType.NEOX;
            default -> RopeType.NORMAL;
        };
    }

    // ---- GGUF metadata ------------------------------------------------------------------------------------------

    /** Reads the config from GGUF metadata ({@code <arch>.embedding_length} and friends). */
    public static LlamaConfig fromGguf(Map<String, GgufValue> m, String source, int vocabFromTensors, boolean hasOutputTensor, boolean hasQkvBias) {
        String arch = str(m, "general.architecture", source);
        int dim = (int) num(m, arch + ".embedding_length", source);
        int nHeads = (int) num(m, arch + ".attention.head_count", source);
        int nKv = m.containsKey(arch + ".attention.head_count_kv") ? (int) num(m, arch + ".attention.head_count_kv", source) : nHeads;
        int headDim = m.containsKey(arch + ".attention.key_length") ? (int) num(m, arch + ".attention.key_length", source) : (nHeads > 0 ? dim / nHeads : 0);
        int vocab = m.containsKey(arch + ".vocab_size") ? (int) num(m, arch + ".vocab_size", source) : vocabFromTensors;
        float eps = m.containsKey(arch + ".attention.layer_norm_rms_epsilon") ? (float) m.get(arch + ".attention.layer_norm_rms_epsilon").asDouble()
                : m.containsKey(arch + ".attention.layer_norm_epsilon") ? (float) m.get(arch + ".attention.layer_norm_epsilon").asDouble() : 1e-5f; // LayerNorm models (bert)
        float theta = m.containsKey(arch + ".rope.freq_base") ? (float) m.get(arch + ".rope.freq_base").asDouble() : 10000f;
        RopeScaling scaling = null;
        GgufValue st = m.get(arch + ".rope.scaling.type");
        if (st != null && "llama3".equals(st.asString())) {
            scaling = new RopeScaling((float) m.get(arch + ".rope.scaling.factor").asDouble(),
                    (float) m.get(arch + ".rope.scaling.low_freq_factor").asDouble(),
                    (float) m.get(arch + ".rope.scaling.high_freq_factor").asDouble(),
                    (int) m.get(arch + ".rope.scaling.original_context_length").asLong());
        }
        int ctx = m.containsKey(arch + ".context_length") ? (int) num(m, arch + ".context_length", source) : 2048;
        return new LlamaConfig(arch, dim, (int) num(m, arch + ".feed_forward_length", source), (int) num(m, arch + ".block_count", source),
                nHeads, nKv, headDim, vocab, ctx, eps, theta, ropeTypeOf(arch), scaling, !hasOutputTensor, hasQkvBias);
    }

    /** The architecture keys llama.cpp reads for this config, in the order its converters write them. */
    public Map<String, GgufValue> toGguf() {
        Map<String, GgufValue> m = new LinkedHashMap<>();
        String a = architecture;
        m.put("general.architecture", GgufValue.string(a));
        m.put(a + ".context_length", GgufValue.u32(contextLength));
        m.put(a + ".embedding_length", GgufValue.u32(dim));
        m.put(a + ".feed_forward_length", GgufValue.u32(hiddenDim));
        m.put(a + ".attention.head_count", GgufValue.u32(nHeads));
        m.put(a + ".attention.head_count_kv", GgufValue.u32(nKvHeads));
        m.put(a + ".block_count", GgufValue.u32(nLayers));
        m.put(a + ".rope.dimension_count", GgufValue.u32(headDim));
        if (headDim != dim / nHeads) {
            m.put(a + ".attention.key_length", GgufValue.u32(headDim));
            m.put(a + ".attention.value_length", GgufValue.u32(headDim));
        }
        if (a.equals("bert")) { // LayerNorm, bidirectional: the keys llama.cpp's bert loader reads
            m.put(a + ".attention.layer_norm_epsilon", GgufValue.f32(normEps));
            m.put(a + ".attention.causal", GgufValue.bool(false));
        } else {
            m.put(a + ".attention.layer_norm_rms_epsilon", GgufValue.f32(normEps));
        }
        if (ropeTheta != 10000f) m.put(a + ".rope.freq_base", GgufValue.f32(ropeTheta));
        if (ropeScaling != null) {
            m.put(a + ".rope.scaling.type", GgufValue.string("llama3"));
            m.put(a + ".rope.scaling.factor", GgufValue.f32(ropeScaling.factor()));
            m.put(a + ".rope.scaling.low_freq_factor", GgufValue.f32(ropeScaling.lowFreqFactor()));
            m.put(a + ".rope.scaling.high_freq_factor", GgufValue.f32(ropeScaling.highFreqFactor()));
            m.put(a + ".rope.scaling.original_context_length", GgufValue.u32(ropeScaling.originalContextLength()));
        }
        m.put(a + ".vocab_size", GgufValue.u32(vocabSize));
        return m;
    }

    private static String str(Map<String, GgufValue> m, String key, String source) {
        GgufValue v = m.get(key);
        if (v == null || v.type() != GgufValueType.STRING) throw new Q4jException(source + ": metadata '" + key + "' is missing");
        return v.asString();
    }

    private static long num(Map<String, GgufValue> m, String key, String source) {
        GgufValue v = m.get(key);
        if (v == null) throw new Q4jException(source + ": metadata '" + key + "' is missing");
        try {
            return v.asLong();
        } catch (IllegalStateException e) {
            throw new Q4jException(source + ": metadata '" + key + "' should be an integer, is " + v.type());
        }
    }
}
