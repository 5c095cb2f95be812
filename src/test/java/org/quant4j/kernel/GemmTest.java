package org.quant4j.kernel;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.quant4j.format.GgmlType;
import org.quant4j.format.ggml.GgmlCodecs;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The batched GEMM ({@link Gemm}) against a double-precision triple loop and against MatMul's scalar reference path, on
 * shapes that leave tails everywhere: row counts not a multiple of the 6-row tile nor of the 48-row block, batches not a
 * multiple of 8 or 16 tokens, rows of several 256-column slices plus a partial one. The vectorised slice decoders
 * against the codecs, bit for bit.
 */
class GemmTest {

    @AfterEach
    void restore() {
        Kernels.setVector(true);
        Parallel.setThreads(Runtime.getRuntime().availableProcessors());
    }

    private static float[] gaussian(int n, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rng.nextGaussian() * (rng.nextInt(40) == 0 ? 10 : 1));
        return x;
    }

    static Tensor f32Tensor(int rows, int cols, long seed) {
        float[] w = gaussian(rows * cols, seed);
        MemorySegment data = MemorySegment.ofArray(new byte[rows * cols * 4]);
        for (int i = 0; i < w.length; i++) data.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 4L * i, w[i]);
        return new Tensor("w", GgmlType.F32, new long[]{rows, cols}, data);
    }

    private static Tensor tensor(GgmlType type, int rows, int cols, long seed) {
        return type == GgmlType.F32 ? f32Tensor(rows, cols, seed) : BlockKernelParityTest.randomTensor(type, rows, cols, seed);
    }

    /** Columns: several 256-column slices and a partial one (whole blocks for block types, an odd count for floats). */
    private static int cols(GgmlType type) {
        return switch (type.blockSize()) {
            case 1 -> 613;
            case 32 -> 32 * 19;     // 608: two full slices and a partial one of 96
            default -> 256 * 3;
        };
    }

    @Test
    void quant4jIntegerTypesDecodeWholeRowsAndMatchTheTripleLoop() {
        // INT8 per channel, INT4 g32 asymmetric: row lengths over one slice and not a multiple of it
        for (org.quant4j.quant.QuantScheme scheme : new org.quant4j.quant.QuantScheme[]{
                org.quant4j.quant.QuantScheme.symmetric(8, org.quant4j.quant.Granularity.CHANNEL),
                org.quant4j.quant.QuantScheme.asymmetric(4, org.quant4j.quant.Granularity.CHANNEL).withGroupSize(32)}) {
            int rows = 53, cols = 608, batch = 11;
            Tensor w = org.quant4j.method.rtn.Rtn.quantize(f32Tensor(rows, cols, 4), scheme, org.quant4j.quant.Calibrator.MIN_MAX);
            assertTrue(Gemm.supports(w.type()), w.type().name());
            float[] x = gaussian(batch * cols, 8);
            float[] got = new float[batch * rows], want = new float[batch * rows];
            Gemm.matmul(w, x, got, batch);
            Gemm.reference(w, x, want, batch);
            for (int i = 0; i < got.length; i++) assertEquals(want[i], got[i], 1e-4 * (1 + Math.abs(want[i])), w.type().name() + " at " + i);
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "TQ2_0"})
    void matchesTheTripleLoop(GgmlType type) {
        int cols = cols(type);
        for (int rows : new int[]{7, 53}) {
            Tensor w = tensor(type, rows, cols, 11L * rows + type.ordinal());
            for (int batch : new int[]{4, 9, 16, 23}) {
                float[] x = gaussian(batch * cols, batch);
                float[] got = new float[batch * rows], want = new float[batch * rows];
                Gemm.matmul(w, x, got, batch);
                Gemm.reference(w, x, want, batch);
                float[] row = new float[cols];
                for (int r = 0; r < rows; r++) {
                    MatMul.dequantizeRow(w, r, row, 0);
                    for (int b = 0; b < batch; b++) {
                        double magnitude = 0;
                        for (int i = 0; i < cols; i++) magnitude += Math.abs((double) row[i] * x[b * cols + i]);
                        String where = type + ", " + rows + " rows, batch " + batch + ", row " + r + ", token " + b;
                        assertEquals(want[b * rows + r], got[b * rows + r], 1e-5 * magnitude + 1e-6, where);
                    }
                }
            }
        }
    }

    @Test
    void matMulTakesTheGemmForBatchesAndMatchesItsScalarPath() {
        // through MatMul, as Llama and Bert call it: vector (the GEMM from batch 4) against the scalar reference path
        for (GgmlType type : new GgmlType[]{GgmlType.F32, GgmlType.F16, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q5_1}) {
            int cols = cols(type) - (type.blockSize() == 1 ? 0 : 0), rows = 101, batch = 13;
            Tensor w = tensor(type, rows, cols, 3 + type.ordinal());
            float[] x = gaussian(batch * cols, 77);
            float[] vector = new float[batch * rows], scalar = new float[batch * rows];
            for (int threads : new int[]{1, 2}) {
                Parallel.setThreads(threads);
                Kernels.setVector(true);
                MatMul.matmul(w, x, vector, batch);
                Kernels.setVector(false);
                MatMul.matmul(w, x, scalar, batch);
                Kernels.setVector(true);
                double err = 0, norm = 0;
                for (int i = 0; i < vector.length; i++) {
                    err += (vector[i] - scalar[i]) * (double) (vector[i] - scalar[i]);
                    norm += scalar[i] * (double) scalar[i];
                }
                assertTrue(Math.sqrt(err / norm) < 1e-5, type + " with " + threads + " threads: relative error " + Math.sqrt(err / norm));
            }
        }
    }

    @Test
    void tokenPanelsGiveTheStridedLayoutsBits() {
        // the same fused multiply-adds in the same order: bit for bit, with row blocks, slices and token panels cut short
        org.quant4j.quant.QuantScheme int4 = org.quant4j.quant.QuantScheme.asymmetric(4, org.quant4j.quant.Granularity.CHANNEL).withGroupSize(32);
        Tensor[] weights = {f32Tensor(101, 613, 21), tensor(GgmlType.Q4_K, 53, 768, 22),
                org.quant4j.method.rtn.Rtn.quantize(f32Tensor(53, 608, 23), int4, org.quant4j.quant.Calibrator.MIN_MAX)};
        boolean before = Gemm.PANELS;
        try {
            for (Tensor w : weights) {
                int rows = (int) w.rows(), cols = (int) w.cols();
                for (int batch : new int[]{5, 23, 40, 131}) {
                    float[] x = gaussian(batch * cols, 31L * batch + rows);
                    for (int threads : new int[]{1, 2}) {
                        Parallel.setThreads(threads);
                        float[] strided = new float[batch * rows], panels = new float[batch * rows];
                        Gemm.PANELS = false;
                        Gemm.matmul(w, x, strided, batch);
                        Gemm.PANELS = true;
                        Gemm.matmul(w, x, panels, batch);
                        for (int i = 0; i < strided.length; i++) {
                            assertEquals(Float.floatToIntBits(strided[i]), Float.floatToIntBits(panels[i]), w.type().name() + ", batch " + batch + ", " + threads + " threads, at " + i);
                        }
                    }
                }
            }
        } finally {
            Gemm.PANELS = before;
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void sliceDecodersEqualTheCodecs(GgmlType type) {
        int cols = type.blockSize() == 1 ? 600 : type.blockSize() * 12, rows = 3;
        Tensor w = tensor(type, rows, cols, 5 + type.ordinal());
        long rowBytes = type.rowBytes(cols);
        float[] want = new float[cols];
        for (int r = 0; r < rows; r++) {
            GgmlCodecs.of(type).dequantize(w.data(), r * rowBytes, want, 0, cols);
            float[] got = new float[cols + 5];
            int slice = type.blockSize() == 1 ? 200 : type.blockSize() * 4;
            for (int k0 = 0; k0 < cols; k0 += slice) Gemm.decode(type, null, w.data(), r * rowBytes, k0, Math.min(slice, cols - k0), got, 5 + k0);
            for (int i = 0; i < cols; i++) assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[5 + i]), type + " row " + r + " value " + i);
        }
    }

    @Test
    void halfInfinitiesAndNaNsDecodeExactly() {
        short[] bits = {0x7c00, (short) 0xfc00, 0x7e00, 0x0001, (short) 0x8001, 0x3c00, 0x0400, 0x7bff, 0, (short) 0x8000};
        MemorySegment data = MemorySegment.ofArray(new byte[2 * 16]);
        for (int i = 0; i < 16; i++) data.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, bits[i % bits.length]);
        float[] got = new float[16];
        Gemm.decode(GgmlType.F16, null, data, 0, 0, 16, got, 0);
        for (int i = 0; i < 16; i++) {
            assertEquals(Float.floatToIntBits(Float.float16ToFloat(bits[i % bits.length])), Float.floatToIntBits(got[i]), "half bits " + Integer.toHexString(bits[i % bits.length] & 0xffff));
        }
    }
}
