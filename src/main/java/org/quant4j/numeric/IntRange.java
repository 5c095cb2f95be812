package org.quant4j.numeric;

/**
 * The range of a b-bit integer code. Signed codes are two's complement, [−2^(b−1), 2^(b−1)−1]; the restricted
 * signed range drops the lowest code, [−(2^(b−1)−1), 2^(b−1)−1], so that it is symmetric around zero (seed 002's
 * [−127, 127] for INT8). Unsigned codes are [0, 2^b − 1].
 */
public record IntRange(int bits, boolean signed, boolean restricted) {
    public IntRange {
        if (bits < 1 || bits > 16) throw new IllegalArgumentException("integer codes of 1..16 bits, not " + bits);
        if (restricted && !signed) throw new IllegalArgumentException("only signed ranges can be restricted");
    }

    public static IntRange signed(int bits) { return new IntRange(bits, true, false); }

    public static IntRange restricted(int bits) { return new IntRange(bits, true, true); }

    public static IntRange unsigned(int bits) { return new IntRange(bits, false, false); }

    public int min() { return signed ? (restricted ? -((1 << (bits - 1)) - 1) : -(1 << (bits - 1))) : 0; }

    public int max() { return signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }

    /** Number of distinct codes. */
    public int levels() { return max() - min() + 1; }

    public int clamp(long q) { return (int) Math.max(min(), Math.min(max(), q)); }

    public String name() { return (signed ? "INT" : "UINT") + bits + (restricted ? " (restricted)" : ""); }
}
