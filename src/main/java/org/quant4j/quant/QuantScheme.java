package org.quant4j.quant;

import org.quant4j.numeric.IntRange;

/**
 * A linear (uniform) integer quantization scheme: r ≈ scale · (q − zeroPoint).
 *
 * @param bits       code width, 2..8
 * @param symmetric  absmax: zeroPoint = 0, scale = max|r| / qmax; else zero-point (asymmetric): the range
 *                   [rmin, rmax] maps onto [qmin, qmax]
 * @param restricted symmetric codes in [−(2^(b−1)−1), 2^(b−1)−1] (seed 000's [−127, 127]) instead of the full
 *                   two's-complement range
 * @param groupSize  values per group for {@link Granularity#GROUP}
 */
public record QuantScheme(int bits, boolean symmetric, boolean restricted, Granularity granularity, int groupSize) {
    public QuantScheme {
        if (bits < 2 || bits > 8) throw new IllegalArgumentException("bits must be 2..8, not " + bits);
        if (granularity == Granularity.GROUP && groupSize < 1) throw new IllegalArgumentException("group size must be positive");
        if (!symmetric && restricted) throw new IllegalArgumentException("the restricted range applies to symmetric schemes");
    }

    public static QuantScheme symmetric(int bits, Granularity g) { return new QuantScheme(bits, true, true, g, 0); }

    public static QuantScheme asymmetric(int bits, Granularity g) { return new QuantScheme(bits, false, false, g, 0); }

    public QuantScheme withGroupSize(int size) { return new QuantScheme(bits, symmetric, restricted, Granularity.GROUP, size); }

    /** The code range. Asymmetric codes use the signed range as seed 002 does ([−128, 127] for 8 bits). */
    public IntRange range() { return symmetric && restricted ? IntRange.restricted(bits) : IntRange.signed(bits); }

    public String describe() {
        String g = switch (granularity) {
            case GROUP -> "g" + groupSize;
            case TENSOR -> "per-tensor";
            case CHANNEL -> "per-channel";
            case COLUMN -> "per-column";
            case TOKEN -> "per-token";
        };
        return "INT" + bits + " " + (symmetric ? "symmetric" + (restricted ? "" : " full-range") : "asymmetric") + " " + g;
    }
}
