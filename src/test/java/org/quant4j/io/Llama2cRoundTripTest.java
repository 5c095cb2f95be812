package org.quant4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.gguf.GgufModelWriter;
import org.quant4j.io.llama2c.Llama2cWriter;
import org.quant4j.model.Model;
import org.quant4j.util.Q4jException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class Llama2cRoundTripTest {
    static final Path BIN = Path.of("models/stories260K/stories260K.bin");

    @Test
    void checkpointToGgufAndBackIsIdenticalOutsideTheUnusedRopeTables(@TempDir Path dir) throws Exception {
        Path gguf = dir.resolve("s.gguf"), back = dir.resolve("s.bin");
        try (Model m = ModelLoader.load(BIN)) {
            GgufModelWriter.write(m, gguf, null);
        }
        try (Model m = ModelLoader.load(gguf)) {
            Llama2cWriter.write(m, back, 0);
        }
        byte[] a = Files.readAllBytes(BIN), b = Files.readAllBytes(back);
        assertEquals(a.length, b.length);
        int freqStart = 28 + 260_032 * 4; // header + every weight
        assertArrayEquals(Arrays.copyOf(a, freqStart), Arrays.copyOf(b, freqStart));
        // the cos/sin tables (which run.c skips) agree to float rounding
        var fa = java.nio.ByteBuffer.wrap(a).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        var fb = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int off = freqStart; off < a.length; off += 4) assertEquals(fa.getFloat(off), fb.getFloat(off), 2e-6f);
    }

    @Test
    void versionOneRoundTrips(@TempDir Path dir) throws Exception {
        Path v1 = dir.resolve("v1.bin");
        try (Model m = ModelLoader.load(BIN)) {
            Llama2cWriter.write(m, v1, 1);
        }
        Path shared = Path.of("../shared/models/stories260K/stories260K_v1.bin");
        if (Files.exists(shared)) assertArrayEquals(Files.readAllBytes(shared), Files.readAllBytes(v1), "same bytes as llama2.c's export.py");
        try (Model a = ModelLoader.load(BIN); Model b = ModelLoader.load(v1)) {
            for (String name : a.tensors().keySet()) {
                assertEquals(-1, a.tensor(name).data().mismatch(b.tensor(name).data()), name);
            }
        }
    }

    @Test
    void truncatedCheckpointNamesTheTensorAndOffset(@TempDir Path dir) throws Exception {
        byte[] all = Files.readAllBytes(BIN);
        Path cut = dir.resolve("cut.bin");
        Files.write(cut, Arrays.copyOf(all, 500_000));
        Q4jException e = assertThrows(Q4jException.class, () -> ModelLoader.load(cut));
        assertTrue(e.getMessage().contains("cut.bin") && e.getMessage().contains("runs past end of file") && e.getMessage().contains("offset"), e.getMessage());
        Path tiny = dir.resolve("tiny.bin");
        Files.write(tiny, Arrays.copyOf(all, 10));
        assertThrows(Q4jException.class, () -> ModelLoader.load(tiny));
    }

    @Test
    void forgedHeaderIsRejected(@TempDir Path dir) throws Exception {
        byte[] all = Files.readAllBytes(BIN);
        var b = java.nio.ByteBuffer.wrap(all).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putInt(8, 1 << 30); // n_layers
        Path forged = dir.resolve("forged.bin");
        Files.write(forged, all);
        Q4jException e = assertThrows(Q4jException.class, () -> ModelLoader.load(forged));
        assertTrue(e.getMessage().contains("forged.bin"), e.getMessage());
    }
}
