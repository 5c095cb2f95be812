package org.quant4j.io.safetensors;

import org.quant4j.format.GgmlType;

/**
 * Every element type the safetensors format defines (the {@code Dtype} enum of huggingface/safetensors, 0.6), in the
 * library's own order, which is increasing alignment: its writer lays tensors out from the last of these to the first.
 * The name is the string the header's {@code "dtype"} field holds.
 *
 * <p>Sub-byte types (F4, F6_*) pack their elements into bytes; a tensor of them must fill a whole number of bytes.
 */
public enum SafetensorsDtype {
    BOOL(8, null),
    F4(4, null),          // MX FP4 E2M1, two per byte
    F6_E2M3(6, null),     // MX FP6
    F6_E3M2(6, null),     // MX FP6
    U8(8, null),
    I8(8, GgmlType.I8),
    F8_E5M2(8, null),
    F8_E4M3(8, null),
    F8_E8M0(8, null),     // MX scale: a bare power-of-two exponent
    I16(16, GgmlType.I16),
    U16(16, null),
    F16(16, GgmlType.F16),
    BF16(16, GgmlType.BF16),
    I32(32, GgmlType.I32),
    U32(32, null),
    F32(32, GgmlType.F32),
    C64(64, null),        // complex: two F32
    F64(64, GgmlType.F64),
    I64(64, GgmlType.I64),
    U64(64, null);

    private final int bits;
    private final GgmlType ggmlType;

    SafetensorsDtype(int bits, GgmlType ggmlType) {
        this.bits = bits;
        this.ggmlType = ggmlType;
    }

    /** Bits per element. */
    public int bits() { return bits; }

    /** The ggml storage type with the same bytes, or null where ggml has none. */
    public GgmlType ggmlType() { return ggmlType; }

    /**
     * Bytes that {@code count} elements occupy, or -1 if they do not fill a whole number of bytes.
     *
     * @throws ArithmeticException if the size overflows a long
     */
    public long byteSize(long count) {
        long nbits = Math.multiplyExact(count, (long) bits);
        return nbits % 8 == 0 ? nbits / 8 : -1;
    }

    /** The dtype named exactly {@code name} (case-sensitive, as the format spells it), or null. */
    public static SafetensorsDtype byName(String name) {
        for (SafetensorsDtype d : values()) if (d.name().equals(name)) return d;
        return null;
    }

    /** The dtype that stores a ggml type's bytes unchanged, or null for ggml's block-quantized types. */
    public static SafetensorsDtype of(GgmlType type) {
        for (SafetensorsDtype d : values()) if (d.ggmlType == type) return d;
        return null;
    }
}
