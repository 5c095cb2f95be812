package org.quant4j.io.hf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.safetensors.SafetensorsWriter;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.awq.Awq;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
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
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The AutoAWQ GEMM layout against AutoAWQ's own packing and unpacking: src/test/resources/awq was written by
 * tools/awq_reference.py (from_linear's order_map packing, packing_utils.dequantize_gemm) with Debian's python3-torch.
 */
class AwqLayoutTest {

    static byte[] resource(String name) throws IOException {
        try (InputStream in = AwqLayoutTest.class.getResourceAsStream("/awq/" + name)) {
            assertNotNull(in, name);
            return in.readAllBytes();
        }
    }

    static float[] floats(byte[] b) {
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[b.length / 4];
        for (int i = 0; i < f.length; i++) f[i] = bb.getFloat();
        return f;
    }

    @Test
    void packsLikeAutoAwqAndDequantizesLikeItsLoader() throws IOException {
        ByteBuffer b = ByteBuffer.wrap(resource("layer.in")).order(ByteOrder.LITTLE_ENDIAN);
        int out = b.getInt(), in = b.getInt(), gs = b.getInt(), groups = in / gs;
        int[] codes = new int[out * in], zeros = new int[groups * out];
        short[] scales = new short[groups * out];
        for (int i = 0; i < codes.length; i++) codes[i] = b.get() & 0xff;
        for (int i = 0; i < zeros.length; i++) zeros[i] = b.get() & 0xff;
        for (int i = 0; i < scales.length; i++) scales[i] = b.getShort();
        IntQuantType type = new IntQuantType(4, gs, false);
        long rowBytes = type.rowBytes(in);
        MemorySegment data = MemorySegment.ofArray(new byte[(int) (rowBytes * out)]);
        int[] q = new int[in];
        for (int o = 0; o < out; o++) {
            for (int c = 0; c < in; c++) q[c] = codes[o * in + c] - 8;
            for (int g = 0; g < groups; g++) {
                type.writeGroup(data, o * rowBytes + type.groupOffset(in, g), gs, Float.float16ToFloat(scales[g * out + o]), zeros[g * out + o] - 8, q, g * gs);
            }
        }
        Tensor t = new Tensor("w", type, new long[]{out, in}, data);
        List<SafetensorsWriter.Entry> e = AwqLayout.encode("p", t);
        assertEquals(List.of("p.qweight", "p.qzeros", "p.scales"), e.stream().map(SafetensorsWriter.Entry::name).toList());
        assertArrayEquals(new long[]{in, out / 8}, e.get(0).shape());
        assertArrayEquals(new long[]{groups, out / 8}, e.get(1).shape());
        assertArrayEquals(new long[]{groups, out}, e.get(2).shape());
        assertArrayEquals(resource("layer.qweight"), e.get(0).data().toArray(ValueLayout.JAVA_BYTE), "qweight");
        assertArrayEquals(resource("layer.qzeros"), e.get(1).data().toArray(ValueLayout.JAVA_BYTE), "qzeros");
        assertArrayEquals(resource("layer.scales"), e.get(2).data().toArray(ValueLayout.JAVA_BYTE), "scales");
        // their bytes, read: the same groups, and dequantize_gemm's values
        Tensor back = AwqLayout.decode("w", gs, out, in, MemorySegment.ofArray(resource("layer.qweight")),
                MemorySegment.ofArray(resource("layer.qzeros")), MemorySegment.ofArray(resource("layer.scales")));
        assertArrayEquals(data.toArray(ValueLayout.JAVA_BYTE), back.data().toArray(ValueLayout.JAVA_BYTE), "decode(their bytes) == t");
        float[] deq = floats(resource("layer.deq.f32"));              // (in, out)
        float[] w = MatMul.toFloats(back);                               // (out, in)
        for (int o = 0; o < out; o++) for (int c = 0; c < in; c++) assertEquals(deq[c * out + o], w[o * in + c], 0f, "w[" + o + ", " + c + "]");
    }

    @Test
    void readsACheckpointItDidNotWrite(@TempDir Path dir) throws IOException {
        // a whole LlamaForCausalLM AWQ checkpoint made by tools/awq_reference.py --checkpoint
        for (String f : List.of("config.json", "model.safetensors")) Files.write(dir.resolve(f), resource("checkpoint/" + f));
        float[] expected = floats(resource("checkpoint/expected.f32"));
        try (Model m = ModelLoader.load(dir)) {
            int checked = 0;
            for (String line : new String(resource("checkpoint/expected.tsv")).lines().toList()) {
                String[] f = line.split("\t");
                int out = Integer.parseInt(f[1]), in = Integer.parseInt(f[2]), off = Integer.parseInt(f[3]);
                String gguf = HfNames.toGguf(f[0]);
                Tensor t = m.tensor(gguf);
                assertEquals(new IntQuantType(4, 32, false), t.type(), gguf);
                Tensor want = Tensor.ofFloats(gguf, java.util.Arrays.copyOfRange(expected, off, off + out * in), out, in);
                if (gguf.contains("attn_q")) want = HfCheckpoint.permute(want, m.config().nHeads(), true);  // llama.cpp's q/k row order
                if (gguf.contains("attn_k")) want = HfCheckpoint.permute(want, m.config().nKvHeads(), true);
                assertArrayEquals(MatMul.toFloats(want), MatMul.toFloats(t), 0f, gguf);
                checked++;
            }
            assertEquals(14, checked);
            Llama llama = new Llama(m);                                 // and it runs
            float[] logits = llama.forward(llama.newState(16, 4), new int[]{1, 5, 9, 2}, false);
            for (float v : logits) assertTrue(Float.isFinite(v));
        }
    }

    @Test
    void awqCheckpointReloadsBitIdentical(@TempDir Path dir) throws Exception {
        try (Model base = GptqLayoutTest.randomModel()) {
            int[][] samples = {{1, 5, 9, 13, 2, 7, 40, 41, 42, 3, 3, 8}, {1, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70}};
            Model q = Awq.apply(base, samples, Awq.Options.of(4, 32), null, null);
            HfCheckpoint.save(q, dir, 0, HfCheckpoint.Layout.AWQ);
            var qc = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Files.readString(dir.resolve("config.json"))).get("quantization_config");
            assertEquals("awq", qc.get("quant_method").asText());
            assertEquals("gemm", qc.get("version").asText());
            assertEquals(4, qc.get("bits").asInt());
            assertEquals(32, qc.get("group_size").asInt());
            assertTrue(qc.get("zero_point").asBoolean());
            try (Model back = ModelLoader.load(dir)) {
                int n = 0;
                for (Tensor t : q.tensors().values()) {
                    if (!(t.type() instanceof IntQuantType)) continue;
                    assertArrayEquals(t.data().toArray(ValueLayout.JAVA_BYTE), back.tensor(t.name()).data().toArray(ValueLayout.JAVA_BYTE), t.name());
                    n++;
                }
                assertEquals(14, n);
                int[] tokens = {1, 4, 8, 15, 16, 23, 42};
                Llama a = new Llama(q), b = new Llama(back);
                assertArrayEquals(a.forward(a.newState(16, 8), tokens, true), b.forward(b.newState(16, 8), tokens, true), 0f);
            }
        }
    }

    @Test
    void symmetricGroupsAreWrittenWithZeroEightAndReadAsTheSameValues() {
        Awq.Options o = Awq.Options.of(4, 32).withZeroPoint(false);
        float[] w = new float[32 * 64];
        java.util.SplittableRandom r = new java.util.SplittableRandom(4);
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        Tensor t = Awq.toTensor("w", w, 32, 64, o);
        List<SafetensorsWriter.Entry> e = AwqLayout.encode("p", t);
        Tensor back = AwqLayout.decode("w", 32, 32, 64, e.get(0).data(), e.get(1).data(), e.get(2).data());
        assertArrayEquals(MatMul.toFloats(t), MatMul.toFloats(back), 0f);
    }

    @Test
    void refusesWhatTheLayoutCannotHold() {
        IntQuantType t3 = new IntQuantType(3, 32, false);
        Tensor w3 = new Tensor("w3", t3, new long[]{32, 64}, MemorySegment.ofArray(new byte[(int) (32 * t3.rowBytes(64))]));
        assertTrue(assertThrows(Q4jException.class, () -> AwqLayout.encode("p", w3)).getMessage().contains("4 bits only"));
        IntQuantType t4 = new IntQuantType(4, 32, false);
        Tensor ragged = new Tensor("w", t4, new long[]{64, 172}, MemorySegment.ofArray(new byte[(int) (64 * t4.rowBytes(172))]));
        assertTrue(assertThrows(Q4jException.class, () -> AwqLayout.encode("p", ragged)).getMessage().contains("groups of 32"));
        MemorySegment tooShort = MemorySegment.ofArray(new byte[12]);
        assertTrue(assertThrows(Q4jException.class, () -> AwqLayout.decode("w", 32, 32, 64, tooShort, tooShort, tooShort)).getMessage().contains("qweight"));
    }
}
