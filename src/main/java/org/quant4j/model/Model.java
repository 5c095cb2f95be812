package org.quant4j.model;

import org.quant4j.io.gguf.GgufValue;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.*;

/**
 * A loaded model: its config, its tensors under llama.cpp's GGUF names ({@code token_embd.weight},
 * {@code blk.N.attn_q.weight}, ...), and the rest of its metadata in GGUF form (tokenizer.*, general.name, ...).
 * Tensors may be slices of memory-mapped files; {@link #close()} releases those.
 *
 * <p>Every reader produces this, every writer consumes it, and every method maps one Model to another.
 */
public final class Model implements AutoCloseable {
    private final LlamaConfig config;
    private final LinkedHashMap<String, Tensor> tensors;
    private final LinkedHashMap<String, GgufValue> metadata;
    private final List<AutoCloseable> resources;
    private final String source;

    public Model(LlamaConfig config, Map<String, Tensor> tensors, Map<String, GgufValue> metadata, String source, List<AutoCloseable> resources) {
        this.config = config;
        this.tensors = new LinkedHashMap<>(tensors);
        this.metadata = new LinkedHashMap<>(metadata);
        this.resources = new ArrayList<>(resources);
        this.source = source;
    }

    public LlamaConfig config() { return config; }

    /** Where the model came from (a path or a description), for messages. */
    public String source() { return source; }

    /** Tensors in canonical order (unmodifiable). */
    public Map<String, Tensor> tensors() { return Collections.unmodifiableMap(tensors); }

    /** Non-architecture metadata in GGUF form: tokenizer.*, general.name, quantization info. */
    public Map<String, GgufValue> metadata() { return Collections.unmodifiableMap(metadata); }

    public boolean has(String name) { return tensors.containsKey(name); }

    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new Q4jException(source + ": tensor " + name + " is missing");
        return t;
    }

    /** A model with the same metadata and resources whose tensors are replaced by {@code replacements} (by name). */
    public Model withTensors(Map<String, Tensor> replacements) {
        LinkedHashMap<String, Tensor> next = new LinkedHashMap<>(tensors);
        next.putAll(replacements);
        return new Model(config, next, metadata, source, resources);
    }

    public Model withMetadata(Map<String, GgufValue> extra) {
        LinkedHashMap<String, GgufValue> next = new LinkedHashMap<>(metadata);
        next.putAll(extra);
        return new Model(config, tensors, next, source, resources);
    }

    /** Bytes of tensor data. */
    public long byteSize() {
        long n = 0;
        for (Tensor t : tensors.values()) n += t.data().byteSize();
        return n;
    }

    @Override public void close() {
        for (AutoCloseable r : resources) {
            try { r.close(); } catch (Exception ignored) { }
        }
        resources.clear();
    }

    // ---- llama.cpp tensor names ---------------------------------------------------------------------------------

    public static final String TOKEN_EMBD = "token_embd.weight";
    public static final String OUTPUT_NORM = "output_norm.weight";
    public static final String OUTPUT = "output.weight";

    public static String blk(int layer, String what) { return "blk." + layer + "." + what; }

    public static String attnNorm(int l) { return blk(l, "attn_norm.weight"); }
    public static String attnQ(int l) { return blk(l, "attn_q.weight"); }
    public static String attnK(int l) { return blk(l, "attn_k.weight"); }
    public static String attnV(int l) { return blk(l, "attn_v.weight"); }
    public static String attnOutput(int l) { return blk(l, "attn_output.weight"); }
    public static String ffnNorm(int l) { return blk(l, "ffn_norm.weight"); }
    public static String ffnGate(int l) { return blk(l, "ffn_gate.weight"); }
    public static String ffnUp(int l) { return blk(l, "ffn_up.weight"); }
    public static String ffnDown(int l) { return blk(l, "ffn_down.weight"); }

    /** Checks that every tensor the config calls for is present with the right shape. */
    public static void checkTensors(LlamaConfig c, Map<String, Tensor> t, String source) {
        expect(t, source, TOKEN_EMBD, c.vocabSize(), c.dim());
        expect(t, source, OUTPUT_NORM, c.dim());
        if (!c.tiedEmbeddings()) expect(t, source, OUTPUT, c.vocabSize(), c.dim());
        for (int l = 0; l < c.nLayers(); l++) {
            expect(t, source, attnNorm(l), c.dim());
            expect(t, source, attnQ(l), c.qDim(), c.dim());
            expect(t, source, attnK(l), c.kvDim(), c.dim());
            expect(t, source, attnV(l), c.kvDim(), c.dim());
            expect(t, source, attnOutput(l), c.dim(), c.qDim());
            expect(t, source, ffnNorm(l), c.dim());
            expect(t, source, ffnGate(l), c.hiddenDim(), c.dim());
            expect(t, source, ffnUp(l), c.hiddenDim(), c.dim());
            expect(t, source, ffnDown(l), c.dim(), c.hiddenDim());
            if (c.qkvBias()) {
                expect(t, source, blk(l, "attn_q.bias"), c.qDim());
                expect(t, source, blk(l, "attn_k.bias"), c.kvDim());
                expect(t, source, blk(l, "attn_v.bias"), c.kvDim());
            }
        }
    }

    private static void expect(Map<String, Tensor> t, String source, String name, long... shape) {
        Tensor x = t.get(name);
        if (x == null) throw new Q4jException(source + ": tensor " + name + " is missing (the config needs it)");
        if (!Arrays.equals(x.shape(), shape)) {
            throw new Q4jException(source + ": tensor " + name + " has shape " + Arrays.toString(x.shape()) + ", the config needs " + Arrays.toString(shape));
        }
    }
}
