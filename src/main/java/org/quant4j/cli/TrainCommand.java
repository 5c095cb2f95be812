package org.quant4j.cli;

import org.quant4j.io.ModelLoader;
import org.quant4j.io.ModelSaver;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.bitnet.AbsmeanTernary;
import org.quant4j.method.rtn.Rtn;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.QuantScheme;
import org.quant4j.report.Plots;
import org.quant4j.report.TrainingPlots;
import org.quant4j.tokenizer.Llama2cTokenizer;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import org.quant4j.train.AdamW;
import org.quant4j.train.FakeQuant;
import org.quant4j.train.Params;
import org.quant4j.train.TokenData;
import org.quant4j.train.Trainer;
import org.quant4j.util.Q4jException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Train a Llama model on a text file: from scratch (--config) or fine-tuning (--init);",
                "optionally quantization-aware (--qat w2g32, w3g32asym, w8a8, bitnet1.58, bitnet1).",
                "Example: quant4j train --init models/stories260K/stories260K.bin --data data/text/tinystories_sample.txt --qat w2g32asym --steps 300 -o out/qat.gguf"})
final class TrainCommand implements Callable<Integer> {
    @Option(names = "--config", description = "model shape for training from scratch: a known name (stories260k, ...) or a config.json") String config;
    @Option(names = "--init", paramLabel = "MODEL", description = "start from this model's weights (fine-tuning)") Path init;
    @Option(names = "--resume", paramLabel = "CKPT.gguf", description = "continue a run saved with -o (reads CKPT.gguf.adamw too)") Path resume;
    @Option(names = "--tokenizer", description = "tokenizer for --config: a llama2.c tokenizer.bin or any model file; for a llama2.c --init, its tokenizer.bin") Path tokenizerPath;
    @Option(names = "--data", required = true, description = "training text (UTF-8)") Path data;
    @Option(names = "--val", description = "held-out text for validation perplexity") Path val;
    @Option(names = "--steps", defaultValue = "200") int steps;
    @Option(names = "--batch", defaultValue = "8") int batch;
    @Option(names = "--seq", defaultValue = "64") int seq;
    @Option(names = "--lr", defaultValue = "1e-3", description = "peak learning rate (default ${DEFAULT-VALUE})") float lr;
    @Option(names = "--min-lr", description = "cosine floor (default lr / 10)") Float minLr;
    @Option(names = "--warmup", defaultValue = "20") int warmup;
    @Option(names = "--clip", defaultValue = "1.0", description = "global gradient-norm clip (0: none)") float clip;
    @Option(names = "--weight-decay", defaultValue = "0.1") float weightDecay;
    @Option(names = "--seed", defaultValue = "1") long seed;
    @Option(names = "--eval-every", defaultValue = "50") int evalEvery;
    @Option(names = "--val-windows", defaultValue = "64") int valWindows;
    @Option(names = "--qat", description = "fake-quantize linear weights during training: w<bits>[g<group>][a8][asym], bitnet1.58, bitnet1") String qat;
    @Option(names = "--distill", description = "train against the --init model's next-token distributions (knowledge distillation; frozen full-precision teacher)") boolean distill;
    @Option(names = "--teacher", paramLabel = "MODEL", description = "distil from this model instead (same vocabulary), e.g. when training from scratch") Path teacherPath;
    @Option(names = "--act8", description = "also fake-quantize every linear layer's input to 8 bits per token (implied by a8 and bitnet)") boolean act8;
    @Option(names = "--export-quantized", paramLabel = "PATH", description = "also write the quantized model: RTN with the --qat scheme (.gguf or a safetensors directory); for bitnet, the ternary/binary weights run as W8A8") Path exportQuantized;
    @Option(names = "--plot", paramLabel = "PNG", description = "loss and validation-perplexity curves (default: OUT.png)") Path plot;
    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.gguf", description = "trained model (F32 GGUF) and OUT.gguf.adamw (optimizer state)") Path output;

