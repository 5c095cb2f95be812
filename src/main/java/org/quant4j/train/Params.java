package org.quant4j.train;

import org.quant4j.io.gguf.GgufValue;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.*;

/**
 * The trainable parameters of a Llama model as float arrays, each with its gradient, under llama.cpp's tensor names.
 * Built from a {@link Model} (fine-tuning) or at random (from scratch), and turned back into a Model of F32 tensors.
 */
public final class Params {

    /** One parameter tensor: values and gradient, both (rows · cols) row-major. {@code linear}: a weight of a linear layer in a block. */
    public record Param(String name, long[] shape, float[] value, float[] grad, boolean linear) {
        public int rows() { return shape.length == 1 ? 1 : (int) shape[0]; }

        public int cols() { return (int) shape[shape.length - 1]; }
    }

    public final LlamaConfig config;
    public final Param tokenEmbedding;   // (vocab, dim)
    public final Param output;           // (vocab, dim), or null when tied to the embedding
    public final Param outputNorm;       // (dim)
    public final Param[] attnNorm, ffnNorm;            // [layer](dim)
    public final Param[] wq, wk, wv, wo;               // [layer](qDim, dim), (kvDim, dim), (kvDim, dim), (dim, qDim)
    public final Param[] wGate, wUp, wDown;            // [layer](hidden, dim), (hidden, dim), (dim, hidden)
    private final List<Param> all = new ArrayList<>();
    private final boolean linearValues;         // false: linear weights live elsewhere (a quantized frozen base)

    private Params(LlamaConfig c, Map<String, float[]> values) { this(c, values, true); }

    /**
     * @param linearValues false: the linear weights of the blocks get no float copy (empty value and gradient arrays),
     *                     for QLoRA, whose frozen base is read from its quantized tensors instead
     */
    private Params(LlamaConfig c, Map<String, float[]> values, boolean linearValues) {
        this.linearValues = linearValues;
        if (c.qkvBias()) throw new Q4jException("training models with q/k/v bias (" + c.architecture() + ") is not supported");
        this.config = c;
        int L = c.nLayers();
        attnNorm = new Param[L]; ffnNorm = new Param[L];
        wq = new Param[L]; wk = new Param[L]; wv = new Param[L]; wo = new Param[L];
        wGate = new Param[L]; wUp = new Param[L]; wDown = new Param[L];
        tokenEmbedding = add(values, Model.TOKEN_EMBD, false, c.vocabSize(), c.dim());
        for (int l = 0; l < L; l++) {
            attnNorm[l] = add(values, Model.attnNorm(l), false, c.dim());
            wq[l] = add(values, Model.attnQ(l), true, c.qDim(), c.dim());
            wk[l] = add(values, Model.attnK(l), true, c.kvDim(), c.dim());
            wv[l] = add(values, Model.attnV(l), true, c.kvDim(), c.dim());
            wo[l] = add(values, Model.attnOutput(l), true, c.dim(), c.qDim());
            ffnNorm[l] = add(values, Model.ffnNorm(l), false, c.dim());
            wGate[l] = add(values, Model.ffnGate(l), true, c.hiddenDim(), c.dim());
            wUp[l] = add(values, Model.ffnUp(l), true, c.hiddenDim(), c.dim());
            wDown[l] = add(values, Model.ffnDown(l), true, c.dim(), c.hiddenDim());
        }
        outputNorm = add(values, Model.OUTPUT_NORM, false, c.dim());
        output = c.tiedEmbeddings() ? null : add(values, Model.OUTPUT, false, c.vocabSize(), c.dim());
    }

    private Param add(Map<String, float[]> values, String name, boolean linear, long... shape) {
        int n = (int) (shape.length == 1 ? shape[0] : shape[0] * shape[1]);
        if (linear && !linearValues) {
            Param p = new Param(name, shape, new float[0], new float[0], true);
            all.add(p);
            return p;
        }
        float[] v = values.get(name);
        if (v == null) throw new Q4jException("tensor " + name + " is missing");
        if (v.length != n) throw new Q4jException("tensor " + name + " has " + v.length + " values, the config needs " + n);
        Param p = new Param(name, shape, v, new float[n], linear);
        all.add(p);
        return p;
    }

    /** Every parameter, in a fixed order (embedding, blocks, output norm, head). */
    public List<Param> all() { return Collections.unmodifiableList(all); }

    public long count() {
        long n = 0;
        for (Param p : all) n += p.value.length;
        return n;
    }

    /** False when the linear weights are not held as floats here (a QLoRA base). */
    public boolean hasLinearValues() { return linearValues; }

