package org.quant4j.model;

import org.quant4j.io.gguf.GgufModelWriter;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.kernel.Parallel;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.encoder.EncoderGptq;
import org.quant4j.method.encoder.EncoderTransforms;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.method.kquant.GgufQuantize;
import org.quant4j.method.kquant.LlamaFileType;
import org.quant4j.method.llmint8.LlmInt8;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * The benchmark of issue 8, item 4: all-MiniLM-L6-v2 quantized by quant4j against the int8 twin langchain4j ships
 * (ONNX Runtime's dynamic quantization, run by ONNX Runtime), on sentences of a text file. For every variant: mean and
 * minimum cosine similarity to the FP32 model's embeddings (ONNX Runtime FP32 is the reference), top-10 retrieval
 * agreement (each query's 10 nearest corpus sentences, against FP32's 10), size, and sentences per second.
 *
 * <p>A main class, not a test (it times things): needs the test classpath for ONNX Runtime and the model jars.
 * <pre>
 *   mvn -q -o test-compile dependency:build-classpath -Dmdep.outputFile=target/test.cp -Dmdep.includeScope=test
 *   java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes:$(cat target/test.cp) \
 *        org.quant4j.model.EncoderComparison ../shared/text/wikitext-2-raw/wiki.test.raw 1000 100 1
 * </pre>
 * Arguments: text file, corpus sentences, queries (the first sentences of the corpus), threads, model
 * ({@code all-minilm-l6-v2} or {@code bge-small-en-v1.5}), and a regex selecting the variants to run (default all).
 */
public final class EncoderComparison {

    /** @param size known once the variant has been built (lazy variants quantize on first use) */
    record Variant(String name, java.util.function.Supplier<String> size, Function<int[], float[]> embed) {}

    record Row(String name, String size, double meanCos, double minCos, double top10, double sentencesPerSecond) {}

    public static void main(String[] args) throws Exception {
        Path text = Path.of(args.length > 0 ? args[0] : "data/text/tinystories_valid_excerpt.txt");
        int corpusSize = args.length > 1 ? Integer.parseInt(args[1]) : 1000;
        int queries = args.length > 2 ? Integer.parseInt(args[2]) : 100;
        int threads = args.length > 3 ? Integer.parseInt(args[3]) : 1;
        Parallel.setThreads(threads);
        String name = args.length > 4 ? args[4] : Encoders.MINILM;
        Pattern only = Pattern.compile(args.length > 5 ? args[5] : ".*");
        Bert.Pooling pooling = name.startsWith("bge") ? Bert.Pooling.CLS : Bert.Pooling.MEAN;

        List<String> sentences = sentences(text, corpusSize);
        Path fp32Onnx = Encoders.onnx(name), int8Onnx = Encoders.onnx(name.equals(Encoders.MINILM) ? Encoders.MINILM_Q : name + "-q");
        Model f32 = OnnxModelReader.load(fp32Onnx, new OnnxModelReader.Options(pooling, true, null));
        Tokenizer tok = Tokenizers.fromMetadata(f32.metadata(), f32.source());
        List<int[]> ids = new ArrayList<>();
        long tokens = 0;
        for (String s : sentences) { int[] t = tok.encode(s, true, false); ids.add(t); tokens += t.length; }
        System.out.printf(Locale.ROOT, "%s: %d sentences (%.1f tokens on average), %d queries, %d thread(s)%n",
                text, ids.size(), tokens / (double) ids.size(), queries, threads);

        Pattern linear = Pattern.compile("^blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_output|ffn_up|ffn_down)\\.weight$");
        Path tmp = Files.createTempDirectory("q4j-encoders");
        List<Variant> variants = new ArrayList<>();
        String fp32Size = mib(Files.size(fp32Onnx)) + " .onnx", int8Size = mib(Files.size(int8Onnx)) + " .onnx";
        try (Encoders.Ort ortF32 = new Encoders.Ort(fp32Onnx, threads); Encoders.Ort ortInt8 = new Encoders.Ort(int8Onnx, threads)) {
            variants.add(new Variant("ONNX Runtime FP32 (reference)", () -> fp32Size, ids1 -> ortF32.embed(ids1, pooling)));
            variants.add(new Variant("ONNX Runtime int8 twin (langchain4j -q)", () -> int8Size, ids1 -> ortInt8.embed(ids1, pooling)));
            variants.add(quant4j("quant4j FP32", f32, null, tmp));
            Model w8c = Rtn.apply(f32, new Rtn.Options(QuantScheme.symmetric(8, Granularity.CHANNEL), Calibrator.MIN_MAX, linear, null));
            variants.add(quant4j("quant4j RTN W8 per-channel", w8c, null, tmp));
            variants.add(quant4j("quant4j RTN W8 per-channel, A8 dynamic", ActivationQuant.dynamicInt8(w8c), null, tmp));
            // the embeddings too (the int8 twin quantizes its word embedding): one scale per token row, or groups of 32
            Pattern embeddings = Pattern.compile("^(token_embd|position_embd)\\.weight$");
            Model w8all = Rtn.apply(w8c, new Rtn.Options(QuantScheme.symmetric(8, Granularity.CHANNEL), Calibrator.MIN_MAX, embeddings, Pattern.compile("^$")));
            variants.add(quant4j("quant4j RTN W8 per-channel + embeddings W8", w8all, null, tmp));
            variants.add(quant4j("quant4j RTN W8 per-channel + embeddings W8, A8 dynamic", ActivationQuant.dynamicInt8(w8all), null, tmp));
            Model w8e4 = Rtn.apply(w8c, new Rtn.Options(QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32), Calibrator.MIN_MAX, embeddings, Pattern.compile("^$")));
            variants.add(quant4j("quant4j RTN W8 per-channel + embeddings W4 g32 asym", w8e4, null, tmp));
            Model w8g = Rtn.apply(f32, new Rtn.Options(QuantScheme.symmetric(8, Granularity.CHANNEL).withGroupSize(32), Calibrator.MIN_MAX, linear, null));
            variants.add(quant4j("quant4j RTN W8 g32 (= Q8_0)", w8g, "w8g32.gguf", tmp));
            Model w4g = Rtn.apply(f32, new Rtn.Options(QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32), Calibrator.MIN_MAX, linear, null));
            variants.add(quant4j("quant4j RTN W4 g32 sym (= Q4_0 layout)", w4g, "w4g32.gguf", tmp));
            Model w4a = Rtn.apply(f32, new Rtn.Options(QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32), Calibrator.MIN_MAX, linear, null));
            variants.add(quant4j("quant4j RTN W4 g32 asym", w4a, null, tmp));
            Model w4all = Rtn.apply(w4a, new Rtn.Options(QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32), Calibrator.MIN_MAX, embeddings, Pattern.compile("^$")));
            variants.add(quant4j("quant4j RTN W4 g32 asym + embeddings W4 g32 asym", w4all, null, tmp));

            // issue 8, item 3: every method on the encoder (calibration: the 128 sentences after the corpus, disjoint from it)
            int[][] calibration = sentences(text, corpusSize + 128).stream().skip(ids.size()).map(s -> tok.encode(s, true, false))
                    .map(new Bert(f32)::truncate).toArray(int[][]::new);
            if (calibration.length == 0) calibration = ids.subList(0, Math.min(128, ids.size())).toArray(int[][]::new);
            final int[][] calib = calibration;
            variants.add(lazy("quant4j GPTQ W4 g32 asym act-order", () -> Gptq.apply(f32, calib, new Gptq.Options(4, false, 32, true, true, 0.3, 128, true), null, null), null, tmp));
            variants.add(lazy("quant4j GPTQ W4 g32 sym act-order (= Q4_0 layout)", () -> Gptq.apply(f32, calib, new Gptq.Options(4, true, 32, true, true, 0.3, 128, true), null, null), "gptq-w4g32.gguf", tmp));
            variants.add(lazy("quant4j SmoothQuant (explicit smoothing) W8A8 dynamic", () -> ActivationQuant.dynamicInt8(Rtn.apply(
                    EncoderTransforms.smooth(f32, EncoderTransforms.channelAbsMax(f32, calib), 0.5f),
                    new Rtn.Options(QuantScheme.symmetric(8, Granularity.CHANNEL), Calibrator.MIN_MAX, linear, null))), null, tmp));
            variants.add(lazy("quant4j LLM.int8() (threshold 6)", () -> LlmInt8.apply(f32, 6f), null, tmp));
            variants.add(lazy("quant4j online Hadamard rotation + RTN W4 g32 sym", () -> Rtn.apply(EncoderTransforms.rotate(f32, 1234),
                    new Rtn.Options(QuantScheme.symmetric(4, Granularity.CHANNEL).withGroupSize(32), Calibrator.MIN_MAX, linear, null)), null, tmp));
            variants.add(lazy("quant4j AWQ W4 g32 asym (online scales)", () -> org.quant4j.method.awq.BertAwq.apply(f32, calib,
                    org.quant4j.method.awq.Awq.Options.of(4, 32), null), null, tmp));
            variants.add(lazy("quant4j GPTQ W4 g32 asym act-order, clipped grid", () -> EncoderGptq.apply(f32, calib,
                    new Gptq.Options(4, false, 32, true, true, 0.3, 128, true), EncoderGptq.Options.clipped(), null), null, tmp));
            variants.add(lazy("quant4j GPTQ W4 g32 asym act-order, clipped grid, ffn_up W8", () -> EncoderGptq.apply(f32, calib,
                    new Gptq.Options(4, false, 32, true, true, 0.3, 128, true), EncoderGptq.Options.clipped().withEightBit(Pattern.compile("ffn_up")), null), null, tmp));
            // session 6: the best 4-bit recipe (every linear at W4 g32 asym): Hadamard at the q/k/v and up inputs, clipped
            // grids with each end shrunk apart, the float model's outputs as GPTQ's target, on more calibration sentences
            int calibBig = Integer.getInteger("quant4j.calibration", 512);
            final int[][] calibMore = sentences(text, corpusSize + calibBig).stream().skip(ids.size()).map(s -> tok.encode(s, true, false))
                    .map(new Bert(f32)::truncate).toArray(int[][]::new);
            Gptq.Options w4g32 = new Gptq.Options(4, false, 32, true, true, 0.3, 128, true);
            variants.add(lazy("quant4j GPTQ W4 g32 asym, Hadamard q/k/v+up, clipped grid", () -> EncoderGptq.apply(
                    EncoderTransforms.rotate(f32, 1234, new boolean[]{true, false, true, false}), calib, w4g32, EncoderGptq.Options.clipped(), null), null, tmp));
            variants.add(lazy("quant4j GPTQ W4 g32 asym, Hadamard q/k/v+up, clipped each end, float target 0.1, " + calibMore.length + " calibration sentences",
                    () -> EncoderGptq.apply(EncoderTransforms.rotate(f32, 1234, new boolean[]{true, false, true, false}), calibMore, w4g32,
                            EncoderGptq.Options.clipped().withClipEachEnd(true).withFloatTarget(true, 0.1), null), null, tmp));
            // static W8A8: one calibrated scale per layer input (min-max over the calibration sentences)
            variants.add(lazy("quant4j RTN W8 per-channel, A8 static", () -> ActivationQuant.staticInt8(
                    Rtn.apply(f32, new Rtn.Options(QuantScheme.symmetric(8, Granularity.CHANNEL), Calibrator.MIN_MAX, linear, null)), calib), null, tmp));
            variants.add(lazy("quant4j SmoothQuant (online smoothing) W8A8 static", () -> ActivationQuant.staticInt8(Rtn.apply(
                    EncoderTransforms.smooth(f32, EncoderTransforms.channelAbsMax(f32, calib), 0.5f),
                    new Rtn.Options(QuantScheme.symmetric(8, Granularity.CHANNEL), Calibrator.MIN_MAX, linear, null)), calib), null, tmp));
            for (LlamaFileType ft : new LlamaFileType[]{LlamaFileType.Q8_0, LlamaFileType.Q6_K, LlamaFileType.Q4_K_M}) {
                variants.add(lazy("quant4j GGUF " + ft + " (llama-quantize's mix)", () -> GgufQuantize.apply(f32, GgufQuantize.Options.of(ft)), ft + ".gguf", tmp));
            }
            // the 8-bit file on disk under the int8 twin's size: Q8_0 with the word embeddings (half the weights) in a
            // 5-bit type of 32-blocks (384-wide rows take no K-quant): quantize --type Q8_0 --token-embedding-type Q5_0
            for (org.quant4j.format.GgmlType te : new org.quant4j.format.GgmlType[]{org.quant4j.format.GgmlType.Q5_0, org.quant4j.format.GgmlType.Q5_1}) {
                variants.add(lazy("quant4j GGUF Q8_0, token_embd " + te, () -> GgufQuantize.apply(f32,
                        new GgufQuantize.Options(LlamaFileType.Q8_0, false, List.of(), null, te, false, null)), "Q8_0-" + te + ".gguf", tmp));
            }

            float[][] reference = null;
            List<Row> rows = new ArrayList<>();
            for (Variant v : variants) {
                if (!v.name().contains("reference") && !only.matcher(v.name()).find()) continue;
                for (int i = 0; i < Math.min(20, ids.size()); i++) v.embed().apply(ids.get(i)); // warm-up
                float[][] e = new float[ids.size()][];
                long t0 = System.nanoTime();
                for (int i = 0; i < ids.size(); i++) e[i] = v.embed().apply(ids.get(i));
                double seconds = (System.nanoTime() - t0) / 1e9;
                if (reference == null) reference = e;
                double sum = 0, min = 1;
                for (int i = 0; i < e.length; i++) { double c = Bert.cosine(reference[i], e[i]); sum += c; min = Math.min(min, c); }
                Row r = new Row(v.name(), v.size().get(), sum / e.length, min, top10Agreement(reference, e, queries), e.length / seconds);
                rows.add(r);
                System.out.printf(Locale.ROOT, "  %-42s done: %.1f sentences/s, mean cos %.6f, min cos %.6f, top-10 %.2f %%%n", v.name(), r.sentencesPerSecond(),
                        r.meanCos(), r.minCos(), 100 * r.top10());
            }
            System.out.println();
            System.out.println("| variant | size (MiB) | mean cosine to FP32 | min cosine | top-10 agreement | sentences/s |");
            System.out.println("|---|---:|---:|---:|---:|---:|");
            for (Row r : rows) {
                System.out.printf(Locale.ROOT, "| %s | %s | %.6f | %.6f | %.2f %% | %.1f |%n", r.name(), r.size(), r.meanCos(), r.minCos(), 100 * r.top10(), r.sentencesPerSecond());
            }
        } finally {
            try (var s = Files.list(tmp)) { for (Path p : s.toList()) Files.deleteIfExists(p); }
            Files.deleteIfExists(tmp);
        }
    }

    /** A variant built on first use: the model is quantized only when the filter selects the variant. */
    private static Variant lazy(String name, java.util.function.Supplier<Model> make, String gguf, Path tmp) {
        Variant[] built = new Variant[1];
        return new Variant(name, () -> built[0] == null ? "?" : built[0].size().get(), ids -> {
            if (built[0] == null) built[0] = quant4j(name, make.get(), gguf, tmp);
            return built[0].embed().apply(ids);
        });
    }

    /** A quant4j variant; its size is the GGUF file it writes when it has a GGUF type, else the bytes of its tensors. */
    private static Variant quant4j(String name, Model m, String gguf, Path tmp) {
        String size;
        if (gguf != null) {
            Path out = tmp.resolve(gguf);
            GgufModelWriter.write(m, out, null);
            try { size = mib(Files.size(out)) + " .gguf"; } catch (java.io.IOException e) { throw new java.io.UncheckedIOException(e); }
        } else {
            size = mib(m.byteSize()) + " tensors";
        }
        Bert bert = new Bert(m);
        String known = size;
        return new Variant(name, () -> known, bert::embed);
    }

    private static String mib(long bytes) { return String.format(Locale.ROOT, "%.1f", bytes / 1048576.0); }

    static double top10Agreement(float[][] reference, float[][] e, int queries) {
        return org.quant4j.eval.EmbeddingAgreement.compare(reference, e, queries).top10();
    }

    static List<String> sentences(Path text, int max) { return org.quant4j.eval.EmbeddingAgreement.sentences(text, max); }
}
