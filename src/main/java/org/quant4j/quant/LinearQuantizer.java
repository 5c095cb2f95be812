package org.quant4j.quant;

import org.quant4j.numeric.IntRange;

/**
 * Linear quantization of a 2-D float tensor [rows, cols] with any {@link QuantScheme}, as seed 002 teaches it:
 * <pre>
 *   asymmetric:  scale = (rmax − rmin) / (qmax − qmin),  zeroPoint = round(qmin − rmin / scale) clamped to [qmin, qmax]
 *   symmetric:   scale = max|r| / qmax,                  zeroPoint = 0
 *   quantize:    q = clamp(round(r / scale + zeroPoint), qmin, qmax)      (round half to even, like torch.round)
 *   dequantize:  r̂ = scale · (q − zeroPoint)
 * </pre>
 * The range each scale covers comes from the data (min-max) or, with {@link #quantize(float[], int, int, QuantScheme, float[], float[])},
 * from a calibrator's clipping range.
 */
public final class LinearQuantizer {
    private LinearQuantizer() {}

    /** Quantized values with their parameters. {@code codes} is (rows, cols); params are indexed by {@link #paramIndex}. */
    public record Quantized(QuantScheme scheme, int rows, int cols, byte[] codes, float[] scale, int[] zeroPoint) {
        public float[] dequantize() {
            float[] out = new float[rows * cols];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    int p = paramIndex(scheme, rows, cols, r, c);
                    out[r * cols + c] = scale[p] * (codes[r * cols + c] - zeroPoint[p]);
                }
            }
            return out;
        }
    }

    /** Number of (scale, zero point) pairs a scheme needs for a [rows, cols] tensor. */
    public static int paramCount(QuantScheme s, int rows, int cols) {
        return switch (s.granularity()) {
            case TENSOR -> 1;
            case CHANNEL, TOKEN -> rows;
            case COLUMN -> cols;
            case GROUP -> rows * groupsPerRow(s, cols);
        };
    }

    public static int groupsPerRow(QuantScheme s, int cols) { return (cols + s.groupSize() - 1) / s.groupSize(); }

    /** Which (scale, zero point) value (r, c) uses. */
    public static int paramIndex(QuantScheme s, int rows, int cols, int r, int c) {
        return switch (s.granularity()) {
            case TENSOR -> 0;
            case CHANNEL, TOKEN -> r;
            case COLUMN -> c;
            case GROUP -> r * groupsPerRow(s, cols) + c / s.groupSize();
        };
    }

    /** Min-max ranges per parameter: {rmin[], rmax[]}. */
    public static float[][] minMax(float[] x, int rows, int cols, QuantScheme s) {
        int n = paramCount(s, rows, cols);
        float[] lo = new float[n], hi = new float[n];
        java.util.Arrays.fill(lo, Float.POSITIVE_INFINITY);
        java.util.Arrays.fill(hi, Float.NEGATIVE_INFINITY);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int p = paramIndex(s, rows, cols, r, c);
                float v = x[r * cols + c];
                if (v < lo[p]) lo[p] = v;
                if (v > hi[p]) hi[p] = v;
            }
        }
        return new float[][]{lo, hi};
    }

    public static Quantized quantize(float[] x, int rows, int cols, QuantScheme s) {
        float[][] mm = minMax(x, rows, cols, s);
        return quantize(x, rows, cols, s, mm[0], mm[1]);
    }

    /** Quantizes with given ranges [rmin[p], rmax[p]] per parameter (values outside are clipped). */
    public static Quantized quantize(float[] x, int rows, int cols, QuantScheme s, float[] rmin, float[] rmax) {
        int n = paramCount(s, rows, cols);
        float[] scale = new float[n];
        int[] zero = new int[n];
        IntRange q = s.range();
        for (int p = 0; p < n; p++) {
            float[] sz = scaleAndZeroPoint(s, rmin[p], rmax[p]);
            scale[p] = sz[0];
            zero[p] = (int) sz[1];
        }
        byte[] codes = new byte[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int p = paramIndex(s, rows, cols, r, c);
                codes[r * cols + c] = (byte) quantizeValue(x[r * cols + c], scale[p], zero[p], q);
            }
        }
        return new Quantized(s, rows, cols, codes, scale, zero);
    }

    /** {scale, zeroPoint} for a range, per seed 002's formulas. A range of zero width gets scale 1 (any code is exact). */
    public static float[] scaleAndZeroPoint(QuantScheme s, float rmin, float rmax) {
        IntRange q = s.range();
        if (s.symmetric()) {
            float absmax = Math.max(Math.abs(rmin), Math.abs(rmax));
            float scale = absmax == 0 || !Float.isFinite(absmax) ? 1f : absmax / q.max();
            return new float[]{scale, 0};
        }
        // the range must contain zero so that zero is exactly representable (padding, ReLU outputs)
        rmin = Math.min(rmin, 0f);
        rmax = Math.max(rmax, 0f);
        float scale = (rmax - rmin) / (q.max() - q.min());
        if (scale == 0 || !Float.isFinite(scale)) return new float[]{1f, 0};
        double zp = q.min() - rmin / (double) scale;
        int zero = zp < q.min() ? q.min() : zp > q.max() ? q.max() : (int) Math.rint(zp);
        return new float[]{scale, zero};
    }

    public static int quantizeValue(float r, float scale, int zeroPoint, IntRange q) {
        return q.clamp((long) Math.rint(r / scale + zeroPoint));
    }
}
