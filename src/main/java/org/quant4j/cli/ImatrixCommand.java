package org.quant4j.cli;

import org.quant4j.eval.Perplexity;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.imatrix.ImatrixFile;
import org.quant4j.method.kquant.ImatrixCollector;
import org.quant4j.method.kquant.ImportanceMatrix;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "imatrix", mixinStandardHelpOptions = true,
        description = {"Collect an importance matrix (mean squared input of every column of every linear layer) over a text,",
                "as llama-imatrix does, and save it in llama.cpp's imatrix GGUF format for `quantize --imatrix`.",
                "Example: quant4j imatrix model.gguf -f data/text/tinystories_sample.txt -o imatrix.gguf"})
final class ImatrixCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL") Path modelPath;
    @Option(names = {"-f", "--file"}, description = "calibration text (default: the bundled TinyStories sample)") Path textFile;
    @Option(names = {"-o", "--output"}, defaultValue = "imatrix.gguf", description = "output file (default ${DEFAULT-VALUE})") Path output;
    @Option(names = {"-c", "--ctx"}, defaultValue = "512", description = "tokens per chunk (default ${DEFAULT-VALUE}; smaller when the model's context is)") int ctx;
    @Option(names = "--chunks", defaultValue = "-1", description = "at most this many chunks (default: all)") int chunks;
    @Option(names = "--process-output", description = "collect output.weight too") boolean processOutput;
    @Option(names = "--tokenizer", description = "tokenizer.bin for llama2.c checkpoints") Path tokenizerPath;
    @Option(names = "--no-progress", description = "no progress bar") boolean noProgress;

    @Override public Integer call() {
        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(modelPath, tokenizerPath)) {
            Tokenizer tok = Tokenizers.fromMetadata(model.metadata(), model.source());
            Path text = textFile != null ? textFile : Defaults.calibrationText();
            int nCtx = Math.min(ctx, model.config().contextLength());
            int[] tokens = tok.encode(EvalCommand.read(text), true, false);
            Llama llama = new Llama(model);
            ImatrixCollector collector = new ImatrixCollector(processOutput);
            llama.setObserver(collector);
            int n = Perplexity.chunks(tokens.length, nCtx, chunks);
            EvalCommand progress = new EvalCommand();
            progress.noProgress = noProgress;
            Perplexity.Result r = progress.withProgress("imatrix", n, cb -> Perplexity.perplexity(llama, tokens, nCtx, tok.bosId(), true, chunks, null, cb));
            ImportanceMatrix m = collector.result(List.of(text.toString()), r.chunks(), nCtx);
            ImatrixFile.write(m, output);
            System.out.printf("%s: %d entries from %d chunks of %d tokens (perplexity %.4f ± %.4f) in %.1f s%n",
                    output, m.size(), r.chunks(), nCtx, r.ppl(), r.pplError(), (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }
}
