package org.quant4j.io.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.hf.HfCheckpoint;
import org.quant4j.io.hf.HfNames;
import org.quant4j.io.safetensors.SafetensorsFile;
import org.quant4j.io.safetensors.SafetensorsWriter;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.AtomicOutput;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

/**
 * A LoRA adapter as Hugging Face PEFT saves it: a directory with {@code adapter_config.json} (peft_type LORA, r,
 * lora_alpha, target_modules) and {@code adapter_model.safetensors} holding, for every adapted linear layer,
 * <pre>
 *   base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight   (r, in)
 *   base_model.model.model.layers.N.self_attn.q_proj.lora_B.weight   (out, r)
 * </pre>
 * In memory the adapter is keyed by the GGUF weight name ({@code blk.N.attn_q.weight}) with rows in GGUF order: for
 * "llama"-style RoPE (adjacent pairs), llama.cpp's converter permutes q_proj / k_proj rows, so lora_B of q and k is
 * permuted the same way on reading and back on writing (lora_A's rows index the rank, not heads).
 *
 * <p>{@link #attach} applies a separate adapter at run time: it adds {@code <weight>.lora_a} / {@code .lora_b} tensors
 * and the scale α/r to the model, and {@link Llama} then computes x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ with W left as stored.
 *
 * @param a (r, in) per GGUF weight name, F32
 * @param b (out, r) per GGUF weight name, F32
 */
public record PeftAdapter(int rank, float alpha, List<String> targetModules, Map<String, float[]> a, Map<String, float[]> b) {
    public static final String CONFIG = "adapter_config.json";
    public static final String WEIGHTS = "adapter_model.safetensors";

    public float scaling() { return alpha / rank; }

    /** PEFT's name of a GGUF linear weight's lora_A / lora_B ("A" or "B"). */
    public static String peftName(String ggufWeight, String ab) {
        String hf = HfNames.toHf(ggufWeight);
        if (hf == null || !hf.endsWith(".weight")) throw new Q4jException("tensor " + ggufWeight + " has no Hugging Face name to adapt");
        return "base_model.model." + hf.substring(0, hf.length() - ".weight".length()) + ".lora_" + ab + ".weight";
    }

