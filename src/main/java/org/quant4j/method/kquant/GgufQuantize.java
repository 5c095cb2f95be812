package org.quant4j.method.kquant;

import org.quant4j.format.GgmlType;
import org.quant4j.format.ggml.BlockCodec;
import org.quant4j.format.ggml.GgmlCodecs;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.kernel.MatMul;
import org.quant4j.kernel.Parallel;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.*;
import java.util.regex.Pattern;

/**
 * llama-quantize as a method: every weight matrix of a model re-encoded in ggml's block types, by a llama.cpp file type
 * and its per-tensor rules ({@link TensorTypeRules}), optionally weighted by an importance matrix. Given the same input
 * values and options it produces the tensor types and bytes llama-quantize produces: the same selection of tensors
 * (2-D "weight" tensors except norms), the same mix, the same fallbacks, the same user overrides in the same order of
 * precedence, and the codecs of {@link GgmlCodecs}, which write ggml's bytes.
 */
public final class GgufQuantize {
    private GgufQuantize() {}

    /** {@code --tensor-type REGEX=TYPE}: the last matching pattern wins. */
    public record TensorTypeOverride(Pattern pattern, GgmlType type) {}

    /**
     * @param fileType            the mix ({@code Q4_K_M} ...)
     * @param pure                every quantized tensor gets the file type's default type (no per-tensor rules)
     * @param tensorTypes         per-tensor overrides (ignored for a tensor whose rows forced a fallback, as llama.cpp does)
     * @param outputType          type of output.weight, or null
     * @param tokenEmbeddingType  type of token_embd.weight, or null
     * @param leaveOutput         keep output.weight as it is
     * @param imatrix             importance matrix, or null
     */
    public record Options(LlamaFileType fileType, boolean pure, List<TensorTypeOverride> tensorTypes, GgmlType outputType,
                          GgmlType tokenEmbeddingType, boolean leaveOutput, ImportanceMatrix imatrix) {
        public Options {
            tensorTypes = tensorTypes == null ? List.of() : List.copyOf(tensorTypes);
        }

        public static Options of(LlamaFileType fileType) { return new Options(fileType, false, List.of(), null, null, false, null); }

        public Options withImatrix(ImportanceMatrix m) { return new Options(fileType, pure, tensorTypes, outputType, tokenEmbeddingType, leaveOutput, m); }
    }

    /** Whether llama-quantize quantizes this tensor at all. */
    static boolean quantizable(Tensor t, boolean leaveOutput) {
        String name = t.name();
        return name.endsWith("weight") && t.rank() >= 2 && !name.contains("_norm.weight")
                && !(leaveOutput && name.equals("output.weight"))
                && !name.equals("position_embd.weight") && !name.equals("token_types.weight");
    }

    /** The model's tensors in llama.cpp's order. */
    public static List<Tensor> llamaOrder(Model model) {
        List<Tensor> ts = new ArrayList<>(model.tensors().values());
        ts.sort((a, b) -> TensorTypeRules.llamaOrder(a.name(), b.name()));
        return ts;
    }

