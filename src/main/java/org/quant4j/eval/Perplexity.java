package org.quant4j.eval;

import org.quant4j.model.Llama;
import org.quant4j.util.AtomicOutput;
import org.quant4j.util.Q4jException;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Perplexity and KL-divergence the way llama.cpp's llama-perplexity computes them: the text is tokenized once with BOS,
 * cut into chunks of {@code nCtx} tokens, the first token of each chunk is replaced by BOS, the chunk is evaluated from
 * an empty cache, and only the second half of each chunk is scored (tokens first+1 .. nCtx−1 with first = nCtx/2), so
 * every scored token has at least nCtx/2 tokens of context.
 *
 * <p>The base-logits file is llama.cpp's {@code --kl-divergence-base} format, so files written by either tool can be
 * compared with the other: "_logits_", int32 nCtx, int32 nVocab, int32 nChunk, nChunk·nCtx int32 tokens, then per scored
 * token {@code 2·((nVocab+1)/2) + 4} uint16: float scale, float minimum log-probability, and nVocab log-probabilities
 * quantized to 16 bits over the 16 nats below the maximum.
 */
public final class Perplexity {
    private Perplexity() {}

    private static final byte[] MAGIC = "_logits_".getBytes(StandardCharsets.US_ASCII);

    /** @param ppl perplexity; @param pplError its standard error; @param tokens scored tokens */
    public record Result(double ppl, double pplError, long tokens, int chunks, int nCtx, double seconds) {}

    /**
     * KL-divergence of this model's next-token distributions from the base's, over the base file's tokens.
     *
     * @param klMean        mean KL(base ‖ model) in nats, with {@code klError} its standard error
     * @param klPercentiles KL at the 50th, 90th, 99th percentiles and the maximum
     * @param sameTop       fraction of tokens where both models' most likely token agree
     * @param meanDeltaP    mean of p_model(correct) − p_base(correct); {@code rmsDeltaP} its RMS
     */
    public record KlResult(double ppl, double pplError, double basePpl, double klMean, double klError,
                           double[] klPercentiles, double sameTop, double meanDeltaP, double rmsDeltaP, long tokens, double seconds) {}

    /** Number of chunks a token sequence gives (at most {@code maxChunks} when positive). */
    public static int chunks(int nTokens, int nCtx, int maxChunks) {
        int n = nTokens / nCtx;
        return maxChunks > 0 ? Math.min(n, maxChunks) : n;
    }

    /**
     * Perplexity of {@code tokens}; if {@code saveBase} is not null, also writes the base-logits file for later KL runs.
     *
     * @param onChunk called after each chunk with the number of chunks done
     */
    public static Result perplexity(Llama model, int[] tokens, int nCtx, int bos, boolean addBos, int maxChunks,
                                    Path saveBase, IntConsumer onChunk) {
        int nChunk = checkInputs(model, tokens, nCtx, maxChunks);
        int nVocab = model.config.vocabSize();
        int first = nCtx / 2;
        int nv = 2 * ((nVocab + 1) / 2) + 4;
        long t0 = System.nanoTime();
        double[] sums = new double[2]; // nll, nll²
        long[] count = new long[1];
        Llama.State state = model.newState(nCtx, Math.min(nCtx, 512));
        Evaluation eval = (chunkTokens, logits, chunk) -> {
            for (int j = first; j < nCtx - 1; j++) {
                double nll = -logSoftmax(logits, j * nVocab, nVocab, chunkTokens[j + 1]);
                sums[0] += nll;
                sums[1] += nll * nll;
                count[0]++;
            }
        };
        if (saveBase == null) {
            runChunks(model, state, tokens, nCtx, nChunk, bos, addBos, eval, onChunk);
        } else {
            AtomicOutput.write(saveBase, ch -> {
                ByteBuffer head = ByteBuffer.allocate(8 + 12 + 4 * nChunk * nCtx).order(ByteOrder.LITTLE_ENDIAN);
                head.put(MAGIC).putInt(nCtx).putInt(nVocab).putInt(nChunk);
                for (int i = 0; i < nChunk * nCtx; i++) head.putInt(tokens[i]);
                head.flip();
                while (head.hasRemaining()) ch.write(head);
                ByteBuffer rec = ByteBuffer.allocate(2 * nv).order(ByteOrder.LITTLE_ENDIAN);
                Evaluation saving = (chunkTokens, logits, chunk) -> {
                    eval.accept(chunkTokens, logits, chunk);
                    try {
                        for (int j = first; j < nCtx - 1; j++) {
                            encodeLogProbs(logits, j * nVocab, nVocab, rec);
                            rec.flip();
                            while (rec.hasRemaining()) ch.write(rec);
                            rec.clear();
                        }
                    } catch (IOException e) {
                        throw new Q4jException(saveBase + ": write failed: " + e.getMessage(), e);
                    }
                };
                runChunks(model, state, tokens, nCtx, nChunk, bos, addBos, saving, onChunk);
            });
        }
        double[] ppl = pplWithError(sums[0], sums[1], count[0]);
        return new Result(ppl[0], ppl[1], count[0], nChunk, nCtx, (System.nanoTime() - t0) / 1e9);
    }

