package org.quant4j.train;

import org.quant4j.quant.Granularity;
import org.quant4j.quant.LinearQuantizer;
import org.quant4j.quant.QuantScheme;
import org.quant4j.util.Q4jException;

/**
 * "Fake" quantization for training (seed 000, quantization-aware training): the forward pass sees ŵ =
 * dequantize(quantize(w)), the backward pass hands ∂L/∂ŵ to w unchanged (the straight-through estimator), and the
 * optimizer keeps updating the full-precision w. Two families:
 * <ul>
 *   <li>{@link Linear}: any quant4j {@link QuantScheme} with min-max ranges, computed exactly as {@code method/rtn}
 *   stores it (f16 scale, int8 zero point), so RTN of the trained weights gives the very codes training saw;</li>
 *   <li>{@link BitNet}: BitLinear's weights, 1-bit (sign after centring, β = mean|W|) or 1.58-bit (absmean ternary).</li>
 * </ul>
 * Activations: {@link #activations8bit} is BitLinear's (and W8A8's) 8-bit absmax quantization per token.
 */
public sealed interface FakeQuant permits FakeQuant.Linear, FakeQuant.BitNet {

    /** ŵ for a weight w (rows, cols), in a new array. */
    float[] apply(float[] w, int rows, int cols);

    String describe();

    /** Round-to-nearest with min-max ranges, the same arithmetic as {@code Rtn.quantize} with {@code Calibrator.MIN_MAX}. */
    record Linear(QuantScheme scheme) implements FakeQuant {
        public Linear {
            if (scheme.granularity() == Granularity.COLUMN || scheme.granularity() == Granularity.TOKEN) {
                throw new Q4jException("weights are quantized per tensor, per channel or per group, not " + scheme.granularity());
            }
        }

        @Override public float[] apply(float[] w, int rows, int cols) {
            QuantScheme s = scheme;
            float[][] range = LinearQuantizer.minMax(w, rows, cols, s);      // {rmin[p], rmax[p]} per scale
            int groupSize = s.granularity() == Granularity.GROUP ? s.groupSize() : cols;
            float[] out = new float[w.length];                              // (rows, cols)
            for (int r = 0; r < rows; r++) {
                for (int c0 = 0; c0 < cols; c0 += groupSize) {
                    int p = LinearQuantizer.paramIndex(s, rows, cols, r, c0), n = Math.min(groupSize, cols - c0);
                    float[] sz = LinearQuantizer.scaleAndZeroPoint(s, range[0][p], range[1][p]);
                    float scale = Float.float16ToFloat(Float.floatToFloat16(sz[0])); // stored as f16, as Rtn does
                    if (scale == 0) scale = Float.MIN_VALUE;
                    int zeroPoint = (int) sz[1];
                    for (int i = r * cols + c0; i < r * cols + c0 + n; i++) {
                        int q = LinearQuantizer.quantizeValue(w[i], scale, zeroPoint, s.range());
                        out[i] = scale * (q - zeroPoint);
                    }
                }
            }
            return out;
        }

        @Override public String describe() { return "QAT " + scheme.describe(); }
    }

    /** BitLinear weight quantization (BitNet, BitNet b1.58). One scale per weight matrix. */
    enum BitNet implements FakeQuant {
        /** W̃ = Sign(W − α), α = mean(W); ŵ = β · W̃ with β = mean|W| (Sign(0) = −1 as in the paper's definition). */
        BINARY {
            @Override public float[] apply(float[] w, int rows, int cols) {
                double sum = 0, abs = 0;
                for (float v : w) { sum += v; abs += Math.abs(v); }
                float alpha = (float) (sum / w.length), beta = (float) (abs / w.length);
                float[] out = new float[w.length];
                for (int i = 0; i < w.length; i++) out[i] = w[i] - alpha > 0 ? beta : -beta;
                return out;
            }

            @Override public String describe() { return "BitNet 1-bit"; }
        },
        /** absmean: γ = mean|W|, W̃ = RoundClip(W / (γ + ε), −1, 1); ŵ = γ · W̃ ∈ {−γ, 0, γ}. */
        TERNARY {
            @Override public float[] apply(float[] w, int rows, int cols) {
                float gamma = meanAbs(w);
                float[] out = new float[w.length];
                for (int i = 0; i < w.length; i++) {
                    float t = (float) Math.max(-1, Math.min(1, Math.rint(w[i] / (gamma + EPS))));
                    out[i] = gamma * t;
                }
                return out;
            }

            @Override public String describe() { return "BitNet b1.58 (ternary)"; }
        };

        static final float EPS = 1e-5f;

        static float meanAbs(float[] w) {
            double abs = 0;
            for (float v : w) abs += Math.abs(v);
            return (float) (abs / w.length);
        }
    }

    /**
     * 8-bit absmax quantization per token (row), in place: γ = max|x|, x̂ = clamp(rint(x · 127/γ), −127, 127) · γ/127.
     * Rounds as the runtime's W8A8 kernel does ({@code Int8Kernels.quantizeRows}).
     *
     * @param x (rows, cols)
     */
    public static void activations8bit(float[] x, int rows, int cols) {
        for (int r = 0; r < rows; r++) {
            float amax = 0;
            for (int i = r * cols; i < (r + 1) * cols; i++) amax = Math.max(amax, Math.abs(x[i]));
            float scale = amax == 0 ? 1f : amax / 127f, inv = 1f / scale;
            for (int i = r * cols; i < (r + 1) * cols; i++) {
                long q = Math.max(-127, Math.min(127, (long) Math.rint(x[i] * inv)));
                x[i] = q * scale;
            }
        }
    }

    /** Parses "w2g32", "w3g32asym", "w4", "w8a8", "w4g32a8", "bitnet1.58", "bitnet1". Symmetric unless "asym". */
    public static FakeQuant parse(String spec) {
        String s = spec.toLowerCase(java.util.Locale.ROOT).trim();
        if (s.equals("bitnet1.58") || s.equals("b1.58") || s.equals("ternary")) return BitNet.TERNARY;
        if (s.equals("bitnet1") || s.equals("binary")) return BitNet.BINARY;
        var m = java.util.regex.Pattern.compile("w(\\d)(?:g(\\d+))?(a8)?(asym|sym)?").matcher(s);
        if (!m.matches()) throw new Q4jException("unknown QAT scheme '" + spec + "' (examples: w2g32, w3g32asym, w8a8, bitnet1.58, bitnet1)");
        int bits = Integer.parseInt(m.group(1));
        if (bits < 2 || bits > 8) throw new Q4jException("QAT scheme '" + spec + "': bits must be 2..8 (bitnet1 / bitnet1.58 for fewer)");
        boolean asym = "asym".equals(m.group(4));
        QuantScheme q = asym ? QuantScheme.asymmetric(bits, Granularity.CHANNEL) : QuantScheme.symmetric(bits, Granularity.CHANNEL);
        if (m.group(2) != null) q = q.withGroupSize(Integer.parseInt(m.group(2)));
        return new Linear(q);
    }
}
