package org.quant4j.io.hf;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hugging Face BERT tensor names ({@code embeddings.word_embeddings.weight},
 * {@code encoder.layer.3.attention.self.query.bias}, ...) ⇄ llama.cpp's {@code bert} names ({@code token_embd.weight},
 * {@code blk.3.attn_q.bias}, ...), as llama.cpp's convert_hf_to_gguf.py maps them. A {@code bert.} prefix (BertModel
 * inside a task model) and the old TensorFlow LayerNorm names {@code gamma} / {@code beta} are accepted.
 */
public final class BertNames {
    private BertNames() {}

    private static final Pattern LAYER = Pattern.compile("^encoder\\.layer\\.(\\d+)\\.(.+)\\.(weight|bias)$");

    /** The llama.cpp name of a Hugging Face BERT tensor, or null for tensors an encoder does not use (pooler, heads). */
    public static String toGguf(String hf) {
        String n = hf.startsWith("bert.") ? hf.substring(5) : hf;
        n = n.replaceAll("\\.gamma$", ".weight").replaceAll("\\.beta$", ".bias");
        switch (n) {
            case "embeddings.word_embeddings.weight": return "token_embd.weight";
            case "embeddings.position_embeddings.weight": return "position_embd.weight";
            case "embeddings.token_type_embeddings.weight": return "token_types.weight";
            case "embeddings.LayerNorm.weight": return "token_embd_norm.weight";
            case "embeddings.LayerNorm.bias": return "token_embd_norm.bias";
            default: break;
        }
        Matcher m = LAYER.matcher(n);
        if (!m.matches()) return null;
        String what = switch (m.group(2)) {
            case "attention.self.query" -> "attn_q";
            case "attention.self.key" -> "attn_k";
            case "attention.self.value" -> "attn_v";
            case "attention.output.dense" -> "attn_output";
            case "attention.output.LayerNorm" -> "attn_output_norm";
            case "intermediate.dense" -> "ffn_up";
            case "output.dense" -> "ffn_down";
            case "output.LayerNorm" -> "layer_output_norm";
            default -> null;
        };
        return what == null ? null : "blk." + m.group(1) + "." + what + "." + m.group(3);
    }
}
