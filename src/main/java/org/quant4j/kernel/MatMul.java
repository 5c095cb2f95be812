package org.quant4j.kernel;

import org.quant4j.format.GgmlType;
import org.quant4j.format.IntQuantType;
import org.quant4j.format.StorageType;
import org.quant4j.format.ggml.BlockCodec;
import org.quant4j.format.ggml.GgmlCodecs;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * out = x · Wᵀ for a weight W of shape [outDim, in] in any supported storage type: the matrix-vector product of
 * decoding (batch 1) and the matrix-matrix product of prompt processing (batch B, each weight row read once for all B
 * tokens). Rows are shared among the {@link Parallel} threads.
 */
public final class MatMul {
    private MatMul() {}


    /** The dot product of one stored weight row with an F32 activation vector. */
    @FunctionalInterface
    public interface RowDot {
        float dot(MemorySegment w, long rowByteOffset, float[] x, int xOff, int n);
    }

    /** The dot kernel for a storage type on the selected path (vector or scalar reference). */
    public static RowDot rowDot(StorageType type, boolean vector) {
        return switch (type) {
            case GgmlType g -> switch (g) {
                case F32 -> vector ? FloatKernels::dotF32 : FloatKernels::dotF32Scalar;
                case F16 -> vector ? FloatKernels::dotF16 : FloatKernels::dotF16Scalar;
                case BF16 -> vector ? FloatKernels::dotBF16 : FloatKernels::dotBF16Scalar;
                // block types with a Vector API kernel; their scalar reference is the codec (dequantize, dot)
                case Q4_0 -> vector ? BlockKernels::dotQ4_0 : decodeThenDot(GgmlCodecs.of(g), false);
                case Q4_1 -> vector ? BlockKernels::dotQ4_1 : decodeThenDot(GgmlCodecs.of(g), false);
                case Q5_0 -> vector ? BlockKernels::dotQ5_0 : decodeThenDot(GgmlCodecs.of(g), false);
                case Q5_1 -> vector ? BlockKernels::dotQ5_1 : decodeThenDot(GgmlCodecs.of(g), false);
                case Q8_0 -> vector ? BlockKernels::dotQ8_0 : decodeThenDot(GgmlCodecs.of(g), false);
                case Q2_K -> vector ? BlockKernels::dotQ2_K : decodeThenDot(GgmlCodecs.of(g), false);
                case Q3_K -> vector ? BlockKernels::dotQ3_K : decodeThenDot(GgmlCodecs.of(g), false);
                case Q4_K -> vector ? BlockKernels::dotQ4_K : decodeThenDot(GgmlCodecs.of(g), false);
                case Q5_K -> vector ? BlockKernels::dotQ5_K : decodeThenDot(GgmlCodecs.of(g), false);
                case Q6_K -> vector ? BlockKernels::dotQ6_K : decodeThenDot(GgmlCodecs.of(g), false);
                default -> {
                    BlockCodec codec = GgmlCodecs.find(g);
                    if (codec == null) throw new Q4jException("no matmul kernel for storage type " + g + " yet");
                    yield decodeThenDot(codec, vector);
                }
            };
            case IntQuantType q -> vector ? q::dot : q::dotScalar;
        };
    }

    /** A per-thread row buffer for {@link #decodeThenDot}, grown to the longest row seen. */
    private static final ThreadLocal<float[]> ROW = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * The generic fallback for a ggml block type without a kernel of its own: dequantize the row with its codec into
     * a thread-local float[] (no allocation per call once warm), then an F32 dot product.
     */
    static RowDot decodeThenDot(BlockCodec codec, boolean vector) {
        return (w, off, x, xOff, n) -> {
            float[] row = ROW.get(); // (n)
            if (row.length < n) ROW.set(row = new float[n]);
            codec.dequantize(w, off, row, 0, n);
            if (vector) return FloatKernels.dot(row, 0, x, xOff, n);
            float s = 0;
            for (int i = 0; i < n; i++) s += row[i] * x[xOff + i];
            return s;
        };
    }

    /** Rows per thread share so that each share has at least ~64K multiply-adds (hand-off costs microseconds). */
    static int grain(int in, int batch) { return Math.max(4, (1 << 16) / Math.max(1, in * batch)); }

