package org.quant4j.numeric;

import java.math.BigDecimal;

/**
 * A binary floating-point format of 1 sign bit, {@code exponentBits} and {@code mantissaBits}, described once and
 * converted to and from float exactly (round to nearest, ties to even).
 *
 * <p>Special values differ between formats and are part of the description:
 * <ul>
 *   <li>IEEE-754 style (FP32, FP16, BF16, TF32, FP8 E5M2): the all-ones exponent holds ±infinity (mantissa 0) and
 *       NaN; values past the largest finite one round to infinity.</li>
 *   <li>OCP FP8 E4M3 ("fn"): no infinities; only S.1111.111 is NaN, so the all-ones exponent also holds finite values
 *       up to 448. Out-of-range values become NaN, or the largest finite value in saturating mode (OCP's
 *       {@code satfinite}), which is how quantizers use it.</li>
 * </ul>
 */
public record FloatFormat(String name, int exponentBits, int mantissaBits, boolean ieeeSpecials) {

    public static final FloatFormat FP32 = new FloatFormat("FP32", 8, 23, true);
    public static final FloatFormat FP16 = new FloatFormat("FP16", 5, 10, true);
    public static final FloatFormat BF16 = new FloatFormat("BF16", 8, 7, true);
    /** NVIDIA TensorFloat-32: FP32's range with FP16's precision, stored in 32 bits (19 significant). */
    public static final FloatFormat TF32 = new FloatFormat("TF32", 8, 10, true);
    public static final FloatFormat FP8_E4M3 = new FloatFormat("FP8 E4M3", 4, 3, false);
    public static final FloatFormat FP8_E5M2 = new FloatFormat("FP8 E5M2", 5, 2, true);

    public static final FloatFormat[] ALL = {FP32, TF32, FP16, BF16, FP8_E5M2, FP8_E4M3};

    public int bits() { return 1 + exponentBits + mantissaBits; }

    public int bias() { return (1 << (exponentBits - 1)) - 1; }

    /** Largest biased exponent that encodes finite numbers. */
    private int maxFiniteExponent() { return ieeeSpecials ? (1 << exponentBits) - 2 : (1 << exponentBits) - 1; }

    /** Largest finite value. */
    public double max() {
        int e = maxFiniteExponent() - bias();
        // E4M3: the top exponent's all-ones mantissa is NaN, so its largest mantissa is one less
        long maxMantissa = ieeeSpecials ? (1L << mantissaBits) - 1 : (1L << mantissaBits) - 2;
        return Math.scalb(1.0 + maxMantissa / (double) (1L << mantissaBits), e);
    }

    /** Smallest positive normal value, 2^(1 − bias). */
    public double minNormal() { return Math.scalb(1.0, 1 - bias()); }

    /** Smallest positive subnormal value, 2^(1 − bias − mantissaBits). */
    public double minSubnormal() { return Math.scalb(1.0, 1 - bias() - mantissaBits); }

    /** Machine epsilon: the gap between 1 and the next larger value, 2^(−mantissaBits). */
    public double epsilon() { return Math.scalb(1.0, -mantissaBits); }

    /** Dynamic range max/minSubnormal in decimal orders of magnitude. */
    public double decades() { return Math.log10(max() / minSubnormal()); }

    public boolean hasInfinity() { return ieeeSpecials; }

    /**
     * Encodes {@code x} as this format's bits (in the low {@link #bits()} bits of the result), rounding to nearest even.
     *
     * @param saturate out-of-range values become ±max instead of ±infinity (IEEE formats) or NaN (E4M3)
     */
    public long encode(double x, boolean saturate) {
        int m = mantissaBits, eb = exponentBits;
        long signBit = 1L << (eb + m);
        long nanBits = ieeeSpecials ? (((1L << eb) - 1) << m) | (1L << (m - 1)) : (((1L << eb) - 1) << m) | ((1L << m) - 1);
        if (Double.isNaN(x)) return nanBits;
        long sign = (Double.doubleToRawLongBits(x) < 0) ? signBit : 0;
        double a = Math.abs(x);
        long maxBits = ((long) maxFiniteExponent() << m) | (ieeeSpecials ? (1L << m) - 1 : (1L << m) - 2);
        long overflow = saturate ? maxBits : ieeeSpecials ? (((1L << eb) - 1) << m) : nanBits & ~signBit;
        if (Double.isInfinite(a)) return sign | (saturate ? maxBits : overflow);
        if (a == 0) return sign;
        // quantum of the binade a falls in (subnormals share the smallest normal binade's quantum)
        int e = Math.max(Math.getExponent(a), 1 - bias());
        double quantum = Math.scalb(1.0, e - m);
        double q = Math.rint(a / quantum); // exact: a / quantum only shifts the exponent; rint ties to even
        long code;
        if (e == 1 - bias() && q < (1L << m)) {
            code = (long) q;                                      // subnormal (or rounds to zero)
        } else {
            if (q >= (2L << m)) { q /= 2; e++; }                // rounding carried into the next binade
            long biased = e + bias();
            code = (biased << m) | ((long) q - (1L << m));
        }
        if (code > maxBits) return sign | overflow;
        return sign | code;
    }

    /** Decodes bits of this format to a double (exact). */
    public double decode(long bits) {
        int m = mantissaBits, eb = exponentBits;
        boolean negative = ((bits >>> (eb + m)) & 1) != 0;
        int biased = (int) ((bits >>> m) & ((1L << eb) - 1));
        long mant = bits & ((1L << m) - 1);
        double v;
        if (ieeeSpecials && biased == (1 << eb) - 1) {
            v = mant == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
        } else if (!ieeeSpecials && biased == (1 << eb) - 1 && mant == (1L << m) - 1) {
            v = Double.NaN;
        } else if (biased == 0) {
            v = Math.scalb((double) mant, 1 - bias() - m);
        } else {
            v = Math.scalb((double) ((1L << m) | mant), biased - bias() - m);
        }
        return negative ? -v : v;
    }

    /** x rounded to this format and back (round to nearest even; out of range → ±inf or NaN, or ±max when saturating). */
    public double round(double x, boolean saturate) { return decode(encode(x, saturate)); }

    /** Exact decimal text of a value, for the formats table. */
    public static String exact(double v) { return new BigDecimal(v).stripTrailingZeros().toPlainString(); }
}
