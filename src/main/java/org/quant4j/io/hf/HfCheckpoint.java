package org.quant4j.io.hf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.quant4j.format.GgmlType;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.gguf.GgufValueType;
import org.quant4j.io.safetensors.SafetensorsCheckpoint;
import org.quant4j.io.safetensors.SafetensorsWriter;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.TokenizerJsonWriter;
import org.quant4j.util.AtomicOutput;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.*;

/**
 * Hugging Face checkpoints (config.json + safetensors, single or sharded) to and from {@link Model}.
 *
 * <p>Loading renames tensors to llama.cpp's GGUF names ({@link HfNames}) and, for the GGUF "llama" architecture
 * (Llama, Mistral, SmolLM, TinyLlama), permutes the rows of q_proj and k_proj exactly as llama.cpp's
 * convert_hf_to_gguf.py ({@code LlamaModel.permute}) does: transformers' RoPE rotates the two halves of each head
 * (row i with row i + headDim/2), llama.cpp's "llama" RoPE rotates adjacent pairs (row 2i with row 2i+1), so within
 * each head the rows are reordered {@code [0, h, 1, h+1, ..., h-1, 2h-1]} (h = headDim/2). Saving undoes it.
 * Qwen2 keeps its rows (llama.cpp runs it with NEOX RoPE, which rotates halves). Permuted tensors are new heap
 * tensors; all others stay slices of the memory-mapped shards.
 */
public final class HfCheckpoint {
    private HfCheckpoint() {}

    /** Metadata key under which {@link #load} records the absolute path of the checkpoint's tokenizer.json. */
    public static final String TOKENIZER_JSON_KEY = "quant4j.tokenizer_json";
    /** Metadata key holding the loaded config.json text, so that {@link #save} keeps the fields quant4j does not model. */
    public static final String CONFIG_JSON_KEY = "quant4j.hf_config_json";

