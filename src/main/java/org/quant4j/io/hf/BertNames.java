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

    private static final Pattern BLOCK = Pattern.compile("^blk\\.(\\d+)\\.(\\w+)\\.(weight|bias)$");

    /** The Hugging Face name of a llama.cpp bert tensor (the inverse of {@link #toGguf}), or null. */
    public static String toHf(String gguf) {
        switch (gguf) {
            case "token_embd.weight": return "embeddings.word_embeddings.weight";
            case "position_embd.weight": return "embeddings.position_embeddings.weight";
            case "token_types.weight": return "embeddings.token_type_embeddings.weight";
            case "token_embd_norm.weight": return "embeddings.LayerNorm.weight";
            case "token_embd_norm.bias": return "embeddings.LayerNorm.bias";
            default: break;
        }
        Matcher m = BLOCK.matcher(gguf);
        if (!m.matches()) return null;
        String what = switch (m.group(2)) {
            case "attn_q" -> "attention.self.query";
            case "attn_k" -> "attention.self.key";
            case "attn_v" -> "attention.self.value";
            case "attn_output" -> "attention.output.dense";
            case "attn_output_norm" -> "attention.output.LayerNorm";
            case "ffn_up" -> "intermediate.dense";
            case "ffn_down" -> "output.dense";
            case "layer_output_norm" -> "output.LayerNorm";
            default -> null;
        };
        return what == null ? null : "encoder.layer." + m.group(1) + "." + what + "." + m.group(3);
    }

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
