package org.quant4j.kernel;

import org.quant4j.format.GgmlType;
import org.quant4j.format.ggml.GgmlCodecs;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * The batched GEMM ({@link Gemm}) against the path {@link MatMul} took before it (four rows decoded, dot products with
 * two tokens at a time), on TinyLlama's shapes with a batch of 64 (pp64). One thread, timed by its CPU time
 * (ThreadMXBean) so that other processes on a loaded machine do not count, the two paths interleaved (A, B, A, B) in one
 * JVM, the fastest call of each; GFLOP/s counts 2 per multiply-add.
 *
 * <p>{@code --layout}: the GEMM's strided xᵀ layout against its token panels ({@link Gemm#PANELS}) instead, both through
 * the GEMM; {@code -t N}: N threads, timed by wall clock (the fastest call).
 *
 * <pre>java --add-modules jdk.incubator.vector -cp target/quant4j.jar org.quant4j.kernel.GemmBench [TYPE ...] [-b BATCH] [--layout] [-t N]</pre>
 */
public final class GemmBench {
    private GemmBench() {}

    private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory.getThreadMXBean();

    public static void main(String[] args) {
        java.util.List<String> types = new java.util.ArrayList<>();
        int batch = 64, threads = 1;
        boolean layout = false;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("-b")) batch = Integer.parseInt(args[++i]);
            else if (args[i].equals("-t")) threads = Integer.parseInt(args[++i]);
            else if (args[i].equals("--layout")) layout = true;
            else types.add(args[i]);
        }
        Parallel.setThreads(threads);
        wall = threads > 1;
        if (types.isEmpty()) types = java.util.List.of("Q4_0", "Q8_0", "Q4_K", "Q6_K", "F16", "F32");
        int[][] shapes = {{2048, 2048}, {5632, 2048}, {2048, 5632}};
        System.out.printf("%-5s %11s %5s %14s %14s %8s%n", "type", "rows x cols", "batch", layout ? "strided GFLOP/s" : "before GFLOP/s", layout ? "panels GFLOP/s" : "gemm GFLOP/s", "speed-up");
        for (String name : types) {
            GgmlType type = GgmlType.valueOf(name);
            for (int[] shape : shapes) {
                Tensor w = random(type, shape[0], shape[1]);
                float[] x = new float[batch * shape[1]], out = new float[batch * shape[0]];
                SplittableRandom rng = new SplittableRandom(1);
                for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
                int b = batch;
                Runnable run = () -> MatMul.matmul(w, x, out, b);
                double[] before = new double[3], after = new double[3];
                for (int k = 0; k < 3; k++) {
                    if (layout) Gemm.PANELS = false; else Gemm.setEnabled(false);
                    before[k] = time(run, k == 0);
                    if (layout) Gemm.PANELS = true; else Gemm.setEnabled(true);
                    after[k] = time(run, k == 0);
                }
                                double flop = 2.0 * shape[0] * shape[1] * batch;
                System.out.printf("%-5s %5dx%-5d %5d %14.2f %14.2f %7.2fx%n", name, shape[0], shape[1], batch,
                        flop / min(before) / 1e9, flop / min(after) / 1e9, min(before) / min(after));
            }
        }
    }

    private static double min(double[] v) { return java.util.Arrays.stream(v).min().orElseThrow(); }

    /** Random weights of a type, off-heap like a mapped model file. */
    static Tensor random(GgmlType type, int rows, int cols) {
        SplittableRandom rng = new SplittableRandom(rows * 31L + cols);
        float[] row = new float[cols];
        long rowBytes = type.rowBytes(cols);
        MemorySegment data = Arena.ofAuto().allocate(rowBytes * rows, 64);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) row[i] = (float) (rng.nextGaussian() * 0.05);
            if (type == GgmlType.F32) MemorySegment.copy(row, 0, data, ValueLayout.JAVA_FLOAT_UNALIGNED, r * rowBytes, cols);
            else GgmlCodecs.of(type).quantize(row, 0, cols, null, data, r * rowBytes);
        }
        return new Tensor("w", type, new long[]{rows, cols}, data);
    }

    /**
     * Seconds of CPU per call: the fastest of the calls in 0.5 s of CPU (after a warm-up on the first), each call timed
     * on its own. On a machine shared with other processes the fastest call is the one least disturbed by them
     * (preemption refills the caches); the median moves with the load.
     */
    private static boolean wall;

    private static long now() { return wall ? System.nanoTime() : CPU.getCurrentThreadCpuTime(); }

    private static double time(Runnable r, boolean warm) {
        if (warm) { long w0 = now(); while (now() - w0 < 1_000_000_000L) r.run(); }
        long best = Long.MAX_VALUE, start = now(), t0 = start;
        while (t0 - start < 500_000_000L) {
            r.run();
            long t1 = now();
            best = Math.min(best, t1 - t0);
            t0 = t1;
        }
        return best / 1e9;
    }
}
