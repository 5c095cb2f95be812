package org.quant4j.io.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.PyJson;
import org.quant4j.model.LlamaConfig;
import org.quant4j.util.Q4jException;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** config.json parsing and writing, tensor-name mapping, and Python-compatible JSON text. */
class IoHfConfigTest {
    @TempDir Path tmp;

    /** Meta-Llama-3.1-8B's config.json (sizes as published). */
    static final String LLAMA31 = """
            {
              "architectures": ["LlamaForCausalLM"],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "bos_token_id": 128000,
              "eos_token_id": 128001,
              "hidden_act": "silu",
              "hidden_size": 4096,
              "initializer_range": 0.02,
              "intermediate_size": 14336,
              "max_position_embeddings": 131072,
              "mlp_bias": false,
              "model_type": "llama",
              "num_attention_heads": 32,
              "num_hidden_layers": 32,
              "num_key_value_heads": 8,
              "pretraining_tp": 1,
              "rms_norm_eps": 1e-05,
              "rope_scaling": {
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3"
              },
              "rope_theta": 500000.0,
              "tie_word_embeddings": false,
              "torch_dtype": "bfloat16",
              "transformers_version": "4.43.0.dev0",
              "use_cache": true,
              "vocab_size": 128256
            }
            """;

    @Test
    void llama3RopeScaling() {
        HfConfig hf = HfConfig.parse(LLAMA31, "config.json");
        LlamaConfig c = hf.config();
        assertEquals("LlamaForCausalLM", hf.hfArchitecture());
        assertEquals("llama", c.architecture());
        assertEquals(4096, c.dim());
        assertEquals(14336, c.hiddenDim());
        assertEquals(32, c.nLayers());
        assertEquals(32, c.nHeads());
        assertEquals(8, c.nKvHeads());
        assertEquals(128, c.headDim());
        assertEquals(128256, c.vocabSize());
        assertEquals(131072, c.contextLength());
        assertEquals(1e-5f, c.normEps());
        assertEquals(500000f, c.ropeTheta());
        assertEquals(new LlamaConfig.RopeScaling(8f, 1f, 4f, 8192), c.ropeScaling());
        assertEquals(LlamaConfig.RopeType.NORMAL, c.ropeType());

        // Written back from the parsed config onto itself: unchanged, byte for byte as transformers would write it.
        String again = HfConfig.toJson(c, hf.hfArchitecture(), hf.json(), null);
        assertEquals(PyJson.dumps(hf.json()), again);
        assertTrue(again.contains("  \"rms_norm_eps\": 1e-05,\n"), again);
        assertTrue(again.contains("  \"rope_theta\": 500000.0,\n"), again);
        assertTrue(again.contains("    \"factor\": 8.0,\n"), again);
        assertEquals(c, HfConfig.parse(again, "again").config());

        // A fresh config.json (no base) reads back to the same LlamaConfig.
        String fresh = HfConfig.toJson(c, null, null, "bfloat16");
        assertEquals(c, HfConfig.parse(fresh, "fresh").config());
        assertTrue(fresh.contains("\"rope_type\": \"llama3\""), fresh);
    }

    @Test
    void transformers5RopeParameters() {
        String v5 = LLAMA31.replaceAll("(?s)\"rope_scaling\": \\{.*?\\},\\s*\"rope_theta\": 500000.0,",
                "\"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                        + "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192},");
        assertTrue(v5.contains("rope_parameters") && !v5.contains("rope_scaling"), v5);
        HfConfig hf = HfConfig.parse(v5, "v5");
        assertEquals(new LlamaConfig.RopeScaling(8f, 1f, 4f, 8192), hf.config().ropeScaling());
        assertEquals(500000f, hf.config().ropeTheta());
        assertEquals(hf.config(), HfConfig.parse(HfConfig.toJson(hf.config(), null, hf.json(), null), "again").config());
    }

