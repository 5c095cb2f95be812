package org.quant4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.GgmlType;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.gguf.GgufModelReader;
import org.quant4j.io.gguf.GgufModelWriter;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.model.RandomModel;
import org.quant4j.train.Params;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class TrainCommandTest {

    @Test void fineTunesWithQatExportsThroughRtnAndResumes(@TempDir Path dir) throws Exception {
        LlamaConfig c = new LlamaConfig("llama", 32, 64, 1, 4, 2, 8, 300, 64, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, true, false);
        Path init = dir.resolve("init.gguf");
        GgufModelWriter.write(Params.random(c, 3).toModel(RandomModel.placeholderTokenizer(c.vocabSize()), "test"), init, GgmlType.F32);
        Path text = dir.resolve("text.txt");
        Files.writeString(text, "Once upon a time there was a little cat. The cat liked to play in the sun. ".repeat(20));
        Path out = dir.resolve("out.gguf"), q = dir.resolve("out-q");
        CliTest.Outcome o = CliTest.run("train", "--init", init.toString(), "--data", text.toString(), "--val", text.toString(),
                "--steps", "4", "--batch", "2", "--seq", "16", "--warmup", "2", "--val-windows", "4", "--qat", "w4g16asym",
                "--export-quantized", q.toString(), "-o", out.toString());
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("step     4"), o.out());
        assertTrue(Files.exists(out) && Files.exists(dir.resolve("out.gguf.adamw")) && Files.exists(dir.resolve("out.gguf.png")));
        try (Model m = GgufModelReader.load(out)) {
            assertEquals(4, m.metadata().get("quant4j.train.step").asLong());
        }
        try (Model m = ModelLoader.load(q)) {
            assertInstanceOf(IntQuantType.class, m.tensor("blk.0.attn_q.weight").type());
            assertEquals(4, ((IntQuantType) m.tensor("blk.0.attn_q.weight").type()).bits());
        }
        Path out2 = dir.resolve("out2.gguf");
        o = CliTest.run("train", "--resume", out.toString(), "--data", text.toString(), "--steps", "6", "--batch", "2", "--seq", "16",
                "--warmup", "2", "--qat", "w4g16asym", "-o", out2.toString());
        assertEquals(0, o.code(), o.err());
        try (Model m = GgufModelReader.load(out2)) {
            assertEquals(6, m.metadata().get("quant4j.train.step").asLong());
        }
        o = CliTest.run("train", "--data", text.toString(), "--steps", "1", "-o", out2.toString());
        assertEquals(2, o.code());
        assertTrue(o.err().contains("--config"), o.err());
    }

    @Test void qloraWritesAPeftAdapterThatEvalAppliesAndAMergedModelThatScoresTheSame(@TempDir Path dir) throws Exception {
        LlamaConfig c = new LlamaConfig("llama", 32, 64, 2, 4, 2, 8, 300, 64, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, true, false);
        Path init = dir.resolve("init.gguf");
        GgufModelWriter.write(Params.random(c, 3).toModel(RandomModel.placeholderTokenizer(c.vocabSize()), "test"), init, GgmlType.F32);
        Path text = dir.resolve("text.txt");
        Files.writeString(text, "Once upon a time there was a little cat. The cat liked to play in the sun. ".repeat(20));
        Path adapter = dir.resolve("adapter"), base = dir.resolve("base.gguf"), merged = dir.resolve("merged.gguf");
        String[] common = {"train", "--qlora", "--init", init.toString(), "--base-type", "Q4_0", "--rank", "4", "--alpha", "8",
                "--data", text.toString(), "--steps", "6", "--batch", "2", "--seq", "16", "--warmup", "2", "--lr", "1e-2", "--seed", "5"};
        CliTest.Outcome o = CliTest.run(concat(common, "--save-base", base.toString(), "-o", adapter.toString()));
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("Q4_0") && o.out().contains("trainable parameters"), o.out());
        assertTrue(Files.exists(adapter.resolve("adapter_config.json")) && Files.exists(adapter.resolve("adapter_model.safetensors")));
        assertTrue(Files.readString(adapter.resolve("adapter_config.json")).contains("\"q_proj\""));
        try (Model m = ModelLoader.load(base)) {
            assertEquals(GgmlType.Q4_0, m.tensor("blk.1.ffn_down.weight").type());
        }
        o = CliTest.run(concat(common, "--merge", "-o", merged.toString()));
        assertEquals(0, o.code(), o.err());
        double withAdapter = ppl(CliTest.run("eval", base.toString(), "--lora", adapter.toString(), "-f", text.toString(), "-c", "32", "--no-progress"));
        double mergedPpl = ppl(CliTest.run("eval", merged.toString(), "-f", text.toString(), "-c", "32", "--no-progress"));
        double basePpl = ppl(CliTest.run("eval", base.toString(), "-f", text.toString(), "-c", "32", "--no-progress"));
        assertEquals(withAdapter, mergedPpl, 1e-3 * withAdapter, "merged and separately applied adapters score the same");
        assertTrue(Math.abs(basePpl - withAdapter) > 1e-2 * basePpl, "the adapter changes the model: " + basePpl + " vs " + withAdapter);
    }

    @Test void dumpsTheInitialWeightsBatchesAndStepLogForTheTorchComparison(@TempDir Path dir) throws Exception {
        Path text = dir.resolve("text.txt");
        Files.writeString(text, "Once upon a time there was a little cat. The cat liked to play in the sun. ".repeat(20));
        Path init = dir.resolve("init.safetensors"), batches = dir.resolve("b.i32"), log = dir.resolve("log.tsv");
        CliTest.Outcome o = CliTest.run("train", "--config", "stories260k", "--tokenizer", "models/stories260K/tok512.bin", "--data", text.toString(),
                "--steps", "3", "--batch", "2", "--seq", "16", "--save-init", init.toString(), "--dump-batches", batches.toString(),
                "--log", log.toString(), "-o", dir.resolve("o.gguf").toString());
        assertEquals(0, o.code(), o.err());
        assertEquals(3L * 2 * 2 * 16 * 4, Files.size(batches));
        assertEquals(4, Files.readAllLines(log).size());
        try (var f = org.quant4j.io.safetensors.SafetensorsFile.open(init)) {
            assertTrue(f.metadata().get("quant4j.train").contains("\"n_kv_heads\":4"), f.metadata().toString());
            assertTrue(f.has("blk.4.ffn_down.weight"));
        }
    }

    private static double ppl(CliTest.Outcome o) {
        assertEquals(0, o.code(), o.err());
        for (String line : o.out().split("\n")) if (line.startsWith("perplexity")) return Double.parseDouble(line.trim().split("\\s+")[1]);
        throw new AssertionError("no perplexity in " + o.out());
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
