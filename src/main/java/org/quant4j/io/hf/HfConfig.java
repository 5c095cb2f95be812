package org.quant4j.io.hf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.DoubleNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.quant4j.io.PyJson;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.LlamaConfig.RopeScaling;
import org.quant4j.util.AtomicOutput;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * A Hugging Face {@code config.json} of a Llama-family decoder, read into a {@link LlamaConfig} and written back.
 *
 * <p>Supported: {@code LlamaForCausalLM} (Llama 1-3, SmolLM, TinyLlama), {@code MistralForCausalLM} (both become
 * GGUF architecture "llama": llama.cpp's converter permutes their q/k rows so its adjacent-pair RoPE applies) and
 * {@code Qwen2ForCausalLM} ("qwen2": q/k/v carry biases, rows stay as they are, RoPE rotates halves: NEOX).
 * Field names and defaults follow transformers' {@code LlamaConfig}, {@code MistralConfig} and {@code Qwen2Config};
 * the sizes have no default here, since a config without them is broken rather than meant to be 4096 wide.
 * Features the forward pass does not model (other RoPE scalings, MLP or output-projection biases, sliding-window
 * attention in Qwen2, activations other than SiLU) are refused rather than silently dropped.
 *
 * @param hfArchitecture {@code architectures[0]}, e.g. "LlamaForCausalLM"
 * @param config         the hyper-parameters, with the GGUF architecture name
 * @param json           the whole parsed config.json, to write back the fields quant4j does not model
 */
public record HfConfig(String hfArchitecture, LlamaConfig config, ObjectNode json) {

    public static final String LLAMA = "LlamaForCausalLM";
    public static final String MISTRAL = "MistralForCausalLM";
    public static final String QWEN2 = "Qwen2ForCausalLM";

    static final ObjectMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    public static HfConfig read(Path configJson) {
        String text;
        try {
            text = Files.readString(configJson, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new Q4jException(configJson + ": no such file");
        } catch (IOException e) {
            throw new Q4jException(configJson + ": cannot read: " + e.getMessage(), e);
        }
        return parse(text, configJson.toString());
    }

    /** Parses config.json text; {@code source} names it in messages. */
    public static HfConfig parse(String text, String source) {
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr() + " column " + e.getLocation().getColumnNr();
            throw new Q4jException(source + ": not valid JSON" + where + ": " + String.valueOf(e.getOriginalMessage()).replaceAll("\\s+", " "), e);
        }
        if (root == null || !root.isObject()) throw new Q4jException(source + ": not a JSON object");
        ObjectNode json = (ObjectNode) root;
        Reader r = new Reader(json, source);

        String hfArch = architecture(json, source);
        String modelType = switch (hfArch) {
            case LLAMA -> "llama";
            case MISTRAL -> "mistral";
            default -> "qwen2";
        };
        boolean qwen2 = hfArch.equals(QWEN2);

        int dim = r.requiredInt("hidden_size");
        int hiddenDim = r.requiredInt("intermediate_size");
        int nLayers = r.requiredInt("num_hidden_layers");
        int nHeads = r.requiredInt("num_attention_heads");
        int nKvHeads = r.optionalInt("num_key_value_heads", hfArch.equals(MISTRAL) ? 8 : nHeads);
        int headDim = r.optionalInt("head_dim", nHeads > 0 ? dim / nHeads : 0);
        int vocabSize = r.requiredInt("vocab_size");
        int contextLength = r.optionalInt("max_position_embeddings", switch (modelType) {
            case "mistral" -> 4096 * 32;
            case "qwen2" -> 32768;
            default -> 2048;
        });
        float normEps = (float) r.optionalDouble(json, "rms_norm_eps", 1e-6);
        boolean tied = r.optionalBool("tie_word_embeddings", false);

        // RoPE: transformers < 5 writes rope_theta and rope_scaling; 5 writes both into rope_parameters.
        JsonNode ropeParameters = json.get("rope_parameters");
        JsonNode ropeHolder = ropeParameters != null && ropeParameters.isObject() ? ropeParameters : json;
        float ropeTheta = (float) r.optionalDouble(ropeHolder, "rope_theta", 10000.0);
        RopeScaling scaling = ropeScaling(ropeHolder == json ? json.get("rope_scaling") : ropeParameters, r);

        String act = json.hasNonNull("hidden_act") ? json.get("hidden_act").asText() : "silu";
        if (!act.equals("silu")) throw new Q4jException(source + ": hidden_act \"" + act + "\" is not supported (only silu)");
        if (r.optionalBool("mlp_bias", false)) throw new Q4jException(source + ": mlp_bias: true is not supported");
        if (r.optionalBool("attention_bias", false)) {
            throw new Q4jException(source + ": attention_bias: true is not supported for " + hfArch + " (it adds an o_proj bias)");
        }
        if (qwen2 && r.optionalBool("use_sliding_window", false)) {
            throw new Q4jException(source + ": use_sliding_window: true is not supported");
        }
        if (json.hasNonNull("partial_rotary_factor") && json.get("partial_rotary_factor").asDouble() != 1.0) {
            throw new Q4jException(source + ": partial_rotary_factor " + json.get("partial_rotary_factor") + " is not supported");
        }

        String ggufArch = qwen2 ? "qwen2" : "llama";
        LlamaConfig config;
        try {
            config = new LlamaConfig(ggufArch, dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize,
                    contextLength, normEps, ropeTheta, LlamaConfig.ropeTypeOf(ggufArch), scaling, tied, qwen2);
        } catch (Q4jException e) {
            throw new Q4jException(source + ": " + e.getMessage(), e);
        }
        return new HfConfig(hfArch, config, json);
    }

    private static String architecture(ObjectNode json, String source) {
        JsonNode archs = json.get("architectures");
        if (archs != null && archs.isArray() && !archs.isEmpty()) {
            String a = archs.get(0).asText();
            if (a.equals(LLAMA) || a.equals(MISTRAL) || a.equals(QWEN2)) return a;
            throw new Q4jException(source + ": architecture " + a + " is not supported (supported: " + LLAMA + ", " + MISTRAL + ", " + QWEN2 + ")");
        }
        String type = json.hasNonNull("model_type") ? json.get("model_type").asText() : "";
        return switch (type) {
            case "llama" -> LLAMA;
            case "mistral" -> MISTRAL;
            case "qwen2" -> QWEN2;
            default -> throw new Q4jException(source + ": neither \"architectures\" nor \"model_type\" names a supported model (got model_type \""
                    + type + "\"; supported: llama, mistral, qwen2)");
        };
    }

    /** rope_scaling (or rope_parameters): none, "default", or Llama-3's "llama3" frequency scaling. */
    private static RopeScaling ropeScaling(JsonNode node, Reader r) {
        if (node == null || node.isNull()) return null;
        if (!node.isObject()) throw new Q4jException(r.source + ": rope_scaling is not an object");
        JsonNode type = node.hasNonNull("rope_type") ? node.get("rope_type") : node.get("type");
        String t = type == null || type.isNull() ? "default" : type.asText();
        return switch (t) {
            case "default" -> null;
            case "llama3" -> new RopeScaling(
                    (float) r.requiredDouble(node, "factor"),
                    (float) r.requiredDouble(node, "low_freq_factor"),
                    (float) r.requiredDouble(node, "high_freq_factor"),
                    (int) r.requiredDouble(node, "original_max_position_embeddings"));
            default -> throw new Q4jException(r.source + ": rope scaling type \"" + t + "\" is not supported (only llama3)");
        };
    }

    /** Typed field access with messages that name the file and the field. */
    private record Reader(ObjectNode json, String source) {
        int requiredInt(String field) {
            if (!json.hasNonNull(field)) throw new Q4jException(source + ": " + field + " is missing");
            return toInt(json.get(field), field);
        }

        int optionalInt(String field, int fallback) {
            return json.hasNonNull(field) ? toInt(json.get(field), field) : fallback;
        }

        int toInt(JsonNode v, String field) {
            if (!v.isIntegralNumber() || !v.canConvertToInt()) {
                throw new Q4jException(source + ": " + field + " should be an integer, is " + v);
            }
            return v.intValue();
        }

        double optionalDouble(JsonNode holder, String field, double fallback) {
            return holder.hasNonNull(field) ? requiredDouble(holder, field) : fallback;
        }

        double requiredDouble(JsonNode holder, String field) {
            JsonNode v = holder.get(field);
            if (v == null || v.isNull()) throw new Q4jException(source + ": " + field + " is missing");
            if (!v.isNumber()) throw new Q4jException(source + ": " + field + " should be a number, is " + v);
            return v.doubleValue();
        }

        boolean optionalBool(String field, boolean fallback) {
            JsonNode v = json.get(field);
            if (v == null || v.isNull()) return fallback;
            if (!v.isBoolean()) throw new Q4jException(source + ": " + field + " should be true or false, is " + v);
            return v.booleanValue();
        }
    }

    // ---- writing ------------------------------------------------------------------------------------------------

    /** Writes a fresh config.json for {@code config} (LlamaForCausalLM or Qwen2ForCausalLM by its architecture). */
    public static void write(Path file, LlamaConfig config) {
        write(file, config, null, null, null);
    }

    /**
     * Writes config.json as transformers does (sorted keys, two-space indent).
     *
     * @param hfArchitecture the class to name, or null for the one the GGUF architecture implies
     * @param base           a config.json to start from (its other fields are kept), or null
     * @param torchDtype     "float32", "float16", "bfloat16", or null to leave it out
     */
    public static void write(Path file, LlamaConfig config, String hfArchitecture, ObjectNode base, String torchDtype) {
        byte[] text = toJson(config, hfArchitecture, base, torchDtype).getBytes(StandardCharsets.UTF_8);
        AtomicOutput.write(file, ch -> {
            ByteBuffer b = ByteBuffer.wrap(text);
            while (b.hasRemaining()) ch.write(b);
        });
    }

    /** The config.json text; see {@link #write(Path, LlamaConfig, String, ObjectNode, String)}. */
    public static String toJson(LlamaConfig c, String hfArchitecture, ObjectNode base, String torchDtype) {
        String arch = hfArchitectureFor(c, hfArchitecture);
        ObjectNode j = base == null ? JsonNodeFactory.instance.objectNode() : base.deepCopy();
        j.putArray("architectures").add(arch);
        j.put("model_type", switch (arch) {
            case LLAMA -> "llama";
            case MISTRAL -> "mistral";
            default -> "qwen2";
        });
        putInt(j, "hidden_size", c.dim());
        putInt(j, "intermediate_size", c.hiddenDim());
        putInt(j, "num_hidden_layers", c.nLayers());
        putInt(j, "num_attention_heads", c.nHeads());
        putInt(j, "num_key_value_heads", c.nKvHeads());
        if (c.headDim() != c.dim() / c.nHeads() || j.hasNonNull("head_dim")) putInt(j, "head_dim", c.headDim());
        putInt(j, "vocab_size", c.vocabSize());
        putInt(j, "max_position_embeddings", c.contextLength());
        putFloat(j, "rms_norm_eps", c.normEps());
        j.put("tie_word_embeddings", c.tiedEmbeddings());
        if (!j.has("hidden_act")) j.put("hidden_act", "silu");
        if (!arch.equals(QWEN2) && !j.has("attention_bias")) j.put("attention_bias", false);
        if (torchDtype != null) j.put("torch_dtype", torchDtype);

        JsonNode rp = j.get("rope_parameters");
        ObjectNode ropeHolder = rp != null && rp.isObject() ? (ObjectNode) rp : j;
        putFloat(ropeHolder, "rope_theta", c.ropeTheta());
        RopeScaling s = c.ropeScaling();
        if (ropeHolder == j) {
            if (s == null) {
                j.putNull("rope_scaling");
            } else {
                JsonNode old = j.get("rope_scaling");
                ObjectNode o = old != null && old.isObject() ? (ObjectNode) old : j.putObject("rope_scaling");
                j.set("rope_scaling", o);
                putScaling(o, s);
            }
        } else {
            if (s == null) {
                ropeHolder.put("rope_type", "default");
                for (String f : new String[]{"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) ropeHolder.remove(f);
            } else {
                putScaling(ropeHolder, s);
            }
        }
        return PyJson.dumps(j);
    }

    private static void putScaling(ObjectNode o, RopeScaling s) {
        o.put("rope_type", "llama3");
        putFloat(o, "factor", s.factor());
        putFloat(o, "low_freq_factor", s.lowFreqFactor());
        putFloat(o, "high_freq_factor", s.highFreqFactor());
        putInt(o, "original_max_position_embeddings", s.originalContextLength());
    }

    /** The class a config.json names for a LlamaConfig: the requested one if it fits the GGUF architecture. */
    static String hfArchitectureFor(LlamaConfig c, String requested) {
        return switch (c.architecture()) {
            case "llama" -> requested != null && (requested.equals(LLAMA) || requested.equals(MISTRAL)) ? requested : LLAMA;
            case "qwen2" -> QWEN2;
            default -> throw new Q4jException("architecture " + c.architecture() + " has no Hugging Face config.json writer (supported: llama, qwen2)"
                    + (c.architecture().equals("bert") ? "; write an encoder as GGUF (.gguf): groups of 32 (--group-size 32) or a llama.cpp type (--type Q8_0)" : ""));
        };
    }

    private static void putInt(ObjectNode j, String field, int v) {
        JsonNode old = j.get(field);
        if (old != null && old.isNumber() && old.doubleValue() == v) return; // keep 10000 vs 10000.0 as written
        j.put(field, v);
    }

    /** A float as its shortest decimal (1e-05, not 9.999999747378752e-06), keeping the old text if it is equal. */
    private static void putFloat(ObjectNode j, String field, float v) {
        JsonNode old = j.get(field);
        if (old != null && old.isNumber() && (float) old.doubleValue() == v) return;
        j.set(field, DoubleNode.valueOf(Double.parseDouble(Float.toString(v))));
    }
}
