package org.quant4j.method.awq;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.quant4j.format.IntQuantType;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Bert;
import org.quant4j.model.Encoders;
import org.quant4j.model.Model;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;

import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** AWQ on a post-LayerNorm encoder: all-MiniLM-L6-v2, scales online (q/k/v, up, down) or folded (v → o). */
class BertAwqTest {
    static Encoders.MiniLm minilm;
    static Model f32;
    static int[][] calibration;

    @BeforeAll static void load() {
        minilm = new Encoders.MiniLm();
        f32 = minilm.f32;
        calibration = minilm.calibration(32);
    }

    @AfterAll static void close() { if (minilm != null) minilm.close(); }

    /** α on a grid of 10 instead of 20: half the search time in a unit test. */
    static Awq.Options coarse(Awq.Options o) {
        return new Awq.Options(o.bits(), o.groupSize(), o.zeroPoint(), 10, o.maxShrink(), o.clipGrid(), o.clipTokens(), o.clip(), o.quantize());
    }

    static double minCosine(Model m) { return minilm.minCosine(m); }

    @Test void foldedAndOnlineScalesLeaveTheFloatFunctionUnchanged() {
        Model scaled = BertAwq.apply(f32, calibration, coarse(Awq.Options.of(4, 32).scalesOnly()), null);
        for (int l = 0; l < f32.config().nLayers(); l++) {
            for (String site : new String[]{"attn_q", "ffn_up", "ffn_down"}) assertTrue(scaled.has(Model.blk(l, site + Bert.INPUT_SMOOTH)), site);
            assertFalse(scaled.has(Model.blk(l, "attn_output" + Bert.INPUT_SMOOTH)), "o's scales are folded into v");
        }
        float[] wv = org.quant4j.kernel.MatMul.toFloats(scaled.tensor("blk.0.attn_v.weight")), wv0 = org.quant4j.kernel.MatMul.toFloats(f32.tensor("blk.0.attn_v.weight"));
        assertFalse(java.util.Arrays.equals(wv, wv0), "the search moved v's weights");
        double min = minCosine(scaled);
        assertTrue(min > 0.99999, "scales only: min cosine " + min);
    }

    /**
     * With 32 TinyStories sentences and llm-awq's grid of 20 AWQ beats RTN on the odd test sentences (0.9786 against
     * 0.9640 when written); with 16 sentences and a grid of 10 it did not (0.901): the searched scales over-fit a
     * small calibration set, the same weakness GPTQ shows on sentences unlike its calibration text.
     */
    @Test void fourBitAwqBeatsRtnOnTheEncoder() {
        Model awq = BertAwq.apply(f32, calibration, Awq.Options.of(4, 32), null);
        assertEquals(36, awq.tensors().values().stream().filter(t -> t.type() instanceof IntQuantType).count());
        Model rtn = Rtn.apply(f32, new Rtn.Options(QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32), Calibrator.MIN_MAX,
                Pattern.compile("^blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_output|ffn_up|ffn_down)\\.weight$"), null));
        double a = minCosine(awq), r = minCosine(rtn);
        System.out.printf("min cosine to FP32 on the test sentences: AWQ W4 g32 asym %.6f, RTN W4 g32 asym %.6f%n", a, r);
        assertTrue(a > r, "AWQ " + a + " vs RTN " + r);
    }
}
