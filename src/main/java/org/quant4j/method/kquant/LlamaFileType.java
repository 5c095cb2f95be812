package org.quant4j.method.kquant;

import org.quant4j.format.GgmlType;
import org.quant4j.util.Q4jException;

import java.util.Locale;

/**
 * llama.cpp's file types ({@code llama_ftype} in llama.h): the names {@code llama-quantize} takes, the id written as
 * {@code general.file_type}, and the ggml type most weights get. The "_S/_M/_L" mixes differ only in the per-tensor
 * rules of {@link TensorTypeRules}. Only file types whose every type quant4j can encode are listed.
 */
public enum LlamaFileType {
    F32(0, GgmlType.F32),
    F16(1, GgmlType.F16),
    Q4_0(2, GgmlType.Q4_0),
    Q4_1(3, GgmlType.Q4_1),
    Q8_0(7, GgmlType.Q8_0),
    Q5_0(8, GgmlType.Q5_0),
    Q5_1(9, GgmlType.Q5_1),
    Q2_K(10, GgmlType.Q2_K),
    Q3_K_S(11, GgmlType.Q3_K),
    Q3_K_M(12, GgmlType.Q3_K),
    Q3_K_L(13, GgmlType.Q3_K),
    Q4_K_S(14, GgmlType.Q4_K),
    Q4_K_M(15, GgmlType.Q4_K),
    Q5_K_S(16, GgmlType.Q5_K),
    Q5_K_M(17, GgmlType.Q5_K),
    Q6_K(18, GgmlType.Q6_K),
    Q2_K_S(21, GgmlType.Q2_K),
    IQ4_NL(25, GgmlType.IQ4_NL),
    IQ4_XS(30, GgmlType.IQ4_XS),
    BF16(32, GgmlType.BF16),
    TQ1_0(36, GgmlType.TQ1_0),
    TQ2_0(37, GgmlType.TQ2_0);

    /** The id llama.cpp writes as general.file_type. */
    public final int id;
    /** The type of every quantized weight the rules do not change. */
    public final GgmlType defaultType;

    LlamaFileType(int id, GgmlType defaultType) {
        this.id = id;
        this.defaultType = defaultType;
    }

    /** Whether the per-tensor rules apply (llama.cpp applies them only to quantized file types, and never with --pure). */
    public boolean isQuantized() { return defaultType.isQuantized(); }

    /** Parses a llama-quantize type name ("Q4_K_M", "q4_k_m"; "Q4_K" and "Q5_K" mean the _M mixes, "Q3_K" Q3_K_M, as llama-quantize says). */
    public static LlamaFileType parse(String name) {
        String n = name.toUpperCase(Locale.ROOT);
        switch (n) {
            case "Q3_K": return Q3_K_M;
            case "Q4_K": return Q4_K_M;
            case "Q5_K": return Q5_K_M;
            default: break;
        }
        for (LlamaFileType t : values()) if (t.name().equals(n)) return t;
        StringBuilder known = new StringBuilder();
        for (LlamaFileType t : values()) known.append(known.isEmpty() ? "" : ", ").append(t.name());
        throw new Q4jException("unknown file type '" + name + "' (known: " + known + ")");
    }

    /** The file type with this general.file_type id, or null. */
    public static LlamaFileType ofId(int id) {
        for (LlamaFileType t : values()) if (t.id == id) return t;
        return null;
    }
}
