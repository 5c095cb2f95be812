package org.quant4j.io.hf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.safetensors.SafetensorsCheckpoint;
import org.quant4j.io.safetensors.SafetensorsDtype;
import org.quant4j.io.safetensors.SafetensorsWriter;
import org.quant4j.io.safetensors.SafetensorsWriter.Entry;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

import static org.junit.jupiter.api.Assertions.*;

/** Hugging Face checkpoints built in a temp dir: load, GGUF names, the llama.cpp q/k permutation, save, and back. */
class IoHfCheckpointTest {
    @TempDir Path tmp;

    // A tiny Llama: hidden 16, 4 heads of 4, 2 kv heads, ffn 24, 2 layers, vocab 32.
    static final int DIM = 16, FFN = 24, LAYERS = 2, HEADS = 4, KV_HEADS = 2, HEAD_DIM = 4, VOCAB = 32;

    static String llamaConfig(String extra) {
        return """
                {
                  "architectures": ["LlamaForCausalLM"],
                  "model_type": "llama",
                  "hidden_size": 16,
                  "intermediate_size": 24,
                  "num_hidden_layers": 2,
                  "num_attention_heads": 4,
                  "num_key_value_heads": 2,
                  "vocab_size": 32,
                  "max_position_embeddings": 64,
                  "rms_norm_eps": 1e-05,
                  "rope_theta": 10000.0,
                  "hidden_act": "silu",
                  "bos_token_id": 1,
                  "eos_token_id": 2,
                  "torch_dtype": "float32",
                  "tie_word_embeddings": false%s
                }
                """.formatted(extra);
    }

    /** HF tensor names and shapes in transformers' state-dict order, written independently of the code under test. */
    static LinkedHashMap<String, long[]> hfShapes(boolean qkvBias, boolean lmHead) {
        LinkedHashMap<String, long[]> s = new LinkedHashMap<>();
        s.put("model.embed_tokens.weight", new long[]{VOCAB, DIM});
        for (int l = 0; l < LAYERS; l++) {
            String p = "model.layers." + l + ".";
            s.put(p + "self_attn.q_proj.weight", new long[]{HEADS * HEAD_DIM, DIM});
            if (qkvBias) s.put(p + "self_attn.q_proj.bias", new long[]{HEADS * HEAD_DIM});
            s.put(p + "self_attn.k_proj.weight", new long[]{KV_HEADS * HEAD_DIM, DIM});
            if (qkvBias) s.put(p + "self_attn.k_proj.bias", new long[]{KV_HEADS * HEAD_DIM});
            s.put(p + "self_attn.v_proj.weight", new long[]{KV_HEADS * HEAD_DIM, DIM});
            if (qkvBias) s.put(p + "self_attn.v_proj.bias", new long[]{KV_HEADS * HEAD_DIM});
            s.put(p + "self_attn.o_proj.weight", new long[]{DIM, HEADS * HEAD_DIM});
            s.put(p + "mlp.gate_proj.weight", new long[]{FFN, DIM});
            s.put(p + "mlp.up_proj.weight", new long[]{FFN, DIM});
            s.put(p + "mlp.down_proj.weight", new long[]{DIM, FFN});
            s.put(p + "input_layernorm.weight", new long[]{DIM});
            s.put(p + "post_attention_layernorm.weight", new long[]{DIM});
        }
        s.put("model.norm.weight", new long[]{DIM});
        if (lmHead) s.put("lm_head.weight", new long[]{VOCAB, DIM});
        return s;
    }

