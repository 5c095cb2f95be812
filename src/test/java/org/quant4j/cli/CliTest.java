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
}