    @Override public Integer call() throws IOException {
        if ((config == null) == (init == null) && resume == null) throw new Q4jException("give --config (from scratch) or --init MODEL (fine-tune), or --resume");
        Map<String, GgufValue> tokenizerMeta;
        Params params;
        if (resume != null) {
            try (Model m = ModelLoader.load(resume)) {
                params = Params.fromModel(m);
                tokenizerMeta = tokenizerKeys(m.metadata());
            }
        } else if (init != null) {
            try (Model m = ModelLoader.load(init, tokenizerPath)) {
                params = Params.fromModel(m);
                tokenizerMeta = tokenizerKeys(m.metadata());
            }
        } else {
            LlamaConfig c = Configs.resolve(config);
            if (tokenizerPath == null) throw new Q4jException("training from --config needs --tokenizer (a tokenizer.bin or a model file)");
            if (tokenizerPath.toString().endsWith(".bin") && !org.quant4j.io.llama2c.Llama2cReader.looksLikeLlama2c(tokenizerPath)) {
                tokenizerMeta = Llama2cTokenizer.toMetadata(tokenizerPath, c.vocabSize());
            } else {
                try (Model m = ModelLoader.load(tokenizerPath)) { tokenizerMeta = tokenizerKeys(m.metadata()); }
            }
            params = Params.random(c.withContextLength(Math.max(c.contextLength(), seq)), seed);
        }
        Tokenizer tok = Tokenizers.fromMetadata(tokenizerMeta, "tokenizer");
        TokenData train = TokenData.fromText(data, tok);
        TokenData validation = val != null ? TokenData.fromText(val, tok) : null;
        FakeQuant fq = qat != null ? FakeQuant.parse(qat) : null;
        boolean actQuant = act8 || (qat != null && (fq instanceof FakeQuant.BitNet || qat.toLowerCase().contains("a8")));
        AdamW.Hyper adam = new AdamW.Hyper(0.9f, 0.95f, 1e-8f, weightDecay);
        Trainer.Options o = new Trainer.Options(steps, batch, seq, lr, minLr != null ? minLr : lr / 10, warmup, clip, adam, seed, evalEvery, valWindows);
        Trainer trainer = new Trainer(params, train, validation, o, fq, actQuant);
        if (resume != null) trainer.loadOptimizer(resume);
        if (distill || teacherPath != null) {
            Path t = teacherPath != null ? teacherPath : init;
            if (t == null) throw new Q4jException("--distill needs --init (the teacher) or --teacher MODEL");
            try (Model m = ModelLoader.load(t, null)) {
                if (m.config().vocabSize() != params.config.vocabSize()) throw new Q4jException(t + ": the teacher's vocabulary (" + m.config().vocabSize() + ") differs from the model's (" + params.config.vocabSize() + ")");
                trainer.distillFrom(Params.fromModel(m));
            }
        }
        LlamaConfig c = params.config;
        System.out.printf("model  %d layers, dim %d, %d heads (%d kv), vocab %d: %,d parameters%s%n", c.nLayers(), c.dim(), c.nHeads(), c.nKvHeads(),
                c.vocabSize(), params.count(), fq != null ? "; " + fq.describe() + (actQuant ? ", 8-bit activations" : "") : "");
        System.out.printf("data   %s: %,d tokens%s%n", data, train.tokens().length, validation != null ? "; validation " + val + ": " + validation.tokens().length + " tokens" : "");
        double initialVal = validation != null && trainer.step() == 0 ? trainer.validationLoss() : Double.NaN;
        if (!Double.isNaN(initialVal)) System.out.printf("step %5d  validation perplexity %.3f%n", 0, Math.exp(initialVal));
        long t0 = System.nanoTime();
        while (trainer.step() < steps) {
            Trainer.Point p = trainer.trainStep();
            if (p.step() % 10 == 0 || p.step() == steps || !Double.isNaN(p.valLoss())) {
                System.out.printf("step %5d  loss %.4f  lr %.2e  |g| %.3f%s  (%.1f s)%n", p.step(), p.loss(), p.lr(), p.gradNorm(),
                        Double.isNaN(p.valLoss()) ? "" : String.format("  validation perplexity %.3f", Math.exp(p.valLoss())), (System.nanoTime() - t0) / 1e9);
            }
        }
        Map<String, GgufValue> meta = new LinkedHashMap<>(tokenizerMeta);
        meta.put("general.name", GgufValue.string("quant4j train " + (fq != null ? fq.describe() : "FP")));
        if (fq != null) meta.put(AbsmeanTernary.QAT_KEY, GgufValue.string(fq == FakeQuant.BitNet.TERNARY ? "bitnet1.58" : fq == FakeQuant.BitNet.BINARY ? "bitnet1" : qat.toLowerCase(java.util.Locale.ROOT)));
        if (output.getParent() != null) Files.createDirectories(output.getParent());
        trainer.save(output, meta);
        System.out.println("wrote  " + output + " and " + Trainer.optimizerFile(output));
        if (!trainer.history.isEmpty()) {
            int n = trainer.history.size() + 1;
            int[] st = new int[n];
            float[] loss = new float[n];
            double[] vp = new double[n];
            st[0] = trainer.history.get(0).step() - 1; loss[0] = Float.NaN; vp[0] = Math.exp(initialVal);
            for (int i = 1; i < n; i++) {
                Trainer.Point p = trainer.history.get(i - 1);
                st[i] = p.step(); loss[i] = p.loss(); vp[i] = Math.exp(p.valLoss());
            }
            Path png = plot != null ? plot : output.resolveSibling(output.getFileName() + ".png");
            Files.write(png, Plots.png(TrainingPlots.curves(fq != null ? fq.describe() : "training", st, loss, vp)));
            System.out.println("wrote  " + png);
        }
        if (exportQuantized != null) {
            if (fq == null) throw new Q4jException("--export-quantized needs --qat");
            Model trained = params.toModel(meta, output.toString());
            Model q = switch (fq) {
                case FakeQuant.Linear l -> {
                    Model rtn = Rtn.apply(trained, Rtn.Options.of(l.scheme()));
                    yield actQuant ? ActivationQuant.dynamicInt8(rtn) : rtn;
                }
                case FakeQuant.BitNet b -> bitnetAsW8A8(params, b, meta, output.toString());
            };
            ModelSaver.save(q, exportQuantized, ModelSaver.Format.fromName(exportQuantized), null, 0);
            System.out.printf("wrote  %s (%.3f MiB)%n", exportQuantized, q.byteSize() / 1048576.0);
        }
        return 0;
    }

