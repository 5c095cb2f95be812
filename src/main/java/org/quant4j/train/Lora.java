package org.quant4j.train;

import org.quant4j.io.peft.PeftAdapter;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.train.Params.Param;
import org.quant4j.util.Q4jException;

import java.util.*;

/**
 * Low-rank adapters (LoRA, Hu et al. 2021) on the linear layers of a Llama model: a frozen weight W (out, in) gains a
 * trainable update ΔW = (α / r) · B·A with A (r, in) and B (out, r), so a layer computes
 * <pre>
 *   y = x·Wᵀ + (α / r) · (x·Aᵀ)·Bᵀ
 * </pre>
 * B starts at zero (the adapted model starts as the base), A as PEFT initialises it: Kaiming-uniform with a = √5, that
 * is U(−1/√in, 1/√in). QLoRA (Dettmers et al. 2023) keeps W in a 4-bit storage type and dequantizes it on the fly; the
 * gradient flows through W to x but never to W. The forward and backward passes are in {@link LlamaTrainer}; this class
 * holds the adapter's parameters and merges them: W' = W + (α / r) · B·A.
 */
public final class Lora {

    /** The linear layers an adapter can sit on, with their GGUF and Hugging Face / PEFT module names. */
    public enum Target {
        Q("attn_q", "self_attn.q_proj"), K("attn_k", "self_attn.k_proj"), V("attn_v", "self_attn.v_proj"),
        O("attn_output", "self_attn.o_proj"), GATE("ffn_gate", "mlp.gate_proj"), UP("ffn_up", "mlp.up_proj"),
        DOWN("ffn_down", "mlp.down_proj");

        public final String gguf, hf;

        Target(String gguf, String hf) { this.gguf = gguf; this.hf = hf; }

        /** The GGUF weight name in layer l, e.g. blk.3.attn_q.weight. */
        public String weight(int l) { return Model.blk(l, gguf + ".weight"); }

        /** The PEFT module name ("q_proj"), as adapter_config.json's target_modules lists it. */
        public String module() { return hf.substring(hf.indexOf('.') + 1); }

        /** Parses "q,k,v,o,gate,up,down" (or PEFT's "q_proj,...", or "all"). */
        public static EnumSet<Target> parseList(String spec) {
            EnumSet<Target> out = EnumSet.noneOf(Target.class);
            for (String s : spec.toLowerCase(Locale.ROOT).split("[,\\s]+")) {
                if (s.isEmpty()) continue;
                if (s.equals("all")) return EnumSet.allOf(Target.class);
                Target found = null;
                for (Target t : values()) if (s.equals(t.name().toLowerCase(Locale.ROOT)) || s.equals(t.module()) || s.equals(t.gguf)) found = t;
                if (found == null) throw new Q4jException("unknown LoRA target '" + s + "' (q, k, v, o, gate, up, down)");
                out.add(found);
            }
            if (out.isEmpty()) throw new Q4jException("no LoRA targets in '" + spec + "'");
            return out;
        }

        /** (out, in) of this layer's weight. */
        int[] shape(LlamaConfig c) {
            return switch (this) {
                case Q -> new int[]{c.qDim(), c.dim()};
                case K, V -> new int[]{c.kvDim(), c.dim()};
                case O -> new int[]{c.dim(), c.qDim()};
                case GATE, UP -> new int[]{c.hiddenDim(), c.dim()};
                case DOWN -> new int[]{c.dim(), c.hiddenDim()};
            };
        }
    }

    /** The adapter of one linear layer: a (r, in), b (out, r), both trainable. */
    public record Pair(int layer, Target target, Param a, Param b) {
        public String weight() { return target.weight(layer); }
    }

    public final LlamaConfig config;
    public final int rank;
    public final float alpha;
    public final EnumSet<Target> targets;
    private final LinkedHashMap<String, Pair> byWeight = new LinkedHashMap<>(); // GGUF weight name → adapter
    private final List<Param> params = new ArrayList<>();

    private Lora(LlamaConfig c, int rank, float alpha, Set<Target> targets) {
        if (rank < 1) throw new Q4jException("LoRA rank must be at least 1, not " + rank);
        this.config = c;
        this.rank = rank;
        this.alpha = alpha;
        this.targets = EnumSet.copyOf(targets);
    }

    /** The factor α / r of the update. */
    public float scaling() { return alpha / rank; }

    /**
     * A new adapter: B = 0, A ~ U(−1/√in, 1/√in) (PEFT's kaiming_uniform_(a=√5)), in layer order, q k v o gate up down.
     */
    public static Lora init(LlamaConfig c, int rank, float alpha, Set<Target> targets, long seed) {
        Lora lora = new Lora(c, rank, alpha, targets);
        SplittableRandom rng = new SplittableRandom(seed);
        for (int l = 0; l < c.nLayers(); l++) {
            for (Target t : lora.targets) {
                int[] s = t.shape(c);
                float[] a = new float[rank * s[1]];                       // (r, in)
                double bound = 1.0 / Math.sqrt(s[1]);
                for (int i = 0; i < a.length; i++) a[i] = (float) ((2 * rng.nextDouble() - 1) * bound);
                lora.add(l, t, a, new float[s[0] * rank]);                // (out, r) zeros
            }
        }
        return lora;
    }

