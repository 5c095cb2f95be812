package org.quant4j.method.encoder;

import org.junit.jupiter.api.Test;
import org.quant4j.method.gptq.Gptq;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The clipped static grids EncoderGptq gives GPTQ, on a small random layer. */
class EncoderGptqTest {
    static final int ROWS = 8, COLS = 96, TOKENS = 300;
    static final Gptq.Options G = new Gptq.Options(4, false, 32, true, true, 0.01, 128, true);

    /** w (rows, cols) Gaussian with one 8× outlier in most groups; H from Gaussian inputs with uneven channel scales. */
    static float[] weights(Random r) {
        float[] w = new float[ROWS * COLS];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.05f;
        for (int row = 0; row < ROWS; row++) for (int g = 0; g < COLS / 32; g++) if (r.nextInt(4) != 0) w[row * COLS + g * 32 + r.nextInt(32)] *= 8;
        return w;
    }

    static Gptq.Hessian hessian(Random r) {
        float[] x = new float[TOKENS * COLS];                            // (tokens, cols)
        for (int t = 0; t < TOKENS; t++) for (int c = 0; c < COLS; c++) x[t * COLS + c] = (float) r.nextGaussian() * (1 + c % 7);
        Gptq.Hessian h = new Gptq.Hessian(COLS);
        h.add(x, TOKENS);
        return h;
    }

    static float[] diag(Gptq.Hessian h) {
        float[] d = new float[COLS];
        for (int i = 0; i < COLS; i++) d[i] = (float) h.values()[i * COLS + i];
        return d;
    }

    @Test void withoutShrinkingTheGridIsGptqsOwnMinMaxGrid() {
        Random r = new Random(7);
        float[] w = weights(r);
        Gptq.Hessian h = hessian(r);
        float[] d = diag(h);
        Gptq.Prepared prep = Gptq.prepare(h.values(), COLS, G, null);
        Gptq.Result plain = Gptq.quantize(w, ROWS, COLS, prep, G);
        Gptq.Result hooked = Gptq.quantize(w, ROWS, COLS, prep, G,
                (ww, rows, cols, o, scale, zero) -> EncoderGptq.clippedGrid(ww, rows, cols, o, d, new EncoderGptq.Options(true, 0, 100, null), scale, zero));
        assertArrayEquals(plain.scale(), hooked.scale());
        assertArrayEquals(plain.zero(), hooked.zero());
        assertArrayEquals(plain.codes(), hooked.codes());
        Gptq.Result clipped = Gptq.quantize(w, ROWS, COLS, prep, G,
                (ww, rows, cols, o, scale, zero) -> EncoderGptq.clippedGrid(ww, rows, cols, o, d, EncoderGptq.Options.clipped(), scale, zero));
        assertFalse(java.util.Arrays.equals(plain.scale(), clipped.scale()), "the hook's grids are the ones GPTQ uses");
        assertNotNull(clipped.toTensor("w"), "static groups: storable");
    }

    @Test void clippedGridsLowerTheWeightedErrorOfGroupsWithOutliers() {
        Random r = new Random(11);
        float[] w = weights(r);
        float[] d = diag(hessian(r));
        int groups = COLS / 32;
        float[] s0 = new float[ROWS * groups], z0 = new float[ROWS * groups], s1 = new float[ROWS * groups], z1 = new float[ROWS * groups];
        EncoderGptq.clippedGrid(w, ROWS, COLS, G, d, new EncoderGptq.Options(true, 0, 100, null), s0, z0);
        EncoderGptq.clippedGrid(w, ROWS, COLS, G, d, EncoderGptq.Options.clipped(), s1, z1);
        int lower = 0;
        for (int row = 0; row < ROWS; row++) {
            for (int g = 0; g < groups; g++) {
                int p = row * groups + g;
                double e0 = error(w, row * COLS + g * 32, d, g * 32, s0[p], z0[p]), e1 = error(w, row * COLS + g * 32, d, g * 32, s1[p], z1[p]);
                assertTrue(e1 <= e0, "group " + p + ": clipped " + e1 + " > min/max " + e0);
                if (e1 < e0) lower++;
                assertTrue(s1[p] <= s0[p], "a clipped range is never wider");
            }
        }
        assertTrue(lower >= ROWS * groups / 2, "clipping helped in only " + lower + " of " + ROWS * groups + " groups");
    }

