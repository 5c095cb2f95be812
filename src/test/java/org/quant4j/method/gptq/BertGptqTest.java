package org.quant4j.method.gptq;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.quant4j.format.IntQuantType;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Encoders;
import org.quant4j.model.Model;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;

import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** GPTQ on an encoder: all-MiniLM-L6-v2 block by block through the BERT stack, calibrated on TinyStories sentences. */
class BertGptqTest {
    static Encoders.MiniLm minilm;
    static Model f32;
    static int[][] calibration;

    @BeforeAll static void load() {
        minilm = new Encoders.MiniLm();
        f32 = minilm.f32;
        calibration = minilm.calibration(64);
    }

    @AfterAll static void close() { if (minilm != null) minilm.close(); }

    static double minCosine(Model m) { return minilm.minCosine(m); }

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
