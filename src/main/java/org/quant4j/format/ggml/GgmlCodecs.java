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
