package org.quant4j.kernel;

import org.quant4j.tensor.Tensor;

import java.util.SplittableRandom;

/**
 * What the fast Walsh–Hadamard transform saves over the dense product the forward pass used before: time per row of
 * x ← T·x for a randomized Hadamard T of order n, dense ({@link MatMul#matmul} on the stored F32 [n, n] tensor) against
 * {@link FastHadamard} (Vector API and scalar paths), at batch 1 (generation) and 64 (prompt). One thread, timed by
 * its CPU time (ThreadMXBean), so that other processes on a loaded machine do not count.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp target/classes:... org.quant4j.kernel.HadamardBench [n ...]</pre>
 */
public final class HadamardBench {
    private HadamardBench() {}

    private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory.getThreadMXBean();

    public static void main(String[] args) {
        Parallel.setThreads(1);
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
            // off-heap, as a model file's mapped tensors are (a heap segment takes the Vector API's slow path)
            java.lang.foreign.MemorySegment data = java.lang.foreign.Arena.ofAuto().allocate(4L * n * n, 64);
            java.lang.foreign.MemorySegment.copy(t, 0, data, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0, t.length);
            Tensor dense = new Tensor("t", org.quant4j.format.GgmlType.F32, new long[]{n, n}, data);
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

    /** Median of 5 runs of CPU µs per row, each run repeated until it takes ≥ 20 ms of CPU, after warm-up. */
    private static double time(Runnable r, int batch) {
        long w0 = CPU.getCurrentThreadCpuTime();
        for (int i = 0; i < 3000 && CPU.getCurrentThreadCpuTime() - w0 < 300_000_000L; i++) r.run(); // JIT warm-up, ≤ 0.3 s
        double[] runs = new double[5];
        for (int k = 0; k < runs.length; k++) {
            int reps = 0;
            long t0 = CPU.getCurrentThreadCpuTime(), el;
            do { r.run(); reps++; el = CPU.getCurrentThreadCpuTime() - t0; } while (el < 20_000_000L);
            runs[k] = el / 1e3 / reps / batch;
        }
        java.util.Arrays.sort(runs);
        return runs[runs.length / 2];
    }
}
