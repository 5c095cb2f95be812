package org.quant4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.imatrix.ImatrixFile;
import org.quant4j.method.kquant.GgufQuantize;
import org.quant4j.method.kquant.ImportanceMatrix;
import org.quant4j.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** imatrix → quantize --type → a GGUF with llama.cpp's metadata that quant4j runs. */
class GgufQuantizeCliTest {
    @TempDir Path dir;

    static final String CONFIG = """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
             "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false}
            """;

    @Test
    void imatrixThenQuantizeWritesWhatLlamaCppExpects() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, CONFIG);
        Path f32 = dir.resolve("f32.gguf"), im = dir.resolve("imatrix.gguf"), q = dir.resolve("q4_0.gguf");
        assertEquals(0, CliTest.run("random-init", "--config", config.toString(), "--type", "F32", "-o", f32.toString()).code());
        CliTest.Outcome o = CliTest.run("imatrix", f32.toString(), "-f", "data/text/tinystories_sample.txt", "-o", im.toString(), "--ctx", "64", "--chunks", "3");
        assertEquals(0, o.code(), o.err());
        ImportanceMatrix m = ImatrixFile.read(im);
        assertEquals(2 * 7, m.size());
        assertEquals(3 * 64f, m.counts().get("blk.1.ffn_down.weight"));

        o = CliTest.run("quantize", f32.toString(), q.toString(), "--type", "Q4_0", "--output-tensor-type", "Q8_0", "--imatrix", im.toString());
        assertEquals(0, o.code(), o.err());
        try (GgufFile in = GgufFile.open(f32); GgufFile out = GgufFile.open(q)) {
            assertEquals(2, out.getLong("general.file_type", -1));
            assertEquals(2, out.getLong("general.quantization_version", -1));
            assertEquals(14, out.getLong("quantize.imatrix.entries_count", -1));
            assertEquals(3, out.getLong("quantize.imatrix.chunks_count", -1));
            assertTrue(out.has("tokenizer.ggml.tokens"), "the tokenizer goes along");
            assertEquals(GgmlType.Q8_0, out.tensor("output.weight").type());
            assertEquals(GgmlType.Q4_0, out.tensor("token_embd.weight").type());
            assertEquals(GgmlType.F32, out.tensor("blk.0.attn_norm.weight").type());
            // the bytes are the codec's, fed with the imatrix's per-column means
            Tensor src = in.tensor("blk.1.ffn_down.weight");
            Tensor expected = GgufQuantize.quantize(src, GgmlType.Q4_0, m.weights("blk.1.ffn_down.weight"));
            assertEquals(-1, expected.data().mismatch(out.tensor("blk.1.ffn_down.weight").data()));
            Tensor withoutImatrix = GgufQuantize.quantize(src, GgmlType.Q4_0, null);
            assertNotEquals(-1, withoutImatrix.data().mismatch(out.tensor("blk.1.ffn_down.weight").data()), "the imatrix changes the codes");
        }
        o = CliTest.run("generate", q.toString(), "-p", "Once upon", "-n", "4");
        assertEquals(0, o.code(), o.err());
    }

    @Test
    void wrongOutputsAndTypesAreClearErrors() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, CONFIG);
        Path f32 = dir.resolve("f32.gguf");
        assertEquals(0, CliTest.run("random-init", "--config", config.toString(), "--type", "F32", "-o", f32.toString()).code());
        CliTest.Outcome o = CliTest.run("quantize", f32.toString(), dir.resolve("out").toString(), "--type", "Q8_0");
        assertNotEquals(0, o.code());
        assertTrue(o.err().contains("GGUF"), o.err());
        o = CliTest.run("quantize", f32.toString(), dir.resolve("x.gguf").toString(), "--type", "Q9_Z");
        assertNotEquals(0, o.code());
        assertTrue(o.err().contains("unknown file type"), o.err());
        assertFalse(Files.exists(dir.resolve("x.gguf")), "nothing half-written");
    }
}
