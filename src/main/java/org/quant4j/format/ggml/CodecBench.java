package org.quant4j.format.ggml;

import org.quant4j.format.GgmlType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Single-thread throughput of each codec: dequantize (GB/s of stored bytes, Mvalues/s) over a rows × cols matrix,
 * and quantize (Mvalues/s) with and without importances. A sanity benchmark, not a kernel benchmark: the runtime's
 * decode-then-dot fallback costs about one dequantize per weight row.
 *
 * <pre>java -cp target/classes org.quant4j.format.ggml.CodecBench [rows=1024] [cols=4096] [types=all]</pre>
 */
public final class CodecBench {
    private CodecBench() {}

    public static void main(String[] args) {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
        int cols = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
        GgmlType[] types = args.length > 2 ? parse(args[2]) : new GgmlType[]{GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0,
                GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.IQ4_NL, GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0,
                GgmlType.F16, GgmlType.BF16};
        float[] x = new float[rows * cols];          // (rows, cols)
        float[] importance = new float[cols];        // (cols)
        SplittableRandom rng = new SplittableRandom(1);
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextGaussian() * 0.02);
        for (int i = 0; i < cols; i++) importance[i] = (float) (0.5 + rng.nextDouble());
        float[] out = new float[cols];               // (cols)
        System.out.printf(Locale.ROOT, "%d x %d, one thread%n%-7s %10s %12s %14s %16s%n", rows, cols, "type",
                "deq GB/s", "deq Mval/s", "quant Mval/s", "quant+imat Mval/s");
        try (Arena arena = Arena.ofConfined()) {
            for (GgmlType t : types) {
                BlockCodec c = GgmlCodecs.of(t);
                long rowBytes = t.rowBytes(cols);
                MemorySegment q = arena.allocate(rowBytes * rows, 64);
                double quant = 0, quantImp = 0, deq = 0;
                for (int rep = 0; rep < 3; rep++) { // the last repetition counts: the first ones warm the JIT
                    long t0 = System.nanoTime();
                    for (int r = 0; r < rows; r++) c.quantize(x, r * cols, cols, null, q, r * rowBytes);
                    long t1 = System.nanoTime();
                    for (int r = 0; r < rows; r++) c.quantize(x, r * cols, cols, importance, q, r * rowBytes);
                    long t2 = System.nanoTime();
                    int passes = 5;
                    float sink = 0;
                    for (int p = 0; p < passes; p++) {
                        for (int r = 0; r < rows; r++) {
                            c.dequantize(q, r * rowBytes, out, 0, cols);
                            sink += out[r % cols];
                        }
                    }
                    long t3 = System.nanoTime();
                    if (Float.isNaN(sink)) System.out.print("");
                    quant = (double) rows * cols / (t1 - t0) * 1e3;
                    quantImp = (double) rows * cols / (t2 - t1) * 1e3;
                    deq = (double) passes * rows * cols / (t3 - t2) * 1e3;
                }
                double gbps = deq * 1e6 * t.typeSize() / t.blockSize() / 1e9;
                System.out.printf(Locale.ROOT, "%-7s %10.2f %12.0f %14.1f %16.1f%n", t, gbps, deq, quant, quantImp);
            }
        }
    }

    private static GgmlType[] parse(String list) {
        String[] names = list.split(",");
        GgmlType[] out = new GgmlType[names.length];
        for (int i = 0; i < names.length; i++) out[i] = GgmlType.parse(names[i].trim());
        return out;
    }
}
