package org.quant4j.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * JSON text exactly as Python's {@code json.dumps(obj, indent=2, sort_keys=True)} writes it, which is how
 * {@code transformers} writes config.json and model.safetensors.index.json: two-space indent, {@code ", "}-free item
 * separators with {@code ": "} after keys, keys sorted, non-ASCII escaped as {@code \\uXXXX}, floats in Python's
 * shortest repr ({@code 1e-05}, {@code 500000.0}).
 */
public final class PyJson {
    private PyJson() {}

    /** The text, with the trailing newline transformers adds. */
    public static String dumps(JsonNode node) {
        StringBuilder sb = new StringBuilder();
        write(sb, node, 0);
        return sb.append('\n').toString();
    }

    private static void write(StringBuilder sb, JsonNode node, int depth) {
        switch (node.getNodeType()) {
            case OBJECT -> {
                if (node.isEmpty()) { sb.append("{}"); return; }
                List<String> keys = new ArrayList<>();
                for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) keys.add(it.next());
                keys.sort(PyJson::compareCodePoints);
                sb.append('{');
                for (int i = 0; i < keys.size(); i++) {
                    sb.append(i > 0 ? "," : "");
                    newline(sb, depth + 1);
                    sb.append(string(keys.get(i))).append(": ");
                    write(sb, node.get(keys.get(i)), depth + 1);
                }
                newline(sb, depth);
                sb.append('}');
            }
            case ARRAY -> {
                if (node.isEmpty()) { sb.append("[]"); return; }
                sb.append('[');
                for (int i = 0; i < node.size(); i++) {
                    sb.append(i > 0 ? "," : "");
                    newline(sb, depth + 1);
                    write(sb, node.get(i), depth + 1);
                }
                newline(sb, depth);
                sb.append(']');
            }
            case STRING -> sb.append(string(node.textValue()));
            case BOOLEAN -> sb.append(node.booleanValue() ? "true" : "false");
            case NULL, MISSING -> sb.append("null");
            case NUMBER -> {
                if (node.isIntegralNumber()) sb.append(node.bigIntegerValue());
                else sb.append(floatRepr(node.doubleValue()));
            }
            default -> throw new IllegalArgumentException("cannot write JSON node of type " + node.getNodeType());
        }
    }

    private static void newline(StringBuilder sb, int depth) {
        sb.append('\n');
        sb.append("  ".repeat(depth));
    }

    /** Python sorts str keys by code point; Java's compareTo compares UTF-16 units (differs only past U+FFFF). */
    private static int compareCodePoints(String a, String b) {
        return java.util.Arrays.compare(a.codePoints().toArray(), b.codePoints().toArray());
    }

    /** A JSON string literal with ensure_ascii: everything outside ' '..'~' escaped. */
    public static String string(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || c > 0x7e) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
    }

    /**
     * Python's {@code repr(float)}: the shortest digits that round-trip, in fixed notation when the decimal point
     * falls within [-4, 16) places of the first digit, else as {@code d.ddde-XX}.
     */
    public static String floatRepr(double d) {
        if (Double.isNaN(d)) return "NaN";
        if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        BigDecimal bd = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros(); // shortest digits (JDK 19+)
        String digits = bd.unscaledValue().toString();
        int decpt = digits.length() - bd.scale(); // value = 0.digits × 10^decpt
        StringBuilder sb = new StringBuilder(d < 0 ? "-" : "");
        if (decpt > -4 && decpt <= 16) {
            if (decpt <= 0) {
                sb.append("0.").append("0".repeat(-decpt)).append(digits);
            } else if (decpt >= digits.length()) {
                sb.append(digits).append("0".repeat(decpt - digits.length())).append(".0");
            } else {
                sb.append(digits, 0, decpt).append('.').append(digits, decpt, digits.length());
            }
        } else {
            sb.append(digits.charAt(0));
            if (digits.length() > 1) sb.append('.').append(digits, 1, digits.length());
            int exp = decpt - 1;
            sb.append('e').append(exp < 0 ? '-' : '+');
            String e = Integer.toString(Math.abs(exp));
            sb.append(e.length() < 2 ? "0" + e : e);
        }
        return sb.toString();
    }

    /** Convenience for maps of plain values (String, Number, Boolean, nested Map / List). */
    public static String dumps(Map<String, ?> map) {
        JsonNode node = new com.fasterxml.jackson.databind.ObjectMapper().valueToTree(map);
        return dumps(node);
    }
}
