package org.quant4j.cli;

import org.quant4j.eval.Sampler;
import org.quant4j.io.ModelLoader;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true, description = "Generate text from a prompt.")
final class GenerateCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", arity = "0..1", description = "model file (default: the bundled stories260K)") Path modelPath;
    @Option(names = {"-p", "--prompt"}, defaultValue = "Once upon a time") String prompt;
    @Option(names = {"-n", "--tokens"}, defaultValue = "256", description = "tokens to generate (default ${DEFAULT-VALUE})") int maxTokens;
    @Option(names = "--temp", defaultValue = "0.8", description = "temperature; 0 is greedy (default ${DEFAULT-VALUE})") float temperature;
    @Option(names = "--top-k", defaultValue = "40") int topK;
    @Option(names = "--top-p", defaultValue = "0.95") float topP;
    @Option(names = "--min-p", defaultValue = "0.05") float minP;
    @Option(names = "--repeat-penalty", defaultValue = "1.0") float repeatPenalty;
    @Option(names = "--repeat-last-n", defaultValue = "64") int repeatLastN;
    @Option(names = "--seed", defaultValue = "42") long seed;
    @Option(names = "--lora", paramLabel = "DIR", description = "apply a LoRA adapter (PEFT directory: adapter_config.json + adapter_model.safetensors) at run time") Path lora;
    @Option(names = "--tokenizer", description = "tokenizer.bin for llama2.c checkpoints (default: one beside the model)") Path tokenizerPath;
    @Option(names = "--ctx", description = "context length (default: the model's)") Integer ctx;
    @Option(names = "--no-stats", description = "do not print timing to stderr") boolean noStats;

    @Override public Integer call() {
        try (Model model = org.quant4j.io.peft.PeftAdapter.attach(ModelLoader.load(modelPath != null ? modelPath : Defaults.model(), tokenizerPath), lora)) {
            Tokenizer tok = Tokenizers.fromMetadata(model.metadata(), model.source());
            Llama llama = new Llama(model);
            int context = ctx != null ? ctx : Math.min(model.config().contextLength(), 4096);
            Llama.State state = llama.newState(context, 128);
            Sampler sampler = new Sampler(new Sampler.Options(temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed));
            int[] promptIds = tok.encode(prompt, true, false);
            if (promptIds.length >= context) throw new org.quant4j.util.Q4jException("the prompt has " + promptIds.length + " tokens; the context holds " + context);
            for (int id : promptIds) sampler.accept(id);
            PrintStream out = System.out;
            out.print(prompt);
            out.flush();
            org.quant4j.tokenizer.StreamingDecoder stream = new org.quant4j.tokenizer.StreamingDecoder(tok);
            long t0 = System.nanoTime();
            float[] logits = llama.forward(state, promptIds, false);
            long t1 = System.nanoTime();
            int generated = 0;
            while (generated < maxTokens && state.position < context) {
                int next = sampler.sample(logits);
                if (tok.isEndOfGeneration(next)) break;
                sampler.accept(next);
                out.print(stream.next(next));
                out.flush();
                generated++;
                if (generated < maxTokens && state.position < context) logits = llama.forward(state, next);
            }
            long t2 = System.nanoTime();
            out.print(stream.flush());
            out.println();
            if (!noStats) {
                System.err.printf("prompt: %d tokens, %.2f tokens/s; generated: %d tokens, %.2f tokens/s%n",
                        promptIds.length, promptIds.length / ((t1 - t0) / 1e9), generated, generated / Math.max(1e-9, (t2 - t1) / 1e9));
            }
        }
        return 0;
    }
}
