package org.quant4j.quant;

import java.util.Arrays;

/**
 * Chooses the range [rmin, rmax] a set of values is quantized over. Min-max keeps every value (outliers stretch the
 * grid); the others clip, trading error on the few outliers for precision on everything else (seed 000):
 * <ul>
 *   <li>{@link #percentile}: the p-th percentile of |x| (symmetric) or the lower/upper percentiles (asymmetric);</li>
 *   <li>{@link #mse}: the clipping ratio on a grid that minimises the mean squared quantization error;</li>
 *   <li>{@link #kl}: TensorRT-style entropy calibration: the threshold whose quantized histogram is closest, in
 *       KL-divergence, to the original histogram of |x| (outliers folded into the last bin).</li>
 * </ul>
 */
public interface Calibrator {

    /** {rmin, rmax} for these values under this scheme (bits and symmetry matter; granularity is applied by the caller). */
    float[] range(float[] values, int off, int n, QuantScheme scheme);

    default float[] range(float[] values, QuantScheme scheme) { return range(values, 0, values.length, scheme); }

    String name();

    Calibrator MIN_MAX = new Calibrator() {
        @Override public float[] range(float[] v, int off, int n, QuantScheme s) {
            float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
            for (int i = off; i < off + n; i++) { lo = Math.min(lo, v[i]); hi = Math.max(hi, v[i]); }
            return n == 0 ? new float[]{0, 0} : new float[]{lo, hi};
        }

        @Override public String name() { return "min-max"; }
    };

    static Calibrator percentile(double p) {
        if (!(p > 0 && p <= 100)) throw new IllegalArgumentException("percentile in (0, 100], not " + p);
        return new Calibrator() {
            @Override public float[] range(float[] v, int off, int n, QuantScheme s) {
                if (n == 0) return new float[]{0, 0};
                float[] sorted = Arrays.copyOfRange(v, off, off + n);
                if (s.symmetric()) {
                    for (int i = 0; i < n; i++) sorted[i] = Math.abs(sorted[i]);
                    Arrays.sort(sorted);
                    float t = quantile(sorted, p / 100);
                    return new float[]{-t, t};
                }
                Arrays.sort(sorted);
                return new float[]{quantile(sorted, 1 - p / 100), quantile(sorted, p / 100)};
            }

            @Override public String name() { return "percentile " + p; }
        };
    }

    /** Grid search over clipping ratios 1, 1 − 1/steps, ... down to {@code minRatio} of the min-max range. */
    static Calibrator mse(int steps, double minRatio) {
        return new Calibrator() {
            @Override public float[] range(float[] v, int off, int n, QuantScheme s) {
                float[] full = MIN_MAX.range(v, off, n, s);
                float[] best = full;
                double bestErr = Double.POSITIVE_INFINITY;
                for (int k = 0; k <= steps; k++) {
                    double ratio = 1 - k * (1 - minRatio) / steps;
                    float[] r = {(float) (full[0] * ratio), (float) (full[1] * ratio)};
                    double err = quantizationMse(v, off, n, s, r);
                    if (err < bestErr) { bestErr = err; best = r; }
                }
                return best;
            }

            @Override public String name() { return "MSE"; }
        };
    }

    /** KL-divergence (entropy) calibration over a {@code bins}-bin histogram of |x|; symmetric range. */
    static Calibrator kl(int bins) {
        return new Calibrator() {
            @Override public float[] range(float[] v, int off, int n, QuantScheme s) {
                float amax = 0;
                for (int i = off; i < off + n; i++) amax = Math.max(amax, Math.abs(v[i]));
                if (amax == 0) return new float[]{0, 0};
                double[] hist = new double[bins];
                for (int i = off; i < off + n; i++) hist[Math.min(bins - 1, (int) (Math.abs(v[i]) / amax * bins))]++;
                int levels = s.symmetric() ? s.range().max() + 1 : (s.range().levels() + 1) / 2; // quantization bins over [0, threshold]
                int bestI = bins;
                double bestKl = Double.POSITIVE_INFINITY;
                for (int i = Math.min(levels, bins); i <= bins; i++) {
                    double kl = klAtThreshold(hist, i, levels);
                    if (kl < bestKl) { bestKl = kl; bestI = i; }
                }
                float t = amax * bestI / bins;
                return new float[]{-t, t};
            }

            @Override public String name() { return "KL"; }
        };
    }

