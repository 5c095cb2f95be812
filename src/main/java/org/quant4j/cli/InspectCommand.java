package org.quant4j.cli;

import org.quant4j.io.ModelLoader;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.Model;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.ErrorMetrics;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.LinearQuantizer;
import org.quant4j.quant.QuantScheme;
import org.quant4j.report.HtmlReport;
import org.quant4j.report.Plots;
import org.quant4j.report.TensorStats;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.AtomicOutput;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.awt.image.BufferedImage;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * The visual lab: statistics of every tensor, and for one tensor the pictures of the visual guide: its histogram, a
 * patch as original / quantized / dequantized / error heatmaps, per-input-channel magnitudes, and the error of
 * quantization schemes side by side. Writes PNG files and one self-contained HTML report.
 */
@Command(name = "inspect", mixinStandardHelpOptions = true, description = "Tensor statistics, histograms, heatmaps and quantization error, as PNGs and an HTML report.")
final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "model (default: the bundled stories260K)") Path modelPath;
    @Option(names = "--tensor", description = "the tensor to picture (default: blk.0.attn_q.weight)") String tensorName;
    @Option(names = "--bits", defaultValue = "4", description = "bits of the scheme pictured (default ${DEFAULT-VALUE})") int bits;
    @Option(names = "--group-size", defaultValue = "0", description = "group size; 0 for per-channel (default)") int groupSize;
    @Option(names = "--asymmetric", description = "zero-point instead of absmax") boolean asymmetric;
    @Option(names = {"-o", "--out"}, defaultValue = "out/inspect", description = "output directory (default ${DEFAULT-VALUE})") Path outDir;
    @Option(names = "--calibration", paramLabel = "FILE", description = "text to run through the model: also picture the activations entering the tensor's layer") Path calibration;
    @Option(names = "--samples", defaultValue = "8", description = "calibration windows of 128 tokens; for an encoder, 8 sentences each (default ${DEFAULT-VALUE})") int samples;

    @Override public Integer call() {
        try (Model model = ModelLoader.load(modelPath != null ? modelPath : Defaults.model())) {
            HtmlReport report = new HtmlReport("quant4j inspect: " + model.source());
            List<String> header = List.of("tensor", "type", "shape", "min", "max", "mean", "std", "kurtosis", ">3σ", ">6σ");
            List<List<String>> rows = new ArrayList<>();
            System.out.printf("%-28s %-5s %-12s %9s %9s %9s %9s %9s %7s %5s%n", header.toArray());
            for (Tensor t : model.tensors().values()) {
                TensorStats s = TensorStats.of(MatMul.toFloats(t));
                List<String> r = List.of(t.name(), t.type().name(), java.util.Arrays.toString(t.shape()), f(s.min()), f(s.max()), f(s.mean()),
                        f(s.std()), String.format("%.2f", s.kurtosis()), String.valueOf(s.beyond3Sigma()), String.valueOf(s.beyond6Sigma()));
                rows.add(r);
                System.out.printf("%-28s %-5s %-12s %9s %9s %9s %9s %9s %7s %5s%n", r.toArray());
            }
            report.heading("Tensors").table(header, rows);

            String name = tensorName != null ? tensorName : Model.attnQ(0);
            Tensor t = model.tensor(name);
            int rowsN = (int) t.rows(), cols = (int) t.cols();
            float[] w = MatMul.toFloats(t);                                      // (rows, cols)
            QuantScheme scheme = scheme(bits, groupSize, asymmetric);
            report.heading(name + ": " + scheme.describe());
            image(report, "histogram", name + ": histogram (log counts)", Plots.histogram(name, w, 101, true));

            // an 8×8 patch around the largest |w|, as the four panels of seed 002
            int at = 0;
            for (int i = 1; i < w.length; i++) if (Math.abs(w[i]) > Math.abs(w[at])) at = i;
            int pr = Math.min(8, rowsN), pc = Math.min(8, cols);
            int r0 = Math.max(0, Math.min(rowsN - pr, at / cols - pr / 2)), c0 = Math.max(0, Math.min(cols - pc, at % cols - pc / 2));
            LinearQuantizer.Quantized q = LinearQuantizer.quantize(w, rowsN, cols, scheme);
            float[] deq = q.dequantize();
            float[] orig = new float[pr * pc], codes = new float[pr * pc], back = new float[pr * pc], err = new float[pr * pc];
            for (int r = 0; r < pr; r++) {
                for (int c = 0; c < pc; c++) {
                    int i = (r0 + r) * cols + c0 + c;
                    orig[r * pc + c] = w[i];
                    codes[r * pc + c] = q.codes()[i];
                    back[r * pc + c] = deq[i];
                    err[r * pc + c] = Math.abs(w[i] - deq[i]);
                }
            }
            double amax = 0, emax = 0;
            for (int i = 0; i < orig.length; i++) { amax = Math.max(amax, Math.abs(orig[i])); emax = Math.max(emax, err[i]); }
            BufferedImage panels = Plots.row(Plots.heatmap("original", orig, pr, pc, -amax, amax),
                    Plots.heatmap(bits + "-bit codes", codes, pr, pc, scheme.range().min(), scheme.range().max()),
                    Plots.heatmap("dequantized", back, pr, pc, -amax, amax),
                    Plots.heatmap("|error|", err, pr, pc, 0, emax));
            image(report, "patch", String.format("rows %d-%d, columns %d-%d (around the largest |w|): original, codes, dequantized, error",
                    r0, r0 + pr - 1, c0, c0 + pc - 1), panels);

            double[] perColumn = new double[cols];
            for (int r = 0; r < rowsN; r++) for (int c = 0; c < cols; c++) perColumn[c] = Math.max(perColumn[c], Math.abs(w[r * cols + c]));
            image(report, "channels", name + ": max |w| per input channel (outlier channels stand out)",
                    Plots.channelMagnitudes(name + ": max |w| per input channel", perColumn, "input channel"));
            float[] errAll = new float[w.length];
            for (int i = 0; i < w.length; i++) errAll[i] = w[i] - deq[i];
            image(report, "error-histogram", "quantization error w − ŵ (" + scheme.describe() + ")", Plots.histogram("error, " + scheme.describe(), errAll, 101, true));

            List<String> eh = List.of("scheme", "calibration", "MSE", "max |e|", "SQNR dB", "cosine");
            List<List<String>> er = new ArrayList<>();
            for (QuantScheme s : List.of(QuantScheme.symmetric(8, Granularity.TENSOR), QuantScheme.symmetric(8, Granularity.CHANNEL),
                    QuantScheme.symmetric(4, Granularity.CHANNEL), QuantScheme.asymmetric(4, Granularity.CHANNEL),
                    QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32), QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32),
                    QuantScheme.asymmetric(3, Granularity.CHANNEL).withGroupSize(32), QuantScheme.asymmetric(2, Granularity.CHANNEL).withGroupSize(32))) {
                if (s.granularity() == Granularity.GROUP && cols % s.groupSize() != 0) continue;
                for (Calibrator c : List.of(Calibrator.MIN_MAX, Calibrator.mse(50, 0.3))) {
                    float[][] ranges = Calibrator.ranges(c, w, rowsN, cols, s);
                    ErrorMetrics m = ErrorMetrics.of(w, LinearQuantizer.quantize(w, rowsN, cols, s, ranges[0], ranges[1]).dequantize());
                    er.add(List.of(s.describe(), c.name(), String.format("%.3g", m.mse()), String.format("%.3g", m.maxAbs()),
                            String.format("%.2f", m.sqnrDb()), String.format("%.6f", m.cosine())));
                }
            }
            report.heading("Error of each scheme on " + name).table(eh, er);
            clippingTable(w, name, report);

            if (calibration != null) activations(model, name, cols, report);
            Path html = outDir.resolve("report.html");
            report.write(html);
            System.out.println("\nreport: " + html.toAbsolutePath() + " (PNG files beside it)");
        }
        return 0;
    }

    /**
     * Clipping on a tensor with outliers: the 1% of values with the largest |w| count as outliers; for per-tensor INT4
     * and INT8, each calibrator's range and its error on the other 99% and on the outliers, against min-max.
     */
    private void clippingTable(float[] w, String name, HtmlReport report) {
        float[] abs = new float[w.length];
        for (int i = 0; i < w.length; i++) abs[i] = Math.abs(w[i]);
        float[] sorted = abs.clone();
        java.util.Arrays.sort(sorted);
        float threshold = sorted[(int) Math.floor(0.99 * (sorted.length - 1))];
        List<String> header = List.of("scheme", "calibration", "range", "MSE, bulk (99%)", "MSE, outliers (1%)", "MSE, all");
        List<List<String>> rows = new ArrayList<>();
        for (int bits : new int[]{4, 8}) {
            QuantScheme s = QuantScheme.symmetric(bits, Granularity.TENSOR);
            for (Calibrator c : List.of(Calibrator.MIN_MAX, Calibrator.percentile(99.9), Calibrator.mse(100, 0.05), Calibrator.kl(2048))) {
                float[][] r = Calibrator.ranges(c, w, 1, w.length, s);
                float[] back = LinearQuantizer.quantize(w, 1, w.length, s, r[0], r[1]).dequantize();
                double bulk = 0, out = 0;
                int nb = 0, no = 0;
                for (int i = 0; i < w.length; i++) {
                    double e = (w[i] - back[i]) * (w[i] - back[i]);
                    if (abs[i] > threshold) { out += e; no++; } else { bulk += e; nb++; }
                }
                rows.add(List.of(s.describe(), c.name(), String.format("±%.4g", Math.max(Math.abs(r[0][0]), Math.abs(r[1][0]))), String.format("%.4g", bulk / Math.max(1, nb)),
                        String.format("%.4g", out / Math.max(1, no)), String.format("%.4g", (bulk + out) / w.length)));
            }
        }
        report.heading("Clipping on " + name + ": error on the bulk and on the outliers (|w| > " + f(threshold) + ")").table(header, rows);
        System.out.printf("%nclipping on %s (outliers: |w| > %s, 1%% of values)%n", name, f(threshold));
        System.out.printf("%-26s %-15s %10s %16s %18s %12s%n", header.toArray());
        for (List<String> r : rows) System.out.printf("%-26s %-15s %10s %16s %18s %12s%n", r.toArray());
    }

    /** The inputs of the chosen layer over calibration text: statistics, histogram, per-channel and per-token max |x|. */
    private void activations(Model model, String name, int cols, HtmlReport report) {
        List<float[]> rowsSeen = new ArrayList<>();                     // each (cols): one token's input
        org.quant4j.model.Llama.LinearObserver observer = (w, x, batch, n) -> {
            if (!w.equals(name)) return;
            for (int b = 0; b < batch; b++) rowsSeen.add(java.util.Arrays.copyOfRange(x, b * n, (b + 1) * n));
        };
        if (org.quant4j.model.Bert.ARCHITECTURE.equals(model.config().architecture())) {
            // an encoder reads sentences, not windows of a token stream: the first 8 × samples sentences of the file
            org.quant4j.model.Bert bert = new org.quant4j.model.Bert(model);
            org.quant4j.tokenizer.Tokenizer tok = org.quant4j.tokenizer.Tokenizers.fromMetadata(model.metadata(), model.source());
            bert.setObserver(observer);
            for (String s : org.quant4j.eval.EmbeddingAgreement.sentences(calibration, 8 * samples)) bert.hiddenStates(bert.truncate(tok.encode(s, true, false)), null);
        } else {
            org.quant4j.model.Llama llama = new org.quant4j.model.Llama(model);
            llama.setObserver(observer);
            int[][] windows = Calibration.samples(model, calibration, samples, 128);
            org.quant4j.model.Llama.State state = llama.newState(128, 128);
            for (int[] w : windows) { state.reset(); llama.forward(state, w, false); }
        }
        if (rowsSeen.isEmpty()) throw new org.quant4j.util.Q4jException(name + " is not a linear layer of the forward pass; no activations to show");
        int tokens = rowsSeen.size();
        float[] all = new float[tokens * cols];                          // (tokens, cols)
        for (int t = 0; t < tokens; t++) System.arraycopy(rowsSeen.get(t), 0, all, t * cols, cols);
        TensorStats st = TensorStats.of(all);
        report.heading("Activations entering " + name + " (" + tokens + " tokens of " + calibration.getFileName() + ")");
        report.table(List.of("min", "max", "mean", "std", "kurtosis", ">3σ", ">6σ"), List.of(List.of(f(st.min()), f(st.max()), f(st.mean()), f(st.std()),
                String.format("%.2f", st.kurtosis()), String.valueOf(st.beyond3Sigma()), String.valueOf(st.beyond6Sigma()))));
        image(report, "activation-histogram", "activations entering " + name + " (log counts)", Plots.histogram("activations: " + name, all, 101, true));
        double[] perChannel = new double[cols], perToken = new double[tokens];
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < cols; c++) {
                double a = Math.abs(all[t * cols + c]);
                perChannel[c] = Math.max(perChannel[c], a);
                perToken[t] = Math.max(perToken[t], a);
            }
        }
        image(report, "activation-channels", "max |x| per input channel: whole channels that run large are the 'normal outliers' SmoothQuant moves into the weights",
                Plots.channelMagnitudes("activations: max |x| per channel", perChannel, "channel"));
        image(report, "activation-tokens", "max |x| per token: single tokens far above the rest are 'massive outliers' (DuQuant)",
                Plots.channelMagnitudes("activations: max |x| per token", perToken, "token"));
        int shown = Math.min(tokens, 256);
        image(report, "activation-map", "|x| per (token, channel) for the first " + shown + " tokens (DuQuant's figure 1): stripes are normal outliers, dots massive ones",
                Plots.magnitudeMap("activations entering " + name, java.util.Arrays.copyOf(all, shown * cols), shown, cols));
        // detection (seed 004): a channel is a normal outlier when its max |x| is ≥ 10× the median channel's max; a value
        // is a massive outlier when it is ≥ 100× the median |x| of the whole input
        double[] sortedChannels = perChannel.clone();
        java.util.Arrays.sort(sortedChannels);
        double medianChannel = sortedChannels[cols / 2];
        float[] absAll = new float[all.length];
        for (int i = 0; i < all.length; i++) absAll[i] = Math.abs(all[i]);
        java.util.Arrays.sort(absAll);
        double medianAbs = absAll[absAll.length / 2];
        List<String> normal = new ArrayList<>();
        for (int c = 0; c < cols; c++) if (perChannel[c] >= 10 * medianChannel) normal.add(c + String.format(" (%.3g)", perChannel[c]));
        int massive = 0;
        for (float v : absAll) if (v >= 100 * medianAbs) massive++;
        String detection = String.format("normal outlier channels (max |x| ≥ 10× the median channel's %.3g): %s; massive outliers (|x| ≥ 100× the median |x| %.3g): %d values",
                medianChannel, normal.isEmpty() ? "none" : String.join(", ", normal), medianAbs, massive);
        report.paragraph(detection);
        System.out.println(detection);
        System.out.printf("activations entering %s: %d tokens, min %s, max %s, kurtosis %.2f%n", name, tokens, f(st.min()), f(st.max()), st.kurtosis());
    }

    static QuantScheme scheme(int bits, int groupSize, boolean asymmetric) {
        QuantScheme s = asymmetric ? QuantScheme.asymmetric(bits, Granularity.CHANNEL) : QuantScheme.symmetric(bits, Granularity.CHANNEL);
        return groupSize > 0 ? s.withGroupSize(groupSize) : s;
    }

    private void image(HtmlReport report, String file, String caption, BufferedImage img) {
        byte[] png = Plots.png(img);
        AtomicOutput.write(outDir.resolve(file + ".png"), ch -> { ByteBuffer b = ByteBuffer.wrap(png); while (b.hasRemaining()) ch.write(b); });
        report.image(caption, png);
    }

    private static String f(double v) { return String.format("%.4g", v); }
}
