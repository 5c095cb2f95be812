package org.quant4j.method.smoothquant;

import org.quant4j.kernel.MatMul;
import org.quant4j.method.actquant.ChannelStats;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * SmoothQuant (Xiao et al., seed 003): activation outliers sit in a few input channels, so divide each channel j of
 * a linear layer's input by s_j and multiply the matching weight column by s_j, Y = (X diag(s)⁻¹)(diag(s) Wᵀ), which
 * moves quantization difficulty from activations into weights:
 * <pre>
 *   s_j = max|X_j|^α / max|W_j|^(1−α)        α = 0.5 by default (the migration strength)
 * </pre>
 * max|X_j| comes from calibration text; max|W_j| is over every layer that reads the input. The division is folded
 * into the RMSNorm weight that produces the input, so the smoothed model costs nothing at run time: q, k and v share
 * attn_norm, gate and up share ffn_norm. As in the authors' Llama code (smooth_ln_fcs_llama_like), the inputs of the
 * output projection (produced by attention over v) and of the down projection (produced by SiLU(gate) ⊙ up) are not
 * smoothed: no norm precedes them, and folding into v is only exact per kv-head, into up only for the product.
 * The result is still a float model (identical function); quantize it with a {@code WeightActivationScheme}.
 */
public final class SmoothQuant {
    private SmoothQuant() {}

    public static final float DEFAULT_ALPHA = 0.5f;

    /** Returns the smoothed float model; the function is unchanged up to float rounding. */
    public static Model smooth(Model model, ChannelStats stats, float alpha) {
        LlamaConfig c = model.config();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (int l = 0; l < c.nLayers(); l++) {
            smoothGroup(model, stats, alpha, Model.attnNorm(l), out, Model.attnQ(l), Model.attnK(l), Model.attnV(l));
            smoothGroup(model, stats, alpha, Model.ffnNorm(l), out, Model.ffnGate(l), Model.ffnUp(l));
        }
        return model.withTensors(out);
    }

    /** The smoothing factors of one input shared by {@code weights}: s_j = max|X_j|^α / max|W_j|^(1−α). */
    public static float[] factors(float[] actAbsMax, float[][] weights, int cols, float alpha) {
        float[] s = new float[cols]; // (cols)
        for (int j = 0; j < cols; j++) {
            float wMax = 0;
            for (float[] w : weights) {
                for (int r = 0; r < w.length / cols; r++) wMax = Math.max(wMax, Math.abs(w[r * cols + j]));
            }
            // the authors clamp both maxima at 1e-5 so that dead channels give finite factors
            s[j] = (float) (Math.pow(Math.max(actAbsMax[j], 1e-5), alpha) / Math.pow(Math.max(wMax, 1e-5), 1 - alpha));
        }
        return s;
    }

    private static void smoothGroup(Model model, ChannelStats stats, float alpha, String normName, Map<String, Tensor> out, String... weightNames) {
        float[] actMax = stats.channelAbsMax().get(weightNames[0]);
        if (actMax == null) throw new org.quant4j.util.Q4jException(model.source() + ": no calibration statistics for " + weightNames[0]);
        int cols = actMax.length;
        float[][] w = new float[weightNames.length][];
        for (int i = 0; i < w.length; i++) w[i] = MatMul.toFloats(model.tensor(weightNames[i])); // (rows, cols)
        float[] s = factors(actMax, w, cols, alpha);
        float[] norm = MatMul.toFloats(model.tensor(normName)); // (cols)
        for (int j = 0; j < cols; j++) norm[j] /= s[j];
        out.put(normName, Tensor.ofFloats(normName, norm, cols));
        for (int i = 0; i < w.length; i++) {
            for (int r = 0; r < w[i].length / cols; r++) for (int j = 0; j < cols; j++) w[i][r * cols + j] *= s[j];
            Tensor t = model.tensor(weightNames[i]);
            out.put(weightNames[i], Tensor.ofFloats(weightNames[i], w[i], t.shape()));
        }
    }
}
