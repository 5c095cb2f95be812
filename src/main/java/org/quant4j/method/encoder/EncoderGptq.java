package org.quant4j.method.encoder;

import org.quant4j.kernel.Cholesky;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.calib.SequentialCalibration;
import org.quant4j.method.calib.TwinCalibration;
import org.quant4j.kernel.DenseKernels;
import org.quant4j.method.gptq.Gptq;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.util.LinkedHashMap;
import java.util.List;
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
 *   <li><b>float target</b> ({@link TwinJob}): GPTQ towards the float model's outputs W·X instead of W·X̃, so each
 *       layer also corrects the error the quantized layers before it introduced (GPTAQ's asymmetric calibration);
 *       <b>bias correction</b>: each layer's bias absorbs the mean output error left on the calibration tokens.</li>
 *   <li><b>scale refit</b> ({@link #refitScales}): with GPTQ's codes and zero points fixed, each row's group scales
 *       are solved jointly by least squares on the layer's objective (Ŵ − W*) H̃ (Ŵ − W*)ᵀ, W* the target (W, or the
 *       float target's W B); optionally GPTQ runs again on the refit grids and the scales are refit once more.</li>
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
     * @param floatTarget    GPTQ towards the float model's outputs W·X instead of W·X̃ ({@link TwinCalibration}, GPTAQ's asymmetric calibration)
     * @param ridge          the float target's least-squares damping, as a fraction of mean(diag H̃)
     * @param biasCorrection after quantizing, each layer's bias absorbs the mean output error over the calibration tokens
     * @param clipEachEnd    asymmetric grids: search the shrink of the min and the max end apart, the pair with the least error
     * @param refit          scale refits after GPTQ (0: none; k: refit, then k − 1 times GPTQ on the refit grids and refit again)
     * @param biasLayers     with bias correction, the layers whose bias absorbs the error (null: every layer)
     * @param refitNorms     refit each block's LayerNorm γ, β so the quantized model's LayerNorm outputs match the float model's per channel ({@link TwinCalibration})
     */
    public record Options(boolean clip, double maxShrink, int grid, Pattern eightBit, boolean floatTarget, double ridge, boolean biasCorrection,
                          boolean clipEachEnd, int refit, Pattern biasLayers, boolean refitNorms) {
        public Options {
            if (!(maxShrink >= 0 && maxShrink < 1)) throw new Q4jException("clip search: max shrink must be in [0, 1), not " + maxShrink);
            if (grid < 1) throw new Q4jException("clip search: grid must be positive");
            if (!(ridge >= 0)) throw new Q4jException("float target: ridge must be ≥ 0, not " + ridge);
            if (refit < 0) throw new Q4jException("scale refit: rounds must be ≥ 0, not " + refit);
        }

        public Options(boolean clip, double maxShrink, int grid, Pattern eightBit) { this(clip, maxShrink, grid, eightBit, false, 0.01, false, false, 0, null, false); }

        public static Options clipped() { return new Options(true, 0.2, 100, null); }

        public Options withEightBit(Pattern p) { return new Options(clip, maxShrink, grid, p, floatTarget, ridge, biasCorrection, clipEachEnd, refit, biasLayers, refitNorms); }

        public Options withFloatTarget(boolean on, double ridge) { return new Options(clip, maxShrink, grid, eightBit, on, ridge, biasCorrection, clipEachEnd, refit, biasLayers, refitNorms); }

        public Options withBiasCorrection(boolean on) { return new Options(clip, maxShrink, grid, eightBit, floatTarget, ridge, on, clipEachEnd, refit, biasLayers, refitNorms); }

        /** Bias correction on the layers {@code p} names only (say {@code attn_output|ffn_down}, the two that write the residual stream). */
        public Options withBiasCorrection(Pattern p) { return new Options(clip, maxShrink, grid, eightBit, floatTarget, ridge, true, clipEachEnd, refit, p, refitNorms); }

        /** Asymmetric grids: shrink the group's min and max ends independently ((steps + 1)² ranges) instead of together. */
        public Options withClipEachEnd(boolean on) { return new Options(clip, maxShrink, grid, eightBit, floatTarget, ridge, biasCorrection, on, refit, biasLayers, refitNorms); }

        /** Each block's LayerNorm γ, β refit against the float model's LayerNorm outputs ({@link TwinCalibration}). */
        public Options withRefitNorms(boolean on) { return new Options(clip, maxShrink, grid, eightBit, floatTarget, ridge, biasCorrection, clipEachEnd, refit, biasLayers, on); }

        /** {@link #refitScales} after GPTQ, {@code rounds} times (GPTQ again on the refit grids between rounds). */
        public Options withRefit(int rounds) { return new Options(clip, maxShrink, grid, eightBit, floatTarget, ridge, biasCorrection, clipEachEnd, rounds, biasLayers, refitNorms); }
    }

    public static Model apply(Model model, int[][] samples, Gptq.Options gptq, Options o, Consumer<String> log) {
        if (gptq.groupSize() == 0) throw new Q4jException("encoder GPTQ: clipped grids need groups (a group size > 0)");
        Gptq.Options g = gptq.withActOrder(true).withStaticGroups(true);
        Gptq.Options g8 = new Gptq.Options(8, gptq.symmetric(), gptq.groupSize(), true, true, gptq.percdamp(), gptq.blockSize(), gptq.fp16Scales());
        if (o.floatTarget() || o.biasCorrection() || o.refitNorms()) {
            return TwinCalibration.run(model, samples, (layer, names, cols) -> new TwinJob(names, cols, g, g8, o, log), o.refitNorms());
        }
        return SequentialCalibration.run(model, samples, (layer, names, cols) -> new SequentialCalibration.Job() {
            final Gptq.Hessian h = new Gptq.Hessian(cols);

            @Override public void observe(float[] x, int tokens) { h.add(x, tokens); }

            @Override public Map<String, Tensor> finish(Model current) {
                h.release();
                return quantizeSet(current, names, h.values(), cols, null, g, g8, o, null, log);
            }
        }, null);
    }

    /**
     * One set of layers with the float model's output as GPTQ's target. With X̃ (cols, tokens) the layer's inputs in the
     * model quantized so far and X the float model's, the objective is ‖Q X̃ − W X‖² (GPTAQ's asymmetric calibration).
     * Its least-squares optimum among unquantized weights is W* = W M H̃⁻¹, M = X X̃ᵀ, H̃ = X̃ X̃ᵀ (damped towards W), and
     * because the residual W* X̃ − W X is orthogonal to X̃'s rows,
     * <pre>
     *   ‖Q X̃ − W X‖² = ‖(Q − W*) X̃‖² + ‖W* X̃ − W X‖²      for every Q,
     * </pre>
     * so GPTQ on W* with H̃ (the usual GPTQ, unchanged) minimises the asymmetric objective: each layer also corrects
     * what the quantized layers before it changed. With bias correction, b += mean_t(W x_t − Q x̃_t) afterwards.
     */
    static final class TwinJob implements TwinCalibration.Job {
        final List<String> names;
        final int cols;
        final Gptq.Options g, g8;
        final Options o;
        final Consumer<String> log;
        final Gptq.Hessian h;                                         // H̃ = 2/n Σ X̃ X̃ᵀ
        final double[] m;                                             // (cols, cols) Σ_t x_t x̃_tᵀ: m[i·cols + j] = Σ x[t,i] x̃[t,j]
        final double[] meanQ, meanF;                                  // (cols) Σ_t x̃_t, Σ_t x_t
        final float[] tile;                                           // (cols, cols) one sample's X X̃ᵀ
        long tokens;

        TwinJob(List<String> names, int cols, Gptq.Options g, Gptq.Options g8, Options o, Consumer<String> log) {
            this.names = names; this.cols = cols; this.g = g; this.g8 = g8; this.o = o; this.log = log;
            h = new Gptq.Hessian(cols);
            m = o.floatTarget() ? new double[cols * cols] : null;
            tile = o.floatTarget() ? new float[cols * cols] : null;
            meanQ = new double[cols];
            meanF = new double[cols];
        }

        @Override public void observe(float[] xq, float[] xf, int n) {
            h.add(xq, n);
            if (m != null) {
                java.util.Arrays.fill(tile, 0f);
                DenseKernels.gemmTN(cols, cols, n, 1f, xf, 0, cols, xq, 0, cols, tile, 0, cols);
                for (int i = 0; i < tile.length; i++) m[i] += tile[i];
            }
            for (int t = 0; t < n; t++) for (int i = 0; i < cols; i++) { meanQ[i] += xq[t * cols + i]; meanF[i] += xf[t * cols + i]; }
            tokens += n;
        }

        @Override public Map<String, Tensor> finish(Model current) {
            java.util.function.Function<double[], float[]> target = m == null ? null : hessian -> floatTargetMap(hessian, m, 2.0 / h.samples(), cols, o.ridge());
            return quantizeSet(current, names, h.values(), cols, target, g, g8, o, o.biasCorrection() ? this::correctBias : null, log);
        }

        /** b += mean_t(W x_t − Q x̃_t), the mean output error on the calibration tokens. */
        private void correctBias(Model current, String name, float[] w, Gptq.Result r, Map<String, Tensor> out) {
            if (o.biasLayers() != null && !o.biasLayers().matcher(name).find()) return;
            String biasName = name.replace(".weight", ".bias");
            float[] bias = MatMul.toFloats(current.tensor(biasName)).clone();    // (rows)
            float[] q = r.dequantize();                                         // (rows, cols)
            for (int row = 0; row < bias.length; row++) {
                double e = 0;
                for (int i = 0; i < cols; i++) e += w[row * cols + i] * meanF[i] - q[row * cols + i] * meanQ[i];
                bias[row] += (float) (e / tokens);
            }
            out.put(biasName, Tensor.ofFloats(biasName, bias, bias.length));
        }
    }

    /** What a set does after each layer's GPTQ (bias correction), given the layer's float weights w (rows, cols). */
    private interface AfterLayer {
        void accept(Model current, String name, float[] w, Gptq.Result r, Map<String, Tensor> out);
    }

    /**
     * GPTQ of each layer of a set on the set's Hessian (cols, cols): at 8 bits where {@link Options#eightBit} names it,
     * on clipped grids otherwise when {@link Options#clip}. {@code targetMap}, when given, turns the Hessian into B
     * (cols, cols) before GPTQ's preparation changes it, and each layer's target is W·B instead of W.
     */
    private static Map<String, Tensor> quantizeSet(Model current, List<String> names, double[] hessian, int cols,
                                                   java.util.function.Function<double[], float[]> targetMap,
                                                   Gptq.Options g, Gptq.Options g8, Options o, AfterLayer after, Consumer<String> log) {
        float[] diag = new float[cols];                                // (cols) H_ii
        for (int i = 0; i < cols; i++) diag[i] = (float) hessian[i * cols + i];
        float[] b = targetMap == null ? null : targetMap.apply(hessian); // (cols, cols)
        Gptq.Prepared prep = Gptq.prepare(hessian, cols, g, log);
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String name : names) {
            boolean eight = o.eightBit() != null && o.eightBit().matcher(name).find();
            Gptq.Options go = eight ? g8 : g;
            Tensor t = current.tensor(name);
            int rows = (int) t.rows();
            float[] w = MatMul.toFloats(t);                            // (rows, cols)
            float[] target = w;
            if (b != null) {
                target = new float[rows * cols];                       // (rows, cols) W* = W B
                DenseKernels.gemm(rows, cols, cols, 1f, w, 0, cols, b, 0, cols, target, 0, cols);
            }
            Gptq.StaticGrid grid = o.clip() && !eight ? (ww, r, c, opt, scale, zero) -> clippedGrid(ww, r, c, opt, diag, o, scale, zero) : null;
            Gptq.Result r = Gptq.quantize(target, rows, cols, prep, go, grid);
            String refit = "";
            for (int round = 1; round <= o.refit() && !eight; round++) {
                double[] before = new double[1], after1 = new double[1];
                float[] s = refitScales(r, target, damped(hessian, cols, r.percdamp()), before, after1);
                refit += String.format(", refit %d: error × %.3f", round, after1[0] / before[0]);
                if (round < o.refit()) {                                  // GPTQ again on the refit grids
                    float[] zero = r.zero();
                    r = Gptq.quantize(target, rows, cols, prep, go, (ww, rr, c, opt, scale, z) -> {
                        System.arraycopy(s, 0, scale, 0, s.length);
                        System.arraycopy(zero, 0, z, 0, zero.length);
                    });
                } else {
                    r = new Gptq.Result(r.rows(), r.cols(), r.options(), r.codes(), s, r.zero(), r.gIdx(), r.loss(), r.percdamp());
                }
            }
            out.put(name, r.toTensor(name));
            if (after != null) after.accept(current, name, w, r, out);
            if (log != null) log.accept(String.format("%s: %s%s%s, error %.4g%s", name, go.describe(), grid != null ? " clipped grid" : "", b != null ? " float target" : "", r.loss(), refit));
        }
        return out;
    }

    /**
     * Each group's scale refit with the codes q and zero points z fixed. Row by row, with u = q − z (cols) and the
     * target row t of W* (cols), the dequantized row is Σ_g s_g u_g (u_g: u on group g's columns, 0 elsewhere), so
     * the layer's objective (ŵ − t) H (ŵ − t)ᵀ is a quadratic in the row's scales s (groups):
     * <pre>
     *   A s = c,   A_gh = u_gᵀ H u_h,   c_g = u_gᵀ H t            (A: (groups, groups))
     * </pre>
     * solved by Cholesky with a tiny ridge towards the current scales (a group whose codes all equal its zero keeps
     * its scale). The new scales are rounded to F16 as stored; a row keeps its old scales if the rounded ones do not
     * lower its error, and a non-positive solution keeps the old scale of that group.
     *
     * @param h      (cols, cols) the layer's Hessian H̃ (any positive scale)
     * @param before Σ over rows of the error with GPTQ's scales, written to [0]
     * @param after  the same with the returned scales
     * @return (rows, groups) the refit scales
     */
    static float[] refitScales(Gptq.Result r, float[] target, double[] h, double[] before, double[] after) {
        int rows = r.rows(), cols = r.cols(), groups = r.groups();
        int[] gIdx = r.gIdx();
        float[] scale = r.scale().clone();
        double[] u = new double[cols];                                // (cols) q − z of one row
        double[] v = new double[groups * cols];                       // (groups, cols) H u_g
        double[] ht = new double[cols];                               // (cols) H t
        double[] a = new double[groups * groups], c = new double[groups], s = new double[groups];
        boolean fp16 = r.options().fp16Scales();
        before[0] = 0;
        after[0] = 0;
        for (int row = 0; row < rows; row++) {
            for (int i = 0; i < cols; i++) u[i] = r.codes()[row * cols + i] - r.zero()[row * groups + gIdx[i]];
            java.util.Arrays.fill(v, 0);
            double tht = 0;
            for (int i = 0; i < cols; i++) {
                double sum = 0;
                int base = i * cols;
                for (int j = 0; j < cols; j++) {
                    double hij = h[base + j];
                    v[gIdx[j] * cols + i] += hij * u[j];
                    sum += hij * target[row * cols + j];
                }
                ht[i] = sum;
                tht += target[row * cols + i] * sum;
            }
            java.util.Arrays.fill(a, 0);
            java.util.Arrays.fill(c, 0);
            for (int i = 0; i < cols; i++) {
                int g = gIdx[i];
                c[g] += u[i] * ht[i];
                for (int k = 0; k < groups; k++) a[g * groups + k] += u[i] * v[k * cols + i];
            }
            double mean = 0;
            for (int g = 0; g < groups; g++) mean += a[g * groups + g];
            double lambda = 1e-9 * Math.max(mean / groups, 1e-30);
            double[] f = a.clone();
            for (int g = 0; g < groups; g++) { s[g] = scale[row * groups + g]; f[g * groups + g] += lambda; }
            double e0 = quadratic(a, c, s, tht, groups);
            double[] x = new double[groups];
            for (int g = 0; g < groups; g++) x[g] = c[g] + lambda * s[g];
            double[] solved = Cholesky.upper(f, groups) ? solveUpper(f, x, groups) : null;
            double e1 = e0;
            if (solved != null) {
                double[] cand = new double[groups];
                for (int g = 0; g < groups; g++) {
                    float sg = (float) solved[g];
                    if (fp16) sg = Float.float16ToFloat(Float.floatToFloat16(sg));
                    cand[g] = sg > 0 && Double.isFinite(sg) ? sg : s[g];
                }
                double e = quadratic(a, c, cand, tht, groups);
                if (e < e0) {
                    e1 = e;
                    for (int g = 0; g < groups; g++) scale[row * groups + g] = (float) cand[g];
                }
            }
            before[0] += e0;
            after[0] += e1;
        }
        return scale;
    }

    /** H + damp · mean(diag H) · I, a copy (cols, cols). */
    static double[] damped(double[] h, int cols, double damp) {
        double mean = 0;
        for (int i = 0; i < cols; i++) mean += h[i * cols + i];
        mean /= cols;
        double[] d = h.clone();
        for (int i = 0; i < cols; i++) d[i * cols + i] += damp * mean;
        return d;
    }

    /** sᵀ A s − 2 sᵀ c + tᵀ H t. */
    private static double quadratic(double[] a, double[] c, double[] s, double tht, int n) {
        double e = tht;
        for (int g = 0; g < n; g++) {
            double as = 0;
            for (int k = 0; k < n; k++) as += a[g * n + k] * s[k];
            e += s[g] * as - 2 * s[g] * c[g];
        }
        return e;
    }

    /** x solving UᵀU x = b for U in u's upper triangle (n, n). */
    private static double[] solveUpper(double[] u, double[] b, int n) {
        double[] y = b.clone();
        for (int i = 0; i < n; i++) {                                 // Uᵀ y = b
            for (int k = 0; k < i; k++) y[i] -= u[k * n + i] * y[k];
            y[i] /= u[i * n + i];
        }
        for (int i = n - 1; i >= 0; i--) {                            // U x = y
            for (int k = i + 1; k < n; k++) y[i] -= u[i * n + k] * y[k];
            y[i] /= u[i * n + i];
        }
        return y;
    }

    /**
     * B = (M + λI)(H̃ + λI)⁻¹ (cols, cols) with M = scale · m, λ = ridge · mean(diag H̃): W* = W B minimises
     * ‖W* X̃ − W X‖² + λ‖W* − W‖² (the ridge pulls W* towards W, not towards 0; λ → ∞ gives W). Solved in double through
     * {@link Cholesky}: H̃ + λI = UᵀU, Z = U⁻¹ U⁻ᵀ (M + λI)ᵀ, B = Zᵀ.
     */
    static float[] floatTargetMap(double[] hessian, double[] m, double scale, int n, double ridge) {
        double mean = 0;
        for (int i = 0; i < n; i++) mean += hessian[i * n + i];
        mean /= n;
        double lambda = Math.max(ridge * mean, 1e-12);
        double[] u = new double[n * n];                               // (n, n) H̃ + λI, then U in its upper triangle
        for (int i = 0; i < n * n; i++) u[i] = hessian[i];
        for (int i = 0; i < n; i++) u[i * n + i] += lambda;
        if (!Cholesky.upper(u, n)) throw new Q4jException("float target: H̃ + λI is not positive definite (ridge " + ridge + ")");
        double[] z = new double[n * n];                               // (n, n) Mᵀ, then U⁻ᵀ Mᵀ, then Z
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) z[i * n + j] = scale * m[j * n + i] + (i == j ? lambda : 0);
        for (int i = 0; i < n; i++) {                                 // forward: Uᵀ Y = Mᵀ, row by row (Uᵀ[i][k] = U[k][i])
            for (int k = 0; k < i; k++) {
                double f = u[k * n + i];
                if (f != 0) for (int j = 0; j < n; j++) z[i * n + j] -= f * z[k * n + j];
            }
            double inv = 1 / u[i * n + i];
            for (int j = 0; j < n; j++) z[i * n + j] *= inv;
        }
        for (int i = n - 1; i >= 0; i--) {                            // backward: U Z = Y
            for (int k = i + 1; k < n; k++) {
                double f = u[i * n + k];
                if (f != 0) for (int j = 0; j < n; j++) z[i * n + j] -= f * z[k * n + j];
            }
            double inv = 1 / u[i * n + i];
            for (int j = 0; j < n; j++) z[i * n + j] *= inv;
        }
        float[] b = new float[n * n];                                 // (n, n) B = Zᵀ
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) b[i * n + j] = (float) z[j * n + i];
        return b;
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
                int pairs = o.clipEachEnd() && !g.symmetric() ? steps + 1 : 1; // the min end's shrinks, when searched apart from the max end's
                for (int s = 0; s < (steps + 1) * pairs; s++) {
                    float pMax = 1f - (float) (s % (steps + 1)) / o.grid(), pMin = pairs == 1 ? pMax : 1f - (float) (s / (steps + 1)) / o.grid();
                    float[] sz = grid(pMin * xmin, pMax * xmax, g, maxq);
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
