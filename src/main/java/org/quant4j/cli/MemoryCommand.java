package org.quant4j.cli;

import org.quant4j.format.GgmlType;
import org.quant4j.io.ModelLoader;
import org.quant4j.model.KnownConfigs;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.util.Q4jException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * Memory a model needs in each format: parameters × bits per weight (seed 000: 70B in FP32 is 280 GB), plus the KV
 * cache (2 × layers × context × kv heads × head size × batch × bytes per value) when the architecture is known.
 */
@Command(name = "memory", mixinStandardHelpOptions = true,
        description = "Memory a model needs in each format, with the KV cache for a context and batch.")
final class MemoryCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "SIZE|NAME|MODEL",
            description = "a parameter count (70B, 7.2B, 135M), a known shape (tinyllama-1.1b, ...) or a model file")
    String what;
    @Option(names = "--ctx", defaultValue = "4096", description = "context length for the KV cache (default ${DEFAULT-VALUE})") int ctx;
    @Option(names = "--batch", defaultValue = "1", description = "sequences in the KV cache (default ${DEFAULT-VALUE})") int batch;
    @Option(names = "--kv-bits", defaultValue = "16", description = "bits per KV-cache value (default ${DEFAULT-VALUE})") int kvBits;

    record Fmt(String name, double bitsPerWeight) {}

    static final Fmt[] FORMATS = {
            new Fmt("FP32", 32), new Fmt("FP16 / BF16", 16), new Fmt("FP8 / INT8", 8), new Fmt("Q8_0", GgmlType.Q8_0.bitsPerWeight()),
            new Fmt("Q6_K", GgmlType.Q6_K.bitsPerWeight()), new Fmt("Q5_K", GgmlType.Q5_K.bitsPerWeight()),
            new Fmt("Q4_K", GgmlType.Q4_K.bitsPerWeight()), new Fmt("Q4_0", GgmlType.Q4_0.bitsPerWeight()), new Fmt("INT4", 4),
            new Fmt("Q3_K", GgmlType.Q3_K.bitsPerWeight()), new Fmt("Q2_K", GgmlType.Q2_K.bitsPerWeight()),
            new Fmt("TQ1_0 (ternary)", GgmlType.TQ1_0.bitsPerWeight()), new Fmt("1.58-bit (log2 3)", Math.log(3) / Math.log(2)), new Fmt("1-bit", 1)};

    @Override public Integer call() {
        long params;
        LlamaConfig config = null;
        Long fileBytes = null;
        Double count = parseCount(what);
        if (count != null) {
            params = Math.round(count);
        } else if (KnownConfigs.all().containsKey(what.toLowerCase(Locale.ROOT))) {
            config = KnownConfigs.get(what);
            params = config.parameterCount();
        } else if (Files.exists(Path.of(what))) {
            try (Model m = ModelLoader.load(Path.of(what))) {
                config = m.config();
                params = config.parameterCount();
                fileBytes = m.byteSize();
            }
        } else {
            throw new Q4jException("'" + what + "' is neither a parameter count (like 70B), a known shape (" + String.join(", ", KnownConfigs.all().keySet()) + ") nor a model file");
        }
        System.out.printf("%s: %,d parameters%s%n", what, params, fileBytes != null ? String.format(" (this file holds %s of tensors)", human(fileBytes)) : "");
        double kv = 0;
        if (config != null) {
            kv = 2.0 * config.nLayers() * ctx * config.kvDim() * batch * kvBits / 8.0;
            System.out.printf("KV cache: 2 × %d layers × %d tokens × %d (kv heads × head size) × batch %d × %d bits = %s%n",
                    config.nLayers(), ctx, config.kvDim(), batch, kvBits, human(kv));
        }
        System.out.printf("%n%-18s %11s %12s%s%n", "format", "bits/weight", "weights", config != null ? String.format(" %14s", "+ KV cache") : "");
        for (Fmt f : FORMATS) {
            double bytes = params * f.bitsPerWeight() / 8.0;
            System.out.printf("%-18s %11.4g %12s%s%n", f.name(), f.bitsPerWeight(), human(bytes), config != null ? String.format(" %14s", human(bytes + kv)) : "");
        }
        return 0;
    }

    /** "70B" → 7e10, "135M" → 1.35e8, "1.1e9" → 1.1e9; null if not a count. */
    static Double parseCount(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        double mult = 1;
        if (t.endsWith("T")) { mult = 1e12; t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("B")) { mult = 1e9; t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("M")) { mult = 1e6; t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("K")) { mult = 1e3; t = t.substring(0, t.length() - 1); }
        try {
            double v = Double.parseDouble(t) * mult;
            return v > 0 && Double.isFinite(v) ? v : null;
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** Decimal units, as the seed counts them (70B × 4 bytes = 280 GB). */
    static String human(double bytes) {
        String[] units = {"B", "kB", "MB", "GB", "TB"};
        int u = 0;
        while (bytes >= 1000 && u < units.length - 1) { bytes /= 1000; u++; }
        return String.format(bytes >= 100 ? "%.0f %s" : bytes >= 10 ? "%.1f %s" : "%.2f %s", bytes, units[u]);
    }
}
