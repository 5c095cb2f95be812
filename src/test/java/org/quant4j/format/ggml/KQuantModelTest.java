package org.quant4j.format.ggml;

import org.junit.jupiter.api.Test;
import org.quant4j.format.GgmlType;
import org.quant4j.kernel.Kernels;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.model.RandomModel;
import org.quant4j.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A Llama whose linear weights are stored in each k-quant type runs through the generic decode-then-dot kernels, and
 * its logits stay close to the F32 model's, closer with more bits. stories260K's rows (64, 172 wide) do not divide into
 * 256-blocks, so the model is a random one with every width a multiple of 256.
 */
class KQuantModelTest {
    static final GgmlType[] TYPES = {GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K};
    static final int[] TOKENS = {1, 17, 300, 42, 99, 256, 7, 400, 12, 5};

    static Model randomModel() {
        LlamaConfig c = new LlamaConfig("llama", 256, 768, 2, 4, 2, 64, 512, 64, 1e-5f, 10000f,
                LlamaConfig.RopeType.NORMAL, null, false, false);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (var p : RandomModel.tensors(c, GgmlType.F32, 7)) tensors.put(p.name(), new Tensor(p.name(), p.type(), p.shape(), p.data().get()));
        return new Model(c, tensors, Map.of(), "random 256/768", List.of());
    }

    /** The model with every linear layer of the blocks quantized to {@code type} (embedding and head stay F32). */
    static Model quantized(Model base, GgmlType type) {
        BlockCodec codec = GgmlCodecs.of(type);
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Tensor t : base.tensors().values()) {
            if (!t.name().startsWith("blk.") || t.rank() != 2) continue;
            int cols = (int) t.cols();
            float[] w = MatMul.toFloats(t); // (rows, cols)
            Tensor q = Tensor.allocate(t.name(), type, t.shape());
            for (int r = 0; r < t.rows(); r++) codec.quantize(w, r * cols, cols, null, q.data(), r * type.rowBytes(cols));
            out.put(t.name(), q);
        }
        return base.withTensors(out);
    }

    static float[] logits(Model m) {
        Llama l = new Llama(m);
        return l.forward(l.newState(32, 16), TOKENS, true); // (tokens, vocab)
    }

    static double relativeRms(float[] ref, float[] got) {
        double e = 0, s = 0;
        for (int i = 0; i < ref.length; i++) {
            e += (got[i] - ref[i]) * (double) (got[i] - ref[i]);
            s += ref[i] * (double) ref[i];
        }
        return Math.sqrt(e / s);
    }

    @Test
    void kQuantWeightsRunAndStayCloseToF32() {
        boolean before = Kernels.vector();
        try (Model base = randomModel()) {
            float[] ref = logits(base);
            double prev = Double.POSITIVE_INFINITY;
            StringBuilder report = new StringBuilder();
            for (GgmlType type : TYPES) {
                Model q = quantized(base, type);
                assertEquals(type, q.tensor(Model.ffnDown(1)).type());
                float[] got = logits(q);
                double e = relativeRms(ref, got);
                report.append(String.format("%s %.4f%n", type, e));
                assertTrue(e > 0, type + " changed nothing: the weights were not quantized");
                assertTrue(e < prev, type + ": relative logit error " + e + " should be below the previous type's " + prev + "\n" + report);
                prev = e;
                // a one-token decode step takes the matrix-vector path; it agrees with the batched forward pass
                Llama l = new Llama(q);
                Llama.State s = l.newState(32, 16);
                float[] last = null;
                for (int tok : TOKENS) last = l.forward(s, tok);
                int vocab = q.config().vocabSize();
                float[] batchedLast = java.util.Arrays.copyOfRange(got, (TOKENS.length - 1) * vocab, TOKENS.length * vocab);
                double decodeDiff = relativeRms(batchedLast, last);
                assertTrue(decodeDiff < (org.quant4j.kernel.Q8Kernels.kindOf(type) == null ? 1e-3 : 0.25 * e), type + " decode vs batched: " + decodeDiff + " (error vs F32 " + e + ")");
                // the scalar reference path gives the same logits; where activations are quantized to 8 bits (Q8_K),
                // a code may round the other way after float differences upstream, so the bound is relative to the error
                Kernels.setVector(false);
                double bound = org.quant4j.kernel.Q8Kernels.kindOf(type) == null ? 1e-4 : 0.25 * e;
                double diff = relativeRms(got, logits(q));
                assertTrue(diff < bound, type + " scalar vs vector: " + diff + " (error vs F32 " + e + ")");
                Kernels.setVector(before);
            }
            System.out.print(report);
            assertTrue(prev < 0.05, "Q6_K logits within 5% of F32:\n" + report);
        } finally {
            Kernels.setVector(before);
        }
    }
}
