package org.quant4j.cli;

import org.quant4j.kernel.Kernels;
import org.quant4j.kernel.Parallel;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

/**
 * {@code quant4j bench --gptq DIR}: GPTQ on one layer, the W.f32 and H.f32 that {@code tools/gptq_reference.py time
 * --save DIR} wrote after timing IST-DASLab's fasterquant on them, so both sides quantize the same weights with the same
 * Hessian. Times, best of the repetitions: prepare (dead columns, damping, the inverse Hessian's Cholesky factor) and
 * quantize (Algorithm 1 with its lazy batch updates), the work fasterquant's timer covers; then the Hessian
 * accumulation H += 2 X Xᵀ / n over samples × seq-len random tokens (the reference's add_batch, timed by the script
 * with {@code --hessian-samples}). The layer line also gives the process CPU time of the best repetition (every thread),
 * steadier than wall time on a shared machine. {@code tools/gptq_bench.sh} runs both and prints the ratios.
 */
final class GptqBench {
    private GptqBench() {}

    record Matrix(int rows, int cols, float[] values) {}

    static Matrix read(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        if (bytes.length < 8) throw new Q4jException(file + ": " + bytes.length + " bytes, not a .f32 matrix (int32 rows, int32 cols, floats)");
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int rows = b.getInt(), cols = b.getInt();
        long want = 8 + 4L * rows * cols;
        if (rows <= 0 || cols <= 0 || want != bytes.length) {
            throw new Q4jException(file + ": header says " + rows + " × " + cols + " floats (" + want + " bytes) but the file has " + bytes.length);
        }
        float[] v = new float[rows * cols];
        b.asFloatBuffer().get(v);
        return new Matrix(rows, cols, v);
    }

    /** CPU time of the whole process (every thread), steadier than wall time on a shared machine. */
    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    static int run(Path dir, int bits, boolean symmetric, int groupSize, boolean actOrder, List<Integer> threads,
                   int repetitions, int samples, int seqLen) throws IOException {
        Matrix w = read(dir.resolve("W.f32")), hf = read(dir.resolve("H.f32"));
        int rows = w.rows(), cols = w.cols();
        if (hf.rows() != cols || hf.cols() != cols) throw new Q4jException(dir.resolve("H.f32") + ": " + hf.rows() + " × " + hf.cols() + ", expected " + cols + " × " + cols);
        double[] h = new double[cols * cols];                            // (cols, cols)
        for (int i = 0; i < h.length; i++) h[i] = hf.values()[i];
        Gptq.Options o = new Gptq.Options(bits, symmetric, groupSize, actOrder, false, 0.01, 128, false);
        System.out.printf("kernels: %s%n", Kernels.vector() ? "vector (" + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED + ")" : "scalar reference");
        for (int t : threads) {
            Parallel.setThreads(t);
            double best = Double.MAX_VALUE, bestPrepare = 0, loss = 0, cpu = 0, cpuPrepare = 0;
            Gptq.PrepareTimes phases = null;
            Gptq.QuantizeTimes loop = null;
            for (int r = 0; r < repetitions + 1; r++) {                  // the first run warms the JIT up
                long c0 = cpuNanos(), t0 = System.nanoTime();
                Gptq.Prepared p = Gptq.prepare(h, cols, o, null);
                long c1 = cpuNanos(), t1 = System.nanoTime();
                Gptq.Result res = Gptq.quantize(w.values(), rows, cols, p, o);
                double s = (System.nanoTime() - t0) / 1e9;
                if (r > 0 && s < best) {
                    best = s; bestPrepare = (t1 - t0) / 1e9; phases = Gptq.lastPrepareTimes(); loop = Gptq.lastQuantizeTimes();
                    cpu = (cpuNanos() - c0) / 1e9; cpuPrepare = (c1 - c0) / 1e9;
                }
                loss = res.loss();
            }
            System.out.printf("quant4j GPTQ %dx%d %s threads=%d: %.3f s (best of %d; prepare %.3f s, quantize %.3f s), loss %.6g, cpu %.3f s (prepare %.3f s, quantize %.3f s)%n",
                    rows, cols, o.describe(), t, best, repetitions, bestPrepare, best - bestPrepare, loss, cpu, cpuPrepare, cpu - cpuPrepare);
            if (phases != null) {
                System.out.printf("  prepare phases: reorder + damp %.3f s, Cholesky %.3f s, factor to float %.3f s%n",
                        phases.reorder(), phases.cholesky(), phases.transpose());
            }
            if (loop != null) {
                System.out.printf("  quantize phases (cpu, all threads): U_XX inverses %.3f s, batch products %.3f s, column loop %.3f s%n",
                        loop.inverses(), loop.batchProducts(), loop.columnLoop());
            }
            if (samples > 0) {
                SplittableRandom rng = new SplittableRandom(5);
                float[] x = new float[seqLen * cols];                    // (seqLen, cols) one sample
                for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() - 0.5);
                Gptq.Hessian warm = new Gptq.Hessian(cols);
                warm.add(x, seqLen);
                Gptq.Hessian acc = new Gptq.Hessian(cols);
                long t0 = System.nanoTime();
                for (int s = 0; s < samples; s++) acc.add(x, seqLen);
                double sec = (System.nanoTime() - t0) / 1e9;
                long t1 = System.nanoTime();
                acc.values();                                            // the lower triangle, mirrored once
                double mirror = (System.nanoTime() - t1) / 1e9;
                sec += mirror;
                System.out.printf("quant4j Hessian cols=%d samples=%d seq_len=%d threads=%d: %.3f s (%.1f GFLOP/s on the upper half; mirror %.3f s)%n",
                        cols, samples, seqLen, t, sec, (double) cols * cols * seqLen * samples / sec / 1e9, mirror);
            }
        }
        return 0;
    }
}
