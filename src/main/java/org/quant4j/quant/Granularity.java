package org.quant4j.quant;

/**
 * Which values share one scale (and zero point), on a 2-D tensor of shape [rows, cols]. For a weight, rows are output
 * channels and cols the input dimension; for activations, rows are tokens and cols features.
 */
public enum Granularity {
    /** one scale for the whole tensor */
    TENSOR,
    /** one scale per row: per output channel of a weight */
    CHANNEL,
    /** one scale per column: per input channel (e.g. per feature of activations, SmoothQuant's view) */
    COLUMN,
    /** one scale per group of {@code groupSize} consecutive values along each row; the last group may be shorter */
    GROUP,
    /** one scale per token (row) of an activation matrix, computed at run time */
    TOKEN
}
