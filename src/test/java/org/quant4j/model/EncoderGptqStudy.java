package org.quant4j.model;

import org.quant4j.eval.EmbeddingAgreement;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.kernel.Parallel;
import org.quant4j.method.encoder.EncoderGptq;
import org.quant4j.method.encoder.EncoderTransforms;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.nio.file.Path;
import java.util.*;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * Issue 8, item 4 at 4 bits: what limits GPTQ on all-MiniLM-L6-v2, and which variant reaches min cosine 0.99. Accuracy
 * only (no timing): the quant4j FP32 model is the reference (it matches ONNX Runtime's FP32 to 2.5e-6); the evaluation
 * sentences are the first N of the text, exactly EncoderComparison's corpus, and every calibration set is disjoint
 * from them.
 * <pre>
 *   java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes:$(cat target/test.cp) \
 *        org.quant4j.model.EncoderGptqStudy ../shared/text/wikitext-2-raw/wiki.test.raw 150 50 2 [REGEX]
 * </pre>
 * Arguments: text, evaluation sentences, queries, threads, a regex selecting the variants.
 */
public final class EncoderGptqStudy {

    public static void main(String[] args) {
        Path text = Path.of(args[0]);
        int corpus = Integer.parseInt(args[1]), queries = Integer.parseInt(args[2]);
        Parallel.setThreads(Integer.parseInt(args[3]));
        Pattern only = Pattern.compile(args.length > 4 ? args[4] : ".*");
        Model f32 = OnnxModelReader.load(Encoders.onnx(Encoders.MINILM));
        Tokenizer tok = Tokenizers.fromMetadata(f32.metadata(), f32.source());
        Bert base = new Bert(f32);
        List<String> all = EmbeddingAgreement.sentences(text, 100_000);
        // -Dstudy.evalOffset=K evaluates sentences K .. K+N instead (a second held-out set; K ≥ N + 2048 keeps it
        // disjoint from every calibration set, which start after the first N)
        int offset = Integer.getInteger("study.evalOffset", 0);
        if (offset != 0 && offset < corpus + 2048) throw new IllegalArgumentException("study.evalOffset must be 0 or ≥ " + (corpus + 2048));
        List<int[]> eval = all.subList(offset, offset + corpus).stream().map(s -> base.truncate(tok.encode(s, true, false))).toList();
        float[][] reference = eval.stream().map(base::embed).toArray(float[][]::new);
        // calibration sets, all disjoint from the evaluation sentences
        int[][] next128 = ids(base, tok, all.subList(corpus, corpus + 128));                       // EncoderComparison's set
        int[][] wiki512 = ids(base, tok, all.subList(all.size() - 512, all.size()));               // the end of the file
        List<String> mixed = new ArrayList<>(all.subList(all.size() - 128, all.size()));
        mixed.addAll(EmbeddingAgreement.sentences(Path.of("/work/shared/text/tinyshakespeare.txt"), 64));
        mixed.addAll(EmbeddingAgreement.sentences(Path.of("data/text/tinystories_sample.txt"), 64));
        int[][] mixed256 = ids(base, tok, mixed);                                                   // ≈256: wiki tail, Shakespeare, TinyStories
        System.out.printf(Locale.ROOT, "%d evaluation sentences (of %d in %s), %d queries; calibration: next128 %d, wiki512 %d, mixed256 %d sentences%n",
                corpus, all.size(), text, queries, next128.length, wiki512.length, mixed256.length);

        for (var set : Map.of("evaluation", eval.toArray(int[][]::new), "next128", next128, "wiki512", wiki512).entrySet()) {
            IntSummaryStatistics st = Arrays.stream(set.getValue()).mapToInt(a -> a.length).summaryStatistics();
            System.out.printf(Locale.ROOT, "  %s: tokens per sentence mean %.1f, max %d, %d sentences ≥ 48 tokens%n", set.getKey(), st.getAverage(), st.getMax(),
                    Arrays.stream(set.getValue()).filter(a -> a.length >= 48).count());
        }
        Pattern linear = Pattern.compile("^blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_output|ffn_up|ffn_down)\\.weight$");
        QuantScheme w4 = QuantScheme.asymmetric(4, Granularity.CHANNEL).withGroupSize(32);
        QuantScheme w8 = QuantScheme.symmetric(8, Granularity.CHANNEL);
        Map<String, Supplier<Model>> variants = new LinkedHashMap<>();
        variants.put("RTN W4 g32 asym, all linears", () -> rtn(f32, w4, linear));
        for (String kind : Bert.LINEAR) {
            variants.put("sensitivity: RTN W4 g32 asym only " + kind, () -> rtn(f32, w4, Pattern.compile("^blk\\.\\d+\\." + kind + "\\.weight$")));
        }
        for (int layer = 0; layer < f32.config().nLayers(); layer++) {
            int l = layer;
            variants.put("sensitivity: RTN W4 g32 asym only blk." + l, () -> rtn(f32, w4, Pattern.compile("^blk\\." + l + "\\.(attn_q|attn_k|attn_v|attn_output|ffn_up|ffn_down)\\.weight$")));
        }
        variants.put("sensitivity: RTN W4 g32 asym only token_embd", () -> rtn(f32, w4, Pattern.compile("^token_embd\\.weight$")));
        Gptq.Options g32 = new Gptq.Options(4, false, 32, true, true, 0.3, 128, true);
        Gptq.Options g64 = new Gptq.Options(4, false, 64, true, true, 0.3, 128, true);
        Map<String, Model> cache = new HashMap<>();
        Supplier<Model> gptqBase = () -> cache.computeIfAbsent("base", k -> Gptq.apply(f32, next128, g32, null, null));
        variants.put("GPTQ g32 next128 (baseline)", gptqBase);
        for (String kind : Bert.LINEAR) {
            variants.put("GPTQ g32 next128, " + kind + " back to RTN W8", () -> gptqBase.get().withTensors(eightBit(f32, kind, w8)));
        }
        variants.put("GPTQ g32 next128 percdamp 0.01", () -> Gptq.apply(f32, next128, new Gptq.Options(4, false, 32, true, true, 0.01, 128, true), null, null));
        variants.put("GPTQ g32 next128 percdamp 0.1", () -> Gptq.apply(f32, next128, new Gptq.Options(4, false, 32, true, true, 0.1, 128, true), null, null));
        variants.put("GPTQ g32 wiki512", () -> Gptq.apply(f32, wiki512, g32, null, null));
        variants.put("GPTQ g32 mixed256", () -> Gptq.apply(f32, mixed256, g32, null, null));
        variants.put("GPTQ g64 mixed256", () -> Gptq.apply(f32, mixed256, g64, null, null));
        variants.put("GPTQ g32 mixed256 clipped grid", () -> EncoderGptq.apply(f32, mixed256, g32, EncoderGptq.Options.clipped(), null));
        variants.put("GPTQ g32 wiki512 clipped grid", () -> EncoderGptq.apply(f32, wiki512, g32, EncoderGptq.Options.clipped(), null));
        variants.put("GPTQ g32 mixed256 clipped grid, ffn_down W8", () -> EncoderGptq.apply(f32, mixed256, g32,
                EncoderGptq.Options.clipped().withEightBit(Pattern.compile("ffn_down")), null));
        variants.put("GPTQ g32 next128 clipped grid", () -> EncoderGptq.apply(f32, next128, g32, EncoderGptq.Options.clipped(), null));
        variants.put("GPTQ g32 next128 clipped grid, ffn_up W8", () -> EncoderGptq.apply(f32, next128, g32,
                EncoderGptq.Options.clipped().withEightBit(Pattern.compile("ffn_up")), null));
        variants.put("GPTQ g32 next128 clipped grid, attn_v W8", () -> EncoderGptq.apply(f32, next128, g32,
                EncoderGptq.Options.clipped().withEightBit(Pattern.compile("attn_v")), null));
        variants.put("GPTQ g32 next128 clipped grid, attn_v + attn_output W8", () -> EncoderGptq.apply(f32, next128, g32,
                EncoderGptq.Options.clipped().withEightBit(Pattern.compile("attn_v|attn_output")), null));
        variants.put("GPTQ g32 next128 clipped grid, attn_v + ffn_up W8", () -> EncoderGptq.apply(f32, next128, g32,
                EncoderGptq.Options.clipped().withEightBit(Pattern.compile("attn_v|ffn_up")), null));
        variants.put("GPTQ g32 mixed256 clipped grid, ffn_up W8", () -> EncoderGptq.apply(f32, mixed256, g32,
                EncoderGptq.Options.clipped().withEightBit(Pattern.compile("ffn_up")), null));
        variants.put("GPTQ g32 mixed256, ffn_down W8", () -> EncoderGptq.apply(f32, mixed256, g32,
                new EncoderGptq.Options(false, 0.2, 100, Pattern.compile("ffn_down")), null));
        variants.put("GPTQ g32 next128 on online Hadamard", () -> Gptq.apply(EncoderTransforms.rotate(f32, 1234), next128, g32, null, null));
        variants.put("GPTQ g32 next128 clipped grid on online Hadamard", () -> EncoderGptq.apply(EncoderTransforms.rotate(f32, 1234), next128, g32, EncoderGptq.Options.clipped(), null));
        variants.put("GPTQ g32 mixed256 on online Hadamard", () -> Gptq.apply(EncoderTransforms.rotate(f32, 1234), mixed256, g32, null, null));
        variants.put("GPTQ g32 mixed256 clipped grid on online Hadamard", () -> EncoderGptq.apply(EncoderTransforms.rotate(f32, 1234), mixed256, g32, EncoderGptq.Options.clipped(), null));

        // float target (GPTAQ's asymmetric calibration), bias correction, AWQ scales before GPTQ
        EncoderGptq.Options clipped = EncoderGptq.Options.clipped();
        for (double ridge : new double[]{0.001, 0.01, 0.1, 1}) {
            variants.put("GPTQ g32 next128 clipped grid, float target ridge " + ridge, () -> EncoderGptq.apply(f32, next128, g32, clipped.withFloatTarget(true, ridge), null));
        }
        variants.put("GPTQ g32 next128 clipped grid, bias correction", () -> EncoderGptq.apply(f32, next128, g32, clipped.withBiasCorrection(true), null));
        variants.put("GPTQ g32 next128 clipped grid, float target ridge 0.1 + bias correction", () -> EncoderGptq.apply(f32, next128, g32,
                clipped.withFloatTarget(true, 0.1).withBiasCorrection(true), null));
        variants.put("GPTQ g32 wiki512 clipped grid, float target ridge 0.1", () -> EncoderGptq.apply(f32, wiki512, g32, clipped.withFloatTarget(true, 0.1), null));
        variants.put("GPTQ g32 wiki512 clipped grid, float target ridge 0.1 + bias correction", () -> EncoderGptq.apply(f32, wiki512, g32,
                clipped.withFloatTarget(true, 0.1).withBiasCorrection(true), null));
        // online Hadamard only where the 384-wide LayerNorm outputs are read (q/k/v, up): 2 × 6 F32 matrices of 384²
        Supplier<Model> rotated02 = () -> cache.computeIfAbsent("rot02", k -> EncoderTransforms.rotate(f32, 1234, new boolean[]{true, false, true, false}));
        variants.put("Hadamard at q/k/v and up inputs, GPTQ g32 next128 clipped grid", () -> EncoderGptq.apply(rotated02.get(), next128, g32, clipped, null));
        variants.put("Hadamard at q/k/v and up inputs, GPTQ g32 next128 clipped grid, float target ridge 0.1 + bias correction", () -> EncoderGptq.apply(rotated02.get(), next128, g32,
                clipped.withFloatTarget(true, 0.1).withBiasCorrection(true), null));
        variants.put("Hadamard at q/k/v and up inputs, GPTQ g32 next128 clipped grid, float target ridge 0.1", () -> EncoderGptq.apply(rotated02.get(), next128, g32,
                clipped.withFloatTarget(true, 0.1), null));
        variants.put("Hadamard at q/k/v and up inputs, GPTQ g32 next128 clipped grid, bias correction", () -> EncoderGptq.apply(rotated02.get(), next128, g32,
                clipped.withBiasCorrection(true), null));
        variants.put("Hadamard at every input, GPTQ g32 next128 clipped grid, float target ridge 0.1", () -> EncoderGptq.apply(EncoderTransforms.rotate(f32, 1234), next128, g32,
                clipped.withFloatTarget(true, 0.1), null));
        Supplier<Model> awqScaled = () -> cache.computeIfAbsent("awq", k -> org.quant4j.method.awq.BertAwq.apply(f32, next128,
                org.quant4j.method.awq.Awq.Options.of(4, 32).scalesOnly(), null));
        variants.put("AWQ scales then GPTQ g32 next128 clipped grid", () -> EncoderGptq.apply(awqScaled.get(), next128, g32, clipped, null));
        variants.put("AWQ scales then GPTQ g32 next128 clipped grid, float target ridge 0.1", () -> EncoderGptq.apply(awqScaled.get(), next128, g32,
                clipped.withFloatTarget(true, 0.1), null));

        variants.put("AWQ W4 g32 asym next128 (online scales)", () -> org.quant4j.method.awq.BertAwq.apply(f32, next128,
                org.quant4j.method.awq.Awq.Options.of(4, 32), null));
        Supplier<Model> rtnW8 = () -> rtn(f32, w8, linear);
        variants.put("RTN W8 per-channel, A8 dynamic", () -> org.quant4j.method.actquant.ActivationQuant.dynamicInt8(rtnW8.get()));
        variants.put("RTN W8 per-channel, A8 static next128", () -> org.quant4j.method.actquant.ActivationQuant.staticInt8(rtnW8.get(), next128));
        variants.put("SmoothQuant (online smoothing, α 0.5) W8A8 static next128", () -> org.quant4j.method.actquant.ActivationQuant.staticInt8(
                rtn(EncoderTransforms.smooth(f32, EncoderTransforms.channelAbsMax(f32, next128), 0.5f), w8, linear), next128));

        // static SmoothQuant: is it the calibration (ranges that unseen sentences exceed) or the method?
        int[][] evalIds = eval.toArray(int[][]::new);
        Supplier<Model> smoothed = () -> cache.computeIfAbsent("smoothed", k -> rtn(EncoderTransforms.smooth(f32, EncoderTransforms.channelAbsMax(f32, next128), 0.5f), w8, linear));
        variants.put("diagnosis: RTN W8 A8 static calibrated on the evaluated sentences", () -> org.quant4j.method.actquant.ActivationQuant.staticInt8(rtnW8.get(), evalIds));
        variants.put("diagnosis: SmoothQuant W8A8 static calibrated on the evaluated sentences", () -> org.quant4j.method.actquant.ActivationQuant.staticInt8(smoothed.get(), evalIds));
        variants.put("diagnosis: SmoothQuant W8A8 static wiki512", () -> org.quant4j.method.actquant.ActivationQuant.staticInt8(smoothed.get(), wiki512));
        variants.put("diagnosis: SmoothQuant smoothing and A8 static scales both from the evaluated sentences", () -> org.quant4j.method.actquant.ActivationQuant.staticInt8(
                rtn(EncoderTransforms.smooth(f32, EncoderTransforms.channelAbsMax(f32, evalIds), 0.5f), w8, linear), evalIds));
        variants.put("diagnosis: SmoothQuant (α 0.5) W8 float activations", smoothed);
        String[][] readers = {{"attn_q", "attn_k", "attn_v"}, {"attn_output"}, {"ffn_up"}, {"ffn_down"}};
        for (int site = 0; site < 4; site++) {
            String[] r = readers[site];
            variants.put("diagnosis: SmoothQuant W8A8 static next128, smoothing only at the " + r[0] + " input", () -> {
                Model everySite = EncoderTransforms.smooth(f32, EncoderTransforms.channelAbsMax(f32, next128), 0.5f);
                Map<String, org.quant4j.tensor.Tensor> keep = new LinkedHashMap<>();
                for (var t : everySite.tensors().values()) {
                    for (String k : r) if (t.name().matches("^blk\\.\\d+\\." + k + "\\.(weight|input_smooth)$")) keep.put(t.name(), t);
                }
                return org.quant4j.method.actquant.ActivationQuant.staticInt8(rtn(f32.withTensors(keep), w8, linear), next128);
            });
        }

        // session 6: more calibration tokens (512 sentences after the evaluated ones), long packed sequences, and a
        // diagnosis of the worst sentence (which block / layer kind of the best 4-bit model moves it most)
        int[][] next512 = ids(base, tok, all.subList(corpus, corpus + 512));
        int[][] packed512 = pack(next512, 128);
        int[][] next2048 = ids(base, tok, all.subList(corpus, corpus + 2048));
        int[][] packed2048 = pack(next2048, 128);
        System.out.printf(Locale.ROOT, "  next512: %d tokens; packed512: %d sequences of ≤ 128; next2048: %d tokens, packed2048: %d sequences%n",
                Arrays.stream(next512).mapToInt(a -> a.length).sum(), packed512.length, Arrays.stream(next2048).mapToInt(a -> a.length).sum(), packed2048.length);
        Map<String, int[][]> calibSets = new LinkedHashMap<>();
        calibSets.put("next512", next512);
        calibSets.put("packed512", packed512);
        calibSets.put("next2048", next2048);
        calibSets.put("packed2048", packed2048);
        for (var cs : calibSets.entrySet()) {
            variants.put("S6 Hadamard q/k/v+up, clipped grid, " + cs.getKey(), () -> EncoderGptq.apply(rotated02.get(), cs.getValue(), g32, clipped, null));
            for (double ridge : new double[]{0.01, 0.1}) {
                variants.put("S6 Hadamard q/k/v+up, clipped grid, float target " + ridge + ", " + cs.getKey(), () -> EncoderGptq.apply(rotated02.get(), cs.getValue(), g32,
                        clipped.withFloatTarget(true, ridge), null));
                variants.put("S6 Hadamard q/k/v+up, clipped grid, float target " + ridge + " + bias correction, " + cs.getKey(), () -> EncoderGptq.apply(rotated02.get(), cs.getValue(), g32,
                        clipped.withFloatTarget(true, ridge).withBiasCorrection(true), null));
            }
            variants.put("S6 clipped grid, float target 0.1, " + cs.getKey(), () -> EncoderGptq.apply(f32, cs.getValue(), g32, clipped.withFloatTarget(true, 0.1), null));
        }
        variants.put("S6 Hadamard q/k/v+up, clipped each end, next128", () -> EncoderGptq.apply(rotated02.get(), next128, g32, clipped.withClipEachEnd(true), null));
        variants.put("S6 Hadamard q/k/v+up, clipped each end, float target 0.1, next128", () -> EncoderGptq.apply(rotated02.get(), next128, g32,
                clipped.withClipEachEnd(true).withFloatTarget(true, 0.1), null));
        variants.put("S6 Hadamard q/k/v+up, clipped grid, symmetric, next128", () -> EncoderGptq.apply(rotated02.get(), next128,
                new Gptq.Options(4, true, 32, true, true, 0.3, 128, true), clipped, null));
        for (double damp : new double[]{0.01, 0.1, 1.0}) {
            variants.put("S6 Hadamard q/k/v+up, clipped grid, percdamp " + damp + ", next128", () -> EncoderGptq.apply(rotated02.get(), next128,
                    new Gptq.Options(4, false, 32, true, true, damp, 128, true), clipped, null));
        }
        Supplier<Model> awqRot = () -> {
            Model rot = rotated02.get();
            return cache.computeIfAbsent("awqrot", k -> org.quant4j.method.awq.BertAwq.apply(rot, next128, org.quant4j.method.awq.Awq.Options.of(4, 32).scalesOnly(), null));
        };
        variants.put("S6 Hadamard q/k/v+up, AWQ scales, clipped grid, float target 0.1, next128", () -> EncoderGptq.apply(awqRot.get(), next128, g32, clipped.withFloatTarget(true, 0.1), null));
        int[][] next1024 = ids(base, tok, all.subList(corpus, corpus + 1024));
        for (int[][] set : new int[][][]{next1024, next2048}) {
            String size = "next" + set.length;
            for (double ridge : new double[]{0.01, 0.03, 0.1}) {
                variants.put("S6 Hadamard q/k/v+up, clipped each end, float target " + ridge + ", " + size, () -> EncoderGptq.apply(rotated02.get(), set, g32,
                        clipped.withClipEachEnd(true).withFloatTarget(true, ridge), null));
            }
        }
        // session 7: scale refit after GPTQ, bias correction on the residual writers only, Hadamard at every input
        Supplier<Model> rotatedAll = () -> cache.computeIfAbsent("rotAll", k -> EncoderTransforms.rotate(f32, 1234));
        EncoderGptq.Options s6 = clipped.withFloatTarget(true, 0.1);
        for (int rounds = 1; rounds <= 3; rounds++) {
            int k = rounds;
            variants.put("S7 Hadamard q/k/v+up, clipped grid, float target 0.1, refit " + k + ", next512", () -> EncoderGptq.apply(rotated02.get(), next512, g32, s6.withRefit(k), REFIT_LOG));
            variants.put("S7 Hadamard q/k/v+up, clip each end, float target 0.1, refit " + k + ", next1024", () -> EncoderGptq.apply(rotated02.get(), next1024, g32,
                    s6.withClipEachEnd(true).withRefit(k), REFIT_LOG));
            variants.put("S7 Hadamard every input, clip each end, float target 0.1, refit " + k + ", next512", () -> EncoderGptq.apply(rotatedAll.get(), next512, g32,
                    s6.withClipEachEnd(true).withRefit(k), REFIT_LOG));
        }
        variants.put("S7 Hadamard q/k/v+up, clipped grid, refit 1, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g32, clipped.withRefit(1), REFIT_LOG));
        variants.put("S7 Hadamard q/k/v+up, clipped grid, float target 0.1, bias correction attn_output+ffn_down, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g32,
                s6.withBiasCorrection(Pattern.compile("attn_output|ffn_down")), null));
        variants.put("S7 Hadamard q/k/v+up, clipped grid, float target 0.1, refit 1, bias correction attn_output+ffn_down, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g32,
                s6.withRefit(1).withBiasCorrection(Pattern.compile("attn_output|ffn_down")), REFIT_LOG));
        variants.put("S7 Hadamard q/k/v+up, clipped grid, float target 0.1, LayerNorm refit, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g32, s6.withRefitNorms(true), null));
        variants.put("S7 Hadamard q/k/v+up, clip each end, float target 0.1, LayerNorm refit, next1024", () -> EncoderGptq.apply(rotated02.get(), next1024, g32,
                s6.withClipEachEnd(true).withRefitNorms(true), null));
        variants.put("S7 Hadamard q/k/v+up, clipped grid, float target 0.1, refit 1, LayerNorm refit, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g32,
                s6.withRefit(1).withRefitNorms(true), REFIT_LOG));
        variants.put("S7 Hadamard q/k/v+up, clip each end, float target 0.1, refit 1, LayerNorm refit, next1024", () -> EncoderGptq.apply(rotated02.get(), next1024, g32,
                s6.withClipEachEnd(true).withRefit(1).withRefitNorms(true), REFIT_LOG));
        // session 8: a 4-bit file type mix, as llama.cpp's Q4_K_M gives attn_v and some ffn_down more bits: the
        // session-7 recipe with a few sensitive tensors at 8 bits (the bits per linear weight are in the table)
        EncoderGptq.Options s7 = s6.withRefit(1);
        for (String[] mix : new String[][]{{"attn_v", "attn_v"}, {"attn_v in blocks 3-5", "blk\\.[345]\\.attn_v"},
                {"attn_v + ffn_up in block 5", "blk\\.5\\.(attn_v|ffn_up)"}, {"attn_v, ffn_up in block 5", "attn_v|blk\\.5\\.ffn_up"}}) {
            variants.put("S8 Hadamard q/k/v+up, clipped grid, float target 0.1, refit 1, next512, " + mix[0] + " W8", () -> EncoderGptq.apply(rotated02.get(), next512, g32,
                    s7.withEightBit(Pattern.compile(mix[1])), REFIT_LOG));
        }
        Gptq.Options g16 = new Gptq.Options(4, false, 16, true, true, 0.3, 128, true);
        variants.put("S7 g16 Hadamard q/k/v+up, clipped grid, float target 0.1, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g16, s6, null));
        variants.put("S7 g16 Hadamard q/k/v+up, clip each end, float target 0.1, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g16, s6.withClipEachEnd(true), null));
        variants.put("S7 g16 Hadamard q/k/v+up, clipped grid, float target 0.1, refit 1, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g16, s6.withRefit(1), REFIT_LOG));
        variants.put("S7 g16 Hadamard q/k/v+up, clipped grid, float target 0.1, refit 1, LayerNorm refit, next512", () -> EncoderGptq.apply(rotated02.get(), next512, g16,
                s6.withRefit(1).withRefitNorms(true), REFIT_LOG));
        variants.put("S7 g16 clipped grid, float target 0.1, next512", () -> EncoderGptq.apply(f32, next512, g16, s6, null));
        variants.put("S7 Hadamard every input, clip each end, float target 0.1, next512", () -> EncoderGptq.apply(rotatedAll.get(), next512, g32, s6.withClipEachEnd(true), null));
        variants.put("S7 Hadamard every input, clipped grid, float target 0.1, next512", () -> EncoderGptq.apply(rotatedAll.get(), next512, g32, s6, null));
        Pattern diagnose = Pattern.compile(args.length > 5 ? args[5] : "^S6 Hadamard q/k/v\\+up, clipped grid, next512$");
        variants.put("S6 diagnosis", () -> {
            String key = variants.keySet().stream().filter(k -> diagnose.matcher(k).find() && !k.equals("S6 diagnosis")).findFirst().orElseThrow();
            Model q = cache.get(key);
            if (q == null) { q = variants.get(key).get(); cache.put(key, q); }
            Model floatTwin = key.contains("Hadamard") ? rotated02.get() : f32;
            System.out.println("    diagnosis of " + key + ": min / mean cosine and the cosine of sentence 35 with only some tensors quantized");
            List<Pattern> parts = new ArrayList<>();
            for (int l = 0; l < f32.config().nLayers(); l++) parts.add(Pattern.compile("^blk\\." + l + "\\."));
            for (String kind : Bert.LINEAR) parts.add(Pattern.compile("^blk\\.\\d+\\." + kind + "\\."));
            for (Pattern part : parts) {
                Map<String, org.quant4j.tensor.Tensor> keep = new LinkedHashMap<>();
                for (var t : q.tensors().values()) if (part.matcher(t.name()).find() && t != floatTwin.tensors().get(t.name())) keep.put(t.name(), t);
                Bert b = new Bert(floatTwin.withTensors(keep));
                double min = 1, sum = 0, s35 = 0;
                int worst = 0;
                for (int i = 0; i < eval.size(); i++) {
                    double c = Bert.cosine(reference[i], b.embed(eval.get(i)));
                    sum += c;
                    if (c < min) { min = c; worst = i; }
                    if (i == 35) s35 = c;
                }
                System.out.printf(Locale.ROOT, "    only %-28s quantized (%2d tensors): min %.6f (sentence %d), mean %.6f, sentence 35 %.6f%n", part.pattern(), keep.size(), min, worst, sum / eval.size(), s35);
            }
            return q;
        });

        System.out.println("| variant | size (MiB, tensors) | bits per linear weight | mean cos | min cos | top-10 agreement |");
        System.out.println("|---|---:|---:|---:|---:|---:|");
        for (var v : variants.entrySet()) {
            if (!only.matcher(v.getKey()).find()) continue;
            long t0 = System.nanoTime();
            Model m = cache.get(v.getKey());
            try {
                if (m == null) { m = v.getValue().get(); if (v.getKey().startsWith("S6 ")) cache.put(v.getKey(), m); }
            } catch (RuntimeException e) {
                System.out.println("| " + v.getKey() + " | failed: " + e + " |");
                continue;
            }
            Bert b = new Bert(m);
            float[][] e = eval.stream().map(b::embed).toArray(float[][]::new);
            EmbeddingAgreement.Result r = EmbeddingAgreement.compare(reference, e, queries);
            int worst = 0;
            for (int i = 0; i < e.length; i++) if (Bert.cosine(reference[i], e[i]) < Bert.cosine(reference[worst], e[worst])) worst = i;
            System.out.printf(Locale.ROOT, "    worst: sentence %d (%d tokens): %s%n", offset + worst, eval.get(worst).length, all.get(offset + worst));
            long linearBytes = 0, linearWeights = 0;                     // the six linear kinds' weights (not embeddings, norms, rotations)
            for (var t : m.tensors().values()) {
                if (linear.matcher(t.name()).matches()) { linearBytes += t.data().byteSize(); linearWeights += t.size(); }
            }
            System.out.printf(Locale.ROOT, "| %s | %.1f | %.2f | %.6f | %.6f | %.2f %% |   (%.0f s)%n", v.getKey(), m.byteSize() / 1048576.0,
                    8.0 * linearBytes / linearWeights, r.meanCosine(), r.minCosine(), 100 * r.top10(), (System.nanoTime() - t0) / 1e9);
        }
    }

    /** GPTQ's per-layer lines that report a scale refit. */
    static final java.util.function.Consumer<String> REFIT_LOG = s -> { if (s.contains("refit")) System.out.println("    " + s); };

    /** Sentences ([CLS] … [SEP] each) packed into sequences of at most {@code len} tokens: [CLS] s1 s2 … [SEP]. */
    static int[][] pack(int[][] sentences, int len) {
        List<int[]> out = new ArrayList<>();
        int cls = sentences[0][0], sep = sentences[0][sentences[0].length - 1];
        int[] cur = new int[len];
        int n = 0;
        for (int[] s : sentences) {
            for (int i = 1; i < s.length - 1; i++) {
                if (n == 0) cur[n++] = cls;
                cur[n++] = s[i];
                if (n == len - 1) { cur[n++] = sep; out.add(Arrays.copyOf(cur, n)); n = 0; }
            }
        }
        if (n > 1) { cur[n++] = sep; out.add(Arrays.copyOf(cur, n)); }
        return out.toArray(int[][]::new);
    }

    static int[][] ids(Bert bert, Tokenizer tok, List<String> sentences) {
        return sentences.stream().map(s -> bert.truncate(tok.encode(s, true, false))).toArray(int[][]::new);
    }

    static Model rtn(Model m, QuantScheme s, Pattern include) {
        return Rtn.apply(m, new Rtn.Options(s, Calibrator.MIN_MAX, include, Pattern.compile("^$")));
    }

    /** The float weights of one kind of layer, to be re-quantized at 8 bits. */
    static Map<String, org.quant4j.tensor.Tensor> eightBit(Model f32, String kind, QuantScheme w8) {
        Model q = rtn(f32, w8, Pattern.compile("^blk\\.\\d+\\." + kind + "\\.weight$"));
        Map<String, org.quant4j.tensor.Tensor> out = new LinkedHashMap<>();
        for (var t : q.tensors().values()) if (t.name().matches("^blk\\.\\d+\\." + kind + "\\.weight$")) out.put(t.name(), t);
        return out;
    }
}
