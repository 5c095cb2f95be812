package org.quant4j.io.llama2c;

import org.quant4j.format.GgmlType;
import org.quant4j.io.gguf.GgufValue;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads karpathy/llama2.c checkpoints, memory-mapped, into a {@link Model} with llama.cpp tensor names.
 *
 * <ul>
 *   <li>legacy format: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative
 *       vocab_size means a separate output head), then F32 weights grouped by kind, each kind stacked over layers:
 *       token embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1 (gate), w2 (down), w3 (up), rms_final,
 *       freq_cis_real, freq_cis_imag, [wcls];</li>
 *   <li>version 1 ("ak42"): magic 0x616b3432, int32 version 1, the same 7 int32, a byte shared_classifier, zero
 *       padding to 256 bytes, then F32: attention norms, ffn norms, final norm, token embedding, wq, wk, wv, wo, w1,
 *       w2, w3, [wcls].</li>
 * </ul>
 * llama2.c rotates adjacent pairs, which is llama.cpp's NORMAL RoPE layout, so weights map over without permutation.
 */
public final class Llama2cReader {
    private static final int MAGIC_V1 = 0x616b3432;

    private Llama2cReader() {}

    /** Loads {@code checkpoint}; if {@code tokenizerMetadata} is not null it is carried in the model's metadata. */
    public static Model load(Path checkpoint, Map<String, GgufValue> tokenizerMetadata) {
        return org.quant4j.util.MappedFile.map(checkpoint, (arena, file) -> parse(checkpoint, file, arena, tokenizerMetadata));
    }

