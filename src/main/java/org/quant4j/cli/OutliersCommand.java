package org.quant4j.cli;

import org.quant4j.eval.Perplexity;
import org.quant4j.io.ModelLoader;
import org.quant4j.method.actquant.WeightActivationScheme;
import org.quant4j.method.llmint8.LlmInt8;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.report.HtmlReport;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Issue 6's comparison: the outlier methods (LLM.int8(), SmoothQuant, QuaRot, DuQuant) against naive RTN at W8A8,
 * W4A8 and W4A4 on one model: perplexity on held-out text, KL-divergence and top-1 agreement against the float model,
 * and the time each transform takes; then LLM.int8()'s share of outlier columns per layer.
 */
@Command(name = "outliers", mixinStandardHelpOptions = true,
        description = {"Compare weight-and-activation quantization methods (RTN, LLM.int8(), SmoothQuant, QuaRot, DuQuant) at W8A8, W4A8 and W4A4.",
                "Example: quant4j outliers --model ../shared/models/ref6M/ref6M.gguf -f ../shared/text/wikitext-2-raw/wiki.test.raw --calibration-file ../shared/text/tinyshakespeare.txt --chunks 40"})
final class OutliersCommand implements Callable<Integer> {
    @Option(names = "--model", description = "model (default: the bundled stories260K)") Path modelPath;
    @Option(names = "--tokenizer", description = "tokenizer.bin for a llama2.c model") Path tokenizerPath;
    @Option(names = {"-f", "--file"}, description = "held-out text (default: the bundled TinyStories validation excerpt)") Path textFile;
    @Option(names = "--calibration-file", description = "calibration text (default: the bundled TinyStories sample)") Path calibrationFile;
    @Option(names = "--calibration-samples", defaultValue = "8", description = "calibration windows (default ${DEFAULT-VALUE})") int samples;
    @Option(names = {"-c", "--ctx"}, defaultValue = "128") int ctx;
    @Option(names = "--chunks", defaultValue = "-1", description = "evaluate at most this many chunks (default: the whole text)") int chunks;
    @Option(names = "--alpha", defaultValue = "0.5", description = "SmoothQuant / DuQuant migration strength (default ${DEFAULT-VALUE})") float alpha;
    @Option(names = "--block-size", defaultValue = "128", description = "DuQuant block size (default ${DEFAULT-VALUE})") int blockSize;
    @Option(names = "--seed", defaultValue = "1234") long seed;
    @Option(names = "--variants", description = "run only the variants whose label matches this regex (FP32 always runs)") String variantFilter;
    @Option(names = {"-o", "--out"}, defaultValue = "out/outliers", description = "report directory (default ${DEFAULT-VALUE})") Path outDir;

    record Row(String variant, double ppl, double pplErr, double kl, double sameTop, double transformSec, double weightSec) {}

