package org.quant4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class AwqCliTest {
    @Test
    void quantizeWithAwqWritesACheckpointThatRuns(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("awq");
        CliTest.Outcome o = CliTest.run("quantize", "models/stories260K/stories260K.bin", out.toString(), "--method", "awq", "--bits", "4",
                "--group", "32", "--samples", "4", "--seq-len", "32", "--seed", "3", "--no-progress");
        assertEquals(0, o.code(), o.err());
        assertTrue(o.err().contains("AWQ W4 asym g32, 4 samples of 32 tokens"), o.err());
        assertTrue(o.err().contains("blk.4 ffn_down: α = "), o.err());
        String config = Files.readString(out.resolve("config.json"));
        assertTrue(config.contains("INT4A_G32"), config);
        CliTest.Outcome g = CliTest.run("generate", out.toString(), "--temp", "0", "-n", "12", "--no-stats");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().startsWith("Once upon a time"), g.out());

        // AWQ's default group is 128; the AutoAWQ layout needs 4 bits and whole groups: stories260K's 172 columns are not
        CliTest.Outcome hf = CliTest.run("quantize", "models/stories260K/stories260K.bin", dir.resolve("hf").toString(), "--method", "awq",
                "--bits", "4", "--samples", "2", "--seq-len", "16", "--layout", "awq", "--no-progress");
        assertEquals(2, hf.code());
        assertTrue(hf.err().contains("AWQ W4 asym g128"), hf.err());
        assertTrue(hf.err().contains("no AWQ GEMM form"), hf.err());
    }
}
