package org.quant4j.cli;

import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufValue;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "info", mixinStandardHelpOptions = true, description = "Print a GGUF file's metadata and tensor table.")
final class InfoCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "FILE", description = "a .gguf file") Path file;
    @Option(names = "--tensors", description = "list every tensor (default: first 20)") boolean allTensors;

    @Override public Integer call() {
        try (GgufFile g = GgufFile.open(file)) {
            System.out.printf("%s: GGUF v%d, %d metadata keys, %d tensors, alignment %d, data at %d%n",
                    file, g.version(), g.metadata().size(), g.tensorInfos().size(), g.alignment(), g.dataStart());
            for (Map.Entry<String, GgufValue> e : g.metadata().entrySet()) {
                String v = String.valueOf(e.getValue());
                if (v.length() > 100) v = v.substring(0, 100) + "...";
                System.out.printf("  %-40s %-8s %s%n", e.getKey(), e.getValue().type(), v);
            }
            int i = 0;
            for (GgufFile.TensorInfo t : g.tensorInfos()) {
                if (!allTensors && i++ >= 20) { System.out.println("  ... (--tensors lists all)"); break; }
                System.out.printf("  %-32s %-6s %-20s @%d%n", t.name(), t.type(), java.util.Arrays.toString(t.shape()), t.offset());
            }
        }
        return 0;
    }
}
