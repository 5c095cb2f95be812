package org.quant4j.model;

import org.quant4j.format.FloatFormats;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.gguf.GgufWriter.PendingTensor;
import org.quant4j.kernel.Parallel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Models with random weights in the shape of a real one: weights N(0, σ²) with σ = 0.02 (the usual initialisation),
 * norms 1, biases 0; each tensor's values depend only on the seed, the tensor name and the row, so a model is
 * reproducible and can be generated tensor by tensor while it is written.
 */
public final class RandomModel {
    private RandomModel() {}

    /** The tensors of a random model, each generated when the writer asks for it. */
    public static List<PendingTensor> tensors(LlamaConfig c, GgmlType type, long seed) {
        if (type != GgmlType.F32 && type != GgmlType.F16 && type != GgmlType.BF16) {
            throw new IllegalArgumentException("random models are written as F32, F16 or BF16 (quantize them afterwards)");
        }
        List<PendingTensor> out = new ArrayList<>();
        out.add(matrix(Model.TOKEN_EMBD, type, seed, c.vocabSize(), c.dim()));
        out.add(ones(Model.OUTPUT_NORM, c.dim()));
        if (!c.tiedEmbeddings()) out.add(matrix(Model.OUTPUT, type, seed, c.vocabSize(), c.dim()));
        for (int l = 0; l < c.nLayers(); l++) {
            out.add(matrix(Model.attnQ(l), type, seed, c.qDim(), c.dim()));
            out.add(matrix(Model.attnK(l), type, seed, c.kvDim(), c.dim()));
            out.add(matrix(Model.attnV(l), type, seed, c.kvDim(), c.dim()));
            if (c.qkvBias()) {
                out.add(zeros(Model.blk(l, "attn_q.bias"), c.qDim()));
                out.add(zeros(Model.blk(l, "attn_k.bias"), c.kvDim()));
                out.add(zeros(Model.blk(l, "attn_v.bias"), c.kvDim()));
            }
            out.add(matrix(Model.attnOutput(l), type, seed, c.dim(), c.qDim()));
            out.add(ones(Model.attnNorm(l), c.dim()));
            out.add(matrix(Model.ffnGate(l), type, seed, c.hiddenDim(), c.dim()));
            out.add(matrix(Model.ffnDown(l), type, seed, c.dim(), c.hiddenDim()));
            out.add(matrix(Model.ffnUp(l), type, seed, c.hiddenDim(), c.dim()));
            out.add(ones(Model.ffnNorm(l), c.dim()));
        }
        return out;
    }

    /**
     * A stand-in SentencePiece vocabulary of the model's size (control tokens, the 256 byte tokens, then filler pieces)
     * so that llama.cpp and quant4j accept the file; random models generate meaningless text anyway.
     */
    public static Map<String, GgufValue> placeholderTokenizer(int vocabSize) {
        String[] tokens = new String[vocabSize];
        float[] scores = new float[vocabSize];
        int[] types = new int[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            if (i == 0) { tokens[i] = "<unk>"; types[i] = 2; }
            else if (i == 1) { tokens[i] = "<s>"; types[i] = 3; }
            else if (i == 2) { tokens[i] = "</s>"; types[i] = 3; }
            else if (i < 3 + 256) { tokens[i] = String.format("<0x%02X>", i - 3); types[i] = 6; }
            else { tokens[i] = "\u2581tok" + i; types[i] = 1; scores[i] = -i; }
        }
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("tokenizer.ggml.model", GgufValue.string("llama"));
        m.put("tokenizer.ggml.tokens", GgufValue.strings(tokens));
        m.put("tokenizer.ggml.scores", GgufValue.floats(scores));
        m.put("tokenizer.ggml.token_type", GgufValue.i32s(types));
        m.put("tokenizer.ggml.bos_token_id", GgufValue.u32(1));
        m.put("tokenizer.ggml.eos_token_id", GgufValue.u32(2));
        m.put("tokenizer.ggml.unknown_token_id", GgufValue.u32(0));
        return m;
    }

    private static PendingTensor matrix(String name, GgmlType type, long seed, int rows, int cols) {
        return new PendingTensor(name, type, new long[]{rows, cols}, () -> {
            long bytes = type.byteSize((long) rows * cols);
            MemorySegment seg = MemorySegment.ofArray(new byte[Math.toIntExact(bytes)]);
            long nameSeed = seed * 0x9E3779B97F4A7C15L + name.hashCode();
            Parallel.forRange(rows, 64, (start, end) -> {
                float[] row = new float[cols];
                for (int r = start; r < end; r++) {
                    SplittableRandom rng = new SplittableRandom(nameSeed + 31L * r);
                    for (int i = 0; i < cols; i++) row[i] = (float) (rng.nextGaussian() * 0.02);
                    FloatFormats.encodeRow(type, row, 0, cols, seg, (long) r * type.byteSize(cols));
                }
            });
            return seg;
        });
    }

    private static PendingTensor ones(String name, int n) {
        return new PendingTensor(name, GgmlType.F32, new long[]{n}, () -> {
            MemorySegment seg = MemorySegment.ofArray(new byte[4 * n]);
            for (int i = 0; i < n; i++) seg.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, 1f);
            return seg;
        });
    }

    private static PendingTensor zeros(String name, int n) {
        return new PendingTensor(name, GgmlType.F32, new long[]{n}, () -> MemorySegment.ofArray(new byte[4 * n]));
    }
}
