package org.quant4j.method.awq;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.quant4j.kernel.Kernels;

import java.util.SplittableRandom;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/** Parity of {@link AwqKernels}' vector paths with their scalar references. */
class AwqKernelsTest {
    private final boolean vectorBefore = Kernels.vector();

    @AfterEach
    void restore() { Kernels.setVector(vectorBefore); }

    static <T> T with(boolean vector, Supplier<T> f) {
        Kernels.setVector(vector);
        try {
            return f.get();
        } finally {
            Kernels.setVector(true);
        }
    }

    /** Gaussian weights with some large outliers, constant runs (max = min) and exact half-way points. */
    static float[] weights(SplittableRandom rng, int n) {
        float[] w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float) (rng.nextGaussian() * (rng.nextInt(30) == 0 ? 20 : 1));
        for (int i = 0; i < Math.min(n, 40); i++) w[i] = 0.75f;         // a constant stretch: scale from the 1e-5 floor
        for (int i = 40; i < Math.min(n, 60); i++) w[i] = (i - 50) * 0.5f; // ties at x.5 after division by simple scales
        return w;
    }

    @Test
    void vectorQuantizerGivesTheScalarBits() {
        SplittableRandom rng = new SplittableRandom(3);
        float[] w = weights(rng, 1000);
        for (boolean zp : new boolean[]{true, false}) {
            for (int bits = 2; bits <= 8; bits++) {
                Awq.Options o = Awq.Options.of(bits, 32).withZeroPoint(zp);
                for (int n : new int[]{1, 5, 8, 13, 32, 100, 128, 1000}) {
                    for (int off = 0; off + n <= w.length; off += Math.max(n, 97)) {
                        float[] a = new float[n], b = new float[n];
                        int at = off, len = n;
                        with(false, () -> { AwqKernels.quantizeGroup(w, at, len, o, a, 0); return null; });
                        with(true, () -> { AwqKernels.quantizeGroup(w, at, len, o, b, 0); return null; });
                        for (int i = 0; i < n; i++) {
                            assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]),
                                    o.describe() + " n=" + n + " off=" + off + " i=" + i + ": " + a[i] + " vs " + b[i]);
                        }
                    }
                }
            }
        }
    }

    @Test
    void scaledQuantizedGivesTheScalarBits() {
        SplittableRandom rng = new SplittableRandom(4);
        int rows = 37, cols = 300;                                       // groups of 128: 128, 128 and a ragged 44
        float[] w = weights(rng, rows * cols), s = new float[cols];
        for (int c = 0; c < cols; c++) s[c] = (float) Math.exp(rng.nextGaussian());
        for (boolean zp : new boolean[]{true, false}) {
            for (int gs : new int[]{128, 0}) {
                Awq.Options o = new Awq.Options(4, gs, zp, 20, 0.5, 20, 512, true, true);
                float[] a = with(false, () -> AwqKernels.scaledQuantized(w, rows, cols, s, o));
                float[] b = with(true, () -> AwqKernels.scaledQuantized(w, rows, cols, s, o));
                assertArrayEquals(a, b, 0f, o.describe());
                // and the scalar path is the loop AWQ always ran: W · diag(s), quantize, ÷ s
                float[] ws = new float[rows * cols];
                for (int i = 0; i < ws.length; i++) ws[i] = w[i] * s[i % cols];
                float[] q = Awq.pseudoQuantize(ws, rows, cols, o);
                for (int i = 0; i < q.length; i++) q[i] /= s[i % cols];
                assertArrayEquals(q, a, 0f);
            }
        }
    }

    @Test
    void gramAndClipCandidatesGiveTheScalarBits() {
        SplittableRandom rng = new SplittableRandom(7);
        int tokens = 90, cols = 300;
        float[] x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) x[i] = rng.nextInt(5) == 0 ? 0 : (float) (rng.nextGaussian() * (1 + i % 3));
        for (int[] g : new int[][]{{0, 128}, {128, 128}, {256, 44}, {3, 5}}) {
            float[] a = with(false, () -> AwqKernels.gram(x, tokens, cols, g[0], g[1]));
            float[] b = with(true, () -> AwqKernels.gram(x, tokens, cols, g[0], g[1]));
            assertArrayEquals(a, b, 0f, "gram of columns " + g[0] + " + " + g[1]);
        }
        float[] w = weights(rng, 1000);
        for (int bits : new int[]{3, 4}) {
            Awq.Options o = Awq.Options.of(bits, 128);
            for (int n : new int[]{128, 44, 7}) {
                for (float shrink : new float[]{1f, 0.8f, 0.55f}) {
                    float max = 0;
                    for (int i = 0; i < n; i++) max = Math.max(max, Math.abs(w[100 + i]));
                    float m = max * shrink;
                    float[] a = new float[n + 3], b = new float[n + 3];
                    with(false, () -> { AwqKernels.clipCandidate(w, 100, n, m, o, new float[n], a, 3); return null; });
                    with(true, () -> { AwqKernels.clipCandidate(w, 100, n, m, o, new float[n], b, 3); return null; });
                    assertArrayEquals(a, b, 0f, "bits " + bits + " n " + n + " shrink " + shrink);
                }
            }
        }
    }

    @Test
    void quadraticFormsAgreeWithTheDoubleSums() {
        SplittableRandom rng = new SplittableRandom(5);
        for (int n : new int[]{128, 44, 7}) {
            int tokens = 200, m = 301;
            float[] x = new float[tokens * n], g = new float[n * n], d = new float[m * n];
            for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int t = 0; t < tokens; t++) acc += (double) x[t * n + i] * x[t * n + j];
                g[i * n + j] = (float) (acc / tokens);
            }
            for (int i = 0; i < d.length; i++) d[i] = rng.nextInt(4) == 0 ? 0 : (float) (rng.nextGaussian() * 0.1);
            double[] a = new double[m], b = new double[m];
            with(false, () -> { AwqKernels.quadraticForms(g, n, d, m, a, new float[m * n]); return null; });
            with(true, () -> { AwqKernels.quadraticForms(g, n, d, m, b, new float[m * n]); return null; });
            for (int k = 0; k < m; k++) assertEquals(a[k], b[k], 1e-5 * Math.abs(a[k]), "n=" + n + " k=" + k);
        }
    }

    @Test
    void clipSearchChoosesTheScalarClips() {
        SplittableRandom rng = new SplittableRandom(6);
        int rows = 300, cols = 256 + 40, tokens = 700;
        float[] w = new float[rows * cols], x = new float[tokens * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) (rng.nextGaussian() * (rng.nextInt(40) == 0 ? 8 : 1));
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextGaussian() * (1 + (i % cols) % 7));
        Awq.Options o = Awq.Options.of(4, 128);
        float[] a = with(false, () -> Awq.clip(w, rows, cols, x, tokens, o));
        float[] b = with(true, () -> Awq.clip(w, rows, cols, x, tokens, o));
        int groups = 0, same = 0, clipped = 0;
        for (int r = 0; r < rows; r++) {
            for (int c0 = 0; c0 < cols; c0 += 128) {
                boolean eq = true, any = false;
                for (int c = c0; c < Math.min(cols, c0 + 128); c++) {
                    eq &= a[r * cols + c] == b[r * cols + c];
                    any |= a[r * cols + c] != w[r * cols + c];
                }
                groups++;
                if (eq) same++;
                if (any) clipped++;
            }
        }
        assertTrue(clipped > groups / 10, "the search clips some groups: " + clipped + " of " + groups);
        // float GEMM against double sums: only a near-tie may choose another step
        assertTrue(same >= groups - 2, same + " of " + groups + " groups clipped as the scalar reference clips them");
    }
}
