package org.quant4j.method.llmint8;

import org.quant4j.io.gguf.GgufValue;
import org.quant4j.kernel.LlmInt8Kernel;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * LLM.int8() (Dettmers et al., seed 002): weights stored as 8-bit symmetric integers with one absmax scale per output
 * row ("vector-wise"); at run time each batch's input columns holding any |x| ≥ threshold (6.0 by default) are
 * multiplied in float and the rest in int8 × int8 → int32 with one scale per token ({@link LlmInt8Kernel}). The model
 * records the mode as {@code quant4j.activations = "llm-int8:<threshold>"}; the embedding and the head stay float.
 */
public final class LlmInt8 {
    private LlmInt8() {}

    public static final float DEFAULT_THRESHOLD = 6f;

    public static Model apply(Model model, float threshold) {
        if (!(threshold > 0)) throw new org.quant4j.util.Q4jException("LLM.int8() threshold must be positive, not " + threshold);
        Model q = Rtn.apply(model, Rtn.Options.of(QuantScheme.symmetric(8, Granularity.CHANNEL)));
        return q.withMetadata(Map.of(Llama.ACTIVATIONS_KEY, GgufValue.string(Llama.LLM_INT8 + ":" + threshold)));
    }

    /** Per linear layer: the share of its input columns (feature dimensions) that were outliers, over batches. */
    public record OutlierShare(String weight, long outlierColumns, long columns) {
        public double share() { return columns == 0 ? 0 : (double) outlierColumns / columns; }
    }

    /**
     * Runs the float model on {@code sequences} (each one batch, as the kernel sees it) and counts, for every linear
     * layer, the input columns the decomposition would send to float.
     */
    public static Map<String, OutlierShare> outlierShares(Model model, int[][] sequences, float threshold) {
        Map<String, long[]> counts = new LinkedHashMap<>(); // name → {outlier columns, columns}
        Llama llama = new Llama(model);
        llama.setObserver((name, x, batch, cols) -> {
            long[] c = counts.computeIfAbsent(name, k -> new long[2]);
            c[0] += LlmInt8Kernel.outlierColumns(x, batch, cols, threshold).length;
            c[1] += cols;
        });
        int longest = 1;
        for (int[] s : sequences) longest = Math.max(longest, s.length);
        Llama.State state = llama.newState(longest, longest);
        for (int[] s : sequences) {
            state.reset();
            llama.forward(state, s, false);
        }
        Map<String, OutlierShare> out = new LinkedHashMap<>();
        counts.forEach((k, v) -> out.put(k, new OutlierShare(k, v[0], v[1])));
        return out;
    }
}
