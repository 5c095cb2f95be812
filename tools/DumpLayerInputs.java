// Writes one linear layer's weight and its calibration inputs in tools/gptq_reference.py's .f32 format, for making
// GPTQ fixtures from a real model. Run after `mvn -o -q compile`:
//   java --add-modules jdk.incubator.vector -cp target/classes tools/DumpLayerInputs.java \
//        MODEL TEXT WEIGHT_NAME SAMPLES SEQ_LEN OUT_DIR
// e.g. models/stories260K/stories260K.bin data/text/tinystories_sample.txt blk.1.ffn_down.weight 16 128 /tmp/fx
// (stories260K's tokenizer is found beside the .bin). Writes OUT_DIR/W.f32 (rows, cols) and OUT_DIR/X.f32
// (samples·seq_len, cols): the inputs of that layer in the unquantized model, sample after sample.
import org.quant4j.io.ModelLoader;
import org.quant4j.kernel.MatMul;
import org.quant4j.method.calib.CalibrationWindows;
import org.quant4j.model.Llama;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.tokenizer.Tokenizer;
import org.quant4j.tokenizer.Tokenizers;

import java.io.*;
import java.nio.*;
import java.nio.file.*;

public class DumpLayerInputs {
    public static void main(String[] a) throws Exception {
        Path out = Path.of(a[5]);
        Files.createDirectories(out);
        int n = Integer.parseInt(a[3]), len = Integer.parseInt(a[4]);
        try (Model m = ModelLoader.load(Path.of(a[0]))) {
            Tokenizer tok = Tokenizers.fromModel(m);
            int[][] samples = CalibrationWindows.sample(tok.encode(Files.readString(Path.of(a[1])), false, false), n, len, 1234, tok.bosId());
            Tensor w = m.tensor(a[2]);
            int cols = (int) w.cols();
            float[] x = new float[n * len * cols];
            int[] at = {0};
            Llama llama = new Llama(m);
            llama.setObserver((name, in, batch, c) -> {
                if (!name.equals(a[2])) return;
                System.arraycopy(in, 0, x, at[0], batch * cols);
                at[0] += batch * cols;
            });
            for (int[] s : samples) llama.forward(llama.newState(len, 64), s, false);
            write(out.resolve("W.f32"), MatMul.toFloats(w), (int) w.rows(), cols);
            write(out.resolve("X.f32"), x, at[0] / cols, cols);
        }
    }

    static void write(Path p, float[] v, int rows, int cols) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + 4 * rows * cols).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(rows).putInt(cols);
        for (int i = 0; i < rows * cols; i++) b.putFloat(v[i]);
        Files.write(p, b.array());
    }
}
