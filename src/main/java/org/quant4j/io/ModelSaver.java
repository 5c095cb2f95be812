package org.quant4j.io;

import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufModelWriter;
import org.quant4j.io.llama2c.Llama2cWriter;
import org.quant4j.model.Model;
import org.quant4j.util.Q4jException;

import java.nio.file.Path;
import java.util.Locale;

/** Writes a model in any supported format. */
public final class ModelSaver {
    private ModelSaver() {}

    public enum Format {
        GGUF, LLAMA2C, SAFETENSORS;

        public static Format parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "gguf" -> GGUF;
                case "llama2c", "llama2.c", "bin" -> LLAMA2C;
                case "safetensors", "hf" -> SAFETENSORS;
                default -> throw new Q4jException("unknown output format '" + s + "' (gguf, llama2c, safetensors)");
            };
        }

        public static Format fromName(Path p) {
            String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
            if (n.endsWith(".gguf")) return GGUF;
            if (n.endsWith(".bin")) return LLAMA2C;
            return SAFETENSORS;
        }
    }

    /** Shards of at most 5 GB, as transformers' save_pretrained writes by default. */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

    public static void save(Model model, Path out, Format format, GgmlType floatType, int llama2cVersion, Path... inputs) {
        switch (format) {
            case GGUF -> GgufModelWriter.write(model, out, floatType, inputs);
            case LLAMA2C -> Llama2cWriter.write(model, out, llama2cVersion, inputs);
            case SAFETENSORS -> org.quant4j.io.hf.HfCheckpoint.save(floatType == null ? model : org.quant4j.method.cast.FloatCast.apply(model, floatType),
                    out, DEFAULT_MAX_SHARD_BYTES);
        }
    }
}
