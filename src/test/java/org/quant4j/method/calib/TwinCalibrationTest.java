package org.quant4j.method.calib;

import org.junit.jupiter.api.Test;
import org.quant4j.kernel.MatMul;
import org.quant4j.model.Encoders;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;

import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** TwinCalibration's LayerNorm refit: the per-channel least-squares line from the quantized outputs to the float ones. */
class TwinCalibrationTest {

    /** Float outputs an exact per-channel affine map of the quantized ones: the refit recovers it in γ, β and in the outputs. */
    @Test void layerNormRefitRecoversAPerChannelAffineMap() {
        try (Encoders.MiniLm m = new Encoders.MiniLm()) {
            Model model = m.f32;
            String norm = "blk.2.layer_output_norm";
            float[] gamma = MatMul.toFloats(model.tensor(norm + ".weight")), beta = MatMul.toFloats(model.tensor(norm + ".bias"));
            int dim = gamma.length;
            Random r = new Random(5);
            float[] a = new float[dim], b = new float[dim];                  // (dim) the map y = a ỹ + b
            for (int c = 0; c < dim; c++) { a[c] = 0.8f + 0.4f * r.nextFloat(); b[c] = (float) r.nextGaussian() * 0.1f; }
            float[][] yq = new float[3][], yf = new float[3][];              // [sample](len, dim)
            for (int i = 0; i < 3; i++) {
                int len = 20 + 7 * i;
                yq[i] = new float[len * dim];
                yf[i] = new float[len * dim];
                for (int k = 0; k < yq[i].length; k++) { yq[i][k] = (float) r.nextGaussian(); yf[i][k] = a[k % dim] * yq[i][k] + b[k % dim]; }
            }
            Map<String, Tensor> out = TwinCalibration.refitNorm(model, norm, yq, yf);
            float[] g2 = MatMul.toFloats(out.get(norm + ".weight")), b2 = MatMul.toFloats(out.get(norm + ".bias"));
            for (int c = 0; c < dim; c++) {
                assertEquals(a[c] * gamma[c], g2[c], 1e-4 * (1 + Math.abs(gamma[c])), "γ of channel " + c);
                assertEquals(a[c] * beta[c] + b[c], b2[c], 1e-4 * (1 + Math.abs(beta[c])), "β of channel " + c);
            }
            for (int i = 0; i < 3; i++) for (int k = 0; k < yq[i].length; k++) assertEquals(yf[i][k], yq[i][k], 1e-4, "refit output");
        }
    }
}
