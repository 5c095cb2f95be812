package org.quant4j.method.awq;

import org.quant4j.kernel.Kernels;
import org.quant4j.kernel.Parallel;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.SplittableRandom;

/**
 * One thread's CPU time of AWQ's inner loops, scalar reference against the vector paths of {@link AwqKernels},
 * interleaved (A, B, A, B) in one JVM on TinyLlama-1.1B shapes: the clip search of a slice of ffn_gate (rows × 2048,
 * 2048 calibration tokens of which 512 sampled, W4 g128 asym) and one α's fake quantization of ffn_gate and ffn_up
 * (2 × 5632 × 2048).
 * <pre>
 *   java --add-modules jdk.incubator.vector -cp target/classes org.quant4j.method.awq.AwqBench [rows] [reps]
 * </pre>
 */
public final class AwqBench {
    private AwqBench() {}

    public static void main(String[] args) {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 256, reps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        Parallel.setThreads(1);
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        int cols = 2048, hidden = 5632, tokens = 2048;
        SplittableRandom rng = new SplittableRandom(1);
        float[] w = new float[rows * cols], x = new float[tokens * cols], big = new float[2 * hidden * cols], s = new float[cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) (rng.nextGaussian() * 0.02 * (rng.nextInt(100) == 0 ? 10 : 1));
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextGaussian() * (1 + (i % cols) % 5));
        for (int i = 0; i < big.length; i++) big[i] = (float) (rng.nextGaussian() * 0.02);
        for (int c = 0; c < cols; c++) s[c] = (float) Math.exp(rng.nextGaussian() * 0.5);
        Awq.Options o = Awq.Options.of(4, 128);
        double[][] clip = new double[2][reps], fake = new double[2][reps];
        float[][] clipped = new float[2][];
        for (int r = 0; r < reps; r++) {
            for (int v = 0; v < 2; v++) {
                Kernels.setVector(v == 1);
                long t0 = mx.getCurrentThreadCpuTime();
                clipped[v] = Awq.clip(w, rows, cols, x, tokens, o);
                long t1 = mx.getCurrentThreadCpuTime();
                AwqKernels.scaledQuantized(big, 2 * hidden, cols, s, o);
                long t2 = mx.getCurrentThreadCpuTime();
                clip[v][r] = (t1 - t0) / 1e9;
                fake[v][r] = (t2 - t1) / 1e9;
            }
            System.out.printf("rep %d: clip %d × %d scalar %.3f s, vector %.3f s; fake quantization 2 × %d × %d scalar %.3f s, vector %.3f s%n",
                    r, rows, cols, clip[0][r], clip[1][r], hidden, cols, fake[0][r], fake[1][r]);
        }
        Kernels.setVector(true);
        int same = 0;
        for (int i = 0; i < w.length; i++) if (clipped[0][i] == clipped[1][i]) same++;
        System.out.printf("best of %d: clip %.2fx, fake quantization %.2fx (one thread's CPU time); clipped weights equal: %d of %d%n",
                reps, min(clip[0]) / min(clip[1]), min(fake[0]) / min(fake[1]), same, w.length);
    }

    private static double min(double[] a) {
        double m = Double.POSITIVE_INFINITY;
        for (double v : a) m = Math.min(m, v);
        return m;
    }
}
