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
}
