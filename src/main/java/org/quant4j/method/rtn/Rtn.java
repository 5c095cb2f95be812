package org.quant4j.method.rtn;

import org.quant4j.format.IntQuantType;
import org.quant4j.kernel.MatMul;
import org.quant4j.kernel.Parallel;
import org.quant4j.model.Model;
import org.quant4j.quant.Calibrator;
import org.quant4j.quant.Granularity;
import org.quant4j.quant.LinearQuantizer;
import org.quant4j.quant.QuantScheme;
import org.quant4j.tensor.Tensor;
import org.quant4j.util.Q4jException;

import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Round-to-nearest post-training quantization (seed 002): every selected weight matrix W [out, in] is quantized on
 * its own, each value to the nearest code of its group's grid,
 * <pre>
 *   q = clamp(round(w / scale + zeroPoint), qmin, qmax),   ŵ = scale · (q − zeroPoint)
 * </pre>
 * with the grid's range from a calibrator (min-max by default) at tensor, channel or group granularity. The result is
 * a model whose selected tensors are stored as {@link IntQuantType} (packed codes, f16 scales, int8 zero points), run
 * directly by the integer-weight kernels. By default every linear layer is quantized except the token embedding and
 * the output head, which seed 002 advises keeping in full precision.
 */
public final class Rtn {
    private Rtn() {}

    /** Layers every method leaves alone unless asked: the token embedding, the output head, and BERT's token-type table (llama.cpp adds its row to the input as F32). */
    public static final Pattern DEFAULT_EXCLUDE = Pattern.compile("^(token_embd|output|token_types)\\.weight$");

    /**
     * @param include  tensors to quantize (default: every 2-D weight)
     * @param exclude  tensors to skip (default: {@link #DEFAULT_EXCLUDE})
     */
    public record Options(QuantScheme scheme, Calibrator calibrator, Pattern include, Pattern exclude) {
        public Options {
            if (scheme.granularity() == Granularity.COLUMN || scheme.granularity() == Granularity.TOKEN) {
                throw new Q4jException("weights are quantized per tensor, per channel or per group, not " + scheme.granularity());
            }
            if (calibrator == null) calibrator = Calibrator.MIN_MAX;
            if (exclude == null) exclude = DEFAULT_EXCLUDE;
        }

        public static Options of(QuantScheme scheme) { return new Options(scheme, Calibrator.MIN_MAX, null, null); }
    }

    /** Whether a method with these patterns quantizes this tensor: 2-D weights that match include and not exclude. */
    public static boolean selected(Tensor t, Pattern include, Pattern exclude) {
        return t.rank() == 2 && t.name().endsWith(".weight") && (include == null || include.matcher(t.name()).find())
                && (exclude == null || !exclude.matcher(t.name()).find());
    }

    public static Model apply(Model model, Options o) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Tensor t : model.tensors().values()) {
            if (selected(t, o.include(), o.exclude())) out.put(t.name(), quantize(t, o.scheme(), o.calibrator()));
        }
        return model.withTensors(out);
    }

    /** The storage type a scheme produces. Per-tensor schemes store their one scale in every row's single group. */
    public static IntQuantType storageType(QuantScheme s) {
        return s.granularity() == Granularity.GROUP ? new IntQuantType(s.bits(), s.groupSize(), s.symmetric())
                : IntQuantType.perChannel(s.bits(), s.symmetric());
    }

    /** Quantizes one weight matrix [rows, cols]. */
    public static Tensor quantize(Tensor t, QuantScheme s, Calibrator calibrator) {
        int rows = (int) t.rows(), cols = (int) t.cols();
        float[] w = MatMul.toFloats(t);                                     // (rows, cols)
        IntQuantType type = storageType(s);
        float[][] range = Calibrator.ranges(calibrator, w, rows, cols, s);  // {rmin[p], rmax[p]} per scale
        long rowBytes = type.rowBytes(cols);
        MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowBytes * rows)]);
        Parallel.forRange(rows, 8, (start, end) -> {
            int[] q = new int[cols];                                         // (cols) codes of one row
            for (int r = start; r < end; r++) {
                for (int g = 0; g < type.groupsPerRow(cols); g++) {
                    int n = type.groupLength(cols, g), c0 = type.perChannel() ? 0 : g * type.groupSize();
                    int p = LinearQuantizer.paramIndex(s, rows, cols, r, c0);
                    float[] sz = LinearQuantizer.scaleAndZeroPoint(s, range[0][p], range[1][p]);
                    float scale = Float.float16ToFloat(Float.floatToFloat16(sz[0])); // the stored scale is what dequantizes
                    if (scale == 0) scale = Float.MIN_VALUE;
                    int zero = (int) sz[1];
                    for (int i = 0; i < n; i++) q[c0 + i] = LinearQuantizer.quantizeValue(w[r * cols + c0 + i], scale, zero, s.range());
                    type.writeGroup(data, r * rowBytes + type.groupOffset(cols, g), n, scale, zero, q, c0);
                }
            }
        });
        return new Tensor(t.name(), type, t.shape(), data);
    }
}
