package org.quant4j.method.actquant;

import org.quant4j.model.Llama;
import org.quant4j.model.Model;

import java.util.HashMap;
import java.util.Map;

/**
 * What calibration text shows of each linear layer's input: the largest |x| of every input channel (column) over all
 * calibration tokens (SmoothQuant's max|X_j|), and optionally the first {@code keepRows} input rows themselves (the
 * activation samples DuQuant's greedy rotation search works on).
 *
 * @param channelAbsMax weight name → (cols) max over tokens of |x[:, j]|
 * @param samples       weight name → (rows, cols) the first input rows seen, or empty when none were kept
 * @param sampleRows    weight name → number of rows in {@code samples}
 */
public record ChannelStats(Map<String, float[]> channelAbsMax, Map<String, float[]> samples, Map<String, Integer> sampleRows) {

    /** Runs the model on each calibration sequence (each starting with BOS) and records every linear layer's inputs. */
    public static ChannelStats collect(Model model, int[][] calibration, int keepRows) {
        Map<String, float[]> max = new HashMap<>(), samples = new HashMap<>();
        Map<String, Integer> rows = new HashMap<>();
        Llama llama = new Llama(model);
        llama.setObserver((name, x, batch, cols) -> {
            float[] m = max.computeIfAbsent(name, k -> new float[cols]);
            for (int b = 0; b < batch; b++) {
                for (int j = 0; j < cols; j++) m[j] = Math.max(m[j], Math.abs(x[b * cols + j]));
            }
            if (keepRows > 0) {
                float[] s = samples.computeIfAbsent(name, k -> new float[keepRows * cols]);
                int have = rows.getOrDefault(name, 0), take = Math.min(batch, keepRows - have);
                if (take > 0) {
                    System.arraycopy(x, 0, s, have * cols, take * cols);
                    rows.put(name, have + take);
                }
            }
        });
        int longest = 1;
        for (int[] seq : calibration) longest = Math.max(longest, seq.length);
        Llama.State state = llama.newState(longest, Math.min(longest, 256));
        for (int[] seq : calibration) {
            state.reset();
            llama.forward(state, seq, false);
        }
        return new ChannelStats(max, samples, rows);
    }
}
