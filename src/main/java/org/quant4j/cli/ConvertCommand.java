package org.quant4j.cli;

import org.quant4j.format.GgmlType;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.ModelSaver;
import org.quant4j.model.Model;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "convert", mixinStandardHelpOptions = true,
        description = {"Convert a model between llama2.c (.bin), GGUF (.gguf) and Hugging Face safetensors (a directory).",
                "The output format follows the output's name: *.gguf, *.bin, or anything else as a safetensors directory."})
final class ConvertCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "IN", description = "input model (GGUF, llama2.c .bin, safetensors file or directory)") Path input;
    @Parameters(index = "1", paramLabel = "OUT", description = "output path") Path output;
    @Option(names = "--type", description = "float type for weight matrices: F32, F16 or BF16 (default: keep; llama2.c is always F32)") String type;
    @Option(names = "--tokenizer", description = "tokenizer for a llama2.c input (tokenizer.bin)") Path tokenizer;
    @Option(names = "--llama2c-version", defaultValue = "0", description = "llama2.c output layout: 0 (legacy, run.c) or 1 (ak42)") int llama2cVersion;
    @Option(names = "--to", description = "output format, overriding the name: gguf, llama2c, safetensors") String to;

    @Override public Integer call() {
        GgmlType t = type == null ? null : GgmlType.parse(type);
        long t0 = System.nanoTime();
        try (Model model = ModelLoader.load(input, tokenizer)) {
            ModelSaver.Format f = to != null ? ModelSaver.Format.parse(to) : ModelSaver.Format.fromName(output);
            ModelSaver.save(model, output, f, t, llama2cVersion, input);
            System.out.printf("wrote %s (%s) in %.1f s%n", output, f, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }
}
