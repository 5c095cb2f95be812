package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;
import org.quant4j.util.Q4jException;

/** The {@link BlockCodec} of each ggml type quant4j can write. */
public final class GgmlCodecs {
    private GgmlCodecs() {}

    /** The codec for {@code type}, or null when quant4j cannot encode it. */
    public static BlockCodec find(GgmlType type) {
        return switch (type) {
            // one line per codec: "case Q4_K -> Q4_KCodec.INSTANCE;"
            case Q4_0 -> Q4_0Codec.INSTANCE;
            case Q2_K -> Q2_KCodec.INSTANCE;
            case Q3_K -> Q3_KCodec.INSTANCE;
            case Q4_K -> Q4_KCodec.INSTANCE;
            case Q5_K -> Q5_KCodec.INSTANCE;
            case Q6_K -> Q6_KCodec.INSTANCE;
            case Q4_1 -> Q4_1Codec.INSTANCE;
            case Q5_0 -> Q5_0Codec.INSTANCE;
            case Q5_1 -> Q5_1Codec.INSTANCE;
            case Q8_0 -> Q8_0Codec.INSTANCE;
            case Q8_1 -> Q8_1Codec.INSTANCE;
            case IQ4_NL -> IQ4_NLCodec.INSTANCE;
            case IQ4_XS -> IQ4_XSCodec.INSTANCE;
            case TQ1_0 -> TQ1_0Codec.INSTANCE;
            case TQ2_0 -> TQ2_0Codec.INSTANCE;
            case F16 -> F16Codec.INSTANCE;
            case BF16 -> BF16Codec.INSTANCE;
            default -> null;
        };
    }

    /** The codec for {@code type}. @throws Q4jException when quant4j cannot encode it */
    public static BlockCodec of(GgmlType type) {
        BlockCodec c = find(type);
        if (c == null) throw new Q4jException("quant4j cannot encode ggml type " + type + " yet");
        return c;
    }
}
