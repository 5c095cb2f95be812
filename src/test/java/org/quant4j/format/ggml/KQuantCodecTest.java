package org.quant4j.format.ggml;

import org.junit.jupiter.api.Test;
import org.quant4j.format.GgmlType;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Properties of the k-quant codecs that the single-block ggml vectors do not reach: multi-block rows, errors. */
class KQuantCodecTest {
    static final GgmlType[] STORED = {GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K};

    static float[] gaussian(int n, long seed, double sigma) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * sigma);
        return x;
    }

    static byte[] quantize(GgmlType t, float[] x, int off, int n, float[] importance) {
        byte[] out = new byte[(int) t.rowBytes(n)];
        GgmlCodecs.of(t).quantize(x, off, n, importance, MemorySegment.ofArray(out), 0);
        return out;
    }

    static float[] dequantize(GgmlType t, byte[] q, int n) {
        float[] out = new float[n];
        GgmlCodecs.of(t).dequantize(MemorySegment.ofArray(q), 0, out, 0, n);
        return out;
    }

    @Test
    void aRowOfSeveralBlocksIsItsBlocksEachWithItsOwnImportanceWeights() {
        int n = 3 * 256;
        float[] x = gaussian(n + 5, 1, 0.02);
        float[] importance = gaussian(n, 2, 1.0);
        for (int i = 0; i < n; i++) importance[i] = Math.abs(importance[i]) + 0.01f;
        for (GgmlType t : STORED) {
            for (boolean useImportance : new boolean[]{false, true}) {
                byte[] row = quantize(t, x, 5, n, useImportance ? importance : null);
                int ts = t.typeSize();
                for (int b = 0; b < 3; b++) {
                    float[] w = null;
                    if (useImportance) {
                        w = new float[256];
                        System.arraycopy(importance, 256 * b, w, 0, 256);
                    }
                    byte[] block = quantize(t, x, 5 + 256 * b, 256, w);
                    for (int i = 0; i < ts; i++) assertEquals(block[i], row[b * ts + i], t + " block " + b + " byte " + i + (useImportance ? " (imatrix)" : ""));
                }
                float[] back = dequantize(t, row, n);
                for (int b = 0; b < 3; b++) {
                    byte[] block = java.util.Arrays.copyOfRange(row, b * ts, (b + 1) * ts);
                    float[] one = dequantize(t, block, 256);
                    for (int i = 0; i < 256; i++) assertEquals(one[i], back[256 * b + i], t + " decoded value " + (256 * b + i));
                }
            }
        }
    }

    @Test
    void errorShrinksWithBitsAndImportanceLowersTheWeightedError() {
        int n = 256, rows = 32;
        float[] x = gaussian(n * rows, 3, 0.02);
        float[] importance = new float[n]; // a few columns matter 100× more, as an imatrix of outlier channels does
        for (int i = 0; i < n; i++) importance[i] = i % 16 == 3 ? 100f : 1f;
        double prev = Double.POSITIVE_INFINITY;
        for (GgmlType t : STORED) {
            double plain = 0, weighted = 0, energy = 0;
            for (int r = 0; r < rows; r++) {
                float[] a = dequantize(t, quantize(t, x, r * n, n, null), n);
                float[] b = dequantize(t, quantize(t, x, r * n, n, importance), n);
                for (int i = 0; i < n; i++) {
                    float v = x[r * n + i];
                    plain += importance[i] * (a[i] - v) * (double) (a[i] - v);
                    weighted += importance[i] * (b[i] - v) * (double) (b[i] - v);
                    energy += importance[i] * v * (double) v;
                }
            }
            double e = Math.sqrt(plain / energy), ew = Math.sqrt(weighted / energy);
            assertTrue(e < prev, t + ": relative error " + e + " not below " + prev);
            assertTrue(ew < e, t + ": importance-weighted error with the imatrix " + ew + " not below without " + e);
            prev = e;
        }
        assertTrue(prev < 0.02, "Q6_K relative error " + prev);
    }

    @Test
    void rowsThatDoNotDivideIntoBlocksAreRefused() {
        for (GgmlType t : STORED) {
            BlockCodec c = GgmlCodecs.of(t);
            MemorySegment dst = MemorySegment.ofArray(new byte[4096]);
            var e = assertThrows(Q4jException.class, () -> c.quantize(new float[300], 0, 300, null, dst, 0));
            assertTrue(e.getMessage().contains("300"), e.getMessage());
            assertThrows(Q4jException.class, () -> c.dequantize(dst, 0, new float[300], 0, 300));
            assertThrows(Q4jException.class, () -> c.quantize(new float[512], 0, 512, new float[256], dst, 0), "importance too short");
        }
    }
}
