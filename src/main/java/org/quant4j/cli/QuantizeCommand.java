package org.quant4j.cli;

import org.quant4j.io.ModelLoader;
import org.quant4j.io.ModelSaver;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Model;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.util.Q4jException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;

@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = {"Quantize a model's weights (and optionally activations) and save the result.",
                "Example: quant4j quantize models/stories260K/stories260K.bin out/w4.gguf --bits 4 --granularity group --group-size 32"})
final class QuantizeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "IN") Path input;
    @Parameters(index = "1", paramLabel = "OUT", description = "output: .gguf (when the scheme has a GGUF equivalent) or a safetensors directory") Path output;
    @Option(names = "--method", defaultValue = "rtn", description = "rtn, or a weight-and-activation method: llm-int8, smoothquant, quarot, quarot-orthogonal (random orthogonal where no Hadamard exists), duquant (default ${DEFAULT-VALUE})") String method;
    @Option(names = "--scheme", description = "for smoothquant, quarot, duquant (and rtn with it): w8a8, w8a8-static, w4a8, w4a4 (default w8a8 for smoothquant, w4a4 for quarot and duquant)") String waScheme;
    @Option(names = "--alpha", defaultValue = "0.5", description = "SmoothQuant / DuQuant migration strength (default ${DEFAULT-VALUE})") float alpha;
    @Option(names = "--threshold", defaultValue = "6.0", description = "LLM.int8() outlier threshold (default ${DEFAULT-VALUE})") float threshold;
    @Option(names = "--block-size", defaultValue = "128", description = "DuQuant rotation block size (default ${DEFAULT-VALUE})") int blockSize;
    @Option(names = "--steps", defaultValue = "256", description = "DuQuant greedy rotation steps (default ${DEFAULT-VALUE})") int steps;
    @Option(names = "--seed", defaultValue = "1234", description = "QuaRot / DuQuant random seed (default ${DEFAULT-VALUE})") long seed;
    @Option(names = "--bits", defaultValue = "8", description = "weight bits, 2..8 (default ${DEFAULT-VALUE})") int bits;
    @Option(names = "--granularity", defaultValue = "channel", description = "tensor, channel or group (default ${DEFAULT-VALUE})") String granularity;
    @Option(names = "--group-size", defaultValue = "32", description = "values per group for --granularity group (default ${DEFAULT-VALUE})") int groupSize;
    @Option(names = "--symmetric", description = "absmax (the default for 8 bits)") Boolean symmetric;
    @Option(names = "--asymmetric", description = "zero-point (the default below 8 bits)") Boolean asymmetric;
    @Option(names = "--full-range", description = "symmetric codes use the full two's-complement range instead of [-(2^(b-1)-1), 2^(b-1)-1]") boolean fullRange;
    @Option(names = "--calibration", defaultValue = "minmax", description = "weight range: minmax, mse, percentile:P (default ${DEFAULT-VALUE})") String calibration;
    @Option(names = "--include", description = "quantize only tensors matching this regex") String include;
    @Option(names = "--exclude", description = "skip tensors matching this regex (default: token_embd and output)") String exclude;
    @Option(names = "--activations", defaultValue = "none", description = "activation quantization for 8-bit weights: none, dynamic, static (default ${DEFAULT-VALUE})") String activations;
    @Option(names = "--calibration-file", description = "text to calibrate static activation ranges (default: the bundled TinyStories excerpt)") Path calibrationFile;
    @Option(names = "--tokenizer", description = "tokenizer.bin for a llama2.c input") Path tokenizer;

    @Override public Integer call() {
        if (!method.equalsIgnoreCase("rtn") || waScheme != null) return weightActivation();
        QuantScheme scheme = scheme(bits, granularity, groupSize, symmetric, asymmetric, fullRange);
        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(input, tokenizer)) {
            Model q = Rtn.apply(model, new Rtn.Options(scheme, calibrator(calibration),
                    include == null ? null : Pattern.compile(include), exclude == null ? null : Pattern.compile(exclude)));
            q = switch (activations.toLowerCase(Locale.ROOT)) {
                case "none" -> q;
                case "dynamic" -> ActivationQuant.dynamicInt8(q);
                case "static" -> ActivationQuant.staticInt8(q, Calibration.samples(model, calibrationFile != null ? calibrationFile : Defaults.evalText(), 8, 128));
                default -> throw new Q4jException("--activations must be none, dynamic or static, not '" + activations + "'");
            };
            ModelSaver.save(q, output, ModelSaver.Format.fromName(output), null, 0, input);
            System.out.printf("%s → %s: %s, %.2f MiB → %.2f MiB, %.1f s%n", input, output, scheme.describe(),
                    model.byteSize() / 1048576.0, q.byteSize() / 1048576.0, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    /** The outlier methods (issue 6): transform the float model, quantize weights and activations, save. */
    private int weightActivation() {
        String m = method.toLowerCase(Locale.ROOT);
        if (!OutlierMethods.NAMES.contains(m)) throw new Q4jException("unknown method '" + method + "' (available: " + String.join(", ", OutlierMethods.NAMES) + ")");
        var scheme = org.quant4j.method.actquant.WeightActivationScheme.parse(waScheme != null ? waScheme
                : m.startsWith("quarot") || m.equals("duquant") ? "w4a4" : "w8a8");
        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(input, tokenizer)) {
            int[][] calibration = Calibration.samples(model, calibrationFile != null ? calibrationFile : Defaults.calibrationText(), 8, 128);
            var outcome = OutlierMethods.apply(m, model, calibration, scheme,
                    new OutlierMethods.Settings(alpha, threshold, blockSize, steps, seed));
            outcome.notes().forEach(n -> System.out.println("note: " + n));
            ModelSaver.save(outcome.model(), output, ModelSaver.Format.fromName(output), null, 0, input);
            System.out.printf("%s → %s: %s %s, transform %.2f s, %.2f MiB → %.2f MiB, %.1f s in all%n", input, output, m,
                    m.equals("llm-int8") ? "(W8, int8 with float outlier columns)" : scheme.label(), outcome.transformSec(),
                    model.byteSize() / 1048576.0, outcome.model().byteSize() / 1048576.0, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    static QuantScheme scheme(int bits, String granularity, int groupSize, Boolean symmetric, Boolean asymmetric, boolean fullRange) {
        if (symmetric != null && asymmetric != null) throw new Q4jException("choose --symmetric or --asymmetric, not both");
        boolean sym = symmetric != null ? symmetric : asymmetric != null ? !asymmetric : bits == 8;
        Granularity g = switch (granularity.toLowerCase(Locale.ROOT)) {
            case "tensor" -> Granularity.TENSOR;
            case "channel" -> Granularity.CHANNEL;
            case "group" -> Granularity.GROUP;
            default -> throw new Q4jException("--granularity must be tensor, channel or group, not '" + granularity + "'");
        };
        if (bits < 2 || bits > 8) throw new Q4jException("--bits must be 2..8");
        QuantScheme s = new QuantScheme(bits, sym, sym && !fullRange, g == Granularity.GROUP ? Granularity.CHANNEL : g, 0);
        return g == Granularity.GROUP ? s.withGroupSize(groupSize) : s;
    }

    static Calibrator calibrator(String spec) {
        String s = spec.toLowerCase(Locale.ROOT);
        if (s.equals("minmax") || s.equals("min-max")) return Calibrator.MIN_MAX;
        if (s.equals("mse")) return Calibrator.mse(100, 0.2);
        if (s.equals("kl")) return Calibrator.kl(2048);
        if (s.startsWith("percentile:")) return Calibrator.percentile(Double.parseDouble(s.substring("percentile:".length())));
        throw new Q4jException("--calibration must be minmax, mse, kl or percentile:P, not '" + spec + "'");
    }
}
