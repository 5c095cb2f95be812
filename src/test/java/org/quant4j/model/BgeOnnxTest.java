package org.quant4j.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.junit.jupiter.api.Test;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/** bge-small-en-v1.5 from its ONNX graph (12 layers, CLS pooling) agrees with ONNX Runtime. */
class BgeOnnxTest {
    @Test void clsEmbeddingsAgreeWithOnnxRuntime() throws Exception {
        Path onnx = Encoders.onnx(Encoders.BGE_SMALL);
        try (Model model = OnnxModelReader.load(onnx, new OnnxModelReader.Options(Bert.Pooling.CLS, true, null));
             Encoders.Ort ort = new Encoders.Ort(onnx, 2);
             HuggingFaceTokenizer hf = HuggingFaceTokenizer.newInstance(Path.of("target/test-models/" + Encoders.BGE_SMALL + "-tokenizer.json"))) {
            assertEquals(12, model.config().nLayers());
            assertEquals(12, model.config().nHeads());
            Bert bert = new Bert(model);
            assertEquals(Bert.Pooling.CLS, bert.pooling);
            Tokenizer tok = Tokenizers.fromMetadata(model.metadata(), model.source());
            for (String s : Encoders.SENTENCES) {
                int[] ids = tok.encode(s, true, false);
                assertArrayEquals(hf.encode(s).getIds(), Arrays.stream(ids).asLongStream().toArray(), s);
                double cos = Bert.cosine(ort.embed(ids, Bert.Pooling.CLS), bert.embed(ids));
                assertTrue(cos >= 0.99999, s + ": cosine to ONNX Runtime " + cos);
                System.out.printf("bge-small ORT vs quant4j F32 (CLS): %d tokens, cosine %.9f%n", ids.length, cos);
            }
        }
    }
}
