package org.quant4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.quant4j.eval.Perplexity;
import org.quant4j.io.ModelLoader;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import org.quant4j.util.Q4jException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Perplexity of a model on a text file, computed as llama.cpp's llama-perplexity does;",
                "with --kl-base, KL-divergence, top-1 agreement and Δp against a base model's saved logits."})
final class EvalCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", arity = "0..1", description = "model file (default: the bundled stories260K)") Path modelPath;
    @Option(names = {"-f", "--file"}, description = "text file (default: the bundled TinyStories excerpt)") Path textFile;
    @Option(names = {"-c", "--ctx"}, defaultValue = "128", description = "tokens per chunk (default ${DEFAULT-VALUE})") int ctx;
    @Option(names = "--chunks", defaultValue = "-1", description = "at most this many chunks (default: all)") int chunks;
    @Option(names = "--save-logits", paramLabel = "FILE", description = "write base logits for later --kl-base runs (llama.cpp's --kl-divergence-base format)") Path saveLogits;
    @Option(names = "--kl-base", paramLabel = "FILE", description = "compare with a base model's saved logits") Path klBase;
    @Option(names = "--lora", paramLabel = "DIR", description = "apply a LoRA adapter (PEFT directory: adapter_config.json + adapter_model.safetensors) at run time") Path lora;
    @Option(names = "--tokenizer", description = "tokenizer.bin for llama2.c checkpoints") Path tokenizerPath;
    @Option(names = "--kv-bits", description = "quantize the KV cache per token and head, asymmetric, to this many bits (simulated), overriding the model's setting; 0: float") Integer kvBits;
    @Option(names = "--json", description = "machine-readable output") boolean json;
    @Option(names = "--no-progress", description = "no progress bar") boolean noProgress;
    @Option(names = "--embeddings", paramLabel = "BASE", description = "encoders: compare MODEL's sentence embeddings with BASE's on the sentences of -f (cosine, top-10 retrieval agreement, speed)") Path embeddingsBase;
    @Option(names = "--sentences", defaultValue = "1000", description = "with --embeddings: corpus sentences (default ${DEFAULT-VALUE})") int sentences;
    @Option(names = "--queries", defaultValue = "100", description = "with --embeddings: query sentences (default ${DEFAULT-VALUE})") int queries;

    @Override public Integer call() throws IOException {
        if (embeddingsBase != null) {
            if (modelPath == null) throw new Q4jException("--embeddings needs MODEL (the encoder to compare) and BASE");
            return EmbedCommand.evalEmbeddings(modelPath, embeddingsBase, textFile != null ? textFile : Defaults.evalText(), sentences, queries, json);
        }
        try (Model loaded = org.quant4j.io.peft.PeftAdapter.attach(ModelLoader.load(modelPath != null ? modelPath : Defaults.model(), tokenizerPath), lora)) {
            Model model = kvBits == null ? loaded : loaded.withMetadata(Map.of(Llama.KV_BITS_KEY, org.quant4j.io.gguf.GgufValue.u32(kvBits)));
            Tokenizer tok = Tokenizers.fromMetadata(model.metadata(), model.source());
            Llama llama = new Llama(model);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("model", model.source());
            if (klBase != null) {
                Perplexity.KlResult r = withProgress("KL", -1, cb -> Perplexity.klDivergence(llama, klBase, tok.bosId(), true, chunks, cb));
                out.put("kl", r);
                if (!json) {
                    System.out.printf("tokens scored        %d%n", r.tokens());
                    System.out.printf("PPL(model)           %.4f ± %.4f%n", r.ppl(), r.pplError());
                    System.out.printf("PPL(base)            %.4f%n", r.basePpl());
                    System.out.printf("KL-divergence mean   %.6f ± %.6f%n", r.klMean(), r.klError());
                    System.out.printf("KL median / 90%% / 99%% / max   %.6f / %.6f / %.6f / %.6f%n", r.klPercentiles()[0], r.klPercentiles()[1], r.klPercentiles()[2], r.klPercentiles()[3]);
                    System.out.printf("same top token       %.2f %%%n", 100 * r.sameTop());
                    System.out.printf("mean Δp              %.3f %%  (RMS %.3f %%)%n", 100 * r.meanDeltaP(), 100 * r.rmsDeltaP());
                    System.out.printf("time                 %.2f s%n", r.seconds());
                }
            } else {
                Path text = textFile != null ? textFile : Defaults.evalText();
                String content = read(text);
                int[] tokens = tok.encode(content, true, false);
                if (ctx > model.config().contextLength()) {
                    System.err.printf("note: --ctx %d exceeds the model's training context of %d tokens%n", ctx, model.config().contextLength());
                }
                int n = Perplexity.chunks(tokens.length, ctx, chunks);
                Perplexity.Result r = withProgress("PPL", n, cb -> Perplexity.perplexity(llama, tokens, ctx, tok.bosId(), true, chunks, saveLogits, cb));
                out.put("text", text.toString());
                out.put("perplexity", r);
                if (!json) {
                    System.out.printf("text        %s (%d tokens)%n", text, tokens.length);
                    System.out.printf("chunks      %d × %d tokens, %d tokens scored%n", r.chunks(), r.nCtx(), r.tokens());
                    System.out.printf("perplexity  %.4f ± %.4f%n", r.ppl(), r.pplError());
                    System.out.printf("time        %.2f s (%.1f tokens/s)%n", r.seconds(), r.chunks() * (double) r.nCtx() / r.seconds());
                    if (saveLogits != null) System.out.println("base logits " + saveLogits);
                }
            }
            if (json) System.out.println(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
        }
        return 0;
    }

    static String read(Path text) {
        try {
            return Files.readString(text, StandardCharsets.UTF_8);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new Q4jException(text + ": no such file");
        } catch (java.nio.charset.MalformedInputException e) {
            throw new Q4jException(text + ": not valid UTF-8 text");
        } catch (IOException e) {
            throw new Q4jException(text + ": cannot read: " + e.getMessage());
        }
    }

    interface WithCallback<T> { T run(java.util.function.IntConsumer onChunk); }

    <T> T withProgress(String task, int total, WithCallback<T> body) {
        if (noProgress || json || System.console() == null) return body.run(null);
        try (ProgressBar pb = new ProgressBarBuilder().setTaskName(task).setInitialMax(Math.max(total, 0))
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).setConsumer(new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err)).build()) {
            return body.run(done -> pb.stepTo(done));
        }
    }
}
