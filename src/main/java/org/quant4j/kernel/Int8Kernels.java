package org.quant4j.kernel;

import jdk.incubator.vector.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Integer kernels for weight-and-activation quantization (W8A8): activations quantized to int8 once per matmul
 * (per token, absmax, restricted range [−127, 127]) and int8 × int8 dot products accumulated in int32.
 */
public final class Int8Kernels {
    private Int8Kernels() {}

    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;

    /**
     * Quantizes each of {@code batch} rows of x (n values) to int8 with its own absmax scale (dynamic, per token), or
     * with the fixed {@code staticScale} when it is positive (static; values beyond the calibrated range saturate).
     *
     * @param codes  out (batch, n)
     * @param scales out (batch): x ≈ scale · code
     */
    public static void quantizeRows(float[] x, int batch, int n, float staticScale, byte[] codes, float[] scales) {
        for (int b = 0; b < batch; b++) {
            float scale = staticScale;
            if (!(scale > 0)) {
                float amax = 0;
                for (int i = 0; i < n; i++) amax = Math.max(amax, Math.abs(x[b * n + i]));
                scale = amax == 0 ? 1f : amax / 127f;
            }
            float inv = 1f / scale;
            for (int i = 0; i < n; i++) {
                long q = (long) Math.rint(x[b * n + i] * inv);
                codes[b * n + i] = (byte) Math.max(-127, Math.min(127, q));
            }
            scales[b] = scale;
        }
    }

    /**
     * Per-token asymmetric b-bit quantization (b ≤ 7) for integer kernels, on the grid of
     * {@link #fakeQuantizeTokensAsymmetric}: code q ∈ [0, 2^b − 1] with zero point z, stored centred as q − z, so that
     * x ≈ scale · (q − z) and an integer dot product needs no activation zero-point term. A row of zeros gets scale 0.
     *
     * @param centred out (batch, n) q − z, in [−(2^b − 1), 2^b − 1]
     * @param scales  out (batch)
     */
    public static void quantizeRowsAsymmetric(float[] x, int batch, int n, int bits, byte[] centred, float[] scales) {
        int levels = (1 << bits) - 1;
        for (int b = 0; b < batch; b++) {
            int off = b * n;
            float min = 0, max = 0;
            for (int i = 0; i < n; i++) { min = Math.min(min, x[off + i]); max = Math.max(max, x[off + i]); }
            float scale = (max - min) / levels;
            if (!(scale > 0)) {
                java.util.Arrays.fill(centred, off, off + n, (byte) 0);
                scales[b] = 0;
                continue;
            }
            float zeroPoint = (float) Math.rint(-min / scale);
            for (int i = 0; i < n; i++) {
                float q = Math.max(0, Math.min(levels, (float) Math.rint(x[off + i] / scale) + zeroPoint));
                centred[off + i] = (byte) (q - zeroPoint);
            }
            scales[b] = scale;
        }
    }

    /** Σ w_i · a_i over n int8 values (weights from a segment, activations from an array), accumulated in int32. */
    public static int dotScalar(MemorySegment w, long wOff, byte[] a, int aOff, int n) {
        int s = 0;
        for (int i = 0; i < n; i++) s += w.get(ValueLayout.JAVA_BYTE, wOff + i) * a[aOff + i];
        return s;
    }

    public static int dot(MemorySegment w, long wOff, byte[] a, int aOff, int n) {
        IntVector acc0 = IntVector.zero(I), acc1 = IntVector.zero(I);
        int i = 0;
        for (; i + 16 <= n; i += 16) {
            IntVector w0 = (IntVector) ByteVector.fromMemorySegment(B64, w, wOff + i, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
            IntVector a0 = (IntVector) ByteVector.fromArray(B64, a, aOff + i).convertShape(VectorOperators.B2I, I, 0);
            IntVector w1 = (IntVector) ByteVector.fromMemorySegment(B64, w, wOff + i + 8, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
            IntVector a1 = (IntVector) ByteVector.fromArray(B64, a, aOff + i + 8).convertShape(VectorOperators.B2I, I, 0);
            acc0 = acc0.add(w0.mul(a0));
            acc1 = acc1.add(w1.mul(a1));
        }
        int s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += w.get(ValueLayout.JAVA_BYTE, wOff + i) * a[aOff + i];
        return s;
    }

    /**
     * Per-token asymmetric b-bit quantization of activations, simulated exactly (DuQuant's and QuaRot's W4A4 setup):
     * each row gets scale = (max − min) / (2^b − 1) and zeroPoint = round(−min / scale), and is replaced by the value
     * its code stands for, scale · (clamp(round(x / scale) + zeroPoint, 0, 2^b − 1) − zeroPoint). A matmul on these
     * values equals the integer product of the codes times the scales, up to float rounding.
     *
     * @param out (batch, n) the dequantized activations
     */
    public static void fakeQuantizeTokensAsymmetric(float[] x, int batch, int n, int bits, float[] out) {
        fakeQuantizeTokensAsymmetric(x, 0, batch, n, bits, out);
    }

    /** The same on x[off, off + batch·n) into out at the same offsets (out may be x: in place). */
    public static void fakeQuantizeTokensAsymmetric(float[] x, int start, int batch, int n, int bits, float[] out) {
        int levels = (1 << bits) - 1;
        for (int b = 0; b < batch; b++) {
            int off = start + b * n;
            float min = 0, max = 0;                 // the grid holds 0 exactly (padding and ReLU zeros stay zero)
            for (int i = 0; i < n; i++) { min = Math.min(min, x[off + i]); max = Math.max(max, x[off + i]); }
            float scale = (max - min) / levels;
            if (!(scale > 0)) { System.arraycopy(x, off, out, off, n); continue; }
            float zeroPoint = (float) Math.rint(-min / scale);
            for (int i = 0; i < n; i++) {
                float q = Math.max(0, Math.min(levels, (float) Math.rint(x[off + i] / scale) + zeroPoint));
                out[off + i] = scale * (q - zeroPoint);
            }
        }
    }
}
