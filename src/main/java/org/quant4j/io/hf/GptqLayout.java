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
 * The Hugging Face GPTQ layout ("checkpoint_format": "gptq", the v1 format transformers, AutoGPTQ and GPTQModel load)
 * of a linear layer W [out, in], converted from and to quant4j's {@link IntQuantType} groups:
 * <pre>
 *   PREFIX.qweight  I32 [in / 32 · bits, out]   unsigned codes q ∈ [0, 2^bits), packed along in: a little-endian
 *                                               bit stream of bits-wide values in 32-bit words (32 values per bits words;
 *                                               at 3 bits values 10 and 21 straddle two words: AutoGPTQ's and GPTQModel's
 *                                               "10 + 2/1 bits, 1/2 + 10 + 1/2, 2 + 10" pattern is this stream)
 *   PREFIX.qzeros   I32 [groups, out / 32 · bits] zero points, packed the same way along out, then v1's offset: the
 *                                               packed word minus 0x11111111 (4 bits; 0x01010101 for 8, 0x55555555 for 2),
 *                                               i.e. each field holds zero − 1 (the loader adds the constant back); at
 *                                               3 bits each field holds (zero − 1) mod 8, GPTQModel's per-field ("logical")
 *                                               v1 correction, since a packed-word constant would carry across the
 *                                               straddling fields
 *   PREFIX.scales   F16 [groups, out]
 *   PREFIX.g_idx    I32 [in]                    group of each input column: c / group_size
 * </pre>
 * value = scale · (q − zero). quant4j's signed code q' and zero point z' give q = q' + 2^(bits−1), zero = z' + 2^(bits−1)
 * (symmetric: zero = 2^(bits−1), GPTQ's sym zero); the F16 scale bits are copied. Read from GPTQModel's
 * {@code qlinear_cuda_old.pack} / torch dequantisation and {@code convert_gptq_v2_to_v1_format} (3 bits: its
 * {@code pack_original} and {@code _shift_gptq_qzeros}). Groups must be full (in divisible by the group size) and in,
 * out multiples of 32.
 */
public final class GptqLayout {
    private GptqLayout() {}

    public static final String[] SUFFIXES = {"qweight", "qzeros", "scales", "g_idx"};

    /** Why {@code type} on a weight [rows, cols] has no HF GPTQ form, or null when it has one. */
    public static String unsupported(IntQuantType type, long rows, long cols) {
        int b = type.bits();
        if (b != 2 && b != 3 && b != 4 && b != 8) return b + "-bit codes (the HF GPTQ layout is written for 2, 3, 4 and 8 bits)";
        if (cols % 32 != 0 || rows % 32 != 0) return "shape [" + rows + ", " + cols + "]: in and out features must be multiples of 32";
        if (!type.perChannel() && cols % type.groupSize() != 0) return cols + " input features do not divide into groups of " + type.groupSize();
        return null;
    }

    private static int v1Offset(int bits) {
        return switch (bits) {
            case 2 -> 0x55555555;
            case 4 -> 0x11111111;
            case 8 -> 0x01010101;
            case 3 -> 0;                                                // per field, in the stream (see encode)
            default -> throw new IllegalArgumentException(bits + " bits");
        };
    }

    /** The four safetensors entries of one quantized weight t [out, in]; {@code prefix} = "model.layers.0.self_attn.q_proj". */
    public static List<SafetensorsWriter.Entry> encode(String prefix, Tensor t) {
        if (!(t.type() instanceof IntQuantType type)) throw new Q4jException("tensor " + t.name() + " is " + t.type().name() + ", not integer groups");
        int out = (int) t.rows(), in = (int) t.cols(), bits = type.bits(), half = 1 << (bits - 1);
        String why = unsupported(type, out, in);
        if (why != null) throw new Q4jException("tensor " + t.name() + " (" + type.name() + "): no Hugging Face GPTQ form: " + why);
        int groups = type.groupsPerRow(in), zeroWords = out / 32 * bits;
        int[] qweight = new int[in / 32 * bits * out];                   // (in / 32 · bits, out)
        int[] qzeros = new int[groups * (out / 32 * bits)];              // (groups, out / 32 · bits)
        short[] scales = new short[groups * out];                        // (groups, out)
        int[] gIdx = new int[in];                                        // (in)
        long rowBytes = type.rowBytes(in);
        for (int o = 0; o < out; o++) {
            for (int g = 0; g < groups; g++) {
                long go = o * rowBytes + type.groupOffset(in, g);
                int n = type.groupLength(in, g), c0 = type.perChannel() ? 0 : g * type.groupSize();
                scales[g * out + o] = t.data().get(ValueLayout.JAVA_SHORT_UNALIGNED, go);
                int zero = type.zeroPoint(t.data(), go) + half;
                if (bits == 3) zero = (zero - 1) & 7;                   // v1's offset, field by field
                put(qzeros, g * zeroWords, 1, (long) o * bits, bits, zero);
                for (int i = 0; i < n; i++) {
                    int c = c0 + i, q = type.code(t.data(), go, n, i) + half;
                    put(qweight, o, out, (long) c * bits, bits, q);
                    gIdx[c] = g;
                }
            }
        }
        int offset = v1Offset(bits);
        for (int i = 0; i < qzeros.length; i++) qzeros[i] -= offset;
        return List.of(
                new SafetensorsWriter.Entry(prefix + ".qweight", SafetensorsDtype.I32, new long[]{in / 32 * bits, out}, bytes(qweight)),
                new SafetensorsWriter.Entry(prefix + ".qzeros", SafetensorsDtype.I32, new long[]{groups, out / 32 * bits}, bytes(qzeros)),
                new SafetensorsWriter.Entry(prefix + ".scales", SafetensorsDtype.F16, new long[]{groups, out}, bytes(scales)),
                new SafetensorsWriter.Entry(prefix + ".g_idx", SafetensorsDtype.I32, new long[]{in}, bytes(gIdx)));
    }

    /**
     * ORs v (bits wide) into a little-endian bit stream at bit {@code pos}; the stream's k-th 32-bit word is
     * {@code words[base + k · stride]}. A value may straddle two words (3 bits).
     */
    static void put(int[] words, int base, int stride, long pos, int bits, int v) {
        int k = (int) (pos >>> 5), shift = (int) (pos & 31);
        words[base + k * stride] |= v << shift;
        if (shift + bits > 32) words[base + (k + 1) * stride] |= v >>> (32 - shift);
    }

    /** The bits-wide value at bit {@code pos} of a stream of words read by {@code word.applyAsInt(k)}. */
    static int get(java.util.function.IntUnaryOperator word, long pos, int bits) {
        int k = (int) (pos >>> 5), shift = (int) (pos & 31), mask = (1 << bits) - 1;
        int v = word.applyAsInt(k) >>> shift;
        if (shift + bits > 32) v |= word.applyAsInt(k + 1) << (32 - shift);
        return v & mask;
    }

    /** Little-endian int32 and int16, the byte order of safetensors (shared with {@link AwqLayout}). */
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    static MemorySegment bytes(int[] v) {
        MemorySegment s = MemorySegment.ofArray(new byte[4 * v.length]);
        for (int i = 0; i < v.length; i++) s.setAtIndex(I32, i, v[i]);
        return s;
    }

    static MemorySegment bytes(short[] v) {
        MemorySegment s = MemorySegment.ofArray(new byte[2 * v.length]);
        for (int i = 0; i < v.length; i++) s.setAtIndex(I16, i, v[i]);
        return s;
    }

    /**
     * The weight [out, in] as quant4j integer groups from its four HF GPTQ tensors (each a little-endian segment).
     * Refuses g_idx other than c / group size (act-order checkpoints with permuted groups).
     */
    public static Tensor decode(String name, int bits, int groupSize, boolean symmetric, int out, int in,
                                MemorySegment qweight, MemorySegment qzeros, MemorySegment scales, MemorySegment gIdx) {
        IntQuantType type = groupSize <= 0 ? IntQuantType.perChannel(bits, symmetric) : new IntQuantType(bits, groupSize, symmetric);
        String why = unsupported(type, out, in);
        if (why != null) throw new Q4jException(name + ": " + why);
        int groups = type.groupsPerRow(in), zeroWords = out / 32 * bits, half = 1 << (bits - 1);
        check(name + ".qweight", qweight, 4L * in / 32 * bits * out);
        check(name + ".qzeros", qzeros, 4L * groups * (out / 32 * bits));
        check(name + ".scales", scales, 2L * groups * out);
        check(name + ".g_idx", gIdx, 4L * in);
        for (int c = 0; c < in; c++) {
            int g = gIdx.getAtIndex(I32, c);
            if (g != (type.perChannel() ? 0 : c / groupSize)) {
                throw new Q4jException(name + ".g_idx: column " + c + " is in group " + g + "; quant4j reads only groups of consecutive columns (no act-order g_idx)");
            }
        }
        int offset = v1Offset(bits);
        long rowBytes = type.rowBytes(in);
        MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * out)]);
        int[] q = new int[in];                                           // (in) signed codes of one row
        for (int o = 0; o < out; o++) {
            final int row = o;
            java.util.function.IntUnaryOperator column = k -> qweight.getAtIndex(I32, (long) k * out + row);
            for (int c = 0; c < in; c++) q[c] = get(column, (long) c * bits, bits) - half;
            for (int g = 0; g < groups; g++) {
                final long base = (long) g * zeroWords;
                int stored = get(k -> qzeros.getAtIndex(I32, base + k) + offset, (long) o * bits, bits);
                int zero = (bits == 3 ? (stored + 1) & 7 : stored) - half;
                if (symmetric && zero != 0) throw new Q4jException(name + ".qzeros: group " + g + " of row " + o + " has zero point " + (zero + half) + ", not " + half + " as sym requires");
                float scale = Float.float16ToFloat(scales.getAtIndex(I16, (long) g * out + o));
                int n = type.groupLength(in, g), c0 = type.perChannel() ? 0 : g * groupSize;
                type.writeGroup(data, o * rowBytes + type.groupOffset(in, g), n, scale, zero, q, c0);
            }
        }
        return new Tensor(name, type, new long[]{out, in}, data);
    }

    /** Refuses a tensor whose size is not what the layout needs. */
    static void check(String name, MemorySegment s, long bytes) {
        if (s.byteSize() != bytes) throw new Q4jException(name + ": " + s.byteSize() + " bytes, the layout needs " + bytes);
    }
}
