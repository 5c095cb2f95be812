package org.quant4j.method.gptq;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.quant4j.kernel.Kernels;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * GPTQ's blocked kernels (the Hessian's upper tiles, the panel Cholesky factorisation, the factor of the inverse, the
 * left-looking lazy batches) on odd sizes, with the Vector API kernels and with the scalar references, against textbook
 * unblocked computations.
 */
class GptqInverseHessianTest {

    /** A random symmetric positive definite (n, n) matrix: G Gᵀ / n + 0.1 I, with uneven channel scales. */
    static double[] spd(int n, long seed) {
        Random r = new Random(seed);
        double[] g = new double[n * n], p = new double[n * n];
        for (int i = 0; i < n; i++) {
            double scale = 0.25 + 2 * r.nextDouble();
            for (int k = 0; k < n; k++) g[i * n + k] = scale * r.nextGaussian();
        }
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += g[i * n + k] * g[j * n + k];
            p[i * n + j] = s / n + (i == j ? 0.1 : 0);
        }
        return p;
    }

    /** Lower Cholesky factor, textbook (Cholesky–Banachiewicz), or null. */
    static double[] cholesky(double[] a, int n) {
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = a[i * n + j];
                for (int k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
                if (i == j) {
                    if (!(s > 0)) return null;
                    l[i * n + i] = Math.sqrt(s);
                } else {
                    l[i * n + j] = s / l[j * n + j];
                }
            }
        }
        return l;
    }

    /** The reference's Hinv: cholesky(cholesky_inverse(cholesky(P)), upper=True), unblocked, in double. */
    static double[] referenceHinv(double[] p, int n) {
        double[] l = cholesky(p, n);
        double[] linv = new double[n * n];                              // L⁻¹ by forward substitution
        for (int j = 0; j < n; j++) {
            for (int i = j; i < n; i++) {
                double s = i == j ? 1 : 0;
                for (int k = j; k < i; k++) s -= l[i * n + k] * linv[k * n + j];
                linv[i * n + j] = s / l[i * n + i];
            }
        }
        double[] inv = new double[n * n];                               // P⁻¹ = L⁻ᵀ L⁻¹
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = Math.max(i, j); k < n; k++) s += linv[k * n + i] * linv[k * n + j];
            inv[i * n + j] = s;
        }
        double[] k = cholesky(inv, n), u = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = i; j < n; j++) u[i * n + j] = k[j * n + i];
        return u;
    }

    static double[] reversed(double[] p, int n) {
        double[] r = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) r[i * n + j] = p[(n - 1 - i) * n + (n - 1 - j)];
        return r;
    }

    @ParameterizedTest(name = "n={0} vector={1}")
    @CsvSource({"1,true", "7,true", "13,false", "65,true", "65,false", "130,true", "257,true", "257,false"})
    void blockedInverseFactorMatchesTheTextbook(int n, boolean vector) {
        double[] p = spd(n, n);
        double[] want = referenceHinv(p, n);
        boolean before = Kernels.vector();
        float[] u;
        try {
            Kernels.setVector(vector);
            u = Gptq.upperCholeskyOfInverse(reversed(p, n), n);
        } finally {
            Kernels.setVector(before);
        }
        assertNotNull(u);
        double max = 0;
        for (double v : want) max = Math.max(max, Math.abs(v));
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (j < i) assertEquals(0f, u[i * n + j], "U[" + i + ", " + j + "] below the diagonal");
                else assertEquals(want[i * n + j], u[i * n + j], 1e-6 * max, "U[" + i + ", " + j + "]");
            }
            assertTrue(u[i * n + i] > 0, "positive diagonal");
        }
    }

    @ParameterizedTest(name = "n={0} vector={1}")
    @CsvSource({"5,true", "70,true", "70,false"})
    void notPositiveDefiniteIsRefused(int n, boolean vector) {
        double[] p = spd(n, 3);
        p[(n - 1) * n + (n - 1)] = -1;                                  // a negative diagonal entry
        boolean before = Kernels.vector();
        try {
            Kernels.setVector(vector);
            assertNull(Gptq.upperCholeskyOfInverse(reversed(p, n), n));
        } finally {
            Kernels.setVector(before);
        }
    }

    @ParameterizedTest(name = "cols={0} tokens={1} vector={2}")
    @CsvSource({"7,5,true", "13,31,false", "131,37,true", "131,37,false", "260,300,true"})
    void hessianIsTheRunningAverageOfTwoXXt(int cols, int tokens, boolean vector) {
        Random r = new Random(cols * 31L + tokens);
        float[] x1 = new float[tokens * cols], x2 = new float[tokens * cols];   // (tokens, cols)
        for (int i = 0; i < x1.length; i++) { x1[i] = (float) r.nextGaussian(); x2[i] = (float) r.nextGaussian(); }
        boolean before = Kernels.vector();
        Gptq.Hessian h = new Gptq.Hessian(cols);
        try {
            Kernels.setVector(vector);
            h.add(x1, tokens);
            h.add(x2, tokens);
        } finally {
            Kernels.setVector(before);
        }
        assertEquals(2, h.samples());
        double[] got = h.values();
        for (int i = 0; i < cols; i++) {
            for (int j = 0; j < cols; j++) {
                double s = 0;                                           // H = (2 X₁X₁ᵀ + 2 X₂X₂ᵀ) / 2
                for (int t = 0; t < tokens; t++) s += (double) x1[t * cols + i] * x1[t * cols + j] + (double) x2[t * cols + i] * x2[t * cols + j];
                assertEquals(s, got[i * cols + j], 1e-5 * tokens, "H[" + i + ", " + j + "]");
            }
        }
    }

    /**
     * fasterquant as the reference writes it, right-looking, with the whole Hinv = U (textbook, double) rounded to
     * float: after each batch W[:, i2:] −= Err · U[i1:i2, i2:]; group grids from W[:, j:j+gs] when j % gs == 0.
     */
    static int[] rightLooking(float[] weight, int rows, int cols, double[] h, Gptq.Options o) {
        double[] p = h.clone();
        double mean = 0;
        for (int i = 0; i < cols; i++) mean += p[i * cols + i];
        for (int i = 0; i < cols; i++) p[i * cols + i] += o.percdamp() * mean / cols;
        double[] ud = referenceHinv(p, cols);
        float[] u = new float[cols * cols];
        for (int i = 0; i < u.length; i++) u[i] = (float) ud[i];
        float[] w = weight.clone();
        int gs = o.groupSize(), bs = o.blockSize(), maxq = o.maxq();
        int groups = gs == 0 ? 1 : (cols + gs - 1) / gs;
        float[] scale = new float[rows * groups], zero = new float[rows * groups];
        if (gs == 0) for (int r = 0; r < rows; r++) Gptq.findParams(w, r * cols, cols, o, scale, zero, r);
        int[] codes = new int[rows * cols];
        for (int i1 = 0; i1 < cols; i1 += bs) {
            int i2 = Math.min(i1 + bs, cols);
            float[] w1 = new float[rows * cols], err = new float[rows * cols];
            for (int r = 0; r < rows; r++) for (int j = i1; j < i2; j++) w1[r * cols + j] = w[r * cols + j];
            for (int j = i1; j < i2; j++) {
                if (gs > 0 && j % gs == 0) for (int r = 0; r < rows; r++) Gptq.findParams(w, r * cols + j, Math.min(gs, cols - j), o, scale, zero, r * groups + j / gs);
                for (int r = 0; r < rows; r++) {
                    int g = r * groups + (gs == 0 ? 0 : j / gs);
                    float x = w1[r * cols + j];
                    float q = Math.clamp((float) Math.rint(x / scale[g]) + zero[g], 0f, (float) maxq);
                    codes[r * cols + j] = (int) q;
                    float e = (x - scale[g] * (q - zero[g])) / u[j * cols + j];
                    err[r * cols + j] = e;
                    for (int k = j + 1; k < i2; k++) w1[r * cols + k] -= e * u[j * cols + k];
                }
            }
            for (int r = 0; r < rows; r++) for (int k = i2; k < cols; k++) {
                float s = 0;
                for (int j = i1; j < i2; j++) s += err[r * cols + j] * u[j * cols + k];
                w[r * cols + k] -= s;
            }
        }
        return codes;
    }

    @ParameterizedTest(name = "rows={0} cols={1} group={2} batch={3} vector={4}")
    @CsvSource({"5,37,0,8,true", "70,131,16,32,true", "70,131,16,32,false", "9,100,24,16,true", "9,100,48,32,false",
                "66,200,96,64,true", "66,200,40,16,true", "3,64,64,64,true"})
    void leftLookingBatchesMatchTheRightLookingAlgorithm(int rows, int cols, int group, int batch, boolean vector) {
        Random r = new Random(rows * 1000L + cols + group);
        double[] h = spd(cols, cols + 5);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        var o = new Gptq.Options(3, false, group, false, false, 0.01, batch, false);
        int[] want = rightLooking(w, rows, cols, h, o);
        boolean before = Kernels.vector();
        Gptq.Result got;
        try {
            Kernels.setVector(vector);
            got = Gptq.quantize(w, rows, cols, Gptq.prepare(h, cols, o, null), o);
        } finally {
            Kernels.setVector(before);
        }
        int same = 0;
        for (int i = 0; i < want.length; i++) if (want[i] == got.codes()[i]) same++;
        assertTrue(same >= 0.998 * want.length, same + " of " + want.length + " codes agree");
    }
}
