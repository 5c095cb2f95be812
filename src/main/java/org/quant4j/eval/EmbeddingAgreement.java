package org.quant4j.eval;

import org.quant4j.model.Bert;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

/**
 * How close a (quantized) encoder's sentence embeddings stay to a base encoder's: the cosine similarity of each
 * sentence's two embeddings (mean and minimum), and retrieval agreement: for each query sentence, the overlap of its
 * 10 nearest neighbours in the corpus (the other sentences) by the model's embeddings with those by the base's.
 */
public final class EmbeddingAgreement {
    private EmbeddingAgreement() {}

    /** @param top10 mean over queries of |top-10(model) ∩ top-10(base)| / 10 */
    public record Result(int sentences, int queries, double meanCosine, double minCosine, double top10) {}

    /** @param base (sentences)(dim) embeddings by the base model; model the same sentences by the model compared */
    public static Result compare(float[][] base, float[][] model, int queries) {
        if (base.length != model.length || base.length < 12) throw new Q4jException("need the same sentences, at least 12, for both models");
        double sum = 0, min = 1;
        for (int i = 0; i < base.length; i++) {
            double c = Bert.cosine(base[i], model[i]);
            sum += c;
            min = Math.min(min, c);
        }
        int q = Math.min(queries, base.length);
        double overlap = 0;
        for (int i = 0; i < q; i++) {
            Set<Integer> a = new HashSet<>(nearest(base, i, 10));
            int hit = 0;
            for (int j : nearest(model, i, 10)) if (a.contains(j)) hit++;
            overlap += hit / 10.0;
        }
        return new Result(base.length, q, sum / base.length, min, overlap / q);
    }

    /** The k sentences nearest to sentence {@code query} by cosine similarity, nearest first, the query itself excluded. */
    public static List<Integer> nearest(float[][] e, int query, int k) {
        Integer[] idx = new Integer[e.length - 1];
        double[] score = new double[e.length];
        for (int j = 0, n = 0; j < e.length; j++) {
            if (j == query) continue;
            idx[n++] = j;
            score[j] = Bert.cosine(e[query], e[j]);
        }
        Arrays.sort(idx, (x, y) -> score[y] != score[x] ? Double.compare(score[y], score[x]) : Integer.compare(x, y));
        return Arrays.asList(idx).subList(0, Math.min(k, idx.length));
    }

    /** Distinct sentences of 6 to 64 words from a text file, in file order (WikiText '=' headings skipped). */
    public static List<String> sentences(Path text, int max) {
        LinkedHashSet<String> out = new LinkedHashSet<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new Q4jException(text + ": cannot read: " + e.getMessage(), e);
        }
        for (String line : lines) {
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("=")) continue;
            for (String s : l.split("(?<=[.!?])\\s+(?=[A-Z\"'])")) {
                int words = s.split("\\s+").length;
                if (words >= 6 && words <= 64) out.add(s);
                if (out.size() >= max) return new ArrayList<>(out);
            }
        }
        return new ArrayList<>(out);
    }
}