    static List<Entry> randomTensors(Map<String, long[]> shapes, SafetensorsDtype dtype, long seed) {
        Random r = new Random(seed);
        List<Entry> out = new ArrayList<>();
        for (var e : shapes.entrySet()) {
            long n = 1;
            for (long d : e.getValue()) n *= d;
            byte[] b = new byte[(int) dtype.byteSize(n)];
            r.nextBytes(b);
            if (dtype == SafetensorsDtype.F32) { // finite values, as a real checkpoint has
                MemorySegment s = MemorySegment.ofArray(b);
                for (int i = 0; i < n; i++) s.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 4L * i, (float) r.nextGaussian());
            }
            out.add(new Entry(e.getKey(), dtype, e.getValue(), MemorySegment.ofArray(b)));
        }
        return out;
    }

    /** Writes a checkpoint as transformers would and returns its tensors by name. */
    static Map<String, Entry> writeCheckpoint(Path dir, String config, List<Entry> tensors, long maxShard) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), config);
        SafetensorsWriter.writeSharded(dir, Map.of("format", "pt"), tensors, maxShard);
        Map<String, Entry> byName = new LinkedHashMap<>();
        for (Entry e : tensors) byName.put(e.name(), e);
        return byName;
    }

    static float[] floats(MemorySegment s) {
        return s.toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
    }

    static final long SHARD = 7000; // splits the tiny F32 Llama into 3 shards

    @Test
    void tinyLlamaLoadsPermutesAndSavesBackByteIdentical() throws Exception {
        Path src = tmp.resolve("tiny-llama");
        Map<String, Entry> hf = writeCheckpoint(src, llamaConfig(""), randomTensors(hfShapes(false, true), SafetensorsDtype.F32, 1), SHARD);
        Files.writeString(src.resolve("tokenizer.json"), "{\"model\": {}}");
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(src)) {
            assertEquals(3, c.shardNames().size(), "the fixture is sharded into 3 files");
        }

        try (Model m = HfCheckpoint.load(src)) {
            LlamaConfig c = m.config();
            assertEquals("llama", c.architecture());
            assertEquals(List.of(DIM, FFN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, VOCAB, 64),
                    List.of(c.dim(), c.hiddenDim(), c.nLayers(), c.nHeads(), c.nKvHeads(), c.headDim(), c.vocabSize(), c.contextLength()));
            assertEquals(1e-5f, c.normEps());
            assertEquals(10000f, c.ropeTheta());
            assertEquals(LlamaConfig.RopeType.NORMAL, c.ropeType());
            assertNull(c.ropeScaling());
            assertFalse(c.tiedEmbeddings());
            assertFalse(c.qkvBias());

            // GGUF names, llama.cpp's order, every HF tensor accounted for.
            List<String> names = new ArrayList<>(m.tensors().keySet());
            assertEquals(List.of("token_embd.weight", "output_norm.weight", "output.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                    "blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.attn_norm.weight", "blk.0.ffn_gate.weight",
                    "blk.0.ffn_down.weight", "blk.0.ffn_up.weight", "blk.0.ffn_norm.weight"), names.subList(0, 12));
            assertEquals(hf.size(), names.size());
            for (String g : names) {
                Tensor t = m.tensor(g);
                Entry e = hf.get(HfNames.toHf(g));
                assertNotNull(e, g);
                assertArrayEquals(e.shape(), t.shape(), g);
                assertEquals(GgmlType.F32, t.type());
                boolean permuted = g.contains("attn_q") || g.contains("attn_k");
                assertEquals(!permuted, t.data().isMapped(), g + ": permuted tensors are new heap tensors, the rest stay mapped");
                if (!permuted) assertEquals(-1, t.data().mismatch(e.data()), g);
            }

            // q and k rows: GGUF row h*hd + 2i + j is HF row h*hd + j*hd/2 + i.
            for (int l = 0; l < LAYERS; l++) {
                checkPermuted(hf.get("model.layers." + l + ".self_attn.q_proj.weight"), m.tensor(Model.attnQ(l)), HEADS);
                checkPermuted(hf.get("model.layers." + l + ".self_attn.k_proj.weight"), m.tensor(Model.attnK(l)), KV_HEADS);
            }

            assertEquals(src.resolve("tokenizer.json").toAbsolutePath().normalize().toString(),
                    m.metadata().get(HfCheckpoint.TOKENIZER_JSON_KEY).asString());
            assertEquals("tiny-llama", m.metadata().get("general.name").asString());

            // Save with the same shard limit: the very same files come out.
            Path out = tmp.resolve("saved");
            List<Path> written = HfCheckpoint.save(m, out, SHARD);
            assertTrue(written.contains(out.resolve("config.json")));
            assertTrue(written.contains(out.resolve("tokenizer.json")), "tokenizer files travel along");
            for (String f : List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                    "model-00003-of-00003.safetensors", "model.safetensors.index.json")) {
                assertArrayEquals(Files.readAllBytes(src.resolve(f)), Files.readAllBytes(out.resolve(f)), f);
            }
            HfConfig saved = HfConfig.read(out.resolve("config.json"));
            assertEquals(c, saved.config());
            assertEquals(1, saved.json().get("bos_token_id").asInt(), "fields quant4j does not model are kept");
            assertEquals("float32", saved.json().get("torch_dtype").asText());

            // And load → identical tensors.
            try (Model again = HfCheckpoint.load(out)) {
                assertEquals(m.tensors().keySet(), again.tensors().keySet());
                for (String g : names) assertEquals(-1, again.tensor(g).data().mismatch(m.tensor(g).data()), g);
            }

            // One file when no limit is given.
            Path single = tmp.resolve("single");
            HfCheckpoint.save(m, single, 0);
            assertTrue(Files.exists(single.resolve("model.safetensors")));
            assertFalse(Files.exists(single.resolve("model.safetensors.index.json")));
            try (Model again = HfCheckpoint.load(single.resolve("model.safetensors"))) {
                for (String g : names) assertEquals(-1, again.tensor(g).data().mismatch(m.tensor(g).data()), g);
            }

            var e = assertThrows(Q4jException.class, () -> HfCheckpoint.save(m, src, SHARD));
            assertTrue(e.getMessage().contains("refusing"), e.getMessage());
        }
    }

    static void checkPermuted(Entry hf, Tensor gguf, int nHead) {
        float[] a = floats(hf.data());
        float[] b = floats(gguf.data());
        int cols = (int) hf.shape()[1];
        int rows = (int) hf.shape()[0];
        int hd = rows / nHead;
        for (int h = 0; h < nHead; h++) {
            for (int i = 0; i < hd / 2; i++) {
                for (int j = 0; j < 2; j++) {
                    int ggufRow = h * hd + 2 * i + j, hfRow = h * hd + j * hd / 2 + i;
                    assertArrayEquals(Arrays.copyOfRange(a, hfRow * cols, hfRow * cols + cols),
                            Arrays.copyOfRange(b, ggufRow * cols, ggufRow * cols + cols), gguf.name() + " row " + ggufRow);
                }
            }
        }
    }

    /**
     * By hand from convert_hf_to_gguf.py's LlamaModel.permute with n_head = 2 on an [8, 2] weight:
     * reshape(2, 2, 2, 2) gives w[h][j][i] = row h*4 + j*2 + i; swapaxes(1, 2) reads it as [h][i][j], so the rows come
     * out as 0 2 1 3 | 4 6 5 7. For k with n_head_kv = 1 on [4, 2]: 0 2 1 3.
     */
    @Test
    void permutationMatchesLlamaCppByHand() {
        float[] w = new float[16];
        for (int r = 0; r < 8; r++) { w[2 * r] = 10 * r; w[2 * r + 1] = 10 * r + 1; }
        Tensor q = Tensor.ofFloats("q", w, 8, 2);
        Tensor p = HfCheckpoint.permute(q, 2, true);
        assertArrayEquals(new float[]{0, 1, 20, 21, 10, 11, 30, 31, 40, 41, 60, 61, 50, 51, 70, 71}, floats(p.data()));
        assertArrayEquals(w, floats(HfCheckpoint.permute(p, 2, false).data()), "un-permute restores HF order");

        Tensor k = Tensor.ofFloats("k", Arrays.copyOf(w, 8), 4, 2);
        assertArrayEquals(new float[]{0, 1, 20, 21, 10, 11, 30, 31}, floats(HfCheckpoint.permute(k, 1, true).data()));

        Tensor bias = Tensor.ofFloats("b", new float[]{0, 1, 2, 3, 4, 5, 6, 7}, 8);
        assertArrayEquals(new float[]{0, 2, 1, 3, 4, 6, 5, 7}, floats(HfCheckpoint.permute(bias, 2, true).data()));

        // head_dim 6 (3 pairs), 1 head: 0 3 1 4 2 5
        Tensor six = Tensor.ofFloats("six", new float[]{0, 1, 2, 3, 4, 5}, 6);
        assertArrayEquals(new float[]{0, 3, 1, 4, 2, 5}, floats(HfCheckpoint.permute(six, 1, true).data()));

        // Any storage type: rows move whole (a BF16 row is 2 bytes per value).
        Tensor bf = new Tensor("bf", GgmlType.BF16, new long[]{4, 1}, MemorySegment.ofArray(new byte[]{0, 0, 1, 1, 2, 2, 3, 3}));
        assertArrayEquals(new byte[]{0, 0, 2, 2, 1, 1, 3, 3}, HfCheckpoint.permute(bf, 1, true).data().toArray(ValueLayout.JAVA_BYTE));

        assertThrows(Q4jException.class, () -> HfCheckpoint.permute(Tensor.ofFloats("odd", new float[6], 6), 2, true));
    }

    @Test
    void qwen2KeepsRowsAndHasBiases() throws Exception {
        String config = """
                {
                  "architectures": ["Qwen2ForCausalLM"],
                  "model_type": "qwen2",
                  "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
                  "max_position_embeddings": 128, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
                  "tie_word_embeddings": false, "use_sliding_window": false, "sliding_window": 128, "max_window_layers": 2
                }
                """;
        Path src = tmp.resolve("qwen");
        Map<String, Entry> hf = writeCheckpoint(src, config, randomTensors(hfShapes(true, true), SafetensorsDtype.BF16, 2), SHARD / 2);
        try (Model m = HfCheckpoint.load(src)) {
            LlamaConfig c = m.config();
            assertEquals("qwen2", c.architecture());
            assertEquals(LlamaConfig.RopeType.NEOX, c.ropeType());
            assertTrue(c.qkvBias());
            assertEquals(1e6f, c.ropeTheta());
            assertEquals(128, c.contextLength());
            for (int l = 0; l < LAYERS; l++) {
                for (String w : List.of("attn_q", "attn_k", "attn_v")) {
                    for (String kind : List.of(".weight", ".bias")) {
                        Tensor t = m.tensor(Model.blk(l, w + kind));
                        assertEquals(GgmlType.BF16, t.type());
                        assertTrue(t.data().isMapped(), "Qwen2 rows stay as they are: " + t.name());
                        assertEquals(-1, t.data().mismatch(hf.get(HfNames.toHf(t.name())).data()), t.name());
                    }
                }
            }
            Path out = tmp.resolve("qwen-saved");
            HfCheckpoint.save(m, out, SHARD / 2);
            try (var files = Files.list(src)) {
                for (Path f : files.filter(f -> f.toString().endsWith(".safetensors") || f.toString().endsWith(".index.json")).toList()) {
                    assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(out.resolve(f.getFileName())), f.toString());
                }
            }
            HfConfig saved = HfConfig.read(out.resolve("config.json"));
            assertEquals("Qwen2ForCausalLM", saved.hfArchitecture());
            assertEquals(c, saved.config());
            assertEquals("bfloat16", saved.json().get("torch_dtype").asText());
            assertEquals(2, saved.json().get("max_window_layers").asInt());
        }
    }

    @Test
    void tiedEmbeddingsHaveNoLmHead() throws Exception {
        Path src = tmp.resolve("tied");
        writeCheckpoint(src, llamaConfig("").replace("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true"),
                randomTensors(hfShapes(false, false), SafetensorsDtype.F32, 3), 0);
        try (Model m = HfCheckpoint.load(src)) {
            assertTrue(m.config().tiedEmbeddings());
            assertFalse(m.has(Model.OUTPUT));
            Path out = tmp.resolve("tied-saved");
            HfCheckpoint.save(m, out, 0);
            try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(out)) {
                assertFalse(c.has("lm_head.weight"));
                assertTrue(c.has("model.embed_tokens.weight"));
            }
            assertTrue(HfConfig.read(out.resolve("config.json")).config().tiedEmbeddings());
        }
        // A tied checkpoint that also stores lm_head (as some exports do): transformers ties it, so it is skipped.
        Path both = tmp.resolve("tied-with-head");
        writeCheckpoint(both, llamaConfig("").replace("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true"),
                randomTensors(hfShapes(false, true), SafetensorsDtype.F32, 3), 0);
        try (Model m = HfCheckpoint.load(both)) {
            assertFalse(m.has(Model.OUTPUT));
        }
        // Untied but without lm_head: a clear error.
        Path missing = tmp.resolve("untied-no-head");
        writeCheckpoint(missing, llamaConfig(""), randomTensors(hfShapes(false, false), SafetensorsDtype.F32, 3), 0);
        var e = assertThrows(Q4jException.class, () -> HfCheckpoint.load(missing));
        assertTrue(e.getMessage().contains("lm_head.weight") && e.getMessage().contains("tie_word_embeddings"), e.getMessage());
    }

    @Test
    void missingAndUnexpectedTensors() throws Exception {
        LinkedHashMap<String, long[]> shapes = hfShapes(false, true);
        shapes.remove("model.layers.1.mlp.up_proj.weight");
        Path src = tmp.resolve("missing");
        writeCheckpoint(src, llamaConfig(""), randomTensors(shapes, SafetensorsDtype.F32, 4), SHARD);
        var e = assertThrows(Q4jException.class, () -> HfCheckpoint.load(src));
        assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj.weight") && e.getMessage().contains("missing")
                && e.getMessage().contains("model.safetensors.index.json"), e.getMessage());

        shapes = hfShapes(false, true);
        shapes.put("model.layers.0.self_attn.q_norm.weight", new long[]{4});
        Path extra = tmp.resolve("extra");
        writeCheckpoint(extra, llamaConfig(""), randomTensors(shapes, SafetensorsDtype.F32, 4), 0);
        e = assertThrows(Q4jException.class, () -> HfCheckpoint.load(extra));
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_norm.weight") && e.getMessage().contains("model.safetensors"), e.getMessage());

        shapes = hfShapes(false, true);
        shapes.put("model.layers.0.self_attn.k_proj.weight", new long[]{12, DIM});
        Path wrong = tmp.resolve("wrong-shape");
        writeCheckpoint(wrong, llamaConfig(""), randomTensors(shapes, SafetensorsDtype.F32, 4), 0);
        e = assertThrows(Q4jException.class, () -> HfCheckpoint.load(wrong));
        assertTrue(e.getMessage().contains("blk.0.attn_k.weight") && e.getMessage().contains("[12, 16]"), e.getMessage());

        Path noConfig = tmp.resolve("no-config");
        Files.createDirectories(noConfig);
        e = assertThrows(Q4jException.class, () -> HfCheckpoint.load(noConfig));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());

        // rotary_emb.inv_freq buffers of older exports are skipped.
        shapes = hfShapes(false, true);
        shapes.put("model.layers.0.self_attn.rotary_emb.inv_freq", new long[]{2});
        Path old = tmp.resolve("inv-freq");
        writeCheckpoint(old, llamaConfig(""), randomTensors(shapes, SafetensorsDtype.F32, 4), 0);
        try (Model m = HfCheckpoint.load(old)) {
            assertEquals(hfShapes(false, true).size(), m.tensors().size());
        }
    }

    /** llama.cpp's own F32 GGUF of stories260K → HF checkpoint → back: every tensor byte-identical, q/k in GGUF order. */
    @Test
    void stories260KGgufToHfAndBack() throws Exception {
        Path gguf = Path.of("models/stories260K/stories260K-f32.llamacpp.gguf");
        try (GgufFile f = GgufFile.open(gguf)) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Tensor t : f.tensors()) tensors.put(t.name(), t);
            LlamaConfig config = LlamaConfig.fromGguf(f.metadata(), gguf.toString(),
                    (int) tensors.get(Model.TOKEN_EMBD).dim(0), tensors.containsKey(Model.OUTPUT), false);
            Model fromGguf = new Model(config, tensors, Map.of(), gguf.toString(), List.of());
            Path out = tmp.resolve("stories260K-hf");
            HfCheckpoint.save(fromGguf, out, 300_000);
            try (Model m = HfCheckpoint.load(out)) {
                assertEquals(config, m.config());
                assertEquals(new HashSet<>(tensors.keySet()), m.tensors().keySet());
                for (Tensor t : tensors.values()) assertEquals(-1, m.tensor(t.name()).data().mismatch(t.data()), t.name());
            }
            HfConfig hf = HfConfig.read(out.resolve("config.json"));
            assertEquals("LlamaForCausalLM", hf.hfArchitecture());
            assertEquals(8, hf.json().get("num_attention_heads").asInt());
            assertEquals(4, hf.json().get("num_key_value_heads").asInt());
            assertEquals(1e-5, hf.json().get("rms_norm_eps").asDouble());
            assertFalse(hf.json().has("head_dim"), "head_dim = hidden / heads is left implicit");
        }
    }

    @Test
    void quantizedModelsDoNotSaveToSafetensors() throws Exception {
        Path src = tmp.resolve("q");
        writeCheckpoint(src, llamaConfig(""), randomTensors(hfShapes(false, true), SafetensorsDtype.F32, 5), 0);
        try (Model m = HfCheckpoint.load(src)) {
            Tensor q = new Tensor(Model.ffnUp(0), GgmlType.Q8_0, new long[]{FFN, 32}, MemorySegment.ofArray(new byte[FFN * 34]));
            Model quantized = m.withTensors(Map.of(Model.ffnUp(0), q));
            var e = assertThrows(Q4jException.class, () -> HfCheckpoint.save(quantized, tmp.resolve("q-out"), 0));
            assertTrue(e.getMessage().contains("Q8_0") && e.getMessage().contains("up_proj"), e.getMessage());
        }
    }

    @Test
    void metadataRecordsNoTokenizerWhenThereIsNone() throws Exception {
        Path src = tmp.resolve("notok");
        writeCheckpoint(src, llamaConfig(""), randomTensors(hfShapes(false, true), SafetensorsDtype.F16, 6), 0);
        try (Model m = HfCheckpoint.load(src)) {
            assertNull(m.metadata().get(HfCheckpoint.TOKENIZER_JSON_KEY));
            assertEquals(GgmlType.F16, m.tensor(Model.TOKEN_EMBD).type());
        }
        assertInstanceOf(GgufValue.class, GgufValue.string("x"));
    }
}
