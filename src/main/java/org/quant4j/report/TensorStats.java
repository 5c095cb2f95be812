package org.quant4j.report;

/**
 * Summary statistics of a set of values: range, mean, standard deviation, excess kurtosis (0 for a Gaussian; large
 * for heavy tails, the signature of outliers), and how many values lie beyond 3σ and 6σ of the mean.
 */
public record TensorStats(long count, double min, double max, double mean, double std, double kurtosis, long beyond3Sigma, long beyond6Sigma) {

    public static TensorStats of(float[] x) { return of(x, 0, x.length); }

    public static TensorStats of(float[] x, int off, int n) {
        double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int i = off; i < off + n; i++) { min = Math.min(min, x[i]); max = Math.max(max, x[i]); sum += x[i]; }
        double mean = n == 0 ? 0 : sum / n;
        double m2 = 0, m4 = 0;
        for (int i = off; i < off + n; i++) { double d = x[i] - mean, d2 = d * d; m2 += d2; m4 += d2 * d2; }
        m2 = n == 0 ? 0 : m2 / n;
        m4 = n == 0 ? 0 : m4 / n;
        double std = Math.sqrt(m2);
        long b3 = 0, b6 = 0;
        for (int i = off; i < off + n; i++) {
            double z = std == 0 ? 0 : Math.abs(x[i] - mean) / std;
            if (z > 3) b3++;
            if (z > 6) b6++;
        }
        return new TensorStats(n, n == 0 ? 0 : min, n == 0 ? 0 : max, mean, std, m2 == 0 ? 0 : m4 / (m2 * m2) - 3, b3, b6);
    }

    public double absMax() { return Math.max(Math.abs(min), Math.abs(max)); }
}
