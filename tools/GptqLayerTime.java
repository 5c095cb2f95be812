// Times quant4j's GPTQ on one layer written by `tools/gptq_reference.py time --save DIR` (the same W and H the
// reference timed). Run after `mvn -o -q compile`:
//   java --add-modules jdk.incubator.vector -cp target/classes [-Dquant4j.threads=1] tools/GptqLayerTime.java DIR BITS GROUPSIZE [act]
// Prints the best of 3 runs of prepare (dead columns, damping, inverse Hessian factor) + quantize (Algorithm 1),
// the part of the work the reference's fasterquant times.
import org.quant4j.method.gptq.Gptq;

import java.nio.*;
import java.nio.file.*;

public class GptqLayerTime {
    public static void main(String[] a) throws Exception {
        Path dir = Path.of(a[0]);
        float[][] wh = {null, null};
        int[] shape = new int[4];
        for (int k = 0; k < 2; k++) {
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(dir.resolve(k == 0 ? "W.f32" : "H.f32"))).order(ByteOrder.LITTLE_ENDIAN);
            shape[2 * k] = b.getInt(); shape[2 * k + 1] = b.getInt();
            wh[k] = new float[shape[2 * k] * shape[2 * k + 1]];
            b.asFloatBuffer().get(wh[k]);
        }
        int rows = shape[0], cols = shape[1];
        double[] h = new double[cols * cols];
        for (int i = 0; i < h.length; i++) h[i] = wh[1][i];
        var o = new Gptq.Options(Integer.parseInt(a[1]), false, Math.max(0, Integer.parseInt(a[2])), a.length > 3, false, 0.01, 128, false);
        double best = Double.MAX_VALUE, bestPrep = 0, loss = 0;
        for (int rep = 0; rep < 3; rep++) {
            long t0 = System.nanoTime();
            var p = Gptq.prepare(h, cols, o, null);
            long t1 = System.nanoTime();
            var r = Gptq.quantize(wh[0], rows, cols, p, o);
            double t = (System.nanoTime() - t0) / 1e9;
            if (t < best) { best = t; bestPrep = (t1 - t0) / 1e9; }
            loss = r.loss();
        }
        System.out.printf("quant4j GPTQ %dx%d %s threads=%d: %.3f s (best of 3; inverse Hessian %.3f s), loss %.6g%n", rows, cols, o.describe(),
                org.quant4j.kernel.Parallel.threads(), best, bestPrep, loss);
    }
}