    /**
     * out[b * outDim + r] = sum_i W[r, i] * x[b * in + i] for b in [0, batch), r in [0, outDim).
     *
     * @param w   weight [outDim, in]
     * @param x   activations (batch, in)
     * @param out result (batch, outDim)
     */
    public static void matmul(Tensor w, float[] x, float[] out, int batch) {
        int in = (int) w.cols();
        int outDim = (int) w.rows();
        long rowBytes = w.type().rowBytes(in);
        MemorySegment seg = Kernels.view(w.data());
        Q8Activations.Kind kind = Kernels.q8Activations() ? Q8Kernels.kindOf(w.type()) : null;
        if (kind != null && (w.type() == GgmlType.TQ1_0 || w.type() == GgmlType.TQ2_0)) {
            TernaryKernels.matmul(w, x, out, batch); // activations to Q8_K once, then adds and subtracts only
            return;
        }
        if (kind != null && in % kind.block == 0) {
            // the types llama.cpp multiplies in integers: activations quantized once for the whole matmul
            Q8Activations xq = Q8Activations.quantize(kind, x, batch, in);
            if (batch < 4 || !Kernels.vector()) {
                GgmlType type = (GgmlType) w.type();
                if (Kernels.vector() && Q8Repacked.covers(type, w.data(), outDim)) {
                    Q8Repacked.matvec(type, w.data(), outDim, in, xq, out); // eight rows at a time from a row-interleaved copy
                } else if (Kernels.vector()) {
                    // a static call per type, not one interface call site shared by every type (which the JIT
                    // compiles megamorphic once several types have run, at about half the speed)
                    Parallel.forRange(outDim, grain(in, batch), (start, end) -> Q8Kernels.rows(type, seg, rowBytes, start, end, xq, out, outDim));
                } else {
                    Q8Kernels.RowDot qdot = Q8Kernels.rowDot(type, false);
                    Parallel.forRange(outDim, grain(in, batch), (start, end) -> {
                        for (int r = start; r < end; r++) {
                            for (int b = 0; b < batch; b++) out[b * outDim + r] = qdot.dot(seg, r * rowBytes, xq, b);
                        }
                    });
                }
                return;
            }
            x = xq.dequantize(); // prompt processing: the same quantized activations, through the float path below
        }
        if (batch >= 4 && Kernels.vector() && Gemm.enabled() && Gemm.supports(w.type())) {
            Gemm.matmul(w, x, out, batch); // prompt processing, encoders: the cache-blocked GEMM
            return;
        }
        RowDot dot = rowDot(w.type(), Kernels.vector());
        float[] xs = x;
        if (batch >= 4 && Kernels.vector()) {
            // prompt processing: decode four weight rows once, then reuse each activation load for all four
            Parallel.forRange(outDim, Math.max(4, grain(in, batch)), (start, end) -> {
                float[] rows4 = new float[4 * in]; // (4, in)
                int r = start;
                for (; r + 4 <= end; r += 4) {
                    for (int k = 0; k < 4; k++) dequantizeRow(w, r + k, rows4, k * in);
                    int b = 0;
                    for (; b + 2 <= batch; b += 2) FloatKernels.dot4x2(rows4, in, xs, b * in, out, b * outDim + r, 1, outDim);
                    for (; b < batch; b++) FloatKernels.dot4(rows4, in, xs, b * in, out, b * outDim + r, 1);
                }
                for (; r < end; r++) {
                    for (int b = 0; b < batch; b++) out[b * outDim + r] = dot.dot(seg, r * rowBytes, xs, b * in, in);
                }
            });
            return;
        }
        Parallel.forRange(outDim, grain(in, batch), (start, end) -> {
            for (int r = start; r < end; r++) {
                long off = r * rowBytes;
                for (int b = 0; b < batch; b++) out[b * outDim + r] = dot.dot(seg, off, xs, b * in, in);
            }
        });
    }

    /**
     * W8A8: out = x · Wᵀ with the activations quantized to int8 once for the whole matmul (per token, or with a static
     * scale when {@code staticScale} > 0) and int8 × int8 products accumulated in int32, for 8-bit integer weights
     * (W4A8: 4-bit weights, their codes unpacked to int8 once per row):
     * <pre>
     *   out[b, r] = s_x[b] · Σ_g s_w[r, g] · (Σ_{i∈g} q_w[r, i] · q_x[b, i] − z_w[r, g] · Σ_{i∈g} q_x[b, i])
     * </pre>
     */
    public static void matmulA8(Tensor w, float[] x, float[] out, int batch, float staticScale) {
        if (!(w.type() instanceof IntQuantType t) || (t.bits() != 8 && t.bits() != 4)) {
            throw new Q4jException("tensor " + w.name() + ": W8A8 / W4A8 needs 8- or 4-bit integer weights, not " + w.type().name());
        }
        int in = (int) w.cols();
        byte[] qx = new byte[batch * in];                    // (batch, in) activation codes, quantized once
        float[] sx = new float[batch];                       // (batch) activation scales
        Int8Kernels.quantizeRows(x, batch, in, staticScale, qx, sx);
        matmulCodes(w, t, qx, sx, out, batch);
    }

    /**
     * W4A4 (and W8A4, W4A6, ...): as {@link #matmulA8}, with each token quantized asymmetrically to {@code bits} bits
     * (scale, zero point: {@link Int8Kernels#quantizeRowsAsymmetric}); its codes minus the zero point go through the
     * same int8 × int8 → int32 kernels, so the result equals the simulated product on the same grid up to float rounding.
     */
    public static void matmulTokenAsymmetric(Tensor w, float[] x, float[] out, int batch, int bits) {
        if (!(w.type() instanceof IntQuantType t) || (t.bits() != 8 && t.bits() != 4)) {
            throw new Q4jException("tensor " + w.name() + ": W4A4 needs 8- or 4-bit integer weights, not " + w.type().name());
        }
        if (bits < 2 || bits > 7) throw new Q4jException("tensor " + w.name() + ": integer activations of " + bits + " bits (2..7 here)");
        int in = (int) w.cols();
        byte[] qx = new byte[batch * in];                    // (batch, in) centred activation codes q − z
        float[] sx = new float[batch];                       // (batch) activation scales
        Int8Kernels.quantizeRowsAsymmetric(x, batch, in, bits, qx, sx);
        matmulCodes(w, t, qx, sx, out, batch);
    }

