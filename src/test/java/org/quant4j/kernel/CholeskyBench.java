package org.quant4j.kernel;

import com.sun.management.OperatingSystemMXBean;

import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;

/**
 * {@link Cholesky#upper} on an (n, n) diagonally dominant matrix, wall time and process CPU time (steadier on a shared
 * machine), n³/3 flops:
 * <pre>java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes org.quant4j.kernel.CholeskyBench [n [reps [threads]]]</pre>
 */
public final class CholeskyBench {
    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 5632, reps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        if (args.length > 2) Parallel.setThreads(Integer.parseInt(args[2]));
        SplittableRandom r = new SplittableRandom(1);
        double[] a = new double[n * n];                                  // (n, n)
        for (int i = 0; i < n; i++) for (int j = i; j < n; j++) a[i * n + j] = a[j * n + i] = i == j ? n : r.nextDouble() - 0.5;
        OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        double flops = (double) n * n * n / 3;
        for (int rep = 0; rep <= reps; rep++) {                           // the first run warms the JIT up
            double[] b = a.clone();
            long c0 = os.getProcessCpuTime(), t0 = System.nanoTime();
            boolean ok = Cholesky.upper(b, n);
            double s = (System.nanoTime() - t0) / 1e9, cpu = (os.getProcessCpuTime() - c0) / 1e9;
            System.out.printf("%sCholesky n=%d threads=%d %s: %.3f s wall (%.1f GFLOP/s), %.3f s CPU (%.1f GFLOP per CPU second)%s%n",
                    rep == 0 ? "warm-up: " : "", n, Parallel.threads(), Kernels.vector() ? "vector" : "scalar", s, flops / s / 1e9, cpu, flops / cpu / 1e9, ok ? "" : " NOT POSITIVE DEFINITE");
        }
    }
}
