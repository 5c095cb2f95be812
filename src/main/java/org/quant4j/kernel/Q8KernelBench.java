package org.quant4j.kernel;

import org.quant4j.format.GgmlType;
import org.quant4j.format.ggml.GgmlCodecs;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Integer kernels on 8-bit activations ({@link Q8Kernels} and the files beside it) against the float path of the same
 * types (dequantize in registers, or decode then dot): one-thread matrix-vector products of random weights, the two
 * paths interleaved (int, float, int, float, ...) in one JVM after every type and path has been warmed up, each timed by
 * the calling thread's CPU time (ThreadMXBean), so that other processes on a loaded machine do not count. Prints the
 * median G weights/s of each path and their ratio.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp target/quant4j.jar org.quant4j.kernel.Q8KernelBench [ROWSxCOLS [ROUNDS [TYPE ...]]]</pre>
 */
public final class Q8KernelBench {
    private Q8KernelBench() {}

    private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory.getThreadMXBean();

    public static void main(String[] args) {
        String[] shape = (args.length > 0 ? args[0] : "4096x4096").split("x");
        int rows = Integer.parseInt(shape[0]), cols = Integer.parseInt(shape[1]);
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        List<GgmlType> types = new ArrayList<>();
        for (int i = 2; i < args.length; i++) types.add(GgmlType.valueOf(args[i]));
        if (types.isEmpty()) types = List.of(GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.IQ4_NL,
                GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.IQ4_XS);
        Parallel.setThreads(1);
        SplittableRandom rng = new SplittableRandom(42);
        float[] w = new float[rows * cols];                     // (rows, cols)
        for (int i = 0; i < w.length; i++) w[i] = (float) (0.02 * rng.nextGaussian());
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) x[i] = (float) rng.nextGaussian();
        float[] out = new float[rows];
        Tensor[] tensors = new Tensor[types.size()];
        for (int t = 0; t < tensors.length; t++) {
            GgmlType type = types.get(t);
            long rowBytes = type.rowBytes(cols);
            MemorySegment seg = Arena.ofAuto().allocate(rowBytes * rows, 64); // off-heap like a mapped model file
            for (int r = 0; r < rows; r++) GgmlCodecs.of(type).quantize(w, r * cols, cols, null, seg, r * rowBytes);
            tensors[t] = new Tensor("w", type, new long[]{rows, cols}, seg);
        }

        // warm-up: every type and path in turn, one matvec at a time (the first-type anomaly of bench --matvec, a
        // kernel compiled before FloatKernels.sum had a type profile staying slow, is fixed in sum; this keeps the
        // comparison fair should anything like it come back)
        for (int i = 0; i < 30; i++) {
            for (Tensor t : tensors) {
                for (boolean q8 : new boolean[]{true, false}) {
                    Kernels.setQ8Activations(q8);
                    MatMul.matmul(t, x, out, 1);
                }
            }
        }
        double[][][] us = new double[tensors.length][2][rounds]; // (type, path, round) CPU µs per matvec
        for (int r = 0; r < rounds; r++) {
            for (int t = 0; t < tensors.length; t++) {
                for (int p = 0; p < 2; p++) {
                    Kernels.setQ8Activations(p == 0);
                    long c0 = CPU.getCurrentThreadCpuTime(), w0 = System.nanoTime();
                    int iters = 0;
                    do {
                        MatMul.matmul(tensors[t], x, out, 1);
                        iters++;
                    } while (System.nanoTime() - w0 < 200_000_000L);
                    us[t][p][r] = (CPU.getCurrentThreadCpuTime() - c0) / 1e3 / iters;
                }
            }
        }
        Kernels.setQ8Activations(true);
        System.out.printf("%dx%d, 1 thread, median of %d interleaved rounds, G weights/s by CPU time%n", rows, cols, rounds);
        System.out.printf("%-7s %12s %12s %8s%n", "type", "integer", "float", "ratio");
        for (int t = 0; t < tensors.length; t++) {
            double gi = (double) rows * cols / (median(us[t][0]) * 1e3), gf = (double) rows * cols / (median(us[t][1]) * 1e3);
            String path = Q8Kernels.kindOf(types.get(t)) == null ? " (no integer kernel)" : "";
            System.out.printf("%-7s %12.2f %12.2f %7.2fx%s%n", types.get(t), gi, gf, gi / gf, path);
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        java.util.Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
