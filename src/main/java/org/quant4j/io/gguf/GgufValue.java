package org.quant4j.io.gguf;

import java.util.Arrays;

/**
 * One typed GGUF metadata value. The type is kept so that a file read and written again is byte-identical.
 *
 * <p>Scalars hold a boxed Java value: Byte (UINT8/INT8), Short (UINT16/INT16), Integer (UINT32/INT32), Long
 * (UINT64/INT64), Float, Double, Boolean or String; unsigned values keep their bit pattern. An ARRAY holds a
 * {@link Array}.
 */
public record GgufValue(GgufValueType type, Object value) {

    /** A GGUF array: its element type and a Java array of the elements (primitive arrays for numbers,
     * {@code String[]} for strings, {@code boolean[]} for BOOL, {@code Array[]} for nested arrays). */
    public record Array(GgufValueType elementType, Object elements) {
        public int length() { return java.lang.reflect.Array.getLength(elements); }

        @Override public boolean equals(Object o) {
            return o instanceof Array a && a.elementType == elementType && Arrays.deepEquals(new Object[]{elements}, new Object[]{a.elements});
        }

        @Override public int hashCode() { return elementType.hashCode(); }

        @Override public String toString() {
            int n = length();
            StringBuilder sb = new StringBuilder("[").append(elementType).append(" x ").append(n);
            if (n > 0) {
                sb.append(": ");
                for (int i = 0; i < Math.min(n, 4); i++) sb.append(i > 0 ? ", " : "").append(java.lang.reflect.Array.get(elements, i));
                if (n > 4) sb.append(", ...");
            }
            return sb.append(']').toString();
        }
    }

    public static GgufValue string(String s) { return new GgufValue(GgufValueType.STRING, s); }
    public static GgufValue u32(int v) { return new GgufValue(GgufValueType.UINT32, v); }
    public static GgufValue i32(int v) { return new GgufValue(GgufValueType.INT32, v); }
    public static GgufValue f32(float v) { return new GgufValue(GgufValueType.FLOAT32, v); }
    public static GgufValue bool(boolean v) { return new GgufValue(GgufValueType.BOOL, v); }
    public static GgufValue u64(long v) { return new GgufValue(GgufValueType.UINT64, v); }
    public static GgufValue strings(String[] v) { return new GgufValue(GgufValueType.ARRAY, new Array(GgufValueType.STRING, v)); }
    public static GgufValue floats(float[] v) { return new GgufValue(GgufValueType.ARRAY, new Array(GgufValueType.FLOAT32, v)); }
    public static GgufValue i32s(int[] v) { return new GgufValue(GgufValueType.ARRAY, new Array(GgufValueType.INT32, v)); }

    /** The value as a long, for any integer type (unsigned types zero-extended). */
    public long asLong() {
        return switch (type) {
            case UINT8 -> Byte.toUnsignedLong((Byte) value);
            case INT8 -> (Byte) value;
            case UINT16 -> Short.toUnsignedLong((Short) value);
            case INT16 -> (Short) value;
            case UINT32 -> Integer.toUnsignedLong((Integer) value);
            case INT32 -> (Integer) value;
            case UINT64, INT64 -> (Long) value;
            case BOOL -> ((Boolean) value) ? 1 : 0;
            default -> throw new IllegalStateException("not an integer: " + type);
        };
    }

    public double asDouble() {
        return switch (type) {
            case FLOAT32 -> (Float) value;
            case FLOAT64 -> (Double) value;
            default -> asLong();
        };
    }

    public String asString() {
        if (type != GgufValueType.STRING) throw new IllegalStateException("not a string: " + type);
        return (String) value;
    }

    public Array asArray() {
        if (type != GgufValueType.ARRAY) throw new IllegalStateException("not an array: " + type);
        return (Array) value;
    }

    @Override public boolean equals(Object o) {
        return o instanceof GgufValue v && v.type == type && java.util.Objects.equals(v.value, value);
    }

    @Override public int hashCode() { return type.hashCode() * 31 + java.util.Objects.hashCode(value); }

    @Override public String toString() { return String.valueOf(value); }
}
