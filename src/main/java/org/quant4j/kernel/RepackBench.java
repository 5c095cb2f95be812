package org.quant4j.kernel;

import org.quant4j.format.GgmlType;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Repacked kernels ({@link Q8Repacked}) against the row kernels ({@link Q8Kernels}) on the same read-only weights, the
 * two interleaved (on, off, on, off, ...) in one JVM after both are warm, so that a loaded machine disturbs both alike:
 * per type, shape and thread count, the median G weights/s of each over the rounds and their ratio. One thread is timed
 * by the calling thread's CPU time (ThreadMXBean), more threads by wall time.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp target/quant4j.jar org.quant4j.kernel.RepackBench [ROWSxCOLS[,..] [THREADS[,..] [ROUNDS [TYPE ...]]]]</pre>
 */
public final class RepackBench {
    private RepackBench() {}

    private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory.getThreadMXBean();

    public static void main(String[] args) {
        String[] shapes = (args.length > 0 ? args[0] : "4096x4096,4096x11008").split(",");
        int[] threads = Arrays.stream((args.length > 1 ? args[1] : "1,2").split(",")).mapToInt(Integer::parseInt).toArray();
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        GgmlType[] types = args.length > 3 ? Arrays.stream(args, 3, args.length).map(GgmlType::valueOf).toArray(GgmlType[]::new) : new GgmlType[]{GgmlType.Q8_0};
        System.out.printf("%-6s %-11s %7s %14s %14s %7s%n", "type", "shape", "threads", "on G weights/s", "off G weights/s", "on/off");
        for (String shape : shapes) {
            String[] rc = shape.split("x");
            int rows = Integer.parseInt(rc[0]), cols = Integer.parseInt(rc[1]);
            SplittableRandom rng = new SplittableRandom(42);
            float[] w = new float[rows * cols];                 // (rows, cols)
            for (int i = 0; i < w.length; i++) w[i] = (float) (0.02 * rng.nextGaussian());
            float[] x = new float[cols];                        // (cols)
            for (int i = 0; i < cols; i++) x[i] = (float) rng.nextGaussian();
            MemorySegment f32 = Arena.ofAuto().allocate(4L * w.length, 64);
            MemorySegment.copy(w, 0, f32, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0, w.length);
            for (GgmlType type : types) {
                Tensor q = org.quant4j.method.kquant.GgufQuantize.quantize(new Tensor("w", GgmlType.F32, new long[]{rows, cols}, f32), type, null);
                MemorySegment off = Arena.ofAuto().allocate(q.data().byteSize(), 64).copyFrom(q.data());
                Tensor t = new Tensor("w", type, q.shape(), off.asReadOnly()); // read-only, as a mapped file
                float[] out = new float[rows];
                for (int th : threads) {
                    Parallel.setThreads(th);
                    double[] on = new double[rounds], offs = new double[rounds];
                    for (int warm = 0; warm < 2; warm++) { time(t, x, out, true, th); time(t, x, out, false, th); }
                    for (int r = 0; r < rounds; r++) {
                        on[r] = (double) rows * cols / time(t, x, out, true, th);
                        offs[r] = (double) rows * cols / time(t, x, out, false, th);
                    }
                    double a = median(on), b = median(offs);
                    System.out.printf("%-6s %-11s %7d %14.2f %14.2f %7.2f%n", type, shape, th, a, b, a / b);
                }
            }
        }
        Q8Repacked.setEnabled(true);
    }

    /** Nanoseconds per product over about 300 ms: CPU time of this thread with one thread, else wall time. */
    private static double time(Tensor t, float[] x, float[] out, boolean repack, int threads) {
        Q8Repacked.setEnabled(repack);
        int iters = 0;
        long w0 = System.nanoTime(), c0 = CPU.getCurrentThreadCpuTime();
        do {
            MatMul.matmul(t, x, out, 1);
            iters++;
        } while (System.nanoTime() - w0 < 300_000_000L);
        long ns = threads == 1 ? CPU.getCurrentThreadCpuTime() - c0 : System.nanoTime() - w0;
        return (double) ns / iters;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
