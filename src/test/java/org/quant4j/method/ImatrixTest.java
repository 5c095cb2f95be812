package org.quant4j.method;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.imatrix.ImatrixFile;
import org.quant4j.method.kquant.ImatrixCollector;
import org.quant4j.method.kquant.ImportanceMatrix;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

import static org.junit.jupiter.api.Assertions.*;

/** Importance matrices: collection, llama.cpp's GGUF and legacy files. */
class ImatrixTest {
    @TempDir Path dir;

    @Test
    void collectorSumsSquaresPerColumnOfBlockLayersOnly() {
        ImatrixCollector c = new ImatrixCollector(false);
        c.onInput("blk.0.attn_q.weight", new float[]{1, 2, 3, -1, 0, 2}, 2, 3); // two tokens of three columns
        c.onInput("blk.0.attn_q.weight", new float[]{2, 2, 2}, 1, 3);
        c.onInput("output.weight", new float[]{5, 5, 5}, 1, 3);
        ImportanceMatrix m = c.result(List.of("t.txt"), 1, 3);
        assertArrayEquals(new float[]{1 + 1 + 4, 4 + 0 + 4, 9 + 4 + 4}, m.sums().get("blk.0.attn_q.weight"));
        assertEquals(3f, m.counts().get("blk.0.attn_q.weight"));
        assertArrayEquals(new float[]{2f, 8f / 3, 17f / 3}, m.weights("blk.0.attn_q.weight"), 1e-6f);
        assertFalse(m.sums().containsKey("output.weight"), "the output head only with --process-output");
    }

    @Test
    void ggufRoundTripInLlamaCppsLayout() {
        ImportanceMatrix m = new ImportanceMatrix(
                new LinkedHashMap<>(Map.of("blk.1.ffn_down.weight", new float[]{1, 2, 3, 4}, "blk.0.attn_q.weight", new float[]{0.5f, 7})),
                new LinkedHashMap<>(Map.of("blk.1.ffn_down.weight", 4f, "blk.0.attn_q.weight", 0f)), List.of("a.txt", "b.txt"), 5, 64);
        Path f = dir.resolve("imatrix.gguf");
        ImatrixFile.write(m, f);
        try (GgufFile g = GgufFile.open(f)) {
            assertEquals("imatrix", g.getString("general.type", null));
            assertEquals(5, g.getLong("imatrix.chunk_count", -1));
            assertEquals(64, g.getLong("imatrix.chunk_size", -1));
            List<String> names = g.tensorInfos().stream().map(GgufFile.TensorInfo::name).toList();
            assertEquals(List.of("blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts",
                    "blk.1.ffn_down.weight.in_sum2", "blk.1.ffn_down.weight.counts"), names);
        }
        ImportanceMatrix back = ImatrixFile.read(f);
        assertArrayEquals(new float[]{1, 2, 3, 4}, back.sums().get("blk.1.ffn_down.weight"));
        assertEquals(List.of("a.txt", "b.txt"), back.datasets());
        assertArrayEquals(new float[]{0.25f, 0.5f, 0.75f, 1f}, back.weights("blk.1.ffn_down.weight"));
        assertArrayEquals(new float[]{1, 1}, back.weights("blk.0.attn_q.weight"), "no tokens seen: weights of 1, as llama-quantize");
    }

    /** The legacy imatrix.dat: values are means × ncall, and llama-quantize divides them by ncall. */
    @Test
    void legacyDatIsRead() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
        byte[] name = "blk.0.ffn_up.weight".getBytes(StandardCharsets.UTF_8);
        b.putInt(1).putInt(name.length).put(name).putInt(4).putInt(3).putFloat(8).putFloat(4).putFloat(2);
        byte[] ds = "wiki.train.raw".getBytes(StandardCharsets.UTF_8);
        b.putInt(10).putInt(ds.length).put(ds);
        Path f = dir.resolve("imatrix.dat");
        Files.write(f, Arrays.copyOf(b.array(), b.position()));
        ImportanceMatrix m = ImatrixFile.read(f);
        assertArrayEquals(new float[]{2, 1, 0.5f}, m.weights("blk.0.ffn_up.weight"));
        assertEquals(10, m.chunkCount());
        assertEquals(List.of("wiki.train.raw"), m.datasets());
    }

    @Test
    void forgedLegacyLengthsGiveClearErrors() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(1).putInt(3).put("abc".getBytes(StandardCharsets.US_ASCII)).putInt(1).putInt(1_000_000_000);
        Path f = dir.resolve("forged.dat");
        Files.write(f, Arrays.copyOf(b.array(), b.position()));
        Q4jException e = assertThrows(Q4jException.class, () -> ImatrixFile.read(f));
        assertTrue(e.getMessage().contains("forged.dat") && e.getMessage().contains("abc") && e.getMessage().contains("offset"), e.getMessage());
        Files.write(f, new byte[]{1, 0});
        assertThrows(Q4jException.class, () -> ImatrixFile.read(f));
    }

    /** On the bundled model, every linear layer of every block gets an entry of its input width. */
    @Test
    void collectsEveryBlockLinearOfStories260K() {
        try (Model model = ModelLoader.load(Path.of("models/stories260K/stories260K.bin"), null)) {
            Llama llama = new Llama(model);
            ImatrixCollector c = new ImatrixCollector(false);
            llama.setObserver(c);
            llama.forward(llama.newState(64, 64), new int[]{1, 403, 407, 261, 378, 2, 9, 77}, false);
            ImportanceMatrix m = c.result(List.of(), 1, 8);
            assertEquals(5 * 7, m.size());
            assertEquals(172, m.sums().get("blk.4.ffn_down.weight").length);
            assertEquals(64, m.sums().get("blk.0.attn_q.weight").length);
            assertEquals(8f, m.counts().get("blk.2.ffn_gate.weight"));
            for (float v : m.sums().get("blk.0.attn_q.weight")) assertTrue(v > 0, "RMS-normed inputs are non-zero");
        }
    }
}
