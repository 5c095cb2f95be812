package org.quant4j.method.encoder;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.quant4j.format.IntQuantType;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.llmint8.LlmInt8;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Bert;
import org.quant4j.model.Encoders;
import org.quant4j.model.Model;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;

import java.util.Map;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** LLM.int8(), SmoothQuant and online rotations on all-MiniLM-L6-v2 (post-LayerNorm), against the FP32 embeddings. */
class EncoderTransformsTest {
    static final Pattern LINEAR = Encoders.LINEAR;
    static Encoders.MiniLm minilm;
    static Model f32;
    static int[][] calibration;

    @BeforeAll static void load() {
        minilm = new Encoders.MiniLm();
        f32 = minilm.f32;
        calibration = minilm.calibration(32);
    }

    @AfterAll static void close() { if (minilm != null) minilm.close(); }

    static double minCosine(Model m) { return minilm.minCosine(m); }

    static Model rtn(Model m, QuantScheme s) { return Rtn.apply(m, new Rtn.Options(s, Calibrator.MIN_MAX, LINEAR, null)); }

    @Test void smoothingAndRotationKeepTheFloatFunction() {
        Map<String, float[]> stats = EncoderTransforms.channelAbsMax(f32, calibration);
        Model smoothed = EncoderTransforms.smooth(f32, stats, 0.5f);
        Model rotated = EncoderTransforms.rotate(f32, 7);
        assertTrue(smoothed.has("blk.0.attn_q" + Bert.INPUT_SMOOTH) && rotated.has("blk.5.ffn_down.input_transform"));
        assertFalse(java.util.Arrays.equals(org.quant4j.kernel.MatMul.toFloats(f32.tensor("blk.0.ffn_up.weight")),
                org.quant4j.kernel.MatMul.toFloats(rotated.tensor("blk.0.ffn_up.weight"))), "the weights are rotated");
        assertTrue(minCosine(smoothed) > 0.99999, "smoothed");
        assertTrue(minCosine(rotated) > 0.99999, "rotated");
    }

    @Test void outlierMethodsOnTheEncoder() {
        double w8a8 = minCosine(ActivationQuant.dynamicInt8(rtn(f32, QuantScheme.symmetric(8, Granularity.CHANNEL))));
        Model smoothed = EncoderTransforms.smooth(f32, EncoderTransforms.channelAbsMax(f32, calibration), 0.5f);
        double smoothW8a8 = minCosine(ActivationQuant.dynamicInt8(rtn(smoothed, QuantScheme.symmetric(8, Granularity.CHANNEL))));
        Model int8 = LlmInt8.apply(f32, 6f);
        assertTrue(int8.tensor("blk.0.ffn_down.weight").type() instanceof IntQuantType);
        double llmInt8 = minCosine(int8);
        double w4 = minCosine(rtn(f32, QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32)));
        double rotW4 = minCosine(rtn(EncoderTransforms.rotate(f32, 7), QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32)));
        System.out.printf("min cosine to FP32: W8A8 dynamic %.6f, SmoothQuant W8A8 %.6f, LLM.int8() %.6f, W4 g32 sym %.6f, rotated W4 g32 sym %.6f%n",
                w8a8, smoothW8a8, llmInt8, w4, rotW4);
        assertTrue(llmInt8 > w8a8, "LLM.int8() keeps outlier columns in float: " + llmInt8 + " vs W8A8 " + w8a8);
        assertTrue(smoothW8a8 > w8a8, "SmoothQuant " + smoothW8a8 + " vs W8A8 " + w8a8);
        assertTrue(rotW4 > 0.9, "rotated W4 " + rotW4);
    }

}