    @Test
    void mistralSmolLmTinyLlama() throws Exception {
        String mistral = """
                {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
                 "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": null, "vocab_size": 32768,
                 "max_position_embeddings": 32768, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": null,
                 "tie_word_embeddings": false, "hidden_act": "silu"}
                """;
        HfConfig m = HfConfig.parse(mistral, "mistral");
        assertEquals("llama", m.config().architecture(), "llama.cpp converts Mistral as llama (permuted q/k, normal RoPE)");
        assertEquals(128, m.config().headDim());
        assertEquals(1e6f, m.config().ropeTheta());
        Path out = tmp.resolve("config.json");
        HfConfig.write(out, m.config(), m.hfArchitecture(), m.json(), null);
        HfConfig back = HfConfig.read(out);
        assertEquals("MistralForCausalLM", back.hfArchitecture());
        assertEquals("mistral", back.json().get("model_type").asText());
        assertEquals(m.config(), back.config());
        assertTrue(Files.readString(out).contains("\"head_dim\": null"), "fields left as they were");

        String smolLm = """
                {"architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                 "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152, "max_position_embeddings": 2048,
                 "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": true, "rope_scaling": null, "model_type": "llama"}
                """;
        LlamaConfig s = HfConfig.parse(smolLm, "smollm").config();
        assertEquals(64, s.headDim());
        assertTrue(s.tiedEmbeddings());
        assertNull(s.ropeScaling());

        String tinyLlama = """
                {"architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                 "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000, "max_position_embeddings": 2048,
                 "rms_norm_eps": 1e-05, "model_type": "llama"}
                """;
        LlamaConfig t = HfConfig.parse(tinyLlama, "tinyllama").config();
        assertEquals(10000f, t.ropeTheta(), "transformers' default");
        assertFalse(t.tiedEmbeddings(), "transformers' default");
        assertEquals(4, t.nKvHeads());

        String qwen2 = """
                {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                 "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
                 "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": true, "use_sliding_window": false,
                 "model_type": "qwen2"}
                """;
        LlamaConfig q = HfConfig.parse(qwen2, "qwen2").config();
        assertEquals("qwen2", q.architecture());
        assertEquals(LlamaConfig.RopeType.NEOX, q.ropeType());
        assertTrue(q.qkvBias());
        assertEquals(64, q.headDim());
        assertEquals(1e-6f, q.normEps());
    }

    @Test
    void unsupportedOrBrokenConfigs() {
        String base = LLAMA31;
        assertConfigError(base.replace("LlamaForCausalLM", "GPT2LMHeadModel"), "GPT2LMHeadModel");
        assertConfigError(base.replace("\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\""), "yarn");
        assertConfigError(base.replace("\"hidden_size\": 4096,", ""), "hidden_size");
        assertConfigError(base.replace("\"hidden_size\": 4096", "\"hidden_size\": \"4096\""), "hidden_size");
        assertConfigError(base.replace("\"hidden_size\": 4096", "\"hidden_size\": 40960000000"), "hidden_size");
        assertConfigError(base.replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""), "gelu");
        assertConfigError(base.replace("\"mlp_bias\": false", "\"mlp_bias\": true"), "mlp_bias");
        assertConfigError(base.replace("\"attention_bias\": false", "\"attention_bias\": true"), "attention_bias");
        assertConfigError(base.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5"), "kv heads");
        assertConfigError(base.replace("\"factor\": 8.0,", ""), "factor");
        assertConfigError("{\"a\": 1,}", "not valid JSON");
        assertConfigError("[]", "not a JSON object");
        assertConfigError("{\"model_type\": \"llama\", \"model_type\": \"qwen2\"}", "Duplicate");
    }

