package org.quant4j.method.calib;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.ModelLoader;
import org.quant4j.method.awq.Awq;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

class CalibrationMemoryTest {
    static final Path MODEL = Path.of("models/stories260K/stories260K.bin");

    static int[][] calibration(Model m, int n, int len) throws Exception {
        Tokenizer tok = Tokenizers.fromModel(m);
        return CalibrationWindows.sample(tok.encode(Files.readString(Path.of("data/text/tinystories_sample.txt")), false, false), n, len, 7, tok.bosId());
    }

    @Test
    void buffersBeyondTheBudgetLiveInFilesAndHoldTheSameValues(@TempDir Path dir) throws Exception {
        try (CalibrationMemory mem = new CalibrationMemory(3 * 5 * 4, dir, true)) {
            CalibrationMemory.Activations a = mem.allocate("a", 3, 5), b = mem.allocate("b", 3, 5);
            assertFalse(a.mapped(), "within the budget: in memory");
            assertTrue(b.mapped(), "beyond the budget: a mapped file");
            assertEquals(60, mem.inMemory());
            assertEquals(60, mem.onDisk());
            float[] v = new float[15];
            for (int i = 0; i < v.length; i++) v[i] = i * 0.5f - 3;
            for (var x : new CalibrationMemory.Activations[]{a, b}) {
                x.write(0, 3, v, 0);
                x.write(1, 1, new float[]{9, 8, 7, 6, 5}, 0);
                assertArrayEquals(new float[]{-3, -2.5f, -2, -1.5f, -1, 9, 8, 7, 6, 5, 2, 2.5f, 3, 3.5f, 4}, x.read(0, 3));
                assertArrayEquals(new float[]{9, 8, 7, 6, 5}, x.read(1, 1));
                assertThrows(IndexOutOfBoundsException.class, () -> x.read(2, 2));
            }
            assertEquals(1, countFiles(dir));
            b.close();
            assertEquals(0, mem.onDisk());
            assertEquals(0, countFiles(dir), "a closed buffer's file is deleted");
            assertThrows(IllegalStateException.class, () -> b.read(0, 1));

            Tensor t = Tensor.ofFloats("w", new float[]{1, 2, 3, 4, 5, 6}, 2, 3);
            Tensor kept = mem.keep(t);
            assertTrue(kept.data().isMapped(), "a kept tensor reads from its file");
            assertEquals(-1, kept.data().mismatch(t.data()));
            assertEquals(24, mem.spilledTensorBytes());
        }
        assertEquals(0, countFiles(dir), "closing deletes every file");
    }

    @Test
    void sizes() {
        assertEquals(20L << 30, CalibrationMemory.parseSize("20G"));
        assertEquals(512L << 20, CalibrationMemory.parseSize("512MiB"));
        assertEquals(1536, CalibrationMemory.parseSize("1.5k"));
        assertEquals(100, CalibrationMemory.parseSize("100"));
        assertThrows(org.quant4j.util.Q4jException.class, () -> CalibrationMemory.parseSize("lots"));
    }

    /** GPTQ and AWQ on stories260K give the same bytes with every buffer in a file (budget 0) as on the heap. */
    @Test
    void aBudgetOfZeroGivesIdenticalModels(@TempDir Path dir) throws Exception {
        try (Model m = ModelLoader.load(MODEL)) {
            int[][] calib = calibration(m, 4, 64);
            assertIdentical(dir, () -> Gptq.apply(m, calib, Gptq.Options.of(3, false, 32), null, null));
            assertIdentical(dir, () -> Awq.apply(m, calib, Awq.Options.of(4, 32), null, null));
        }
    }

    private static void assertIdentical(Path dir, Supplier<Model> method) throws Exception {
        Model heap = method.get();
        try (CalibrationMemory mem = new CalibrationMemory(0, dir, true)) {
            Model spilled = ScopedValue.where(CalibrationMemory.CURRENT, mem).call(method::get);
            assertTrue(mem.spilledTensorBytes() > 0, "quantized tensors went to the file");
            assertTrue(mem.peakOnDisk() > 0, "activations went to files");
            assertEquals(0, mem.inMemory());
            int mapped = 0;
            for (Tensor t : heap.tensors().values()) {
                Tensor s = spilled.tensor(t.name());
                assertEquals(t.type(), s.type(), t.name());
                assertEquals(-1, t.data().mismatch(s.data()), t.name() + " differs with the buffers in files");
                if (s.data().isMapped()) mapped++;
            }
            assertTrue(mapped > 0);
        }
        assertEquals(0, countFiles(dir));
    }

    private static long countFiles(Path dir) throws Exception {
        try (var s = Files.list(dir)) {
            return s.count();
        }
    }
}
