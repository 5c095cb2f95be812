package org.quant4j.method.calib;

import org.quant4j.model.Bert;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@link SequentialCalibration} for encoders with a float twin: block by block, each set of layers (q,k,v → o → up →
 * down) sees both its input in the model quantized so far (X̃) and the same input in the float model (X), sample by
 * sample. Methods whose target is the float model's output (GPTAQ's asymmetric calibration, bias correction) need both.
 * <pre>
 *   x̃[n] = x[n] = embed(sample n)                                  (N, L, dim) twice
 *   for each block l:
 *       float block l over x[n]: the float inputs X of its four sets
 *       for each set: quantized-so-far block l over x̃[n] → X̃ of the set; job.observe(X̃, X); job.finish → tensors
 *       x̃[n] = quantized block l (x̃[n]);  x[n] = float block l (x[n])
 * </pre>
 * In memory (encoders are small): the two hidden-state sets and one block's float inputs. BERT only.
 */
public final class TwinCalibration {
    private TwinCalibration() {}

    /** A method's work on one set of layers. */
    public interface Job {
        /** One sample's input to the set in the quantized-so-far model, xq (tokens, cols), and in the float model, xf (tokens, cols). */
        void observe(float[] xq, float[] xf, int tokens);

        /** The set's new tensors by name (weights, and biases if the method changes them); {@code current} holds them as they are now. */
        Map<String, Tensor> finish(Model current);
    }

    @FunctionalInterface
    public interface Method {
        Job start(int layer, List<String> names, int cols);
    }

    /** Thrown (preallocated) to stop a block once the observed input is complete. */
    private static final class Seen extends RuntimeException {
        Seen() { super(null, null, false, false); }
    }

    private static final Seen SEEN = new Seen();

    public static Model run(Model model, int[][] samples, Method method) { return run(model, samples, method, false); }

    /**
     * As {@link #run(Model, int[][], Method)}; with {@code refitNorms} each block's two LayerNorms (float, kept float)
     * also get their γ, β refit so that their outputs in the quantized model match the float model's channel by
     * channel: per channel c, the least-squares line y_f ≈ a_c ỹ + b_c over the calibration tokens (ỹ the quantized
     * model's LayerNorm output, y_f the float one), then γ ← a γ, β ← a β + b, which maps ỹ to a ỹ + b exactly. The
     * attention LayerNorm is refit before ffn_up is quantized (on the up set's inputs), the output LayerNorm once the
     * block is done (on the block outputs), so what follows sees the corrected residual stream.
     */
    public static Model run(Model model, int[][] samples, Method method, boolean refitNorms) {
        if (!Bert.ARCHITECTURE.equals(model.config().architecture())) throw new Q4jException(model.source() + ": twin calibration is for BERT encoders");
        if (samples.length == 0) throw new Q4jException("calibration needs at least one sample");
        int n = samples.length, layers = model.config().nLayers();
        Bert floatModel = new Bert(model);
        float[][] xf = new float[n][], xq = new float[n][];              // [sample](len, dim) float and quantized-so-far hidden states
        for (int i = 0; i < n; i++) { xf[i] = floatModel.embeddings(samples[i], null); xq[i] = xf[i].clone(); }
        List<List<String>> sets = SequentialCalibration.BERT_TRUE_SEQUENTIAL;
        Model current = model;
        Map<String, Tensor> replaced = new LinkedHashMap<>();
        for (int l = 0; l < layers; l++) {
            final int layer = l;
            List<String> firsts = sets.stream().map(s -> Model.blk(layer, s.getFirst() + ".weight")).toList();
            float[][][] floatInputs = new float[sets.size()][n][];       // [set][sample](len, cols)
            for (int i = 0; i < n; i++) {
                int sample = i;
                floatModel.setObserver((weight, x, batch, cols) -> {
                    int s = firsts.indexOf(weight);
                    if (s < 0) return;
                    if (batch != samples[sample].length) throw new Q4jException("twin calibration: " + weight + " saw " + batch + " of " + samples[sample].length + " tokens at once");
                    floatInputs[s][sample] = java.util.Arrays.copyOf(x, batch * cols);
                });
                floatModel.block(l, xf[i], samples[i].length);            // also advances the float hidden states
            }
            floatModel.setObserver(null);
            for (int s = 0; s < sets.size(); s++) {
                String first = firsts.get(s);
                List<String> names = sets.get(s).stream().map(k -> Model.blk(layer, k + ".weight")).toList();
                int cols = (int) current.tensor(first).cols();
                Job job = method.start(l, names, cols);
                Bert q = new Bert(current);
                float[][] seen = new float[1][];
                q.setObserver((weight, x, batch, c) -> {
                    if (!weight.equals(first)) return;
                    seen[0] = java.util.Arrays.copyOf(x, batch * c);
                    throw SEEN;
                });
                float[][] inputs = new float[n][];                        // [sample](len, cols) the set's input in the quantized-so-far model
                for (int i = 0; i < n; i++) {
                    seen[0] = null;
                    try {
                        q.block(l, xq[i].clone(), samples[i].length);
                    } catch (Seen stop) {
                        // the rest of the block is not needed
                    }
                    if (seen[0] == null || seen[0].length != samples[i].length * cols) throw new Q4jException("twin calibration: " + first + " input not seen");
                    inputs[i] = seen[0];
                }
                if (refitNorms && first.endsWith("ffn_up.weight")) {
                    // the observed inputs are T·y where up reads its input through an online transform: fit on y = Tᵀ (T y)
                    String tName = Model.blk(layer, "ffn_up" + org.quant4j.model.Llama.INPUT_TRANSFORM);
                    Tensor t = current.has(tName) ? current.tensor(tName) : null;
                    float[][] yq = t == null ? inputs : rotate(transpose(t), inputs), yf = t == null ? floatInputs[s] : rotate(transpose(t), floatInputs[s]);
                    replaced.putAll(refitNorm(current, Model.blk(layer, "attn_output_norm"), yq, yf));
                    current = model.withTensors(replaced);
                    if (t != null) inputs = rotate(t, yq);
                }
                for (int i = 0; i < n; i++) job.observe(inputs[i], floatInputs[s][i], samples[i].length);
                replaced.putAll(job.finish(current));
                current = model.withTensors(replaced);
            }
            Bert q = new Bert(current);
            for (int i = 0; i < n; i++) q.block(l, xq[i], samples[i].length);
            if (refitNorms) {
                replaced.putAll(refitNorm(current, Model.blk(layer, "layer_output_norm"), xq, xf));
                current = model.withTensors(replaced);
            }
        }
        return current;
    }

