package org.quant4j.eval;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits, in llama.cpp's sampler order: repetition penalty → top-k → top-p → min-p →
 * temperature → draw. Temperature 0 is greedy (argmax). Seeded, so a run is reproducible.
 */
public final class Sampler {

    public record Options(float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN, long seed) {
        public static Options greedy() { return new Options(0f, 0, 1f, 0f, 1f, 64, 42); }
    }

    private final Options o;
    private final SplittableRandom random;
    private final int[] recent;   // ring of the last repeatLastN tokens
    private int recentCount, recentNext;

    public Sampler(Options options) {
        this.o = options;
        this.random = new SplittableRandom(options.seed());
        this.recent = new int[Math.max(0, options.repeatLastN())];
    }

    /** Records a token (prompt or generated) for the repetition penalty. */
    public void accept(int token) {
        if (recent.length == 0) return;
        recent[recentNext] = token;
        recentNext = (recentNext + 1) % recent.length;
        recentCount = Math.min(recentCount + 1, recent.length);
    }

    public int sample(float[] logits) {
        return sample(logits, 0, logits.length);
    }

    /** Samples from logits[off .. off+n); does not modify the array. */
    public int sample(float[] logitsIn, int off, int n) {
        float[] logits = Arrays.copyOfRange(logitsIn, off, off + n);
        if (o.repeatPenalty() != 1f) {
            boolean[] seen = new boolean[n];
            for (int i = 0; i < recentCount; i++) {
                int t = recent[i];
                if (t < 0 || t >= n || seen[t]) continue;
                seen[t] = true;
                logits[t] = logits[t] > 0 ? logits[t] / o.repeatPenalty() : logits[t] * o.repeatPenalty();
            }
        }
        if (o.temperature() <= 0f) return argmax(logits);

        // candidates sorted by logit, descending
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        int keep = n;
        if (o.topK() > 0) keep = Math.min(keep, o.topK());

        double max = logits[order[0]];
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) { p[i] = Math.exp(logits[order[i]] - max); sum += p[i]; }
        if (o.topP() < 1f) {
            double cum = 0;
            int k = 0;
            while (k < keep) { cum += p[k] / sum; k++; if (cum >= o.topP()) break; }
            keep = Math.max(1, k);
        }
        if (o.minP() > 0f) {
            double threshold = o.minP(); // relative to the top probability, p[0] = 1 before normalisation
            int k = 1;
            while (k < keep && p[k] >= threshold) k++;
            keep = k;
        }
        // temperature over the survivors
        double total = 0;
        double[] q = new double[keep];
        for (int i = 0; i < keep; i++) { q[i] = Math.exp((logits[order[i]] - max) / o.temperature()); total += q[i]; }
        double r = random.nextDouble() * total;
        for (int i = 0; i < keep; i++) {
            r -= q[i];
            if (r <= 0) return order[i];
        }
        return order[keep - 1];
    }

    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
