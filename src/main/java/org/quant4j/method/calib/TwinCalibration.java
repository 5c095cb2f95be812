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

    public static Model run(Model model, int[][] samples, Method method) {
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
                for (int i = 0; i < n; i++) {
                    seen[0] = null;
                    try {
                        q.block(l, xq[i].clone(), samples[i].length);
                    } catch (Seen stop) {
                        // the rest of the block is not needed
                    }
                    if (seen[0] == null || seen[0].length != samples[i].length * cols) throw new Q4jException("twin calibration: " + first + " input not seen");
                    job.observe(seen[0], floatInputs[s][i], samples[i].length);
                }
                replaced.putAll(job.finish(current));
                current = model.withTensors(replaced);
            }
            Bert q = new Bert(current);
            for (int i = 0; i < n; i++) q.block(l, xq[i], samples[i].length);
        }
        return current;
    }
}