    /** Writes the directory (created if needed): adapter_config.json and adapter_model.safetensors (F32). */
    public void write(Path dir, LlamaConfig c, String baseModel) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new Q4jException(dir + ": cannot create directory: " + e.getMessage());
        }
        List<Tensor> tensors = new ArrayList<>();
        for (String w : a.keySet()) {
            float[] av = a.get(w), bv = b.get(w);
            int in = av.length / rank, out = bv.length / rank;
            tensors.add(Tensor.ofFloats(peftName(w, "A"), av, rank, in));
            tensors.add(permuteB(Tensor.ofFloats(peftName(w, "B"), bv, out, rank), w, c, false));
        }
        SafetensorsWriter.writeTensors(dir.resolve(WEIGHTS), Map.of("format", "pt"), tensors);
        ObjectNode cfg = new ObjectMapper().createObjectNode();
        cfg.put("peft_type", "LORA");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("base_model_name_or_path", baseModel);
        cfg.put("r", rank);
        cfg.put("lora_alpha", alpha);
        cfg.put("lora_dropout", 0.0);
        cfg.put("bias", "none");
        cfg.put("fan_in_fan_out", false);
        cfg.put("inference_mode", true);
        cfg.put("init_lora_weights", true);
        ArrayNode mods = cfg.putArray("target_modules");
        for (String m : targetModules) mods.add(m);
        try {
            byte[] json = new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(cfg);
            AtomicOutput.write(dir.resolve(CONFIG), ch -> ch.write(ByteBuffer.wrap(json)));
        } catch (IOException e) {
            throw new Q4jException(dir.resolve(CONFIG) + ": cannot write: " + e.getMessage());
        }
    }

    /** Reads a PEFT LoRA directory for a model of config {@code c}; every lora_A needs its lora_B. */
    public static PeftAdapter read(Path dir, LlamaConfig c) {
        Path cfgFile = dir.resolve(CONFIG), weights = dir.resolve(WEIGHTS);
        JsonNode cfg;
        try {
            cfg = new ObjectMapper().readTree(Files.readString(cfgFile, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new Q4jException(cfgFile + ": cannot read: " + e.getMessage());
        }
        if (!"LORA".equals(cfg.path("peft_type").asText("LORA"))) throw new Q4jException(cfgFile + ": peft_type " + cfg.get("peft_type") + " is not LORA");
        if (!cfg.has("r") || !cfg.has("lora_alpha")) throw new Q4jException(cfgFile + ": needs r and lora_alpha");
        if (cfg.path("fan_in_fan_out").asBoolean(false)) throw new Q4jException(cfgFile + ": fan_in_fan_out adapters (GPT-2 Conv1D) are not supported");
        int rank = cfg.get("r").asInt();
        float alpha = (float) cfg.get("lora_alpha").asDouble();
        List<String> modules = new ArrayList<>();
        cfg.path("target_modules").forEach(n -> modules.add(n.asText()));
        Map<String, float[]> a = new LinkedHashMap<>(), b = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(weights)) {
            for (int l = 0; l < c.nLayers(); l++) {
                for (String w : List.of(Model.attnQ(l), Model.attnK(l), Model.attnV(l), Model.attnOutput(l), Model.ffnGate(l), Model.ffnUp(l), Model.ffnDown(l))) {
                    String na = peftName(w, "A"), nb = peftName(w, "B");
                    // PEFT writes "...lora_A.weight"; older versions also "...lora_A.default.weight"
                    if (!f.has(na) && f.has(na.replace(".weight", ".default.weight"))) { na = na.replace(".weight", ".default.weight"); nb = nb.replace(".weight", ".default.weight"); }
                    if (!f.has(na) && !f.has(nb)) continue;
                    if (!f.has(na) || !f.has(nb)) throw new Q4jException(weights + ": " + (f.has(na) ? nb : na) + " is missing (each lora_A needs its lora_B)");
                    Tensor ta = f.tensor(na), tb = f.tensor(nb);
                    if (ta.rank() != 2 || ta.dim(0) != rank || tb.rank() != 2 || tb.dim(1) != rank) {
                        throw new Q4jException(weights + ": " + na + " " + Arrays.toString(ta.shape()) + " / " + nb + " " + Arrays.toString(tb.shape()) + " do not have rank r=" + rank);
                    }
                    a.put(w, MatMul.toFloats(ta));
                    b.put(w, MatMul.toFloats(permuteB(tb, w, c, true)));
                }
            }
        }
        if (a.isEmpty()) throw new Q4jException(weights + ": no LoRA tensors for a " + c.nLayers() + "-layer Llama model");
        return new PeftAdapter(rank, alpha, modules, a, b);
    }

    /** lora_B of q / k between HF row order and GGUF's (adjacent-pair RoPE models only); others unchanged. */
    private static Tensor permuteB(Tensor bt, String weight, LlamaConfig c, boolean toGguf) {
        if (c.ropeType() == LlamaConfig.RopeType.NEOX) return bt;
        if (weight.endsWith(".attn_q.weight")) return HfCheckpoint.permute(bt, c.nHeads(), toGguf).withName(bt.name());
        if (weight.endsWith(".attn_k.weight")) return HfCheckpoint.permute(bt, c.nKvHeads(), toGguf).withName(bt.name());
        return bt;
    }

    /** {@code base} with the PEFT adapter in {@code dir} applied at run time, or {@code base} itself when dir is null. */
    public static Model attach(Model base, Path dir) {
        return dir == null ? base : read(dir, base.config()).attach(base);
    }

    /**
     * The base model with this adapter applied at run time: each adapted weight W (kept in its storage type) gains
     * F32 tensors {@code W.lora_a} (r, in) and {@code W.lora_b} (out, r), and the metadata the scale α/r.
     */
    public Model attach(Model base) {
        Map<String, Tensor> extra = new LinkedHashMap<>();
        for (String w : a.keySet()) {
            Tensor t = base.tensor(w);
            int in = (int) t.cols(), out = (int) t.rows();
            if (a.get(w).length != rank * in || b.get(w).length != out * rank) {
                throw new Q4jException(base.source() + ": tensor " + w + " is " + out + "×" + in + ", the adapter's A/B do not fit it at rank " + rank);
            }
            extra.put(w + Llama.LORA_A, Tensor.ofFloats(w + Llama.LORA_A, a.get(w), rank, in));
            extra.put(w + Llama.LORA_B, Tensor.ofFloats(w + Llama.LORA_B, b.get(w), out, rank));
        }
        return base.withTensors(extra).withMetadata(Map.of(Llama.LORA_SCALING_KEY, GgufValue.f32(scaling())));
    }
}
