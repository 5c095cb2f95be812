package org.quant4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufFile;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.bitnet.AbsmeanTernary;
import org.quant4j.tensor.Tensor;
import org.quant4j.train.FakeQuant;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * BitNet b1.58 export: a trained model's master weights → quantize --type TQ2_0 / TQ1_0 → every block matrix holds
 * exactly the trained ternary weights (absmean γ per matrix, in fp16), the embedding stays F32, quant4j runs it.
 */
class TernaryExportCliTest {
    @TempDir Path dir;

    static final String CONFIG = """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
             "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
             "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true}
            """;

    /** Each linear matrix of {@code packed} decodes to BitNet's ŵ of the same matrix in {@code master}, γ in fp16. */
    static void assertTernaryOf(GgufFile master, GgufFile packed, GgmlType type) {
        int matrices = 0;
        for (Tensor src : master.tensors()) {
            if (!AbsmeanTernary.isLinear(src)) continue;
            Tensor out = packed.tensor(src.name());
            assertEquals(type, out.type(), src.name());
            int rows = (int) src.rows(), cols = (int) src.cols();
            float[] what = FakeQuant.BitNet.TERNARY.apply(MatMul.toFloats(src), rows, cols);
            float gamma = 0;
            for (float v : what) gamma = Math.max(gamma, Math.abs(v));
            float gamma16 = Float.float16ToFloat(Float.floatToFloat16(gamma));
            float[] decoded = MatMul.toFloats(out);
            int nonzero = 0;
            for (int i = 0; i < what.length; i++) {
                assertEquals(Math.signum(what[i]) * gamma16, decoded[i], 0f, src.name() + " at " + i);
                if (what[i] != 0) nonzero++;
            }
            assertTrue(nonzero > what.length / 3, src.name() + ": absmean keeps about half the weights nonzero");
            matrices++;
        }
        assertEquals(7, matrices);
    }

    @Test
    void bitnetFlagPacksTheAbsmeanTernaryWeights() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, CONFIG);
        Path f32 = dir.resolve("f32.gguf"), tq2 = dir.resolve("tq2.gguf"), tq1 = dir.resolve("tq1.gguf"), plain = dir.resolve("plain.gguf");
        assertEquals(0, CliTest.run("random-init", "--config", config.toString(), "--type", "F32", "-o", f32.toString()).code());
        CliTest.Outcome o = CliTest.run("quantize", f32.toString(), tq2.toString(), "--type", "TQ2_0", "--bitnet", "--output-tensor-type", "F32");
        assertEquals(0, o.code(), o.err());
        o = CliTest.run("quantize", f32.toString(), tq1.toString(), "--type", "TQ1_0", "--bitnet", "--output-tensor-type", "F32");
        assertEquals(0, o.code(), o.err());
        o = CliTest.run("quantize", f32.toString(), plain.toString(), "--type", "TQ2_0", "--output-tensor-type", "F32");
        assertEquals(0, o.code(), o.err());
        try (GgufFile in = GgufFile.open(f32); GgufFile a = GgufFile.open(tq2); GgufFile b = GgufFile.open(tq1); GgufFile c = GgufFile.open(plain)) {
            assertTernaryOf(in, a, GgmlType.TQ2_0);
            assertTernaryOf(in, b, GgmlType.TQ1_0);
            assertEquals(GgmlType.F32, a.tensor("token_embd.weight").type());
            assertEquals(37, a.getLong("general.file_type", -1));
            assertEquals(36, b.getLong("general.file_type", -1));
            // without --bitnet, ggml's per-block absmax ternarization: other codes
            assertNotEquals(-1, a.tensor("blk.0.ffn_up.weight").data().mismatch(c.tensor("blk.0.ffn_up.weight").data()));
        }
        o = CliTest.run("quantize", f32.toString(), dir.resolve("x.gguf").toString(), "--type", "Q4_0", "--bitnet");
        assertEquals(2, o.code(), "a usage error");
        assertTrue(o.err().contains("TQ1_0 or TQ2_0"), o.err());
        o = CliTest.run("eval", tq2.toString(), "-f", "data/text/tinystories_sample.txt", "--ctx", "32", "--chunks", "2", "--no-progress");
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("perplexity"), o.out());
    }

    @Test
    void aModelTrainedAsBitNetIsTernarizedWithoutTheFlag() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, CONFIG.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4"));
        Path trained = dir.resolve("b158.gguf"), tq2 = dir.resolve("tq2.gguf");
        CliTest.Outcome o = CliTest.run("train", "--config", config.toString(), "--tokenizer", "models/stories260K/tok512.bin",
                "--data", "data/text/tinystories_sample.txt", "--steps", "2", "--batch", "1", "--seq", "16", "--warmup", "1",
                "--qat", "bitnet1.58", "-o", trained.toString());
        assertEquals(0, o.code(), o.err());
        o = CliTest.run("quantize", trained.toString(), tq2.toString(), "--type", "TQ2_0", "--output-tensor-type", "F32");
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("BitNet b1.58"), o.out());
        try (GgufFile in = GgufFile.open(trained); GgufFile out = GgufFile.open(tq2)) {
            assertEquals("bitnet1.58", in.getString(AbsmeanTernary.QAT_KEY, null));
            assertTernaryOf(in, out, GgmlType.TQ2_0);
            assertNotEquals("bitnet1.58", out.getString(AbsmeanTernary.QAT_KEY, null), "a packed file is not ternarized twice");
        }
    }
}
