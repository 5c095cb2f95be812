package org.quant4j.io.llama2c;

import org.quant4j.format.GgmlType;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.AtomicOutput;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes a model as a llama2.c checkpoint (F32), in the legacy layout {@code run.c} reads or in version 1 ("ak42").
 * The output head is written as shared when it is absent or byte-identical to the token embedding (llama.cpp's
 * converter stores a shared head as a copy).
 */
public final class Llama2cWriter {
    private Llama2cWriter() {}

    public static void write(Model model, Path out, int version, Path... inputs) {
        LlamaConfig c = model.config();
        if (c.ropeType() != LlamaConfig.RopeType.NORMAL || c.qkvBias() || c.headDim() * c.nHeads() != c.dim()
                || c.ropeTheta() != 10000f || c.ropeScaling() != null) {
            throw new Q4jException(model.source() + ": llama2.c checkpoints hold only plain Llama models (adjacent-pair RoPE with base 10000, no biases, head size dim/heads)");
        }
        if (version != 0 && version != 1) throw new Q4jException("llama2.c checkpoint version must be 0 (legacy) or 1");
        boolean shared = !model.has(Model.OUTPUT) || model.tensor(Model.OUTPUT).data().mismatch(model.tensor(Model.TOKEN_EMBD).data()) == -1;
        int L = c.nLayers();
        List<String> order = new ArrayList<>();
        if (version == 1) {
            for (int l = 0; l < L; l++) order.add(Model.attnNorm(l));
            for (int l = 0; l < L; l++) order.add(Model.ffnNorm(l));
            order.add(Model.OUTPUT_NORM);
            order.add(Model.TOKEN_EMBD);
            for (String kind : new String[]{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"}) {
                for (int l = 0; l < L; l++) order.add(Model.blk(l, kind + ".weight"));
            }
        } else {
            order.add(Model.TOKEN_EMBD);
            for (String kind : new String[]{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"}) {
                for (int l = 0; l < L; l++) order.add(Model.blk(l, kind + ".weight"));
            }
            order.add(Model.OUTPUT_NORM);
            order.add("#freq_cis");
        }
        if (!shared) order.add(Model.OUTPUT);

        AtomicOutput.write(out, ch -> {
            ByteBuffer h = ByteBuffer.allocate(version == 1 ? 256 : 28).order(ByteOrder.LITTLE_ENDIAN);
            if (version == 1) h.putInt(0x616b3432).putInt(1);
            h.putInt(c.dim()).putInt(c.hiddenDim()).putInt(c.nLayers()).putInt(c.nHeads()).putInt(c.nKvHeads())
                    .putInt(version == 0 && !shared ? -c.vocabSize() : c.vocabSize()).putInt(c.contextLength());
            if (version == 1) h.put((byte) (shared ? 1 : 0));
            h.position(h.capacity()).flip();
            writeFully(ch, h);
            for (String name : order) {
                if (name.equals("#freq_cis")) writeFreqCis(ch, c);
                else writeF32(ch, model.tensor(name));
            }
        }, inputs);
    }

    private static void writeF32(FileChannel ch, Tensor t) throws IOException {
        if (t.type() == GgmlType.F32) {
            writeFully(ch, t.data().asByteBuffer());
            return;
        }
        float[] row = new float[(int) t.cols()];
        ByteBuffer b = ByteBuffer.allocate(4 * row.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long r = 0; r < t.rows(); r++) {
            MatMul.dequantizeRow(t, r, row, 0);
            b.clear();
            b.asFloatBuffer().put(row);
            writeFully(ch, b);
        }
    }

    /** The cos/sin tables the legacy format carries (run.c skips them): freq_j = 10000^(−2j/headDim) per position. */
    private static void writeFreqCis(FileChannel ch, LlamaConfig c) throws IOException {
        int half = c.headDim() / 2;
        ByteBuffer real = ByteBuffer.allocate(4 * c.contextLength() * half).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer imag = ByteBuffer.allocate(4 * c.contextLength() * half).order(ByteOrder.LITTLE_ENDIAN);
        for (int pos = 0; pos < c.contextLength(); pos++) {
            for (int j = 0; j < half; j++) {
                float freq = (float) (1.0 / Math.pow(10000.0, (2.0 * j) / c.headDim()));
                float angle = pos * freq;
                real.putFloat((float) Math.cos(angle));
                imag.putFloat((float) Math.sin(angle));
            }
        }
        writeFully(ch, real.flip());
        writeFully(ch, imag.flip());
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }
}
