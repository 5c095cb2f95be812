package org.quant4j.method.actquant;

import org.quant4j.io.gguf.GgufValue;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;

import java.util.Map;

/**
 * The weight-and-activation schemes the outlier methods are compared at (issue 6; DuQuant's setup below 8 bits):
 * RTN weights for every linear layer (not the embedding or the head), activations quantized per token.
 * <ul>
 *   <li>W8A8: 8-bit symmetric per-channel weights, int8 activations per token (dynamic) or per tensor (static), on the
 *       int8 × int8 → int32 kernels;</li>
 *   <li>W4A8: 4-bit asymmetric per-channel weights, int8 per-token (absmax) activations on the same integer kernels
 *       (the 4-bit codes unpacked to int8 per row);</li>
 *   <li>W4A4: 4-bit asymmetric per-channel weights, per-token asymmetric 4-bit activations, on the same integer
 *       kernels (activation codes minus their zero point as int8; {@code -Dquant4j.w4a4=simulate} runs the exact
 *       simulation instead: activations rounded to their grid, then multiplied with the integer weights in float).</li>
 * </ul>
 */
public enum WeightActivationScheme {
    W8A8_DYNAMIC, W8A8_STATIC, W4A8, W4A4;

    public String label() {
        return switch (this) {
            case W8A8_DYNAMIC -> "W8A8";
            case W8A8_STATIC -> "W8A8 static";
            case W4A8 -> "W4A8";
            case W4A4 -> "W4A4";
        };
    }

    public QuantScheme weights() {
        return this == W4A8 || this == W4A4 ? QuantScheme.asymmetric(4, Granularity.CHANNEL) : QuantScheme.symmetric(8, Granularity.CHANNEL);
    }

    /** Quantizes a (possibly smoothed or rotated) float model, RTN weights. @param calibration for static scales only */
    public Model apply(Model model, int[][] calibration) {
        return withActivations(Rtn.apply(model, Rtn.Options.of(weights())), calibration);
    }

    /** GPTQ's options for this scheme's weight grid (per channel; 4-bit asymmetric or 8-bit symmetric). */
    public Gptq.Options gptqWeights() {
        QuantScheme w = weights();
        return Gptq.Options.of(w.bits(), w.symmetric(), 0);
    }

    /**
     * The scheme's activation quantization on a model whose linear layers are already quantized to {@link #weights}'
     * grid (by RTN or GPTQ). @param calibration for static scales only
     */
    public Model withActivations(Model q, int[][] calibration) {
        return switch (this) {
            case W8A8_DYNAMIC -> ActivationQuant.dynamicInt8(q);
            case W8A8_STATIC -> ActivationQuant.staticInt8(q, calibration);
            case W4A8 -> q.withMetadata(Map.of(Llama.ACTIVATIONS_KEY, GgufValue.string("int8-dynamic")));
            case W4A4 -> q.withMetadata(Map.of(Llama.ACTIVATIONS_KEY, GgufValue.string("int4-token-asym")));
        };
    }

    public static WeightActivationScheme parse(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "w8a8", "w8a8-dynamic" -> W8A8_DYNAMIC;
            case "w8a8-static" -> W8A8_STATIC;
            case "w4a8" -> W4A8;
            case "w4a4" -> W4A4;
            default -> throw new org.quant4j.util.Q4jException("scheme must be w8a8, w8a8-static, w4a8 or w4a4, not '" + s + "'");
        };
    }
}
