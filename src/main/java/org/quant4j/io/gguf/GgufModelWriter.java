package org.quant4j.io.gguf;

import org.quant4j.format.FloatFormats;
import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufWriter.PendingTensor;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Writes a {@link Model} as a GGUF file llama.cpp loads: architecture keys from the config, then the model's metadata. */
public final class GgufModelWriter {
    private GgufModelWriter() {}

    /**
     * Writes {@code model}; when {@code floatType} is F32, F16 or BF16, every float matrix is converted to it on the way
     * out (one tensor at a time), while vectors (norms, biases) stay F32 as llama.cpp keeps them.
     */
    public static void write(Model model, Path out, GgmlType floatType, Path... inputs) {
        List<PendingTensor> tensors = new ArrayList<>();
        for (Tensor t : model.tensors().values()) tensors.add(convert(t, floatType));
        writePending(model, tensors, out, fileType(tensors), inputs);
    }

    /** Writes the model's config and metadata with the given tensors (which may be produced lazily). */
    public static void writePending(Model model, List<PendingTensor> tensors, Path out, int fileType, Path... inputs) {
        writePending(model.config().toGguf(), model.metadata(), tensors, out, fileType, inputs);
    }

    public static void writePending(Map<String, GgufValue> configKeys, Map<String, GgufValue> modelMeta, List<PendingTensor> tensors,
                                    Path out, int fileType, Path... inputs) {
        Map<String, GgufValue> meta = new LinkedHashMap<>();
        meta.put("general.architecture", configKeys.get("general.architecture"));
        meta.put("general.name", modelMeta.getOrDefault("general.name", GgufValue.string("quant4j model")));
        for (Map.Entry<String, GgufValue> e : configKeys.entrySet()) meta.putIfAbsent(e.getKey(), e.getValue());
        meta.put("general.file_type", GgufValue.u32(fileType));
        for (Map.Entry<String, GgufValue> e : modelMeta.entrySet()) {
            // where a Hugging Face checkpoint came from means nothing in a GGUF file
            if (e.getKey().equals("quant4j.tokenizer_json") || e.getKey().equals("quant4j.hf_config_json") || e.getKey().equals("general.file_type")) continue;
            meta.putIfAbsent(e.getKey(), e.getValue());
        }
        GgufWriter.writePending(out, meta, tensors, inputs);
    }

    /** llama.cpp's general.file_type (llama_ftype) for a set of tensors: the type most weights use. */
    static int fileType(List<PendingTensor> tensors) {
        Map<GgmlType, Long> weight = new LinkedHashMap<>();
        for (PendingTensor t : tensors) if (t.shape().length >= 2) weight.merge(t.type(), t.byteSize(), Long::sum);
        GgmlType main = weight.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(GgmlType.F32);
        return switch (main) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q4_1 -> 3;
            case Q8_0 -> 7;
            case Q5_0 -> 8;
            case Q5_1 -> 9;
            case Q2_K -> 10;
            case Q3_K -> 12;
            case Q4_K -> 15;
            case Q5_K -> 17;
            case Q6_K -> 18;
            case IQ4_NL -> 25;
            case IQ4_XS -> 30;
            case BF16 -> 32;
            case TQ1_0 -> 36;
            case TQ2_0 -> 37;
            default -> 0;
        };
    }

    private static PendingTensor convert(Tensor t, GgmlType floatType) {
        if (t.type() instanceof org.quant4j.format.IntQuantType q) {
            // symmetric groups of 32 have ggml's block layouts byte for byte
            GgmlType same = q.symmetric() && q.groupSize() == 32 ? (q.bits() == 4 ? GgmlType.Q4_0 : q.bits() == 8 ? GgmlType.Q8_0 : null) : null;
            if (same != null && t.cols() % 32 != 0) {
                throw new org.quant4j.util.Q4jException("tensor " + t.name() + ": rows of " + t.cols() + " values end in a ragged group, which "
                        + same + " cannot hold; exclude it (--exclude) or save as safetensors");
            }
            if (same == null) {
                throw new org.quant4j.util.Q4jException("tensor " + t.name() + ": " + q.name() + " has no GGUF equivalent (only symmetric "
                        + "4- and 8-bit groups of 32 do: Q4_0, Q8_0); save it as safetensors, or quantize to a GGUF type");
            }
            return new PendingTensor(t.name(), same, t.shape(), t::data);
        }
        boolean floatMatrix = t.rank() >= 2 && (t.type() == GgmlType.F32 || t.type() == GgmlType.F16 || t.type() == GgmlType.BF16);
        if (floatType == null || !floatMatrix || t.type() == floatType) return PendingTensor.of(t);
        int cols = (int) t.cols();
        long rows = t.rows();
        return new PendingTensor(t.name(), floatType, t.shape(), () -> {
            MemorySegment seg = MemorySegment.ofArray(new byte[Math.toIntExact(floatType.byteSize(t.size()))]);
            float[] row = new float[cols];
            long rowBytes = floatType.byteSize(cols);
            for (long r = 0; r < rows; r++) {
                MatMul.dequantizeRow(t, r, row, 0);
                FloatFormats.encodeRow(floatType, row, 0, cols, seg, r * rowBytes);
            }
            return seg;
        });
    }
}
