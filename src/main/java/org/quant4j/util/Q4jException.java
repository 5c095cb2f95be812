package org.quant4j.util;

/**
 * An error the user can act on: bad input, a missing file, an unsupported option. The CLI prints its message alone
 * (one line, no stack trace) and exits non-zero. Messages name the file, the tensor and the byte offset where known.
 */
public class Q4jException extends RuntimeException {
    public Q4jException(String message) { super(message); }

    public Q4jException(String message, Throwable cause) { super(message, cause); }
}
