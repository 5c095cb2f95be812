package org.quant4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.quant4j.io.ModelLoader;
import org.quant4j.kernel.Kernels;
import org.quant4j.kernel.Parallel;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.*;
import java.util.concurrent.Callable;

/**
 * Prompt-processing and generation speed, measured like llama-bench: pp = a prompt of N tokens in one batch from an
 * empty cache; tg = N tokens generated one at a time from an empty cache. Each test is repeated and reported as
 * mean ± standard deviation of tokens/s, with the thread count. At one thread the last column gives tokens per second
 * of the calling thread's CPU time, which other processes on a shared machine disturb far less than wall time.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Measure prompt-processing and generation speed (tokens/s).")
final class BenchCommand implements Callable<Integer> {
    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "model file (not needed with --matvec)") Path modelPath;
    @Option(names = "--matvec", split = ",", paramLabel = "TYPE", description = "instead of a model: matrix-vector products of random weights in these ggml types (F32, F16, Q4_0, Q4_K, ...)") List<String> matvecTypes;
    @Option(names = "--shape", split = ",", defaultValue = "4096x4096,4096x11008", paramLabel = "ROWSxCOLS", description = "weight shapes for --matvec (default ${DEFAULT-VALUE})") List<String> shapes;
    @Option(names = {"-p", "--prompt"}, defaultValue = "128", description = "prompt tokens (0 to skip; default ${DEFAULT-VALUE})") int promptTokens;
    @Option(names = {"-n", "--gen"}, defaultValue = "32", description = "generated tokens (0 to skip; default ${DEFAULT-VALUE})") int genTokens;
    @Option(names = {"-t", "--threads"}, split = ",", description = "thread counts to test (default: all cores)") List<Integer> threads;
    @Option(names = {"-r", "--repetitions"}, defaultValue = "3") int repetitions;
    @Option(names = "--batch", defaultValue = "128", description = "prompt batch size") int batch;
    @Option(names = "--scalar", description = "use the scalar reference kernels") boolean scalar;
    @Option(names = "--json", description = "machine-readable output") boolean json;
    @Option(names = "--gptq", paramLabel = "DIR", description = "instead of a model: GPTQ on one layer, W.f32 and H.f32 from tools/gptq_reference.py time --save DIR (see tools/gptq_bench.sh)") Path gptqLayer;
    @Option(names = "--gptq-options", defaultValue = "4,asym,128", paramLabel = "BITS,SYM,GROUP[,act]", description = "with --gptq: bits, sym|asym, group size (0: per row), optional act (default ${DEFAULT-VALUE})") String gptqOptions;
    @Option(names = "--hessian", defaultValue = "0x0", paramLabel = "SAMPLESxLEN", description = "with --gptq: also time the Hessian over SAMPLES random samples of LEN tokens (default: none)") String hessian;

    /** cpuTokensPerSecond: tokens per second of the calling thread's CPU time, at one thread only (NaN otherwise): steadier than wall time on a shared machine. */
    record Row(String test, int threads, double tokensPerSecond, double stddev, double weightGBps, double cpuTokensPerSecond) {}

    private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory.getThreadMXBean();

    @Override public Integer call() throws Exception {
        if (scalar) Kernels.setVector(false);
        List<Integer> ts = threads == null ? List.of(Runtime.getRuntime().availableProcessors()) : threads;
        if (matvecTypes != null) return matvec(ts);
        if (gptqLayer != null) {
            String[] g = gptqOptions.split(","), hs = hessian.toLowerCase(Locale.ROOT).split("x");
            if (g.length < 3 || hs.length != 2) throw new org.quant4j.util.Q4jException("--gptq-options wants BITS,sym|asym,GROUP[,act] and --hessian SAMPLESxLEN");
            return GptqBench.run(gptqLayer, Integer.parseInt(g[0]), g[1].equals("sym"), Integer.parseInt(g[2]), g.length > 3 && g[3].equals("act"),
                    ts, repetitions, Integer.parseInt(hs[0]), Integer.parseInt(hs[1]));
        }
        if (modelPath == null) throw new org.quant4j.util.Q4jException("bench needs a MODEL (or --matvec TYPES)");
        List<Row> rows = new ArrayList<>();
        try (Model model = ModelLoader.load(modelPath)) {
            Llama llama = new Llama(model);
            int ctx = Math.max(promptTokens, genTokens) + 1;
            long weightBytes = bytesPerToken(model);
            SplittableRandom rng = new SplittableRandom(7);
            int vocab = model.config().vocabSize();
            int[] prompt = new int[promptTokens];
            for (int i = 0; i < promptTokens; i++) prompt[i] = rng.nextInt(vocab);
            if (!json) {
                System.out.printf("model: %s  (%s, %,d parameters, %.2f MiB of weights, %.2f MiB read per generated token)%n",
                        modelPath, model.config().architecture(), model.config().parameterCount(), model.byteSize() / 1048576.0, weightBytes / 1048576.0);
                System.out.printf("kernels: %s%n", Kernels.vector() ? "vector (" + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED + ")" : "scalar reference");
                System.out.printf("%-8s %7s %14s %10s %12s%n", "test", "threads", "tokens/s", "GB/s", "tok/CPU-s");
            }
            for (int t : ts) {
                Parallel.setThreads(t);
                Llama.State state = llama.newState(ctx, Math.min(batch, Math.max(1, promptTokens)));
                // warm-up: one untimed run of each test, so the JIT has compiled every kernel before timing
                state.reset();
                if (promptTokens > 0) llama.forward(state, prompt, false);
                state.reset();
                for (int g = 0, tok = 1; g < genTokens; g++) tok = org.quant4j.eval.Sampler.argmax(llama.forward(state, tok));
                if (promptTokens > 0) {
                    double[] r = new double[repetitions];
                    long cpu = 0;
                    for (int i = 0; i < repetitions; i++) {
                        state.reset();
                        long t0 = System.nanoTime(), c0 = CPU.getCurrentThreadCpuTime();
                        llama.forward(state, prompt, false);
                        cpu += CPU.getCurrentThreadCpuTime() - c0;
                        r[i] = promptTokens / ((System.nanoTime() - t0) / 1e9);
                    }
                    rows.add(print(new Row("pp" + promptTokens, t, mean(r), std(r), Double.NaN, t == 1 ? (double) promptTokens * repetitions / (cpu / 1e9) : Double.NaN)));
                }
                if (genTokens > 0) {
                    double[] r = new double[repetitions];
                    long cpu = 0;
                    for (int i = 0; i < repetitions; i++) {
                        state.reset();
                        int tok = 1;
                        long t0 = System.nanoTime(), c0 = CPU.getCurrentThreadCpuTime();
                        for (int g = 0; g < genTokens; g++) {
                            float[] logits = llama.forward(state, tok);
                            tok = org.quant4j.eval.Sampler.argmax(logits);
                        }
                        cpu += CPU.getCurrentThreadCpuTime() - c0;
                        r[i] = genTokens / ((System.nanoTime() - t0) / 1e9);
                    }
                    double tps = mean(r);
                    rows.add(print(new Row("tg" + genTokens, t, tps, std(r), tps * weightBytes / 1e9, t == 1 ? (double) genTokens * repetitions / (cpu / 1e9) : Double.NaN)));
                }
            }
        }
        if (json) System.out.println(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(rows));
        return 0;
    }

    record MatvecRow(String type, String shape, int threads, double microseconds, double stddev, double weightGBps, double gigaWeightsPerSecond, double callerCpuMicroseconds) {}

    /** Weight bandwidth of one matrix-vector product per type, shape and thread count (random Gaussian weights). */
    private int matvec(List<Integer> ts) throws Exception {
        List<MatvecRow> rows = new ArrayList<>();
        if (!json) {
            System.out.printf("kernels: %s%n", Kernels.vector() ? "vector (" + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED + ")" : "scalar reference");
            System.out.printf("%-7s %-11s %7s %16s %9s %9s %12s%n", "type", "shape", "threads", "µs per matvec", "GB/s", "Gweight/s", "caller CPU µs");
        }
        for (String shape : shapes) {
            String[] rc = shape.toLowerCase(Locale.ROOT).split("x");
            if (rc.length != 2) throw new org.quant4j.util.Q4jException("--shape wants ROWSxCOLS, not '" + shape + "'");
            int rowsN = Integer.parseInt(rc[0].trim()), cols = Integer.parseInt(rc[1].trim());
            SplittableRandom rng = new SplittableRandom(42);
            float[] w = new float[Math.multiplyExact(rowsN, cols)];
            for (int i = 0; i < w.length; i++) w[i] = (float) (0.02 * gaussian(rng));
            // off-heap like a mapped model file (a heap float[] segment takes the Vector API's slow path)
            java.lang.foreign.MemorySegment seg = java.lang.foreign.Arena.ofAuto().allocate(4L * w.length, 64);
            java.lang.foreign.MemorySegment.copy(w, 0, seg, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0, w.length);
            Tensor f32 = new Tensor("w", org.quant4j.format.GgmlType.F32, new long[]{rowsN, cols}, seg);
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) x[i] = (float) gaussian(rng);
            float[] out = new float[rowsN];
            for (String typeName : matvecTypes) {
                org.quant4j.format.GgmlType type = QuantizeCommand.ggmlType(typeName);
                Tensor t = type == org.quant4j.format.GgmlType.F32 ? f32 : org.quant4j.method.kquant.GgufQuantize.quantize(f32, type, null);
                t = new Tensor(t.name(), t.type(), t.shape(), t.data().asReadOnly()); // read-only like a mapped model file (kernel/Q8Repacked copies only those)
                for (int th : ts) {
                    Parallel.setThreads(th);
                    for (int i = 0; i < 20; i++) org.quant4j.kernel.MatMul.matmul(t, x, out, 1); // warm-up
                    double[] us = new double[repetitions];
                    // CPU time of the calling thread (with 1 thread: all the work): on a loaded machine it stays
                    // close to what the kernel costs on an idle core, where wall time does not
                    var mx = java.lang.management.ManagementFactory.getThreadMXBean();
                    long cpu0 = mx.getCurrentThreadCpuTime(), totalIters = 0;
                    for (int r = 0; r < repetitions; r++) {
                        int iters = 0;
                        long t0 = System.nanoTime(), elapsed;
                        do {
                            org.quant4j.kernel.MatMul.matmul(t, x, out, 1);
                            iters++;
                            elapsed = System.nanoTime() - t0;
                        } while (elapsed < 300_000_000L);
                        us[r] = elapsed / 1e3 / iters;
                        totalIters += iters;
                    }
                    double cpuUs = (mx.getCurrentThreadCpuTime() - cpu0) / 1e3 / totalIters;
                    double m = mean(us);
                    MatvecRow row = new MatvecRow(type.name(), shape, th, m, std(us), t.data().byteSize() / (m * 1e3), (double) rowsN * cols / (m * 1e3), cpuUs);
                    rows.add(row);
                    if (!json) System.out.printf("%-7s %-11s %7d %9.1f ± %-5.1f %9.2f %9.2f %12.1f%n", row.type(), row.shape(), th, m, row.stddev(), row.weightGBps(), row.gigaWeightsPerSecond(), row.callerCpuMicroseconds());
                }
            }
        }
        if (json) System.out.println(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(rows));
        return 0;
    }

    private static double gaussian(SplittableRandom rng) {
        double u = rng.nextDouble(), v = rng.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }

    private Row print(Row r) {
        if (!json) {
            System.out.printf("%-8s %7d %8.2f ± %-5.2f %8s %12s%n", r.test(), r.threads(), r.tokensPerSecond(), r.stddev(),
                    Double.isNaN(r.weightGBps()) ? "" : String.format("%.2f", r.weightGBps()),
                    Double.isNaN(r.cpuTokensPerSecond()) ? "" : String.format("%.2f", r.cpuTokensPerSecond()));
        }
        return r;
    }

    /** Bytes of weights one decoded token reads: every tensor except the embedding, of which only one row is read. */
    static long bytesPerToken(Model m) {
        long n = 0;
        for (Tensor t : m.tensors().values()) {
            if (t.name().equals(Model.TOKEN_EMBD) && !m.config().tiedEmbeddings()) n += t.data().byteSize() / Math.max(1, t.rows());
            else n += t.data().byteSize();
        }
        return n;
    }

    private static double mean(double[] v) { double s = 0; for (double x : v) s += x; return s / v.length; }

    private static double std(double[] v) {
        if (v.length < 2) return 0;
        double m = mean(v), s = 0;
        for (double x : v) s += (x - m) * (x - m);
        return Math.sqrt(s / (v.length - 1));
    }
}