    /**
     * The type each tensor gets, in llama.cpp's order; tensors that stay as they are map to their own type.
     *
     * @throws Q4jException when a low-bit type needs an importance matrix that is missing, or an imatrix entry has the wrong size
     */
    public static LinkedHashMap<String, GgmlType> plan(Model model, Options o) {
        List<Tensor> tensors = llamaOrder(model);
        int nAttentionWv = 0;
        boolean hasOutput = false;
        for (Tensor t : tensors) {
            if (t.name().contains("attn_v.weight")) nAttentionWv++;
            else if (t.name().equals("output.weight")) hasOutput = true;
        }
        var c = model.config();
        boolean is70B = c.nLayers() == 80 && c.nHeads() != c.nKvHeads();
        TensorTypeRules rules = new TensorTypeRules(o.fileType(), c.nLayers(), nAttentionWv, c.nHeads() / c.nKvHeads(),
                hasOutput, o.imatrix() != null, is70B);
        GgmlType defaultType = o.fileType().defaultType;

        LinkedHashMap<String, GgmlType> plan = new LinkedHashMap<>();
        for (Tensor t : tensors) {
            GgmlType current = t.type() instanceof GgmlType g ? g : null;
            if (!quantizable(t, o.leaveOutput())) {
                plan.put(t.name(), current);
                continue;
            }
            GgmlType type = defaultType;
            if (!o.pure() && defaultType.isQuantized()) {
                int before = rules.fallbacks();
                type = rules.choose(t.name(), t.cols(), type, o.outputType(), o.tokenEmbeddingType());
                if (rules.fallbacks() == before) {
                    for (TensorTypeOverride ov : o.tensorTypes()) if (ov.pattern().matcher(t.name()).find()) type = ov.type();
                }
            }
            if (o.tokenEmbeddingType() != null && t.name().equals("token_embd.weight")) type = o.tokenEmbeddingType();
            if (o.outputType() != null && t.name().equals("output.weight")) type = o.outputType();
            if (t.cols() % type.blockSize() != 0) {
                throw new Q4jException("tensor " + t.name() + ": rows of " + t.cols() + " values do not divide into " + type
                        + " blocks of " + type.blockSize() + " (drop --pure, or choose another type for it with --tensor-type)");
            }
            if (o.imatrix() != null) {
                float[] w = o.imatrix().sums().get(t.name());
                if (w != null && w.length != t.cols() && !t.name().equals("token_embd.weight")) {
                    throw new Q4jException("importance matrix: " + t.name() + " has " + w.length + " values, the tensor has "
                            + t.cols() + " columns");
                }
            }
            boolean needsImatrix = type == GgmlType.Q2_K && o.fileType() == LlamaFileType.Q2_K_S && !t.name().equals("token_embd.weight");
            if (needsImatrix && (o.imatrix() == null || o.imatrix().weights(t.name()) == null)) {
                throw new Q4jException("tensor " + t.name() + ": Q2_K_S needs an importance matrix (quant4j imatrix MODEL -f TEXT -o imatrix.gguf)");
            }
            plan.put(t.name(), type);
        }
        return plan;
    }

    /** Quantizes the model: every tensor whose planned type differs from its own is re-encoded (held in memory). */
    public static Model apply(Model model, Options o) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, GgmlType> e : plan(model, o).entrySet()) {
            Tensor t = model.tensor(e.getKey());
            if (e.getValue() != null && e.getValue() != t.type()) out.put(t.name(), quantize(t, e.getValue(), importance(o, t)));
        }
        return model.withTensors(out).withMetadata(metadata(o));
    }

    /** The importance weights llama-quantize would pass for this tensor (null when none, or when the size does not fit). */
    public static float[] importance(Options o, Tensor t) {
        if (o.imatrix() == null) return null;
        float[] w = o.imatrix().weights(t.name());
        return w != null && w.length == t.cols() ? w : null;
    }

    /** The keys llama-quantize adds: file type, quantization version, and where the importance matrix came from. */
    public static Map<String, GgufValue> metadata(Options o) {
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("general.quantization_version", GgufValue.u32(2));
        m.put("general.file_type", GgufValue.u32(o.fileType().id));
        ImportanceMatrix im = o.imatrix();
        if (im != null) {
            if (!im.datasets().isEmpty()) m.put("quantize.imatrix.dataset", GgufValue.string(im.datasets().getFirst()));
            m.put("quantize.imatrix.entries_count", GgufValue.u32(im.size()));
            if (im.chunkCount() > 0) m.put("quantize.imatrix.chunks_count", GgufValue.u32(im.chunkCount()));
        }
        return m;
    }

    /**
     * One tensor [rows, cols] re-encoded as {@code type}, rows in parallel, each row as ggml_quantize_chunk writes it.
     *
     * @param importance (cols) importance weights, or null
     */
    public static Tensor quantize(Tensor t, GgmlType type, float[] importance) {
        BlockCodec codec = GgmlCodecs.of(type);
        int cols = Math.toIntExact(t.cols());
        long rows = t.rows();
        long rowBytes = type.rowBytes(cols);
        MemorySegment data = Arena.ofAuto().allocate(rowBytes * rows, 64);
        Parallel.forRange(Math.toIntExact(rows), Math.max(1, (1 << 16) / cols), (start, end) -> {
            float[] row = new float[cols]; // (cols)
            for (int r = start; r < end; r++) {
                MatMul.dequantizeRow(t, r, row, 0);
                codec.quantize(row, 0, cols, importance, data, r * rowBytes);
            }
        });
        return new Tensor(t.name(), type, t.shape(), data);
    }
}
