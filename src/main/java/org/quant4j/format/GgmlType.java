package org.quant4j.format;

/**
 * Every tensor storage type ggml defines, with its numeric id (as written in GGUF), the number of values in one block
 * and the number of bytes one block takes. Ids and sizes follow ggml.h / ggml.c; ids that ggml retired are absent.
 */
public enum GgmlType implements StorageType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q4_1(3, 32, 20),
    Q5_0(6, 32, 22),
    Q5_1(7, 32, 24),
    Q8_0(8, 32, 34),
    Q8_1(9, 32, 36),
    Q2_K(10, 256, 84),
    Q3_K(11, 256, 110),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    Q8_K(15, 256, 292),
    IQ2_XXS(16, 256, 66),
    IQ2_XS(17, 256, 74),
    IQ3_XXS(18, 256, 98),
    IQ1_S(19, 256, 50),
    IQ4_NL(20, 32, 18),
    IQ3_S(21, 256, 110),
    IQ2_S(22, 256, 82),
    IQ4_XS(23, 256, 136),
    I8(24, 1, 1),
    I16(25, 1, 2),
    I32(26, 1, 4),
    I64(27, 1, 8),
    F64(28, 1, 8),
    IQ1_M(29, 256, 56),
    BF16(30, 1, 2),
    TQ1_0(34, 256, 54),
    TQ2_0(35, 256, 66),
    MXFP4(39, 32, 17);

    private final int id;
    private final int blockSize;
    private final int typeSize;

    GgmlType(int id, int blockSize, int typeSize) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
    }

    /** The id GGUF files use for this type. */
    public int id() { return id; }

    /** Values per block (1 for plain element types). */
    public int blockSize() { return blockSize; }

    /** Bytes per block. */
    public int typeSize() { return typeSize; }

    public boolean isQuantized() { return blockSize > 1; }


    /**
     * Bytes that {@code count} values of this type occupy.
     *
     * @throws IllegalArgumentException if {@code count} is not a whole number of blocks or the size overflows
     */
    public long byteSize(long count) {
        if (count < 0) throw new IllegalArgumentException("negative element count " + count);
        if (count % blockSize != 0) {
            throw new IllegalArgumentException(count + " values do not divide into " + name() + " blocks of " + blockSize);
        }
        return Math.multiplyExact(count / blockSize, (long) typeSize);
    }

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) BY_ID[t.id] = t;
    }

    /** The type with this GGUF id, or null if ggml defines none. */
    public static GgmlType byId(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }

    /** Parses a type name case-insensitively ("q4_k", "Q4_K", "f16"). */
    public static GgmlType parse(String name) {
        for (GgmlType t : values()) if (t.name().equalsIgnoreCase(name)) return t;
        throw new IllegalArgumentException("unknown ggml type '" + name + "'");
    }
}
