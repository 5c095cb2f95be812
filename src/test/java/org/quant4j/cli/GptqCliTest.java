package org.quant4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class GptqCliTest {
    @Test
    void quantizeWithGptqWritesACheckpointThatRuns(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("gptq");
        CliTest.Outcome o = CliTest.run("quantize", "models/stories260K/stories260K.bin", out.toString(), "--method", "gptq", "--bits", "4",
                "--group-size", "32", "--samples", "4", "--seq-len", "32", "--seed", "3", "--no-progress");
        assertEquals(0, o.code(), o.err());
        assertTrue(o.err().contains("4 samples of 32 tokens"), o.err());
        assertTrue(o.err().contains("blk.4.ffn_down.weight: GPTQ W4 asym g32"), o.err());
        String config = Files.readString(out.resolve("config.json"));
        assertTrue(config.contains("INT4A_G32"), config);
        CliTest.Outcome g = CliTest.run("generate", out.toString(), "--temp", "0", "-n", "12", "--no-stats");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().startsWith("Once upon a time"), g.out());

        // the Hugging Face GPTQ layout needs in/out features in multiples of 32: stories260K's 172 are not
        CliTest.Outcome hf = CliTest.run("quantize", "models/stories260K/stories260K.bin", dir.resolve("hf").toString(), "--method", "gptq",
                "--bits", "4", "--samples", "2", "--seq-len", "16", "--layout", "gptq", "--no-progress");
        assertEquals(2, hf.code());
        assertTrue(hf.err().contains("multiples of 32"), hf.err());
    }
}