    /** An adapter with given weights: a[i], b[i] for the i-th (layer, target) in layer order (as {@link #pairs()}). */
    public static Lora of(LlamaConfig c, int rank, float alpha, Set<Target> targets, Map<String, float[][]> weights) {
        Lora lora = new Lora(c, rank, alpha, targets);
        for (int l = 0; l < c.nLayers(); l++) {
            for (Target t : lora.targets) {
                float[][] ab = weights.get(t.weight(l));
                if (ab == null) throw new Q4jException("LoRA adapter has no weights for " + t.weight(l));
                lora.add(l, t, ab[0], ab[1]);
            }
        }
        return lora;
    }

    private void add(int l, Target t, float[] a, float[] b) {
        int[] s = t.shape(config);
        String w = t.weight(l);
        if (a.length != rank * s[1]) throw new Q4jException("LoRA " + w + ": A has " + a.length + " values, (r=" + rank + ", in=" + s[1] + ") needs " + rank * s[1]);
        if (b.length != s[0] * rank) throw new Q4jException("LoRA " + w + ": B has " + b.length + " values, (out=" + s[0] + ", r=" + rank + ") needs " + s[0] * rank);
        Param pa = new Param(w.replace(".weight", ".lora_a"), new long[]{rank, s[1]}, a, new float[a.length], false);
        Param pb = new Param(w.replace(".weight", ".lora_b"), new long[]{s[0], rank}, b, new float[b.length], false);
        byWeight.put(w, new Pair(l, t, pa, pb));
        params.add(pa);
        params.add(pb);
    }

    /** The adapter of a linear weight (by GGUF name), or null when that layer has none. */
    public Pair pair(String weight) { return byWeight.get(weight); }

    public Collection<Pair> pairs() { return Collections.unmodifiableCollection(byWeight.values()); }

    /** The trainable parameters: A and B of every adapted layer. */
    public List<Param> params() { return Collections.unmodifiableList(params); }

    public long count() {
        long n = 0;
        for (Param p : params) n += p.value().length;
        return n;
    }

    public void zeroGrad() {
        for (Param p : params) Arrays.fill(p.grad(), 0f);
    }

    /** ΔW = (α / r) · B·A of one layer (out, in). */
    public float[] delta(Pair p) {
        int out = p.b().rows(), in = p.a().cols();
        float[] a = p.a().value(), b = p.b().value(), d = new float[out * in]; // (out, in)
        float s = scaling();
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < rank; k++) {
                float c = s * b[o * rank + k];
                if (c == 0f) continue;
                for (int i = 0; i < in; i++) d[o * in + i] += c * a[k * in + i];
            }
        }
        return d;
    }

    /**
     * The adapter merged into the model: each adapted weight becomes F32 W + (α / r)·B·A, W dequantized from whatever
     * storage type it has (re-quantizing the sum would round most of a small ΔW away); the other tensors are kept.
     */
    public Model merge(Model base) {
        Map<String, Tensor> merged = new LinkedHashMap<>();
        for (Pair p : byWeight.values()) {
            Tensor w = base.tensor(p.weight());
            float[] v = MatMul.toFloats(w), d = delta(p);
            if (v.length != d.length) throw new Q4jException("tensor " + w.name() + ": " + v.length + " values, the adapter's update has " + d.length);
            for (int i = 0; i < v.length; i++) v[i] += d[i];
            merged.put(w.name(), Tensor.ofFloats(w.name(), v, w.shape()));
        }
        return base.withTensors(merged);
    }

    /** The adapter in PEFT's layout (keyed by GGUF weight name; see {@link PeftAdapter}). */
    public PeftAdapter toPeft() {
        Map<String, float[]> a = new LinkedHashMap<>(), b = new LinkedHashMap<>();
        for (Pair p : byWeight.values()) {
            a.put(p.weight(), p.a().value());
            b.put(p.weight(), p.b().value());
        }
        List<String> modules = new ArrayList<>();
        for (Target t : targets) modules.add(t.module());
        return new PeftAdapter(rank, alpha, modules, a, b);
    }

    /** An adapter read from PEFT's layout; the layers it adapts must be the same (layer, target) set in every layer. */
    public static Lora fromPeft(PeftAdapter peft, LlamaConfig c) {
        EnumSet<Target> targets = EnumSet.noneOf(Target.class);
        for (Target t : Target.values()) if (peft.a().containsKey(t.weight(0))) targets.add(t);
        Map<String, float[][]> w = new HashMap<>();
        for (var e : peft.a().entrySet()) w.put(e.getKey(), new float[][]{e.getValue().clone(), peft.b().get(e.getKey()).clone()});
        if (w.size() != targets.size() * c.nLayers()) throw new Q4jException("the LoRA adapter adapts " + w.size() + " layers, not the same targets " + targets + " in each of " + c.nLayers() + " blocks");
        return of(c, peft.rank(), peft.alpha(), targets, w);
    }
}
