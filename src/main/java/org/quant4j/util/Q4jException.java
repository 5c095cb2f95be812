package org.quant4j.util;

/**
 * An error the user can act on: bad input, a missing file, an unsupported option. The CLI prints its message alone
 * (one line, no stack trace) and exits non-zero. Messages name the file, the tensor and the byte offset where known.
 * Control characters in the message (say, from a tensor name in a forged file) are shown escaped, so the message
 * stays one line.
 */
public class Q4jException extends RuntimeException {
    public Q4jException(String message) { super(oneLine(message)); }

    public Q4jException(String message, Throwable cause) { super(oneLine(message), cause); }

    private static String oneLine(String message) {
        if (message == null || message.chars().noneMatch(c -> c < 0x20 || c == 0x7f)) return message;
        StringBuilder sb = new StringBuilder(message.length() + 16);
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            switch (c) {
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20 || c == 0x7f) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.toString();
    }
}