    /** Tᵀ of a square F32 transform (cols, cols). */
    private static Tensor transpose(Tensor t) {
        int c = (int) t.cols();
        return Tensor.ofFloats(t.name() + ".T", org.quant4j.method.rotation.Rotations.transpose(org.quant4j.kernel.MatMul.toFloats(t), c, c), c, c);
    }

    /** Each row x of each (len, cols) array replaced by T·x. */
    private static float[][] rotate(Tensor t, float[][] x) {
        int c = (int) t.cols();
        float[][] out = new float[x.length][];
        for (int i = 0; i < x.length; i++) {
            out[i] = new float[x[i].length];
            org.quant4j.kernel.MatMul.matmul(t, x[i], out[i], x[i].length / c);
        }
        return out;
    }

    /**
     * The LayerNorm {@code norm} (γ = norm.weight, β = norm.bias, (dim) each) refit so that its outputs yq[sample]
     * (len, dim) map onto yf[sample] channel by channel by least squares; yq is updated in place to the new outputs.
     */
    static Map<String, Tensor> refitNorm(Model current, String norm, float[][] yq, float[][] yf) {
        float[] gamma = org.quant4j.kernel.MatMul.toFloats(current.tensor(norm + ".weight")).clone(); // (dim)
        float[] beta = org.quant4j.kernel.MatMul.toFloats(current.tensor(norm + ".bias")).clone();   // (dim)
        int dim = gamma.length;
        double[] sq = new double[dim], sf = new double[dim], sqq = new double[dim], sqf = new double[dim]; // (dim) Σ ỹ, Σ y, Σ ỹ², Σ ỹ y
        long tokens = 0;
        for (int i = 0; i < yq.length; i++) {
            int len = yq[i].length / dim;
            for (int t = 0; t < len; t++) {
                for (int c = 0; c < dim; c++) {
                    double a = yq[i][t * dim + c], b = yf[i][t * dim + c];
                    sq[c] += a; sf[c] += b; sqq[c] += a * a; sqf[c] += a * b;
                }
            }
            tokens += len;
        }
        float[] a = new float[dim], b = new float[dim];                  // (dim) y ≈ a ỹ + b
        for (int c = 0; c < dim; c++) {
            double mq = sq[c] / tokens, mf = sf[c] / tokens, var = sqq[c] / tokens - mq * mq, cov = sqf[c] / tokens - mq * mf;
            a[c] = var > 1e-12 ? (float) (cov / var) : 1f;
            b[c] = (float) (mf - a[c] * mq);
            beta[c] = a[c] * beta[c] + b[c];
            gamma[c] = a[c] * gamma[c];
        }
        for (float[] y : yq) for (int k = 0; k < y.length; k++) y[k] = a[k % dim] * y[k] + b[k % dim];
        Map<String, Tensor> out = new LinkedHashMap<>();
        out.put(norm + ".weight", Tensor.ofFloats(norm + ".weight", gamma, dim));
        out.put(norm + ".bias", Tensor.ofFloats(norm + ".bias", beta, dim));
        return out;
    }
}