    public static final String CONFIG_FILE = "config.json";
    /** Files beside the weights that {@link #save} copies along when the model came from a checkpoint directory. */
    private static final List<String> SIDE_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "tokenizer.model", "generation_config.json");

    // ---- load ---------------------------------------------------------------------------------------------------

    /**
     * Loads a checkpoint directory, or one of its files (a .safetensors file or the index), with config.json beside.
     * The returned Model owns the mapped shards; close it to unmap them.
     */
    public static Model load(Path dirOrFile) {
        Path dir = Files.isDirectory(dirOrFile) ? dirOrFile : dirOrFile.toAbsolutePath().getParent();
        Path configFile = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(configFile)) throw new Q4jException(dir + ": no " + CONFIG_FILE + " beside the weights");
        HfConfig hf = HfConfig.read(configFile);
        LlamaConfig config = hf.config();

        SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dirOrFile);
        try {
            QuantInfo quant = QuantInfo.of(hf.json(), configFile);
            Map<String, Tensor> tensors = tensors(ckpt, config, quant);
            Map<String, GgufValue> metadata = new LinkedHashMap<>();
            if (quant.activations() != null) metadata.put(org.quant4j.model.Llama.ACTIVATIONS_KEY, GgufValue.string(quant.activations()));
            JsonNode qcJson = hf.json().path("quantization_config");
            if (qcJson.has("kv_bits")) metadata.put(org.quant4j.model.Llama.KV_BITS_KEY, GgufValue.u32(qcJson.get("kv_bits").asInt()));
            if (qcJson.path("kv_hadamard").asBoolean(false)) metadata.put(org.quant4j.model.Llama.KV_HADAMARD_KEY, GgufValue.bool(true));
            metadata.put("general.name", GgufValue.string(modelName(hf.json(), dir)));
            Path tokenizer = dir.resolve("tokenizer.json");
            if (Files.isRegularFile(tokenizer)) {
                metadata.put(TOKENIZER_JSON_KEY, GgufValue.string(tokenizer.toAbsolutePath().normalize().toString()));
            }
            metadata.put(CONFIG_JSON_KEY, GgufValue.string(hf.json().toString()));
            return new Model(config, tensors, metadata, dir.toString(), List.of(ckpt));
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
    }

    /** Every tensor the config needs, under GGUF names and in GGUF order, q/k permuted for "llama". */
    private static Map<String, Tensor> tensors(SafetensorsCheckpoint ckpt, LlamaConfig config, QuantInfo quant) {
        List<String> expected = ggufNames(config);
        Set<String> expectedSet = new HashSet<>(expected);
        Map<String, Tensor> inputScales = new LinkedHashMap<>();
        for (String hfName : ckpt.names()) {
            if (HfNames.isIgnored(hfName)) continue;
            if (quant.gptq() != null && gptqPart(hfName) != null) hfName = gptqPart(hfName) + ".weight";
            if (quant.awq() != null && awqPart(hfName) != null) hfName = awqPart(hfName) + ".weight";
            if (hfName.endsWith(".input_scale") || hfName.endsWith(".input_transform")) {
                String g = HfNames.toGguf(hfName);
                if (g == null) throw new Q4jException(ckpt.shardOf(hfName) + ": tensor " + hfName + " is not part of a Llama-family checkpoint");
                inputScales.put(g, ckpt.tensor(hfName).withName(g));
                continue;
            }
            String g = HfNames.toGguf(hfName);
            if (g == null) {
                throw new Q4jException(ckpt.shardOf(hfName) + ": tensor " + hfName + " is not part of a Llama-family checkpoint");
            }
            if (g.equals(Model.OUTPUT) && config.tiedEmbeddings()) continue; // transformers ties lm_head to embed_tokens
            if (!expectedSet.contains(g)) {
                throw new Q4jException(ckpt.shardOf(hfName) + ": tensor " + hfName + " (" + g + ") does not fit the config ("
                        + config.nLayers() + " layers, " + (config.qkvBias() ? "" : "no ") + "q/k/v biases)");
            }
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String g : expected) {
            String hfName = HfNames.toHf(g);
            String prefix = hfName.endsWith(".weight") ? hfName.substring(0, hfName.length() - ".weight".length()) : hfName;
            if (quant.gptq() != null && !ckpt.has(hfName) && ckpt.has(prefix + ".qweight")) {
                long[] shape = expectedShape(config, g);
                QuantInfo.Gptq q = quant.gptq();
                out.put(g, GptqLayout.decode(g, q.bits(), q.groupSize(), q.symmetric(), (int) shape[0], (int) shape[1], ckpt.bytes(prefix + ".qweight"),
                        ckpt.bytes(prefix + ".qzeros"), ckpt.bytes(prefix + ".scales"), ckpt.bytes(prefix + ".g_idx")));
                continue;
            }
            if (quant.awq() != null && !ckpt.has(hfName) && ckpt.has(prefix + ".qweight")) {
                long[] shape = expectedShape(config, g);
                out.put(g, AwqLayout.decode(g, quant.awq().groupSize(), (int) shape[0], (int) shape[1], ckpt.bytes(prefix + ".qweight"),
                        ckpt.bytes(prefix + ".qzeros"), ckpt.bytes(prefix + ".scales")));
                continue;
            }
            if (!ckpt.has(hfName)) {
                throw new Q4jException(ckpt.source() + ": tensor " + hfName + " (" + g + ") is missing"
                        + (g.equals(Model.OUTPUT) ? " (config.json says tie_word_embeddings: false)" : ""));
            }
            out.put(g, quant.storage().containsKey(hfName) ? quantized(ckpt, hfName, g, quant.storage().get(hfName), config)
                    : ckpt.tensor(hfName).withName(g));
        }
        Model.checkTensors(config, out, ckpt.source().toString());
        out.putAll(inputScales);
        if (config.architecture().equals("llama")) {
            for (int l = 0; l < config.nLayers(); l++) {
                permuteInPlace(out, Model.attnQ(l), config.nHeads(), true);
                permuteInPlace(out, Model.attnK(l), config.nKvHeads(), true);
                permuteInPlace(out, Model.blk(l, "attn_q.bias"), config.nHeads(), true);
                permuteInPlace(out, Model.blk(l, "attn_k.bias"), config.nKvHeads(), true);
            }
        }
        return out;
    }

    /** "model.layers.0.self_attn.q_proj" for "model.layers.0.self_attn.q_proj.qweight" (and qzeros, scales, g_idx), else null. */
    private static String gptqPart(String hfName) {
        for (String suffix : GptqLayout.SUFFIXES) {
            if (hfName.endsWith("." + suffix)) return hfName.substring(0, hfName.length() - suffix.length() - 1);
        }
        return null;
    }

    /** "model.layers.0.self_attn.q_proj" for "model.layers.0.self_attn.q_proj.qweight" (and qzeros, scales), else null. */
    private static String awqPart(String hfName) {
        for (String suffix : AwqLayout.SUFFIXES) {
            if (hfName.endsWith("." + suffix)) return hfName.substring(0, hfName.length() - suffix.length() - 1);
        }
        return null;
    }

    private static void permuteInPlace(Map<String, Tensor> tensors, String name, int nHead, boolean toGguf) {
        Tensor t = tensors.get(name);
        if (t != null) tensors.put(name, permute(t, nHead, toGguf));
    }

    /**
     * The GGUF names a config needs, in the order llama.cpp's converters write them: token_embd, output_norm, output,
     * then per block attn_q, attn_k, attn_v (each followed by its bias), attn_output, attn_norm, ffn_gate, ffn_down,
     * ffn_up, ffn_norm.
     */
    static List<String> ggufNames(LlamaConfig c) {
        List<String> names = new ArrayList<>(List.of(Model.TOKEN_EMBD, Model.OUTPUT_NORM));
        if (!c.tiedEmbeddings()) names.add(Model.OUTPUT);
        for (int l = 0; l < c.nLayers(); l++) {
            for (String w : new String[]{"attn_q", "attn_k", "attn_v"}) {
                names.add(Model.blk(l, w + ".weight"));
                if (c.qkvBias()) names.add(Model.blk(l, w + ".bias"));
            }
            names.addAll(List.of(Model.attnOutput(l), Model.attnNorm(l), Model.ffnGate(l), Model.ffnDown(l), Model.ffnUp(l), Model.ffnNorm(l)));
        }
        return names;
    }

    /** The HF names a config needs, in transformers' state-dict order (module registration order). */
    static List<String> hfNames(LlamaConfig c) {
        List<String> names = new ArrayList<>(List.of("model.embed_tokens.weight"));
        for (int l = 0; l < c.nLayers(); l++) {
            for (String module : HfNames.layerModules()) {
                names.add("model.layers." + l + "." + module + ".weight");
                boolean qkv = module.equals("self_attn.q_proj") || module.equals("self_attn.k_proj") || module.equals("self_attn.v_proj");
                if (qkv && c.qkvBias()) names.add("model.layers." + l + "." + module + ".bias");
            }
        }
        names.add("model.norm.weight");
        if (!c.tiedEmbeddings()) names.add("lm_head.weight");
        return names;
    }

    /**
     * quant4j's quantization_config in config.json:
     * <pre>
     *   "quantization_config": {"quant_method": "quant4j", "format": "int-groups",
     *                           "activations": "int8-static" (optional),
     *                           "tensors": {"model.layers.0.self_attn.q_proj.weight": "INT4A_G32", ...}}
     * </pre>
     * Each listed tensor is stored as U8 [rows, bytes per row] holding {@link IntQuantType}'s groups (f16 scale, int8
     * zero point when asymmetric, packed codes); its shape in values comes from the model config.
     */
    record QuantInfo(Map<String, String> storage, String activations, Gptq gptq, Awq awq) {
        /** A "quant_method": "gptq" checkpoint's layout ({@link GptqLayout}). */
        record Gptq(int bits, int groupSize, boolean symmetric) {}

        /** A "quant_method": "awq", "version": "gemm" checkpoint's layout ({@link AwqLayout}). */
        record Awq(int groupSize) {}

        QuantInfo(Map<String, String> storage, String activations) { this(storage, activations, null, null); }

        static QuantInfo of(ObjectNode json, Path source) {
            JsonNode qc = json.get("quantization_config");
            if (qc != null && "gptq".equals(qc.path("quant_method").asText())) {
                String format = qc.path("checkpoint_format").asText("gptq");
                if (!format.equals("gptq")) throw new Q4jException(source + ": GPTQ checkpoint_format '" + format + "' is not supported (only \"gptq\", v1)");
                // desc_act (act-order) checkpoints load when their g_idx is c / group_size (static groups); GptqLayout checks
                return new QuantInfo(Map.of(), null, new Gptq(qc.path("bits").asInt(4), qc.path("group_size").asInt(-1), qc.path("sym").asBoolean(true)), null);
            }
            if (qc != null && "awq".equals(qc.path("quant_method").asText())) {
                // transformers' AwqConfig names: bits (AutoAWQ's own files: w_bit), group_size (q_group_size), zero_point, version
                int bits = qc.has("bits") ? qc.path("bits").asInt() : qc.path("w_bit").asInt(4);
                int groupSize = qc.has("group_size") ? qc.path("group_size").asInt() : qc.path("q_group_size").asInt(128);
                String version = qc.path("version").asText("gemm").toLowerCase(java.util.Locale.ROOT);
                if (bits != 4) throw new Q4jException(source + ": AWQ with " + bits + " bits is not supported (the GEMM layout is 4-bit)");
                if (!version.equals("gemm")) throw new Q4jException(source + ": AWQ version '" + version + "' is not supported (only \"gemm\")");
                if (!qc.path("zero_point").asBoolean(true)) throw new Q4jException(source + ": AWQ without zero points is not supported (the GEMM layout has them)");
                return new QuantInfo(Map.of(), null, null, new Awq(groupSize));
            }
            if (qc == null || !"quant4j".equals(qc.path("quant_method").asText())) {
                if (qc != null && qc.has("quant_method")) {
                    throw new Q4jException(source + ": quantization_config.quant_method '" + qc.path("quant_method").asText()
                            + "' is not supported yet (quant4j reads its own quantized checkpoints)");
                }
                return new QuantInfo(Map.of(), null);
            }
            Map<String, String> storage = new LinkedHashMap<>();
            qc.path("tensors").fields().forEachRemaining(e -> storage.put(e.getKey(), e.getValue().asText()));
            String act = qc.hasNonNull("activations") ? qc.get("activations").asText() : null;
            return new QuantInfo(storage, act);
        }

        static ObjectNode addTo(ObjectNode base, Map<String, String> storage, GgufValue activations) {
            if (storage.isEmpty() && activations == null) {
                if (base != null && base.has("quantization_config")) base = base.deepCopy().without("quantization_config");
                return base;
            }
            ObjectNode out = base == null ? HfConfig.JSON.createObjectNode() : base.deepCopy();
            ObjectNode qc = out.putObject("quantization_config");
            qc.put("quant_method", "quant4j");
            qc.put("format", "int-groups");
            if (activations != null) qc.put("activations", activations.asString());
            ObjectNode t = qc.putObject("tensors");
            storage.forEach(t::put);
            return out;
        }
    }

    private static Tensor quantized(SafetensorsCheckpoint ckpt, String hfName, String gguf, String storageName, LlamaConfig config) {
        IntQuantType type;
        try {
            type = IntQuantType.parse(storageName);
        } catch (IllegalArgumentException e) {
            throw new Q4jException(ckpt.source() + ": tensor " + hfName + ": " + e.getMessage());
        }
        long[] shape = expectedShape(config, gguf);
        java.lang.foreign.MemorySegment bytes = ckpt.bytes(hfName);
        long need = shape[0] * type.rowBytes(shape[1]);
        if (bytes.byteSize() != need) {
            throw new Q4jException(ckpt.shardOf(hfName) + ": tensor " + hfName + ": " + bytes.byteSize() + " bytes, but " + storageName + " "
                    + java.util.Arrays.toString(shape) + " needs " + need);
        }
        return new Tensor(gguf, type, shape, bytes);
    }

    /** The [rows, cols] a config gives a weight. */
    private static long[] expectedShape(LlamaConfig c, String gguf) {
        String what = gguf.replaceFirst("^blk\\.\\d+\\.", "");
        return switch (what) {
            case "attn_q.weight" -> new long[]{c.qDim(), c.dim()};
            case "attn_k.weight", "attn_v.weight" -> new long[]{c.kvDim(), c.dim()};
            case "attn_output.weight" -> new long[]{c.dim(), c.qDim()};
            case "ffn_gate.weight", "ffn_up.weight" -> new long[]{c.hiddenDim(), c.dim()};
            case "ffn_down.weight" -> new long[]{c.dim(), c.hiddenDim()};
            case "token_embd.weight", "output.weight" -> new long[]{c.vocabSize(), c.dim()};
            default -> throw new Q4jException("tensor " + gguf + " cannot be stored quantized");
        };
    }

    private static String modelName(ObjectNode json, Path dir) {
        JsonNode n = json.get("_name_or_path");
        if (n != null && n.isTextual() && !n.textValue().isBlank()) {
            String s = n.textValue();
            return s.substring(s.lastIndexOf('/') + 1);
        }
        Path name = dir.toAbsolutePath().normalize().getFileName();
        return name == null ? "model" : name.toString();
    }

    // ---- the q/k row permutation --------------------------------------------------------------------------------

    /**
     * llama.cpp's {@code LlamaModel.permute(w, n_head, n_head)} for q (pass nHeads) and k (pass nKvHeads), on the
     * first dimension of a weight {@code [nHead * headDim, in]} or a bias {@code [nHead * headDim]}:
     * <pre>
     *   w.reshape(n_head, 2, rows / n_head / 2, *rest).swapaxes(1, 2).reshape(w.shape)
     * </pre>
     * so GGUF row {@code head*headDim + 2i + j} is HF row {@code head*headDim + j*headDim/2 + i}. With
     * {@code toGguf=false} it is undone. Works for any storage type, since it moves whole rows. The result is a new
     * heap tensor.
     */
    public static Tensor permute(Tensor t, int nHead, boolean toGguf) {
        long rows = t.dim(0);
        if (nHead <= 0 || rows % (2L * nHead) != 0) {
            throw new Q4jException("tensor " + t.name() + ": " + rows + " rows do not split into " + nHead + " heads of pairs");
        }
        long rowBytes = t.data().byteSize() / Math.max(1, rows);
        long headRows = rows / nHead;   // headDim
        long half = headRows / 2;
        MemorySegment src = t.data();
        MemorySegment dst = allocate(src.byteSize());
        for (long h = 0; h < nHead; h++) {
            for (long i = 0; i < half; i++) {
                for (long j = 0; j < 2; j++) {
                    long ggufRow = h * headRows + 2 * i + j;
                    long hfRow = h * headRows + j * half + i;
                    long from = toGguf ? hfRow : ggufRow;
                    long to = toGguf ? ggufRow : hfRow;
                    MemorySegment.copy(src, from * rowBytes, dst, to * rowBytes, rowBytes);
                }
            }
        }
        return new Tensor(t.name(), t.type(), t.shape(), dst);
    }

    private static MemorySegment allocate(long bytes) {
        if (bytes <= Integer.MAX_VALUE - 16) return MemorySegment.ofArray(new byte[(int) bytes]);
        return Arena.ofAuto().allocate(bytes, 64);
    }

    // ---- save ---------------------------------------------------------------------------------------------------

    /**
     * Writes {@code model} into {@code dir} as a checkpoint transformers loads: config.json, and model.safetensors or
     * shards of at most {@code maxShardBytes} of tensor data with model.safetensors.index.json (0 or less: one file).
     * Tensors must be F32, F16, BF16 (or another type safetensors stores unchanged); "llama" q/k rows are put back in
     * HF order; tied models get no lm_head. Tokenizer files beside the tokenizer.json the model was loaded with are
     * copied along; a model whose tokenizer is GGUF metadata (from GGUF or llama2.c) gets a tokenizer.json and
     * tokenizer_config.json written from it ({@link TokenizerJsonWriter}).
     *
     * @return the files written
     */
    public static List<Path> save(Model model, Path dir, long maxShardBytes) {
        return save(model, dir, maxShardBytes, Layout.QUANT4J);
    }

    /** How integer-group weights are written: quant4j's own groups, or the Hugging Face GPTQ layout ({@link GptqLayout}). */
    public enum Layout { QUANT4J, GPTQ, AWQ }

    public static List<Path> save(Model model, Path dir, long maxShardBytes, Layout layout) {
        // the HF layouts re-encode every quantized weight: each encoding goes to a temporary file as it is made, so the
        // heap holds one weight's encoding, not the whole checkpoint's
        try (EncodedSpill spill = layout == Layout.QUANT4J ? null : new EncodedSpill(dir)) {
            return save(model, dir, maxShardBytes, layout, spill);
        }
    }

    /** An append-only temporary file in the output directory whose regions are mapped back read-only; deleted on close. */
    private static final class EncodedSpill implements AutoCloseable {
        private final Path file;
        private final FileChannel channel;
        private final Arena arena = Arena.ofShared();
        private long end;

        EncodedSpill(Path dir) {
            try {
                Files.createDirectories(dir);
                file = Files.createTempFile(dir, ".quant4j-encoded-", ".tmp");
                file.toFile().deleteOnExit();
                channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
            } catch (IOException e) {
                throw new Q4jException(dir + ": cannot create a temporary file for the encoded weights: " + e.getMessage(), e);
            }
        }

        List<SafetensorsWriter.Entry> keep(List<SafetensorsWriter.Entry> entries) {
            List<SafetensorsWriter.Entry> out = new ArrayList<>();
            try {
                for (SafetensorsWriter.Entry e : entries) {
                    long at = end, n = e.byteSize();
                    var buf = e.data().asByteBuffer();
                    while (buf.hasRemaining()) at += channel.write(buf, at);
                    MemorySegment mapped = n == 0 ? e.data() : channel.map(FileChannel.MapMode.READ_ONLY, end, n, arena);
                    end += n;
                    out.add(new SafetensorsWriter.Entry(e.name(), e.dtype(), e.shape(), mapped));
                }
            } catch (IOException ex) {
                throw new Q4jException(file + ": cannot write encoded weights: " + ex.getMessage(), ex);
            }
            return out;
        }

        @Override public void close() {
            try { channel.close(); } catch (IOException ignored) { }
            arena.close();
            try { Files.deleteIfExists(file); } catch (IOException ignored) { }
        }
    }

    private static List<Path> save(Model model, Path dir, long maxShardBytes, Layout layout, EncodedSpill spill) {
        LlamaConfig config = model.config();
        String requestedArch = null;
        ObjectNode base = null;
        GgufValue configJson = model.metadata().get(CONFIG_JSON_KEY);
        if (configJson != null && configJson.type() == GgufValueType.STRING) {
            try {
                JsonNode n = HfConfig.JSON.readTree(configJson.asString());
                if (n instanceof ObjectNode o) {
                    base = o;
                    JsonNode archs = o.get("architectures");
                    if (archs != null && archs.isArray() && !archs.isEmpty()) requestedArch = archs.get(0).asText();
                }
            } catch (JsonProcessingException e) {
                base = null; // a damaged copy: write a fresh config
            }
        }
        String hfArch = HfConfig.hfArchitectureFor(config, requestedArch);
        if (!hfArch.equals(requestedArch)) base = null; // the recorded config is of another architecture

        Path[] inputs = refuseOwnSource(model, dir);
        // a tokenizer in GGUF form (from a GGUF or llama2.c model) becomes tokenizer.json, unless the originals are copied
        TokenizerJsonWriter.Documents tokenizer = model.metadata().containsKey("tokenizer.ggml.model") && !hasTokenizerJson(model)
                ? TokenizerJsonWriter.build(model.metadata(), dir.resolve(TokenizerJsonWriter.TOKENIZER_FILE).toString()) : null;

        Map<String, Tensor> byHfName = new HashMap<>();
        for (Tensor t : model.tensors().values()) {
            if (t.name().equals("rope_freqs.weight")) continue; // llama.cpp's precomputed llama3 factors: config.json has them
            if (t.name().equals(Model.OUTPUT) && config.tiedEmbeddings()) continue;
            String hfName = HfNames.toHf(t.name());
            if (hfName == null) throw new Q4jException(model.source() + ": tensor " + t.name() + " has no Hugging Face name");
            byHfName.put(hfName, t);
        }
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        Map<String, String> storage = new java.util.TreeMap<>();
        for (String hfName : hfNames(config)) {
            Tensor t = byHfName.remove(hfName);
            if (t == null) throw new Q4jException(model.source() + ": tensor " + HfNames.toGguf(hfName) + " (" + hfName + ") is missing");
            if (config.architecture().equals("llama")) {
                if (hfName.contains(".self_attn.q_proj.")) t = permute(t, config.nHeads(), false);
                if (hfName.contains(".self_attn.k_proj.")) t = permute(t, config.nKvHeads(), false);
            }
            if (t.type() instanceof IntQuantType q && layout != Layout.QUANT4J) {
                if (!storage.isEmpty() && !storage.containsValue(q.name())) {
                    throw new Q4jException(model.source() + ": tensor " + t.name() + " is " + q.name() + ", others " + storage.values().iterator().next()
                            + "; the Hugging Face " + layout + " layout has one bit width and group size per model");
                }
                storage.put(hfName, q.name());
                String prefix = hfName.substring(0, hfName.length() - ".weight".length());
                entries.addAll(spill.keep(layout == Layout.GPTQ ? GptqLayout.encode(prefix, t) : AwqLayout.encode(prefix, t)));
            } else if (t.type() instanceof IntQuantType q) {
                // quant4j's integer groups, stored as their raw bytes: one U8 row per weight row
                storage.put(hfName, q.name());
                entries.add(new SafetensorsWriter.Entry(hfName, org.quant4j.io.safetensors.SafetensorsDtype.U8,
                        new long[]{t.rows(), q.rowBytes(t.cols())}, t.data()));
            } else {
                entries.add(SafetensorsWriter.Entry.of(t.withName(hfName)));
            }
        }
        for (Tensor t : model.tensors().values()) {
            if (!t.name().endsWith(org.quant4j.model.Llama.INPUT_SCALE) && !t.name().endsWith(org.quant4j.model.Llama.INPUT_TRANSFORM)) continue;
            String hfName = HfNames.toHf(t.name());
            if (hfName == null) throw new Q4jException(model.source() + ": tensor " + t.name() + " has no Hugging Face name");
            byHfName.remove(hfName);
            entries.add(SafetensorsWriter.Entry.of(t.withName(hfName)));
        }
        if (!byHfName.isEmpty()) {
            String extra = byHfName.keySet().iterator().next();
            throw new Q4jException(model.source() + ": tensor " + HfNames.toGguf(extra) + " (" + extra + ") does not fit the config; "
                    + HfConfig.hfArchitectureFor(config, requestedArch) + " has no place for it");
        }

        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new Q4jException(dir + ": cannot create: " + e.getMessage(), e);
        }
        List<Path> written = new ArrayList<>(SafetensorsWriter.writeSharded(dir, Map.of("format", "pt"), entries, maxShardBytes, inputs));
        Path configOut = dir.resolve(CONFIG_FILE);
        ObjectNode withQuant = layout == Layout.GPTQ ? gptqConfig(base, storage) : layout == Layout.AWQ ? awqConfig(base, storage)
                : QuantInfo.addTo(base, storage, model.metadata().get(org.quant4j.model.Llama.ACTIVATIONS_KEY));
        if (withQuant != null && withQuant.get("quantization_config") instanceof ObjectNode qc && "quant4j".equals(qc.path("quant_method").asText())) {
            GgufValue kvBits = model.metadata().get(org.quant4j.model.Llama.KV_BITS_KEY), kvHadamard = model.metadata().get(org.quant4j.model.Llama.KV_HADAMARD_KEY);
            if (kvBits != null) qc.put("kv_bits", ((Number) kvBits.value()).intValue());
            if (kvHadamard != null && Boolean.TRUE.equals(kvHadamard.value())) qc.put("kv_hadamard", true);
        }
        HfConfig.write(configOut, config, hfArch, withQuant, torchDtype(model.tensor(Model.TOKEN_EMBD).ggmlType()));
        written.add(0, configOut);
        written.addAll(copySideFiles(model, dir));
        if (tokenizer != null) written.addAll(TokenizerJsonWriter.write(tokenizer, dir, inputs));
        return written;
    }

    /** transformers' GPTQConfig for a model whose quantized weights all have one {@link IntQuantType}. */
    private static ObjectNode gptqConfig(ObjectNode base, Map<String, String> storage) {
        if (storage.isEmpty()) throw new Q4jException("the Hugging Face GPTQ layout needs quantized weights; this model has none");
        IntQuantType q = IntQuantType.parse(storage.values().iterator().next());
        ObjectNode out = base == null ? HfConfig.JSON.createObjectNode() : base.deepCopy();
        ObjectNode qc = out.putObject("quantization_config");
        qc.put("quant_method", "gptq");
        qc.put("bits", q.bits());
        qc.put("group_size", q.perChannel() ? -1 : q.groupSize());
        qc.put("desc_act", false);
        qc.put("sym", q.symmetric());
        qc.put("checkpoint_format", "gptq");
        return out;
    }

    /** transformers' AwqConfig (as AutoAWQ writes it) for a model whose quantized weights are all 4-bit groups of one size. */
    private static ObjectNode awqConfig(ObjectNode base, Map<String, String> storage) {
        if (storage.isEmpty()) throw new Q4jException("the AWQ layout needs quantized weights; this model has none");
        IntQuantType q = IntQuantType.parse(storage.values().iterator().next());
        ObjectNode out = base == null ? HfConfig.JSON.createObjectNode() : base.deepCopy();
        ObjectNode qc = out.putObject("quantization_config");
        qc.put("quant_method", "awq");
        qc.put("version", "gemm");
        qc.put("bits", q.bits());
        qc.put("group_size", q.groupSize());
        qc.put("zero_point", true);
        qc.putNull("modules_to_not_convert");
        return out;
    }

    private static String torchDtype(GgmlType t) {
        return switch (t) {
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            case F64 -> "float64";
            default -> "float32";
        };
    }

    /**
     * Refuses to write into the Hugging Face checkpoint directory the model's tensors are mapped from (its shards
     * would be overwritten while in use); returns the model's source file, if it is one, for AtomicOutput to protect.
     */
    private static Path[] refuseOwnSource(Model model, Path dir) {
        Path source;
        try {
            source = Path.of(model.source());
        } catch (RuntimeException e) {
            return new Path[0];
        }
        boolean fromCheckpoint = model.metadata().containsKey(CONFIG_JSON_KEY);
        Path sourceDir = Files.isDirectory(source) ? source : source.toAbsolutePath().getParent();
        if (fromCheckpoint && sourceDir != null && Files.isDirectory(dir) && Files.isDirectory(sourceDir)) {
            try {
                if (Files.isSameFile(sourceDir, dir)) {
                    throw new Q4jException(dir + ": refusing to write over the checkpoint the model was loaded from");
                }
            } catch (IOException e) {
                throw new Q4jException(dir + ": " + e.getMessage(), e);
            }
        }
        return Files.isRegularFile(source) ? new Path[]{source} : new Path[0];
    }

    /** Whether the model was loaded with a tokenizer.json that {@link #copySideFiles} copies. */
    private static boolean hasTokenizerJson(Model model) {
        GgufValue tok = model.metadata().get(TOKENIZER_JSON_KEY);
        return tok != null && tok.type() == GgufValueType.STRING && Files.isRegularFile(Path.of(tok.asString()));
    }

    private static List<Path> copySideFiles(Model model, Path dir) {
        GgufValue tok = model.metadata().get(TOKENIZER_JSON_KEY);
        if (tok == null || tok.type() != GgufValueType.STRING) return List.of();
        Path from = Path.of(tok.asString()).getParent();
        if (from == null || !Files.isDirectory(from)) return List.of();
        try {
            if (Files.isDirectory(dir) && Files.isSameFile(from, dir)) return List.of();
        } catch (IOException e) {
            return List.of();
        }
        List<Path> copied = new ArrayList<>();
        for (String name : SIDE_FILES) {
            Path src = from.resolve(name);
            if (!Files.isRegularFile(src)) continue;
            Path dst = dir.resolve(name);
            AtomicOutput.write(dst, ch -> {
                try (FileChannel in = FileChannel.open(src, StandardOpenOption.READ)) {
                    long size = in.size();
                    for (long pos = 0; pos < size; ) pos += in.transferTo(pos, size - pos, ch);
                }
            }, src);
            copied.add(dst);
        }
        return copied;
    }
}
