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

    /**
     * Asymmetric 4-bit groups of 32 {f16 scale, int8 z', 16 bytes of nibbles q' + 8} as Q4_1 blocks {f16 d, f16 m, the
     * same 16 bytes}: value = scale · (q' − z') = d · q + m with q = q' + 8, d = scale, m = −scale · (z' + 8), m rounded
     * to F16 (the only change to the values: at most half an F16 ulp of m).
     */
    static MemorySegment toQ4_1(Tensor t, org.quant4j.format.IntQuantType q) {
        long blocks = t.size() / 32;
        MemorySegment src = t.data(), dst = MemorySegment.ofArray(new byte[Math.toIntExact(GgmlType.Q4_1.byteSize(t.size()))]);
        int in = q.groupBytes(32), out = (int) GgmlType.Q4_1.byteSize(32);
        for (long b = 0; b < blocks; b++) {
            long so = b * in, d0 = b * out;
            short d = src.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, so);
            float m = -Float.float16ToFloat(d) * (q.zeroPoint(src, so) + 8);
            dst.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, d0, d);
            dst.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, d0 + 2, Float.floatToFloat16(m));
            MemorySegment.copy(src, so + 3, dst, d0 + 4, 16);
        }
        return dst;
    }

    private static PendingTensor convert(Tensor t, GgmlType floatType) {
        if (t.type() instanceof org.quant4j.format.IntQuantType q) {
            // symmetric groups of 32 have ggml's block layouts byte for byte; asymmetric 4-bit ones become Q4_1
            GgmlType same = q.groupSize() != 32 ? null : q.symmetric() ? (q.bits() == 4 ? GgmlType.Q4_0 : q.bits() == 8 ? GgmlType.Q8_0 : null)
                    : q.bits() == 4 ? GgmlType.Q4_1 : null;
            if (same != null && t.cols() % 32 != 0) {
                throw new org.quant4j.util.Q4jException("tensor " + t.name() + ": rows of " + t.cols() + " values end in a ragged group, which "
                        + same + " cannot hold; exclude it (--exclude) or save as safetensors");
            }
            if (same == null) {
                throw new org.quant4j.util.Q4jException("tensor " + t.name() + ": " + q.name() + " has no GGUF equivalent (only "
                        + "groups of 32 do: symmetric 4- and 8-bit as Q4_0, Q8_0, asymmetric 4-bit as Q4_1); save it as safetensors (decoders), or quantize to a GGUF type (--group-size 32, or --type T)");
            }
            if (same == GgmlType.Q4_1) return new PendingTensor(t.name(), same, t.shape(), () -> toQ4_1(t, q));
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
