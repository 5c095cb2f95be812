package org.quant4j.io.hf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.safetensors.SafetensorsWriter;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.model.LlamaConfig;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The Hugging Face GPTQ layout against GPTQModel's own packing: src/test/resources/gptq/hf_pack was written by
 * tools/gptq_reference.py pack-fixture (their QuantLinear.pack loops and v2 → v1 zero offset on random codes).
 */
class GptqLayoutTest {

    static byte[] resource(String name) throws IOException {
        try (InputStream in = GptqLayoutTest.class.getResourceAsStream("/gptq/hf_pack/" + name)) {
            assertNotNull(in, name);
            return in.readAllBytes();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"w4_g32", "w4_g64_sym", "w2_g32", "w8_g128", "w4_g-1", "w3_g32", "w3_g64_sym"})
    void packsLikeGptqModelAndReadsBack(String name) throws IOException {
        String[] row = new String(resource("pack.tsv")).lines().filter(l -> l.startsWith(name + "\t")).findFirst().orElseThrow().split("\t");
        int bits = Integer.parseInt(row[1]), gs = Integer.parseInt(row[2]);
        boolean sym = row[3].equals("1");
        ByteBuffer b = ByteBuffer.wrap(resource(name + ".in")).order(ByteOrder.LITTLE_ENDIAN);
        int out = b.getInt(), in = b.getInt(), groups = b.getInt();
        int[] codes = new int[out * in], zeros = new int[groups * out];
        short[] scales = new short[groups * out];
        for (int i = 0; i < codes.length; i++) codes[i] = b.get() & 0xff;
        for (int i = 0; i < zeros.length; i++) zeros[i] = b.get() & 0xff;
        for (int i = 0; i < scales.length; i++) scales[i] = b.getShort();
        // the same weight as quant4j integer groups
        IntQuantType type = gs < 0 ? IntQuantType.perChannel(bits, sym) : new IntQuantType(bits, gs, sym);
        int half = 1 << (bits - 1);
        long rowBytes = type.rowBytes(in);
        MemorySegment data = MemorySegment.ofArray(new byte[(int) (rowBytes * out)]);
        int[] q = new int[in];
        for (int o = 0; o < out; o++) {
            for (int c = 0; c < in; c++) q[c] = codes[o * in + c] - half;
            for (int g = 0; g < groups; g++) {
                int n = type.groupLength(in, g), c0 = type.perChannel() ? 0 : g * gs;
                type.writeGroup(data, o * rowBytes + type.groupOffset(in, g), n, Float.float16ToFloat(scales[g * out + o]),
                        sym ? 0 : zeros[g * out + o] - half, q, c0);
            }
        }
        Tensor t = new Tensor("w", type, new long[]{out, in}, data);
        List<SafetensorsWriter.Entry> e = GptqLayout.encode("p", t);
        assertEquals(List.of("p.qweight", "p.qzeros", "p.scales", "p.g_idx"), e.stream().map(SafetensorsWriter.Entry::name).toList());
        assertArrayEquals(resource(name + ".qweight"), e.get(0).data().toArray(ValueLayout.JAVA_BYTE), "qweight");
        assertArrayEquals(resource(name + ".qzeros"), e.get(1).data().toArray(ValueLayout.JAVA_BYTE), "qzeros");
        short[] writtenScales = new short[scales.length];
        for (int i = 0; i < scales.length; i++) writtenScales[i] = e.get(2).data().getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i);
        assertArrayEquals(scales, writtenScales, "scales");
        Tensor back = GptqLayout.decode("w", bits, gs, sym, out, in, e.get(0).data(), e.get(1).data(), e.get(2).data(), e.get(3).data());
        assertEquals(type, back.type());
        assertArrayEquals(data.toArray(ValueLayout.JAVA_BYTE), back.data().toArray(ValueLayout.JAVA_BYTE), "decode(encode(t)) == t");
    }

    @Test
    void refusesOtherBitWidthsRaggedShapesAndPermutedGroups() {
        Tensor t5 = new Tensor("w5", new IntQuantType(5, 32, false), new long[]{32, 64}, MemorySegment.ofArray(new byte[(int) (32 * new IntQuantType(5, 32, false).rowBytes(64))]));
        assertThrows(Q4jException.class, () -> GptqLayout.encode("p", t5));
        Tensor ragged = new Tensor("w", new IntQuantType(4, 32, false), new long[]{64, 172}, MemorySegment.ofArray(new byte[(int) (64 * new IntQuantType(4, 32, false).rowBytes(172))]));
        Q4jException e = assertThrows(Q4jException.class, () -> GptqLayout.encode("p", ragged));
        assertTrue(e.getMessage().contains("multiples of 32"), e.getMessage());
        int[] gIdx = new int[64];
        gIdx[0] = 1;                                                     // act-order g_idx
        MemorySegment z = MemorySegment.ofArray(new byte[4 * 2 * 4]), w = MemorySegment.ofArray(new byte[4 * 8 * 32]), s = MemorySegment.ofArray(new byte[2 * 2 * 32]);
        MemorySegment g = MemorySegment.ofArray(new byte[4 * 64]);
        for (int i = 0; i < 64; i++) g.setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i, gIdx[i] + i / 32);
        e = assertThrows(Q4jException.class, () -> GptqLayout.decode("w", 4, 32, false, 32, 64, w, z, s, g));
        assertTrue(e.getMessage().contains("g_idx"), e.getMessage());
    }

    /** A small random Llama (dim 64, hidden 128, 2 layers) whose dimensions all divide into 32s. */
    static Model randomModel() {
        LlamaConfig c = new LlamaConfig("llama", 64, 128, 2, 4, 2, 16, 96, 64, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, false, false);
        java.util.Random r = new java.util.Random(5);
        Map<String, Tensor> t = new LinkedHashMap<>();
        java.util.function.BiConsumer<String, long[]> matrix = (name, shape) -> {
            float[] v = new float[(int) (shape[0] * shape[1])];
            for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * 0.1);
            t.put(name, Tensor.ofFloats(name, v, shape));
        };
        java.util.function.Consumer<String> ones = name -> {
            float[] v = new float[64];
            java.util.Arrays.fill(v, 1f);
            t.put(name, Tensor.ofFloats(name, v, 64));
        };
        matrix.accept(Model.TOKEN_EMBD, new long[]{96, 64});
        ones.accept(Model.OUTPUT_NORM);
        matrix.accept(Model.OUTPUT, new long[]{96, 64});
        for (int l = 0; l < 2; l++) {
            matrix.accept(Model.attnQ(l), new long[]{64, 64});
            matrix.accept(Model.attnK(l), new long[]{32, 64});
            matrix.accept(Model.attnV(l), new long[]{32, 64});
            matrix.accept(Model.attnOutput(l), new long[]{64, 64});
            ones.accept(Model.attnNorm(l));
            matrix.accept(Model.ffnGate(l), new long[]{128, 64});
            matrix.accept(Model.ffnDown(l), new long[]{64, 128});
            matrix.accept(Model.ffnUp(l), new long[]{128, 64});
            ones.accept(Model.ffnNorm(l));
        }
        return new Model(c, t, Map.of(), "random", List.of());
    }

    /** The 3-bit stream: value k of a column at bits [3k, 3k + 3), values 10 and 21 of every 32 straddling two words. */
    @Test
    void threeBitValuesStraddleWordsAsAStream() {
        int[] words = new int[3];
        for (int k = 0; k < 32; k++) GptqLayout.put(words, 0, 1, 3L * k, 3, k % 8);
        for (int k = 0; k < 32; k++) assertEquals(k % 8, GptqLayout.get(i -> words[i], 3L * k, 3), "value " + k);
        assertEquals(10 % 8 & 3, words[0] >>> 30, "value 10: its low two bits end word 0");
        assertEquals(10 % 8 >> 2, words[1] & 1, "and its high bit starts word 1");
        assertEquals(21 % 8 & 1, words[1] >>> 31, "value 21: its low bit ends word 1");
        assertEquals(21 % 8 >> 1, words[2] & 3, "and its two high bits start word 2");
    }

    @ParameterizedTest
    @ValueSource(ints = {4, 3})
    void gptqCheckpointReloadsWithIdenticalLogits(int bits, @TempDir Path dir) throws Exception {
        // a small random Llama whose dimensions divide into 32s, GPTQ W4 / W3 g32 asymmetric, written in the HF GPTQ layout
        try (Model base = randomModel()) {
            int[][] samples = {{1, 5, 9, 13, 2, 7, 40, 41, 42, 3, 3, 8}, {1, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70}};
            Model q = Gptq.apply(base, samples, Gptq.Options.of(bits, false, 32), null, null);
            List<Path> files = HfCheckpoint.save(q, dir, 0, HfCheckpoint.Layout.GPTQ);
            String config = Files.readString(dir.resolve("config.json"));
            var qc = new com.fasterxml.jackson.databind.ObjectMapper().readTree(config).get("quantization_config");
            assertEquals("gptq", qc.get("quant_method").asText(), config);
            assertEquals(bits, qc.get("bits").asInt());
            assertEquals(32, qc.get("group_size").asInt());
            assertFalse(qc.get("sym").asBoolean());
            assertEquals("gptq", qc.get("checkpoint_format").asText());
            assertFalse(files.isEmpty());
            try (var listing = Files.list(dir)) {
                assertTrue(listing.noneMatch(f -> f.getFileName().toString().startsWith(".")), "the encoded weights' temporary file is gone");
            }
            try (Model back = ModelLoader.load(dir)) {
                for (Tensor t : q.tensors().values()) {
                    if (!(t.type() instanceof IntQuantType)) continue;
                    assertArrayEquals(t.data().toArray(ValueLayout.JAVA_BYTE), back.tensor(t.name()).data().toArray(ValueLayout.JAVA_BYTE), t.name());
                }
                int[] tokens = {1, 4, 8, 15, 16, 23, 42};
                Llama a = new Llama(q), b = new Llama(back);
                assertArrayEquals(a.forward(a.newState(16, 8), tokens, true), b.forward(b.newState(16, 8), tokens, true), 0f);
            }
        }
    }
}
