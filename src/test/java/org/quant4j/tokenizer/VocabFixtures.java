package org.quant4j.tokenizer;

import org.quant4j.io.gguf.GgufFile;
import org.quant4j.io.gguf.GgufValue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;
import java.util.concurrent.ConcurrentHashMap;

/** llama.cpp's vocab-only GGUF files and their test vectors, from src/test/resources/vocab (see NOTICE there). */
final class VocabFixtures {
    private VocabFixtures() {}

    static final List<String> VOCABS = List.of("llama-spm", "phi-3", "gpt-2", "falcon", "mpt", "starcoder", "refact",
            "deepseek-llm", "deepseek-coder", "bert-bge");

    /** One test string and the ids llama.cpp's test-tokenizer-0 expects (add_special = false, parse_special = false). */
    record Vector(String vocab, int index, String text, int[] ids) {
        @Override public String toString() { return vocab + " #" + index; }
    }

    private static final Map<String, Tokenizer> TOKENIZERS = new ConcurrentHashMap<>();
    private static final Map<String, Map<String, GgufValue>> METADATA = new ConcurrentHashMap<>();

    static Path resource(String name) {
        URL url = VocabFixtures.class.getResource("/" + name);
        if (url == null) throw new IllegalStateException("test resource " + name + " is missing");
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path gguf(String vocab) { return resource("vocab/ggml-vocab-" + vocab + ".gguf"); }

    static Map<String, GgufValue> metadata(String vocab) {
        return METADATA.computeIfAbsent(vocab, v -> {
            try (GgufFile f = GgufFile.open(gguf(v))) {
                return new LinkedHashMap<>(f.metadata());
            }
        });
    }

    static Tokenizer tokenizer(String vocab) {
        return TOKENIZERS.computeIfAbsent(vocab, v -> Tokenizers.fromMetadata(metadata(v), gguf(v).toString()));
    }

    /** The vectors of one vocabulary, read as test-tokenizer-0.cpp reads them. */
    static List<Vector> vectors(String vocab) {
        try {
            Path base = gguf(vocab);
            String raw = Files.readString(base.resolveSibling(base.getFileName() + ".inp"));
            List<String> expected = Files.readAllLines(base.resolveSibling(base.getFileName() + ".out"));
            List<String> inputs = new ArrayList<>();
            String separator = "\n__ggml_vocab_test__\n";
            for (int pos = 0; pos < raw.length(); ) {
                int next = raw.indexOf(separator, pos);
                if (next < 0) {
                    inputs.add(raw.substring(pos));
                    break;
                }
                inputs.add(raw.substring(pos, next));
                pos = next + separator.length();
            }
            if (inputs.size() != expected.size()) {
                throw new IllegalStateException(vocab + ": " + inputs.size() + " inputs but " + expected.size() + " outputs");
            }
            List<Vector> vectors = new ArrayList<>();
            for (int i = 0; i < inputs.size(); i++) {
                String line = expected.get(i).strip();
                int[] ids = line.isEmpty() ? new int[0] : Arrays.stream(line.split(" ")).mapToInt(Integer::parseInt).toArray();
                vectors.add(new Vector(vocab, i, inputs.get(i), ids));
            }
            return vectors;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static List<Vector> allVectors() {
        List<Vector> all = new ArrayList<>();
        for (String v : VOCABS) all.addAll(vectors(v));
        return all;
    }
}