    @Override public Integer call() {
        Path mp = modelPath != null ? modelPath : Defaults.model();
        Path text = textFile != null ? textFile : Defaults.evalText();
        Path calText = calibrationFile != null ? calibrationFile : Defaults.calibrationText();
        try (Model base = ModelLoader.load(mp, tokenizerPath)) {
            Tokenizer tok = Tokenizers.fromMetadata(base.metadata(), base.source());
            int[] ids = tok.encode(EvalCommand.read(text), true, false);
            Path baseLogits = outDir.resolve("base.logits");
            System.out.printf("model %s (dim %d, hidden %d, %d layers); held-out %s (%d tokens, chunks of %d); calibration %s (%d windows)%n",
                    mp, base.config().dim(), base.config().hiddenDim(), base.config().nLayers(), text, ids.length, ctx, calText, samples);
            Perplexity.perplexity(new Llama(base), ids, ctx, tok.bosId(), true, chunks, baseLogits, null);
            int[][] calibration = Calibration.samples(base, calText, samples, ctx);
            OutlierMethods.Settings settings = new OutlierMethods.Settings(alpha, LlmInt8.DEFAULT_THRESHOLD, blockSize, 256, seed, false, 0);

            List<Row> rows = new ArrayList<>();
            List<String> notes = new ArrayList<>();
            rows.add(measure("FP32", base, tok, baseLogits, 0, 0));
            record Variant(String label, String method, WeightActivationScheme scheme, boolean gptq, int kvBits) {
                Variant(String label, String method, WeightActivationScheme scheme) { this(label, method, scheme, false, 0); }
            }
            List<Variant> variants = List.of(
                    new Variant("naive W8A8 (RTN, per-token)", "rtn", WeightActivationScheme.W8A8_DYNAMIC),
                    new Variant("naive W8A8 (RTN, static)", "rtn", WeightActivationScheme.W8A8_STATIC),
                    new Variant("LLM.int8() (threshold 6)", "llm-int8", WeightActivationScheme.W8A8_DYNAMIC),
                    new Variant("SmoothQuant W8A8 (per-token)", "smoothquant", WeightActivationScheme.W8A8_DYNAMIC),
                    new Variant("SmoothQuant W8A8 (static)", "smoothquant", WeightActivationScheme.W8A8_STATIC),
                    new Variant("RTN W4A8", "rtn", WeightActivationScheme.W4A8),
                    new Variant("QuaRot W4A8 (RTN weights)", "quarot", WeightActivationScheme.W4A8),
                    new Variant("DuQuant W4A8", "duquant", WeightActivationScheme.W4A8),
                    new Variant("RTN W4A4", "rtn", WeightActivationScheme.W4A4),
                    new Variant("SmoothQuant W4A4", "smoothquant", WeightActivationScheme.W4A4),
                    new Variant("QuaRot W4A4 (RTN weights)", "quarot", WeightActivationScheme.W4A4),
                    new Variant("QuaRot W4A4 (GPTQ weights)", "quarot", WeightActivationScheme.W4A4, true, 0),
                    new Variant("QuaRot W4A4, orthogonal fallback", "quarot-orthogonal", WeightActivationScheme.W4A4),
                    new Variant("DuQuant W4A4", "duquant", WeightActivationScheme.W4A4),
                    new Variant("RTN W4A4KV4", "rtn", WeightActivationScheme.W4A4, false, 4),
                    new Variant("QuaRot W4A4KV8 (RTN weights)", "quarot", WeightActivationScheme.W4A4, false, 8),
                    new Variant("QuaRot W4A4KV4 (RTN weights)", "quarot", WeightActivationScheme.W4A4, false, 4),
                    new Variant("QuaRot W4A4KV4 (GPTQ weights)", "quarot", WeightActivationScheme.W4A4, true, 4),
                    new Variant("DuQuant W4A4KV4", "duquant", WeightActivationScheme.W4A4, false, 4));
            java.util.regex.Pattern only = variantFilter == null ? null : java.util.regex.Pattern.compile(variantFilter);
            boolean allHadamard = org.quant4j.method.rotation.Rotations.hasHadamard(base.config().hiddenDim())
                    && org.quant4j.method.rotation.Rotations.hasHadamard(base.config().qDim());
            for (Variant v : variants) {
                if (v.method().equals("quarot-orthogonal") && allHadamard) continue; // the same as QuaRot there
                if (only != null && !only.matcher(v.label()).find()) continue;
                OutlierMethods.Outcome o = OutlierMethods.apply(v.method(), base, calibration, v.scheme(), settings.withWeights(v.gptq()).withKvBits(v.kvBits()));
                for (String n : o.notes()) if (!notes.contains(n)) notes.add(n);
                rows.add(measure(v.label(), o.model(), tok, baseLogits, o.transformSec(), o.weightSec()));
            }

            List<String> header = List.of("variant", "perplexity", "KL vs FP32", "same top-1", "transform s", "weights s");
            List<List<String>> cells = new ArrayList<>();
            System.out.printf("%n%-34s %20s %12s %10s %11s %9s%n", header.toArray());
            for (Row r : rows) {
                List<String> c = List.of(r.variant(), String.format("%.4f ± %.4f", r.ppl(), r.pplErr()), String.format("%.6f", r.kl()),
                        String.format("%.2f %%", 100 * r.sameTop()), String.format("%.2f", r.transformSec()), String.format("%.2f", r.weightSec()));
                cells.add(c);
                System.out.printf("%-34s %20s %12s %10s %11s %9s%n", c.toArray());
            }
            for (String n : notes) System.out.println("note: " + n);

            // LLM.int8(): the share of input columns with any |x| ≥ 6 per layer, one calibration window per batch
            Map<String, LlmInt8.OutlierShare> shares = LlmInt8.outlierShares(base, calibration, LlmInt8.DEFAULT_THRESHOLD);
            List<List<String>> shareCells = new ArrayList<>();
            System.out.printf("%nLLM.int8() outlier columns (|x| >= %.1f) per layer input, batches of %d tokens:%n", LlmInt8.DEFAULT_THRESHOLD, ctx);
            for (LlmInt8.OutlierShare s : shares.values()) {
                if (s.weight().contains("attn_k") || s.weight().contains("attn_v") || s.weight().contains("ffn_up")) continue; // same input as q / gate
                String share = String.format("%.2f %%", 100 * s.share());
                shareCells.add(List.of(s.weight(), share));
                System.out.printf("  %-28s %8s%n", s.weight(), share);
            }

            HtmlReport report = new HtmlReport("quant4j outliers: " + mp.getFileName());
            report.paragraph(String.format("Perplexity on %s (%d tokens, chunks of %d); KL-divergence and top-1 agreement against the FP32 model. "
                    + "Calibration: %d windows of %s. Weights: RTN per-channel (8-bit symmetric at W8, 4-bit asymmetric at W4); activations: "
                    + "per-token int8 on integer kernels at W8A8 and W4A8, per-token asymmetric 4-bit codes on the same integer kernels at W4A4; GPTQ rows: GPTQ per-channel "
                    + "weights calibrated on the transformed model; KV4/KV8: K and V cache entries per token and head, asymmetric, simulated "
                    + "(QuaRot rotates them per head first). 'transform s' is the time of the method's transform including its calibration run; "
                    + "'weights s' the weight quantization (RTN or GPTQ) and activation calibration.", text.getFileName(), ids.length, ctx, samples, calText.getFileName()));
            report.heading("Methods").table(header, cells);
            for (String n : notes) report.paragraph("Note: " + n);
            report.heading("LLM.int8() outlier columns per layer").table(List.of("layer input", "outlier columns"), shareCells);
            Path html = outDir.resolve("report.html");
            report.write(html);
            System.out.println("\nreport: " + html.toAbsolutePath());
        }
        return 0;
    }

    private Row measure(String name, Model m, Tokenizer tok, Path baseLogits, double transformSec, double weightSec) {
        Perplexity.KlResult kl = Perplexity.klDivergence(new Llama(m), baseLogits, tok.bosId(), true, chunks, null);
        return new Row(name, kl.ppl(), kl.pplError(), kl.klMean(), kl.sameTop(), transformSec, weightSec);
    }
}
