package org.quant4j.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** dot4x2 (two tokens per weight load) gives dot4's bits on the vector path and the scalar reference's on the scalar path. */
class Dot4x2Test {
    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {1, 7, 8, 13, 31, 64, 257, 384, 1000})
    void sameBitsAsDot4(int n) {
        Random r = new Random(n);
        float[] w = new float[4 * n], x = new float[2 * n + 3];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (i % 17 == 0 ? 100 : 1));
        int stride = 3, outStep = 20;
        boolean saved = Kernels.vector();
        try {
            for (boolean vector : new boolean[]{true, false}) {
                Kernels.setVector(vector);
                float[] pair = new float[40], single = new float[40];
                FloatKernels.dot4x2(w, n, x, 3, pair, 1, stride, outStep);
                FloatKernels.dot4(w, n, x, 3, single, 1, stride);
                FloatKernels.dot4(w, n, x, 3 + n, single, 1 + outStep, stride);
                assertArrayEquals(single, pair, "vector=" + vector);
                double expect = 0;
                for (int i = 0; i < n; i++) expect += (double) w[2 * n + i] * x[3 + n + i];
                assertEquals(expect, pair[1 + outStep + 2 * stride], 1e-4 * n);
            }
        } finally {
            Kernels.setVector(saved);
        }
    }
}
