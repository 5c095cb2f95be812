package org.quant4j.method.kquant;

import org.quant4j.format.GgmlType;

/**
 * llama.cpp's per-tensor choice of type inside a file-type mix ({@code llama_tensor_get_type} in llama-quant.cpp), for
 * dense Llama-family models: which tensors get more bits than the file type's default, and the fallback for rows that do
 * not divide into the chosen type's blocks. Tensors must be offered in llama.cpp's order (see {@link #llamaOrder}),
 * because the attn_v / ffn_down rules count how many they have seen.
 *
 * <p>Not covered: mixture-of-experts rules, Falcon, and the IQ1/IQ2/IQ3 file types (quant4j does not encode them).
 */
public final class TensorTypeRules {
    private final LlamaFileType ftype;
    private final int nLayers;      // n_layer: the count of ffn_down / ffn_gate / ffn_up tensors
    private final int nAttentionWv; // how many attn_v tensors the model has
    private final int nGqa;         // n_head / n_head_kv
    private final boolean hasOutput;  // false when the output head is the token embedding
    private final boolean hasImatrix;
    private final boolean is70B;    // llama.cpp's LLM_TYPE_70B: 80 layers with grouped-query attention

    private int iAttentionWv, iFfnDown;
    private int fallbacks;

    public TensorTypeRules(LlamaFileType ftype, int nLayers, int nAttentionWv, int nGqa, boolean hasOutput, boolean hasImatrix, boolean is70B) {
        this.ftype = ftype;
        this.nLayers = nLayers;
        this.nAttentionWv = nAttentionWv;
        this.nGqa = nGqa;
        this.hasOutput = hasOutput;
        this.hasImatrix = hasImatrix;
        this.is70B = is70B;
    }

    /** How many tensors fell back to another type because their rows do not divide into blocks. */
    public int fallbacks() { return fallbacks; }

    /** llama.cpp's "use more bits" layers: the first and last eighth, and every third layer between. */
    static boolean useMoreBits(int layer, int nLayers) {
        return layer < nLayers / 8 || layer >= 7 * nLayers / 8 || (layer - nLayers / 8) % 3 == 2;
    }

    /**
     * The type of tensor {@code name} whose rows hold {@code cols} values, starting from {@code newType} (the file type's
     * default), and a record of the fallback when the rows do not divide into its blocks.
     */
    public GgmlType choose(String name, long cols, GgmlType newType, GgmlType outputTypeOverride, GgmlType tokenEmbeddingOverride) {
        LlamaFileType f = ftype;
        if (name.equals("output.weight") || (!hasOutput && name.equals("token_embd.weight"))) {
            if (outputTypeOverride != null) {
                newType = outputTypeOverride;
            } else if (cols % newType.blockSize() != 0) {
                newType = GgmlType.Q8_0;
            } else if (newType != GgmlType.Q8_0) {
                newType = GgmlType.Q6_K;
            }
        } else if (name.equals("token_embd.weight")) {
            if (tokenEmbeddingOverride != null) newType = tokenEmbeddingOverride;
            else if (f == LlamaFileType.TQ1_0 || f == LlamaFileType.TQ2_0) newType = GgmlType.Q4_K;
        } else if (name.contains("attn_v.weight")) {
            if (f == LlamaFileType.Q2_K) newType = nGqa >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
            else if (f == LlamaFileType.Q2_K_S && nGqa >= 4) newType = GgmlType.Q4_K;
            else if (f == LlamaFileType.Q3_K_M) newType = iAttentionWv < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
            else if (f == LlamaFileType.Q3_K_L) newType = GgmlType.Q5_K;
            else if ((f == LlamaFileType.IQ4_NL || f == LlamaFileType.IQ4_XS) && nGqa >= 4) newType = GgmlType.Q5_K;
            else if ((f == LlamaFileType.Q4_K_M || f == LlamaFileType.Q5_K_M) && useMoreBits(iAttentionWv, nAttentionWv)) newType = GgmlType.Q6_K;
            else if (f == LlamaFileType.Q4_K_S && iAttentionWv < 4) newType = GgmlType.Q5_K;
            if (is70B && (newType == GgmlType.Q3_K || newType == GgmlType.Q4_K)) newType = GgmlType.Q5_K;
            ++iAttentionWv;
        } else if (name.contains("ffn_down")) {
            int layer = iFfnDown, n = nLayers;
            if (f == LlamaFileType.Q2_K) newType = GgmlType.Q3_K;
            else if (f == LlamaFileType.Q2_K_S) { if (layer < n / 8) newType = GgmlType.Q4_K; }
            else if (f == LlamaFileType.Q3_K_M) newType = layer < n / 16 ? GgmlType.Q5_K : GgmlType.Q4_K; // (not Falcon)
            else if (f == LlamaFileType.Q3_K_L) newType = GgmlType.Q5_K;
            else if (f == LlamaFileType.Q4_K_M) { if (useMoreBits(layer, n)) newType = GgmlType.Q6_K; }
            else if (layer < n / 8 && (f == LlamaFileType.IQ4_NL || f == LlamaFileType.IQ4_XS) && !hasImatrix) newType = GgmlType.Q5_K;
            else if (f == LlamaFileType.Q5_K_M && useMoreBits(layer, n)) newType = GgmlType.Q6_K;
            else if (f == LlamaFileType.Q4_K_S && layer < n / 8) newType = GgmlType.Q5_K;
            else if ((f == LlamaFileType.Q4_0 || f == LlamaFileType.Q5_0) && hasImatrix && layer < n / 8) {
                newType = f == LlamaFileType.Q4_0 ? GgmlType.Q4_1 : GgmlType.Q5_1;
            }
            ++iFfnDown;
        } else if (name.contains("attn_output.weight")) {
            if (f == LlamaFileType.Q2_K) newType = GgmlType.Q3_K;
            else if (f == LlamaFileType.Q3_K_M) newType = GgmlType.Q4_K;
            else if (f == LlamaFileType.Q3_K_L) newType = GgmlType.Q5_K;
        }
        // ffn_gate / ffn_up / attn_q / attn_k: only the IQ1/IQ2/IQ3 mixes change them

        if (cols % newType.blockSize() != 0) {
            GgmlType fallback = switch (newType) {
                case TQ1_0, TQ2_0 -> GgmlType.Q4_0;
                case Q2_K, Q3_K, IQ4_XS -> GgmlType.IQ4_NL;
                case Q4_K -> GgmlType.Q5_0;
                case Q5_K -> GgmlType.Q5_1;
                case Q6_K -> GgmlType.Q8_0;
                default -> throw new org.quant4j.util.Q4jException("tensor " + name + ": rows of " + cols
                        + " values do not divide into " + newType + " blocks of " + newType.blockSize());
            };
            if (cols % fallback.blockSize() != 0) fallback = GgmlType.F16;
            newType = fallback;
            ++fallbacks;
        }
        return newType;
    }

    /**
     * llama.cpp's tensor order ({@code weight_name_comparer}): tensors outside blocks first, then block by block,
     * by name within each.
     */
    public static int llamaOrder(String a, String b) {
        int la = layerOf(a), lb = layerOf(b);
        if (la != lb) return Integer.compare(la, lb);
        return a.compareTo(b);
    }

    /** The block number in "blk.N.…", or -1. */
    static int layerOf(String name) {
        if (!name.startsWith("blk.")) return -1;
        int end = name.indexOf('.', 4);
        if (end < 0) return -1;
        try {
            return Integer.parseInt(name.substring(4, end));
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
