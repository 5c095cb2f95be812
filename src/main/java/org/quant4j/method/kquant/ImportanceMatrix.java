package org.quant4j.method.kquant;

import org.quant4j.util.Q4jException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An importance matrix as llama-imatrix makes it: for each linear weight [out, in], the sum over calibration tokens of
 * the squared input of each column, Σ_t x_t,j², and the number of tokens. The importance of column j is the mean,
 * sum / count; ggml's quantizers weigh each column's rounding error by it.
 *
 * @param sums       weight name → (in) sums of squared inputs
 * @param counts     weight name → tokens seen
 * @param datasets   the calibration files
 * @param chunkCount chunks of text processed
 * @param chunkSize  tokens per chunk
 */
public record ImportanceMatrix(Map<String, float[]> sums, Map<String, Float> counts, List<String> datasets, int chunkCount, int chunkSize) {
    public ImportanceMatrix {
        sums = new LinkedHashMap<>(sums);
        counts = new LinkedHashMap<>(counts);
        datasets = List.copyOf(datasets);
        for (String name : sums.keySet()) {
            if (!counts.containsKey(name)) throw new Q4jException("importance matrix: " + name + " has sums but no count");
        }
    }

    /** One weight per column of {@code weightName}, as llama-quantize uses them (sum / count; 1 where no token was seen), or null. */
    public float[] weights(String weightName) {
        float[] s = sums.get(weightName);
        if (s == null) return null;
        float count = counts.get(weightName);
        float[] w = new float[s.length];
        for (int i = 0; i < s.length; i++) w[i] = count > 0 ? s[i] / count : 1f;
        return w;
    }

    /** Number of weights the matrix covers. */
    public int size() { return sums.size(); }
}
