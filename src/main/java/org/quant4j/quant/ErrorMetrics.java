package org.quant4j.quant;

/** How far a reconstruction x̂ is from x: mean squared error, max |error|, SQNR in dB, cosine similarity. */
public record ErrorMetrics(double mse, double maxAbs, double sqnrDb, double cosine) {

    public static ErrorMetrics of(float[] x, float[] xHat) {
        return of(x, xHat, 0, x.length);
    }

    public static ErrorMetrics of(float[] x, float[] xHat, int off, int n) {
        double se = 0, max = 0, signal = 0, dot = 0, nh = 0;
        for (int i = off; i < off + n; i++) {
            double e = x[i] - xHat[i];
            se += e * e;
            max = Math.max(max, Math.abs(e));
            signal += (double) x[i] * x[i];
            dot += (double) x[i] * xHat[i];
            nh += (double) xHat[i] * xHat[i];
        }
        double sqnr = se == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(signal / se);
        double cos = signal == 0 || nh == 0 ? (signal == nh ? 1 : 0) : dot / Math.sqrt(signal * nh);
        return new ErrorMetrics(n == 0 ? 0 : se / n, max, sqnr, cos);
    }

    @Override public String toString() {
        return String.format("MSE %.4g, max|e| %.4g, SQNR %.2f dB, cosine %.6f", mse, maxAbs, sqnrDb, cosine);
    }
}
