package org.quant4j.io.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.io.safetensors.SafetensorsCheckpoint;
import org.quant4j.model.Bert;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.TokenizerJson;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face BERT-family checkpoint (config.json with model_type "bert", safetensors weights, optionally
 * sentence-transformers' 1_Pooling/config.json and a tokenizer.json) as a {@link Bert} model with llama.cpp names.
 */
public final class BertCheckpoint {
    private BertCheckpoint() {}

    /** Whether the config.json beside (or in) this path describes a BERT encoder. */
    public static boolean isBert(Path dirOrFile) {
        Path cfg = configFile(dirOrFile);
        if (!Files.isRegularFile(cfg)) return false;
        JsonNode j = read(cfg);
        if ("bert".equals(j.path("model_type").asText())) return true;
        for (JsonNode a : j.path("architectures")) if (a.asText().startsWith("Bert")) return true;
        return false;
    }

    private static Path configFile(Path dirOrFile) {
        Path dir = Files.isDirectory(dirOrFile) ? dirOrFile : dirOrFile.toAbsolutePath().getParent();
        return dir.resolve(HfCheckpoint.CONFIG_FILE);
    }

    private static JsonNode read(Path cfg) {
        try {
            return new ObjectMapper().readTree(cfg.toFile());
        } catch (IOException e) {
            throw new Q4jException(cfg + ": cannot read: " + e.getMessage(), e);
        }
    }

    public static Model load(Path dirOrFile) {
        Path cfg = configFile(dirOrFile);
        JsonNode j = read(cfg);
        int dim = need(j, "hidden_size", cfg), heads = need(j, "num_attention_heads", cfg);
        if (heads <= 0 || dim % heads != 0) throw new Q4jException(cfg + ": hidden_size " + dim + " does not divide into " + heads + " heads");
        String act = j.path("hidden_act").asText("gelu");
        Bert.Gelu gelu = switch (act) {
            case "gelu" -> Bert.Gelu.ERF;
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast" -> Bert.Gelu.TANH;
            default -> throw new Q4jException(cfg + ": hidden_act '" + act + "' is not supported (gelu, gelu_new)");
        };
        if (!j.path("position_embedding_type").asText("absolute").equals("absolute")) {
            throw new Q4jException(cfg + ": position_embedding_type '" + j.path("position_embedding_type").asText() + "' is not supported (absolute)");
        }
        LlamaConfig config = new LlamaConfig(Bert.ARCHITECTURE, dim, need(j, "intermediate_size", cfg), need(j, "num_hidden_layers", cfg),
                heads, heads, dim / heads, need(j, "vocab_size", cfg), need(j, "max_position_embeddings", cfg),
                (float) j.path("layer_norm_eps").asDouble(1e-12), 10000f, LlamaConfig.RopeType.NORMAL, null, false, true);
        SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dirOrFile);
        try {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : ckpt.names()) {
                String gguf = BertNames.toGguf(name);
                if (gguf != null && tensors.put(gguf, ckpt.tensor(name).withName(gguf)) != null) {
                    throw new Q4jException(ckpt.source() + ": two tensors map to " + gguf);
                }
            }
            Bert.checkTensors(config, tensors, ckpt.source().toString());
            Path weights = cfg.getParent().resolve("model.safetensors");
            Map<String, GgufValue> meta = new LinkedHashMap<>();
            meta.put("general.name", GgufValue.string(cfg.getParent().getFileName().toString()));
            meta.putAll(Bert.metadata(OnnxModelReader.poolingBeside(weights), true, gelu));
            meta.put("bert.attention.layer_norm_epsilon", GgufValue.f32(config.normEps()));
            meta.put("bert.attention.causal", GgufValue.bool(false));
            if (tensors.containsKey(Bert.TOKEN_TYPES)) meta.put("tokenizer.ggml.token_type_count", GgufValue.u32((int) tensors.get(Bert.TOKEN_TYPES).rows()));
            Path tok = cfg.getParent().resolve("tokenizer.json");
            if (Files.isRegularFile(tok)) meta.putAll(TokenizerJson.toMetadata(tok));
            return new Model(config, tensors, meta, cfg.getParent().toString(), List.of(ckpt));
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
    }

    private static int need(JsonNode j, String key, Path cfg) {
        JsonNode v = j.get(key);
        if (v == null || !v.canConvertToInt()) throw new Q4jException(cfg + ": '" + key + "' is missing or not an integer");
        return v.asInt();
    }
}
