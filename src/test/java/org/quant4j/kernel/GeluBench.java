package org.quant4j.kernel;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Random;

/**
 * GELU over one BERT layer's feed-forward activations (30 tokens × 1536), scalar reference against the Vector API
 * path, interleaved in one JVM, per-thread CPU time:
 * <pre>java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes org.quant4j.kernel.GeluBench</pre>
 */
public final class GeluBench {
    public static void main(String[] args) {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        int n = 30 * 1536, reps = 200;
        float[] x = new float[n];
        Random r = new Random(1);
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian() * 2;
        float[] buf = new float[n];
        double[] scalar = new double[5], vector = new double[5];
        for (int round = -2; round < 5; round++) {                       // two warm-up rounds
            for (int which = 0; which < 2; which++) {
                long t0 = mx.getCurrentThreadCpuTime();
                for (int k = 0; k < reps; k++) {
                    System.arraycopy(x, 0, buf, 0, n);
                    if (which == 0) GeluKernel.geluErfScalar(buf, 0, n); else GeluKernel.geluErfVector(buf, 0, n);
                }
                double ns = (mx.getCurrentThreadCpuTime() - t0) / (double) reps / n;
                if (round >= 0) (which == 0 ? scalar : vector)[round] = ns;
            }
        }
        java.util.Arrays.sort(scalar);
        java.util.Arrays.sort(vector);
        System.out.printf("GELU over %d values: scalar %.2f ns/value, vector %.2f ns/value (medians of 5), %.1fx; per MiniLM sentence of 30 tokens (6 layers): %.2f ms vs %.2f ms%n",
                n, scalar[2], vector[2], scalar[2] / vector[2], scalar[2] * n * 6 / 1e6, vector[2] * n * 6 / 1e6);
    }
}