    public void zeroGrad() {
        for (Param p : all) Arrays.fill(p.grad, 0f);
    }

    /** A copy of a model's weights (any storage type, dequantized to float). */
    public static Params fromModel(Model model) { return fromModel(model, true); }

    /**
     * As {@link #fromModel(Model)}; with {@code linearValues} false the linear weights of the blocks are not copied
     * (their {@link Param}s have empty arrays): QLoRA reads them from the model's quantized tensors.
     */
    public static Params fromModel(Model model, boolean linearValues) {
        LlamaConfig c = model.config();
        Model.checkTensors(c, model.tensors(), model.source());
        Map<String, float[]> values = new HashMap<>();
        Set<String> linear = new HashSet<>();
        for (int l = 0; l < c.nLayers(); l++) {
            linear.addAll(List.of(Model.attnQ(l), Model.attnK(l), Model.attnV(l), Model.attnOutput(l), Model.ffnGate(l), Model.ffnUp(l), Model.ffnDown(l)));
        }
        for (Tensor t : model.tensors().values()) if (linearValues || !linear.contains(t.name())) values.put(t.name(), MatMul.toFloats(t));
        if (c.tiedEmbeddings() && model.has(Model.OUTPUT)) {
            throw new Q4jException(model.source() + ": the config ties the output head to the embedding but the model has " + Model.OUTPUT);
        }
        return new Params(c, values, linearValues);
    }

    /**
     * Random initialisation as llm.c / GPT-2 do it: matrices N(0, 0.02), the two projections that write into the
     * residual stream (attn_output, ffn_down) scaled by 1/√(2·layers), norms 1.
     */
    public static Params random(LlamaConfig c, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, float[]> v = new HashMap<>();
        double std = 0.02, residualStd = 0.02 / Math.sqrt(2.0 * c.nLayers());
        v.put(Model.TOKEN_EMBD, gaussian(rng, c.vocabSize() * c.dim(), std));
        if (!c.tiedEmbeddings()) v.put(Model.OUTPUT, gaussian(rng, c.vocabSize() * c.dim(), std));
        v.put(Model.OUTPUT_NORM, ones(c.dim()));
        for (int l = 0; l < c.nLayers(); l++) {
            v.put(Model.attnNorm(l), ones(c.dim()));
            v.put(Model.ffnNorm(l), ones(c.dim()));
            v.put(Model.attnQ(l), gaussian(rng, c.qDim() * c.dim(), std));
            v.put(Model.attnK(l), gaussian(rng, c.kvDim() * c.dim(), std));
            v.put(Model.attnV(l), gaussian(rng, c.kvDim() * c.dim(), std));
            v.put(Model.attnOutput(l), gaussian(rng, c.dim() * c.qDim(), residualStd));
            v.put(Model.ffnGate(l), gaussian(rng, c.hiddenDim() * c.dim(), std));
            v.put(Model.ffnUp(l), gaussian(rng, c.hiddenDim() * c.dim(), std));
            v.put(Model.ffnDown(l), gaussian(rng, c.dim() * c.hiddenDim(), residualStd));
        }
        return new Params(c, v);
    }

    /** Random values of a given standard deviation for every tensor (gradient checks: far from the trained regime on purpose). */
    public static Params gaussian(LlamaConfig c, long seed, double std) {
        Params p = random(c, seed);
        SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
        for (Param q : p.all) {
            boolean norm = q.shape.length == 1;
            for (int i = 0; i < q.value.length; i++) q.value[i] = (float) (norm ? 1 + 0.3 * rng.nextGaussian() : std * rng.nextGaussian());
        }
        return p;
    }

    private static float[] gaussian(SplittableRandom rng, int n, double std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (std * rng.nextGaussian());
        return a;
    }

    private static float[] ones(int n) {
        float[] a = new float[n];
        Arrays.fill(a, 1f);
        return a;
    }

    /** A deep copy of the values (gradients zero). */
    public Params copy() {
        if (!linearValues) throw new Q4jException("a QLoRA base (linear weights kept quantized) cannot be copied as floats");
        Map<String, float[]> v = new HashMap<>();
        for (Param p : all) v.put(p.name, p.value.clone());
        return new Params(config, v);
    }

    /** The weights as a model of F32 tensors with the given metadata (tokenizer, name). */
    public Model toModel(Map<String, GgufValue> metadata, String source) {
        if (!linearValues) throw new Q4jException("a QLoRA base keeps its linear weights quantized; save the adapter or merge it instead");
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Param p : all) tensors.put(p.name, Tensor.ofFloats(p.name, p.value, p.shape));
        return new Model(config, tensors, metadata, source, List.of());
    }
}
