package org.quant4j.cli;

import org.quant4j.io.ModelLoader;
import org.quant4j.io.ModelSaver;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.awq.Awq;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.Model;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.util.Q4jException;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufModelWriter;
import org.quant4j.io.gguf.GgufWriter;
import org.quant4j.io.imatrix.ImatrixFile;
import org.quant4j.method.bitnet.AbsmeanTernary;
import org.quant4j.method.kquant.GgufQuantize;
import org.quant4j.method.kquant.ImportanceMatrix;
import org.quant4j.method.kquant.LlamaFileType;
import org.quant4j.tensor.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;

@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = {"Quantize a model's weights (and optionally activations) and save the result.",
                "Example: quant4j quantize models/stories260K/stories260K.bin out/w4.gguf --bits 4 --granularity group --group-size 32",
                "llama.cpp types: quant4j quantize model.gguf out/q4km.gguf --type Q4_K_M [--imatrix imatrix.gguf]"})
final class QuantizeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "IN") Path input;
    @Parameters(index = "1", paramLabel = "OUT", description = "output: .gguf (when the scheme has a GGUF equivalent) or a safetensors directory") Path output;
    @Option(names = "--method", defaultValue = "rtn", description = "rtn, gptq, awq, or a weight-and-activation method: llm-int8, smoothquant, quarot, quarot-orthogonal (random orthogonal where no Hadamard exists), duquant (default ${DEFAULT-VALUE}); llama.cpp's types with --type") String method;
    @Option(names = "--scheme", description = "for smoothquant, quarot, duquant (and rtn with it): w8a8, w8a8-static, w4a8, w4a4 (default w8a8 for smoothquant, w4a4 for quarot and duquant)") String waScheme;
    @Option(names = "--weights", defaultValue = "rtn", description = "weights of smoothquant, quarot, duquant: rtn or gptq (GPTQ on the transformed model, calibrated on --calibration-file) (default ${DEFAULT-VALUE})") String weightMethod;
    @Option(names = "--kv-bits", defaultValue = "0", description = "quantize the KV cache per token and head, asymmetric, to 8 or 4 bits (simulated; QuaRot also rotates K and V per head); 0: float (default ${DEFAULT-VALUE})") int kvBits;
    @Option(names = "--alpha", defaultValue = "0.5", description = "SmoothQuant / DuQuant migration strength (default ${DEFAULT-VALUE})") float alpha;
    @Option(names = "--threshold", defaultValue = "6.0", description = "LLM.int8() outlier threshold (default ${DEFAULT-VALUE})") float threshold;
    @Option(names = "--steps", defaultValue = "256", description = "DuQuant greedy rotation steps (default ${DEFAULT-VALUE})") int steps;
    @Option(names = "--bits", defaultValue = "8", description = "weight bits, 2..8 (default ${DEFAULT-VALUE})") int bits;
    @Option(names = "--granularity", description = "tensor, channel or group (default: channel for RTN, group for GPTQ)") String granularity;
    @Option(names = {"--group-size", "--group"}, description = "values per group for --granularity group (default 32; 128 for AWQ)") int groupSize = -1;
    @Option(names = "--symmetric", description = "absmax (the default for 8 bits)") Boolean symmetric;
    @Option(names = "--asymmetric", description = "zero-point (the default below 8 bits)") Boolean asymmetric;
    @Option(names = "--full-range", description = "symmetric codes use the full two's-complement range instead of [-(2^(b-1)-1), 2^(b-1)-1]") boolean fullRange;
    @Option(names = "--calibration", defaultValue = "minmax", description = "weight range: minmax, mse, percentile:P (default ${DEFAULT-VALUE})") String calibration;
    @Option(names = "--include", description = "quantize only tensors matching this regex") String include;
    @Option(names = "--exclude", description = "skip tensors matching this regex (default: token_embd and output)") String exclude;
    @Option(names = "--activations", defaultValue = "none", description = "activation quantization for 8-bit weights: none, dynamic, static (default ${DEFAULT-VALUE})") String activations;
    @Option(names = "--calibration-file", description = "text to calibrate on, for static activation ranges or GPTQ (default: the bundled TinyStories sample)") Path calibrationFile;
    @Option(names = "--tokenizer", description = "tokenizer.bin for a llama2.c input") Path tokenizer;
    // GPTQ (--method gptq): calibration text from --calibration-file (default: the bundled TinyStories sample)
    @Option(names = "--samples", defaultValue = "128", description = "GPTQ: calibration samples (default ${DEFAULT-VALUE})") int samples;
    @Option(names = "--seq-len", defaultValue = "512", description = "GPTQ: tokens per sample, at most the model's context (default ${DEFAULT-VALUE})") int seqLen;
    @Option(names = "--seed", defaultValue = "1234", description = "seed of GPTQ's random calibration windows and of QuaRot / DuQuant's random rotations (default ${DEFAULT-VALUE})") long seed;
    @Option(names = "--act-order", description = "GPTQ: quantize columns in decreasing order of diag(H)") boolean actOrder;
    @Option(names = "--static-groups", description = "GPTQ: group grids from the unquantized weights, before any update") boolean staticGroups;
    @Option(names = "--percdamp", defaultValue = "0.01", description = "GPTQ: dampening, a fraction of mean(diag H) (default ${DEFAULT-VALUE})") double percdamp;
    @Option(names = "--clip-grid", description = "GPTQ on an encoder: clipped static group grids (each group's range shrunk by up to 20 %%, the error weighted by diag H); implies --act-order, --static-groups") boolean clipGrid;
    @Option(names = "--float-target", description = "GPTQ on an encoder: each layer's target is the float model's output W·X, not W·X̃ on the inputs the quantized layers before it give (GPTAQ's asymmetric calibration); implies --clip-grid") boolean floatTarget;
    @Option(names = "--ridge", defaultValue = "0.1", description = "GPTQ --float-target: damping of the float target's least squares towards W, a fraction of mean(diag H) (default ${DEFAULT-VALUE})") double ridge;
    @Option(names = "--bias-correction", description = "GPTQ on an encoder: each layer's bias absorbs its mean output error over the calibration tokens; implies --clip-grid") boolean biasCorrection;
    @Option(names = "--clip-each-end", description = "GPTQ on an encoder, asymmetric groups: shrink each group's min and max ends apart ((steps + 1)² ranges searched) instead of together; implies --clip-grid") boolean clipEachEnd;
    @Option(names = "--hadamard-inputs", description = "GPTQ on an encoder: an online randomized Hadamard (seed --seed) on the inputs of q/k/v and of up, the two read from LayerNorm outputs (stored as 2 F32 [dim, dim] matrices per block; quant4j runs them, llama.cpp does not); implies --clip-grid") boolean hadamardInputs;
    @Option(names = "--refit-norms", description = "GPTQ on an encoder: refit each block's LayerNorm γ, β (kept float) so that the quantized model's LayerNorm outputs match the float model's channel by channel on the calibration tokens; implies --clip-grid") boolean refitNorms;
    @Option(names = "--refit-scales", defaultValue = "0", description = "GPTQ on an encoder: rounds of group-scale refit by least squares on the layer objective, codes and zero points fixed (default ${DEFAULT-VALUE}: none); implies --clip-grid") int refitScales;
    @Option(names = "--block-size", defaultValue = "128", description = "GPTQ: columns per lazy batch update; DuQuant: rotation block size (default ${DEFAULT-VALUE})") int blockSize;
    @Option(names = "--no-progress", description = "no progress bar") boolean noProgress;
    @Option(names = "--max-memory", description = "GPTQ, AWQ: memory for calibration activations (hidden states, AWQ's cached layer inputs), e.g. 20G; buffers beyond it live in memory-mapped temporary files beside OUT (default: no limit)") String maxMemory;
    @Option(names = "--layout", defaultValue = "quant4j", description = "safetensors layout of quantized weights: quant4j (integer groups) or gptq (Hugging Face GPTQ: qweight, qzeros, scales, g_idx; 2/3/4/8 bits) or awq (AutoAWQ GEMM: qweight, qzeros, scales; 4 bits) (default ${DEFAULT-VALUE})") String layout;

    // ---- llama-quantize: GGUF block types and file-type mixes ----
    @Option(names = "--type", paramLabel = "T", description = "llama.cpp file type (Q4_K_M, Q8_0, Q2_K, IQ4_XS, F16, ...): write GGUF as llama-quantize does") String fileType;
    @Option(names = "--imatrix", paramLabel = "FILE", description = "importance matrix (quant4j imatrix / llama-imatrix; GGUF or legacy .dat)") Path imatrix;
    @Option(names = "--pure", description = "every quantized tensor gets the file type's default type (no per-tensor mix)") boolean pure;
    @Option(names = "--tensor-type", paramLabel = "REGEX=TYPE", description = "type for tensors matching REGEX (repeatable; the last match wins)") java.util.List<String> tensorTypes;
    @Option(names = "--output-tensor-type", paramLabel = "TYPE", description = "type of output.weight") String outputTensorType;
    @Option(names = "--token-embedding-type", paramLabel = "TYPE", description = "type of token_embd.weight") String tokenEmbeddingType;
    @Option(names = "--leave-output-tensor", description = "do not quantize output.weight") boolean leaveOutputTensor;
    @Option(names = "--bitnet", description = "with --type TQ1_0/TQ2_0: the input holds BitNet b1.58 master weights; ternarize each block matrix with its absmean scale first (automatic for models `quant4j train --qat bitnet1.58` wrote)") boolean bitnet;

    @Override public Integer call() {
        if (fileType != null) return ggufQuantize();
        if (groupSize < 0) groupSize = method.equalsIgnoreCase("awq") ? 128 : 32;
        if (method.equalsIgnoreCase("gptq")) return gptq(granularity == null ? "group" : granularity);
        if (method.equalsIgnoreCase("awq")) return awq(granularity == null ? "group" : granularity);
        if (!method.equalsIgnoreCase("rtn") || waScheme != null) return weightActivation();
        if (kvBits != 0) throw new Q4jException("--kv-bits goes with a weight-and-activation scheme (--scheme or --method smoothquant|quarot|duquant); or pass it to eval");
        if (granularity == null) granularity = "channel";
        QuantScheme scheme = scheme(bits, granularity, groupSize, symmetric, asymmetric, fullRange);
        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(input, tokenizer)) {
            Model q = Rtn.apply(model, new Rtn.Options(scheme, calibrator(calibration),
                    include == null ? null : Pattern.compile(include), exclude == null ? null : Pattern.compile(exclude)));
            q = switch (activations.toLowerCase(Locale.ROOT)) {
                case "none" -> q;
                case "dynamic" -> ActivationQuant.dynamicInt8(q);
                case "static" -> ActivationQuant.staticInt8(q, Calibration.samples(model, calibrationFile != null ? calibrationFile : Defaults.calibrationText(), 8, 128));
                default -> throw new Q4jException("--activations must be none, dynamic or static, not '" + activations + "'");
            };
            save(q, input);
            System.out.printf("%s → %s: %s, %.2f MiB → %.2f MiB, %.1f s%n", input, output, scheme.describe(),
                    model.byteSize() / 1048576.0, q.byteSize() / 1048576.0, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    /** llama-quantize: the file type's mix of ggml types, written as GGUF one tensor at a time. */
    private int ggufQuantize() {
        if (ModelSaver.Format.fromName(output) != ModelSaver.Format.GGUF) {
            throw new Q4jException(output + ": --type writes GGUF; name the output *.gguf");
        }
        LlamaFileType ftype = LlamaFileType.parse(fileType);
        List<GgufQuantize.TensorTypeOverride> overrides = new ArrayList<>();
        if (tensorTypes != null) {
            for (String spec : tensorTypes) {
                int eq = spec.indexOf('=');
                if (eq <= 0 || eq == spec.length() - 1) throw new Q4jException("--tensor-type wants REGEX=TYPE, not '" + spec + "'");
                overrides.add(new GgufQuantize.TensorTypeOverride(Pattern.compile(spec.substring(0, eq).toLowerCase(Locale.ROOT)), ggmlType(spec.substring(eq + 1))));
            }
        }
        ImportanceMatrix im = imatrix == null ? null : ImatrixFile.read(imatrix);
        GgufQuantize.Options o = new GgufQuantize.Options(ftype, pure, overrides,
                outputTensorType == null ? null : ggmlType(outputTensorType),
                tokenEmbeddingType == null ? null : ggmlType(tokenEmbeddingType), leaveOutputTensor, im);
        long t0 = System.nanoTime();
        try (Model loaded = ModelLoader.load(input, tokenizer)) {
            Model model = loaded;
            boolean ternary = ftype == LlamaFileType.TQ1_0 || ftype == LlamaFileType.TQ2_0;
            if (ternary && (bitnet || AbsmeanTernary.trainedTernary(loaded))) {
                model = AbsmeanTernary.apply(loaded);
                System.out.println("BitNet b1.58: block matrices ternarized with their absmean scale (one γ per matrix)");
            } else if (bitnet) {
                throw new Q4jException("--bitnet packs BitNet b1.58 weights into TQ1_0 or TQ2_0; give --type TQ1_0 or TQ2_0, not " + fileType);
            }
            Map<String, GgmlType> plan = GgufQuantize.plan(model, o);
            if (model != loaded) {
                for (var e : plan.entrySet()) {
                    if (AbsmeanTernary.isLinear(model.tensor(e.getKey())) && e.getValue() != GgmlType.TQ1_0 && e.getValue() != GgmlType.TQ2_0) {
                        throw new Q4jException("tensor " + e.getKey() + ": BitNet weights would be stored as " + e.getValue()
                                + ", not ternary (rows of " + model.tensor(e.getKey()).cols() + " values; TQ types need multiples of 256)");
                    }
                }
            }
            List<GgufWriter.PendingTensor> tensors = new ArrayList<>();
            Map<GgmlType, Integer> counts = new TreeMap<>();
            long[] bytes = new long[1];
            for (Map.Entry<String, GgmlType> e : plan.entrySet()) {
                Tensor t = model.tensor(e.getKey());
                GgmlType type = e.getValue() != null ? e.getValue() : t.ggmlType();
                if (t.rank() >= 2) counts.merge(type, 1, Integer::sum);
                bytes[0] += Tensor.byteSize(t.name(), type, t.shape());
                if (type == t.type()) {
                    tensors.add(GgufWriter.PendingTensor.of(t));
                } else {
                    float[] w = GgufQuantize.importance(o, t);
                    tensors.add(new GgufWriter.PendingTensor(t.name(), type, t.shape(), () -> GgufQuantize.quantize(t, type, w).data()));
                }
            }
            Model meta = model.withMetadata(GgufQuantize.metadata(o)); // general.file_type is written from ftype.id below
            if (model != loaded) meta = meta.withMetadata(Map.of(AbsmeanTernary.QAT_KEY, org.quant4j.io.gguf.GgufValue.string("bitnet1.58, ternarized")));
            if (im != null) meta = meta.withMetadata(Map.of("quantize.imatrix.file", org.quant4j.io.gguf.GgufValue.string(imatrix.toString())));
            GgufModelWriter.writePending(meta, tensors, output, ftype.id, input);
            System.out.printf("%s → %s: %s%s, matrices %s, %.2f MiB → %.2f MiB, %.1f s%n", input, output, ftype,
                    im != null ? " with an importance matrix of " + im.size() + " entries" : "", counts,
                    model.byteSize() / 1048576.0, bytes[0] / 1048576.0, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    /** The outlier methods (issue 6): transform the float model, quantize weights and activations, save. */
    private int weightActivation() {
        String m = method.toLowerCase(Locale.ROOT);
        if (!OutlierMethods.NAMES.contains(m)) throw new Q4jException("unknown method '" + method + "' (available: " + String.join(", ", OutlierMethods.NAMES) + ")");
        var scheme = org.quant4j.method.actquant.WeightActivationScheme.parse(waScheme != null ? waScheme
                : m.startsWith("quarot") || m.equals("duquant") ? "w4a4" : "w8a8");
        boolean gptqWeights = switch (weightMethod.toLowerCase(Locale.ROOT)) {
            case "rtn" -> false;
            case "gptq" -> true;
            default -> throw new Q4jException("--weights must be rtn or gptq, not '" + weightMethod + "'");
        };
        if (kvBits != 0 && kvBits != 4 && kvBits != 8) throw new Q4jException("--kv-bits must be 4 or 8 (or 0 for a float cache), not " + kvBits);
        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(input, tokenizer)) {
            int[][] calibration = Calibration.samples(model, calibrationFile != null ? calibrationFile : Defaults.calibrationText(), 8, 128);
            var outcome = OutlierMethods.apply(m, model, calibration, scheme,
                    new OutlierMethods.Settings(alpha, threshold, blockSize, steps, seed, gptqWeights, kvBits));
            outcome.notes().forEach(n -> System.out.println("note: " + n));
            ModelSaver.save(outcome.model(), output, ModelSaver.Format.fromName(output), null, 0, input);
            System.out.printf("%s → %s: %s %s%s%s, transform %.2f s, %.2f MiB → %.2f MiB, %.1f s in all%n", input, output, m,
                    m.equals("llm-int8") ? "(W8, int8 with float outlier columns)" : scheme.label(), kvBits > 0 ? "KV" + kvBits : "",
                    gptqWeights ? " (GPTQ weights)" : "", outcome.transformSec(),
                    model.byteSize() / 1048576.0, outcome.model().byteSize() / 1048576.0, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    private Integer gptq(String granularity) {
        QuantScheme scheme = calibratedScheme("GPTQ", granularity, asymmetric);
        var options = new Gptq.Options(bits, scheme.symmetric(), scheme.granularity() == Granularity.GROUP ? scheme.groupSize() : 0,
                actOrder, staticGroups, percdamp, blockSize, true);
        if (clipGrid || floatTarget || biasCorrection || hadamardInputs || clipEachEnd || refitNorms || refitScales > 0) {
            if (options.groupSize() == 0) throw new Q4jException("--clip-grid, --float-target, --bias-correction and --hadamard-inputs need groups (--granularity group)");
            var encoder = org.quant4j.method.encoder.EncoderGptq.Options.clipped().withFloatTarget(floatTarget, ridge).withBiasCorrection(biasCorrection)
                    .withClipEachEnd(clipEachEnd).withRefitNorms(refitNorms).withRefit(refitScales);
            String describe = (hadamardInputs ? "Hadamard at q/k/v and up inputs, " : "") + options.withActOrder(true).withStaticGroups(true).describe() + (clipEachEnd ? " clipped grid (each end)" : " clipped grid") + (floatTarget ? " float target (ridge " + ridge + ")" : "")
                    + (biasCorrection ? " bias correction" : "") + (refitNorms ? " LayerNorm refit" : "") + (refitScales > 0 ? " scale refit ×" + refitScales : "");
            return calibrated("GPTQ", describe, ": GPTQ W", (model, calib, log, progress) -> {
                if (!org.quant4j.model.Bert.ARCHITECTURE.equals(model.config().architecture())) {
                    throw new Q4jException(input + ": --clip-grid, --float-target, --bias-correction and --hadamard-inputs are for BERT encoders (method/encoder/EncoderGptq)");
                }
                Model base = hadamardInputs ? org.quant4j.method.encoder.EncoderTransforms.rotate(model, seed, new boolean[]{true, false, true, false}) : model;
                return org.quant4j.method.encoder.EncoderGptq.apply(base, calib, options, encoder, log);
            });
        }
        return calibrated("GPTQ", options.describe(), ": GPTQ W", (model, calib, log, progress) -> Gptq.apply(model, calib, options, log, progress));
    }

    /** AWQ (issue 5): scale search and folding, clip search, then llm-awq's zero-point quantizer. */
    private Integer awq(String granularity) {
        // AWQ's default is asymmetric (zero point), as llm-awq and AutoAWQ
        QuantScheme scheme = calibratedScheme("AWQ", granularity, asymmetric != null ? asymmetric : symmetric == null ? Boolean.TRUE : null);
        var options = Awq.Options.of(bits, scheme.granularity() == Granularity.GROUP ? scheme.groupSize() : 0).withZeroPoint(!scheme.symmetric());
        return calibrated("AWQ", options.describe(), ": α =", (model, calib, log, progress) ->
                org.quant4j.model.Bert.ARCHITECTURE.equals(model.config().architecture()) ? org.quant4j.method.awq.BertAwq.apply(model, calib, options, log)
                        : Awq.apply(model, calib, options, log, progress));
    }

    /** The weight grid of a calibrated method, with the options that apply to RTN only refused. */
    private QuantScheme calibratedScheme(String name, String granularity, Boolean asym) {
        QuantScheme scheme = scheme(bits, granularity, groupSize, symmetric, asym, fullRange);
        if (scheme.granularity() == Granularity.TENSOR) throw new Q4jException(name + " quantizes per channel or per group, not per tensor");
        if (fullRange) throw new Q4jException(name + " uses its own grid (codes 0..2^bits-1); --full-range does not apply");
        if (!activations.equalsIgnoreCase("none")) throw new Q4jException("--activations applies to RTN only");
        if (include != null || exclude != null) throw new Q4jException(name + " quantizes every linear layer of every block; --include/--exclude apply to RTN only");
        return scheme;
    }

    /** A calibrated method: from the model and its calibration samples to the quantized model. */
    @FunctionalInterface
    private interface CalibratedMethod {
        Model apply(Model model, int[][] calib, java.util.function.Consumer<String> log, org.quant4j.method.calib.SequentialCalibration.Progress progress);
    }

    /**
     * Loads the input, draws the calibration samples, runs {@code method} with a progress bar (log lines containing
     * {@code barMarker}, the per-layer ones, go into the bar; other lines to stderr), saves and reports.
     */
    private Integer calibrated(String name, String describe, String barMarker, CalibratedMethod method) {
        long t0 = System.nanoTime();
        long budget = maxMemory == null ? Long.MAX_VALUE : org.quant4j.method.calib.CalibrationMemory.parseSize(maxMemory);
        Path outDir = output.toAbsolutePath().normalize().getParent();
        Path spill;
        try {
            java.nio.file.Files.createDirectories(outDir);
            spill = java.nio.file.Files.createTempDirectory(outDir, "." + output.getFileName() + ".spill-");
            spill.toFile().deleteOnExit();                              // after its files (also when interrupted)
        } catch (java.io.IOException e) {
            throw new Q4jException(outDir + ": cannot create a temporary directory for calibration buffers: " + e.getMessage(), e);
        }
        // finished tensors go to a temporary file as each layer is done (mapped back read-only), so the heap holds
        // one block's work; the output is written tensor by tensor from there through temporary files renamed in place
        try (Model model = ModelLoader.load(input, tokenizer);
             var memory = new org.quant4j.method.calib.CalibrationMemory(budget, spill, true)) {
            Path text = calibrationFile != null ? calibrationFile : Defaults.calibrationText();
            int len = Math.min(seqLen, model.config().contextLength());
            int[][] calib = Calibration.samples(model, text, samples, len, seed);
            System.err.printf("%s: %s, %d samples of %d tokens from %s%s%n", input, describe, calib.length, calib[0].length, text,
                    maxMemory == null ? "" : ", activations in memory up to " + maxMemory);
            var scoped = ScopedValue.where(org.quant4j.method.calib.CalibrationMemory.CURRENT, memory);
            Model q;
            if (!noProgress && System.console() != null) {
                try (ProgressBar pb = new ProgressBarBuilder().setTaskName(name).setInitialMax(1).setStyle(ProgressBarStyle.ASCII)
                        .setUpdateIntervalMillis(250).setConsumer(new ConsoleProgressBarConsumer(System.err)).build()) {
                    q = scoped.call(() -> method.apply(model, calib, m -> {
                                if (m.contains(barMarker)) pb.setExtraMessage(m.length() > 60 ? m.substring(0, 60) : m);
                                else System.err.println(m);
                            },
                            (done, total, stage) -> { pb.maxHint(total); pb.stepTo(done); pb.setExtraMessage(stage); }));
                }
            } else {
                q = scoped.call(() -> method.apply(model, calib, System.err::println, null));
            }
            save(q, input);
            System.out.printf("%s → %s: %s, %.2f MiB → %.2f MiB, %.1f s%n", input, output, describe,
                    model.byteSize() / 1048576.0, q.byteSize() / 1048576.0, (System.nanoTime() - t0) / 1e9);
        } finally {
            try (var files = java.nio.file.Files.list(spill)) {
                for (Path f : files.toList()) java.nio.file.Files.deleteIfExists(f);
                java.nio.file.Files.deleteIfExists(spill);
            } catch (java.io.IOException ignored) {
                // a leftover temporary directory is harmless
            }
        }
        return 0;
    }

    static GgmlType ggmlType(String name) {
        try {
            return GgmlType.valueOf(name.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new Q4jException("unknown ggml type '" + name + "'");
        }
    }

    private void save(Model q, Path input) {
        switch (layout.toLowerCase(Locale.ROOT)) {
            case "quant4j" -> ModelSaver.save(q, output, ModelSaver.Format.fromName(output), null, 0, input);
            case "gptq" -> {
                if (ModelSaver.Format.fromName(output) != ModelSaver.Format.SAFETENSORS) throw new Q4jException("--layout gptq writes a safetensors directory, not " + output);
                org.quant4j.io.hf.HfCheckpoint.save(q, output, ModelSaver.DEFAULT_MAX_SHARD_BYTES, org.quant4j.io.hf.HfCheckpoint.Layout.GPTQ);
            }
            case "awq" -> {
                if (ModelSaver.Format.fromName(output) != ModelSaver.Format.SAFETENSORS) throw new Q4jException("--layout awq writes a safetensors directory, not " + output);
                org.quant4j.io.hf.HfCheckpoint.save(q, output, ModelSaver.DEFAULT_MAX_SHARD_BYTES, org.quant4j.io.hf.HfCheckpoint.Layout.AWQ);
            }
            default -> throw new Q4jException("--layout must be quant4j, gptq or awq, not '" + layout + "'");
        }
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
