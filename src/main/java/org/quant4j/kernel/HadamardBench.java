package org.quant4j.kernel;

import org.quant4j.tensor.Tensor;

import java.util.SplittableRandom;

/**
 * What the fast Walsh–Hadamard transform saves over the dense product the forward pass used before: time per row of
 * x ← T·x for a randomized Hadamard T of order n, dense ({@link MatMul#matmul} on the stored F32 [n, n] tensor) against
 * {@link FastHadamard} (Vector API and scalar paths), at batch 1 (generation) and 64 (prompt).
 *
 * <pre>java --add-modules jdk.incubator.vector -cp target/classes:... org.quant4j.kernel.HadamardBench [n ...]</pre>
 */
public final class HadamardBench {
    private HadamardBench() {}

    public static void main(String[] args) {
        int[] sizes = args.length > 0 ? java.util.Arrays.stream(args).mapToInt(Integer::parseInt).toArray() : new int[]{256, 768, 1024, 2048, 4096, 5120};
        System.out.printf("%6s %6s %5s %14s %14s %14s %9s%n", "n", "base m", "batch", "dense µs/row", "fast µs/row", "scalar µs/row", "speed-up");
        for (int n : sizes) {
            FastHadamard.Plan plan = FastHadamard.plan(n);
            if (plan == null) { System.out.printf("%6d   no Hadamard matrix of this order here%n", n); continue; }
            int[] h = FastHadamard.matrix(n);
            SplittableRandom rng = new SplittableRandom(n);
            float[] signs = new float[n];
            for (int i = 0; i < n; i++) signs[i] = rng.nextBoolean() ? 1f : -1f;
            float inv = (float) (1 / Math.sqrt(n));
            float[] t = new float[n * n];                                   // (n, n) (diag(s)·H/√n)ᵀ
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) t[i * n + j] = signs[j] * (h[j * n + i] * inv);
            Tensor dense = Tensor.ofFloats("t", t, n, n);
            FastHadamard.Rotation fast = FastHadamard.recognise(t, n);
            for (int batch : new int[]{1, 64}) {
                float[] x = new float[batch * n], out = new float[batch * n];    // (batch, n)
                for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
                double d = time(() -> MatMul.matmul(dense, x, out, batch), batch);
                Kernels.setVector(true);
                double f = time(() -> fast.apply(x, 0, batch), batch);
                Kernels.setVector(false);
                double s = time(() -> fast.apply(x, 0, batch), batch);
                Kernels.setVector(true);
                System.out.printf("%6d %6d %5d %14.2f %14.2f %14.2f %8.1fx%n", n, plan.m(), batch, d, f, s, d / f);
            }
        }
    }

    /** Median of 5 runs of µs per row, each run repeated until it takes ≥ 20 ms, after warm-up. */
    private static double time(Runnable r, int batch) {
        for (int i = 0; i < 50; i++) r.run();
        double[] runs = new double[5];
        for (int k = 0; k < runs.length; k++) {
            int reps = 0;
            long t0 = System.nanoTime(), el;
            do { r.run(); reps++; el = System.nanoTime() - t0; } while (el < 20_000_000L);
            runs[k] = el / 1e3 / reps / batch;
        }
        java.util.Arrays.sort(runs);
        return runs[runs.length / 2];
    }
}
