package org.quant4j.io.hf;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tensor names of Hugging Face Llama-family checkpoints (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) and
 * their llama.cpp GGUF names, as gguf-py's tensor_mapping.py pairs them:
 * <pre>
 *   model.embed_tokens.weight                         token_embd.weight
 *   model.norm.weight                                 output_norm.weight
 *   lm_head.weight                                    output.weight
 *   model.layers.N.input_layernorm.weight             blk.N.attn_norm.weight
 *   model.layers.N.self_attn.q_proj.{weight,bias}     blk.N.attn_q.{weight,bias}
 *   model.layers.N.self_attn.k_proj.{weight,bias}     blk.N.attn_k.{weight,bias}
 *   model.layers.N.self_attn.v_proj.{weight,bias}     blk.N.attn_v.{weight,bias}
 *   model.layers.N.self_attn.o_proj.{weight,bias}     blk.N.attn_output.{weight,bias}
 *   model.layers.N.post_attention_layernorm.weight    blk.N.ffn_norm.weight
 *   model.layers.N.mlp.gate_proj.{weight,bias}        blk.N.ffn_gate.{weight,bias}
 *   model.layers.N.mlp.up_proj.{weight,bias}          blk.N.ffn_up.{weight,bias}
 *   model.layers.N.mlp.down_proj.{weight,bias}        blk.N.ffn_down.{weight,bias}
 * </pre>
 */
public final class HfNames {
    private HfNames() {}

    private static final Map<String, String> GLOBAL_HF_TO_GGUF = Map.of(
            "model.embed_tokens.weight", "token_embd.weight",
            "model.norm.weight", "output_norm.weight",
            "lm_head.weight", "output.weight");

    /** Per-layer name suffixes without ".weight" / ".bias", HF to GGUF, in transformers' module order. */
    private static final Map<String, String> LAYER_HF_TO_GGUF = new LinkedHashMap<>();

    static {
        LAYER_HF_TO_GGUF.put("self_attn.q_proj", "attn_q");
        LAYER_HF_TO_GGUF.put("self_attn.k_proj", "attn_k");
        LAYER_HF_TO_GGUF.put("self_attn.v_proj", "attn_v");
        LAYER_HF_TO_GGUF.put("self_attn.o_proj", "attn_output");
        LAYER_HF_TO_GGUF.put("mlp.gate_proj", "ffn_gate");
        LAYER_HF_TO_GGUF.put("mlp.up_proj", "ffn_up");
        LAYER_HF_TO_GGUF.put("mlp.down_proj", "ffn_down");
        LAYER_HF_TO_GGUF.put("input_layernorm", "attn_norm");
        LAYER_HF_TO_GGUF.put("post_attention_layernorm", "ffn_norm");
    }

    private static final Pattern HF_LAYER = Pattern.compile("model\\.layers\\.(0|[1-9]\\d{0,5})\\.(.+)\\.(weight|bias|input_scale|input_transform)");
    private static final Pattern GGUF_LAYER = Pattern.compile("blk\\.(0|[1-9]\\d{0,5})\\.(.+)\\.(weight|bias|input_scale|input_transform)");

    /** The GGUF name of a Hugging Face tensor, or null if it is not a Llama-family tensor. */
    public static String toGguf(String hf) {
        String g = GLOBAL_HF_TO_GGUF.get(hf);
        if (g != null) return g;
        Matcher m = HF_LAYER.matcher(hf);
        if (!m.matches()) return null;
        String what = LAYER_HF_TO_GGUF.get(m.group(2));
        if (what == null) return null;
        if (!m.group(3).equals("weight") && (what.equals("attn_norm") || what.equals("ffn_norm"))) return null; // RMSNorm has none
        return "blk." + m.group(1) + "." + what + "." + m.group(3);
    }

    /** The Hugging Face name of a GGUF tensor, or null if it has none (rope_freqs.weight, quantization extras). */
    public static String toHf(String gguf) {
        for (Map.Entry<String, String> e : GLOBAL_HF_TO_GGUF.entrySet()) if (e.getValue().equals(gguf)) return e.getKey();
        Matcher m = GGUF_LAYER.matcher(gguf);
        if (!m.matches()) return null;
        for (Map.Entry<String, String> e : LAYER_HF_TO_GGUF.entrySet()) {
            if (e.getValue().equals(m.group(2))) {
                String hf = "model.layers." + m.group(1) + "." + e.getKey() + "." + m.group(3);
                return toGguf(hf) == null ? null : hf;
            }
        }
        return null;
    }

    /** Tensors some checkpoints carry that hold no weights (recomputed RoPE tables): skipped on load. */
    public static boolean isIgnored(String hf) {
        return hf.endsWith(".self_attn.rotary_emb.inv_freq");
    }

    /** The layer index of a {@code model.layers.N.} or {@code blk.N.} name, or -1. */
    public static int layerOf(String name) {
        Matcher m = HF_LAYER.matcher(name);
        if (m.matches()) return Integer.parseInt(m.group(1));
        m = GGUF_LAYER.matcher(name);
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** Per-layer HF module names in transformers' state-dict order (q, k, v, o, gate, up, down, the two norms). */
    static Iterable<String> layerModules() { return LAYER_HF_TO_GGUF.keySet(); }
}