    /**
     * A BitNet model the runtime can run as trained: each linear weight replaced by its fake-quantized ŵ ∈ {−γ, 0, γ}
     * (or {−β, β}), stored as 8-bit per-channel codes (±127 and 0, scale γ/127 in f16) with int8 dynamic per-token
     * activations, so the runtime's W8A8 kernel computes what training computed up to the f16 rounding of γ/127.
     */
    static Model bitnetAsW8A8(Params params, FakeQuant.BitNet b, Map<String, GgufValue> meta, String source) {
        Params fake = params.copy();
        for (Params.Param p : fake.all()) if (p.linear()) System.arraycopy(b.apply(p.value(), p.rows(), p.cols()), 0, p.value(), 0, p.value().length);
        Model m = fake.toModel(meta, source);
        return ActivationQuant.dynamicInt8(Rtn.apply(m, Rtn.Options.of(QuantScheme.symmetric(8, Granularity.CHANNEL))));
    }

    private static Map<String, GgufValue> tokenizerKeys(Map<String, GgufValue> metadata) {
        Map<String, GgufValue> out = new LinkedHashMap<>();
        for (var e : metadata.entrySet()) if (e.getKey().startsWith("tokenizer.")) out.put(e.getKey(), e.getValue());
        if (out.isEmpty()) throw new Q4jException("the model has no tokenizer metadata; pass --tokenizer");
        return out;
    }
}
