package org.quant4j.kernel;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link FloatKernels#scaledDots} and {@link FloatKernels#weightedSum} against the loops attention ran before them
 * ({@link FloatKernels#dot} per key, {@link FloatKernels#axpy} per value), bit for bit, on both paths: head sizes with
 * and without a tail of lanes, more than 8 vectors, key counts not a multiple of 4.
 */
class AttentionKernelsTest {

    @AfterEach
    void restore() { Kernels.setVector(true); }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void equalTheLoopsOverDotAndAxpy(boolean vector) {
        Kernels.setVector(vector);
        SplittableRandom rng = new SplittableRandom(5);
        for (int n : new int[]{64, 20, 3, 72, 128}) {
            int stride = 3 * n + 5, count = 37, qOff = 7, kOff = 11, sOff = 2, outOff = 9;
            float[] q = new float[qOff + n], k = new float[kOff + count * stride + n], s = new float[sOff + count];
            for (int i = 0; i < q.length; i++) q[i] = (float) rng.nextGaussian();
            for (int i = 0; i < k.length; i++) k[i] = (float) rng.nextGaussian();
            float scale = (float) (1 / Math.sqrt(n));
            for (int c = 1; c <= count; c++) {
                float max = FloatKernels.scaledDots(q, qOff, k, kOff, stride, c, n, scale, s, sOff);
                float wantMax = Float.NEGATIVE_INFINITY;
                for (int t = 0; t < c; t++) {
                    float want = FloatKernels.dot(q, qOff, k, kOff + t * stride, n) * scale;
                    assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(s[sOff + t]), "score, n " + n + ", count " + c + ", t " + t);
                    if (want > wantMax) wantMax = want;
                }
                assertEquals(Float.floatToIntBits(wantMax), Float.floatToIntBits(max), "max, n " + n + ", count " + c);

                for (int t = 0; t < c; t++) s[sOff + t] = (float) Math.exp(s[sOff + t] - max);
                float mul = 1f / 3.7f;
                float[] got = new float[outOff + n + 4], want = got.clone();
                java.util.Arrays.fill(got, 42f);
                java.util.Arrays.fill(want, 42f);
                FloatKernels.weightedSum(s, sOff, mul, c, k, kOff, stride, got, outOff, n);
                java.util.Arrays.fill(want, outOff, outOff + n, 0f);
                for (int t = 0; t < c; t++) FloatKernels.axpy(s[sOff + t] * mul, k, kOff + t * stride, want, outOff, n);
                for (int i = 0; i < got.length; i++) {
                    assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]), "weighted sum, n " + n + ", count " + c + ", at " + i);
                }
            }
        }
    }
}
