package org.quant4j.kernel;

import jdk.incubator.vector.*;
import org.quant4j.format.GgmlType;
import org.quant4j.format.IntQuantType;
import org.quant4j.format.StorageType;
import org.quant4j.format.ggml.BlockCodec;
import org.quant4j.format.ggml.GgmlCodecs;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * out = x · Wᵀ for a batch of tokens (prompt processing, sentence encoders): a cache-blocked float GEMM in the manner of
 * GotoBLAS / BLIS (Goto and van de Geijn, "Anatomy of high-performance matrix multiplication", 2008), for a weight W
 * [outDim, in] in any ggml storage type with a codec, or one of quant4j's integer types (whose rows are decoded whole).
 *
 * <p>Roles: the weight rows are BLIS's A (broadcast, one element at a time) and the tokens are B (vector lanes), so the
 * register tile holds {@link #MR} weight rows × {@link #NR} tokens of Cᵀ = W·xᵀ:
 * <ul>
 *   <li>x is packed once per call, transposed to xᵀ (in, T) with T the batch rounded up to 8 (zero tokens pad it),
 *       so that 8 tokens' values at one input index are one vector load;</li>
 *   <li>a thread takes a block of {@link #MC} weight rows; for each slice of {@link #KC} input columns it decodes that
 *       MC × KC piece of W once into a float buffer (vectorised decoders for F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K;
 *       the type's codec for every other block type), so each stored weight is decoded once per call, whatever the
 *       batch;</li>
 *   <li>the micro-kernel runs over the slice in runs of 32 columns (sums from zero, then added to C: short rounding
 *       chains): per input index 2 vector loads of xᵀ (16 tokens), 6 broadcasts of
 *       weights, 12 FMAs into 12 accumulator registers (6 rows × 16 tokens), the shape AVX2's 16 registers allow;</li>
 *   <li>partial sums live in a per-thread tile C (MC, T) across the KC slices and are written out transposed at the
 *       end of the row block.</li>
 * </ul>
 * Tile sizes by measurement ({@link GemmBench}, one thread on this machine's AVX2 cores): the 6 × 16 register tile
 * runs at about the FMA peak on data in L1 (4 × 24, with 16 vector values live, measured 4× slower); MC = 48, KC = 256 did as
 * well as 24 or 96 rows and 128 columns; packing xᵀ into contiguous 16-token panels was slower than the strided layout
 * at a batch of 64.
 *
 * <p>Token panels ({@link #PANELS}, the default): at batches in the hundreds (AWQ's module forwards, 512 tokens) the
 * strided xᵀ has its rows tp floats apart (2 KiB at 512 tokens), so a tile's 256 input indices fall in two L1 sets
 * and the 16-token piece of xᵀ it reads is fetched from L2 or beyond for every tile; and the old 6 × 16 tile, its
 * strides not constants, kept range checks and an imul per input index. The panel layout packs xᵀ per 16 tokens,
 * (in, 16) contiguous, and each 4-row micro-panel of the decoded weights as (KC, 4), so the 4 × 16 tile
 * ({@link #tile4x16}) reads both with constant strides: one base register each, no range checks, no spill (C2 hoists
 * a tile's broadcasts together; 6 × 16 and 5 × 16 spilled accumulators on these layouts). Each C element gets the
 * same fused multiply-adds in the same order as on the strided layout: the same bits (tested). GemmBench
 * {@code F32 -b 512 --layout}, one thread, CPU time, interleaved, on a loaded machine (load 7–9): 1.4–1.9×.
 *
 * <p>Why floats and not integer codes as {@link Q8Kernels} multiplies them: AVX2 has no int8 multiply-add the Vector
 * API reaches, so an integer product of 32 weights and 32 activation codes costs ~10 instructions (widen, two int16
 * multiplies, pair sums, convert, scale) per token, where decoded float weights cost 4 FMAs; here the decode is paid
 * once per weight for the whole batch, which is the amortisation the integer tile would buy.
 *
 * <p>For the types that llama.cpp multiplies in integers ({@link Q8Kernels}), {@link MatMul} first quantizes the
 * activations to 8 bits and hands this GEMM the values those codes stand for, so the product is the same function as
 * the integer kernels' up to float rounding order.
 *
 * <p>The scalar reference is {@link MatMul}'s row-by-row path with {@code Kernels.vector()} off; {@link #reference} is
 * a plain triple loop over decoded rows, for the parity tests.
 */
public final class Gemm {
    private Gemm() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B64 = ByteVector.SPECIES_64;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Weight rows per register tile. */
    static final int MR = 6;
    /** Tokens per register tile (two 8-lane vectors); a tail of 8 tokens takes a 6 × 8 tile. */
    static final int NR = 16;
    /** Input columns per slice: a multiple of every ggml block size (32, 256). */
    static final int KC = 256;
    /** Weight rows per thread block (a multiple of MR): the decoded slice is MC × KC floats = 48 KiB. */
    static final int MC = 48;
    /**
     * Weight rows per register tile on the panel layouts (4 × 16: 8 accumulators, 2 token vectors and the 4
     * broadcasts, which C2 hoists together: with 6 × 16 or 5 × 16 it spilled accumulators to the stack), and the row
     * block padded to it.
     */
    static final int MRP = 4, MCP = (MC + MRP - 1) / MRP * MRP;

    private static volatile boolean enabled = !"off".equalsIgnoreCase(System.getProperty("quant4j.gemm", "on"));

    /**
     * Whether {@link MatMul} hands batches to this GEMM (default) or runs its earlier row-by-row path
     * ({@code -Dquant4j.gemm=off}; for measuring one against the other).
     */
    public static boolean enabled() { return enabled; }

    public static void setEnabled(boolean on) { enabled = on; }

    /** Whether {@link #matmul} takes this storage type: the float types, every ggml type with a codec, quant4j's integer types. */
    public static boolean supports(StorageType type) {
        if (type instanceof IntQuantType) return true;
        if (!(type instanceof GgmlType g)) return false;
        return g == GgmlType.F32 || g == GgmlType.F16 || g == GgmlType.BF16 || GgmlCodecs.find(g) != null;
    }

    /** Per-thread buffers: the decoded weight slice and the C tile, grown as needed. */
    private static final class Buffers {
        float[] w = new float[MCP * KC]; // (MC, ldw) decoded weights of the current row block: a slice, or whole rows
        float[] c = new float[0];        // (MC, T) partial sums Cᵀ of the current row block
        float[] a = new float[MCP * KC]; // (MCP / MRP, KC, MRP) the slice of wb in micro-panels (panel layout only)
    }

    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);
    /** The caller's packed activations, reused between calls. */
    private static final ThreadLocal<float[]> XT = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * out[b·outDim + r] = Σ_i W[r, i]·x[b·in + i] for b in [0, batch), r in [0, outDim).
     *
     * @param w   weight [outDim, in], a {@link #supports supported} type
     * @param x   activations (batch, in)
     * @param out result (batch, outDim)
     */
    public static void matmul(Tensor w, float[] x, float[] out, int batch) {
        if (!supports(w.type())) throw new Q4jException("tensor " + w.name() + ": no GEMM for storage type " + w.type().name());
        // quant4j's integer types decode whole rows only: the row block is decoded once, (MC, in), and sliced in place
        GgmlType type = w.type() instanceof GgmlType g ? g : null;
        int in = (int) w.cols(), outDim = (int) w.rows(), ldw = type == null ? in : KC;
        if (type != null && in % type.blockSize() != 0) throw new Q4jException("tensor " + w.name() + ": row length " + in + " is not a multiple of the " + type + " block");
        int tp = (batch + 7) & ~7;                     // tokens padded to whole vectors
        boolean panels = PANELS;
        float[] xt = XT.get();                         // (in, tp) xᵀ, padding tokens zero: strided, or in token panels
        if (xt.length < in * tp) XT.set(xt = new float[in * tp]);
        if (panels) packPanels(x, batch, in, xt, tp);
        else pack(x, batch, in, xt, tp);
        float[] xT = xt;
        long rowBytes = w.type().rowBytes(in);
        MemorySegment seg = Kernels.view(w.data());
        BlockCodec codec = type == null ? null : GgmlCodecs.find(type);
        // each share a whole number of row blocks, at least ~4M multiply-adds
        int grain = MC * Math.max(1, (1 << 22) / Math.max(1, MC * in * tp));
        Parallel.forRange(outDim, grain, (start, end) -> {
            Buffers buf = BUFFERS.get();
            if (buf.c.length < MCP * tp) buf.c = new float[MCP * tp];
            if (buf.w.length < MCP * ldw) buf.w = new float[MCP * ldw];
            float[] wb = buf.w, c = buf.c, ap = buf.a;
            for (int r0 = start; r0 < end; r0 += MC) {
                int mc = Math.min(MC, end - r0), mr = panels ? MRP : MR, mcPad = (mc + mr - 1) / mr * mr;
                java.util.Arrays.fill(c, 0, mcPad * tp, 0f);
                if (type == null) {
                    for (int i = 0; i < mc; i++) MatMul.dequantizeRow(w, r0 + i, wb, i * in);
                    java.util.Arrays.fill(wb, mc * in, mcPad * in, 0f);
                }
                for (int k0 = 0; k0 < in; k0 += KC) {
                    int kc = Math.min(KC, in - k0), w0 = type == null ? k0 : 0;
                    if (type != null) {
                        for (int i = 0; i < mc; i++) decode(type, codec, seg, (r0 + i) * rowBytes, k0, kc, wb, i * KC);
                        for (int i = mc; i < mcPad; i++) java.util.Arrays.fill(wb, i * KC, i * KC + kc, 0f);
                    }
                    if (panels) {
                        // wb's slice in micro-panels of MR rows, (kc, MR) each, then tiles with constant strides
                        packA(wb, w0, ldw, mcPad, kc, ap);
                        for (int t0 = 0; t0 < tp; t0 += NR) {
                            int nr = Math.min(NR, tp - t0), xo = t0 * in + k0 * nr, co = t0 * mcPad;
                            if (nr == NR) {
                                for (int i = 0; i < mcPad; i += MRP) tile4x16(ap, i * KC, kc, xT, xo, c, co + i * NR);
                            } else {
                                for (int i = 0; i < mcPad; i += MRP) tile4x8(ap, i * KC, kc, xT, xo, c, co + i * 8);
                            }
                        }
                        continue;
                    }
                    for (int t0 = 0; t0 < tp; t0 += NR) {
                        int nr = Math.min(NR, tp - t0);
                        if (nr == NR) {
                            for (int i = 0; i < mcPad; i += MR) tile6x16(wb, w0 + i * ldw, ldw, kc, xT, k0 * tp + t0, tp, c, i * tp + t0);
                        } else {
                            for (int i = 0; i < mcPad; i += MR) tile6x8(wb, w0 + i * ldw, ldw, kc, xT, k0 * tp + t0, tp, c, i * tp + t0);
                        }
                    }
                }
                if (panels) {
                    // token by token: each token's mc outputs are one contiguous run of out
                    for (int t0 = 0; t0 < batch; t0 += NR) {
                        int nr = Math.min(NR, tp - t0), t1 = Math.min(batch, t0 + NR);
                        for (int b = t0; b < t1; b++) {
                            int ci = t0 * mcPad + b - t0, o = b * outDim + r0;
                            for (int i = 0; i < mc; i++) out[o + i] = c[ci + i * nr];
                        }
                    }
                } else {
                    for (int i = 0; i < mc; i++) {
                        for (int b = 0; b < batch; b++) out[b * outDim + r0 + i] = c[i * tp + b];
                    }
                }
            }
        });
    }

    /**
     * Whether xᵀ and the C tile are laid out in token panels ({@link #NR} tokens, the last one 8 when the padded
     * batch is not a multiple of 16), each panel contiguous, (in, nr) and (mcPad, nr); off: the strided layout, (in, tp)
     * and (MC, tp). The same products in the same order either way (the same bits); the panels keep a register tile's
     * 256 × 16 piece of xᵀ in L1 where the strided layout's rows, tp floats apart, alias a few cache sets once the
     * batch is in the hundreds. {@code -Dquant4j.gemm.panels=off} for measuring one against the other.
     */
    static volatile boolean PANELS = !"off".equalsIgnoreCase(System.getProperty("quant4j.gemm.panels", "on"));

    /** xᵀ[i·tp + b] = x[b·in + i]; the padding tokens b ≥ batch are zero. */
    static void pack(float[] x, int batch, int in, float[] xt, int tp) {
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < in; i++) xt[i * tp + b] = x[b * in + i];
        }
        for (int b = batch; b < tp; b++) {
            for (int i = 0; i < in; i++) xt[i * tp + b] = 0;
        }
    }

    /**
     * xᵀ in token panels: the panel of tokens [t0, t0 + nr), nr = min(16, tp − t0), is (in, nr) at t0·in, so
     * xp[t0·in + i·nr + (b − t0)] = x[b·in + i]; the padding tokens b ≥ batch are zero. Panels are packed in parallel.
     */
    static void packPanels(float[] x, int batch, int in, float[] xp, int tp) {
        int panels = (tp + NR - 1) / NR;
        Parallel.forRange(panels, Math.max(1, (1 << 16) / Math.max(1, in * NR)), (p0, p1) -> {
            for (int p = p0; p < p1; p++) {
                int t0 = p * NR, nr = Math.min(NR, tp - t0), base = t0 * in;
                for (int b = t0; b < t0 + nr; b++) {
                    int o = base + b - t0;
                    if (b < batch) {
                        int xo = b * in;
                        for (int i = 0; i < in; i++) xp[o + i * nr] = x[xo + i];
                    } else {
                        for (int i = 0; i < in; i++) xp[o + i * nr] = 0;
                    }
                }
            }
        });
    }

    /** Input columns summed in registers before the partial sums go to the C tile: 32-term chains, as accurate as the dot kernels' several accumulators. */
    static final int KR = 32;

    /**
     * The register tile: C[i, t] += Σ_k wb[wOff + i·ldw + k]·xᵀ[xOff + k·tp + t] for 6 weight rows i and 16 tokens t,
     * C at c[cOff + i·tp + t]; each run of {@link #KR} columns is summed from zero in registers, then added to C.
     */
    private static void tile6x16(float[] wb, int wOff, int ldw, int kc, float[] xt, int xOff, int tp, float[] c, int cOff) {
        for (int kb = 0; kb < kc; kb += KR) {
            int ke = Math.min(kc, kb + KR);
            FloatVector c00 = FloatVector.zero(F), c01 = FloatVector.zero(F), c10 = FloatVector.zero(F), c11 = FloatVector.zero(F);
            FloatVector c20 = FloatVector.zero(F), c21 = FloatVector.zero(F), c30 = FloatVector.zero(F), c31 = FloatVector.zero(F);
            FloatVector c40 = FloatVector.zero(F), c41 = FloatVector.zero(F), c50 = FloatVector.zero(F), c51 = FloatVector.zero(F);
            for (int k = kb; k < ke; k++) {
                int xo = xOff + k * tp, wo = wOff + k;
                FloatVector x0 = FloatVector.fromArray(F, xt, xo), x1 = FloatVector.fromArray(F, xt, xo + 8);
                FloatVector w0 = FloatVector.broadcast(F, wb[wo]);
                c00 = x0.fma(w0, c00); c01 = x1.fma(w0, c01);
                FloatVector w1 = FloatVector.broadcast(F, wb[wo + ldw]);
                c10 = x0.fma(w1, c10); c11 = x1.fma(w1, c11);
                FloatVector w2 = FloatVector.broadcast(F, wb[wo + 2 * ldw]);
                c20 = x0.fma(w2, c20); c21 = x1.fma(w2, c21);
                FloatVector w3 = FloatVector.broadcast(F, wb[wo + 3 * ldw]);
                c30 = x0.fma(w3, c30); c31 = x1.fma(w3, c31);
                FloatVector w4 = FloatVector.broadcast(F, wb[wo + 4 * ldw]);
                c40 = x0.fma(w4, c40); c41 = x1.fma(w4, c41);
                FloatVector w5 = FloatVector.broadcast(F, wb[wo + 5 * ldw]);
                c50 = x0.fma(w5, c50); c51 = x1.fma(w5, c51);
            }
            FloatVector.fromArray(F, c, cOff).add(c00).intoArray(c, cOff); FloatVector.fromArray(F, c, cOff + 8).add(c01).intoArray(c, cOff + 8);
            int o = cOff + tp;
            FloatVector.fromArray(F, c, o).add(c10).intoArray(c, o); FloatVector.fromArray(F, c, o + 8).add(c11).intoArray(c, o + 8);
            o += tp;
            FloatVector.fromArray(F, c, o).add(c20).intoArray(c, o); FloatVector.fromArray(F, c, o + 8).add(c21).intoArray(c, o + 8);
            o += tp;
            FloatVector.fromArray(F, c, o).add(c30).intoArray(c, o); FloatVector.fromArray(F, c, o + 8).add(c31).intoArray(c, o + 8);
            o += tp;
            FloatVector.fromArray(F, c, o).add(c40).intoArray(c, o); FloatVector.fromArray(F, c, o + 8).add(c41).intoArray(c, o + 8);
            o += tp;
            FloatVector.fromArray(F, c, o).add(c50).intoArray(c, o); FloatVector.fromArray(F, c, o + 8).add(c51).intoArray(c, o + 8);
        }
    }

    /** {@link #tile6x16} for the last 8 tokens. */
    private static void tile6x8(float[] wb, int wOff, int ldw, int kc, float[] xt, int xOff, int tp, float[] c, int cOff) {
        for (int kb = 0; kb < kc; kb += KR) {
            int ke = Math.min(kc, kb + KR);
            FloatVector c0 = FloatVector.zero(F), c1 = FloatVector.zero(F), c2 = FloatVector.zero(F);
            FloatVector c3 = FloatVector.zero(F), c4 = FloatVector.zero(F), c5 = FloatVector.zero(F);
            for (int k = kb; k < ke; k++) {
                int wo = wOff + k;
                FloatVector x0 = FloatVector.fromArray(F, xt, xOff + k * tp);
                c0 = x0.fma(FloatVector.broadcast(F, wb[wo]), c0);
                c1 = x0.fma(FloatVector.broadcast(F, wb[wo + ldw]), c1);
                c2 = x0.fma(FloatVector.broadcast(F, wb[wo + 2 * ldw]), c2);
                c3 = x0.fma(FloatVector.broadcast(F, wb[wo + 3 * ldw]), c3);
                c4 = x0.fma(FloatVector.broadcast(F, wb[wo + 4 * ldw]), c4);
                c5 = x0.fma(FloatVector.broadcast(F, wb[wo + 5 * ldw]), c5);
            }
            FloatVector.fromArray(F, c, cOff).add(c0).intoArray(c, cOff);
            FloatVector.fromArray(F, c, cOff + tp).add(c1).intoArray(c, cOff + tp);
            FloatVector.fromArray(F, c, cOff + 2 * tp).add(c2).intoArray(c, cOff + 2 * tp);
            FloatVector.fromArray(F, c, cOff + 3 * tp).add(c3).intoArray(c, cOff + 3 * tp);
            FloatVector.fromArray(F, c, cOff + 4 * tp).add(c4).intoArray(c, cOff + 4 * tp);
            FloatVector.fromArray(F, c, cOff + 5 * tp).add(c5).intoArray(c, cOff + 5 * tp);
        }
    }

    /** a[(i / MRP)·MRP·KC + k·MRP + i mod MRP] = wb[w0 + i·ldw + k] for rows i < mcPad (a multiple of MRP), k < kc. */
    static void packA(float[] wb, int w0, int ldw, int mcPad, int kc, float[] a) {
        for (int i0 = 0; i0 < mcPad; i0 += MRP) {
            int dst = i0 * KC;
            for (int r = 0; r < MRP; r++) {
                int src = w0 + (i0 + r) * ldw;
                for (int k = 0; k < kc; k++) a[dst + k * MRP + r] = wb[src + k];
            }
        }
    }

    /**
     * The register tile on the panel layouts: C[r, t] += Σ_k a[aOff + k·4 + r]·xp[xOff + k·16 + t] for 4 weight rows
     * (one micro-panel) and 16 tokens, C at c[cOff + r·16 + t]; each run of {@link #KR} columns summed from zero in
     * registers, then added to C. Each C element gets the same fused multiply-adds in the same order as in
     * {@link #tile6x16} (the same bits); the constant strides leave the JIT one base register per operand and no
     * range checks in the loop.
     */
    private static void tile4x16(float[] a, int aOff, int kc, float[] xp, int xOff, float[] c, int cOff) {
        for (int kb = 0; kb < kc; kb += KR) {
            int ke = Math.min(kc, kb + KR);
            FloatVector c00 = FloatVector.zero(F), c01 = FloatVector.zero(F), c10 = FloatVector.zero(F), c11 = FloatVector.zero(F);
            FloatVector c20 = FloatVector.zero(F), c21 = FloatVector.zero(F), c30 = FloatVector.zero(F), c31 = FloatVector.zero(F);
            for (int k = kb; k < ke; k++) {
                int xo = xOff + k * NR, ao = aOff + k * MRP;
                FloatVector x0 = FloatVector.fromArray(F, xp, xo), x1 = FloatVector.fromArray(F, xp, xo + 8);
                FloatVector w0 = FloatVector.broadcast(F, a[ao]);
                c00 = x0.fma(w0, c00); c01 = x1.fma(w0, c01);
                FloatVector w1 = FloatVector.broadcast(F, a[ao + 1]);
                c10 = x0.fma(w1, c10); c11 = x1.fma(w1, c11);
                FloatVector w2 = FloatVector.broadcast(F, a[ao + 2]);
                c20 = x0.fma(w2, c20); c21 = x1.fma(w2, c21);
                FloatVector w3 = FloatVector.broadcast(F, a[ao + 3]);
                c30 = x0.fma(w3, c30); c31 = x1.fma(w3, c31);
            }
            FloatVector.fromArray(F, c, cOff).add(c00).intoArray(c, cOff); FloatVector.fromArray(F, c, cOff + 8).add(c01).intoArray(c, cOff + 8);
            FloatVector.fromArray(F, c, cOff + 16).add(c10).intoArray(c, cOff + 16); FloatVector.fromArray(F, c, cOff + 24).add(c11).intoArray(c, cOff + 24);
            FloatVector.fromArray(F, c, cOff + 32).add(c20).intoArray(c, cOff + 32); FloatVector.fromArray(F, c, cOff + 40).add(c21).intoArray(c, cOff + 40);
            FloatVector.fromArray(F, c, cOff + 48).add(c30).intoArray(c, cOff + 48); FloatVector.fromArray(F, c, cOff + 56).add(c31).intoArray(c, cOff + 56);
        }
    }

    /** {@link #tile4x16} for a last panel of 8 tokens: xp[xOff + k·8 + t], C at c[cOff + r·8 + t]. */
    private static void tile4x8(float[] a, int aOff, int kc, float[] xp, int xOff, float[] c, int cOff) {
        for (int kb = 0; kb < kc; kb += KR) {
            int ke = Math.min(kc, kb + KR);
            FloatVector c0 = FloatVector.zero(F), c1 = FloatVector.zero(F), c2 = FloatVector.zero(F), c3 = FloatVector.zero(F);
            for (int k = kb; k < ke; k++) {
                int ao = aOff + k * MRP;
                FloatVector x0 = FloatVector.fromArray(F, xp, xOff + k * 8);
                c0 = x0.fma(FloatVector.broadcast(F, a[ao]), c0);
                c1 = x0.fma(FloatVector.broadcast(F, a[ao + 1]), c1);
                c2 = x0.fma(FloatVector.broadcast(F, a[ao + 2]), c2);
                c3 = x0.fma(FloatVector.broadcast(F, a[ao + 3]), c3);
            }
            FloatVector.fromArray(F, c, cOff).add(c0).intoArray(c, cOff);
            FloatVector.fromArray(F, c, cOff + 8).add(c1).intoArray(c, cOff + 8);
            FloatVector.fromArray(F, c, cOff + 16).add(c2).intoArray(c, cOff + 16);
            FloatVector.fromArray(F, c, cOff + 24).add(c3).intoArray(c, cOff + 24);
        }
    }

    // ---- decoding a slice of one weight row to floats -----------------------------------------------------------

    /**
     * dst[dstOff .. dstOff + kc) = W[row at byte rowOff, k0 .. k0 + kc) as floats; k0 and kc are multiples of the
     * type's block size. The same values as the codec's dequantize (ggml's dequantize_row_*), bit for bit.
     */
    static void decode(GgmlType type, BlockCodec codec, MemorySegment w, long rowOff, int k0, int kc, float[] dst, int dstOff) {
        switch (type) {
            case F32 -> MemorySegment.copy(w, ValueLayout.JAVA_FLOAT_UNALIGNED, rowOff + 4L * k0, dst, dstOff, kc);
            case F16 -> {
                long off = rowOff + 2L * k0;
                int i = 0;
                for (; i + 8 <= kc; i += 8) FloatKernels.halfToFloat(halfBits(w, off + 2L * i)).intoArray(dst, dstOff + i);
                for (; i < kc; i++) dst[dstOff + i] = Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off + 2L * i));
            }
            case BF16 -> {
                long off = rowOff + 2L * k0;
                int i = 0;
                for (; i + 8 <= kc; i += 8) halfBits(w, off + 2L * i).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, dstOff + i);
                for (; i < kc; i++) dst[dstOff + i] = FloatKernels.bf16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off + 2L * i));
            }
            case Q8_0 -> decodeQ8_0(w, rowOff + 34L * (k0 / 32), kc / 32, dst, dstOff);
            case Q4_0 -> decodeQ4_0(w, rowOff + 18L * (k0 / 32), kc / 32, dst, dstOff);
            case Q4_K -> decodeQ4_K(w, rowOff + 144L * (k0 / 256), kc / 256, dst, dstOff);
            case Q5_K -> decodeQ5_K(w, rowOff + 176L * (k0 / 256), kc / 256, dst, dstOff);
            case Q6_K -> decodeQ6_K(w, rowOff + 210L * (k0 / 256), kc / 256, dst, dstOff);
            default -> codec.dequantize(w, rowOff + type.rowBytes(k0), dst, dstOff, kc);
        }
    }

    /** 8 unsigned 16-bit values at {@code off}, one per int lane. */
    private static IntVector halfBits(MemorySegment w, long off) {
        return ((IntVector) ShortVector.fromMemorySegment(ShortVector.SPECIES_128, w, off, LE).convertShape(VectorOperators.S2I, I, 0)).and(0xffff);
    }

    /** 8 bytes at {@code off} as int lanes −128..127. */
    private static IntVector s8(MemorySegment w, long off) {
        return (IntVector) ByteVector.fromMemorySegment(B64, w, off, LE).convertShape(VectorOperators.B2I, I, 0);
    }

    private static FloatVector fl(IntVector v) { return (FloatVector) v.convertShape(VectorOperators.I2F, F, 0); }

    private static float f16(MemorySegment w, long off) { return Float.float16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED, off)); }

    /** Q8_0 {f16 d; int8 q[32]}: value = q·d. */
    private static void decodeQ8_0(MemorySegment w, long off, int blocks, float[] dst, int dstOff) {
        for (int blk = 0; blk < blocks; blk++) {
            long b = off + 34L * blk;
            FloatVector d = FloatVector.broadcast(F, f16(w, b));
            int y = dstOff + 32 * blk;
            for (int j = 0; j < 32; j += 8) fl(s8(w, b + 2 + j)).mul(d).intoArray(dst, y + j);
        }
    }

    /** Q4_0 {f16 d; u8 qs[16]}: value j = ((qs[j] & 15) − 8)·d, value j + 16 = ((qs[j] >> 4) − 8)·d. */
    private static void decodeQ4_0(MemorySegment w, long off, int blocks, float[] dst, int dstOff) {
        for (int blk = 0; blk < blocks; blk++) {
            long b = off + 18L * blk;
            FloatVector d = FloatVector.broadcast(F, f16(w, b));
            int y = dstOff + 32 * blk;
            for (int j = 0; j < 16; j += 8) {
                IntVector q = s8(w, b + 2 + j).and(0xFF);
                fl(q.and(15).sub(8)).mul(d).intoArray(dst, y + j);
                fl(q.lanewise(VectorOperators.LSHR, 4).sub(8)).mul(d).intoArray(dst, y + 16 + j);
            }
        }
    }

    /**
     * Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: sub-block 2j (low nibbles of qs[32j ..]) and 2j + 1 (high
     * nibbles), value = (d·sc)·q − dmin·m.
     */
    private static void decodeQ4_K(MemorySegment w, long off, int blocks, float[] dst, int dstOff) {
        for (int blk = 0; blk < blocks; blk++) {
            long b = off + 144L * blk;
            float d = f16(w, b), dmin = f16(w, b + 2);
            long sLo = BlockKernels.scalesLo(w, b + 4);
            int sHi = BlockKernels.scalesHi(w, b + 4);
            int y = dstOff + 256 * blk;
            for (int j = 0; j < 4; j++) {
                FloatVector d1 = FloatVector.broadcast(F, d * BlockKernels.kScale(sLo, sHi, 2 * j)), m1 = FloatVector.broadcast(F, dmin * BlockKernels.kMin(sLo, sHi, 2 * j));
                FloatVector d2 = FloatVector.broadcast(F, d * BlockKernels.kScale(sLo, sHi, 2 * j + 1)), m2 = FloatVector.broadcast(F, dmin * BlockKernels.kMin(sLo, sHi, 2 * j + 1));
                long q = b + 16 + 32L * j;
                for (int l = 0; l < 32; l += 8) {
                    IntVector v = s8(w, q + l).and(0xFF);
                    d1.mul(fl(v.and(15))).sub(m1).intoArray(dst, y + 64 * j + l);
                    d2.mul(fl(v.lanewise(VectorOperators.LSHR, 4))).sub(m2).intoArray(dst, y + 64 * j + 32 + l);
                }
            }
        }
    }

    /** Q5_K: Q4_K with a fifth bit per value from qh[32] (bit 2j for sub-block 2j, bit 2j + 1 for 2j + 1). */
    private static void decodeQ5_K(MemorySegment w, long off, int blocks, float[] dst, int dstOff) {
        for (int blk = 0; blk < blocks; blk++) {
            long b = off + 176L * blk;
            float d = f16(w, b), dmin = f16(w, b + 2);
            long sLo = BlockKernels.scalesLo(w, b + 4);
            int sHi = BlockKernels.scalesHi(w, b + 4);
            int y = dstOff + 256 * blk;
            for (int j = 0; j < 4; j++) {
                FloatVector d1 = FloatVector.broadcast(F, d * BlockKernels.kScale(sLo, sHi, 2 * j)), m1 = FloatVector.broadcast(F, dmin * BlockKernels.kMin(sLo, sHi, 2 * j));
                FloatVector d2 = FloatVector.broadcast(F, d * BlockKernels.kScale(sLo, sHi, 2 * j + 1)), m2 = FloatVector.broadcast(F, dmin * BlockKernels.kMin(sLo, sHi, 2 * j + 1));
                long q = b + 48 + 32L * j;
                for (int l = 0; l < 32; l += 8) {
                    IntVector v = s8(w, q + l).and(0xFF), h = s8(w, b + 16 + l).and(0xFF);
                    IntVector lo = v.and(15).or(h.lanewise(VectorOperators.LSHR, 2 * j).and(1).lanewise(VectorOperators.LSHL, 4));
                    IntVector hi = v.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2 * j + 1).and(1).lanewise(VectorOperators.LSHL, 4));
                    d1.mul(fl(lo)).sub(m1).intoArray(dst, y + 64 * j + l);
                    d2.mul(fl(hi)).sub(m2).intoArray(dst, y + 64 * j + 32 + l);
                }
            }
        }
    }

    /**
     * Q6_K {u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d}: two halves of 128; in half n, value l + 32s (s = 0..3) has
     * its low 4 bits from ql (low nibble of ql[l] for s = 0, of ql[l + 32] for 1, high nibbles for 2 and 3) and its
     * high 2 bits from qh[l] bits 2s, 2s+1; value = (d·scales[l / 16 + 2s])·(q − 32).
     */
    private static void decodeQ6_K(MemorySegment w, long off, int blocks, float[] dst, int dstOff) {
        for (int blk = 0; blk < blocks; blk++) {
            long b = off + 210L * blk;
            float d = f16(w, b + 208);
            for (int half = 0; half < 2; half++) {
                long ql = b + 64L * half, qh = b + 128 + 32L * half, sc = b + 192 + 8L * half;
                int y = dstOff + 256 * blk + 128 * half;
                for (int l = 0; l < 32; l += 8) {
                    int is = l / 16;
                    IntVector lo = s8(w, ql + l).and(0xFF), hi = s8(w, ql + 32 + l).and(0xFF), h = s8(w, qh + l).and(0xFF);
                    IntVector q1 = lo.and(15).or(h.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                    IntVector q2 = hi.and(15).or(h.lanewise(VectorOperators.LSHR, 2).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                    IntVector q3 = lo.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 4).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                    IntVector q4 = hi.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 6).and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                    FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is)).mul(fl(q1)).intoArray(dst, y + l);
                    FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 2)).mul(fl(q2)).intoArray(dst, y + 32 + l);
                    FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 4)).mul(fl(q3)).intoArray(dst, y + 64 + l);
                    FloatVector.broadcast(F, d * w.get(ValueLayout.JAVA_BYTE, sc + is + 6)).mul(fl(q4)).intoArray(dst, y + 96 + l);
                }
            }
        }
    }

    // ---- reference --------------------------------------------------------------------------------------------

    /** The plain triple loop over rows decoded by {@link MatMul#dequantizeRow}, accumulated in double. */
    static void reference(Tensor w, float[] x, float[] out, int batch) {
        int in = (int) w.cols(), outDim = (int) w.rows();
        float[] row = new float[in]; // (in)
        for (int r = 0; r < outDim; r++) {
            MatMul.dequantizeRow(w, r, row, 0);
            for (int b = 0; b < batch; b++) {
                double s = 0;
                for (int i = 0; i < in; i++) s += (double) row[i] * x[b * in + i];
                out[b * outDim + r] = (float) s;
            }
        }
    }
}
