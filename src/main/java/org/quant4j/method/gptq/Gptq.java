package org.quant4j.method.gptq;

import org.quant4j.format.IntQuantType;
import org.quant4j.kernel.Cholesky;
import org.quant4j.kernel.DenseKernels;
import org.quant4j.kernel.FloatKernels;
import org.quant4j.kernel.MatMul;
import org.quant4j.kernel.Parallel;
import org.quant4j.method.calib.SequentialCalibration;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * GPTQ (Frantar et al. 2022, seeds 000/001), Algorithm 1, as IST-DASLab/gptq's {@code gptq.py} and {@code quant.py}
 * implement it. For a linear layer W [rows, cols] whose inputs X (cols, tokens) come from calibration data:
 * <pre>
 *   H = 2 X Xᵀ / n                                   (running average over samples, {@link Hessian})
 *   dead columns: H_ii = 0 → H_ii = 1, W[:, i] = 0
 *   act-order: columns permuted by decreasing diag(H)
 *   H += percdamp · mean(diag H) · I;  Hinv = Cholesky(H⁻¹)ᵀ  (upper)
 *   for each block of 128 columns, for each column j:
 *       q_j = quant(w_j);  err_j = (w_j − q_j) / Hinv_jj;  W[:, j:block end] −= err_j · Hinv[j, j:block end]
 *   after each block: W[:, block end:] −= Err · Hinv[block, block end:]   (the lazy batch update)
 * </pre>
 * Groups (32/64/128, or none = one scale per row) take their min/max grid when their first column is reached (on the
 * weights as updated so far, exactly as the reference: the full W, which the current block's updates have not yet
 * reached), or up front on the unpermuted W with static groups. The quantizer is theirs: range [min(x,0), max(x,0)],
 * symmetric → ±max|x| and zero = (maxq+1)/2, asymmetric zero = round(−xmin/scale), codes
 * q = clamp(round(x/scale) + zero, 0, maxq) with round half to even (torch.round), maxq = 2^bits − 1.
 *
 * <p>Precision and cost: H is accumulated in double (its upper tiles only); the damped Hessian is factored once, in
 * double, as H = T Tᵀ with T upper (the Cholesky factor of J H J, J reversing the order), and T is rounded to float.
 * The reference's Hinv = cholesky(cholesky_inverse(cholesky(H)), upper=True) is exactly T⁻¹ in arithmetic, but it is
 * never formed: the lazy batches run left-looking on T (see {@link #quantize}), so the n³/3 triangular inverse and
 * the reference's second and third O(n³) steps are not needed; only T's 128-column diagonal blocks are inverted. The
 * per-column loop and the batch products run in float, like the reference. (A float factorisation, as the reference
 * does it, was tried: 99.855 % of the codes agreed on the random fixture, under the 99.9 % the test asks.)
 *
 * <p>Storage: GPTQ's unsigned code q with zero z maps onto {@link IntQuantType}'s signed codes exactly:
 * q' = q − 2^(bits−1), z' = z − 2^(bits−1) (symmetric: z' = 0), value = scale · (q' − z'). With {@code fp16Scales}
 * the grid's scale is rounded to F16 before any weight is quantized with it, so the stored model is exactly the one
 * GPTQ optimised. Act-order with (non-static) groups makes groups of permuted columns (g_idx), which row-contiguous
 * groups cannot hold: {@link Result#toTensor} refuses it and {@link #apply} uses static groups then.
 */
public final class Gptq {
    private Gptq() {}

    /**
     * @param groupSize  columns per group, 0 for one group per row
     * @param percdamp   dampening as a fraction of mean(diag H) (0.01)
     * @param blockSize  columns per lazy batch (128)
     * @param fp16Scales round each scale to F16 (the stored form) before quantizing with it
     */
    public record Options(int bits, boolean symmetric, int groupSize, boolean actOrder, boolean staticGroups,
                          double percdamp, int blockSize, boolean fp16Scales) {
        public Options {
            if (bits < 2 || bits > 8) throw new Q4jException("GPTQ: bits must be 2..8, not " + bits);
            if (groupSize < 0) throw new Q4jException("GPTQ: group size must be positive (or 0 for one group per row)");
            if (!(percdamp > 0)) throw new Q4jException("GPTQ: percdamp must be positive, not " + percdamp);
            if (blockSize < 1) throw new Q4jException("GPTQ: block size must be positive");
        }

        public static Options of(int bits, boolean symmetric, int groupSize) {
            return new Options(bits, symmetric, groupSize, false, false, 0.01, 128, true);
        }

        public Options withActOrder(boolean on) { return new Options(bits, symmetric, groupSize, on, staticGroups, percdamp, blockSize, fp16Scales); }

        public Options withStaticGroups(boolean on) { return new Options(bits, symmetric, groupSize, actOrder, on, percdamp, blockSize, fp16Scales); }

        public Options withFp16Scales(boolean on) { return new Options(bits, symmetric, groupSize, actOrder, staticGroups, percdamp, blockSize, on); }

        public int maxq() { return (1 << bits) - 1; }

        public String describe() {
            return "GPTQ W" + bits + (symmetric ? " sym" : " asym") + (groupSize == 0 ? " per-channel" : " g" + groupSize)
                    + (actOrder ? " act-order" : "") + (staticGroups ? " static-groups" : "");
        }
    }

    // ---- the Hessian ------------------------------------------------------------------------------------------

    /**
     * H = 2/n Σ_samples X Xᵀ, kept as the reference's running average: H ← H·n/(n+1) + 2/(n+1) · X Xᵀ. Only the upper
     * tiles are accumulated (H is symmetric: a syrk, half the multiply-adds of the full product); the lower triangle is
     * mirrored from them when {@link #values} is asked for.
     */
    public static final class Hessian {
        public final int cols;
        private final double[] h;     // (cols, cols) upper tiles current, lower triangle mirrored on demand
        private int samples;
        private boolean mirrored = true;

        public Hessian(int cols) {
            this.cols = cols;
            this.h = new double[Math.multiplyExact(cols, cols)];
        }

        /**
         * Adds one calibration sample: x (tokens, cols), the layer's inputs for each of its tokens. Each upper tile of
         * X Xᵀ is computed in float ({@link DenseKernels#gemmTN} on x itself, tiles spread over the threads) into a
         * per-thread scratch tile and folded into the double running average at once, while it is in cache.
         */
        public void add(float[] x, int tokens) {
            int tiles = (cols + TILE - 1) / TILE, pairs = tiles * (tiles + 1) / 2;
            int[] tileRow = new int[pairs], tileCol = new int[pairs];  // (pairs) upper tiles, row by row
            for (int bi = 0, u = 0; bi < tiles; bi++) for (int bj = bi; bj < tiles; bj++, u++) { tileRow[u] = bi; tileCol[u] = bj; }
            double keep = (double) samples / (samples + 1);
            samples++;
            mirrored = false;
            double add = 2.0 / samples;
            Parallel.forRange(pairs, 1, (s, e) -> {
                float[] xxt = new float[TILE * TILE];                    // (TILE, TILE) one tile of X Xᵀ
                for (int u = s; u < e; u++) {
                    int i0 = tileRow[u] * TILE, j0 = tileCol[u] * TILE, m = Math.min(TILE, cols - i0), n = Math.min(TILE, cols - j0);
                    Arrays.fill(xxt, 0f);
                    DenseKernels.gemmTN(m, n, tokens, 1f, x, i0, cols, x, j0, cols, xxt, 0, TILE);
                    for (int i = 0; i < m; i++) {
                        int hr = (i0 + i) * cols + j0, tr = i * TILE;
                        for (int j = 0; j < n; j++) h[hr + j] = h[hr + j] * keep + add * xxt[tr + j];
                    }
                }
            });
        }

        private static final int TILE = 128;

        public int samples() { return samples; }

        /** Nothing to drop any more (the tiles are folded in as they are computed); kept for the callers. */
        public void release() {}

        /** The accumulated H (cols, cols), its lower triangle mirrored from the upper one; a live view. */
        public double[] values() {
            if (!mirrored) {
                int n = cols;
                Parallel.forRange(n, 16, (s, e) -> {
                    for (int i = s; i < e; i++) for (int j = 0; j < i; j++) h[i * n + j] = h[j * n + i];
                });
                mirrored = true;
            }
            return h;
        }
    }

    // ---- the inverse Hessian -----------------------------------------------------------------------------------

    /**
     * Everything GPTQ needs from H, shared by the layers that read the same input (q, k, v; gate, up).
     *
     * @param dead      columns whose H_ii was 0
     * @param perm      perm[j] = original column of position j (identity without act-order)
     * @param t         (cols, cols) upper triangular T with T Tᵀ = H_perm + damp·I, in permuted order. The reference's
     *                  Hinv (the upper Cholesky factor U of (H_perm + damp·I)⁻¹) is T⁻¹; {@link #quantize} works with T
     *                  itself and inverts only T's diagonal blocks.
     * @param percdamp  the dampening that succeeded (raised ×10 after each failed factorisation)
     */
    public record Prepared(int cols, boolean[] dead, int[] perm, float[] t, double percdamp) {}

    /** Seconds spent in each phase of the last {@link #prepare} on this thread (for {@code bench --gptq}). */
    public record PrepareTimes(double reorder, double cholesky, double transpose) {}

    private static final ThreadLocal<PrepareTimes> LAST_PREPARE = new ThreadLocal<>();

    public static PrepareTimes lastPrepareTimes() { return LAST_PREPARE.get(); }

    /**
     * CPU seconds (all threads together) in each phase of the last {@link #quantize} on this thread: the diagonal
     * blocks' inverses U_XX, the batch products W_X += (R_P T_PX) U_XX, and Algorithm 1's column loop with its
     * sub-block products (for {@code bench --gptq}).
     */
    public record QuantizeTimes(double inverses, double batchProducts, double columnLoop) {}

    private static final ThreadLocal<QuantizeTimes> LAST_QUANTIZE = new ThreadLocal<>();

    public static QuantizeTimes lastQuantizeTimes() { return LAST_QUANTIZE.get(); }

    private static final java.lang.management.ThreadMXBean THREAD_CPU = java.lang.management.ManagementFactory.getThreadMXBean();

    private static long cpuNanos() { return THREAD_CPU.getCurrentThreadCpuTime(); }

    public static Prepared prepare(double[] hessian, int cols, Options o, Consumer<String> log) {
        boolean[] dead = new boolean[cols];
        double[] diag = new double[cols];                                // (cols) diag H, dead columns set to 1
        for (int i = 0; i < cols; i++) {
            diag[i] = hessian[i * cols + i];
            if (diag[i] == 0) { dead[i] = true; diag[i] = 1; }
        }
        Integer[] order = new Integer[cols];
        for (int i = 0; i < cols; i++) order[i] = i;
        if (o.actOrder()) Arrays.sort(order, (a, b) -> Double.compare(diag[b], diag[a]));   // stable
        int[] perm = new int[cols];
        for (int i = 0; i < cols; i++) perm[i] = order[i];
        double meanDiag = 0;
        for (int i = 0; i < cols; i++) meanDiag += diag[i];
        meanDiag /= cols;
        double percdamp = o.percdamp();
        double[] r = new double[Math.multiplyExact(cols, cols)];         // (cols, cols) J (H_perm + damp·I) J's upper triangle, then its factor
        for (int attempt = 0; ; attempt++) {
            long t0 = System.nanoTime();
            double damp = percdamp * meanDiag;
            int n = cols;
            Parallel.forRange((n + 1) / 2, 8, (s, e) -> {                 // the upper triangle only (all the factorisation
                for (int u = s; u < e; u++) {                            // reads); rows u and n−1−u together, n + 1 entries
                    for (int i = u; ; i = n - 1 - u) {
                        int pi = perm[n - 1 - i];
                        r[i * n + i] = diag[pi] + damp;
                        for (int j = i + 1; j < n; j++) r[i * n + j] = hessian[pi * n + perm[n - 1 - j]];
                        if (i == n - 1 - u) break;                       // (once only for the middle row of an odd n)
                    }
                }
            });
            long t1 = System.nanoTime();
            boolean ok = Cholesky.upper(r, cols);                          // r's upper triangle: R, RᵀR = J P J
            long t2 = System.nanoTime();
            if (ok) {
                float[] t = reversedTranspose(r, cols);
                LAST_PREPARE.set(new PrepareTimes((t1 - t0) / 1e9, (t2 - t1) / 1e9, (System.nanoTime() - t2) / 1e9));
                return new Prepared(cols, dead, perm, t, percdamp);
            }
            if (attempt == 6) throw new Q4jException("GPTQ: the Hessian (" + cols + " columns) is not positive definite even with damping " + percdamp);
            if (log != null) log.accept("GPTQ: Cholesky failed with damping " + percdamp + " × mean(diag H); retrying with " + percdamp * 10);
            percdamp *= 10;
        }
    }

    /**
     * T = J Rᵀ J (J reverses the order), rounded to float, for R upper in r's upper triangle: T[i, j] = R[n−1−j, n−1−i],
     * upper triangular. With RᵀR = J P J, T Tᵀ = P, and U = T⁻¹ = J R⁻ᵀ J is upper with UᵀU = P⁻¹: the Cholesky factor
     * the reference gets from {@code cholesky(cholesky_inverse(cholesky(P)), upper=True)}. By tiles of 32, so both
     * sides stay in cache.
     */
    static float[] reversedTranspose(double[] r, int n) {
        float[] t = new float[n * n];                                    // (n, n) upper
        int b = 32, tiles = (n + b - 1) / b;
        Parallel.forRange(tiles, 1, (s, e) -> {
            float[] buf = new float[b * b];                              // (b, b) one tile of r, rows read along
            for (int bi = s; bi < e; bi++) {
                int i0 = bi * b, i1 = Math.min(n, i0 + b);
                for (int bj = bi; bj < tiles; bj++) {
                    int j0 = bj * b, j1 = Math.min(n, j0 + b);
                    // r's rows n−1−j (j in the tile) are n doubles apart, a multiple of 4 KiB for many n: reading them
                    // down a column would land every line in one L1 set, so the tile is copied along r's rows first
                    for (int j = j0; j < j1; j++) {
                        int src = (n - 1 - j) * n + (n - 1 - i0);
                        for (int i = i0; i < i1; i++) buf[(j - j0) * b + i - i0] = (float) r[src - (i - i0)];
                    }
                    for (int i = i0; i < i1; i++) {
                        for (int j = Math.max(i, j0); j < j1; j++) t[i * n + j] = buf[(j - j0) * b + i - i0];
                    }
                }
            }
        });
        return t;
    }

    /**
     * U upper with UᵀU = P⁻¹, rounded to float, or null when P is not positive definite; {@code reversed} holds J P J
     * and is overwritten. The reference's Hinv, whole (GPTQ itself needs only T and T's diagonal blocks inverted, see
     * {@link #quantize}); for tests.
     */
    static float[] upperCholeskyOfInverse(double[] reversed, int n) {
        if (!Cholesky.upper(reversed, n)) return null;
        double[] t = new double[n * n];                                  // (n, n) upper, T in double
        for (int i = 0; i < n; i++) for (int j = i; j < n; j++) t[i * n + j] = reversed[(n - 1 - j) * n + (n - 1 - i)];
        double[] u = upperInverse(t, n, 0, n);
        float[] out = new float[n * n];
        for (int i = 0; i < out.length; i++) out[i] = (float) u[i];
        return out;
    }

    /**
     * (T[i0:i1, i0:i1])⁻¹ for T upper (n, n): an upper (i1 − i0)² block, by back substitution in double. The inverse
     * of an upper triangular matrix's diagonal block is the same block of its inverse: U's.
     */
    static double[] upperInverse(double[] t, int n, int i0, int i1) {
        int m = i1 - i0;
        double[] u = new double[m * m];                                  // (m, m) upper
        for (int j = m - 1; j >= 0; j--) {
            u[j * m + j] = 1.0 / t[(i0 + j) * n + i0 + j];
            for (int i = j - 1; i >= 0; i--) {
                double s = 0;
                int ti = (i0 + i) * n + i0;
                for (int k = i + 1; k <= j; k++) s += t[ti + k] * u[k * m + j];
                u[i * m + j] = -s / t[ti + i];
            }
        }
        return u;
    }

    /** {@link #upperInverse(double[], int, int, int)} of float T's block, in double, rounded to float. */
    static float[] upperInverse(float[] t, int n, int i0, int i1) {
        int m = i1 - i0;
        double[] block = new double[m * m];                              // (m, m) T[i0:i1, i0:i1]
        for (int i = 0; i < m; i++) for (int j = i; j < m; j++) block[i * m + j] = t[(i0 + i) * n + i0 + j];
        double[] u = upperInverse(block, m, 0, m);
        float[] out = new float[m * m];
        for (int i = 0; i < out.length; i++) out[i] = (float) u[i];
        return out;
    }

    // ---- the algorithm -----------------------------------------------------------------------------------------

    /**
     * One layer's result.
     *
     * @param codes  (rows, cols) GPTQ's unsigned codes 0..maxq, in the original column order
     * @param scale  (rows, groups) where groups = ceil(cols / groupSize), or 1 per row
     * @param zero   (rows, groups) zero points 0..maxq (2^(bits−1) when symmetric)
     * @param gIdx   (cols) group of each original column
     * @param loss   Σ (w − q)² / Hinv_jj² / 2 over all weights, their "error"
     */
    public record Result(int rows, int cols, Options options, int[] codes, float[] scale, float[] zero, int[] gIdx,
                         double loss, double percdamp) {

        public int groups() { return scale.length / rows; }

        /** Ŵ (rows, cols) = scale · (q − zero). */
        public float[] dequantize() {
            float[] w = new float[rows * cols];
            int g = groups();
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    int p = r * g + gIdx[c];
                    w[r * cols + c] = scale[p] * (codes[r * cols + c] - zero[p]);
                }
            }
            return w;
        }

        /** Whether each group is a run of consecutive columns (what row-contiguous storage can hold). */
        public boolean naturalGroups() {
            int gs = options.groupSize();
            for (int c = 0; c < cols; c++) if (gIdx[c] != (gs == 0 ? 0 : c / gs)) return false;
            return true;
        }

        public IntQuantType storageType() {
            return options.groupSize() == 0 ? IntQuantType.perChannel(options.bits(), options.symmetric())
                    : new IntQuantType(options.bits(), options.groupSize(), options.symmetric());
        }

        /** The layer as a quant4j integer tensor (codes + F16 scale [+ int8 zero point] per group). */
        public Tensor toTensor(String name) {
            if (!naturalGroups()) {
                throw new Q4jException(name + ": act-order groups of permuted columns (g_idx) cannot be stored as quant4j "
                        + "integer groups; quantize with static groups");
            }
            IntQuantType type = storageType();
            int half = 1 << (options.bits() - 1);
            long rowBytes = type.rowBytes(cols);
            MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * rows)]);
            int[] q = new int[cols];                                     // (cols) signed codes of one row
            int g = groups();
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) q[c] = codes[r * cols + c] - half;
                for (int k = 0; k < type.groupsPerRow(cols); k++) {
                    int n = type.groupLength(cols, k), c0 = type.perChannel() ? 0 : k * type.groupSize();
                    int zeroPoint = options.symmetric() ? 0 : Math.round(zero[r * g + k]) - half;
                    type.writeGroup(data, r * rowBytes + type.groupOffset(cols, k), n, scale[r * g + k], zeroPoint, q, c0);
                }
            }
            return new Tensor(name, type, new long[]{rows, cols}, data);
        }
    }

    /** Columns per sub-block of the per-column loop (see {@link #quantize}). */
    private static final int SUB = 16;

    /** GPTQ on one weight matrix w (rows, cols) with a prepared Hessian. */
    public static Result quantize(float[] weight, int rows, int cols, Prepared prep, Options o) {
        return quantize(weight, rows, cols, prep, o, null);
    }

    /**
     * Chooses the static groups' grids: fills scale and zero (rows, groups) for w (rows, cols), dead columns already
     * zeroed, in the original column order. {@link #findParams} (min/max) is the default; a caller can search clipped
     * ranges instead (method/encoder's MSE grid).
     */
    @FunctionalInterface
    public interface StaticGrid {
        void fill(float[] w, int rows, int cols, Options o, float[] scale, float[] zero);
    }

    /** As {@link #quantize(float[], int, int, Prepared, Options)}; with static groups, {@code grid} (if not null) picks their grids. */
    public static Result quantize(float[] weight, int rows, int cols, Prepared prep, Options o, StaticGrid grid) {
        if (prep.cols() != cols) throw new Q4jException("GPTQ: Hessian of " + prep.cols() + " columns for a weight of " + cols);
        int maxq = o.maxq(), gs = o.groupSize(), blockSize = o.blockSize();
        int groups = gs == 0 ? 1 : (cols + gs - 1) / gs;
        float[] scale = new float[rows * groups], zero = new float[rows * groups]; // (rows, groups)
        float[] w0 = weight.clone();                                     // (rows, cols) original order
        if (gs == 0) {                                                   // quantizer.find_params(W) before dead columns
            for (int r = 0; r < rows; r++) findParams(w0, r * cols, cols, o, scale, zero, r);
        }
        for (int c = 0; c < cols; c++) if (prep.dead()[c]) for (int r = 0; r < rows; r++) w0[r * cols + c] = 0;
        if (gs > 0 && o.staticGroups() && grid != null) {
            grid.fill(w0, rows, cols, o, scale, zero);
        } else if (gs > 0 && o.staticGroups()) {
            for (int r = 0; r < rows; r++) {
                for (int g = 0; g < groups; g++) findParams(w0, r * cols + g * gs, Math.min(gs, cols - g * gs), o, scale, zero, r * groups + g);
            }
        }
        int[] perm = prep.perm();
        boolean identity = true;
        for (int j = 0; j < cols; j++) identity &= perm[j] == j;
        float[] w = identity ? w0 : new float[rows * cols];              // (rows, cols) permuted order (w0 itself without act-order)
        if (!identity) for (int r = 0; r < rows; r++) for (int j = 0; j < cols; j++) w[r * cols + j] = w0[r * cols + perm[j]];
        int[] groupOf = new int[cols];                                   // (cols) group of permuted column j
        for (int j = 0; j < cols; j++) groupOf[j] = gs == 0 ? 0 : o.staticGroups() ? perm[j] / gs : j / gs;
        // Left-looking lazy batches. With E the errors (w − q)/U_jj, Q the quantized values and W the weights as they
        // start, the algorithm keeps W = Q + E U column by column, so E = R T with R = W − Q (U = T⁻¹, T upper). The
        // reference's right-looking update W[:, i2:] −= E[:, i1:i2] U[i1:i2, i2:] after each batch leaves a batch's
        // columns X (at its start) at W_X − E_P U_PX, P = the columns before it; U_PX = −T_PP⁻¹ T_PX U_XX makes that
        // W_X + R_P T_PX U_XX: one product with T's columns and one with U's diagonal block, no inverse of the whole T.
        // X is the batch, widened to the end of the last group whose grid is taken inside it (those columns are read
        // as the reference's W holds them then).
        float[] t = prep.t();                                            // (cols, cols) upper
        int batches = (cols + blockSize - 1) / blockSize;
        int[] windowEnd = new int[batches];                              // (batches) end of the columns X each batch reads
        float[][] uWindow = new float[batches][];                        // (batches) U_XX = (T_XX)⁻¹, upper
        java.util.concurrent.atomic.LongAdder cpuInverses = new java.util.concurrent.atomic.LongAdder(),
                cpuProducts = new java.util.concurrent.atomic.LongAdder(), cpuLoop = new java.util.concurrent.atomic.LongAdder();
        Parallel.forRange(batches, 1, (s0, s1) -> {
            long c0 = cpuNanos();
            for (int b = s0; b < s1; b++) {
                int i1 = b * blockSize, i2 = Math.min(i1 + blockSize, cols), end = i2;
                if (gs > 0 && !o.staticGroups()) for (int j = i1; j < i2; j++) if (j % gs == 0) end = Math.max(end, Math.min(cols, j + gs));
                windowEnd[b] = end;
                uWindow[b] = upperInverse(t, cols, i1, end);
            }
            cpuInverses.add(cpuNanos() - c0);
        });
        int maxWindow = 0;
        for (int b = 0; b < batches; b++) maxWindow = Math.max(maxWindow, windowEnd[b] - b * blockSize);
        int window = maxWindow;
        int[] codes = new int[rows * cols];                              // (rows, cols) permuted order
        // rows per task: each packed panel of T serves a whole tile, so tiles are as tall as two per thread allow (64..256)
        int tile = Math.clamp((rows / (2 * Parallel.threads()) + 15) / 16 * 16, 64, 256), tiles = (rows + tile - 1) / tile;
        double[] tileLoss = new double[tiles];
        Parallel.forRange(tiles, 1, (t0, t1) -> {
            float[] w1 = new float[tile * window];                       // (tile, X) the batch's columns at its start
            float[] rt = new float[tile * window];                       // (tile, X) R_P T_PX
            float[] w1t = new float[window * tile];                      // (X, tile) the same transposed, updated within the batch
            float[] qt = new float[blockSize * tile];                    // (count, tile) codes of the batch's columns
            float[] deqt = new float[blockSize * tile];                  // (count, tile) their dequantized values
            float[] errt = new float[SUB * tile];                        // (SUB, tile) the errors e of one sub-block
            float[] sCol = new float[tile], zCol = new float[tile];      // (tile) the grid of the current column's group
            float[] lo = new float[tile], hi = new float[tile];          // (tile) a group's range per row
            for (int tt = t0; tt < t1; tt++) {
                int r0 = tt * tile, nr = Math.min(tile, rows - r0);
                double loss = 0;
                for (int b = 0; b < batches; b++) {
                    int i1 = b * blockSize, i2 = Math.min(i1 + blockSize, cols), count = i2 - i1, x = windowEnd[b] - i1;
                    float[] u = uWindow[b];                              // (x, x)
                    long c0 = cpuNanos();
                    for (int rr = 0; rr < nr; rr++) System.arraycopy(w, (r0 + rr) * cols + i1, w1, rr * x, x);
                    if (i1 > 0) {                                        // W_X += (R_P T_PX) U_XX
                        Arrays.fill(rt, 0, nr * x, 0f);
                        DenseKernels.gemm(nr, x, i1, 1f, w, r0 * cols, cols, t, i1, cols, rt, 0, x);
                        DenseKernels.gemm(nr, x, x, 1f, rt, 0, x, u, 0, x, w1, 0, x);
                    }
                    long c1 = cpuNanos();
                    cpuProducts.add(c1 - c0);
                    // Algorithm 1's column loop on the transposed batch: column i of the batch is row i of w1t, so each
                    // step runs across the tile's rows. Groups starting in the batch take their grids first, from the
                    // batch's start (the columns as the reference's W holds them when the group's first column comes).
                    transpose(w1, nr, x, w1t, tile);
                    if (gs > 0 && !o.staticGroups()) {
                        for (int j = (i1 + gs - 1) / gs * gs; j < i2; j += gs) {
                            DenseKernels.columnRange(nr, Math.min(gs, cols - j), w1t, (j - i1) * tile, tile, lo, hi);
                            for (int rr = 0; rr < nr; rr++) grid(lo[rr], hi[rr], o, scale, zero, (r0 + rr) * groups + j / gs);
                        }
                    }
                    // By sub-blocks of SUB columns: inside one, each column's error e_i updates the sub-block's later
                    // columns (w −= e_i U[i, i']); after it, the batch's remaining columns take the sub-block's errors in
                    // one product, W1[:, s1:count] −= E[:, s0:s1] U[s0:s1, s1:count].
                    int group = -1;
                    for (int s0 = 0; s0 < count; s0 += SUB) {
                        int s1 = Math.min(count, s0 + SUB);
                        for (int i = s0; i < s1; i++) {
                            int j = i1 + i;
                            if (groupOf[j] != group) {
                                group = groupOf[j];
                                for (int rr = 0; rr < nr; rr++) {
                                    sCol[rr] = scale[(r0 + rr) * groups + group];
                                    zCol[rr] = zero[(r0 + rr) * groups + group];
                                }
                            }
                            loss += DenseKernels.quantizeColumn(nr, w1t, i * tile, sCol, zCol, 0, maxq, u[i * x + i],
                                    qt, i * tile, deqt, i * tile, errt, (i - s0) * tile);
                            for (int i3 = i + 1; i3 < s1; i3++) FloatKernels.axpy(-u[i * x + i3], errt, (i - s0) * tile, w1t, i3 * tile, nr);
                        }
                        if (s1 < count) DenseKernels.gemmTN(count - s1, nr, s1 - s0, -1f, u, s0 * x + s1, x, errt, 0, tile, w1t, s1 * tile, tile);
                    }
                    for (int rr = 0; rr < nr; rr++) {                    // the codes, and R = W − Q
                        int row = (r0 + rr) * cols + i1;
                        for (int i = 0; i < count; i++) {
                            codes[row + i] = (int) qt[i * tile + rr];
                            w[row + i] -= deqt[i * tile + rr];
                        }
                    }
                    cpuLoop.add(cpuNanos() - c1);
                }
                tileLoss[tt] = loss / 2;
            }
        });
        LAST_QUANTIZE.set(new QuantizeTimes(cpuInverses.sum() / 1e9, cpuProducts.sum() / 1e9, cpuLoop.sum() / 1e9));
        int[] out = identity ? codes : new int[rows * cols];             // (rows, cols) original order
        if (!identity) for (int r = 0; r < rows; r++) for (int j = 0; j < cols; j++) out[r * cols + perm[j]] = codes[r * cols + j];
        int[] gIdx = new int[cols];
        for (int j = 0; j < cols; j++) gIdx[perm[j]] = groupOf[j];
        return new Result(rows, cols, o, out, scale, zero, gIdx, Arrays.stream(tileLoss).sum(), prep.percdamp());
    }

    /** dst[c·ldd + r] = src[r·cols + c] for r < rows, c < cols, by tiles of 8 × 8 (both sides stay in cache). */
    static void transpose(float[] src, int rows, int cols, float[] dst, int ldd) {
        for (int r0 = 0; r0 < rows; r0 += 8) {
            int r1 = Math.min(rows, r0 + 8);
            for (int c0 = 0; c0 < cols; c0 += 8) {
                int c1 = Math.min(cols, c0 + 8);
                for (int r = r0; r < r1; r++) for (int c = c0; c < c1; c++) dst[c * ldd + r] = src[r * cols + c];
            }
        }
    }

    /** Their Quantizer.find_params on x[off, off+n): min/max grid → scale[p], zero[p]. */
    static void findParams(float[] x, int off, int n, Options o, float[] scale, float[] zero, int p) {
        float xmin = 0, xmax = 0;
        for (int i = 0; i < n; i++) {
            xmin = Math.min(xmin, x[off + i]);
            xmax = Math.max(xmax, x[off + i]);
        }
        grid(xmin, xmax, o, scale, zero, p);
    }

    /** The grid of {@link #findParams} from the range [min(x, 0), max(x, 0)] of the values. */
    static void grid(float xmin, float xmax, Options o, float[] scale, float[] zero, int p) {
        int maxq = o.maxq();
        if (o.symmetric()) {
            xmax = Math.max(Math.abs(xmin), xmax);
            if (xmin < 0) xmin = -xmax;
        }
        if (xmin == 0 && xmax == 0) { xmin = -1; xmax = 1; }
        float s = (xmax - xmin) / maxq;
        if (o.fp16Scales()) {
            s = Float.float16ToFloat(Float.floatToFloat16(s));
            if (s == 0) s = Float.float16ToFloat((short) 1);             // the smallest F16 subnormal
        }
        float z = o.symmetric() ? (maxq + 1) / 2 : (float) Math.rint(-xmin / s);
        if (o.fp16Scales()) z = Math.clamp(z, 0f, (float) maxq);
        scale[p] = s;
        zero[p] = z;
    }

    // ---- the whole model ---------------------------------------------------------------------------------------

    /**
     * GPTQ on every linear layer of every block, block by block in sequential mode ({@link SequentialCalibration}):
     * each block sees the outputs of the already-quantized blocks before it, and inside a block q,k,v → o → gate,up
     * → down each see the outputs of the layers quantized before them. Act-order with groups uses static groups, the
     * form quant4j's integer groups store.
     *
     * @param samples calibration token sequences (each of the same length)
     * @param log     messages (damping retries, per-layer loss and time); may be null
     */
    public static Model apply(Model model, int[][] samples, Options options, Consumer<String> log, SequentialCalibration.Progress progress) {
        Options o = options.actOrder() && options.groupSize() > 0 && !options.staticGroups() ? options.withStaticGroups(true) : options;
        if (o != options && log != null) log.accept("GPTQ: act-order with groups of " + o.groupSize() + " uses static groups (stored groups are runs of consecutive columns)");
        return SequentialCalibration.run(model, samples, (layer, names, cols) -> new SequentialCalibration.Job() {
            final Hessian h = new Hessian(cols);

            @Override public void observe(float[] x, int tokens) { h.add(x, tokens); }

            @Override public Map<String, Tensor> finish(Model current) {
                h.release();
                Prepared prep = prepare(h.values(), cols, o, log == null ? null : m -> log.accept("blk." + layer + ": " + m));
                Map<String, Tensor> out = new LinkedHashMap<>();
                for (String name : names) {
                    long t0 = System.nanoTime();
                    Tensor t = current.tensor(name);
                    Result r = quantize(MatMul.toFloats(t), (int) t.rows(), (int) t.cols(), prep, o);
                    out.put(name, r.toTensor(name));
                    if (log != null) log.accept(String.format("%s: %s, error %.4g, %.2f s", name, o.describe(), r.loss(), (System.nanoTime() - t0) / 1e9));
                }
                return out;
            }
        }, progress);
    }
}