    /** Compares the model with a base-logits file: KL-divergence, top-1 agreement, Δp, and both perplexities. */
    public static KlResult klDivergence(Llama model, Path baseFile, int bos, boolean addBos, int maxChunks, IntConsumer onChunk) {
        long t0 = System.nanoTime();
        try (InputStream raw = Files.newInputStream(baseFile); DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(raw, 1 << 20))) {
            long fileSize = Files.size(baseFile);
            byte[] magic = new byte[8];
            in.readFully(magic);
            if (!Arrays.equals(magic, MAGIC)) throw new Q4jException(baseFile + ": not a base-logits file (bad magic at offset 0)");
            int nCtx = Integer.reverseBytes(in.readInt());
            int nVocab = Integer.reverseBytes(in.readInt());
            int nChunkFile = Integer.reverseBytes(in.readInt());
            if (nVocab != model.config.vocabSize()) {
                throw new Q4jException(baseFile + ": base logits have a vocabulary of " + nVocab + " at offset 12, the model has " + model.config.vocabSize());
            }
            int first = nCtx / 2;
            int nv = 2 * ((nVocab + 1) / 2) + 4;
            if (nCtx < 4 || nChunkFile < 1) throw new Q4jException(baseFile + ": bad header at offset 8: n_ctx " + nCtx + ", chunks " + nChunkFile);
            long need = 20 + 4L * nChunkFile * nCtx + (long) nChunkFile * (nCtx - 1 - first) * nv * 2;
            if (need != fileSize) {
                throw new Q4jException(baseFile + ": header says " + nChunkFile + " chunks of " + nCtx + " tokens (" + need + " bytes), file has " + fileSize + " bytes");
            }
            int nChunk = maxChunks > 0 ? Math.min(maxChunks, nChunkFile) : nChunkFile;
            int[] tokens = new int[nChunkFile * nCtx];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = Integer.reverseBytes(in.readInt());
                if (tokens[i] < 0 || tokens[i] >= nVocab) throw new Q4jException(baseFile + ": token id " + tokens[i] + " at offset " + (20 + 4L * i) + " is outside the vocabulary");
            }
            byte[] recBytes = new byte[2 * nv];
            ByteBuffer rec = ByteBuffer.wrap(recBytes).order(ByteOrder.LITTLE_ENDIAN);
            int scoredPerChunk = nCtx - 1 - first;
            double[] kls = new double[nChunk * scoredPerChunk];
            double[] acc = new double[8]; // nll, nll², nllBase, nllBase², kl, kl², Δp, Δp²
            long[] sameTop = new long[1];
            int[] k = new int[1];
            Llama.State state = model.newState(nCtx, Math.min(nCtx, 512));
            Evaluation eval = (chunkTokens, logits, chunk) -> {
                for (int j = first; j < nCtx - 1; j++) {
                    try {
                        in.readFully(recBytes);
                    } catch (IOException e) {
                        throw new Q4jException(baseFile + ": read failed: " + e.getMessage(), e);
                    }
                    int off = j * nVocab, tok = chunkTokens[j + 1];
                    float scale = rec.getFloat(0), minLogProb = rec.getFloat(4);
                    int imax = off;
                    for (int i = off + 1; i < off + nVocab; i++) if (logits[i] > logits[imax]) imax = i;
                    float maxLogit = logits[imax];
                    double sumExp = 0;
                    for (int i = off; i < off + nVocab; i++) sumExp += Math.exp(logits[i] - maxLogit);
                    double logZ = maxLogit + Math.log(sumExp);
                    double nll = logZ - logits[off + tok];
                    double nllBase = -(scale * (rec.getShort(8 + 2 * tok) & 0xffff) + minLogProb);
                    double kl = 0;
                    int imaxBase = 0;
                    float bestBase = 0;
                    for (int i = 0; i < nVocab; i++) {
                        float logPBase = scale * (rec.getShort(8 + 2 * i) & 0xffff) + minLogProb;
                        if (i == 0 || logPBase > bestBase) { bestBase = logPBase; imaxBase = i; }
                        if (logPBase > -16f) kl += Math.exp(logPBase) * (logPBase - (logits[off + i] - logZ));
                    }
                    double dp = Math.exp(-nll) - Math.exp(-nllBase);
                    acc[0] += nll; acc[1] += nll * nll; acc[2] += nllBase; acc[3] += nllBase * nllBase;
                    acc[4] += kl; acc[5] += kl * kl; acc[6] += dp; acc[7] += dp * dp;
                    if (imax - off == imaxBase) sameTop[0]++;
                    kls[k[0]++] = kl;
                }
            };
            runChunks(model, state, tokens, nCtx, nChunk, bos, addBos, eval, onChunk);
            long n = k[0];
            double[] ppl = pplWithError(acc[0], acc[1], n);
            double[] basePpl = pplWithError(acc[2], acc[3], n);
            double klMean = acc[4] / n;
            double klVar = acc[5] / n - klMean * klMean;
            double klErr = n > 1 && klVar > 0 ? Math.sqrt(klVar / (n - 1)) : 0;
            double[] sorted = Arrays.copyOf(kls, (int) n);
            Arrays.sort(sorted);
            double[] pct = {percentile(sorted, 0.50), percentile(sorted, 0.90), percentile(sorted, 0.99), sorted[sorted.length - 1]};
            return new KlResult(ppl[0], ppl[1], basePpl[0], klMean, klErr, pct, (double) sameTop[0] / n, acc[6] / n,
                    Math.sqrt(acc[7] / n), n, (System.nanoTime() - t0) / 1e9);
        } catch (NoSuchFileException e) {
            throw new Q4jException(baseFile + ": no such file");
        } catch (java.io.EOFException e) {
            throw new Q4jException(baseFile + ": truncated base-logits file");
        } catch (IOException e) {
            throw new Q4jException(baseFile + ": cannot read: " + e.getMessage(), e);
        }
    }

    // ------------------------------------------------------------------------------------------------------------

    @FunctionalInterface
    private interface Evaluation { void accept(int[] chunkTokens, float[] logits, int chunk); }

    private static int checkInputs(Llama model, int[] tokens, int nCtx, int maxChunks) {
        if (nCtx < 4) throw new Q4jException("context " + nCtx + " is too small for perplexity (at least 4)");
        if (nCtx > model.config.contextLength() * 8L) {
            throw new Q4jException("context " + nCtx + " is far beyond the model's trained context (" + model.config.contextLength() + ")");
        }
        if (tokens.length < 2 * nCtx) {
            throw new Q4jException("the text tokenizes to " + tokens.length + " tokens; perplexity with a context of " + nCtx + " needs at least " + 2 * nCtx);
        }
        return chunks(tokens.length, nCtx, maxChunks);
    }

    private static void runChunks(Llama model, Llama.State state, int[] tokens, int nCtx, int nChunk, int bos, boolean addBos,
                                  Evaluation eval, IntConsumer onChunk) {
        for (int c = 0; c < nChunk; c++) {
            int[] chunk = Arrays.copyOfRange(tokens, c * nCtx, (c + 1) * nCtx);
            int[] input = chunk.clone();
            if (addBos) input[0] = bos;
            state.reset();
            float[] logits = model.forward(state, input, true); // (nCtx, vocab)
            eval.accept(chunk, logits, c);
            if (onChunk != null) onChunk.accept(c + 1);
        }
    }

    /** log softmax(logits[off .. off+n))[token], computed as llama.cpp does (max-shifted, double sum). */
    static double logSoftmax(float[] logits, int off, int n, int token) {
        float max = logits[off];
        for (int i = 1; i < n; i++) max = Math.max(max, logits[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[off + i] - max);
        return logits[off + token] - max - Math.log(sum);
    }

    /** One base-logits record: scale, minimum log-prob, then 16-bit log-probabilities (llama.cpp's layout). */
    static void encodeLogProbs(float[] logits, int off, int nVocab, ByteBuffer rec) {
        float max = logits[off], min = logits[off];
        for (int i = 1; i < nVocab; i++) { max = Math.max(max, logits[off + i]); min = Math.min(min, logits[off + i]); }
        min = Math.max(min, max - 16);
        double sum = 0;
        for (int i = 0; i < nVocab; i++) sum += Math.exp(logits[off + i] - max);
        float logSumExp = (float) Math.log(sum);
        float minLogProb = min - max - logSumExp;
        float scale = (max - min) / 65535f;
        rec.putFloat(scale).putFloat(minLogProb);
        int nPadded = 2 * ((nVocab + 1) / 2);
        if (scale != 0) {
            float inv = 1 / scale;
            for (int i = 0; i < nVocab; i++) {
                float x = logits[off + i];
                rec.putShort((short) (x > min ? Math.round(Math.rint(inv * (x - min))) : 0));
            }
        } else {
            for (int i = 0; i < nVocab; i++) rec.putShort((short) 0);
        }
        for (int i = nVocab; i < nPadded; i++) rec.putShort((short) 0);
    }

    private static double[] pplWithError(double nllSum, double nll2Sum, long count) {
        double mean = nllSum / count;
        double var = nll2Sum / count - mean * mean;
        double ppl = Math.exp(mean);
        double err = var > 0 && count > 1 ? Math.sqrt(var / (count - 1)) * ppl : 0;
        return new double[]{ppl, err};
    }

    private static double percentile(double[] sorted, double q) {
        if (sorted.length == 0) return Double.NaN;
        int i = (int) Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
        return sorted[i];
    }
}
