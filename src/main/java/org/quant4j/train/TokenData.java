package org.quant4j.train;

import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * A token stream to train on, and the (B, T) windows a step reads from it. Window starts depend only on the seed and
 * the step number, so a resumed run reads the same batches it would have read without stopping.
 */
public record TokenData(String source, int[] tokens) {

    /** Tokenizes a UTF-8 text file with the model's tokenizer (a BOS token first, as the evaluator does). */
    public static TokenData fromText(Path file, Tokenizer tokenizer) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new Q4jException(file + ": cannot read: " + e.getMessage());
        }
        return new TokenData(file.toString(), tokenizer.encode(text, true, false));
    }

    /**
     * Fills inputs and targets (B·T each) with B windows: inputs = tokens[s, s + T), targets = tokens[s + 1, s + T + 1)
     * for random starts s.
     */
    public void batch(long seed, int step, int B, int T, int[] inputs, int[] targets) {
        int span = tokens.length - T - 1;
        if (span < 0) throw new Q4jException(source + ": " + tokens.length + " tokens are too few for windows of " + T + " (+1)");
        SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + step);
        for (int b = 0; b < B; b++) {
            int s = span == 0 ? 0 : rng.nextInt(span + 1);
            System.arraycopy(tokens, s, inputs, b * T, T);
            System.arraycopy(tokens, s + 1, targets, b * T, T);
        }
    }

    /** Number of non-overlapping windows of T (+1) tokens, at starts 0, T, 2T, ... */
    public int windows(int T) { return Math.max(0, (tokens.length - 1) / T); }

    /** Fills the batch with consecutive non-overlapping windows starting at window {@code first}. */
    public void sequential(int first, int B, int T, int[] inputs, int[] targets) {
        for (int b = 0; b < B; b++) {
            int s = (first + b) * T;
            System.arraycopy(tokens, s, inputs, b * T, T);
            System.arraycopy(tokens, s + 1, targets, b * T, T);
        }
    }
}
