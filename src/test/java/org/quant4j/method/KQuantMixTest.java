package org.quant4j.method;

import org.junit.jupiter.api.Test;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.method.kquant.GgufQuantize;
import org.quant4j.method.kquant.ImportanceMatrix;
import org.quant4j.method.kquant.LlamaFileType;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.model.RandomModel;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.Arena;
import java.util.*;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** llama-quantize's file-type mixes: which tensor gets which type. */
class KQuantMixTest {

    /** A model of the given shape whose tensors are zero-filled (the plan looks at names and shapes only). */
    static Model shapeOnly(LlamaConfig c) {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Arena arena = Arena.ofAuto();
        for (var p : RandomModel.tensors(c, GgmlType.F16, 1)) {
            long bytes = Tensor.byteSize(p.name(), p.type(), p.shape());
            tensors.put(p.name(), new Tensor(p.name(), p.type(), p.shape(), arena.allocate(bytes)));
        }
        return new Model(c, tensors, new LinkedHashMap<>(), "shape-only", List.of());
    }

    static LlamaConfig config(int layers, int heads, int kvHeads, boolean tied) {
        return new LlamaConfig("llama", 256, 512, layers, heads, kvHeads, 256 / heads, 256, 256, 1e-5f, 10000f,
                LlamaConfig.RopeType.NORMAL, null, tied, false);
    }

    static Map<GgmlType, Integer> matrixTypeCounts(Model m, Map<String, GgmlType> plan) {
        Map<GgmlType, Integer> counts = new TreeMap<>();
        for (var e : plan.entrySet()) if (m.tensor(e.getKey()).rank() == 2) counts.merge(e.getValue(), 1, Integer::sum);
        return counts;
    }

