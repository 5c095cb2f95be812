package org.quant4j.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The blocked Cholesky (vector tiles and their scalar reference) against the textbook unblocked one, odd sizes (up to 4 panels). */
class CholeskyTest {

    /** A = X Xᵀ / k + 0.01 I with X (n, k) gaussian, k = n + 3: SPD, condition number in the thousands. */
    static double[] spd(int n, long seed) {
        Random r = new Random(seed);
        int k = n + 3;
        double[] x = new double[n * k];
        for (int i = 0; i < x.length; i++) x[i] = r.nextGaussian();
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += x[i * k + p] * x[j * k + p];
                a[i * n + j] = a[j * n + i] = s / k + (i == j ? 0.01 : 0);
            }
        }
        return a;
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {1, 3, 8, 127, 128, 129, 131, 263, 389, 401, 613})
    void blockedMatchesUnblocked(int n) {
        double[] a = spd(n, n);
        double[] ref = a.clone();
        assertTrue(Cholesky.upperUnblocked(ref, n));
        boolean before = Kernels.vector();
        try {
            for (boolean vector : new boolean[]{true, false}) {
                Kernels.setVector(vector);
                double[] u = a.clone();
                assertTrue(Cholesky.upper(u, n));
                double max = 0;
                for (int i = 0; i < n; i++) for (int j = i; j < n; j++) max = Math.max(max, Math.abs(ref[i * n + j]));
                for (int i = 0; i < n; i++) {
                    for (int j = i; j < n; j++) {
                        assertEquals(ref[i * n + j], u[i * n + j], 1e-11 * max, (vector ? "vector" : "scalar") + " U[" + i + ", " + j + "]");
                    }
                }
            }
        } finally {
            Kernels.setVector(before);
        }
    }

    /** Many small panels (the panel solve and the trailing update's edges at every offset mod MR and NR). */
    @ParameterizedTest(name = "panel={0}")
    @ValueSource(ints = {5, 10, 35})
    void smallPanelsMatchUnblocked(int panelRows) {
        int n = 157;
        double[] a = spd(n, panelRows), ref = a.clone(), u = a.clone();
        assertTrue(Cholesky.upperUnblocked(ref, n));
        assertTrue(Cholesky.upper(u, n, panelRows));
        double max = 0;
        for (int i = 0; i < n; i++) for (int j = i; j < n; j++) max = Math.max(max, Math.abs(ref[i * n + j]));
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) assertEquals(ref[i * n + j], u[i * n + j], 1e-11 * max, "U[" + i + ", " + j + "]");
        }
    }

    @Test
    void factorReproducesTheMatrix() {
        int n = 201;
        double[] a = spd(n, 7), u = a.clone();
        assertTrue(Cholesky.upper(u, n));
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                double s = 0;
                for (int p = 0; p <= i; p++) s += u[p * n + i] * u[p * n + j];
                assertEquals(a[i * n + j], s, 1e-12 * (1 + Math.abs(a[i * n + j])), "(UᵀU)[" + i + ", " + j + "]");
            }
        }
    }

    @Test
    void indefiniteMatrixIsRefused() {
        int n = 150;
        double[] a = spd(n, 3);
        a[140 * n + 140] = -1;                                          // a pivot in the second panel goes negative
        assertFalse(Cholesky.upper(a.clone(), n));
        assertFalse(Cholesky.upperUnblocked(a.clone(), n));
        double[] nan = spd(n, 4);
        nan[5 * n + 5] = Double.NaN;
        assertFalse(Cholesky.upper(nan, n));
    }
}
