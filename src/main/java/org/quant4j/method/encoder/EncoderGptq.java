package org.quant4j.method.encoder;

import org.quant4j.kernel.MatMul;
import org.quant4j.method.calib.SequentialCalibration;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * GPTQ with two additions that bring 4-bit encoders closer to their float model (issue 8, item 4):
 * <ul>
 *   <li><b>clipped static grids</b>: each (row, group) takes the range [p·min, p·max] for the p in
 *       1, 1 − 1/grid, …, 1 − maxShrink whose quantized group has the least Σ_i H_ii (w_i − ŵ_i)², H_ii the mean
 *       squared input of column i (GPTQ's {@code quant.py} has the unweighted form with |e|^2.4, {@code mse=True}).
 *       GPTQ then quantizes column by column on those fixed grids, compensating the clipping error with the rest.</li>
 *   <li><b>mixed precision</b>: the layers a pattern names (say {@code ffn_down}) are GPTQ'd at 8 bits, the rest at
 *       the options' bits; the Hessian is shared.</li>
 * </ul>
 * Act-order and static groups are on whenever groups are used (the grids are chosen once, before the column loop).
 */
public final class EncoderGptq {
    private EncoderGptq() {}

    /**
     * @param clip        search clipped group ranges (false: GPTQ's min/max grid)
     * @param maxShrink   smallest range tried, as 1 − maxShrink of min/max (0.2)
     * @param grid        shrink steps per unit (100)
     * @param eightBit    weights GPTQ'd at 8 bits instead (null: none)
     */
    public record Options(boolean clip, double maxShrink, int grid, Pattern eightBit) {
        public Options {
            if (!(maxShrink >= 0 && maxShrink < 1)) throw new Q4jException("clip search: max shrink must be in [0, 1), not " + maxShrink);
            if (grid < 1) throw new Q4jException("clip search: grid must be positive");
        }

        public static Options clipped() { return new Options(true, 0.2, 100, null); }

        public Options withEightBit(Pattern p) { return new Options(clip, maxShrink, grid, p); }
    }

    public static Model apply(Model model, int[][] samples, Gptq.Options gptq, Options o, Consumer<String> log) {
        if (gptq.groupSize() == 0) throw new Q4jException("encoder GPTQ: clipped grids need groups (a group size > 0)");
        Gptq.Options g = gptq.withActOrder(true).withStaticGroups(true);
        Gptq.Options g8 = new Gptq.Options(8, gptq.symmetric(), gptq.groupSize(), true, true, gptq.percdamp(), gptq.blockSize(), gptq.fp16Scales());
        return SequentialCalibration.run(model, samples, (layer, names, cols) -> new SequentialCalibration.Job() {
            final Gptq.Hessian h = new Gptq.Hessian(cols);

            @Override public void observe(float[] x, int tokens) { h.add(x, tokens); }

            @Override public Map<String, Tensor> finish(Model current) {
                h.release();
                double[] hessian = h.values();
                float[] diag = new float[cols];                                // (cols) H_ii
                for (int i = 0; i < cols; i++) diag[i] = (float) hessian[i * cols + i];
                Gptq.Prepared prep = Gptq.prepare(hessian, cols, g, log);
                Map<String, Tensor> out = new LinkedHashMap<>();
                for (String name : names) {
                    boolean eight = o.eightBit() != null && o.eightBit().matcher(name).find();
                    Gptq.Options go = eight ? g8 : g;
                    Tensor t = current.tensor(name);
                    Gptq.StaticGrid grid = o.clip() && !eight ? (w, rows, c, opt, scale, zero) -> clippedGrid(w, rows, c, opt, diag, o, scale, zero) : null;
                    Gptq.Result r = Gptq.quantize(MatMul.toFloats(t), (int) t.rows(), (int) t.cols(), prep, go, grid);
                    out.put(name, r.toTensor(name));
                    if (log != null) log.accept(String.format("%s: %s%s, error %.4g", name, go.describe(), grid != null ? " clipped grid" : "", r.loss()));
                }
                return out;
            }
        }, null);
    }

    /** For each (row, group) of w (rows, cols): the shrink of its min/max range with the least H_ii-weighted squared error. */
    static void clippedGrid(float[] w, int rows, int cols, Gptq.Options g, float[] diag, Options o, float[] scale, float[] zero) {
        int gs = g.groupSize(), groups = (cols + gs - 1) / gs, maxq = g.maxq();
        int steps = (int) Math.round(o.maxShrink() * o.grid());
        float[] best = new float[2];
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < groups; k++) {
                int off = r * cols + k * gs, n = Math.min(gs, cols - k * gs);
                float xmin = 0, xmax = 0;
                for (int i = 0; i < n; i++) { xmin = Math.min(xmin, w[off + i]); xmax = Math.max(xmax, w[off + i]); }
                double bestErr = Double.POSITIVE_INFINITY;
                for (int s = 0; s <= steps; s++) {
                    float p = 1f - (float) s / o.grid();
                    float[] sz = grid(p * xmin, p * xmax, g, maxq);
                    double err = 0;
                    for (int i = 0; i < n && err < bestErr; i++) {
                        float x = w[off + i];
                        float q = Math.clamp((float) Math.rint(x / sz[0]) + sz[1], 0f, (float) maxq);
                        float e = x - sz[0] * (q - sz[1]);
                        err += (double) diag[k * gs + i] * e * e;
                    }
                    if (err < bestErr) { bestErr = err; best[0] = sz[0]; best[1] = sz[1]; }
                }
                scale[r * groups + k] = best[0];
                zero[r * groups + k] = best[1];
            }
        }
    }

    /** GPTQ's quantizer grid for the range [xmin, xmax] (xmin ≤ 0 ≤ xmax): {scale, zero}, the scale rounded to F16 as stored. */
    static float[] grid(float xmin, float xmax, Gptq.Options g, int maxq) {
        if (g.symmetric()) {
            xmax = Math.max(Math.abs(xmin), xmax);
            if (xmin < 0) xmin = -xmax;
        }
        if (xmin == 0 && xmax == 0) { xmin = -1; xmax = 1; }
        float s = (xmax - xmin) / maxq;
        if (g.fp16Scales()) {
            s = Float.float16ToFloat(Float.floatToFloat16(s));
            if (s == 0) s = Float.float16ToFloat((short) 1);
        }
        float z = g.symmetric() ? (maxq + 1) / 2 : (float) Math.rint(-xmin / s);
        if (g.fp16Scales()) z = Math.clamp(z, 0f, (float) maxq);
        return new float[]{s, z};
    }
}
