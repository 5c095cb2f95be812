package org.quant4j.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.quant4j.format.GgmlType;
import org.quant4j.format.ggml.BlockCodec;
import org.quant4j.format.ggml.GgmlCodecs;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every ggml block type's matrix-vector product: the Vector API kernel against the scalar reference (the codec's
 * dequantization and a plain dot product) on rows of 1, 3 and 7 blocks, with outliers and an importance matrix, and
 * the whole matmul path (threads, batches) against the scalar switch.
 */
class BlockKernelParityTest {

    static Tensor randomTensor(GgmlType type, int rows, int cols, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) (rng.nextGaussian() * 0.05 * (rng.nextInt(50) == 0 ? 20 : 1));
        float[] importance = new float[cols];
        for (int i = 0; i < cols; i++) importance[i] = (float) (0.1 + rng.nextDouble());
        BlockCodec codec = GgmlCodecs.of(type);
        long rowBytes = type.rowBytes(cols);
        MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * rows)]);
        for (int r = 0; r < rows; r++) codec.quantize(w, r * cols, cols, seed % 2 == 0 ? importance : null, data, r * rowBytes);
        return new Tensor("w", type, new long[]{rows, cols}, data);
    }

    @ParameterizedTest
    @EnumSource(names = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "F16", "BF16"})
    void vectorKernelMatchesTheCodecReference(GgmlType type) {
        assertNotNull(GgmlCodecs.find(type), type + " has a codec");
        int block = type.blockSize();
        for (int blocks : new int[]{1, 3, 7}) {
            int cols = block == 1 ? 257 * blocks : block * blocks;
            Tensor t = randomTensor(type, 5, cols, 31L * blocks + type.ordinal());
            float[] x = new float[cols + 3];
            SplittableRandom rng = new SplittableRandom(blocks);
            for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
            float[] row = new float[cols];
            for (int r = 0; r < 5; r++) {
                MatMul.dequantizeRow(t, r, row, 0);
                double expected = 0, magnitude = 0;
                for (int i = 0; i < cols; i++) {
                    expected += (double) row[i] * x[3 + i];
                    magnitude += Math.abs((double) row[i] * x[3 + i]);
                }
                long off = r * type.rowBytes(cols);
                float vector = MatMul.rowDot(type, true).dot(t.data(), off, x, 3, cols);
                float scalar = MatMul.rowDot(type, false).dot(t.data(), off, x, 3, cols);
                assertEquals(expected, scalar, 1e-5 * magnitude + 1e-6, type + " scalar, " + blocks + " blocks, row " + r);
                assertEquals(expected, vector, 1e-5 * magnitude + 1e-6, type + " vector, " + blocks + " blocks, row " + r);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q4_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "Q3_K", "Q2_K", "Q5_1"})
    void matmulWithThreadsAndBatchesMatchesScalar(GgmlType type) {
        int cols = 512, rows = 37;
        Tensor t = randomTensor(type, rows, cols, 7);
        for (int batch : new int[]{1, 5}) {
            float[] x = new float[batch * cols];
            SplittableRandom rng = new SplittableRandom(batch);
            for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextGaussian();
            float[] fast = new float[batch * rows], slow = new float[batch * rows];
            MatMul.matmul(t, x, fast, batch);
            boolean was = Kernels.vector();
            Kernels.setVector(false);
            try {
                MatMul.matmul(t, x, slow, batch);
            } finally {
                Kernels.setVector(was);
            }
            for (int i = 0; i < fast.length; i++) assertEquals(slow[i], fast[i], 1e-4f * (1 + Math.abs(slow[i])), type + " batch " + batch + " at " + i);
        }
    }
}
