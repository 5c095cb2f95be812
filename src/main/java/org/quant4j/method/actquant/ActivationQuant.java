package org.quant4j.method.actquant;

import org.quant4j.format.IntQuantType;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.model.Bert;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Activation quantization for linear layers whose weights are 8-bit integers (W8A8), the two ways seed 000 describes:
 * <ul>
 *   <li><b>dynamic</b>: each token's input row gets its own absmax scale at run time (nothing to calibrate);</li>
 *   <li><b>static</b>: one scale per layer, calibrated once by running the model on calibration text and taking the
 *       largest |x| seen at each layer's input (min-max); stored as {@code <layer>.input_scale} tensors. Inputs beyond
 *       the calibrated range saturate at run time.</li>
 * </ul>
 */
public final class ActivationQuant {
    private ActivationQuant() {}

    public static Model dynamicInt8(Model model) {
        requireInt8Weights(model);
        return model.withMetadata(Map.of(Llama.ACTIVATIONS_KEY, GgufValue.string("int8-dynamic")));
    }

    /** @param calibration token sequences (each starting with BOS) run through the model to find each layer's input range */
    public static Model staticInt8(Model model, int[][] calibration) {
        requireInt8Weights(model);
        Map<String, Float> absMax = new HashMap<>();
        Llama.LinearObserver observer = (name, x, batch, cols) -> {
            float m = absMax.getOrDefault(name, 0f);
            for (int i = 0; i < batch * cols; i++) m = Math.max(m, Math.abs(x[i]));
            absMax.put(name, m);
        };
        if (Bert.ARCHITECTURE.equals(model.config().architecture())) {
            // an encoder: each calibration sequence is one sentence ([CLS] … [SEP]); the observer sees each layer's
            // input after any online smoothing or rotation, which is what the integer kernel quantizes
            Bert bert = new Bert(model);
            bert.setObserver(observer);
            for (int[] seq : calibration) bert.hiddenStates(bert.truncate(seq), null);
        } else {
            Llama llama = new Llama(model);
            llama.setObserver(observer);
            int longest = 1;
            for (int[] seq : calibration) longest = Math.max(longest, seq.length);
            Llama.State state = llama.newState(longest, Math.min(longest, 256));
            for (int[] seq : calibration) {
                state.reset();
                llama.forward(state, seq, false);
            }
        }
        Map<String, Tensor> scales = new LinkedHashMap<>();
        for (Tensor t : model.tensors().values()) {
            if (!(t.type() instanceof IntQuantType q) || q.bits() != 8) continue;
            Float m = absMax.get(t.name());
            if (m == null) continue;
            String name = t.name().replace(".weight", Llama.INPUT_SCALE);
            scales.put(name, Tensor.ofFloats(name, new float[]{m == 0 ? 1f : m / 127f}, 1));
        }
        return model.withTensors(scales).withMetadata(Map.of(Llama.ACTIVATIONS_KEY, GgufValue.string("int8-static")));
    }

    private static void requireInt8Weights(Model model) {
        for (Tensor t : model.tensors().values()) {
            if (t.type() instanceof IntQuantType q && q.bits() == 8) return;
        }
        throw new Q4jException(model.source() + ": activation quantization (W8A8) needs 8-bit integer weights; quantize with --bits 8 first");
    }
}