    static void assertConfigError(String json, String mention) {
        Q4jException e = assertThrows(Q4jException.class, () -> HfConfig.parse(json, "cfg.json"));
        assertTrue(e.getMessage().startsWith("cfg.json") && e.getMessage().contains(mention), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void tensorNames() {
        String[][] pairs = {
                {"model.embed_tokens.weight", "token_embd.weight"},
                {"model.norm.weight", "output_norm.weight"},
                {"lm_head.weight", "output.weight"},
                {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
                {"model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"},
                {"model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias"},
                {"model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight"},
                {"model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias"},
                {"model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"},
                {"model.layers.3.self_attn.v_proj.bias", "blk.3.attn_v.bias"},
                {"model.layers.12.self_attn.o_proj.weight", "blk.12.attn_output.weight"},
                {"model.layers.12.post_attention_layernorm.weight", "blk.12.ffn_norm.weight"},
                {"model.layers.79.mlp.gate_proj.weight", "blk.79.ffn_gate.weight"},
                {"model.layers.79.mlp.up_proj.weight", "blk.79.ffn_up.weight"},
                {"model.layers.79.mlp.down_proj.weight", "blk.79.ffn_down.weight"},
        };
        for (String[] p : pairs) {
            assertEquals(p[1], HfNames.toGguf(p[0]), p[0]);
            assertEquals(p[0], HfNames.toHf(p[1]), p[1]);
        }
        for (String unknown : new String[]{"model.layers.0.self_attn.q_norm.weight", "model.layers.01.mlp.up_proj.weight",
                "model.layers.0.input_layernorm.bias", "transformer.h.0.attn.c_attn.weight", "model.layers.x.mlp.up_proj.weight", ""}) {
            assertNull(HfNames.toGguf(unknown), unknown);
        }
        for (String unknown : new String[]{"rope_freqs.weight", "blk.0.attn_norm.bias", "blk.0.ffn_gate_inp.weight", "output.bias"}) {
            assertNull(HfNames.toHf(unknown), unknown);
        }
        assertTrue(HfNames.isIgnored("model.layers.7.self_attn.rotary_emb.inv_freq"));
        assertEquals(7, HfNames.layerOf("model.layers.7.mlp.up_proj.weight"));
        assertEquals(7, HfNames.layerOf("blk.7.ffn_up.weight"));
    }

    @Test
    void pythonJsonText() throws Exception {
        assertEquals("1e-05", PyJson.floatRepr(1e-5));
        assertEquals("1e-06", PyJson.floatRepr(1e-6));
        assertEquals("0.0001", PyJson.floatRepr(1e-4));
        assertEquals("1.5e-07", PyJson.floatRepr(1.5e-7));
        assertEquals("9.313225746154785e-10", PyJson.floatRepr(Math.pow(2, -30)));
        assertEquals("10000.0", PyJson.floatRepr(10000));
        assertEquals("500000.0", PyJson.floatRepr(500000));
        assertEquals("1000000000000000.0", PyJson.floatRepr(1e15));
        assertEquals("1e+16", PyJson.floatRepr(1e16));
        assertEquals("1.2345678901234568e+17", PyJson.floatRepr(123456789012345680.0));
        assertEquals("0.02", PyJson.floatRepr(0.02));
        assertEquals("-2.5", PyJson.floatRepr(-2.5));
        assertEquals("0.0", PyJson.floatRepr(0.0));
        assertEquals("-0.0", PyJson.floatRepr(-0.0));
        // json.dumps({'b': [1, 2.5, {}], 'a': {'x': 'é\x01', 'y': []}, 'c': None, 'd': True}, indent=2, sort_keys=True)
        String expected = """
                {
                  "a": {
                    "x": "\\u00e9\\u0001",
                    "y": []
                  },
                  "b": [
                    1,
                    2.5,
                    {}
                  ],
                  "c": null,
                  "d": true
                }
                """;
        assertEquals(expected, PyJson.dumps(new ObjectMapper().readTree("{\"b\": [1, 2.5, {}], \"a\": {\"x\": \"é\\u0001\", \"y\": []}, \"c\": null, \"d\": true}")));
    }
}
