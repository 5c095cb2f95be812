package org.quant4j.method.kquant;

import org.quant4j.model.Llama;

import java.util.*;

/**
 * Collects an importance matrix while a model runs, as llama-imatrix does: for every linear weight inside the
 * transformer blocks ("blk.*"; the output head only when asked), the sum over tokens of each input column's square,
 * Σ_t x_t,j², and the number of tokens. Plug it in with {@link Llama#setObserver} and run the calibration text through
 * the model (llama-imatrix runs it as llama-perplexity does: chunks of n_ctx tokens with BOS first).
 */
public final class ImatrixCollector implements Llama.LinearObserver {
    private final boolean includeOutput;
    private final Map<String, double[]> sums = new TreeMap<>(); // name → (cols) Σ x²
    private final Map<String, Long> counts = new TreeMap<>();   // name → tokens

    public ImatrixCollector(boolean includeOutput) { this.includeOutput = includeOutput; }

    @Override
    public void onInput(String weightName, float[] x, int batch, int cols) {
        if (!weightName.startsWith("blk.") && !(includeOutput && weightName.equals("output.weight"))) return;
        double[] s = sums.computeIfAbsent(weightName, k -> new double[cols]);
        for (int b = 0; b < batch; b++) {
            int off = b * cols;
            for (int j = 0; j < cols; j++) {
                double v = x[off + j];
                s[j] += v * v;
            }
        }
        counts.merge(weightName, (long) batch, Long::sum);
    }

    /** Runs each window (tokens from position 0, BOS first) through the model and returns what the layers saw. */
    public static ImportanceMatrix collect(Llama llama, int[][] windows, String dataset) {
        ImatrixCollector c = new ImatrixCollector(false);
        llama.setObserver(c);
        try {
            int longest = 1;
            for (int[] w : windows) longest = Math.max(longest, w.length);
            Llama.State state = llama.newState(longest, Math.min(longest, 512));
            for (int[] w : windows) {
                state.reset();
                llama.forward(state, w, false);
            }
        } finally {
            llama.setObserver(null);
        }
        return c.result(List.of(dataset), windows.length, windows.length == 0 ? 0 : windows[0].length);
    }

    /** The matrix collected so far. */
    public ImportanceMatrix result(List<String> datasets, int chunkCount, int chunkSize) {
        Map<String, float[]> fs = new LinkedHashMap<>();
        Map<String, Float> fc = new LinkedHashMap<>();
        for (Map.Entry<String, double[]> e : sums.entrySet()) {
            double[] s = e.getValue();
            float[] f = new float[s.length];
            for (int j = 0; j < s.length; j++) f[j] = (float) s[j];
            fs.put(e.getKey(), f);
            fc.put(e.getKey(), (float) (long) counts.get(e.getKey()));
        }
        return new ImportanceMatrix(fs, fc, datasets, chunkCount, chunkSize);
    }
}
