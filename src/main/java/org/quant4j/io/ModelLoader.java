package org.quant4j.io;

import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufModelReader;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.llama2c.Llama2cReader;
import org.quant4j.model.Model;
import org.quant4j.tokenizer.Llama2cTokenizer;
import org.quant4j.tokenizer.TokenizerJson;
import org.quant4j.io.hf.HfCheckpoint;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** Opens a model file of any supported format, detected from its content. */
public final class ModelLoader {
    private ModelLoader() {}

    public enum Format { GGUF, LLAMA2C, SAFETENSORS, ONNX }

    public static Format detect(Path p) {
        if (!Files.exists(p)) throw new Q4jException(p + ": no such file or directory");
        if (Files.isDirectory(p)) return Format.SAFETENSORS;
        byte[] head = new byte[8];
        try (InputStream in = Files.newInputStream(p)) {
            int n = in.readNBytes(head, 0, 8);
            if (n >= 4 && ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getInt(0) == GgufFile.MAGIC) return Format.GGUF;
        } catch (IOException e) {
            throw new Q4jException(p + ": cannot read: " + e.getMessage());
        }
        String name = p.getFileName().toString();
        if (name.endsWith(".onnx")) return Format.ONNX;
        if (name.endsWith(".safetensors") || name.endsWith(".json")) return Format.SAFETENSORS;
        if (Llama2cReader.looksLikeLlama2c(p)) return Format.LLAMA2C;
        throw new Q4jException(p + ": unrecognised model format (expected GGUF, llama2.c .bin, safetensors or ONNX)");
    }

    /**
     * Loads a model. For llama2.c checkpoints {@code tokenizer} names the tokenizer.bin; when null, a
     * {@code tokenizer.bin} or {@code tok<vocab>.bin} beside the checkpoint is used if present.
     */
    public static Model load(Path path, Path tokenizer) {
        return switch (detect(path)) {
            case GGUF -> GgufModelReader.load(path);
            case LLAMA2C -> withLlama2cTokenizer(Llama2cReader.load(path, null), path, tokenizer);
            case SAFETENSORS -> org.quant4j.io.hf.BertCheckpoint.isBert(path) ? org.quant4j.io.hf.BertCheckpoint.load(path)
                    : withTokenizerJson(HfCheckpoint.load(path));
            case ONNX -> org.quant4j.io.onnx.OnnxModelReader.load(path);
        };
    }

    public static Model load(Path path) { return load(path, null); }

    /** Adds the tokenizer from the checkpoint's tokenizer.json (if it has one) as GGUF tokenizer metadata. */
    private static Model withTokenizerJson(Model model) {
        GgufValue path = model.metadata().get(HfCheckpoint.TOKENIZER_JSON_KEY);
        if (path == null || model.metadata().containsKey("tokenizer.ggml.model")) return model;
        try {
            return model.withMetadata(TokenizerJson.toMetadata(Path.of(path.asString())));
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /**
     * Adds a llama2.c tokenizer's metadata: the one given, else {@code tok<vocab>.bin} or {@code tokenizer.bin} beside
     * the checkpoint. Without one the model loads without a tokenizer (commands that need text say so).
     */
    private static Model withLlama2cTokenizer(Model model, Path checkpoint, Path tokenizer) {
        Path tok = tokenizer;
        if (tok == null) {
            Path dir = checkpoint.toAbsolutePath().getParent();
            for (String name : new String[]{"tok" + model.config().vocabSize() + ".bin", "tokenizer.bin"}) {
                if (dir != null && Files.isRegularFile(dir.resolve(name))) { tok = dir.resolve(name); break; }
            }
        }
        if (tok == null) return model;
        try {
            Map<String, GgufValue> meta = Llama2cTokenizer.toMetadata(tok, model.config().vocabSize());
            return model.withMetadata(meta);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }
}
