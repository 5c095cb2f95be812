package org.quant4j.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.kernel.MatMul;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/** all-MiniLM-L6-v2 from its ONNX graph: weights mapped right, tokenizer ids as Hugging Face's, embeddings as ONNX Runtime's. */
class BertOnnxTest {
    static Model model;
    static Bert bert;
    static Tokenizer tokenizer;
    static Encoders.Ort ort;

    @BeforeAll static void load() {
        Path onnx = Encoders.onnx(Encoders.MINILM);
        model = OnnxModelReader.load(onnx);
        bert = new Bert(model);
        tokenizer = Tokenizers.fromMetadata(model.metadata(), model.source());
        ort = new Encoders.Ort(onnx, 2);
    }

    @AfterAll static void close() {
        if (ort != null) ort.close();
        if (model != null) model.close();
    }

    @Test void configFromTheGraph() {
        LlamaConfig c = model.config();
        assertEquals("bert", c.architecture());
        assertEquals(384, c.dim());
        assertEquals(1536, c.hiddenDim());
        assertEquals(6, c.nLayers());
        assertEquals(12, c.nHeads());
        assertEquals(32, c.headDim());
        assertEquals(30522, c.vocabSize());
        assertEquals(512, c.contextLength());
        assertEquals(1e-12f, c.normEps());
        assertEquals(Bert.Pooling.MEAN, bert.pooling);
        assertEquals(Bert.Gelu.ERF, bert.gelu);
        // 6 blocks × 16 tensors + 5 embedding tensors, nothing else (position_ids is not a weight)
        assertEquals(6 * 16 + 5, model.tensors().size());
    }

    @Test void matMulWeightsAreTransposedToOutIn() throws Exception {
        Tensor up = model.tensor("blk.0.ffn_up.weight"), down = model.tensor("blk.0.ffn_down.weight");
        assertArrayEquals(new long[]{1536, 384}, up.shape());
        assertArrayEquals(new long[]{384, 1536}, down.shape());
        // the graph's x · B weight for layer 0's intermediate.dense is B [384, 1536]: up[r][c] must be B[c][r]
        var graph = org.quant4j.io.onnx.proto.Onnx.ModelProto.parseFrom(java.nio.file.Files.readAllBytes(Path.of(model.source()))).getGraph();
        String bName = graph.getNodeList().stream().filter(n -> n.getName().equals("/encoder/layer.0/intermediate/dense/MatMul"))
                .findFirst().orElseThrow().getInput(1);
        var b = graph.getInitializerList().stream().filter(t -> t.getName().equals(bName)).findFirst().orElseThrow();
        assertEquals(java.util.List.of(384L, 1536L), b.getDimsList());
        var raw = b.getRawData().asReadOnlyByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        float[] w = MatMul.toFloats(up);
        for (int r : new int[]{0, 1, 777, 1535}) {
            for (int c : new int[]{0, 5, 383}) assertEquals(raw.get(c * 1536 + r), w[r * 384 + c], "up[" + r + "][" + c + "]");
        }
    }

    @Test void tokenizerIdsMatchHuggingFaceTokenizers() throws Exception {
        try (HuggingFaceTokenizer hf = HuggingFaceTokenizer.newInstance(Path.of("target/test-models/all-minilm-l6-v2-tokenizer.json"))) {
            for (String s : Encoders.SENTENCES) {
                long[] expected = hf.encode(s).getIds();
                int[] ids = tokenizer.encode(s, true, false);
                assertArrayEquals(expected, Arrays.stream(ids).asLongStream().toArray(), s);
            }
        }
    }

