package org.quant4j.cli;

import org.quant4j.method.actquant.ChannelStats;
import org.quant4j.method.actquant.WeightActivationScheme;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.method.llmint8.LlmInt8;
import org.quant4j.method.rotation.DuQuant;
import org.quant4j.method.rotation.QuaRot;
import org.quant4j.method.smoothquant.SmoothQuant;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.util.Q4jException;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The weight-and-activation methods of issue 6 behind one call: transform the float model, then quantize it. */
final class OutlierMethods {
    private OutlierMethods() {}

    static final List<String> NAMES = List.of("rtn", "llm-int8", "smoothquant", "quarot", "quarot-orthogonal", "duquant");

    /**
     * @param gptqWeights the transformed model's weights by GPTQ (calibrated on the transformed model, so it sees the
     *                    rotated activations) instead of RTN, on the scheme's per-channel grid
     * @param kvBits      per-token, per-head asymmetric K/V cache bits (0: float cache); QuaRot rotates K and V per head
     */
    record Settings(float alpha, float threshold, int blockSize, int steps, long seed, boolean gptqWeights, int kvBits) {
        static Settings defaults() { return new Settings(SmoothQuant.DEFAULT_ALPHA, LlmInt8.DEFAULT_THRESHOLD, 128, 256, 1234, false, 0); }

        Settings withWeights(boolean gptq) { return new Settings(alpha, threshold, blockSize, steps, seed, gptq, kvBits); }

        Settings withKvBits(int bits) { return new Settings(alpha, threshold, blockSize, steps, seed, gptqWeights, bits); }
    }

    /**
     * @param model        the transformed-and-quantized model
     * @param transformSec seconds the transform took (calibration statistics included; weight rounding excluded)
     * @param weightSec    seconds the weight quantization took (RTN or GPTQ)
     * @param notes        what was skipped or measured on the way
     */
    record Outcome(Model model, double transformSec, double weightSec, List<String> notes) {}

    static Outcome apply(String method, Model base, int[][] calibration, WeightActivationScheme scheme, Settings s) {
        List<String> notes = new ArrayList<>();
        long t0 = System.nanoTime();
        Model transformed = switch (method.toLowerCase(Locale.ROOT)) {
            case "rtn" -> base;
            case "llm-int8" -> null;
            case "smoothquant" -> SmoothQuant.smooth(base, ChannelStats.collect(base, calibration, 0), s.alpha());
            case "quarot", "quarot-orthogonal" -> {
                QuaRot.Result r = QuaRot.rotate(base, s.seed(), method.equalsIgnoreCase("quarot-orthogonal"), s.kvBits() > 0);
                notes.addAll(r.skipped());
                yield r.model();
            }
            case "duquant" -> {
                DuQuant.Result r = DuQuant.transform(base, ChannelStats.collect(base, calibration, 512),
                        new DuQuant.Options(s.alpha(), s.blockSize(), s.steps(), s.seed()));
                int steps = 0;
                for (DuQuant.SiteReport site : r.sites()) steps += site.stepsFirst() + site.stepsSecond();
                notes.add(String.format("DuQuant: %d greedy rotation steps over %d inputs", steps, r.sites().size()));
                yield r.model();
            }
            default -> throw new Q4jException("unknown method '" + method + "' (available: " + String.join(", ", NAMES) + ")");
        };
        double sec = (System.nanoTime() - t0) / 1e9;
        if (transformed == null && (s.gptqWeights() || s.kvBits() > 0)) throw new Q4jException("llm-int8 takes neither GPTQ weights nor a quantized KV cache here");
        long t1 = System.nanoTime();
        Model q;
        if (transformed == null) q = LlmInt8.apply(base, s.threshold());
        else if (s.gptqWeights()) q = scheme.withActivations(Gptq.apply(transformed, calibration, scheme.gptqWeights(), null, null), calibration);
        else q = scheme.apply(transformed, calibration);
        double weightSec = (System.nanoTime() - t1) / 1e9;
        if (s.kvBits() > 0) q = q.withMetadata(Map.of(Llama.KV_BITS_KEY, GgufValue.u32(s.kvBits())));
        return new Outcome(q, sec, weightSec, notes);
    }
}
