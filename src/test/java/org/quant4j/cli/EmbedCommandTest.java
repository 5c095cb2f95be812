package org.quant4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.model.Bert;
import org.quant4j.model.Encoders;
import org.quant4j.model.Model;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class EmbedCommandTest {
    @Test void jsonHoldsTokensAndTheModelsEmbedding() throws Exception {
        Path onnx = Encoders.onnx(Encoders.MINILM);
        CliTest.Outcome o = CliTest.run("embed", onnx.toString(), "--json", "--text", "Crème brûlée, please.", "--text", "a");
        assertEquals(0, o.code(), o.err());
        JsonNode rows = new ObjectMapper().readTree(o.out());
        assertEquals(2, rows.size());
        try (Model m = OnnxModelReader.load(onnx)) {
            Bert bert = new Bert(m);
            var tok = Tokenizers.fromMetadata(m.metadata(), m.source());
            int[] ids = tok.encode("Crème brûlée, please.", true, false);
            JsonNode row = rows.get(0);
            assertEquals("Crème brûlée, please.", row.get("text").asText());
            assertEquals(ids.length, row.get("tokens").size());
            for (int i = 0; i < ids.length; i++) assertEquals(ids[i], row.get("tokens").get(i).asInt());
            float[] expected = bert.embed(ids);
            assertEquals(384, row.get("embedding").size());
            for (int i = 0; i < expected.length; i++) assertEquals(expected[i], (float) row.get("embedding").get(i).asDouble(), 0f);
        }
    }

    @Test void clsPoolingDiffersFromMean() {
        Path onnx = Encoders.onnx(Encoders.MINILM);
        CliTest.Outcome mean = CliTest.run("embed", onnx.toString(), "--text", "hello world");
        CliTest.Outcome cls = CliTest.run("embed", onnx.toString(), "--pooling", "cls", "--text", "hello world");
        assertEquals(0, cls.code(), cls.err());
        assertEquals(384, mean.out().strip().split(" ").length);
        assertNotEquals(mean.out(), cls.out());
        CliTest.Outcome bad = CliTest.run("embed", onnx.toString(), "--pooling", "max", "--text", "x");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("unknown pooling 'max'"), bad.err());
    }

    @Test void evalEmbeddingsComparesAQuantizedEncoderWithItsBase(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path onnx = Encoders.onnx(Encoders.MINILM);
        Path q4 = dir.resolve("minilm-w4.gguf");
        CliTest.Outcome q = CliTest.run("quantize", onnx.toString(), q4.toString(), "--bits", "4", "--granularity", "group",
                "--group-size", "32", "--symmetric", "--exclude", "^(token_embd|position_embd|token_types)\\.weight$");
        assertEquals(0, q.code(), q.err());
        CliTest.Outcome same = CliTest.run("eval", onnx.toString(), "--embeddings", onnx.toString(), "--sentences", "30", "--queries", "10", "--json");
        assertEquals(0, same.code(), same.err());
        JsonNode s = new ObjectMapper().readTree(same.out());
        assertEquals(1.0, s.get("min_cosine").asDouble(), 1e-6);
        assertEquals(1.0, s.get("top10_agreement").asDouble());
        CliTest.Outcome w4 = CliTest.run("eval", q4.toString(), "--embeddings", onnx.toString(), "--sentences", "30", "--queries", "10", "--json");
        assertEquals(0, w4.code(), w4.err());
        JsonNode r = new ObjectMapper().readTree(w4.out());
        assertEquals(30, r.get("sentences").asInt());
        assertTrue(r.get("min_cosine").asDouble() < 0.999 && r.get("min_cosine").asDouble() > 0.8, r.toString());
        assertTrue(r.get("mean_cosine").asDouble() >= r.get("min_cosine").asDouble());
    }
}
