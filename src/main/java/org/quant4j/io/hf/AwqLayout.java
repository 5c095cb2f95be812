package org.quant4j.io.hf;

import org.quant4j.format.IntQuantType;
import org.quant4j.io.safetensors.SafetensorsDtype;
import org.quant4j.io.safetensors.SafetensorsWriter;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The AutoAWQ GEMM layout ("quant_method": "awq", "version": "gemm"; what AutoAWQ writes and transformers, AutoAWQ and
 * GPTQModel load) of a linear layer W [out, in], converted from and to quant4j's {@link IntQuantType} groups:
 * <pre>
 *   PREFIX.qweight  I32 [in, out / 8]       4-bit unsigned codes q ∈ [0, 16) packed along out: word j of row c holds
 *                                           outputs 8j + ORDER[i] in bits 4i … 4i+3, ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
 *   PREFIX.qzeros   I32 [in / g, out / 8]   zero points, packed the same way (no offset, unlike GPTQ v1)
 *   PREFIX.scales   F16 [in / g, out]
 * </pre>
 * value = scale · (q − zero). Read from AutoAWQ's {@code WQLinear_GEMM.from_linear} (intweight transposed to (in, out),
 * then the order_map packing) and its inverse in {@code utils/packing_utils.py} ({@code unpack_awq}: shifts 0, 4, …, 28;
 * {@code reverse_awq_order}: [0, 4, 1, 5, 2, 6, 3, 7]; {@code dequantize_gemm}: (iweight − izeros) · scales, zeros and
 * scales repeated group_size times along in). Only 4 bits (the GEMM kernels' only width), full groups (in divisible by
 * the group size); out a multiple of 32 to write (as from_linear sizes it), of 8 to read. quant4j's signed code q' and zero z' give q = q' + 8, zero = z' + 8; symmetric
 * groups are written with zero 8 (the layout always has zero points) and read back as asymmetric groups of the same
 * values.
 */
public final class AwqLayout {
    private AwqLayout() {}

    public static final String[] SUFFIXES = {"qweight", "qzeros", "scales"};

    /** Output k of a pack of 8 sits in nibble ORDER⁻¹[k]: nibble i holds output ORDER[i]. */
    static final int[] ORDER = {0, 2, 4, 6, 1, 3, 5, 7};

    private static final ValueLayout.OfInt I32 = GptqLayout.I32;
    private static final ValueLayout.OfShort I16 = GptqLayout.I16;

    /** Why {@code type} on a weight [rows, cols] has no AWQ GEMM form, or null when it has one. */
    public static String unsupported(IntQuantType type, long rows, long cols) {
        if (type.bits() != 4) return type.bits() + "-bit codes (AutoAWQ's GEMM layout holds 4 bits only)";
        if (type.perChannel()) return "one group per row (the AWQ layout needs a group size)";
        if (cols % type.groupSize() != 0) return cols + " input features do not divide into groups of " + type.groupSize();
        if (rows % 32 != 0) return rows + " output features are not a multiple of 32 (AutoAWQ's from_linear sizes qweight as out / 32 · 4 words)";
        return null;
    }

    /** The three safetensors entries of one quantized weight t [out, in]; {@code prefix} = "model.layers.0.self_attn.q_proj". */
    public static List<SafetensorsWriter.Entry> encode(String prefix, Tensor t) {
        if (!(t.type() instanceof IntQuantType type)) throw new Q4jException("tensor " + t.name() + " is " + t.type().name() + ", not integer groups");
        int out = (int) t.rows(), in = (int) t.cols();
        String why = unsupported(type, out, in);
        if (why != null) throw new Q4jException("tensor " + t.name() + " (" + type.name() + "): no AWQ GEMM form: " + why);
        int groups = type.groupsPerRow(in), words = out / 8;
        int[] qweight = new int[in * words];                             // (in, out / 8)
        int[] qzeros = new int[groups * words];                          // (groups, out / 8)
        short[] scales = new short[groups * out];                        // (groups, out)
        int[] nibble = new int[8];                                       // nibble[k]: where output 8j + k goes
        for (int i = 0; i < 8; i++) nibble[ORDER[i]] = i;
        long rowBytes = type.rowBytes(in);
        for (int o = 0; o < out; o++) {
            int word = o / 8, shift = 4 * nibble[o % 8];
            for (int g = 0; g < groups; g++) {
                long go = o * rowBytes + type.groupOffset(in, g);
                scales[g * out + o] = t.data().get(ValueLayout.JAVA_SHORT_UNALIGNED, go);
                qzeros[g * words + word] |= (type.zeroPoint(t.data(), go) + 8) << shift;
                int gs = type.groupSize();
                for (int i = 0; i < gs; i++) qweight[(g * gs + i) * words + word] |= (type.code(t.data(), go, gs, i) + 8) << shift;
            }
        }
        return List.of(
                new SafetensorsWriter.Entry(prefix + ".qweight", SafetensorsDtype.I32, new long[]{in, words}, GptqLayout.bytes(qweight)),
                new SafetensorsWriter.Entry(prefix + ".qzeros", SafetensorsDtype.I32, new long[]{groups, words}, GptqLayout.bytes(qzeros)),
                new SafetensorsWriter.Entry(prefix + ".scales", SafetensorsDtype.F16, new long[]{groups, out}, GptqLayout.bytes(scales)));
    }

    /** The weight [out, in] as asymmetric quant4j 4-bit groups from its three AWQ GEMM tensors (little-endian segments). */
    public static Tensor decode(String name, int groupSize, int out, int in, MemorySegment qweight, MemorySegment qzeros, MemorySegment scales) {
        if (groupSize <= 0) throw new Q4jException(name + ": AWQ group_size " + groupSize + " (quant4j reads grouped AWQ checkpoints)");
        IntQuantType type = new IntQuantType(4, groupSize, false);
        if (in % groupSize != 0) throw new Q4jException(name + ": " + in + " input features do not divide into groups of " + groupSize);
        if (out % 8 != 0) throw new Q4jException(name + ": " + out + " output features are not a multiple of 8");
        int groups = in / groupSize, words = out / 8;
        GptqLayout.check(name + ".qweight", qweight, 4L * in * words);
        GptqLayout.check(name + ".qzeros", qzeros, 4L * groups * words);
        GptqLayout.check(name + ".scales", scales, 2L * groups * out);
        long rowBytes = type.rowBytes(in);
        MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * out)]);
        int[] nibble = new int[8];
        for (int i = 0; i < 8; i++) nibble[ORDER[i]] = i;
        int[] q = new int[in];                                           // (in) signed codes of one row
        for (int o = 0; o < out; o++) {
            int word = o / 8, shift = 4 * nibble[o % 8];
            for (int c = 0; c < in; c++) q[c] = ((qweight.getAtIndex(I32, (long) c * words + word) >>> shift) & 15) - 8;
            for (int g = 0; g < groups; g++) {
                int zero = ((qzeros.getAtIndex(I32, (long) g * words + word) >>> shift) & 15) - 8;
                float scale = Float.float16ToFloat(scales.getAtIndex(I16, (long) g * out + o));
                type.writeGroup(data, o * rowBytes + type.groupOffset(in, g), groupSize, scale, zero, q, g * groupSize);
            }
        }
        return new Tensor(name, type, new long[]{out, in}, data);
    }
}
