package org.quant4j.kernel;

/**
 * Activations quantized once per matmul to 8 bits, as llama.cpp does before its integer dot products ({@code
 * vec_dot_type}): Q8_0 (a scale per block of 32, d = max|x| / 127, q = round(x / d)) for the legacy block types, Q8_K (a
 * scale per block of 256, from the value of largest magnitude: d = max / −127, q = min(127, round(x / d))) for the
 * k-quants. The codes are kept widened to int16, so that the kernels multiply them without converting, and the sum of
 * the codes of every 32 is kept for the types whose weights carry an offset or minimum.
 */
public final class Q8Activations {

    /** Which 8-bit activation format a weight type's integer kernel consumes. */
    public enum Kind {
        Q8_0(32), Q8_K(256);

        public final int block;

        Kind(int block) { this.block = block; }
    }

    public final Kind kind;
    public final int batch, n;
    /** (batch, n) the codes, −127..127. */
    public final short[] q;
    /** (batch, n / block) the scale of each block. */
    public final float[] d;
    /** (batch, n / 32) Σ q over each 32. */
    public final int[] sum32;
    /** (batch, n / 32) the sums as floats with their block's scale: d·Σ q over each 32. */
    public final float[] dsum;
    /** (batch, n / 16) Σ q over each 16: Q8_K's bsums, for Q2_K's per-16 minimums. */
    public final int[] sum16;
    /** (batch, n / 2) the codes two at a time ({@link #pairs}); null until first asked for. */
    private int[] q2;

    private Q8Activations(Kind kind, int batch, int n) {
        this.kind = kind;
        this.batch = batch;
        this.n = n;
        this.q = new short[batch * n];
        this.d = new float[batch * (n / kind.block)];
        this.sum32 = new int[batch * (n / 32)];
        this.dsum = new float[batch * (n / 32)];
        this.sum16 = new int[batch * (n / 16)];
    }

    /**
     * (batch, n / 2) the codes two at a time, q[2i] in the low and q[2i+1] in the high 16 bits, for {@link Q8Repacked}'s
     * broadcasts; made on first use (only the repacked kernels need it), which their caller does before handing work
     * to the threads.
     */
    public int[] pairs() {
        if (q2 == null) {
            int[] p = new int[batch * n / 2];
            for (int i = 0; i < p.length; i++) p[i] = (q[2 * i] & 0xFFFF) | q[2 * i + 1] << 16;
            q2 = p;
        }
        return q2;
    }

    /** Quantizes x (batch, n); n must be a multiple of the kind's block size. */
    public static Q8Activations quantize(Kind kind, float[] x, int batch, int n) {
        if (n % kind.block != 0) throw new IllegalArgumentException("activation length " + n + " is not a multiple of " + kind.block);
        Q8Activations a = new Q8Activations(kind, batch, n);
        int blocks = n / kind.block;
        byte[] row = new byte[256]; // one Q8_K block's codes
        for (int b = 0; b < batch; b++) {
            for (int blk = 0; blk < blocks; blk++) {
                int o = b * n + blk * kind.block;
                if (kind == Kind.Q8_0) {
                    // quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d)
                    float d = scaleQ8_0(x, o), id = d == 0 ? 0 : 1 / d;
                    for (int i = 0; i < 32; i++) a.q[o + i] = (short) Math.max(-127, Math.min(127, Math.round(x[o + i] * id)));
                    a.d[b * blocks + blk] = d;
                } else {
                    quantizeQ8K(x, o, 256, row, 0, a.d, b * blocks + blk);
                    for (int i = 0; i < 256; i++) a.q[o + i] = row[i];
                }
            }
            for (int g = 0; g < n / 32; g++) {
                int s = 0, o = b * n + 32 * g;
                for (int i = 0; i < 32; i++) s += a.q[o + i];
                a.sum32[b * (n / 32) + g] = s;
                a.dsum[b * (n / 32) + g] = s * a.d[b * blocks + 32 * g / kind.block];
            }
            for (int g = 0; g < n / 16; g++) {
                int s = 0, o = b * n + 16 * g;
                for (int i = 0; i < 16; i++) s += a.q[o + i];
                a.sum16[b * (n / 16) + g] = s;
            }
        }
        return a;
    }

    private static float scaleQ8_0(float[] x, int o) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[o + i]));
        return amax / 127;
    }

    /**
     * quantize_row_q8_K_ref for n values (n a multiple of 256): per block, iscale = −127 / max (max: the first value
     * of largest |x|), a = min(127, rint(iscale · x)) (ggml's nearest_int rounds half to even), d = 1 / iscale; an
     * all-zero block gets d = 0 and zero codes.
     *
     * @param a out codes (n) from aOff
     * @param d out scales (n / 256) from dOff
     */
    public static void quantizeQ8K(float[] x, int xOff, int n, byte[] a, int aOff, float[] d, int dOff) {
        for (int blk = 0; blk < n / 256; blk++) {
            int xb = xOff + blk * 256, ab = aOff + blk * 256;
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++) {
                float ax = Math.abs(x[xb + j]);
                if (ax > amax) { amax = ax; max = x[xb + j]; }
            }
            if (amax == 0) {
                d[dOff + blk] = 0;
                java.util.Arrays.fill(a, ab, ab + 256, (byte) 0);
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) a[ab + j] = (byte) Math.min(127, (int) Math.rint(iscale * x[xb + j]));
            d[dOff + blk] = 1 / iscale;
        }
    }

    /** The activations as the floats the codes stand for: x̂ = d·q, (batch, n). */
    public float[] dequantize() {
        float[] out = new float[batch * n];
        int blocks = n / kind.block;
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < n; i++) out[b * n + i] = d[b * blocks + i / kind.block] * q[b * n + i];
        }
        return out;
    }
}
