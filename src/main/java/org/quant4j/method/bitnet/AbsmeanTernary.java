package org.quant4j.method.bitnet;

import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.train.FakeQuant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * BitNet b1.58's weight quantizer applied to a trained model before packing it into ggml's ternary types: every
 * linear weight W of the transformer blocks becomes ŵ = γ · RoundClip(W / (γ + ε), −1, 1) with γ = mean|W|, one scale
 * per matrix (the very function the trainer's forward pass used, {@link FakeQuant.BitNet#TERNARY}). Embedding,
 * output head and norms stay as they are.
 *
 * <p>Why this step: ggml's TQ1_0 / TQ2_0 quantizers take d = max|w| per 256-block and t = round(w / d), which on
 * full-precision master weights zeroes most of them. On ŵ every block that holds a nonzero has max|ŵ| = γ, so the
 * packed block is exactly d = γ (rounded to fp16) and the trained t; an all-zero block gets d = 0. The ternary
 * file then computes the trained BitLinear up to the fp16 rounding of γ (relative ≤ 2⁻¹¹) and the activation
 * grouping: the trainer quantizes each token's whole input vector to 8 bits, ggml's TQ kernels (and quant4j's,
 * {@code kernel/TernaryKernels}) each 256-block of it (Q8_K); the two agree exactly where a row has 256 values.
 */
public final class AbsmeanTernary {
    private AbsmeanTernary() {}

    /** Metadata key the trainer writes with its --qat scheme; "bitnet1.58" marks master weights of a b1.58 model. */
    public static final String QAT_KEY = "quant4j.training.qat";

    /** Whether the model says it was trained as BitNet b1.58 (its master weights still need ternarizing). */
    public static boolean trainedTernary(Model m) {
        GgufValue v = m.metadata().get(QAT_KEY);
        return v != null && "bitnet1.58".equals(String.valueOf(v.value()));
    }

    /** A BitLinear weight: a matrix of a transformer block (attention q/k/v/output, ffn gate/up/down). */
    public static boolean isLinear(Tensor t) {
        return t.rank() == 2 && t.name().startsWith("blk.");
    }

    /** The model with each linear weight replaced by its absmean ternarization ŵ ∈ {−γ, 0, γ} (F32). */
    public static Model apply(Model model) {
        Map<String, Tensor> replaced = new LinkedHashMap<>();
        for (Tensor t : model.tensors().values()) {
            if (!isLinear(t)) continue;
            int rows = Math.toIntExact(t.rows()), cols = Math.toIntExact(t.cols());
            float[] w = MatMul.toFloats(t);                                         // (rows, cols)
            float[] what = FakeQuant.BitNet.TERNARY.apply(w, rows, cols);           // (rows, cols) γ · t
            MemorySegment seg = Arena.ofAuto().allocate(4L * what.length, 64);
            MemorySegment.copy(what, 0, seg, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, what.length);
            replaced.put(t.name(), new Tensor(t.name(), GgmlType.F32, t.shape(), seg));
        }
        return model.withTensors(replaced);
    }
}
