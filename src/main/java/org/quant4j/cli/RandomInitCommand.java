package org.quant4j.cli;

import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufModelWriter;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.model.KnownConfigs;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.RandomModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "random-init", mixinStandardHelpOptions = true,
        description = "Write a model with random weights in the shape of a real one (for architecture tests and benchmarks).")
final class RandomInitCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, paramLabel = "NAME|config.json",
            description = "a known shape (${COMPLETION-CANDIDATES}) or a Hugging Face config.json",
            completionCandidates = KnownNames.class)
    String config;
    @Option(names = {"-o", "--output"}, required = true, description = "output: a .gguf file, or a directory for a Hugging Face safetensors checkpoint") Path output;
    @Option(names = "--type", defaultValue = "F16", description = "weight type: F32, F16 or BF16 (default ${DEFAULT-VALUE})") String type;
    @Option(names = "--seed", defaultValue = "1234") long seed;
    @Option(names = "--layers", description = "override the number of layers (smaller test models)") Integer layers;
    @Option(names = "--context", description = "override the context length written to the file") Integer context;

    static final class KnownNames implements Iterable<String> {
        @Override public java.util.Iterator<String> iterator() { return KnownConfigs.all().keySet().iterator(); }
    }

    @Override public Integer call() {
        LlamaConfig c = Configs.resolve(config);
        if (layers != null || context != null) {
            c = new LlamaConfig(c.architecture(), c.dim(), c.hiddenDim(), layers != null ? layers : c.nLayers(), c.nHeads(), c.nKvHeads(),
                    c.headDim(), c.vocabSize(), context != null ? context : c.contextLength(), c.normEps(), c.ropeTheta(), c.ropeType(),
                    c.ropeScaling(), c.tiedEmbeddings(), c.qkvBias());
        }
        GgmlType t = GgmlType.parse(type);
        Map<String, GgufValue> meta = new LinkedHashMap<>();
        meta.put("general.name", GgufValue.string("random " + config));
        meta.putAll(RandomModel.placeholderTokenizer(c.vocabSize()));
        long t0 = System.nanoTime();
        var tensors = RandomModel.tensors(c, t, seed);
        if (output.getFileName().toString().endsWith(".gguf")) {
            GgufModelWriter.writePending(c.toGguf(), meta, tensors, output, t == GgmlType.F32 ? 0 : t == GgmlType.F16 ? 1 : 32);
        } else {
            // a Hugging Face checkpoint directory (safetensors + config.json); the tensors are made in memory first
            java.util.Map<String, org.quant4j.tensor.Tensor> made = new java.util.LinkedHashMap<>();
            for (var p : tensors) made.put(p.name(), new org.quant4j.tensor.Tensor(p.name(), p.type(), p.shape(), p.data().get()));
            try (var model = new org.quant4j.model.Model(c, made, meta, "random " + config, java.util.List.of())) {
                org.quant4j.io.hf.HfCheckpoint.save(model, output, org.quant4j.io.ModelSaver.DEFAULT_MAX_SHARD_BYTES);
            }
        }
        System.out.printf("wrote %s: %s, %,d parameters, %s, %.1f s%n", output, config, c.parameterCount(), t, (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
