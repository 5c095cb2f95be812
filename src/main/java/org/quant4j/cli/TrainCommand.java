package org.quant4j.cli;

import org.quant4j.format.GgmlType;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.ModelSaver;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.method.actquant.ActivationQuant;
import org.quant4j.method.bitnet.AbsmeanTernary;
import org.quant4j.method.kquant.GgufQuantize;
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
import org.quant4j.train.Lora;
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
    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.gguf", description = "trained model (F32 GGUF) and OUT.gguf.adamw (optimizer state); with --qlora the adapter directory (PEFT), or with --merge the merged model") Path output;
    @Option(names = "--qlora", description = "QLoRA: train low-rank adapters on the --init model's linear layers, kept frozen in their quantized storage type") boolean qlora;
    @Option(names = "--base-type", paramLabel = "TYPE", description = "with --qlora: quantize the base first: an RTN scheme (w4g32, w4g64asym, ...) or a ggml type (Q4_0, IQ4_NL, Q4_K, ...); default: as stored") String baseType;
    @Option(names = "--rank", defaultValue = "8", description = "LoRA rank r (default ${DEFAULT-VALUE})") int rank;
    @Option(names = "--alpha", defaultValue = "16", description = "LoRA alpha; the update is (alpha/r)·B·A (default ${DEFAULT-VALUE})") float alpha;
    @Option(names = "--lora-targets", defaultValue = "q,k,v,o,gate,up,down", description = "linear layers to adapt (default ${DEFAULT-VALUE})") String loraTargets;
    @Option(names = "--merge", description = "with --qlora: write the base with the adapter merged in (F32 linear weights) to -o instead of the adapter") boolean merge;
    @Option(names = "--save-base", paramLabel = "PATH", description = "with --qlora: also write the quantized base the adapter was trained on") Path saveBase;
    @Option(names = "--log", paramLabel = "FILE.tsv", description = "every step's loss, learning rate and gradient norm (tools/torch_train_compare.py reads it)") Path stepLog;
    @Option(names = "--dump-batches", paramLabel = "FILE", description = "every step's (B, T) inputs then targets as little-endian int32, in training order") Path dumpBatches;
    @Option(names = "--save-init", paramLabel = "FILE.safetensors", description = "the initial weights (F32, GGUF tensor names) before the first step") Path saveInit;

    @Override public Integer call() throws IOException {
        if (qlora) return callQlora();
        if (merge || baseType != null || saveBase != null) throw new Q4jException("--merge, --base-type and --save-base need --qlora");
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
        if (saveInit != null) {
            org.quant4j.io.safetensors.SafetensorsWriter.writeTensors(saveInit, Map.of("format", "pt", "quant4j.train", trainingSetup(params.config, o)),
                    params.toModel(Map.of(), "init").tensors().values());
            System.out.println("wrote  " + saveInit + " (initial weights)");
        }
        double initialVal = runSteps(trainer, validation);
        Map<String, GgufValue> meta = new LinkedHashMap<>(tokenizerMeta);
        meta.put("general.name", GgufValue.string("quant4j train " + (fq != null ? fq.describe() : "FP")));
        if (fq != null) meta.put(AbsmeanTernary.QAT_KEY, GgufValue.string(fq == FakeQuant.BitNet.TERNARY ? "bitnet1.58" : fq == FakeQuant.BitNet.BINARY ? "bitnet1" : qat.toLowerCase(java.util.Locale.ROOT)));
        if (output.getParent() != null) Files.createDirectories(output.getParent());
        trainer.save(output, meta);
        System.out.println("wrote  " + output + " and " + Trainer.optimizerFile(output));
        plot(trainer, initialVal, fq != null ? fq.describe() : "training");
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

    /** The model shape and training setup as JSON, for a reimplementation to rebuild the same run (tools/torch_train_compare.py). */
    static String trainingSetup(LlamaConfig c, Trainer.Options o) {
        var m = new com.fasterxml.jackson.databind.ObjectMapper();
        var n = m.createObjectNode();
        n.put("dim", c.dim()).put("hidden_dim", c.hiddenDim()).put("n_layers", c.nLayers()).put("n_heads", c.nHeads())
                .put("n_kv_heads", c.nKvHeads()).put("head_dim", c.headDim()).put("vocab_size", c.vocabSize()).put("norm_eps", c.normEps())
                .put("rope_theta", c.ropeTheta()).put("rope_type", c.ropeType().name()).put("rope_scaling", c.ropeScaling() != null)
                .put("tied_embeddings", c.tiedEmbeddings()).put("qkv_bias", c.qkvBias());
        n.put("steps", o.steps()).put("batch", o.batch()).put("seq", o.seq()).put("lr", o.lr()).put("min_lr", o.minLr()).put("warmup", o.warmup())
                .put("grad_clip", o.gradClip()).put("beta1", o.adam().beta1()).put("beta2", o.adam().beta2()).put("eps", o.adam().eps())
                .put("weight_decay", o.adam().weightDecay()).put("decayed", "tensors of rank >= 2 (embedding, head, linear weights); not the norms");
        return n.toString();
    }

    /** The loss and validation-perplexity curves (--plot, default OUT.png). */
    private void plot(Trainer trainer, double initialVal, String title) throws IOException {
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
            Files.write(png, Plots.png(TrainingPlots.curves(title, st, loss, vp)));
            System.out.println("wrote  " + png);
        }
    }

    /** Trains to --steps, printing progress, logging every step (--log) and dumping batches; returns the initial validation loss. */
    private double runSteps(Trainer trainer, TokenData validation) throws IOException {
        double initialVal = validation != null && trainer.step() == 0 ? trainer.validationLoss() : Double.NaN;
        if (!Double.isNaN(initialVal)) System.out.printf("step %5d  validation perplexity %.3f%n", 0, Math.exp(initialVal));
        long t0 = System.nanoTime();
        try (var log = stepLog == null ? null : Files.newBufferedWriter(stepLog);
             var batches = dumpBatches == null ? null : new java.io.DataOutputStream(new java.io.BufferedOutputStream(Files.newOutputStream(dumpBatches)))) {
            if (log != null) log.write("step\tloss\tlr\tgrad_norm\n");
            while (trainer.step() < steps) {
                if (batches != null) {
                    int[][] io = trainer.nextBatch();
                    for (int[] a : io) for (int v : a) batches.writeInt(Integer.reverseBytes(v));
                }
                Trainer.Point p = trainer.trainStep();
                if (log != null) log.write(p.step() + "\t" + p.loss() + "\t" + p.lr() + "\t" + p.gradNorm() + "\n");
                if (p.step() % 10 == 0 || p.step() == steps || !Double.isNaN(p.valLoss())) {
                    System.out.printf("step %5d  loss %.4f  lr %.2e  |g| %.3f%s  (%.1f s)%n", p.step(), p.loss(), p.lr(), p.gradNorm(),
                            Double.isNaN(p.valLoss()) ? "" : String.format("  validation perplexity %.3f", Math.exp(p.valLoss())), (System.nanoTime() - t0) / 1e9);
                }
            }
        }
        return initialVal;
    }

    /**
     * QLoRA: the --init model (quantized with --base-type, or as stored) stays frozen; rank-r adapters on the chosen
     * linear layers train; the adapter is written in PEFT's layout (or merged into the base with --merge).
     */
    private Integer callQlora() throws IOException {
        if (init == null || config != null || resume != null) throw new Q4jException("--qlora fine-tunes a model: give --init MODEL (not --config or --resume)");
        if (qat != null || act8 || exportQuantized != null) throw new Q4jException("--qlora does not combine with --qat, --act8 or --export-quantized");
        try (Model source = ModelLoader.load(init, tokenizerPath)) {
            Map<String, GgufValue> tokenizerMeta = tokenizerKeys(source.metadata());
            Model base = baseType != null ? quantizeBase(source, baseType) : source;
            LlamaConfig c = base.config();
            Params params = Params.fromModel(base, false);
            Lora lora = Lora.init(c, rank, alpha, Lora.Target.parseList(loraTargets), seed);
            Tokenizer tok = Tokenizers.fromMetadata(tokenizerMeta, "tokenizer");
            TokenData train = TokenData.fromText(data, tok);
            TokenData validation = val != null ? TokenData.fromText(val, tok) : null;
            AdamW.Hyper adam = new AdamW.Hyper(0.9f, 0.95f, 1e-8f, weightDecay);
            Trainer.Options o = new Trainer.Options(steps, batch, seq, lr, minLr != null ? minLr : lr / 10, warmup, clip, adam, seed, evalEvery, valWindows);
            Trainer trainer = Trainer.qlora(params, base, lora, train, validation, o);
            if (distill || teacherPath != null) {
                try (Model m = ModelLoader.load(teacherPath != null ? teacherPath : init, null)) {
                    trainer.distillFrom(Params.fromModel(m));
                }
            }
            String types = base.tensor(Model.attnQ(0)).type().name();
            System.out.printf("model  %d layers, dim %d, vocab %d; frozen base: linear weights %s (%.3f MiB in all)%n", c.nLayers(), c.dim(), c.vocabSize(), types, base.byteSize() / 1048576.0);
            System.out.printf("QLoRA  rank %d, alpha %s, targets %s: %,d trainable parameters%n", rank, alpha, lora.targets, lora.count());
            System.out.printf("data   %s: %,d tokens%s%n", data, train.tokens().length, validation != null ? "; validation " + val + ": " + validation.tokens().length + " tokens" : "");
            if (saveBase != null) {  // first: a base the format cannot hold fails before training, not after
                ModelSaver.save(base, saveBase, ModelSaver.Format.fromName(saveBase), null, 0, init);
                System.out.println("wrote  " + saveBase + " (the quantized base)");
            }
            double initialVal = runSteps(trainer, validation);
            if (output.getParent() != null) Files.createDirectories(output.getParent());
            if (merge) {
                Model merged = lora.merge(base).withMetadata(Map.of("general.name", GgufValue.string("quant4j QLoRA merged")));
                ModelSaver.save(merged, output, ModelSaver.Format.fromName(output), null, 0, init);
                System.out.println("wrote  " + output + " (base + adapter merged, F32 linear weights)");
            } else {
                lora.toPeft().write(output, c, init.toString());
                System.out.println("wrote  " + output + " (PEFT adapter: adapter_config.json, adapter_model.safetensors)");
            }
            plot(trainer, initialVal, "QLoRA r=" + rank);
        }
        return 0;
    }

    /** The QLoRA base: linear weights of the blocks quantized with an RTN scheme (w4g32) or a ggml type (Q4_0). */
    static Model quantizeBase(Model m, String type) {
        GgmlType g = null;
        try { g = GgmlType.valueOf(type.toUpperCase(java.util.Locale.ROOT)); } catch (IllegalArgumentException ignored) { }
        java.util.regex.Pattern linear = java.util.regex.Pattern.compile("^blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\\.weight$");
        if (g != null) {
            Map<String, org.quant4j.tensor.Tensor> q = new LinkedHashMap<>();
            for (var t : m.tensors().values()) {
                if (!linear.matcher(t.name()).matches()) continue;
                if (t.cols() % g.blockSize() != 0) throw new Q4jException("tensor " + t.name() + ": rows of " + t.cols() + " do not divide into " + g + " blocks of " + g.blockSize() + "; use an RTN scheme (--base-type w4g32)");
                q.put(t.name(), GgufQuantize.quantize(t, g, null));
            }
            return m.withTensors(q);
        }
        if (!(FakeQuant.parse(type) instanceof FakeQuant.Linear l)) throw new Q4jException("--base-type " + type + ": not a linear quantization scheme");
        return Rtn.apply(m, new Rtn.Options(l.scheme(), org.quant4j.quant.Calibrator.MIN_MAX, linear, null));
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
