package org.quant4j.method.gptq;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.quant4j.eval.EmbeddingAgreement;
import org.quant4j.format.IntQuantType;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Bert;
import org.quant4j.model.Encoders;
import org.quant4j.model.Model;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** GPTQ on an encoder: all-MiniLM-L6-v2 block by block through the BERT stack, calibrated on TinyStories sentences. */
class BertGptqTest {
    static Model f32;
    static Bert reference;
    static Tokenizer tokenizer;
    static int[][] calibration;

    @BeforeAll static void load() {
        f32 = OnnxModelReader.load(Encoders.onnx(Encoders.MINILM));
        reference = new Bert(f32);
        tokenizer = Tokenizers.fromMetadata(f32.metadata(), f32.source());
        List<String> sentences = EmbeddingAgreement.sentences(Path.of("data/text/tinystories_valid_excerpt.txt"), 64);
        calibration = sentences.stream().map(s -> reference.truncate(tokenizer.encode(s, true, false))).toArray(int[][]::new);
    }

    @AfterAll static void close() { if (f32 != null) f32.close(); }

    static double minCosine(Model m) {
        Bert b = new Bert(m);
        double min = 1;
        for (String s : Encoders.SENTENCES) min = Math.min(min, Bert.cosine(reference.embed(tokenizer, s), b.embed(tokenizer, s)));
        return min;
    }

    @Test void fourBitGptqRunsThroughTheEncoderAndBeatsRtn() {
        // the test sentences (accents, CJK, emoji, arithmetic) are far from TinyStories: more dampening generalises better
        Gptq.Options o = new Gptq.Options(4, false, 32, true, true, 0.3, 128, true);
        Model gptq = Gptq.apply(f32, calibration, o, null, null);
        assertEquals(36, gptq.tensors().values().stream().filter(t -> t.type() instanceof IntQuantType).count());
        Model rtn = Rtn.apply(f32, new Rtn.Options(QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32), Calibrator.MIN_MAX,
                Pattern.compile("^blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_output|ffn_up|ffn_down)\\.weight$"), null));
        double g = minCosine(gptq), r = minCosine(rtn);
        System.out.printf("min cosine to FP32 on the test sentences: GPTQ W4 g32 asym %.6f, RTN W4 g32 asym %.6f%n", g, r);
        assertTrue(g > r, "GPTQ " + g + " vs RTN " + r);
        assertTrue(g > 0.96, "GPTQ W4 g32 " + g);
    }
}
