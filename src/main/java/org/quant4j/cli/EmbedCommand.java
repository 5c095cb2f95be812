package org.quant4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.quant4j.io.ModelLoader;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.io.onnx.OnnxModelReader;
import org.quant4j.model.Bert;
import org.quant4j.model.Model;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;
import org.quant4j.util.Q4jException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "embed", mixinStandardHelpOptions = true,
        description = "Sentence embeddings from a BERT-family encoder (ONNX, GGUF bert, or a quant4j checkpoint of one).")
final class EmbedCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = "the encoder: model.onnx (tokenizer.json beside it), or a GGUF bert model") Path modelPath;
    @Option(names = {"-t", "--text"}, description = "a text to embed (repeatable)") List<String> texts = new ArrayList<>();
    @Option(names = {"-f", "--file"}, description = "embed each non-empty line of this file") Path file;
    @Option(names = "--json", description = "print JSON: one object per text with its tokens and embedding") boolean json;
    @Option(names = "--pooling", description = "mean or cls (default: the model's; mean for ONNX graphs without a 1_Pooling/config.json)") String pooling;
    @Option(names = "--no-normalize", description = "do not L2-normalise the pooled vector") boolean noNormalize;
    @Option(names = "--tokenizer", description = "tokenizer.json (default: the one beside an ONNX model, or the GGUF's)") Path tokenizerPath;

    @Override public Integer call() throws IOException {
        List<String> all = new ArrayList<>(texts);
        if (file != null) for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) if (!line.isBlank()) all.add(line);
        if (all.isEmpty()) throw new Q4jException("nothing to embed: give --text or --file");
        Bert.Pooling p = pooling == null ? null : switch (pooling.toLowerCase(Locale.ROOT)) {
            case "mean" -> Bert.Pooling.MEAN;
            case "cls" -> Bert.Pooling.CLS;
            default -> throw new Q4jException("unknown pooling '" + pooling + "' (mean, cls)");
        };
        Model loaded = ModelLoader.detect(modelPath) == ModelLoader.Format.ONNX
                ? OnnxModelReader.load(modelPath, new OnnxModelReader.Options(p, !noNormalize, tokenizerPath))
                : ModelLoader.load(modelPath);
        try (Model model = loaded) {
            Model m = model;
            if (p != null) m = m.withMetadata(Map.of(Bert.POOLING_KEY, GgufValue.u32(p.ggufCode)));
            if (noNormalize) m = m.withMetadata(Map.of(Bert.NORMALIZE_KEY, GgufValue.bool(false)));
            if (tokenizerPath != null && ModelLoader.detect(modelPath) != ModelLoader.Format.ONNX) {
                m = m.withMetadata(org.quant4j.tokenizer.TokenizerJson.toMetadata(tokenizerPath));
            }
            Bert bert = new Bert(m);
            Tokenizer tok = Tokenizers.fromMetadata(m.metadata(), m.source());
            PrintStream out = System.out;
            ObjectMapper mapper = new ObjectMapper();
            ArrayNode rows = mapper.createArrayNode();
            List<float[]> vectors = new ArrayList<>();
            for (String text : all) {
                int[] ids = bert.truncate(tok.encode(text, true, false));
                float[] e = bert.embed(ids);
                vectors.add(e);
                if (json) {
                    ObjectNode o = rows.addObject();
                    o.put("text", text);
                    ArrayNode t = o.putArray("tokens");
                    for (int id : ids) t.add(id);
                    ArrayNode v = o.putArray("embedding");
                    for (float f : e) v.add(f);
                } else {
                    StringBuilder sb = new StringBuilder();
                    for (int i = 0; i < e.length; i++) sb.append(i > 0 ? " " : "").append(e[i]);
                    out.println(sb);
                }
            }
            if (json) {
                out.println(mapper.writerWithDefaultPrettyPrinter().writeValueAsString(rows));
            } else if (vectors.size() > 1) {
                System.err.println("cosine similarity:");
                for (int i = 0; i < vectors.size(); i++) {
                    StringBuilder sb = new StringBuilder();
                    for (int j = 0; j < vectors.size(); j++) sb.append(String.format(Locale.ROOT, "%8.4f", Bert.cosine(vectors.get(i), vectors.get(j))));
                    System.err.println(sb + "  " + (all.get(i).length() > 40 ? all.get(i).substring(0, 40) + "…" : all.get(i)));
                }
            }
        }
        return 0;
    }

    /** quant4j eval --embeddings BASE MODEL: how close MODEL's sentence embeddings stay to BASE's. */
    static int evalEmbeddings(Path modelPath, Path basePath, Path text, int maxSentences, int queries, boolean json) throws IOException {
        List<String> sentences = org.quant4j.eval.EmbeddingAgreement.sentences(text, maxSentences);
        try (Model base = ModelLoader.load(basePath); Model model = ModelLoader.load(modelPath)) {
            Tokenizer tok = Tokenizers.fromMetadata(base.metadata(), base.source());
            Bert b = new Bert(base), m = new Bert(model);
            float[][] eb = new float[sentences.size()][], em = new float[sentences.size()][];
            long t0 = System.nanoTime();
            for (int i = 0; i < eb.length; i++) eb[i] = b.embed(tok, sentences.get(i));
            long t1 = System.nanoTime();
            for (int i = 0; i < em.length; i++) em[i] = m.embed(tok, sentences.get(i));
            long t2 = System.nanoTime();
            var r = org.quant4j.eval.EmbeddingAgreement.compare(eb, em, queries);
            double baseRate = eb.length / ((t1 - t0) / 1e9), modelRate = em.length / ((t2 - t1) / 1e9);
            if (json) {
                ObjectNode o = new ObjectMapper().createObjectNode();
                o.put("model", model.source()).put("base", base.source()).put("sentences", r.sentences()).put("queries", r.queries())
                        .put("mean_cosine", r.meanCosine()).put("min_cosine", r.minCosine()).put("top10_agreement", r.top10())
                        .put("model_sentences_per_second", modelRate).put("base_sentences_per_second", baseRate);
                System.out.println(o.toPrettyString());
            } else {
                System.out.printf(Locale.ROOT, "sentences            %d (%s), %d queries%n", r.sentences(), text, r.queries());
                System.out.printf(Locale.ROOT, "cosine to base       mean %.6f, min %.6f%n", r.meanCosine(), r.minCosine());
                System.out.printf(Locale.ROOT, "top-10 agreement     %.2f %%%n", 100 * r.top10());
                System.out.printf(Locale.ROOT, "sentences/s          model %.1f, base %.1f%n", modelRate, baseRate);
            }
        }
        return 0;
    }
}
