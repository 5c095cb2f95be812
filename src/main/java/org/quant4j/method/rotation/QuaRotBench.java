package org.quant4j.method.rotation;

import org.quant4j.io.ModelLoader;
import org.quant4j.kernel.FastHadamard;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * What the fast Walsh–Hadamard transform saves in a whole forward pass: a QuaRot-rotated float model run with its
 * online Hadamards in fast form and as the stored dense products ({@link FastHadamard#setOnline}), alternating in one
 * JVM, on one thread timed by its CPU time (ThreadMXBean) so that other processes on a loaded machine do not count.
 * Prints the median of each over the rounds: prompt processing (batches of 64) and generation (one token at a time).
 *
 * <pre>java --add-modules jdk.incubator.vector -cp target/quant4j.jar org.quant4j.method.rotation.QuaRotBench MODEL [tokens] [rounds]</pre>
 */
public final class QuaRotBench {
    private QuaRotBench() {}

    public static void main(String[] args) {
        org.quant4j.kernel.Parallel.setThreads(1);
        var cpu = java.lang.management.ManagementFactory.getThreadMXBean();
        Path path = Path.of(args[0]);
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        try (Model base = ModelLoader.load(path)) {
            QuaRot.Result r = QuaRot.rotate(base, 1234);
            System.out.printf("%s: dim %d, hidden %d, qDim %d; online transforms skipped: %s%n", path, base.config().dim(),
                    base.config().hiddenDim(), base.config().qDim(), r.skipped());
            int[] ids = new int[tokens];
            for (int i = 0; i < tokens; i++) ids[i] = 1 + (i * 37) % (base.config().vocabSize() - 1);
            Llama fast = new Llama(r.model());
            FastHadamard.setOnline(false);
            Llama dense = new Llama(r.model());
            FastHadamard.setOnline(true);
            double[][] prompt = new double[2][rounds], gen = new double[2][rounds];
            for (int k = -1; k < rounds; k++) {                 // round −1 warms up
                for (int v = 0; v < 2; v++) {
                    Llama l = v == 0 ? fast : dense;
                    Llama.State s = l.newState(tokens, 64);
                    long t0 = cpu.getCurrentThreadCpuTime();
                    l.forward(s, ids, false);
                    long t1 = cpu.getCurrentThreadCpuTime();
                    Llama.State g = l.newState(tokens, 1);
                    for (int id : ids) l.forward(g, id);
                    long t2 = cpu.getCurrentThreadCpuTime();
                    if (k >= 0) {
                        prompt[v][k] = (t1 - t0) / 1e6;
                        gen[v][k] = (t2 - t1) / 1e6;
                    }
                }
            }
            System.out.printf("%d tokens, CPU time, median of %d rounds: prompt fast %.1f ms, dense %.1f ms; generation fast %.1f ms, dense %.1f ms%n",
                    tokens, rounds, median(prompt[0]), median(prompt[1]), median(gen[0]), median(gen[1]));
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
