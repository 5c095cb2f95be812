package org.quant4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class CliTest {
    record Outcome(int code, String out, String err) {}

    static Outcome run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Outcome(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void everySubcommandHasHelp() {
        CommandLine cl = new CommandLine(new Main());
        assertFalse(cl.getSubcommands().isEmpty());
        for (String name : cl.getSubcommands().keySet()) {
            if (name.equals("help")) continue;
            Outcome o = run(name, "--help");
            assertEquals(0, o.code(), name + " --help");
            assertTrue(o.out().contains("Usage: quant4j " + name), name + ": " + o.out());
        }
    }

    @Test
    void truncatedFileGivesOneLineErrorNotAStackTrace(@TempDir Path dir) throws Exception {
        byte[] all = Files.readAllBytes(Path.of("models/stories260K/stories260K-f32.llamacpp.gguf"));
        Path cut = dir.resolve("cut.gguf");
        Files.write(cut, Arrays.copyOf(all, 5000));
        Outcome o = run("info", cut.toString());
        assertEquals(2, o.code());
        String[] lines = o.err().strip().split("\n");
        assertEquals(1, lines.length, o.err());
        assertTrue(lines[0].startsWith("quant4j: error: ") && lines[0].contains("cut.gguf") && lines[0].contains("offset"), lines[0]);
    }

    @Test
    void missingInputAndForgedConvertAreClearErrors(@TempDir Path dir) throws Exception {
        Outcome o = run("convert", dir.resolve("nope.gguf").toString(), dir.resolve("x.gguf").toString());
        assertEquals(2, o.code());
        assertTrue(o.err().contains("nope.gguf") && o.err().contains("no such file"), o.err());
        assertFalse(Files.exists(dir.resolve("x.gguf")));
        // a tensor whose data runs past the end of the file: convert fails and leaves no output behind
        byte[] all = Files.readAllBytes(Path.of("models/stories260K/stories260K-f32.llamacpp.gguf"));
        Path cut = dir.resolve("short.gguf");
        Files.write(cut, Arrays.copyOf(all, all.length - 100));
        Outcome c = run("convert", cut.toString(), dir.resolve("y.gguf").toString());
        assertEquals(2, c.code());
        assertTrue(c.err().contains("runs past end of file"), c.err());
        try (var files = Files.list(dir)) {
            assertEquals(0, files.filter(p -> p.getFileName().toString().startsWith(".y.gguf") || p.getFileName().toString().equals("y.gguf")).count());
        }
    }

    @Test
    void convertRefusesToOverwriteItsInput(@TempDir Path dir) throws Exception {
        Path copy = dir.resolve("m.gguf");
        Files.copy(Path.of("models/stories260K/stories260K-f32.llamacpp.gguf"), copy);
        byte[] before = Files.readAllBytes(copy);
        Outcome o = run("convert", copy.toString(), copy.toString(), "--type", "F16");
        assertEquals(2, o.code());
        assertTrue(o.err().contains("refusing to overwrite"), o.err());
        assertArrayEquals(before, Files.readAllBytes(copy));
    }

    @Test
    void memoryOfSeventyBillionParameters() {
        Outcome o = run("memory", "70B");
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().matches("(?s).*FP32\\s+32\\.00\\s+280 GB.*"), o.out());
        assertTrue(o.out().matches("(?s).*FP16 / BF16\\s+16\\.00\\s+140 GB.*"), o.out());
        assertEquals(7e10, MemoryCommand.parseCount("70B"));
        assertEquals(1.35e8, MemoryCommand.parseCount("135m"));
    }

    @Test
    void formatsTable() {
        Outcome o = run("formats", "--value", "0.1");
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("FP8 E4M3") && o.out().contains("448"), o.out());
    }

    @Test
    void inspectWritesPicturesAndASelfContainedReport(@TempDir Path dir) throws Exception {
        Outcome o = run("inspect", "models/stories260K/stories260K.bin", "--tensor", "blk.1.ffn_down.weight", "--bits", "4",
                "--group-size", "4", "--asymmetric", "-o", dir.toString());
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("blk.1.ffn_down.weight") && o.out().contains("kurtosis"), o.out());
        for (String png : new String[]{"histogram.png", "patch.png", "channels.png", "error-histogram.png"}) {
            byte[] b = Files.readAllBytes(dir.resolve(png));
            assertTrue(b.length > 1000 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G', png);
        }
        String html = Files.readString(dir.resolve("report.html"));
        assertTrue(html.contains("data:image/png;base64,") && html.contains("INT4 asymmetric g4") && !html.contains("src=\"http"), "self-contained");
    }

    /** The lab's outlier plots on a BERT encoder (all-MiniLM-L6-v2's ONNX graph): the activations entering ffn_down, GELU's output. */
    @Test
    void inspectPlotsTheActivationOutliersOfAnEncoder(@TempDir Path dir) throws Exception {
        Path onnx = org.quant4j.model.Encoders.onnx(org.quant4j.model.Encoders.MINILM);
        Outcome o = run("inspect", onnx.toString(), "--tensor", "blk.5.ffn_down.weight", "--calibration", "data/text/tinystories_valid_excerpt.txt",
                "--samples", "2", "-o", dir.toString());
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().contains("token_embd.weight") && o.out().contains("activations entering blk.5.ffn_down.weight: "), o.out());
        for (String png : new String[]{"histogram.png", "channels.png", "activation-histogram.png", "activation-channels.png", "activation-tokens.png", "activation-map.png"}) {
            byte[] b = Files.readAllBytes(dir.resolve(png));
            assertTrue(b.length > 1000 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G', png);
        }
        String html = Files.readString(dir.resolve("report.html"));
        assertTrue(html.contains("Activations entering blk.5.ffn_down.weight") && html.contains("normal outlier channels"), "activation section");
    }

    /** The golden check: stories260K at temperature 0 from "Once upon a time" tells llama2.c's documented story. */
    @Test
    void generateTellsTheKnownStory() {
        Outcome o = run("generate", "models/stories260K/stories260K.bin", "-p", "Once upon a time", "--temp", "0", "-n", "60", "--no-stats");
        assertEquals(0, o.code(), o.err());
        assertTrue(o.out().startsWith("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
                + "One day, she saw a big, red ball. She wanted to play with it, but it was too high."), o.out());
    }

    @Test
    void evalSavesBaseLogitsAndComparesAgainstThem(@TempDir Path dir) throws Exception {
        Path base = dir.resolve("base.logits");
        Outcome ppl = run("eval", "models/stories260K/stories260K.bin", "--ctx", "64", "--chunks", "6", "--save-logits", base.toString(), "--json");
        assertEquals(0, ppl.code(), ppl.err());
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(ppl.out());
        double p = json.get("perplexity").get("ppl").asDouble();
        assertTrue(p > 3 && p < 12, "stories260K on held-out TinyStories: " + p);
        assertEquals(6 * (64 - 32 - 1), json.get("perplexity").get("tokens").asInt(), "only the second half of each chunk is scored");
        // the same model against its own logits: KL ≈ 0 (16-bit log-prob storage), every top token agrees
        Outcome kl = run("eval", "models/stories260K/stories260K.bin", "--kl-base", base.toString(), "--json");
        assertEquals(0, kl.code(), kl.err());
        var k = new com.fasterxml.jackson.databind.ObjectMapper().readTree(kl.out()).get("kl");
        assertEquals(p, k.get("ppl").asDouble(), p * 1e-6);
        assertEquals(p, k.get("basePpl").asDouble(), p * 1e-3);
        assertTrue(Math.abs(k.get("klMean").asDouble()) < 1e-4, k.toString());
        assertEquals(1.0, k.get("sameTop").asDouble());
        // a truncated base file is a clear error
        byte[] all = Files.readAllBytes(base);
        Path cut = dir.resolve("cut.logits");
        Files.write(cut, Arrays.copyOf(all, all.length - 10));
        Outcome bad = run("eval", "models/stories260K/stories260K.bin", "--kl-base", cut.toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("cut.logits"), bad.err());
    }

    @Test
    void quantizeWritesAGgufThatRunsAndKeepsTheTokenizer(@TempDir Path dir) {
        Path out = dir.resolve("w4.gguf");
        // ffn_down rows (172 values) end in a ragged group that Q4_0 cannot hold
        Outcome ragged = run("quantize", "models/stories260K/stories260K.bin", out.toString(), "--bits", "4", "--granularity", "group", "--symmetric");
        assertEquals(2, ragged.code());
        assertTrue(ragged.err().contains("blk.0.ffn_down.weight") && ragged.err().contains("ragged"), ragged.err());
        Outcome o = run("quantize", "models/stories260K/stories260K.bin", out.toString(), "--bits", "4", "--granularity", "group", "--group-size", "32",
                "--symmetric", "--exclude", "^(token_embd|output)\\.weight$|ffn_down");
        assertEquals(0, o.code(), o.err());
        Outcome g = run("generate", out.toString(), "--temp", "0", "-n", "20", "--no-stats");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().startsWith("Once upon a time"), g.out());
        // asymmetric 4-bit groups of 32 are Q4_1 (refused here only for the ragged rows); asymmetric 3-bit ones have no GGUF type
        Outcome asym4 = run("quantize", "models/stories260K/stories260K.bin", dir.resolve("a4.gguf").toString(), "--bits", "4", "--granularity", "group",
                "--exclude", "^(token_embd|output)\\.weight$|ffn_down");
        assertEquals(0, asym4.code(), asym4.err());
        Outcome g4 = run("generate", dir.resolve("a4.gguf").toString(), "--temp", "0", "-n", "20", "--no-stats");
        assertEquals(0, g4.code(), g4.err());
        assertTrue(g4.out().startsWith("Once upon a time"), g4.out());
        Outcome asym = run("quantize", "models/stories260K/stories260K.bin", dir.resolve("a.gguf").toString(), "--bits", "3", "--granularity", "group");
        assertEquals(2, asym.code(), "asymmetric 3-bit groups have no GGUF equivalent");
        assertTrue(asym.err().contains("no GGUF equivalent"), asym.err());
        assertFalse(Files.exists(dir.resolve("a.gguf")));
    }
}
