// Whole-model generation with kernel/Q8Repacked's copies on against off, interleaved in one JVM (on, off, on, off, ...)
// so that a loaded machine disturbs both alike: per thread count, the median tokens/s of each over ROUNDS runs of N
// generated tokens (after a warm-up of each) and their ratio; at one thread also tokens per CPU-second of the calling
// thread. Run after `mvn -o -q -DskipTests package`:
//   java --add-modules jdk.incubator.vector -cp target/quant4j.jar tools/RepackTg.java MODEL [N [THREADS [ROUNDS]]]
// e.g. /tmp/tl-Q8_0.gguf 32 1,2 5
import org.quant4j.eval.Sampler;
import org.quant4j.io.ModelLoader;
import org.quant4j.kernel.Parallel;
import org.quant4j.kernel.Q8Repacked;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.Arrays;

public class RepackTg {
    public static void main(String[] args) throws Exception {
        Path path = Path.of(args[0]);
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 32;
        int[] threads = Arrays.stream((args.length > 2 ? args[2] : "1,2").split(",")).mapToInt(Integer::parseInt).toArray();
        int rounds = args.length > 3 ? Integer.parseInt(args[3]) : 5;
        var cpu = ManagementFactory.getThreadMXBean();
        try (Model model = ModelLoader.load(path)) {
            Llama llama = new Llama(model);
            System.out.printf("%s, tg%d, %d rounds%n%7s %12s %12s %7s %14s %14s %7s%n", path, n, rounds, "threads", "on tok/s", "off tok/s", "on/off", "on tok/CPU-s", "off tok/CPU-s", "on/off");
            for (int t : threads) {
                Parallel.setThreads(t);
                Llama.State state = llama.newState(n + 1, 1);
                double[][] wall = new double[2][rounds], cpus = new double[2][rounds];
                for (int r = -1; r < rounds; r++) {          // r = -1: warm-up of both
                    for (int mode = 0; mode < 2; mode++) {
                        Q8Repacked.setEnabled(mode == 0);
                        state.reset();
                        int tok = 1;
                        long t0 = System.nanoTime(), c0 = cpu.getCurrentThreadCpuTime();
                        for (int g = 0; g < n; g++) tok = Sampler.argmax(llama.forward(state, tok));
                        long c = cpu.getCurrentThreadCpuTime() - c0, w = System.nanoTime() - t0;
                        if (r >= 0) {
                            wall[mode][r] = n / (w / 1e9);
                            cpus[mode][r] = n / (c / 1e9);
                        }
                    }
                }
                double on = median(wall[0]), off = median(wall[1]), con = median(cpus[0]), coff = median(cpus[1]);
                System.out.printf("%7d %12.2f %12.2f %7.2f %14.2f %14.2f %7.2f%n", t, on, off, on / off, con, coff, con / coff);
            }
            Q8Repacked.setEnabled(true);
        }
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
