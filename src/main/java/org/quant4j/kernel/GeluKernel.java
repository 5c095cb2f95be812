package org.quant4j.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * GELU(x) = x · Φ(x) = x/2 · (1 + erf(x / √2)) in place over a run of floats: BERT's feed-forward activation, applied
 * to (tokens × hidden) values per layer. erf is Numerical Recipes' Chebyshev fit of erfc (fractional error below
 * 1.2e-7): erfc(z) = t · exp(−z² − 1.26551223 + t·P(t)), t = 1 / (1 + z/2), z = |x|/√2.
 *
 * <p>The scalar reference evaluates it in double with {@link Math#exp}, as the forward pass always did; the Vector API
 * path evaluates the same polynomial in float lanes with its own e^x ({@link #exp}: add, multiply and fma only, so the
 * result does not depend on whether the JIT has compiled it). They differ by float rounding only, which the parity test
 * bounds.
 */
public final class GeluKernel {
    private GeluKernel() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final double[] P = {1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
            1.48851587, -0.82215223, 0.17087277};

    /** x[off, off+n) ← GELU(x), the scalar reference or the vector path as {@link Kernels#vector()} selects. */
    public static void geluErf(float[] x, int off, int n) {
        if (Kernels.vector()) geluErfVector(x, off, n);
        else geluErfScalar(x, off, n);
    }

    public static void geluErfScalar(float[] x, int off, int n) {
        for (int i = off; i < off + n; i++) x[i] = geluErf(x[i]);
    }

    /** The scalar GELU of one value. */
    public static float geluErf(float x) { return (float) (0.5 * x * (1 + erf(x / Math.sqrt(2)))); }

    /** erf by the Chebyshev fit of erfc in Numerical Recipes (fractional error below 1.2e-7 everywhere). */
    public static double erf(double x) {
        double z = Math.abs(x);
        double t = 1 / (1 + 0.5 * z);
        double poly = P[8];
        for (int k = 7; k >= 0; k--) poly = P[k] + t * poly;
        double erfc = t * Math.exp(-z * z - 1.26551223 + t * poly);
        return x >= 0 ? 1 - erfc : erfc - 1;
    }

    public static void geluErfVector(float[] x, int off, int n) {
        int L = F.length(), i = 0;
        FloatVector half = FloatVector.broadcast(F, 0.5f), one = FloatVector.broadcast(F, 1f), invSqrt2 = FloatVector.broadcast(F, (float) (1 / Math.sqrt(2)));
        for (; i <= n - L; i += L) geluLanes(x, off + i, half, one, invSqrt2).intoArray(x, off + i);
        if (i < n) {
            VectorMask<Float> m = F.indexInRange(i, n);
            FloatVector v = FloatVector.fromArray(F, x, off + i, m);
            geluOf(v, half, one, invSqrt2).intoArray(x, off + i, m);
        }
    }

    private static FloatVector geluLanes(float[] x, int at, FloatVector half, FloatVector one, FloatVector invSqrt2) {
        return geluOf(FloatVector.fromArray(F, x, at), half, one, invSqrt2);
    }

    private static final float LOG2E = 1.44269504f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f, ROUND = 12582912f; // 1.5 · 2^23

    /**
     * e^x for x ≤ ~0 (GELU's argument): x = n·ln2 + r, |r| ≤ ln2/2 (Cody–Waite, ln2 in two parts), e^r by its Taylor
     * series to r⁷ (error below 1e-8 relative), times 2^n built in the exponent bits; x is clamped at −87 (e^−87 ≈
     * 1.6e-38, still normal). Only IEEE add, multiply and fma: the same bits cold or JIT-compiled, which the Vector
     * API's lanewise EXP does not promise (its fallback and its intrinsic may round differently).
     */
    static FloatVector exp(FloatVector x) {
        x = x.max(-87f).min(88f);
        FloatVector n = x.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, ROUND)).sub(ROUND); // rint(x·log2 e)
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(F, 1f / 5040);
        p = p.fma(r, FloatVector.broadcast(F, 1f / 720));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 120));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 24));
        p = p.fma(r, FloatVector.broadcast(F, 1f / 6));
        p = p.fma(r, FloatVector.broadcast(F, 0.5f));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        IntVector bits = ((IntVector) n.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    private static FloatVector geluOf(FloatVector v, FloatVector half, FloatVector one, FloatVector invSqrt2) {
        FloatVector u = v.mul(invSqrt2);
        FloatVector z = u.abs();
        FloatVector t = one.div(z.fma(half, one));                                  // 1 / (1 + z/2)
        FloatVector poly = FloatVector.broadcast(F, (float) P[8]);
        for (int k = 7; k >= 0; k--) poly = poly.fma(t, FloatVector.broadcast(F, (float) P[k]));
        FloatVector arg = z.mul(z).neg().sub(1.26551223f).add(t.mul(poly));
        FloatVector erfc = t.mul(exp(arg));
        FloatVector erf = one.sub(erfc);
        erf = erf.blend(erf.neg(), u.compare(VectorOperators.LT, 0f));              // erf(−z) = −erf(z)
        return half.mul(v).mul(one.add(erf));
    }
}
