package org.quant4j.method.awq;

import org.quant4j.format.IntQuantType;
import org.quant4j.kernel.MatMul;
import org.quant4j.kernel.Parallel;
import org.quant4j.method.calib.CalibrationMemory;
import org.quant4j.method.calib.SequentialCalibration;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * AWQ, activation-aware weight quantization (Lin et al. 2023, seed 002), as mit-han-lab/llm-awq's {@code pre_quant.py},
 * {@code auto_scale.py}, {@code auto_clip.py} and {@code quantizer.py} do it. One transformer block at a time:
 * <pre>
 *   run the float block over every calibration sample; keep the inputs of its linear layers
 *   (the next block's inputs are this float block's outputs)
 *   for each scaling group (prev op → layers, the module whose output is compared):
 *       attn_norm → q, k, v            module: attention (q,k,v → RoPE → softmax → o)
 *       v → o   (only when v and o have the same shape: no grouped-query attention, as llm-awq)
 *       ffn_norm → gate, up            module: the feed-forward (gate, up → SiLU ⊙ → down)
 *       up → down                      module: down
 *     s_x = mean_tokens |x|  (per input channel)
 *     for α in 0, 1/20, …, 19/20:
 *         s = max(s_x^α, 1e-4);  s ← s / sqrt(max(s) · min(s))
 *         W ← Q(W · diag(s)) · diag(s)⁻¹ for the group's layers; loss = mean (module(x) − module_float(x))²
 *     keep the s of the smallest loss
 *   fold every s: prev op's weight (RMSNorm weight, or the rows of v / up) ÷ s, the layers' columns × s;
 *   the kept inputs ÷ s                                       (the float model computes the same function)
 *   clip search, per layer but q and k, per (row, group):
 *       for i in 0 … max_shrink · n_grid − 1:  m = max|w_g| · (1 − i / n_grid);  ŵ = Q(clamp(w_g, −m, m))
 *           error = mean_tokens (x_g · (ŵ − w_g))²        on about 512 evenly spaced tokens
 *       w_g ← clamp(w_g, −m*, m*) for the m* of least error
 *   quantize: Q below, codes stored as quant4j integer groups
 * </pre>
 * Q is llm-awq's pseudo_quantize_tensor with zero point: per group, scale = max(max − min, 1e-5) / (2^bits − 1),
 * zero = clamp(−round(min / scale), 0, 2^bits − 1), q = clamp(round(w / scale) + zero, 0, 2^bits − 1), ŵ = scale ·
 * (q − zero), round half to even (torch.round); without zero point scale = max(max|w|, 1e-5) / (2^(bits−1) − 1) and
 * q ∈ [−2^(bits−1), 2^(bits−1) − 1]. The scale is rounded to F16 (the stored form) before it is used, in the search
 * and in the final quantization alike, so the stored model is the one the search measured. Rows whose length is not a
 * multiple of the group size end in a shorter group (llm-awq asserts divisibility; quant4j's groups allow it).
 *
 * <p>The clip error mean_t (x_g · d)² is computed as dᵀ G_g d with G_g = mean_t x_g x_gᵀ, the same quantity in fewer
 * operations. Everything else measures what llm-awq measures, on all calibration tokens.
 */
public final class Awq {
    private Awq() {}

    /**
     * @param groupSize  columns per group, 0 for one group per row
     * @param zeroPoint  asymmetric groups (llm-awq's and AutoAWQ's default); false: symmetric
     * @param nGrid      α grid points in [0, 1) (20)
     * @param maxShrink  clip search: smallest max as a fraction of max|w| is 1 − maxShrink (0.5)
     * @param clipGrid   clip search grid (20; max_shrink · clipGrid shrink steps)
     * @param clipTokens tokens the clip search samples (512)
     * @param quantize   false: only search and fold the scales, leaving float weights (no clipping, no rounding)
     */
    public record Options(int bits, int groupSize, boolean zeroPoint, int nGrid, double maxShrink, int clipGrid,
                          int clipTokens, boolean clip, boolean quantize) {
        public Options {
            if (bits < 2 || bits > 8) throw new Q4jException("AWQ: bits must be 2..8, not " + bits);
            if (groupSize < 0) throw new Q4jException("AWQ: group size must be positive (or 0 for one group per row)");
            if (bits == 4 && groupSize % 2 != 0) throw new Q4jException("AWQ: 4-bit groups hold an even number of values");
            if (nGrid < 1 || clipGrid < 1 || clipTokens < 1) throw new Q4jException("AWQ: grids and token counts must be positive");
            if (!(maxShrink >= 0 && maxShrink < 1)) throw new Q4jException("AWQ: max_shrink must be in [0, 1), not " + maxShrink);
        }

        public static Options of(int bits, int groupSize) {
            return new Options(bits, groupSize, true, 20, 0.5, 20, 512, true, true);
        }

        public Options withZeroPoint(boolean on) { return new Options(bits, groupSize, on, nGrid, maxShrink, clipGrid, clipTokens, clip, quantize); }

        public Options withClip(boolean on) { return new Options(bits, groupSize, zeroPoint, nGrid, maxShrink, clipGrid, clipTokens, on, quantize); }

        /** Only fold the searched scales into the float weights (the invariance check). */
        public Options scalesOnly() { return new Options(bits, groupSize, zeroPoint, nGrid, maxShrink, clipGrid, clipTokens, false, false); }

        public IntQuantType storageType() {
            return groupSize == 0 ? IntQuantType.perChannel(bits, !zeroPoint) : new IntQuantType(bits, groupSize, !zeroPoint);
        }

        public String describe() {
            return "AWQ W" + bits + (zeroPoint ? " asym" : " sym") + (groupSize == 0 ? " per-channel" : " g" + groupSize)
                    + (clip ? "" : " no-clip") + (quantize ? "" : " (scales folded, float weights)");
        }
    }

    // ---- the quantizer (llm-awq's pseudo_quantize_tensor) ------------------------------------------------------

    /**
     * Quantizes w[off, off+n) as one group. Writes the dequantized values to {@code deq} (may be null) and, when
     * {@code codes} is not null, the codes (unsigned 0..2^bits−1 with zero point, signed without) and returns
     * {scale, zero} via {@code params}.
     */
    static void quantizeGroup(float[] w, int off, int n, Options o, float[] deq, int deqOff, int[] codes, float[] params) {
        float scale, zero;
        int qmin, qmax;
        if (o.zeroPoint()) {
            float max = Float.NEGATIVE_INFINITY, min = Float.POSITIVE_INFINITY;
            for (int i = 0; i < n; i++) { max = Math.max(max, w[off + i]); min = Math.min(min, w[off + i]); }
            qmin = 0;
            qmax = (1 << o.bits()) - 1;
            scale = fp16(Math.max(max - min, 1e-5f) / qmax);
            zero = Math.clamp((float) -Math.rint(min / scale), 0f, (float) qmax);
        } else {
            float max = 0;
            for (int i = 0; i < n; i++) max = Math.max(max, Math.abs(w[off + i]));
            qmin = -(1 << (o.bits() - 1));
            qmax = (1 << (o.bits() - 1)) - 1;
            scale = fp16(Math.max(max, 1e-5f) / qmax);
            zero = 0;
        }
        for (int i = 0; i < n; i++) {
            float q = Math.clamp((float) Math.rint(w[off + i] / scale) + zero, (float) qmin, (float) qmax);
            if (deq != null) deq[deqOff + i] = (q - zero) * scale;
            if (codes != null) codes[off + i] = (int) q;
        }
        if (params != null) { params[0] = scale; params[1] = zero; }
    }

    /** x rounded to F16 (and at least the smallest F16 subnormal). */
    static float fp16(float x) {
        float h = Float.float16ToFloat(Float.floatToFloat16(x));
        return h == 0 ? Float.float16ToFloat((short) 1) : h;
    }

    static int groupLength(int cols, Options o) { return o.groupSize() == 0 ? cols : o.groupSize(); }

    /** Ŵ (rows, cols): every group of w quantized and dequantized. */
    public static float[] pseudoQuantize(float[] w, int rows, int cols, Options o) {
        float[] out = new float[rows * cols];                           // (rows, cols)
        int gs = groupLength(cols, o);
        Parallel.forRange(rows, 16, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                for (int c = 0; c < cols; c += gs) quantizeGroup(w, r * cols + c, Math.min(gs, cols - c), o, out, r * cols + c, null, null);
            }
        });
        return out;
    }

    /** The weight (rows, cols) quantized into quant4j integer groups (F16 scale, int8 zero point, packed codes). */
    public static Tensor toTensor(String name, float[] w, int rows, int cols, Options o) {
        IntQuantType type = o.storageType();
        long rowBytes = type.rowBytes(cols);
        MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * rows)]);
        int gs = groupLength(cols, o), half = o.zeroPoint() ? 1 << (o.bits() - 1) : 0;
        int[] codes = new int[rows * cols];                              // (rows, cols)
        float[] params = new float[2];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < type.groupsPerRow(cols); g++) {
                int c0 = g * gs, n = Math.min(gs, cols - c0);
                quantizeGroup(w, r * cols + c0, n, o, null, 0, codes, params);
                for (int i = 0; i < n; i++) codes[r * cols + c0 + i] -= half; // unsigned → quant4j's signed codes
                int zeroPoint = o.zeroPoint() ? (int) params[1] - half : 0;
                type.writeGroup(data, r * rowBytes + type.groupOffset(cols, g), n, params[0], zeroPoint, codes, r * cols + c0);
            }
        }
        return new Tensor(name, type, new long[]{rows, cols}, data);
    }

    // ---- the scale search ---------------------------------------------------------------------------------------

    /** s_x: mean |x| of each input channel over the tokens of x (tokens, cols). */
    static float[] meanAbs(float[] x, int tokens, int cols) {
        double[] sum = new double[cols];
        for (int t = 0; t < tokens; t++) for (int c = 0; c < cols; c++) sum[c] += Math.abs(x[t * cols + c]);
        float[] m = new float[cols];                                     // (cols)
        for (int c = 0; c < cols; c++) m[c] = (float) (sum[c] / tokens);
        return m;
    }

    /** {@link #meanAbs} of a buffer (tokens, cols), read in chunks of rows (the same sums in the same order). */
    static float[] meanAbs(CalibrationMemory.Activations x) {
        int cols = x.cols();
        double[] sum = new double[cols];
        for (long t0 = 0; t0 < x.rows(); t0 += CHUNK) {
            int n = (int) Math.min(CHUNK, x.rows() - t0);
            float[] xs = x.read(t0, n);
            for (int t = 0; t < n; t++) for (int c = 0; c < cols; c++) sum[c] += Math.abs(xs[t * cols + c]);
        }
        float[] m = new float[cols];                                     // (cols)
        for (int c = 0; c < cols; c++) m[c] = (float) (sum[c] / x.rows());
        return m;
    }

    /** s = max(s_x^α, 1e-4), divided by sqrt(max(s) · min(s)). */
    public static float[] scales(float[] meanAbs, double alpha) {
        float[] s = new float[meanAbs.length];                           // (cols)
        float max = 0, min = Float.POSITIVE_INFINITY;
        for (int c = 0; c < s.length; c++) {
            s[c] = Math.max((float) Math.pow(meanAbs[c], alpha), 1e-4f);
            max = Math.max(max, s[c]);
            min = Math.min(min, s[c]);
        }
        float norm = (float) Math.sqrt((double) max * min);
        for (int c = 0; c < s.length; c++) s[c] /= norm;
        return s;
    }

    /** Q(W · diag(s)) · diag(s)⁻¹ for W (rows, cols). */
    static float[] scaledQuantized(float[] w, int rows, int cols, float[] s, Options o) {
        return AwqKernels.scaledQuantized(w, rows, cols, s, o);
    }

    /** The loss of a group's module with the group's layers replaced (name → (rows, cols) weights). */
    @FunctionalInterface
    interface ModuleLoss {
        double loss(Map<String, float[]> candidate);
    }

    /** The searched scales of one group, with the losses of the grid (for the log). */
    record Search(float[] scales, double alpha, double loss, double lossAtZero) {}

    static Search search(float[] meanAbs, Map<String, float[]> layers, int cols, ModuleLoss module, Options o, Runnable step) {
        float[] best = null;
        double bestLoss = Double.POSITIVE_INFINITY, bestAlpha = -1, atZero = Double.NaN;
        for (int i = 0; i < o.nGrid(); i++) {
            double alpha = (double) i / o.nGrid();
            float[] s = scales(meanAbs, alpha);
            Map<String, float[]> candidate = new LinkedHashMap<>();
            for (var e : layers.entrySet()) candidate.put(e.getKey(), scaledQuantized(e.getValue(), e.getValue().length / cols, cols, s, o));
            double loss = module.loss(candidate);
            if (i == 0) atZero = loss;
            if (loss < bestLoss) { bestLoss = loss; bestAlpha = alpha; best = s; }
            step.run();
        }
        if (best == null) throw new Q4jException("AWQ: no finite loss on the α grid for " + layers.keySet());
        return new Search(best, bestAlpha, bestLoss, atZero);
    }

    // ---- the clip search ----------------------------------------------------------------------------------------

    /**
     * llm-awq's auto_clip_layer: for each (row, group) of w (rows, cols), the clamp max|w| · (1 − i / clipGrid),
     * i < maxShrink · clipGrid, whose quantized group changes the group's partial outputs on the sampled tokens of x
     * (tokens, cols) least. Returns the clamped weights.
     */
    public static float[] clip(float[] w, int rows, int cols, float[] x, int tokens, Options o) {
        int stride = Math.max(1, tokens / o.clipTokens()), sampled = (tokens + stride - 1) / stride;
        float[] xs = new float[sampled * cols];                          // (sampled, cols)
        for (int t = 0, k = 0; t < tokens; t += stride, k++) System.arraycopy(x, t * cols, xs, k * cols, cols);
        return clipSampled(w, rows, cols, xs, sampled, o);
    }

    /** {@link #clip} on the inputs x (tokens, cols) of a buffer, which may live in a file: only the sampled rows are read. */
    static float[] clip(float[] w, int rows, int cols, CalibrationMemory.Activations x, Options o) {
        long tokens = x.rows();
        int stride = (int) Math.max(1, tokens / o.clipTokens()), sampled = (int) ((tokens + stride - 1) / stride);
        float[] xs = new float[sampled * cols];                          // (sampled, cols)
        for (long t = 0; t < tokens; t += stride) x.read(t, 1, xs, (int) (t / stride) * cols);
        return clipSampled(w, rows, cols, xs, sampled, o);
    }

    /** The clip search on the sampled tokens xs (sampled, cols). */
    private static float[] clipSampled(float[] w, int rows, int cols, float[] x, int sampled, Options o) {
        int gs = groupLength(cols, o), groups = (cols + gs - 1) / gs;
        // G_g = mean over sampled tokens of x_g x_gᵀ, one (n, n) block per group
        float[][] gram = new float[groups][];                            // [group](n, n)
        Parallel.forRange(groups, 1, (g0, g1) -> {
            for (int g = g0; g < g1; g++) gram[g] = AwqKernels.gram(x, sampled, cols, g * gs, Math.min(gs, cols - g * gs));
        });
        float[] out = w.clone();                                         // (rows, cols)
        int steps = (int) (o.maxShrink() * o.clipGrid());
        if (steps == 0) return out;
        int chunk = Math.max(1, CLIP_VECTORS / steps);                   // rows whose candidates are scored together
        float[] d = new float[Math.min(rows, chunk) * steps * gs];       // (rows of the chunk · steps, n) candidate ŵ − w
        float[] gd = new float[d.length];                                // scratch of the quadratic forms
        double[] err = new double[Math.min(rows, chunk) * steps];        // (rows of the chunk · steps)
        float[] rowMax = new float[Math.min(rows, chunk)];               // (rows of the chunk) max|w_g| per row
        for (int g = 0; g < groups; g++) {
            int c0 = g * gs, n = Math.min(gs, cols - c0);
            float[] gm = gram[g];
            for (int r0 = 0; r0 < rows; r0 += chunk) {
                int rc = Math.min(chunk, rows - r0), base = r0;
                // the candidates: for each row and shrink step, d = Q(clamp(w_g, −m, m)) − w_g
                Parallel.forRange(rc, 4, (a, b) -> {
                    float[] cur = new float[n];
                    for (int r = a; r < b; r++) {
                        int off = (base + r) * cols + c0;
                        float orgMax = 0;
                        for (int i = 0; i < n; i++) orgMax = Math.max(orgMax, Math.abs(w[off + i]));
                        rowMax[r] = orgMax;
                        for (int s = 0; s < steps; s++) {
                            float max = orgMax * (1 - (float) s / o.clipGrid());
                            AwqKernels.clipCandidate(w, off, n, max, o, cur, d, (r * steps + s) * n);
                        }
                    }
                });
                // error = dᵀ G_g d, then the smallest (the first of equals, in shrink order)
                AwqKernels.quadraticForms(gm, n, d, rc * steps, err, gd);
                for (int r = 0; r < rc; r++) {
                    int off = (base + r) * cols + c0;
                    float orgMax = rowMax[r], bestMax = orgMax;
                    double minErr = Double.POSITIVE_INFINITY;
                    for (int s = 0; s < steps; s++) {
                        double e = err[r * steps + s];
                        if (e < minErr) { minErr = e; bestMax = orgMax * (1 - (float) s / o.clipGrid()); }
                    }
                    for (int i = 0; i < n; i++) out[off + i] = Math.clamp(w[off + i], -bestMax, bestMax);
                }
            }
        }
        return out;
    }

    /** Clip search: candidate vectors scored in one batch (rows · shrink steps). */
    private static final int CLIP_VECTORS = 2560;

    // ---- module outputs -----------------------------------------------------------------------------------------

    private static final int CHUNK = 512;

    /** Σ over tokens and outputs of (x · ΔWᵀ)², x (tokens, cols), ΔW (rows, cols): a linear layer's squared output error. */
    static double squaredOutput(float[] x, int tokens, int cols, float[] deltaW, int rows) {
        Tensor dw = view("ΔW", deltaW, rows, cols);
        float[] y = new float[Math.min(CHUNK, tokens) * rows];           // (chunk, rows)
        double sum = 0;
        for (int t0 = 0; t0 < tokens; t0 += CHUNK) {
            int n = Math.min(CHUNK, tokens - t0);
            float[] xs = n == tokens ? x : java.util.Arrays.copyOfRange(x, t0 * cols, (t0 + n) * cols);
            MatMul.matmul(dw, xs, y, n);
            for (int i = 0; i < n * rows; i++) sum += (double) y[i] * y[i];
        }
        return sum;
    }

    /** {@link #squaredOutput} over every row of a buffer x (tokens, cols), in the same chunks. */
    static double squaredOutput(CalibrationMemory.Activations x, float[] deltaW, int rows) {
        int cols = x.cols();
        Tensor dw = view("ΔW", deltaW, rows, cols);
        float[] y = new float[CHUNK * rows];                             // (chunk, rows)
        double sum = 0;
        for (long t0 = 0; t0 < x.rows(); t0 += CHUNK) {
            int n = (int) Math.min(CHUNK, x.rows() - t0);
            float[] xs = x.read(t0, n);                                  // (n, cols)
            MatMul.matmul(dw, xs, y, n);
            for (int i = 0; i < n * rows; i++) sum += (double) y[i] * y[i];
        }
        return sum;
    }

    static float[] minus(float[] a, float[] b) {
        float[] d = new float[a.length];
        Parallel.forRange(a.length, 1 << 16, (i0, i1) -> {
            for (int i = i0; i < i1; i++) d[i] = a[i] - b[i];
        });
        return d;
    }

    /** A float weight (rows, cols) as an F32 tensor over the array itself (no copy), for the GEMM. */
    static Tensor view(String name, float[] w, int rows, int cols) {
        return new Tensor(name, org.quant4j.format.GgmlType.F32, new long[]{rows, cols}, MemorySegment.ofArray(w).asSlice(0, (long) rows * cols * Float.BYTES));
    }

    /** Thrown (preallocated) to stop a block once the attention output has been seen. */
    private static final class Stop extends RuntimeException {
        Stop() { super(null, null, false, false); }
    }

    private static final Stop STOP = new Stop();

    /**
     * The attention module's input to its output projection, (len, qDim), for one sample's block input (len, dim),
     * with the model's (candidate) q, k, v weights: the block is stopped there.
     */
    static float[] attentionOutput(Llama llama, Llama.State state, int l, float[] blockInput, int len) {
        int qDim = llama.config.qDim();
        float[] out = new float[len * qDim];
        String wo = Model.attnOutput(l);
        int[] filled = {0};
        llama.setObserver((weight, x, batch, cols) -> {
            if (!weight.equals(wo)) return;
            System.arraycopy(x, 0, out, filled[0] * qDim, batch * qDim);
            filled[0] += batch;
            if (filled[0] == len) throw STOP;
        });
        try {
            llama.block(state, l, blockInput.clone(), len);
        } catch (Stop stop) {
            // the rest of the block is not needed
        } finally {
            llama.setObserver(null);
        }
        if (filled[0] != len) throw new Q4jException("AWQ: " + wo + " saw " + filled[0] + " of " + len + " tokens");
        return out;
    }

    // ---- the whole model ----------------------------------------------------------------------------------------

    /** The linear layers of a block, their GGUF short names. */
    static final String Q = "attn_q", K = "attn_k", V = "attn_v", O = "attn_output", GATE = "ffn_gate", UP = "ffn_up", DOWN = "ffn_down";

    /**
     * AWQ on every linear layer of every block: scale search and folding, clip search, quantization. The token
     * embedding, output head and norms other than the folded ones are left as they are.
     *
     * @param samples calibration token sequences (each of the same length)
     * @param log     per-group α and loss, per-block time; may be null
     */
    public static Model apply(Model model, int[][] samples, Options o, Consumer<String> log, SequentialCalibration.Progress progress) {
        if (samples.length == 0) throw new Q4jException("AWQ needs at least one calibration sample");
        if (progress == null) progress = SequentialCalibration.Progress.NONE;
        LlamaConfig c = model.config();
        int n = samples.length, len = samples[0].length, dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hidden = c.hiddenDim();
        for (int[] s : samples) if (s.length != len) throw new Q4jException("calibration samples must have the same length (" + len + " and " + s.length + ")");
        int tokens = n * len;
        boolean vToO = kvDim == dim && qDim == dim;                     // v_proj and o_proj of one shape (llm-awq's condition)
        if (!vToO && log != null) log.accept("AWQ: v and o differ in shape (grouped-query attention); o is not scaled (as llm-awq)");
        int groupsPerBlock = vToO ? 4 : 3;
        long perBlock = n + (long) groupsPerBlock * o.nGrid() + (o.clip() && o.quantize() ? 5 : 0);
        long total = perBlock * c.nLayers();
        long[] done = {0};
        SequentialCalibration.Progress p = progress;

        Llama floatModel = new Llama(model);
        CalibrationMemory memory = CalibrationMemory.current();
        int batch = SequentialCalibration.batchFor(c, len);
        Map<String, Tensor> replaced = new LinkedHashMap<>();
        try (CalibrationMemory.Activations hidden0 = memory.allocate("awq-hidden", tokens, dim)) { // (tokens, dim) the block's inputs
            for (int i = 0; i < n; i++) hidden0.write((long) i * len, len, floatModel.embed(samples[i]), 0);
            for (int l = 0; l < c.nLayers(); l++) {
                block(model, floatModel, l, hidden0, n, len, batch, o, log, replaced, memory, p, done, total);
                SequentialCalibration.releaseMapped(model, l);          // block l's mapped input weights are not read again
            }
        }
        return model.withTensors(replaced);
    }

    /** AWQ on block l: its layer inputs cached (in memory or in files, as {@code memory} decides), searched, folded, quantized. */
    private static void block(Model model, Llama floatModel, int l, CalibrationMemory.Activations hidden0, int n, int len, int batch, Options o,
                              Consumer<String> log, Map<String, Tensor> replaced, CalibrationMemory memory,
                              SequentialCalibration.Progress p, long[] done, long total) {
        LlamaConfig c = model.config();
        int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hidden = c.hiddenDim(), tokens = n * len;
        boolean vToO = kvDim == dim && qDim == dim;
        long started = System.nanoTime();
        String phases;
        String blk = "blk." + l + " ";
        try (CalibrationMemory.Activations xAttn = memory.allocate("awq-x-attn", tokens, dim);     // (tokens, dim)    input of q, k, v
             CalibrationMemory.Activations xO = memory.allocate("awq-x-o", tokens, qDim);          // (tokens, qDim)   input of o
             CalibrationMemory.Activations xFfn = memory.allocate("awq-x-ffn", tokens, dim);       // (tokens, dim)    input of gate, up
             CalibrationMemory.Activations xDown = memory.allocate("awq-x-down", tokens, hidden);  // (tokens, hidden) input of down
             CalibrationMemory.Activations blockInput = memory.allocate("awq-block-input", tokens, dim)) { // (tokens, dim)
            // 1. the float block's linear inputs over all samples; its outputs are the next block's inputs
            Map<String, CalibrationMemory.Activations> sink = Map.of(Model.attnQ(l), xAttn, Model.attnOutput(l), xO, Model.ffnGate(l), xFfn, Model.ffnDown(l), xDown);
            Llama.State state = floatModel.newState(len, batch);
            float[] h = new float[len * dim];                            // (len, dim) one sample's hidden state
            for (int i = 0; i < n; i++) {
                long base = (long) i * len;
                int[] filled = new int[1];
                Map<String, Integer> at = new java.util.HashMap<>();
                floatModel.setObserver((weight, x, b, cols) -> {
                    CalibrationMemory.Activations dst = sink.get(weight);
                    if (dst == null) return;
                    int pos = at.merge(weight, b, Integer::sum) - b;
                    dst.write(base + pos, b, x, 0);
                    filled[0] += b;
                });
                hidden0.read(base, len, h, 0);
                blockInput.write(base, len, h, 0);
                floatModel.block(state, l, h, len);
                floatModel.setObserver(null);
                hidden0.write(base, len, h, 0);
                if (filled[0] != 4 * len) throw new Q4jException("AWQ: block " + l + " showed " + filled[0] + " of " + 4 * len + " layer inputs");
                p.update(++done[0], total, blk + "inputs");
            }

            long tInputs = System.nanoTime();
            // 2. the float weights of the block
            Map<String, float[]> w = new LinkedHashMap<>();
            for (String s : List.of(Q, K, V, O, GATE, UP, DOWN)) w.put(s, MatMul.toFloats(model.tensor(Model.blk(l, s + ".weight"))));
            float[] attnNorm = MatMul.toFloats(model.tensor(Model.attnNorm(l))).clone();  // (dim)
            float[] ffnNorm = MatMul.toFloats(model.tensor(Model.ffnNorm(l))).clone();    // (dim)
            String vBiasName = Model.blk(l, "attn_v.bias");
            float[] vBias = model.has(vBiasName) ? MatMul.toFloats(model.tensor(vBiasName)).clone() : null;
            Runnable step = () -> p.update(++done[0], total, blk + "scale search");

            // 3. the scale searches, each on the float weights
            final int layer = l;
            Search attn = search(meanAbs(xAttn), pick(w, Q, K, V), dim, cand -> {
                Map<String, Tensor> t = new LinkedHashMap<>();
                t.put(Model.attnQ(layer), Tensor.ofFloats(Model.attnQ(layer), cand.get(Q), qDim, dim));
                t.put(Model.attnK(layer), Tensor.ofFloats(Model.attnK(layer), cand.get(K), kvDim, dim));
                t.put(Model.attnV(layer), Tensor.ofFloats(Model.attnV(layer), cand.get(V), kvDim, dim));
                Llama candidate = new Llama(model.withTensors(t));
                Llama.State st = candidate.newState(len, batch);
                float[] wo = w.get(O);
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    float[] a = attentionOutput(candidate, st, layer, blockInput.read((long) i * len, len), len); // (len, qDim)
                    float[] ref = xO.read((long) i * len, len);
                    // ‖(a − ref) · Woᵀ‖²: the attention module's output error (o in float)
                    sum += squaredOutput(minus(a, ref), len, qDim, wo, dim);
                }
                return sum / ((double) tokens * dim);
            }, o, step);
            log(log, l, "attn_q,attn_k,attn_v", attn);
            long tAttn = System.nanoTime();

            Search out = null;
            if (vToO) {
                out = search(meanAbs(xO), pick(w, O), qDim,
                        cand -> squaredOutput(xO, minus(cand.get(O), w.get(O)), dim) / ((double) tokens * dim), o, step);
                log(log, l, "attn_output", out);
            }
            long tO = System.nanoTime();

            Search ffn = search(meanAbs(xFfn), pick(w, GATE, UP), dim, cand -> {
                // the feed-forward module: down(silu(x·Gateᵀ) ⊙ (x·Upᵀ)), down in float; xDown is the float module's hidden
                Tensor gate = view("gate", cand.get(GATE), hidden, dim), up = view("up", cand.get(UP), hidden, dim);
                float[] g = new float[CHUNK * hidden], u = new float[CHUNK * hidden];                 // (chunk, hidden)
                double sum = 0;
                for (int t0 = 0; t0 < tokens; t0 += CHUNK) {
                    int m = Math.min(CHUNK, tokens - t0);
                    float[] xs = xFfn.read(t0, m);                                                     // (m, dim)
                    float[] ref = xDown.read(t0, m);                                                   // (m, hidden)
                    MatMul.matmul(gate, xs, g, m);
                    MatMul.matmul(up, xs, u, m);
                    float[] d = new float[m * hidden];
                    Parallel.forRange(m * hidden, 1 << 14, (i0, i1) -> {
                        for (int i = i0; i < i1; i++) d[i] = g[i] / (1f + (float) Math.exp(-g[i])) * u[i] - ref[i];
                    });
                    sum += squaredOutput(d, m, hidden, w.get(DOWN), dim);
                }
                return sum / ((double) tokens * dim);
            }, o, step);
            log(log, l, "ffn_gate,ffn_up", ffn);
            long tFfn = System.nanoTime();

            Search down = search(meanAbs(xDown), pick(w, DOWN), hidden,
                    cand -> squaredOutput(xDown, minus(cand.get(DOWN), w.get(DOWN)), dim) / ((double) tokens * dim), o, step);
            log(log, l, "ffn_down", down);
            long tDown = System.nanoTime();

            // 4. fold: prev op ÷ s, layers' columns × s, kept inputs ÷ s
            for (int i = 0; i < dim; i++) attnNorm[i] /= attn.scales()[i];
            for (String s : List.of(Q, K, V)) scaleColumns(w.get(s), dim, attn.scales());
            divideColumns(xAttn, attn.scales());
            if (out != null) {
                scaleRows(w.get(V), dim, out.scales(), vBias);
                scaleColumns(w.get(O), qDim, out.scales());
                divideColumns(xO, out.scales());
            }
            for (int i = 0; i < dim; i++) ffnNorm[i] /= ffn.scales()[i];
            for (String s : List.of(GATE, UP)) scaleColumns(w.get(s), dim, ffn.scales());
            divideColumns(xFfn, ffn.scales());
            scaleRows(w.get(UP), dim, down.scales(), null);
            scaleColumns(w.get(DOWN), hidden, down.scales());
            divideColumns(xDown, down.scales());

            // 5. clip (not q and k: their outputs meet in q·kᵀ), then quantize; each finished tensor leaves the heap
            Map<String, CalibrationMemory.Activations> inputOf = Map.of(V, xAttn, O, xO, GATE, xFfn, UP, xFfn, DOWN, xDown);
            for (String s : List.of(Q, K, V, O, GATE, UP, DOWN)) {
                String name = Model.blk(l, s + ".weight");
                Tensor t = model.tensor(name);
                int rows = (int) t.rows(), cols = (int) t.cols();
                float[] ws = w.get(s);
                if (o.quantize()) {
                    if (o.clip() && inputOf.containsKey(s)) {
                        ws = clip(ws, rows, cols, inputOf.get(s), o);
                        p.update(++done[0], total, blk + s + " clip");
                    }
                    replaced.put(name, memory.keep(toTensor(name, ws, rows, cols, o)));
                } else {
                    replaced.put(name, memory.keep(Tensor.ofFloats(name, ws, rows, cols)));
                }
                w.put(s, null);                                          // the float copy is not needed any more
            }
            replaced.put(Model.attnNorm(l), Tensor.ofFloats(Model.attnNorm(l), attnNorm, dim));
            replaced.put(Model.ffnNorm(l), Tensor.ofFloats(Model.ffnNorm(l), ffnNorm, dim));
            if (vBias != null && out != null) replaced.put(vBiasName, Tensor.ofFloats(vBiasName, vBias, kvDim));
            long end = System.nanoTime();
            phases = String.format(" (inputs %.1f, attention search %.1f, o search %.1f, feed-forward search %.1f, down search %.1f, fold, clip and quantize %.1f)",
                    (tInputs - started) / 1e9, (tAttn - tInputs) / 1e9, (tO - tAttn) / 1e9, (tFfn - tO) / 1e9, (tDown - tFfn) / 1e9, (end - tDown) / 1e9);
        }
        if (log != null) log.accept(String.format("blk.%d: %s, %.2f s%s", l, o.describe(), (System.nanoTime() - started) / 1e9, phases));
    }

    private static Map<String, float[]> pick(Map<String, float[]> w, String... names) {
        Map<String, float[]> m = new LinkedHashMap<>();
        for (String s : names) m.put(s, w.get(s));
        return m;
    }

    private static void log(Consumer<String> log, int l, String group, Search s) {
        if (log != null) log.accept(String.format("blk.%d %s: α = %.2f, output error %.4g (α = 0: %.4g)", l, group, s.alpha(), s.loss(), s.lossAtZero()));
    }

    /** W[:, c] ×= s[c] for W (rows, cols). */
    static void scaleColumns(float[] w, int cols, float[] s) {
        for (int i = 0; i < w.length; i++) w[i] *= s[i % cols];
    }

    /** x[:, c] ÷= s[c] for x (tokens, cols). */
    static void divideColumns(float[] x, int cols, float[] s) {
        for (int i = 0; i < x.length; i++) x[i] /= s[i % cols];
    }

    /** x[:, c] ÷= s[c] for a buffer x (tokens, cols). */
    static void divideColumns(CalibrationMemory.Activations x, float[] s) {
        for (long t0 = 0; t0 < x.rows(); t0 += CHUNK) {
            int n = (int) Math.min(CHUNK, x.rows() - t0);
            float[] xs = x.read(t0, n);
            divideColumns(xs, x.cols(), s);
            x.write(t0, n, xs, 0);
        }
    }

    /** W[r, :] ÷= s[r] for W (rows, cols), and the bias (rows) with it. */
    static void scaleRows(float[] w, int cols, float[] s, float[] bias) {
        for (int i = 0; i < w.length; i++) w[i] /= s[i / cols];
        if (bias != null) for (int r = 0; r < bias.length; r++) bias[r] /= s[r];
    }
}
