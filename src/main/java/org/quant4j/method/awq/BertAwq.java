package org.quant4j.method.awq;

import org.quant4j.kernel.MatMul;
import org.quant4j.model.Bert;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * AWQ on post-LayerNorm encoders (BERT, MiniLM, BGE): {@link Awq}'s scale search, clip search and quantizer, with the
 * scales put where a post-LN block can hold them. In a Llama block AWQ folds 1/s into the RMSNorm before q/k/v and
 * gate/up; in a BERT block the LayerNorm's output is also the residual stream, so 1/s cannot go there (see
 * {@link org.quant4j.method.encoder.EncoderTransforms}). Per scaling group:
 * <pre>
 *   LN output → q, k, v      module: attention (q,k,v → softmax → heads)·Woᵀ     s stored online: x ← x / s ({@link Bert#INPUT_SMOOTH})
 *   v → o                    module: o                                         s folded: v rows and bias ÷ s, o columns × s
 *   LN output → up           module: down(GELU(x·Upᵀ + b))                     s stored online
 *   GELU output → down       module: down                                      s stored online (GELU sits between up and down)
 * </pre>
 * s and its search are llm-awq's (mean |x| per channel, α on a grid of {@code nGrid}, normalised by sqrt(max·min));
 * then the clip search (all layers but q and k) and the quantization, as {@link Awq#apply}. Like llm-awq, every block
 * is searched on the float model's inputs (the float block's outputs feed the next block). Calibration sentences may
 * differ in length: their tokens are concatenated, attention runs per sentence.
 */
public final class BertAwq {
    private BertAwq() {}

    private static final String Q = Awq.Q, K = Awq.K, V = Awq.V, O = Awq.O, UP = Awq.UP, DOWN = Awq.DOWN;

    /** Thrown (preallocated) to stop a block once the attention output is known. */
    private static final class Stop extends RuntimeException {
        Stop() { super(null, null, false, false); }
    }

    private static final Stop STOP = new Stop();

    /**
     * @param samples calibration sentences as token ids ([CLS] … [SEP]), of any lengths
     * @param log     per-group α and loss; may be null
     */
    public static Model apply(Model model, int[][] samples, Awq.Options o, Consumer<String> log) {
        if (!Bert.ARCHITECTURE.equals(model.config().architecture())) throw new Q4jException(model.source() + ": BertAwq is for BERT encoders; decoders use Awq");
        if (samples.length == 0) throw new Q4jException("AWQ needs at least one calibration sample");
        LlamaConfig c = model.config();
        int n = samples.length, dim = c.dim(), hidden = c.hiddenDim();
        int[] start = new int[n + 1];                                    // (n + 1) first token of each sample in the concatenation
        for (int i = 0; i < n; i++) start[i + 1] = start[i] + samples[i].length;
        int tokens = start[n];
        Bert floatModel = new Bert(model);
        float[][] hidden0 = new float[n][];                              // [sample](len, dim) the block's float inputs
        for (int i = 0; i < n; i++) hidden0[i] = floatModel.embeddings(samples[i], null);
        Map<String, Tensor> replaced = new LinkedHashMap<>();
        for (int l = 0; l < c.nLayers(); l++) {
            long started = System.nanoTime();
            // 1. the float block's linear inputs over all samples; its outputs are the next block's inputs
            float[] xAttn = new float[tokens * dim];                     // (tokens, dim)    input of q, k, v
            float[] xO = new float[tokens * dim];                        // (tokens, dim)    input of o
            float[] xUp = new float[tokens * dim];                       // (tokens, dim)    input of up
            float[] xDown = new float[tokens * hidden];                  // (tokens, hidden) input of down
            Map<String, float[]> sink = Map.of(blk(l, Q), xAttn, blk(l, O), xO, blk(l, UP), xUp, blk(l, DOWN), xDown);
            float[][] blockInput = new float[n][];                       // [sample](len, dim)
            for (int i = 0; i < n; i++) {
                int base = start[i];
                Map<String, Integer> at = new HashMap<>();
                floatModel.setObserver((weight, x, b, cols) -> {
                    float[] dst = sink.get(weight);
                    if (dst == null) return;
                    int pos = at.merge(weight, b, Integer::sum) - b;
                    System.arraycopy(x, 0, dst, (base + pos) * cols, b * cols);
                });
                blockInput[i] = hidden0[i].clone();
                floatModel.block(l, hidden0[i], samples[i].length);
                floatModel.setObserver(null);
                if (at.size() != 4) throw new Q4jException("AWQ: block " + l + " showed " + at.size() + " of 4 layer inputs");
            }

            // 2. the float weights and biases of the block
            Map<String, float[]> w = new LinkedHashMap<>();
            for (String s : List.of(Q, K, V, O, UP, DOWN)) w.put(s, MatMul.toFloats(model.tensor(blk(l, s))));
            float[] vBias = MatMul.toFloats(model.tensor(Model.blk(l, "attn_v.bias"))).clone();   // (dim)
            float[] upBias = MatMul.toFloats(model.tensor(Model.blk(l, "ffn_up.bias")));          // (hidden)
            Runnable step = () -> { };

            // 3. the scale searches, each on the float weights
            final int layer = l;
            Awq.Search attn = Awq.search(Awq.meanAbs(xAttn, tokens, dim), pick(w, Q, K, V), dim, cand -> {
                Map<String, Tensor> t = new LinkedHashMap<>();
                for (String s : List.of(Q, K, V)) t.put(blk(layer, s), Tensor.ofFloats(blk(layer, s), cand.get(s), dim, dim));
                Bert candidate = new Bert(model.withTensors(t));
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    int len = samples[i].length;
                    float[] a = attentionOutput(candidate, layer, blockInput[i], len);                  // (len, dim)
                    float[] ref = Arrays.copyOfRange(xO, start[i] * dim, start[i + 1] * dim);
                    sum += Awq.squaredOutput(Awq.minus(a, ref), len, dim, w.get(O), dim);          // o in float
                }
                return sum / ((double) tokens * dim);
            }, o, step);
            log(log, l, "attn_q,attn_k,attn_v (online)", attn);

            Awq.Search out = Awq.search(Awq.meanAbs(xO, tokens, dim), pick(w, O), dim,
                    cand -> Awq.squaredOutput(xO, tokens, dim, Awq.minus(cand.get(O), w.get(O)), dim) / ((double) tokens * dim), o, step);
            log(log, l, "attn_output (folded into v)", out);

            Awq.Search up = Awq.search(Awq.meanAbs(xUp, tokens, dim), pick(w, UP), dim, cand -> {
                // the feed-forward module: down(GELU(x·Upᵀ + b)), down in float; xDown is the float module's GELU output
                Tensor upT = Tensor.ofFloats("up", cand.get(UP), hidden, dim);
                int chunk = 512;
                float[] u = new float[chunk * hidden];                                                // (chunk, hidden)
                double sum = 0;
                for (int t0 = 0; t0 < tokens; t0 += chunk) {
                    int m = Math.min(chunk, tokens - t0);
                    MatMul.matmul(upT, Arrays.copyOfRange(xUp, t0 * dim, (t0 + m) * dim), u, m);
                    float[] d = new float[m * hidden];
                    for (int i = 0; i < m * hidden; i++) d[i] = gelu(floatModel, u[i] + upBias[i % hidden]) - xDown[t0 * hidden + i];
                    sum += Awq.squaredOutput(d, m, hidden, w.get(DOWN), dim);
                }
                return sum / ((double) tokens * dim);
            }, o, step);
            log(log, l, "ffn_up (online)", up);

            Awq.Search down = Awq.search(Awq.meanAbs(xDown, tokens, hidden), pick(w, DOWN), hidden,
                    cand -> Awq.squaredOutput(xDown, tokens, hidden, Awq.minus(cand.get(DOWN), w.get(DOWN)), dim) / ((double) tokens * dim), o, step);
            log(log, l, "ffn_down (online)", down);

            // 4. fold: layers' columns × s; inputs ÷ s online (sites 0, 2, 3) or through v's rows (site 1)
            for (String s : List.of(Q, K, V)) Awq.scaleColumns(w.get(s), dim, attn.scales());
            Awq.divideColumns(xAttn, dim, attn.scales());
            Awq.scaleRows(w.get(V), dim, out.scales(), vBias);
            Awq.scaleColumns(w.get(O), dim, out.scales());
            Awq.divideColumns(xO, dim, out.scales());
            Awq.scaleColumns(w.get(UP), dim, up.scales());
            Awq.divideColumns(xUp, dim, up.scales());
            Awq.scaleColumns(w.get(DOWN), hidden, down.scales());
            Awq.divideColumns(xDown, hidden, down.scales());
            putSmooth(replaced, l, Q, attn.scales());
            putSmooth(replaced, l, UP, up.scales());
            putSmooth(replaced, l, DOWN, down.scales());

            // 5. clip (not q and k: their outputs meet in q·kᵀ), then quantize
            Map<String, float[]> inputOf = Map.of(V, xAttn, O, xO, UP, xUp, DOWN, xDown);
            for (String s : List.of(Q, K, V, O, UP, DOWN)) {
                String name = blk(l, s);
                Tensor t = model.tensor(name);
                int rows = (int) t.rows(), cols = (int) t.cols();
                float[] ws = w.get(s);
                if (o.quantize()) {
                    if (o.clip() && inputOf.containsKey(s)) ws = Awq.clip(ws, rows, cols, inputOf.get(s), tokens, o);
                    replaced.put(name, Awq.toTensor(name, ws, rows, cols, o));
                } else {
                    replaced.put(name, Tensor.ofFloats(name, ws, rows, cols));
                }
            }
            String vBiasName = Model.blk(l, "attn_v.bias");
            replaced.put(vBiasName, Tensor.ofFloats(vBiasName, vBias, dim));
            if (log != null) log.accept(String.format("blk.%d: %s, %.2f s", l, o.describe(), (System.nanoTime() - started) / 1e9));
        }
        return model.withTensors(replaced);
    }

    private static String blk(int l, String kind) { return Model.blk(l, kind + ".weight"); }

    private static void putSmooth(Map<String, Tensor> out, int l, String site, float[] s) {
        String name = Model.blk(l, site + Bert.INPUT_SMOOTH);
        out.put(name, Tensor.ofFloats(name, s.clone(), s.length));
    }

    private static float gelu(Bert bert, float x) { return bert.gelu == Bert.Gelu.ERF ? Bert.geluErf(x) : Bert.geluTanh(x); }

    /** The input of block l's attention output projection (len, dim) for one sample's block input, the block stopped there. */
    static float[] attentionOutput(Bert bert, int l, float[] blockInput, int len) {
        int dim = bert.config.dim();
        float[] out = new float[len * dim];
        String wo = blk(l, O);
        int[] filled = {0};
        bert.setObserver((weight, x, batch, cols) -> {
            if (!weight.equals(wo)) return;
            System.arraycopy(x, 0, out, filled[0] * dim, batch * dim);
            filled[0] += batch;
            if (filled[0] == len) throw STOP;
        });
        try {
            bert.block(l, blockInput.clone(), len);
        } catch (Stop stop) {
            // the rest of the block is not needed
        } finally {
            bert.setObserver(null);
        }
        if (filled[0] != len) throw new Q4jException("AWQ: " + wo + " saw " + filled[0] + " of " + len + " tokens");
        return out;
    }

    private static Map<String, float[]> pick(Map<String, float[]> w, String... names) {
        Map<String, float[]> m = new LinkedHashMap<>();
        for (String s : names) m.put(s, w.get(s));
        return m;
    }

    private static void log(Consumer<String> log, int l, String group, Awq.Search s) {
        if (log != null) log.accept(String.format("blk.%d %s: α = %.2f, output error %.4g (α = 0: %.4g)", l, group, s.alpha(), s.loss(), s.lossAtZero()));
    }
}
