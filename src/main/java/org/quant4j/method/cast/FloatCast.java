package org.quant4j.method.cast;

import org.quant4j.format.FloatFormats;
import org.quant4j.format.GgmlType;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The baseline "quantization": every weight matrix rounded to a 16-bit float format (F16 or BF16, round to nearest
 * even) or widened to F32. Vectors (norms, biases) stay F32, as llama.cpp keeps them.
 */
public final class FloatCast {
    private FloatCast() {}

    public static Model apply(Model model, GgmlType type) {
        if (type != GgmlType.F32 && type != GgmlType.F16 && type != GgmlType.BF16) {
            throw new IllegalArgumentException("FloatCast targets F32, F16 or BF16, not " + type);
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Tensor t : model.tensors().values()) {
            if (t.rank() < 2 || t.type() == type) continue;
            int cols = (int) t.cols();
            long rows = t.rows();
            MemorySegment seg = MemorySegment.ofArray(new byte[Math.toIntExact(type.byteSize(t.size()))]);
            float[] row = new float[cols];               // (cols)
            long rowBytes = type.byteSize(cols);
            for (long r = 0; r < rows; r++) {
                MatMul.dequantizeRow(t, r, row, 0);
                FloatFormats.encodeRow(type, row, 0, cols, seg, r * rowBytes);
            }
            out.put(t.name(), new Tensor(t.name(), type, t.shape(), seg));
        }
        return model.withTensors(out);
    }
}