    /**
     * llama.cpp's load log for llama-2-7b.Q4_K_M.gguf (32 layers) reads "type q4_K: 193 tensors, type q6_K: 33 tensors":
     * attn_v and ffn_down in 16 "more bits" layers each, and the output head, get Q6_K.
     */
    @Test
    void q4KMOfA32LayerLlamaMatchesLlamaCppsCounts() {
        Model m = shapeOnly(config(32, 8, 8, false));
        var plan = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q4_K_M));
        assertEquals(Map.of(GgmlType.Q4_K, 193, GgmlType.Q6_K, 33), matrixTypeCounts(m, plan));
        assertEquals(GgmlType.Q6_K, plan.get("output.weight"));
        assertEquals(GgmlType.Q4_K, plan.get("token_embd.weight"));
        // more bits: layers 0-3, 28-31 and 6, 9, ..., 27
        for (int l = 0; l < 32; l++) {
            boolean more = l < 4 || l >= 28 || (l - 4) % 3 == 2;
            assertEquals(more ? GgmlType.Q6_K : GgmlType.Q4_K, plan.get(Model.attnV(l)), "attn_v " + l);
            assertEquals(more ? GgmlType.Q6_K : GgmlType.Q4_K, plan.get(Model.ffnDown(l)), "ffn_down " + l);
            assertEquals(GgmlType.Q4_K, plan.get(Model.attnQ(l)));
        }
        assertEquals(GgmlType.F32, plan.get(Model.attnNorm(0)), "norms stay F32");
    }

    /** TinyLlama-1.1B Q4_K_M (22 layers), as llama.cpp logs it: "q4_K: 135 tensors, q6_K: 21 tensors". */
    @Test
    void q4KMOfA22LayerModel() {
        Model m = shapeOnly(config(22, 8, 1, false));
        var plan = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q4_K_M));
        assertEquals(Map.of(GgmlType.Q4_K, 135, GgmlType.Q6_K, 21), matrixTypeCounts(m, plan));
    }

    @Test
    void q2KAndQ3KMixes() {
        Model m = shapeOnly(config(8, 8, 2, false)); // grouped-query attention with 4 heads per kv head
        var q2 = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q2_K));
        assertEquals(GgmlType.Q4_K, q2.get(Model.attnV(0)), "n_gqa >= 4: attn_v Q4_K");
        assertEquals(GgmlType.Q3_K, q2.get(Model.ffnDown(3)));
        assertEquals(GgmlType.Q3_K, q2.get(Model.attnOutput(3)));
        assertEquals(GgmlType.Q2_K, q2.get(Model.ffnUp(3)));
        var q3m = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q3_K_M));
        assertEquals(GgmlType.Q5_K, q3m.get(Model.attnV(0)));
        assertEquals(GgmlType.Q5_K, q3m.get(Model.attnV(1)));
        assertEquals(GgmlType.Q4_K, q3m.get(Model.attnV(2)));
        assertEquals(GgmlType.Q4_K, q3m.get(Model.ffnDown(0)), "layer 0 < 8/16 is false: Q4_K");
        assertEquals(GgmlType.Q4_K, q3m.get(Model.attnOutput(5)));
        var q3l = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q3_K_L));
        assertEquals(GgmlType.Q5_K, q3l.get(Model.ffnDown(5)));
        var q4s = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q4_K_S));
        assertEquals(GgmlType.Q5_K, q4s.get(Model.attnV(3)));
        assertEquals(GgmlType.Q4_K, q4s.get(Model.attnV(4)));
        assertEquals(GgmlType.Q5_K, q4s.get(Model.ffnDown(0)));
        assertEquals(GgmlType.Q4_K, q4s.get(Model.ffnDown(1)));
    }

    @Test
    void pureOverridesAndOutputTypes() {
        Model m = shapeOnly(config(8, 8, 8, false));
        var pure = GgufQuantize.plan(m, new GgufQuantize.Options(LlamaFileType.Q4_K_M, true, List.of(), null, null, false, null));
        assertEquals(Map.of(GgmlType.Q4_K, 58), matrixTypeCounts(m, pure));
        var o = new GgufQuantize.Options(LlamaFileType.Q4_K_M, false,
                List.of(new GgufQuantize.TensorTypeOverride(Pattern.compile("ffn_up"), GgmlType.Q8_0),
                        new GgufQuantize.TensorTypeOverride(Pattern.compile("blk\\.7\\.ffn_up"), GgmlType.Q5_K)),
                GgmlType.Q8_0, GgmlType.Q5_0, false, null);
        var plan = GgufQuantize.plan(m, o);
        assertEquals(GgmlType.Q8_0, plan.get(Model.ffnUp(0)));
        assertEquals(GgmlType.Q5_K, plan.get(Model.ffnUp(7)), "the last matching pattern wins");
        assertEquals(GgmlType.Q8_0, plan.get("output.weight"));
        assertEquals(GgmlType.Q5_0, plan.get("token_embd.weight"));
        var leave = GgufQuantize.plan(m, new GgufQuantize.Options(LlamaFileType.Q4_K_M, false, List.of(), null, null, true, null));
        assertEquals(GgmlType.F16, leave.get("output.weight"), "--leave-output-tensor keeps its type");
    }

    /** stories260K's rows (64 and 172 values) do not divide into 256-blocks: llama.cpp's fallbacks apply. */
    @Test
    void rowsThatDoNotDivideFallBack() {
        LlamaConfig c = new LlamaConfig("llama", 64, 172, 5, 8, 4, 8, 512, 512, 1e-5f, 10000f, LlamaConfig.RopeType.NORMAL, null, true, false);
        Model m = shapeOnly(c);
        var plan = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q4_K_M));
        assertEquals(GgmlType.Q8_0, plan.get("token_embd.weight"), "tied head: the embedding follows the output rule; 64 % 256 → Q8_0");
        assertEquals(GgmlType.Q5_0, plan.get(Model.attnQ(0)), "Q4_K → Q5_0");
        assertEquals(GgmlType.F16, plan.get(Model.ffnDown(2)), "Q4_K → Q5_0, and 172 % 32 → F16");
        var q2 = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q2_K));
        assertEquals(GgmlType.IQ4_NL, q2.get(Model.attnQ(0)), "Q2_K → IQ4_NL");
        assertThrows(Q4jException.class, () -> GgufQuantize.plan(m,
                new GgufQuantize.Options(LlamaFileType.Q4_K_M, true, List.of(), null, null, false, null)),
                "--pure has no fallback: a clear error");
    }

    @Test
    void importanceMatrixRulesAndChecks() {
        Model m = shapeOnly(config(16, 8, 8, false));
        Map<String, float[]> sums = new LinkedHashMap<>();
        Map<String, Float> counts = new LinkedHashMap<>();
        for (Tensor t : m.tensors().values()) {
            if (t.name().startsWith("blk.") && t.rank() == 2) {
                sums.put(t.name(), new float[(int) t.cols()]);
                counts.put(t.name(), 10f);
            }
        }
        ImportanceMatrix im = new ImportanceMatrix(sums, counts, List.of("x.txt"), 3, 128);
        var q40 = GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q4_0).withImatrix(im));
        assertEquals(GgmlType.Q4_1, q40.get(Model.ffnDown(1)), "with an imatrix, Q4_0's first eighth of ffn_down is Q4_1");
        assertEquals(GgmlType.Q4_0, q40.get(Model.ffnDown(2)));
        assertEquals(GgmlType.Q4_0, GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q4_0)).get(Model.ffnDown(1)));
        assertThrows(Q4jException.class, () -> GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q2_K_S)), "Q2_K_S needs an imatrix");
        Map<String, GgufValue> meta = GgufQuantize.metadata(GgufQuantize.Options.of(LlamaFileType.Q4_0).withImatrix(im));
        assertEquals(2L, meta.get("general.quantization_version").asLong());
        assertEquals(2L, meta.get("general.file_type").asLong());
        assertEquals("x.txt", meta.get("quantize.imatrix.dataset").asString());
        sums.put(Model.attnQ(0), new float[7]);
        ImportanceMatrix bad = new ImportanceMatrix(sums, counts, List.of(), 0, 0);
        Q4jException e = assertThrows(Q4jException.class, () -> GgufQuantize.plan(m, GgufQuantize.Options.of(LlamaFileType.Q4_0).withImatrix(bad)));
        assertTrue(e.getMessage().contains("blk.0.attn_q.weight"), e.getMessage());
    }

    @Test
    void fileTypeNames() {
        assertEquals(LlamaFileType.Q4_K_M, LlamaFileType.parse("q4_k_m"));
        assertEquals(LlamaFileType.Q4_K_M, LlamaFileType.parse("Q4_K"));
        assertEquals(15, LlamaFileType.Q4_K_M.id);
        assertThrows(Q4jException.class, () -> LlamaFileType.parse("Q4_X"));
    }
}