    @Test void hiddenStatesAndEmbeddingsAgreeWithOnnxRuntime() {
        for (String s : Encoders.SENTENCES) {
            int[] ids = tokenizer.encode(s, true, false);
            float[] ref = ort.hiddenStates(ids);
            float[] ours = bert.hiddenStates(ids, null);
            float maxDiff = 0;
            for (int i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref[i] - ours[i]));
            assertTrue(maxDiff < 1e-4f, s + ": max |Δ| of last_hidden_state " + maxDiff);
            double cos = Bert.cosine(ort.embed(ids), bert.embed(ids));
            assertTrue(cos >= 0.99999, s + ": cosine to ONNX Runtime " + cos);
            System.out.printf("ORT vs quant4j F32: %d tokens, max |dh| %.2e, cosine %.9f%n", ids.length, maxDiff, cos);
        }
    }

    @Test void embeddingsAreUnitLengthAndSimilarSentencesAreCloser() {
        float[] a = bert.embed(tokenizer, "A man is playing a guitar.");
        float[] b = bert.embed(tokenizer, "Someone plays the guitar.");
        float[] c = bert.embed(tokenizer, "The stock market fell sharply today.");
        double norm = 0;
        for (float f : a) norm += f * f;
        assertEquals(1.0, norm, 1e-5);
        assertTrue(Bert.cosine(a, b) > Bert.cosine(a, c) + 0.3, Bert.cosine(a, b) + " vs " + Bert.cosine(a, c));
    }

    @Test void safetensorsCheckpointWithHuggingFaceNamesLoadsTheSameModel(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        java.util.List<Tensor> hf = new java.util.ArrayList<>();
        for (Tensor t : model.tensors().values()) hf.add(t.withName("bert." + org.quant4j.io.hf.BertNames.toHf(t.name())));
        hf.add(Tensor.ofFloats("pooler.dense.bias", new float[384], 384)); // not part of the encoder: ignored
        org.quant4j.io.safetensors.SafetensorsWriter.writeTensors(dir.resolve("model.safetensors"), java.util.Map.of(), hf);
        java.nio.file.Files.writeString(dir.resolve("config.json"), """
                {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384, "num_attention_heads": 12,
                 "intermediate_size": 1536, "num_hidden_layers": 6, "vocab_size": 30522, "max_position_embeddings": 512,
                 "layer_norm_eps": 1e-12, "hidden_act": "gelu", "type_vocab_size": 2}""");
        java.nio.file.Files.copy(Path.of("target/test-models/all-minilm-l6-v2-tokenizer.json"), dir.resolve("tokenizer.json"));
        java.nio.file.Files.createDirectories(dir.resolve("1_Pooling"));
        java.nio.file.Files.writeString(dir.resolve("1_Pooling/config.json"), "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": false}");
        try (Model st = org.quant4j.io.ModelLoader.load(dir)) {
            Bert b = new Bert(st);
            assertEquals(Bert.Pooling.CLS, b.pooling);
            assertEquals(model.config(), st.config());
            int[] ids = tokenizer.encode(Encoders.SENTENCES[3], true, false);
            assertArrayEquals(ids, Tokenizers.fromMetadata(st.metadata(), st.source()).encode(Encoders.SENTENCES[3], true, false));
            float[] h = bert.hiddenStates(ids, null);
            assertArrayEquals(h, b.hiddenStates(ids, null));
            assertArrayEquals(Bert.pool(h, ids.length, 384, Bert.Pooling.CLS, true), b.embed(ids));
        }
    }

    /** The same graph with every large initializer moved to a side file, as onnx's convert_model_to_external_data writes it. */
    @Test void initializersInExternalDataLoadTheSameWeights(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        var proto = org.quant4j.io.onnx.proto.Onnx.ModelProto.parseFrom(java.nio.file.Files.readAllBytes(Path.of(model.source())));
        var graph = proto.getGraph().toBuilder();
        try (var data = new java.io.ByteArrayOutputStream()) {
            long offset = 0;
            for (int i = 0; i < graph.getInitializerCount(); i++) {
                var t = graph.getInitializer(i);
                if (t.getRawData().size() < 1024) continue;
                while (offset % 4096 != 0) { data.write(0); offset++; } // onnx aligns large tensors
                byte[] raw = t.getRawData().toByteArray();
                data.write(raw);
                graph.setInitializer(i, t.toBuilder().clearRawData()
                        .setDataLocation(org.quant4j.io.onnx.proto.Onnx.TensorProto.DataLocation.EXTERNAL)
                        .addExternalData(kv("location", "weights.data")).addExternalData(kv("offset", Long.toString(offset)))
                        .addExternalData(kv("length", Integer.toString(raw.length))));
                offset += raw.length;
            }
            java.nio.file.Files.write(dir.resolve("weights.data"), data.toByteArray());
        }
        Path onnx = dir.resolve("minilm-external.onnx");
        java.nio.file.Files.write(onnx, proto.toBuilder().setGraph(graph).build().toByteArray());
        assertTrue(java.nio.file.Files.size(onnx) < 1_000_000, "the graph file holds no weights");
        try (Model ext = org.quant4j.io.onnx.OnnxModelReader.load(onnx,
                new org.quant4j.io.onnx.OnnxModelReader.Options(null, true, Path.of("target/test-models/all-minilm-l6-v2-tokenizer.json")))) {
            for (Tensor t : model.tensors().values()) {
                assertArrayEquals(MatMul.toFloats(t), MatMul.toFloats(ext.tensor(t.name())), t.name());
            }
        }
        // a location outside the model's folder is refused
        var evil = proto.getGraph().toBuilder();
        var first = evil.getInitializer(1);
        evil.setInitializer(1, first.toBuilder().clearRawData().setDataLocation(org.quant4j.io.onnx.proto.Onnx.TensorProto.DataLocation.EXTERNAL)
                .addExternalData(kv("location", "../../etc/passwd")));
        Path bad = dir.resolve("evil.onnx");
        java.nio.file.Files.write(bad, proto.toBuilder().setGraph(evil).build().toByteArray());
        var e = assertThrows(org.quant4j.util.Q4jException.class, () -> org.quant4j.io.onnx.OnnxModelReader.load(bad));
        assertTrue(e.getMessage().contains("outside the model's folder"), e.getMessage());
    }

    private static org.quant4j.io.onnx.proto.Onnx.StringStringEntryProto kv(String k, String v) {
        return org.quant4j.io.onnx.proto.Onnx.StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
    }

    @Test void notAnOnnxFileGivesOneLineError(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path junk = dir.resolve("junk.onnx");
        java.nio.file.Files.write(junk, new byte[]{(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x12, 0x00});
        var e = assertThrows(org.quant4j.util.Q4jException.class, () -> org.quant4j.io.onnx.OnnxModelReader.load(junk));
        assertTrue(e.getMessage().startsWith(junk.toString()), e.getMessage());
    }
}