    /** True if the file starts like a llama2.c checkpoint (v1 magic, or a plausible legacy header). */
    public static boolean looksLikeLlama2c(Path p) {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(28).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            if (ch.read(b) < 28) return false;
            b.flip();
            int first = b.getInt(0);
            if (first == MAGIC_V1) return true;
            int dim = first, hidden = b.getInt(4), layers = b.getInt(8), heads = b.getInt(12), kv = b.getInt(16), seq = b.getInt(24);
            return dim > 0 && dim < 65536 && hidden > 0 && layers > 0 && layers < 1024 && heads > 0 && kv > 0 && seq > 0;
        } catch (IOException e) {
            return false;
        }
    }

    private static Model parse(Path path, MemorySegment file, Arena arena, Map<String, GgufValue> tokenizerMetadata) {
        long size = file.byteSize();
        if (size < 28) throw new Q4jException(path + ": truncated llama2.c checkpoint: header needs 28 bytes, file has " + size);
        boolean v1 = file.get(ValueLayout.JAVA_INT_UNALIGNED, 0) == MAGIC_V1;
        long h = 0;
        if (v1) {
            if (size < 256) throw new Q4jException(path + ": truncated llama2.c v1 checkpoint: header needs 256 bytes, file has " + size);
            int version = file.get(ValueLayout.JAVA_INT_UNALIGNED, 4);
            if (version != 1) throw new Q4jException(path + ": unsupported llama2.c checkpoint version " + version + " at offset 4 (supported: legacy, 1)");
            h = 8;
        }
        int[] header = new int[7];
        for (int i = 0; i < 7; i++) header[i] = file.get(ValueLayout.JAVA_INT_UNALIGNED, h + 4L * i);
        int dim = header[0], hidden = header[1], layers = header[2], heads = header[3], kvHeads = header[4], vocabField = header[5], seqLen = header[6];
        boolean shared = v1 ? file.get(ValueLayout.JAVA_BYTE, h + 28) != 0 : vocabField > 0;
        int vocab = Math.abs(vocabField);
        if (dim <= 0 || heads <= 0 || dim % heads != 0) {
            throw new Q4jException(path + ": bad llama2.c header at offset " + h + ": dim " + dim + " and " + heads + " heads");
        }
        LlamaConfig c;
        try {
            c = new LlamaConfig("llama", dim, hidden, layers, heads, kvHeads, dim / heads, vocab, seqLen, 1e-5f, 10000f,
                    LlamaConfig.RopeType.NORMAL, null, shared, false);
        } catch (Q4jException e) {
            throw new Q4jException(path + ": bad llama2.c header at offset " + h + ": " + e.getMessage());
        }
        int headDim = c.headDim(), kvDim = c.kvDim();
        long pos = v1 ? 256 : 28;
        Slicer s = new Slicer(path, file, pos);
        Map<String, Tensor> t = new LinkedHashMap<>();
        if (v1) {
            for (int l = 0; l < layers; l++) s.take(t, Model.attnNorm(l), dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.ffnNorm(l), dim);
            s.take(t, Model.OUTPUT_NORM, dim);
            s.take(t, Model.TOKEN_EMBD, vocab, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnQ(l), dim, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnK(l), kvDim, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnV(l), kvDim, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnOutput(l), dim, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.ffnGate(l), hidden, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.ffnDown(l), dim, hidden);
            for (int l = 0; l < layers; l++) s.take(t, Model.ffnUp(l), hidden, dim);
            if (!shared) s.take(t, Model.OUTPUT, vocab, dim);
        } else {
            s.take(t, Model.TOKEN_EMBD, vocab, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnNorm(l), dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnQ(l), dim, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnK(l), kvDim, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnV(l), kvDim, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.attnOutput(l), dim, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.ffnNorm(l), dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.ffnGate(l), hidden, dim);
            for (int l = 0; l < layers; l++) s.take(t, Model.ffnDown(l), dim, hidden);
            for (int l = 0; l < layers; l++) s.take(t, Model.ffnUp(l), hidden, dim);
            s.take(t, Model.OUTPUT_NORM, dim);
            s.skip("freq_cis_real", (long) seqLen * headDim / 2);
            s.skip("freq_cis_imag", (long) seqLen * headDim / 2);
            if (!shared) s.take(t, Model.OUTPUT, vocab, dim);
        }
        // Tensors in llama.cpp's order (embedding, output norm, head, then per layer), as its converter writes them.
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        ordered.put(Model.TOKEN_EMBD, t.get(Model.TOKEN_EMBD));
        ordered.put(Model.OUTPUT_NORM, t.get(Model.OUTPUT_NORM));
        if (!shared) ordered.put(Model.OUTPUT, t.get(Model.OUTPUT));
        for (int l = 0; l < layers; l++) {
            for (String n : List.of(Model.attnQ(l), Model.attnK(l), Model.attnV(l), Model.attnOutput(l), Model.attnNorm(l),
                    Model.ffnGate(l), Model.ffnDown(l), Model.ffnUp(l), Model.ffnNorm(l))) {
                ordered.put(n, t.get(n));
            }
        }
        Map<String, GgufValue> meta = new LinkedHashMap<>();
        meta.put("general.name", GgufValue.string(path.getFileName().toString().replaceFirst("\\.bin$", "")));
        if (tokenizerMetadata != null) meta.putAll(tokenizerMetadata);
        return new Model(c, ordered, meta, path.toString(), List.of(arena));
    }

    /** Cuts consecutive F32 tensors out of the file, checking each against its end. */
    private static final class Slicer {
        final Path path;
        final MemorySegment file;
        long pos;

        Slicer(Path path, MemorySegment file, long pos) { this.path = path; this.file = file; this.pos = pos; }

        void take(Map<String, Tensor> out, String name, long... shape) {
            long n = 1;
            for (long d : shape) n = Math.multiplyExact(n, d);
            long bytes = Math.multiplyExact(n, 4L);
            if (bytes > file.byteSize() - pos) {
                throw new Q4jException(path + ": tensor " + name + ": offset " + pos + " + " + bytes
                        + " bytes runs past end of file (" + file.byteSize() + " bytes)");
            }
            out.put(name, new Tensor(name, GgmlType.F32, shape, file.asSlice(pos, bytes)));
            pos += bytes;
        }

        void skip(String what, long floats) {
            long bytes = floats * 4;
            if (bytes > file.byteSize() - pos) {
                throw new Q4jException(path + ": " + what + ": offset " + pos + " + " + bytes + " bytes runs past end of file (" + file.byteSize() + " bytes)");
            }
            pos += bytes;
        }
    }
}
