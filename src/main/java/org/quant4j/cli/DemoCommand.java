package org.quant4j.cli;

import org.quant4j.eval.Perplexity;
import org.quant4j.eval.Sampler;
import org.quant4j.format.GgmlType;
import org.quant4j.io.ModelLoader;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.cast.FloatCast;
import org.quant4j.method.kquant.GgufQuantize;
import org.quant4j.method.kquant.ImatrixCollector;
import org.quant4j.method.kquant.ImportanceMatrix;
import org.quant4j.method.kquant.LlamaFileType;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.util.Q4jException;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.report.HtmlReport;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * The main job on the bundled model: load it, tell a story, then make every variant quant4j can make of it and
 * compare them in one table (bits per weight, size, perplexity on held-out text, KL-divergence and top-1 agreement
 * against the original, generation speed), and write the table and the story to an HTML report.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Load the bundled model (or --model), generate, quantize it every way quant4j can, and compare the results.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--model", description = "model (default: the bundled stories260K)") Path modelPath;
    @Option(names = "--tokenizer", description = "tokenizer.bin for a llama2.c model") Path tokenizerPath;
    @Option(names = {"-f", "--file"}, description = "held-out text (default: the bundled TinyStories excerpt)") Path textFile;
    @Option(names = {"-c", "--ctx"}, defaultValue = "128") int ctx;
    @Option(names = {"-o", "--out"}, defaultValue = "out/demo", description = "report directory (default ${DEFAULT-VALUE})") Path outDir;
    @Option(names = "--prompt", defaultValue = "Once upon a time") String prompt;
    @Option(names = {"-n", "--tokens"}, defaultValue = "120") int tokens;
    @Option(names = "--chunks", defaultValue = "-1", description = "evaluate at most this many chunks (default: the whole text)") int chunks;

    record Row(String variant, double linearBits, double bitsPerWeight, double mib, double ppl, double pplErr, double kl, double sameTop, double tokensPerSecond) {}

    @Override public Integer call() {
        Path mp = modelPath != null ? modelPath : Defaults.model();
        Path text = textFile != null ? textFile : Defaults.evalText();
        try (Model base = ModelLoader.load(mp, tokenizerPath)) {
            Tokenizer tok = Tokenizers.fromMetadata(base.metadata(), base.source());
            System.out.printf("model   %s: %s, %,d parameters, dim %d, %d layers, %d heads (%d kv), vocab %d%n", mp,
                    base.config().architecture(), base.config().parameterCount(), base.config().dim(), base.config().nLayers(),
                    base.config().nHeads(), base.config().nKvHeads(), base.config().vocabSize());
            Llama llama = new Llama(base);
            String story = generate(llama, tok);
            System.out.println("\n" + prompt + story + "\n");

            int[] ids = tok.encode(EvalCommand.read(text), true, false);
            if (ctx > base.config().contextLength()) {
                System.err.printf("note: --ctx %d exceeds the model's training context of %d tokens%n", ctx, base.config().contextLength());
            }
            Path baseLogits = outDir.resolve("base.logits");
            System.out.printf("evaluating on %s (%d tokens, chunks of %d)...%n", text, ids.length, ctx);
            Perplexity.Result ref = Perplexity.perplexity(llama, ids, ctx, tok.bosId(), true, chunks, baseLogits, null);

            List<Row> rows = new ArrayList<>();
            rows.add(measure("F32 (original)", base, tok, baseLogits, ref));
            for (GgmlType t : new GgmlType[]{GgmlType.F16, GgmlType.BF16}) {
                rows.add(measure(t + " (round to nearest even)", FloatCast.apply(base, t), tok, baseLogits, null));
            }
            int[][] calibration = Calibration.samples(base, Defaults.calibrationText(), 8, ctx); // never the evaluation text
            for (QuantScheme scheme : rtnSchemes()) {
                Model q = Rtn.apply(base, Rtn.Options.of(scheme));
                rows.add(measure("RTN W" + scheme.bits() + " " + shortName(scheme), q, tok, baseLogits, null));
                if (scheme.bits() == 8 && scheme.granularity() == Granularity.CHANNEL && scheme.symmetric()) {
                    rows.add(measure("RTN W8A8 dynamic (per token)", ActivationQuant.dynamicInt8(q), tok, baseLogits, null));
                    rows.add(measure("RTN W8A8 static (calibrated)", ActivationQuant.staticInt8(q, calibration), tok, baseLogits, null));
                }
            }

            // llama.cpp's file types; rows that do not divide into 256-blocks fall back as llama-quantize does
            ImportanceMatrix imatrix = ImatrixCollector.collect(new Llama(base), calibration, Defaults.calibrationText().getFileName().toString());
            for (LlamaFileType ft : new LlamaFileType[]{LlamaFileType.Q8_0, LlamaFileType.Q6_K, LlamaFileType.Q5_K_M, LlamaFileType.Q4_K_M,
                    LlamaFileType.Q4_0, LlamaFileType.Q3_K_M, LlamaFileType.Q2_K}) {
                for (ImportanceMatrix im : new ImportanceMatrix[]{null, imatrix}) {
                    String name = "GGUF " + ft + (im != null ? " + imatrix" : "");
                    try {
                        Model q = GgufQuantize.apply(base, GgufQuantize.Options.of(ft).withImatrix(im));
                        rows.add(measure(name, q, tok, baseLogits, null));
                    } catch (Q4jException e) {
                        System.out.println(name + ": not possible here (" + e.getMessage() + ")");
                    }
                }
            }

            List<String> header = List.of("variant", "linear bpw", "model bpw", "size MiB", "perplexity", "KL vs F32", "same top-1", "gen tokens/s");
            List<List<String>> cells = new ArrayList<>();
            System.out.printf("%n%-30s %10s %9s %9s %20s %10s %10s %12s%n", header.toArray());
            for (Row r : rows) {
                List<String> c = List.of(r.variant(), String.format("%.2f", r.linearBits()), String.format("%.2f", r.bitsPerWeight()), String.format("%.3f", r.mib()),
                        String.format("%.4f ± %.4f", r.ppl(), r.pplErr()), String.format("%.6f", r.kl()),
                        String.format("%.2f %%", 100 * r.sameTop()), String.format("%.1f", r.tokensPerSecond()));
                cells.add(c);
                System.out.printf("%-30s %10s %9s %9s %20s %10s %10s %12s%n", c.toArray());
            }
            HtmlReport report = new HtmlReport("quant4j demo: " + mp.getFileName());
            report.paragraph(String.format("%s: %,d parameters; perplexity on %s (%d tokens) in chunks of %d, scored as llama-perplexity does. "
                    + "KL-divergence and top-1 agreement are against the original model's next-token distributions. 'linear bpw' counts the "
                    + "linear layers' weights (what the methods quantize), 'model bpw' every tensor (embedding and norms stay F32). "
                    + "Generation speed: the median of three runs of 256 tokens on this machine.",
                    mp, base.config().parameterCount(), text.getFileName(), ids.length, ctx));
            report.heading("Variants").table(header, cells);
            report.heading("Greedy story from \"" + prompt + "\"").pre(prompt + story);
            Path html = outDir.resolve("report.html");
            report.write(html);
            System.out.println("\nreport: " + html.toAbsolutePath());
        }
        return 0;
    }

    /** The RTN schemes compared: 8 bits per tensor and per channel, 4 bits per channel and in groups of 32 and 64,
     * 3 and 2 bits in groups of 32; each symmetric (absmax) and asymmetric (zero point). */
    static List<QuantScheme> rtnSchemes() {
        List<QuantScheme> out = new ArrayList<>();
        for (boolean sym : new boolean[]{true, false}) {
            QuantScheme s8 = sym ? QuantScheme.symmetric(8, Granularity.TENSOR) : QuantScheme.asymmetric(8, Granularity.TENSOR);
            out.add(s8);
        }
        for (int bits : new int[]{8, 4, 3, 2}) {
            for (boolean sym : new boolean[]{true, false}) {
                QuantScheme channel = sym ? QuantScheme.symmetric(bits, Granularity.CHANNEL) : QuantScheme.asymmetric(bits, Granularity.CHANNEL);
                if (bits >= 4) out.add(channel);
                if (bits <= 4) out.add(channel.withGroupSize(32));
                if (bits == 4) out.add(channel.withGroupSize(64));
            }
        }
        return out;
    }

    static String shortName(QuantScheme s) {
        String g = s.granularity() == Granularity.GROUP ? "g" + s.groupSize() : s.granularity() == Granularity.CHANNEL ? "per-channel" : "per-tensor";
        return g + (s.symmetric() ? " sym" : " asym");
    }

    private String generate(Llama llama, Tokenizer tok) {
        Llama.State s = llama.newState(Math.min(llama.config.contextLength(), 512), 64);
        int[] p = tok.encode(prompt, true, false);
        float[] logits = llama.forward(s, p, false);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int i = 0; i < tokens && s.position < s.contextLength; i++) {
            int next = Sampler.argmax(logits);
            if (tok.isEndOfGeneration(next)) break;
            bytes.writeBytes(tok.pieceBytes(next));
            logits = llama.forward(s, next);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    private Row measure(String name, Model m, Tokenizer tok, Path baseLogits, Perplexity.Result known) {
        Llama llama = new Llama(m);
        Perplexity.KlResult kl = Perplexity.klDivergence(llama, baseLogits, tok.bosId(), true, chunks, null);
        long weights = 0, params = 0, linearBytes = 0, linearParams = 0;
        for (Tensor t : m.tensors().values()) {
            if (t.name().endsWith(Llama.INPUT_SCALE)) continue;
            weights += t.data().byteSize();
            params += t.size();
            if (Rtn.selected(t, null, Rtn.DEFAULT_EXCLUDE)) { linearBytes += t.data().byteSize(); linearParams += t.size(); }
        }
        // generation speed: the median of three runs of 256 greedy tokens from BOS, after a warm-up run
        Llama.State s = llama.newState(256, 1);
        double[] runs = new double[4];
        for (int run = 0; run < runs.length; run++) {
            s.reset();
            int token = tok.bosId();
            long t0 = System.nanoTime();
            for (int i = 0; i < 256; i++) token = Sampler.argmax(llama.forward(s, token));
            runs[run] = 256 / ((System.nanoTime() - t0) / 1e9);
        }
        double[] measured = java.util.Arrays.copyOfRange(runs, 1, runs.length);
        java.util.Arrays.sort(measured);
        double tps = measured[1];
        return new Row(name, 8.0 * linearBytes / linearParams, 8.0 * weights / params, weights / 1048576.0, kl.ppl(), kl.pplError(), kl.klMean(), kl.sameTop(), tps);
    }
}
