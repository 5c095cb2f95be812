package org.quant4j.kernel;

import org.quant4j.format.IntQuantType;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;

/**
 * LLM.int8() (Dettmers et al., seed 002): vector-wise int8 matrix multiplication with mixed-precision decomposition.
 * <pre>
 *   O = { j : max_b |x[b, j]| ≥ threshold }                  outlier input columns of this batch
 *   out[b, r] = s_x[b] · s_w[r] · Σ_{j∉O} q_x[b, j] · q_w[r, j]    int8 × int8 → int32 (vector-wise scales)
 *             + Σ_{j∈O} x[b, j] · s_w[r] · q_w[r, j]              float, with the weight column dequantized
 * </pre>
 * s_x is each row's (token's) absmax over the non-outlier columns / 127, s_w each output row's absmax / 127 (the
 * weight stored as 8-bit symmetric per-channel integers, as bitsandbytes keeps it). The int32 dot products run on the
 * Vector API kernel or its scalar reference ({@link Kernels#vector()}); the float part is shared, so both paths give
 * identical results.
 */
public final class LlmInt8Kernel {
    private LlmInt8Kernel() {}

    /** The outlier columns of x (batch, n): those holding any |x| ≥ threshold. */
    public static int[] outlierColumns(float[] x, int batch, int n, float threshold) {
        int[] cols = new int[n];
        int count = 0;
        for (int j = 0; j < n; j++) {
            for (int b = 0; b < batch; b++) {
                if (Math.abs(x[b * n + j]) >= threshold) { cols[count++] = j; break; }
            }
        }
        return java.util.Arrays.copyOf(cols, count);
    }

    /**
     * out = x · Wᵀ with the decomposition above.
     *
     * @param w   weight [outDim, in], 8-bit symmetric per-channel integers (INT8S_C)
     * @param x   activations (batch, in)
     * @param out result (batch, outDim)
     * @return the number of outlier columns of this batch
     */
    public static int matmul(Tensor w, float[] x, float[] out, int batch, float threshold) {
        if (!(w.type() instanceof IntQuantType t) || t.bits() != 8 || !t.symmetric() || !t.perChannel()) {
            throw new Q4jException("tensor " + w.name() + ": LLM.int8() needs 8-bit symmetric per-channel weights (INT8S_C), not " + w.type().name());
        }
        int in = (int) w.cols(), outDim = (int) w.rows();
        int[] outliers = outlierColumns(x, batch, in, threshold);
        float[] regular = x.clone();                          // (batch, in) x with the outlier columns zeroed
        for (int b = 0; b < batch; b++) for (int j : outliers) regular[b * in + j] = 0;
        byte[] qx = new byte[batch * in];                     // (batch, in) int8 codes of the regular part
        float[] sx = new float[batch];                        // (batch) per-token scales
        Int8Kernels.quantizeRows(regular, batch, in, 0, qx, sx);
        boolean vector = Kernels.vector();
        long rowBytes = t.rowBytes(in);
        int header = t.headerBytes();
        MemorySegment seg = Kernels.view(w.data()); // one segment class for every kernel (see Kernels.view)
        Parallel.forRange(outDim, MatMul.grain(in, batch), (start, end) -> {
            float[] outlierWeights = new float[outliers.length]; // (|O|) s_w[r] · q_w[r, j] for j ∈ O
            for (int r = start; r < end; r++) {
                long row = r * rowBytes;
                float sw = t.scale(seg, row);
                for (int k = 0; k < outliers.length; k++) outlierWeights[k] = sw * t.code(seg, row, in, outliers[k]);
                for (int b = 0; b < batch; b++) {
                    int dot = vector ? Int8Kernels.dot(seg, row + header, qx, b * in, in) : Int8Kernels.dotScalar(seg, row + header, qx, b * in, in);
                    float acc = sx[b] * sw * dot;
                    for (int k = 0; k < outliers.length; k++) acc += x[b * in + outliers[k]] * outlierWeights[k];
                    out[b * outDim + r] = acc;
                }
            }
        });
        return outliers.length;
    }
}