    /**
     * KL(P ‖ Q) for a threshold at bin i: P is the first i bins with every count beyond folded into bin i−1 (what
     * clipping does to the outliers); Q merges the first i bins (without the fold) into {@code levels} quantization
     * bins and spreads each merged count evenly over its non-empty source bins.
     */
    private static double klAtThreshold(double[] hist, int i, int levels) {
        double[] p = Arrays.copyOf(hist, i);                 // (i)
        for (int j = i; j < hist.length; j++) p[i - 1] += hist[j];
        double[] q = new double[i];                          // (i)
        int perLevel = Math.max(1, i / levels);
        for (int start = 0, l = 0; start < i; start += perLevel, l++) {
            int end = (l == levels - 1 || start + perLevel > i) ? i : start + perLevel;
            double sum = 0;
            int nonEmpty = 0;
            for (int j = start; j < end; j++) { sum += hist[j]; if (hist[j] > 0) nonEmpty++; }
            for (int j = start; j < end; j++) q[j] = hist[j] > 0 ? sum / nonEmpty : 0;
            if (end == i) break;
        }
        double ps = 0, qs = 0;
        for (int j = 0; j < i; j++) { ps += p[j]; qs += q[j]; }
        if (ps == 0 || qs == 0) return Double.POSITIVE_INFINITY;
        double kl = 0;
        for (int j = 0; j < i; j++) {
            if (p[j] == 0) continue;
            double pj = p[j] / ps, qj = Math.max(q[j] / qs, 1e-12); // a bin Q leaves empty is smoothed, not infinite
            kl += pj * Math.log(pj / qj);
        }
        return kl;
    }

    /** Mean squared error of quantizing values with one (scale, zero point) from the range r. */
    static double quantizationMse(float[] v, int off, int n, QuantScheme s, float[] r) {
        float[] sz = LinearQuantizer.scaleAndZeroPoint(s, r[0], r[1]);
        double se = 0;
        for (int i = off; i < off + n; i++) {
            int q = LinearQuantizer.quantizeValue(v[i], sz[0], (int) sz[1], s.range());
            double e = v[i] - sz[0] * (q - sz[1]);
            se += e * e;
        }
        return n == 0 ? 0 : se / n;
    }

    private static float quantile(float[] sorted, double q) {
        double pos = q * (sorted.length - 1);
        int lo = (int) Math.floor(pos), hi = Math.min(sorted.length - 1, lo + 1);
        return (float) (sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]));
    }

    /** Ranges per quantization parameter (tensor, channel, group, ...) chosen by this calibrator. */
    static float[][] ranges(Calibrator c, float[] x, int rows, int cols, QuantScheme s) {
        int n = LinearQuantizer.paramCount(s, rows, cols);
        float[] lo = new float[n], hi = new float[n];
        switch (s.granularity()) {
            case TENSOR -> { float[] r = c.range(x, 0, x.length, s); lo[0] = r[0]; hi[0] = r[1]; }
            case CHANNEL, TOKEN -> { for (int row = 0; row < rows; row++) { float[] r = c.range(x, row * cols, cols, s); lo[row] = r[0]; hi[row] = r[1]; } }
            case GROUP -> {
                int g = s.groupSize(), per = LinearQuantizer.groupsPerRow(s, cols);
                for (int row = 0; row < rows; row++) {
                    for (int k = 0; k < per; k++) {
                        int start = k * g, len = Math.min(g, cols - start);
                        float[] r = c.range(x, row * cols + start, len, s);
                        lo[row * per + k] = r[0];
                        hi[row * per + k] = r[1];
                    }
                }
            }
            case COLUMN -> {
                float[] col = new float[rows];
                for (int cIdx = 0; cIdx < cols; cIdx++) {
                    for (int row = 0; row < rows; row++) col[row] = x[row * cols + cIdx];
                    float[] r = c.range(col, 0, rows, s);
                    lo[cIdx] = r[0];
                    hi[cIdx] = r[1];
                }
            }
        }
        return new float[][]{lo, hi};
    }
}