    /** out = x · Wᵀ from activation codes qx (batch, in) with per-token scales sx, integer weights of type t. */
    private static void matmulCodes(Tensor w, IntQuantType t, byte[] qx, float[] sx, float[] out, int batch) {
        int in = (int) w.cols(), outDim = (int) w.rows();
        int groups = t.groupsPerRow(in);
        int[] groupSums = new int[batch * groups];           // (batch, groups) Σ q_x per group, for zero points
        if (!t.symmetric()) {
            for (int b = 0; b < batch; b++) {
                for (int g = 0; g < groups; g++) {
                    int c0 = t.perChannel() ? 0 : g * t.groupSize(), s = 0;
                    for (int i = 0; i < t.groupLength(in, g); i++) s += qx[b * in + c0 + i];
                    groupSums[b * groups + g] = s;
                }
            }
        }
        boolean vector = Kernels.vector();
        long rowBytes = t.rowBytes(in);
        MemorySegment seg = Kernels.view(w.data()); // one segment class for every kernel (see Kernels.view)
        Parallel.forRange(outDim, grain(in, batch), (start, end) -> {
            // W4A8: each row's 4-bit codes are unpacked to int8 once, then run through the same int8 × int8 kernels
            byte[] unpacked = t.bits() == 4 ? new byte[in + 8 * groups] : null;   // (in) codes of one row, by group
            MemorySegment unpackedSeg = unpacked == null ? null : MemorySegment.ofArray(unpacked);
            for (int r = start; r < end; r++) {
                if (unpacked != null) {
                    for (int g = 0; g < groups; g++) {
                        long go = r * rowBytes + t.groupOffset(in, g);
                        int n = t.groupLength(in, g), c0 = t.perChannel() ? 0 : g * t.groupSize();
                        for (int i = 0; i < n; i++) unpacked[c0 + i] = (byte) t.code(seg, go, n, i);
                    }
                }
                for (int b = 0; b < batch; b++) {
                    float acc = 0;
                    for (int g = 0; g < groups; g++) {
                        long go = r * rowBytes + t.groupOffset(in, g);
                        int n = t.groupLength(in, g), c0 = b * in + (t.perChannel() ? 0 : g * t.groupSize());
                        MemorySegment codeSeg = unpacked == null ? seg : unpackedSeg;
                        long codes = unpacked == null ? go + t.headerBytes() : (t.perChannel() ? 0 : (long) g * t.groupSize());
                        int dot = vector ? Int8Kernels.dot(codeSeg, codes, qx, c0, n) : Int8Kernels.dotScalar(codeSeg, codes, qx, c0, n);
                        if (!t.symmetric()) dot -= t.zeroPoint(seg, go) * groupSums[b * groups + g];
                        acc += t.scale(seg, go) * dot;
                    }
                    out[b * outDim + r] = sx[b] * acc;
                }
            }
        });
    }

    /** Decodes row {@code row} of a tensor into {@code dst[dstOff ..]} as floats. */
    public static void dequantizeRow(Tensor t, long row, float[] dst, int dstOff) {
        int n = (int) t.cols();
        MemorySegment seg = t.data();
        long off = row * t.type().rowBytes(n);
        switch (t.type()) {
            case GgmlType.F32 -> MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT_UNALIGNED, off, dst, dstOff, n);
            case GgmlType.F16 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = Float.float16ToFloat(seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, off + 2L * i)); }
            case GgmlType.BF16 -> { for (int i = 0; i < n; i++) dst[dstOff + i] = FloatKernels.bf16ToFloat(seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, off + 2L * i)); }
            case IntQuantType q -> q.decodeRow(seg, off, n, dst, dstOff);
            case GgmlType g when GgmlCodecs.find(g) != null -> GgmlCodecs.find(g).dequantize(seg, off, dst, dstOff, n);
            default -> throw new Q4jException("tensor " + t.name() + ": cannot decode storage type " + t.type().name() + " yet");
        }
    }

    /** The whole tensor as floats (for small tensors: norms, biases). */
    public static float[] toFloats(Tensor t) {
        long n = t.size();
        if (n > Integer.MAX_VALUE - 16) throw new Q4jException("tensor " + t.name() + " is too large to expand to floats");
        float[] out = new float[(int) n];
        int cols = (int) t.cols();
        for (long r = 0; r < t.rows(); r++) dequantizeRow(t, r, out, (int) (r * cols));
        return out;
    }
}