    /** Shrinking each end apart searches a superset of the joint shrinks: never a worse group, better where the outlier sits on one side. */
    @Test void clippingEachEndApartNeverLosesToTheJointShrink() {
        Random r = new Random(13);
        float[] w = weights(r);
        float[] d = diag(hessian(r));
        int groups = COLS / 32;
        float[] s1 = new float[ROWS * groups], z1 = new float[ROWS * groups], s2 = new float[ROWS * groups], z2 = new float[ROWS * groups];
        EncoderGptq.clippedGrid(w, ROWS, COLS, G, d, EncoderGptq.Options.clipped(), s1, z1);
        EncoderGptq.clippedGrid(w, ROWS, COLS, G, d, EncoderGptq.Options.clipped().withClipEachEnd(true), s2, z2);
        int lower = 0;
        for (int p = 0; p < ROWS * groups; p++) {
            int row = p / groups, g = p % groups;
            double e1 = error(w, row * COLS + g * 32, d, g * 32, s1[p], z1[p]), e2 = error(w, row * COLS + g * 32, d, g * 32, s2[p], z2[p]);
            assertTrue(e2 <= e1 * (1 + 1e-9), "group " + p + ": each end " + e2 + " > joint " + e1);
            if (e2 < e1) lower++;
        }
        assertTrue(lower >= ROWS * groups / 4, "shrinking each end apart helped in only " + lower + " of " + ROWS * groups + " groups");
        // symmetric grids have one range parameter: the option changes nothing
        Gptq.Options sym = new Gptq.Options(4, true, 32, true, true, 0.01, 128, true);
        float[] s3 = new float[ROWS * groups], z3 = new float[ROWS * groups], s4 = new float[ROWS * groups], z4 = new float[ROWS * groups];
        EncoderGptq.clippedGrid(w, ROWS, COLS, sym, d, EncoderGptq.Options.clipped(), s3, z3);
        EncoderGptq.clippedGrid(w, ROWS, COLS, sym, d, EncoderGptq.Options.clipped().withClipEachEnd(true), s4, z4);
        assertArrayEquals(s3, s4);
        assertArrayEquals(z3, z4);
    }

    static double error(float[] w, int off, float[] d, int c0, float s, float z) {
        double e = 0;
        for (int i = 0; i < 32; i++) {
            float q = Math.clamp((float) Math.rint(w[off + i] / s) + z, 0f, 15f);
            double diff = w[off + i] - s * (q - z);
            e += d[c0 + i] * diff * diff;
        }
        return e;
    }

    /** Σ_rows (ŵ − t) H (ŵ − t)ᵀ computed directly, for the refit test. */
    static double layerError(float[] what, float[] t, double[] h) {
        double e = 0;
        for (int row = 0; row < ROWS; row++) {
            for (int i = 0; i < COLS; i++) {
                double di = what[row * COLS + i] - t[row * COLS + i];
                for (int j = 0; j < COLS; j++) e += di * h[i * COLS + j] * (what[row * COLS + j] - t[row * COLS + j]);
            }
        }
        return e;
    }

    /**
     * The scale refit with GPTQ's codes and zeros fixed: its reported errors are the layer objective computed directly,
     * it lowers that objective (never raises it for any row), and no small move of the refit scales does better
     * (up to their F16 rounding).
     */
    @Test void scaleRefitSolvesTheLayerObjectiveForFixedCodes() {
        Random r = new Random(17);
        float[] w = weights(r);
        Gptq.Hessian h = hessian(r);
        Gptq.Prepared prep = Gptq.prepare(h.values(), COLS, G, null);
        float[] d = diag(h);
        Gptq.Result q = Gptq.quantize(w, ROWS, COLS, prep, G,
                (ww, rows, cols, o, scale, zero) -> EncoderGptq.clippedGrid(ww, rows, cols, o, d, EncoderGptq.Options.clipped(), scale, zero));
        double[] before = new double[1], after = new double[1];
        float[] s = EncoderGptq.refitScales(q, w, h.values(), before, after);
        Gptq.Result refit = new Gptq.Result(ROWS, COLS, G, q.codes(), s, q.zero(), q.gIdx(), q.loss(), q.percdamp());
        double e0 = layerError(q.dequantize(), w, h.values()), e1 = layerError(refit.dequantize(), w, h.values());
        assertEquals(e0, before[0], 1e-6 * e0, "error before the refit");
        assertEquals(e1, after[0], 1e-6 * e0, "error after the refit");
        assertTrue(e1 < 0.995 * e0, "refit " + e1 + " vs GPTQ's scales " + e0);
        for (int k = 0; k < 20; k++) {
            float[] moved = s.clone();
            int p = r.nextInt(moved.length);
            moved[p] *= k % 2 == 0 ? 1.01f : 0.99f;
            Gptq.Result m = new Gptq.Result(ROWS, COLS, G, q.codes(), moved, q.zero(), q.gIdx(), q.loss(), q.percdamp());
            assertTrue(layerError(m.dequantize(), w, h.values()) > e1 - 1e-9 * e0, "moving scale " + p + " by 1 % lowered the error");
        }
        assertNotNull(refit.toTensor("w"), "storable");
    }
}
