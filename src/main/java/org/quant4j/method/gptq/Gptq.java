package org.quant4j.method.gptq;

import org.quant4j.format.IntQuantType;
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
 * <p>Precision: H is accumulated in double; the damped Hessian's Cholesky factor and its inverse are computed in double
 * and only the final upper factor is rounded to float; the per-column loop and the lazy updates run in float, like
 * the reference. Hinv's upper factor is computed as J·chol(J H J)⁻¹·J (J reverses the order), which equals the
 * reference's cholesky(cholesky_inverse(cholesky(H)), upper=True) exactly in arithmetic and needs one factorisation
 * instead of two.
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

    /** H = 2/n Σ_samples X Xᵀ, kept as the reference's running average: H ← H·n/(n+1) + 2/(n+1) · X Xᵀ. */
    public static final class Hessian {
        public final int cols;
        private final double[] h;     // (cols, cols)
        private float[] xxt;          // (cols, cols) one sample's X Xᵀ
        private int samples;

        public Hessian(int cols) {
            this.cols = cols;
            this.h = new double[Math.multiplyExact(cols, cols)];
        }

        /**
         * Adds one calibration sample: x (tokens, cols), the layer's inputs for each of its tokens. X Xᵀ is a symmetric
         * rank-tokens product: only its upper tiles are computed (float, {@link DenseKernels#gemmTN} on x itself, tiles
         * spread over the threads), the lower ones are mirrored, and the running average is kept in double.
         */
        public void add(float[] x, int tokens) {
            if (xxt == null) xxt = new float[cols * cols];
            int tiles = (cols + TILE - 1) / TILE, pairs = tiles * (tiles + 1) / 2;
            int[] tileRow = new int[pairs], tileCol = new int[pairs];  // (pairs) upper tiles, row by row
            for (int bi = 0, u = 0; bi < tiles; bi++) for (int bj = bi; bj < tiles; bj++, u++) { tileRow[u] = bi; tileCol[u] = bj; }
            Parallel.forRange(pairs, 1, (s, e) -> {
                for (int u = s; u < e; u++) {
                    int i0 = tileRow[u] * TILE, j0 = tileCol[u] * TILE, m = Math.min(TILE, cols - i0), n = Math.min(TILE, cols - j0);
                    for (int i = i0; i < i0 + m; i++) Arrays.fill(xxt, i * cols + j0, i * cols + j0 + n, 0f);
                    DenseKernels.gemmTN(m, n, tokens, 1f, x, i0, cols, x, j0, cols, xxt, i0 * cols + j0, cols);
                    if (i0 != j0) {                                      // the mirror tile below the diagonal
                        for (int i = i0; i < i0 + m; i++) for (int j = j0; j < j0 + n; j++) xxt[j * cols + i] = xxt[i * cols + j];
                    }
                }
            });
            double keep = (double) samples / (samples + 1);
            samples++;
            double add = 2.0 / samples;
            Parallel.forRange(cols, 16, (s, e) -> {
                for (int i = s * cols; i < e * cols; i++) h[i] = h[i] * keep + add * xxt[i];
            });
        }

        private static final int TILE = 128;

        public int samples() { return samples; }

        /** Drops the per-sample scratch (cols² floats) once every sample has been added. */
        public void release() { xxt = null; }

        /** The accumulated H (cols, cols); a live view. */
        public double[] values() { return h; }
    }

    // ---- the inverse Hessian -----------------------------------------------------------------------------------

    /**
     * Everything GPTQ needs from H, shared by the layers that read the same input (q, k, v; gate, up).
     *
     * @param dead      columns whose H_ii was 0
     * @param perm      perm[j] = original column of position j (identity without act-order)
     * @param hinv      (cols, cols) upper Cholesky factor of (H_perm + damp·I)⁻¹, in permuted order
     * @param percdamp  the dampening that succeeded (raised ×10 after each failed factorisation)
     */
    public record Prepared(int cols, boolean[] dead, int[] perm, float[] hinv, double percdamp) {}

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
        double[] r = new double[Math.multiplyExact(cols, cols)];         // (cols, cols) J (H_perm + damp·I) J, then its factor
        for (int attempt = 0; ; attempt++) {
            double damp = percdamp * meanDiag;
            int n = cols;
            Parallel.forRange(n, 16, (s, e) -> {
                for (int i = s; i < e; i++) {
                    int pi = perm[n - 1 - i];
                    for (int j = 0; j < n; j++) r[i * n + j] = i == j ? diag[pi] + damp : hessian[pi * n + perm[n - 1 - j]];
                }
            });
            float[] hinv = upperCholeskyOfInverse(r, cols);
            if (hinv != null) return new Prepared(cols, dead, perm, hinv, percdamp);
            if (attempt == 6) throw new Q4jException("GPTQ: the Hessian (" + cols + " columns) is not positive definite even with damping " + percdamp);
            if (log != null) log.accept("GPTQ: Cholesky failed with damping " + percdamp + " × mean(diag H); retrying with " + percdamp * 10);
            percdamp *= 10;
        }
    }

    /**
     * U upper with UᵀU = P⁻¹, rounded to float, or null when P is not positive definite; {@code reversed} holds J P J
     * (J reverses the order) and is overwritten. With J P J = M Mᵀ (M lower), P⁻¹ = (J M⁻¹ J)ᵀ (J M⁻¹ J), and J M⁻¹ J
     * is upper triangular with a positive diagonal: the Cholesky factor the reference gets from
     * {@code cholesky(cholesky_inverse(cholesky(P)), upper=True)}. All in double.
     */
    static float[] upperCholeskyOfInverse(double[] reversed, int n) {
        if (!upperCholesky(reversed, n)) return null;                     // reversed's upper triangle: Mᵀ
        double[] minv = lowerInverseOfTranspose(reversed, n);            // (n, n) lower: M⁻¹
        float[] u = new float[n * n];                                    // (n, n) upper: J M⁻¹ J
        Parallel.forRange(n, 16, (s, e) -> {
            for (int i = s; i < e; i++) for (int j = i; j < n; j++) u[i * n + j] = (float) minv[(n - 1 - i) * n + (n - 1 - j)];
        });
        return u;
    }

    /** Rows per panel of the blocked factorisation and inverse; columns per parallel work unit. */
    private static final int PANEL = 64, CHUNK = 64;

    /**
     * In place, the upper Cholesky factor U (UᵀU = A) of a symmetric (n, n) A, in A's upper triangle (the strict lower
     * triangle is left as scratch); false when A is not positive definite. Left-looking by panels of 64 rows: a panel
     * first takes every row above it in one product, A[k0:k1, k0:] −= U[:k0, k0:k1]ᵀ U[:k0, k0:] ({@link
     * DenseKernels#gemmTN}, columns spread over the threads), then its diagonal block is factored and the rest of its
     * rows solved against it.
     */
    static boolean upperCholesky(double[] a, int n) {
        for (int k0 = 0; k0 < n; k0 += PANEL) {
            int k1 = Math.min(k0 + PANEL, n), rows = k1 - k0;
            if (k0 > 0) {
                int kk = k0;
                Parallel.forRange(chunks(n - k0), 1, (s, e) -> {
                    for (int c = s; c < e; c++) {
                        int j0 = kk + c * CHUNK, j1 = Math.min(n, j0 + CHUNK);
                        DenseKernels.gemmTN(rows, j1 - j0, kk, -1.0, a, kk, n, a, j0, n, a, kk * n + j0, n);
                    }
                });
            }
            for (int i = k0; i < k1; i++) {                              // the diagonal block, right-looking
                double d = a[i * n + i];
                if (!(d > 0)) return false;
                double uii = Math.sqrt(d);
                a[i * n + i] = uii;
                for (int j = i + 1; j < k1; j++) a[i * n + j] /= uii;
                for (int i2 = i + 1; i2 < k1; i2++) DenseKernels.axpy(-a[i * n + i2], a, i * n + i2, a, i2 * n + i2, k1 - i2);
            }
            if (k1 < n) {                                                // U[k0:k1, k1:] = U_kk⁻ᵀ A[k0:k1, k1:]
                int kk0 = k0;
                Parallel.forRange(chunks(n - k1), 1, (s, e) -> {
                    for (int c = s; c < e; c++) {
                        int j0 = k1 + c * CHUNK, len = Math.min(n, j0 + CHUNK) - j0;
                        for (int i = kk0; i < k1; i++) {
                            double uii = a[i * n + i];
                            for (int j = j0; j < j0 + len; j++) a[i * n + j] /= uii;
                            for (int i2 = i + 1; i2 < k1; i2++) DenseKernels.axpy(-a[i * n + i2], a, i * n + j0, a, i2 * n + j0, len);
                        }
                    }
                });
            }
        }
        return true;
    }

    /**
     * M⁻¹ (lower, (n, n)) for M = Uᵀ, U upper in u's upper triangle. Forward substitution by panels of 64 rows:
     * Y[I, :i0] = −M[I, :i0] Y[:i0, :i0] (a {@link DenseKernels#gemmTN} with M[I, :] = U[:, I]ᵀ, each column chunk
     * summing only over the rows where Y's lower triangle is nonzero), then the panel is solved against M_II.
     */
    static double[] lowerInverseOfTranspose(double[] u, int n) {
        double[] y = new double[n * n];                                  // (n, n) lower
        for (int i0 = 0; i0 < n; i0 += PANEL) {
            int i1 = Math.min(i0 + PANEL, n), rows = i1 - i0, ii0 = i0;
            for (int i = i0; i < i1; i++) y[i * n + i] = 1;
            if (i0 > 0) {
                int units = chunks(i0);
                Parallel.forRange(units, 1, (s, e) -> {
                    for (int v = s; v < e; v++) {
                        int c = v % 2 == 0 ? v / 2 : units - 1 - v / 2;  // long and short chunks alternate: balanced threads
                        int j0 = c * CHUNK, j1 = Math.min(ii0, j0 + CHUNK);
                        DenseKernels.gemmTN(rows, j1 - j0, ii0 - j0, -1.0, u, j0 * n + ii0, n, y, j0 * n + j0, n, y, ii0 * n + j0, n);
                    }
                });
            }
            Parallel.forRange(chunks(i1), 1, (s, e) -> {
                for (int c = s; c < e; c++) {
                    int j0 = c * CHUNK, j1 = Math.min(i1, j0 + CHUNK);
                    for (int i = ii0; i < i1; i++) {
                        int len = Math.min(j1, i + 1) - j0;              // row i is zero right of its diagonal
                        if (len <= 0) continue;
                        double mii = u[i * n + i];
                        for (int j = j0; j < j0 + len; j++) y[i * n + j] /= mii;
                        for (int i2 = i + 1; i2 < i1; i2++) DenseKernels.axpy(-u[i * n + i2], y, i * n + j0, y, i2 * n + j0, len);
                    }
                }
            });
        }
        return y;
    }

    private static int chunks(int columns) { return (columns + CHUNK - 1) / CHUNK; }

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
        float[] hinv = prep.hinv();                                      // (cols, cols) upper
        int[] codes = new int[rows * cols];                              // (rows, cols) permuted order
        int tile = 64, tiles = (rows + tile - 1) / tile;                // rows per task: each packed panel of Hinv serves 64 rows
        double[] tileLoss = new double[tiles];
        Parallel.forRange(tiles, 1, (t0, t1) -> {
            float[] w1 = new float[tile * blockSize];                    // (tile, block) the block being quantized
            float[] err = new float[tile * blockSize];                   // (tile, block) (w − q) / Hinv_jj
            for (int t = t0; t < t1; t++) {
                int r0 = t * tile, nr = Math.min(tile, rows - r0);
                double loss = 0;
                for (int i1 = 0; i1 < cols; i1 += blockSize) {
                    int i2 = Math.min(i1 + blockSize, cols), count = i2 - i1;
                    for (int rr = 0; rr < nr; rr++) System.arraycopy(w, (r0 + rr) * cols + i1, w1, rr * blockSize, count);
                    for (int i = 0; i < count; i++) {
                        int j = i1 + i;
                        if (gs > 0 && !o.staticGroups() && j % gs == 0) {
                            for (int rr = 0; rr < nr; rr++) findParams(w, (r0 + rr) * cols + j, Math.min(gs, cols - j), o, scale, zero, (r0 + rr) * groups + j / gs);
                        }
                        float d = hinv[j * cols + j];
                        for (int rr = 0; rr < nr; rr++) {
                            int p = (r0 + rr) * groups + groupOf[j];
                            float s = scale[p], z = zero[p];
                            float x = w1[rr * blockSize + i];
                            float q = Math.clamp((float) Math.rint(x / s) + z, 0f, (float) maxq);
                            codes[(r0 + rr) * cols + j] = (int) q;
                            float e = (x - s * (q - z)) / d;
                            loss += (double) e * e;
                            err[rr * blockSize + i] = e;
                            FloatKernels.axpy(-e, hinv, j * cols + j + 1, w1, rr * blockSize + i + 1, count - i - 1);
                        }
                    }
                    if (i2 < cols) {                                    // W[:, i2:] −= Err · Hinv[i1:i2, i2:]
                        DenseKernels.gemm(nr, cols - i2, count, -1f, err, 0, blockSize, hinv, i1 * cols + i2, cols, w, r0 * cols + i2, cols);
                    }
                }
                tileLoss[t] = loss / 2;
            }
        });
        int[] out = identity ? codes : new int[rows * cols];             // (rows, cols) original order
        if (!identity) for (int r = 0; r < rows; r++) for (int j = 0; j < cols; j++) out[r * cols + perm[j]] = codes[r * cols + j];
        int[] gIdx = new int[cols];
        for (int j = 0; j < cols; j++) gIdx[perm[j]] = groupOf[j];
        return new Result(rows, cols, o, out, scale, zero, gIdx, Arrays.stream(tileLoss).sum(), prep.percdamp());
    }

    /** Their Quantizer.find_params on x[off, off+n): min/max grid → scale[p], zero[p]. */
    static void findParams(float[] x, int off, int n, Options o, float[] scale, float[] zero, int p) {
        int maxq = o.maxq();
        float xmin = 0, xmax = 0;
        for (int i = 0; i < n; i++) {
            xmin = Math.min(xmin, x[off + i]);
            xmax = Math.max(xmax, x[off + i]);
        }
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
