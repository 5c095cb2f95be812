package org.quant4j.train;

import org.quant4j.kernel.FloatKernels;
import org.quant4j.kernel.MatMul;
import org.quant4j.kernel.Parallel;
import org.quant4j.model.Llama;
import org.quant4j.model.LlamaConfig;
import org.quant4j.model.Model;
import org.quant4j.tensor.Tensor;
import org.quant4j.train.Params.Param;
import org.quant4j.util.Q4jException;

import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Forward and backward passes of the Llama architecture for training, written by hand in the manner of karpathy/llm.c
 * ({@code train_gpt2.c}): every layer has a forward that saves what its backward needs into activation buffers, and a
 * backward that reads them. The math matches the inference runtime ({@link Llama}): token embedding → N × [RMSNorm →
 * grouped-query causal attention with RoPE (adjacent pairs or NeoX halves) → residual → RMSNorm → SwiGLU → residual]
 * → RMSNorm → output head (tied or separate) → softmax cross-entropy.
 *
 * <p>One step sees a batch of B windows of T tokens (N = B·T rows). Matrix products use the runtime's
 * {@link FloatKernels} (Vector API, or the scalar reference with {@code -Dquant4j.kernels=scalar}) over
 * {@link Parallel}: out = in·Wᵀ, and in the backward pass dIn += dOut·W and dW += dOutᵀ·in.
 *
 * <p>Quantization-aware training: with a {@link FakeQuant}, every linear layer of the blocks computes with ŵ = Q(w)
 * (the embedding and output head stay full precision, as {@code method/rtn} leaves them); with 8-bit activations, the
 * input of every linear layer is fake-quantized per token. Both pass gradients straight through (STE): the backward
 * uses ŵ and x̂ where the forward did, and hands ∂L/∂ŵ to w.
 *
 * <p>BitNet's BitLinear is this with {@link FakeQuant.BitNet} weights and 8-bit activations. Seed 000's BitLinear
 * normalises its input before quantizing it; here q/k/v and gate/up already read an RMSNorm output, while attn_output
 * and ffn_down quantize their inputs without an extra norm (the "RMSNorm-free" variant: the architecture, and so the
 * exported model, stays plain Llama).
 *
 * <p>QLoRA: with a frozen quantized base and a {@link Lora} adapter, every linear layer computes
 * y = x·Ŵᵀ + (α/r)·(x·Aᵀ)·Bᵀ where Ŵ is read from its quantized tensor (any storage type; rows dequantized on the fly
 * by the runtime's kernels, never stored as floats). The backward pass sends dx += dy·Ŵ through the same rows and gives
 * W no gradient; only A and B learn. The embedding, norms and head are frozen too (their gradients are not used).
 */
public final class LlamaTrainer {
    public final LlamaConfig config;
    public final Params params;
    public final int B, T;
    private final FakeQuant weightQuant;        // null: full precision
    private final boolean activationQuant;      // 8-bit absmax per token on every linear layer's input
    private final Map<Param, float[]> effective = new IdentityHashMap<>(); // ŵ of each linear weight for this step

    // ---- QLoRA (null otherwise) ------------------------------------------------------------------------------------
    private final Map<Param, Tensor> frozen;    // the quantized linear weights of the base, by parameter
    private final Lora lora;                    // the adapters; layers without one compute x·Ŵᵀ only
    private final Map<Param, float[]> loraHidden;  // (N, r) u = x·Aᵀ of the last forward, per adapted weight
    private final float[] loraOut, loraDOut;    // (N, max out) scratch: u·Bᵀ; (α/r)·dy
    private final float[] loraDHidden;          // (N, r) du

    // ---- activations, saved by forward for backward (N = B·T) ---------------------------------------------------
    private final int[] inputs, targets;        // (N)
    private final float[][] residual;           // [layer + 1](N, dim): the stream entering each block; [L] leaves the last
    private final float[][] xNorm1, xNorm2;     // [layer](N, dim) RMSNorm outputs (fake-quantized when activations are)
    private final float[][] rstd1, rstd2;       // [layer](N) 1/√(mean(x²) + ε)
    private final float[][] q;                  // [layer](N, qDim) after RoPE
    private final float[][] k, v;               // [layer](N, kvDim), k after RoPE
    private final float[][] att;                // [layer](B, nHeads, T, T) softmax probabilities, causal
    private final float[][] attOut;             // [layer](N, qDim) attention output (input of wo)
    private final float[][] xMid;               // [layer](N, dim) residual after attention
    private final float[][] gate, up;           // [layer](N, hidden) pre-activation gate and up projections
    private final float[][] swiglu;             // [layer](N, hidden) silu(gate) ⊙ up (input of w_down)
    private final float[] xFinal;               // (N, dim) final RMSNorm output
    private final float[] rstdFinal;            // (N)
    private final float[] probs;                // (N, vocab) softmax; becomes dlogits in backward
    private final float[] ropeCos, ropeSin;     // (T, headDim / 2)

    // ---- gradient scratch ---------------------------------------------------------------------------------------
    private final float[] dResidual, dNorm;     // (N, dim)
    private final float[] dQ, dAttOut;          // (N, qDim)
    private final float[] dK, dV;               // (N, kvDim)
    private final float[] dGate, dUp;           // (N, hidden)
    private final float[] scratchDim;           // (N, dim)

    private float lastLoss = Float.NaN;
    private float[] softTargets;                // (N, vocab) teacher probabilities of the last forward, or null

    public LlamaTrainer(Params params, int batch, int seq, FakeQuant weightQuant, boolean activationQuant) {
        this(params, batch, seq, weightQuant, activationQuant, null, null);
    }

    /**
     * QLoRA: {@code params} from {@link Params#fromModel(Model, boolean) Params.fromModel(base, false)} (no float copy
     * of the linear weights), whose linear weights are read from {@code base}'s quantized tensors, plus an adapter.
     */
    public static LlamaTrainer qlora(Params params, Model base, Lora lora, int batch, int seq) {
        if (lora.config.nLayers() != params.config.nLayers() || lora.config.dim() != params.config.dim()) throw new Q4jException("the LoRA adapter's shape does not match the model's");
        return new LlamaTrainer(params, batch, seq, null, false, base, lora);
    }

    private LlamaTrainer(Params params, int batch, int seq, FakeQuant weightQuant, boolean activationQuant, Model base, Lora lora) {
        this.config = params.config;
        this.params = params;
        this.B = batch;
        this.T = seq;
        this.weightQuant = weightQuant;
        this.activationQuant = activationQuant;
        LlamaConfig c = config;
        if (seq > c.contextLength()) throw new Q4jException("sequence length " + seq + " exceeds the model's context of " + c.contextLength());
        long attFloats = (long) batch * c.nHeads() * seq * seq;
        if (attFloats > Integer.MAX_VALUE - 16) throw new Q4jException("batch " + batch + " × seq " + seq + " is too large for one attention buffer");
        int N = batch * seq, L = c.nLayers(), dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hidden = c.hiddenDim();
        inputs = new int[N];
        targets = new int[N];
        residual = new float[L + 1][N * dim];
        xNorm1 = new float[L][N * dim]; xNorm2 = new float[L][N * dim];
        rstd1 = new float[L][N]; rstd2 = new float[L][N];
        q = new float[L][N * qDim]; k = new float[L][N * kvDim]; v = new float[L][N * kvDim];
        att = new float[L][(int) attFloats];
        attOut = new float[L][N * qDim];
        xMid = new float[L][N * dim];
        gate = new float[L][N * hidden]; up = new float[L][N * hidden]; swiglu = new float[L][N * hidden];
        xFinal = new float[N * dim];
        rstdFinal = new float[N];
        probs = new float[N * c.vocabSize()];
        dResidual = new float[N * dim]; dNorm = new float[N * dim]; scratchDim = new float[N * dim];
        dQ = new float[N * qDim]; dAttOut = new float[N * qDim];
        dK = new float[N * kvDim]; dV = new float[N * kvDim];
        dGate = new float[N * hidden]; dUp = new float[N * hidden];
        this.lora = lora;
        if (base != null) {
            frozen = new IdentityHashMap<>();
            loraHidden = new IdentityHashMap<>();
            for (Param p : params.all()) {
                if (!p.linear()) continue;
                Tensor t = base.tensor(p.name());
                if (t.rows() != p.rows() || t.cols() != p.cols()) throw new Q4jException(base.source() + ": tensor " + t.name() + " is " + t.rows() + "×" + t.cols() + ", the config needs " + p.rows() + "×" + p.cols());
                frozen.put(p, t);
                if (lora != null && lora.pair(p.name()) != null) loraHidden.put(p, new float[N * lora.rank]);
            }
            int maxOut = Math.max(Math.max(dim, qDim), hidden);
            loraOut = new float[N * maxOut];
            loraDOut = new float[N * maxOut];
            loraDHidden = new float[N * (lora != null ? lora.rank : 0)];
        } else {
            if (!params.hasLinearValues()) throw new Q4jException("these parameters hold no linear weights: train them as QLoRA with their quantized base");
            frozen = null; loraHidden = null; loraOut = loraDOut = loraDHidden = null;
        }
        int half = c.headDim() / 2;
        float[] freq = Llama.ropeFrequencies(c, null);
        ropeCos = new float[seq * half];
        ropeSin = new float[seq * half];
        for (int t = 0; t < seq; t++) {
            for (int j = 0; j < half; j++) {
                float angle = t * freq[j];  // the same float angle the runtime computes
                ropeCos[t * half + j] = (float) Math.cos(angle);
                ropeSin[t * half + j] = (float) Math.sin(angle);
            }
        }
    }

    public LlamaTrainer(Params params, int batch, int seq) { this(params, batch, seq, null, false); }

    public FakeQuant weightQuant() { return weightQuant; }

    public boolean activationQuant() { return activationQuant; }

    /** The adapter under QLoRA, else null. */
    public Lora lora() { return lora; }

    /** The weight a linear layer computes with this step: ŵ under QAT, else w itself. */
    private float[] w(Param p) {
        float[] e = effective.get(p);
        return e != null ? e : p.value();
    }

    // ---- forward --------------------------------------------------------------------------------------------------

    /**
     * Runs the model on {@code in} (B, T) and returns the mean cross-entropy against {@code tgt} (B, T).
     * Saves the activations for {@link #backward()}.
     */
    public float forward(int[] in, int[] tgt) { return forward(in, tgt, null); }

    /**
     * As {@link #forward(int[], int[])}, but with soft targets when {@code soft} (N, vocab) is given (knowledge
     * distillation from a teacher's probabilities): loss = mean_n −Σ_i soft_i · log p_i, whose gradient with respect to
     * the logits is (p − soft) / N. {@code tgt} is then only checked, not used.
     */
    public float forward(int[] in, int[] tgt, float[] soft) {
        LlamaConfig c = config;
        int N = B * T, dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hidden = c.hiddenDim(), vocab = c.vocabSize();
        if (in.length != N || tgt.length != N) throw new Q4jException("a batch needs " + N + " inputs and targets, got " + in.length + " and " + tgt.length);
        System.arraycopy(in, 0, inputs, 0, N);
        System.arraycopy(tgt, 0, targets, 0, N);
        effective.clear();
        if (weightQuant != null) {
            for (Param p : params.all()) if (p.linear()) effective.put(p, weightQuant.apply(p.value(), p.rows(), p.cols()));
        }
        // embedding
        float[] emb = params.tokenEmbedding.value();
        for (int n = 0; n < N; n++) {
            int t = inputs[n];
            if (t < 0 || t >= vocab) throw new Q4jException("token id " + t + " at position " + n + " is outside the vocabulary (" + vocab + ")");
            System.arraycopy(emb, t * dim, residual[0], n * dim, dim);
        }
        for (int l = 0; l < c.nLayers(); l++) {
            // attention block
            rmsnormForward(xNorm1[l], rstd1[l], residual[l], params.attnNorm[l].value(), N, dim, c.normEps());
            if (activationQuant) FakeQuant.activations8bit(xNorm1[l], N, dim);
            linearForward(params.wq[l], q[l], xNorm1[l], N);
            linearForward(params.wk[l], k[l], xNorm1[l], N);
            linearForward(params.wv[l], v[l], xNorm1[l], N);
            rope(q[l], c.nHeads(), N, false);
            rope(k[l], c.nKvHeads(), N, false);
            attentionForward(attOut[l], att[l], q[l], k[l], v[l]);
            if (activationQuant) FakeQuant.activations8bit(attOut[l], N, qDim);
            linearForward(params.wo[l], scratchDim, attOut[l], N);
            for (int i = 0; i < N * dim; i++) xMid[l][i] = residual[l][i] + scratchDim[i];
            // feed-forward block
            rmsnormForward(xNorm2[l], rstd2[l], xMid[l], params.ffnNorm[l].value(), N, dim, c.normEps());
            if (activationQuant) FakeQuant.activations8bit(xNorm2[l], N, dim);
            linearForward(params.wGate[l], gate[l], xNorm2[l], N);
            linearForward(params.wUp[l], up[l], xNorm2[l], N);
            for (int i = 0; i < N * hidden; i++) {
                float g = gate[l][i];
                swiglu[l][i] = g / (1f + (float) Math.exp(-g)) * up[l][i];
            }
            if (activationQuant) FakeQuant.activations8bit(swiglu[l], N, hidden);
            linearForward(params.wDown[l], scratchDim, swiglu[l], N);
            for (int i = 0; i < N * dim; i++) residual[l + 1][i] = xMid[l][i] + scratchDim[i];
        }
        rmsnormForward(xFinal, rstdFinal, residual[c.nLayers()], params.outputNorm.value(), N, dim, c.normEps());
        matmulForward(probs, xFinal, head().value(), N, dim, vocab);
        // softmax and cross-entropy, loss summed in double
        double loss = 0;
        for (int n = 0; n < N; n++) {
            int off = n * vocab;
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < vocab; i++) max = Math.max(max, probs[off + i]);
            double sum = 0;
            for (int i = 0; i < vocab; i++) {
                float e = (float) Math.exp(probs[off + i] - max);
                probs[off + i] = e;
                sum += e;
            }
            float inv = (float) (1.0 / sum);
            for (int i = 0; i < vocab; i++) probs[off + i] *= inv;
            int target = targets[n];
            if (target < 0 || target >= vocab) throw new Q4jException("target id " + target + " at position " + n + " is outside the vocabulary (" + vocab + ")");
            if (soft == null) {
                loss -= Math.log(Math.max(probs[off + target], Float.MIN_NORMAL));
            } else {
                for (int i = 0; i < vocab; i++) if (soft[off + i] > 0) loss -= soft[off + i] * Math.log(Math.max(probs[off + i], Float.MIN_NORMAL));
            }
        }
        softTargets = soft;
        lastLoss = (float) (loss / N);
        return lastLoss;
    }

    /** The softmax of the last forward (N, vocab); overwritten by {@link #backward()}. */
    public float[] probabilities() { return probs; }

    private Param head() { return params.output != null ? params.output : params.tokenEmbedding; }

    // ---- backward -------------------------------------------------------------------------------------------------

    /** Adds ∂loss/∂θ of the last {@link #forward} to every parameter's gradient (call {@link Params#zeroGrad} first). */
    public void backward() {
        if (Float.isNaN(lastLoss)) throw new IllegalStateException("backward() needs a forward() first");
        LlamaConfig c = config;
        int N = B * T, dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hidden = c.hiddenDim(), vocab = c.vocabSize();
        // dloss/dlogits = (p − onehot(target)) / N, in place over the probabilities
        float invN = 1f / N;
        for (int n = 0; n < N; n++) {
            if (softTargets == null) {
                probs[n * vocab + targets[n]] -= 1f;
            } else {
                for (int i = n * vocab; i < (n + 1) * vocab; i++) probs[i] -= softTargets[i];
            }
            for (int i = n * vocab; i < (n + 1) * vocab; i++) probs[i] *= invN;
        }
        float[] dLogits = probs;
        Arrays.fill(dNorm, 0f);
        matmulBackward(dNorm, frozen != null ? null : head().grad(), dLogits, xFinal, head().value(), N, dim, vocab);
        Arrays.fill(dResidual, 0f);
        rmsnormBackward(dResidual, params.outputNorm.grad(), dNorm, residual[c.nLayers()], rstdFinal, params.outputNorm.value(), N, dim);
        for (int l = c.nLayers() - 1; l >= 0; l--) {
            // dResidual holds ∂L/∂residual[l + 1] = ∂L/∂xMid (through the skip) + the feed-forward branch's share
            Arrays.fill(dGate, 0f);           // dGate first receives ∂L/∂swiglu
            linearBackward(params.wDown[l], dGate, dResidual, swiglu[l], N);
            float[] g = gate[l], u = up[l];
            for (int i = 0; i < N * hidden; i++) {
                float dOut = dGate[i];
                float sigmoid = 1f / (1f + (float) Math.exp(-g[i]));
                float silu = g[i] * sigmoid;
                dUp[i] = dOut * silu;
                dGate[i] = dOut * u[i] * sigmoid * (1f + g[i] * (1f - sigmoid));
            }
            Arrays.fill(dNorm, 0f);
            linearBackward(params.wGate[l], dNorm, dGate, xNorm2[l], N);
            linearBackward(params.wUp[l], dNorm, dUp, xNorm2[l], N);
            rmsnormBackward(dResidual, params.ffnNorm[l].grad(), dNorm, xMid[l], rstd2[l], params.ffnNorm[l].value(), N, dim);
            // dResidual now holds ∂L/∂xMid[l]; the attention branch
            Arrays.fill(dAttOut, 0f);
            linearBackward(params.wo[l], dAttOut, dResidual, attOut[l], N);
            Arrays.fill(dQ, 0f);
            Arrays.fill(dK, 0f);
            Arrays.fill(dV, 0f);
            attentionBackward(dQ, dK, dV, dAttOut, att[l], q[l], k[l], v[l]);
            rope(dQ, c.nHeads(), N, true);
            rope(dK, c.nKvHeads(), N, true);
            Arrays.fill(dNorm, 0f);
            linearBackward(params.wq[l], dNorm, dQ, xNorm1[l], N);
            linearBackward(params.wk[l], dNorm, dK, xNorm1[l], N);
            linearBackward(params.wv[l], dNorm, dV, xNorm1[l], N);
            rmsnormBackward(dResidual, params.attnNorm[l].grad(), dNorm, residual[l], rstd1[l], params.attnNorm[l].value(), N, dim);
        }
        float[] dEmb = params.tokenEmbedding.grad();
        for (int n = 0; n < N; n++) FloatKernels.axpy(1f, dResidual, n * dim, dEmb, inputs[n] * dim, dim);
        lastLoss = Float.NaN; // the probabilities are now gradients
    }

    // ---- layers ---------------------------------------------------------------------------------------------------

    /**
     * out = in·Wᵀ for linear weight p: in (N, in), out (N, out). Under QLoRA, W is the frozen quantized tensor (the
     * runtime's kernel dequantizes its rows on the fly) and the adapter adds (α/r)·(in·Aᵀ)·Bᵀ, saving u = in·Aᵀ.
     */
    private void linearForward(Param p, float[] out, float[] in, int N) {
        int I = p.cols(), O = p.rows();
        if (frozen == null) {
            matmulForward(out, in, w(p), N, I, O);
            return;
        }
        MatMul.matmul(frozen.get(p), in, out, N);
        Lora.Pair ab = lora == null ? null : lora.pair(p.name());
        if (ab == null) return;
        int r = lora.rank;
        float[] u = loraHidden.get(p);                                  // (N, r)
        matmulForward(u, in, ab.a().value(), N, I, r);
        matmulForward(loraOut, u, ab.b().value(), N, r, O);                // (N, O)
        float s = lora.scaling();
        for (int i = 0; i < N * O; i++) out[i] += s * loraOut[i];
    }

    /**
     * Backward of {@link #linearForward}: dIn += dOut·W and dW += dOutᵀ·in; under QLoRA dIn += dOut·Ŵ (rows of the
     * quantized tensor dequantized on the fly, no gradient for W) and, through the adapter with g = (α/r)·dOut:
     * dB += gᵀ·u, du = g·B, dA += duᵀ·in, dIn += du·A.
     */
    private void linearBackward(Param p, float[] dIn, float[] dOut, float[] in, int N) {
        int I = p.cols(), O = p.rows();
        if (frozen == null) {
            matmulBackward(dIn, p.grad(), dOut, in, w(p), N, I, O);
            return;
        }
        frozenBackward(dIn, dOut, frozen.get(p), N);
        Lora.Pair ab = lora == null ? null : lora.pair(p.name());
        if (ab == null) return;
        int r = lora.rank;
        float s = lora.scaling();
        for (int i = 0; i < N * O; i++) loraDOut[i] = s * dOut[i];
        Arrays.fill(loraDHidden, 0f);
        matmulBackward(loraDHidden, ab.b().grad(), loraDOut, loraHidden.get(p), ab.b().value(), N, r, O);
        matmulBackward(dIn, ab.a().grad(), loraDHidden, in, ab.a().value(), N, I, r);
    }

    /**
     * dIn += dOut·Ŵ for a frozen weight in any storage type: dIn (N, I), dOut (N, O), Ŵ (O, I). Parallel over
     * contiguous shares of the N rows; each share dequantizes every row of Ŵ once into a thread-local (I) buffer.
     */
    static void frozenBackward(float[] dIn, float[] dOut, Tensor w, int N) {
        int O = (int) w.rows(), I = (int) w.cols();
        Parallel.forRange(N, Math.max(1, (N + Parallel.threads() - 1) / Parallel.threads()), (start, end) -> {
            float[] row = new float[I]; // (I) one dequantized row of Ŵ
            for (int o = 0; o < O; o++) {
                MatMul.dequantizeRow(w, o, row, 0);
                for (int n = start; n < end; n++) {
                    float d = dOut[n * O + o];
                    if (d != 0f) FloatKernels.axpy(d, row, 0, dIn, n * I, I);
                }
            }
        });
    }

    /** out = in · Wᵀ: in (N, I), W (O, I), out (N, O); parallel over the rows of W. */
    static void matmulForward(float[] out, float[] in, float[] w, int N, int I, int O) {
        int grain = Math.max(1, (1 << 15) / Math.max(1, N * I));
        Parallel.forRange(O, grain, (start, end) -> {
            for (int o = start; o < end; o++) {
                for (int n = 0; n < N; n++) out[n * O + o] = FloatKernels.dot(w, o * I, in, n * I, I);
            }
        });
    }

    /**
     * The two products of a linear layer's backward pass: dIn += dOut · W (N, I) and dW += dOutᵀ · in (O, I),
     * each parallel over its own output rows so that no two threads write the same value. {@code dW} null: only dIn.
     */
    static void matmulBackward(float[] dIn, float[] dW, float[] dOut, float[] in, float[] w, int N, int I, int O) {
        int grain = Math.max(1, (1 << 15) / Math.max(1, O * I));
        Parallel.forRange(N, grain, (start, end) -> {
            for (int n = start; n < end; n++) {
                for (int o = 0; o < O; o++) {
                    float d = dOut[n * O + o];
                    if (d != 0f) FloatKernels.axpy(d, w, o * I, dIn, n * I, I);
                }
            }
        });
        if (dW == null) return;  // frozen weight: no gradient
        int grainW = Math.max(1, (1 << 15) / Math.max(1, N * I));
        Parallel.forRange(O, grainW, (start, end) -> {
            for (int o = start; o < end; o++) {
                for (int n = 0; n < N; n++) {
                    float d = dOut[n * O + o];
                    if (d != 0f) FloatKernels.axpy(d, in, n * I, dW, o * I, I);
                }
            }
        });
    }

    /** y = weight ⊙ x · rstd, rstd = 1/√(mean(x²) + ε), per row; saves rstd. */
    static void rmsnormForward(float[] y, float[] rstd, float[] x, float[] weight, int N, int dim, float eps) {
        for (int n = 0; n < N; n++) {
            int off = n * dim;
            float ss = FloatKernels.dot(x, off, x, off, dim);
            float r = (float) (1.0 / Math.sqrt(ss / dim + eps));
            rstd[n] = r;
            for (int i = 0; i < dim; i++) y[off + i] = weight[i] * (r * x[off + i]);
        }
    }

    /**
     * dweight += Σ_n dy ⊙ x · rstd;  dx += rstd · (weight ⊙ dy) − x · rstd³/dim · Σ_i weight_i dy_i x_i.
     */
    static void rmsnormBackward(float[] dx, float[] dWeight, float[] dy, float[] x, float[] rstd, float[] weight, int N, int dim) {
        for (int n = 0; n < N; n++) {
            int off = n * dim;
            float r = rstd[n];
            float dot = 0;
            for (int i = 0; i < dim; i++) {
                dot += weight[i] * dy[off + i] * x[off + i];
                dWeight[i] += dy[off + i] * x[off + i] * r;
            }
            float coef = dot * r * r * r / dim;
            for (int i = 0; i < dim; i++) dx[off + i] += r * weight[i] * dy[off + i] - coef * x[off + i];
        }
    }

    /**
     * Rotates each head's pairs by position t·θ_j (t = place in the window), adjacent pairs or NeoX halves as the
     * runtime does; {@code inverse} rotates by −t·θ_j, which is the backward pass (a rotation's transpose).
     */
    private void rope(float[] vec, int heads, int N, boolean inverse) {
        int headDim = config.headDim(), half = headDim / 2;
        boolean neox = config.ropeType() == LlamaConfig.RopeType.NEOX;
        for (int n = 0; n < N; n++) {
            int t = n % T;
            for (int h = 0; h < heads; h++) {
                int base = n * heads * headDim + h * headDim;
                for (int j = 0; j < half; j++) {
                    float cos = ropeCos[t * half + j], sin = inverse ? -ropeSin[t * half + j] : ropeSin[t * half + j];
                    int i0 = neox ? base + j : base + 2 * j;
                    int i1 = neox ? base + j + half : base + 2 * j + 1;
                    float a = vec[i0], b = vec[i1];
                    vec[i0] = a * cos - b * sin;
                    vec[i1] = a * sin + b * cos;
                }
            }
        }
    }

    /**
     * Causal grouped-query attention: for query head h (using kv head h / kvMul) at position t,
     * att[t2] = softmax_t2≤t(q_t · k_t2 / √headDim), out_t = Σ att[t2] · v_t2. Parallel over (batch, head).
     */
    private void attentionForward(float[] out, float[] att, float[] q, float[] k, float[] v) {
        LlamaConfig c = config;
        int headDim = c.headDim(), H = c.nHeads(), qDim = c.qDim(), kvDim = c.kvDim(), kvMul = c.kvMul();
        float scale = (float) (1.0 / Math.sqrt(headDim));
        Parallel.forRange(B * H, 1, (start, end) -> {
            for (int bh = start; bh < end; bh++) {
                int b = bh / H, h = bh % H, kvOff = (h / kvMul) * headDim;
                for (int t = 0; t < T; t++) {
                    int qOff = (b * T + t) * qDim + h * headDim;
                    int aOff = (bh * T + t) * T;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int t2 = 0; t2 <= t; t2++) {
                        float s = FloatKernels.dot(q, qOff, k, (b * T + t2) * kvDim + kvOff, headDim) * scale;
                        att[aOff + t2] = s;
                        max = Math.max(max, s);
                    }
                    float sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        float e = (float) Math.exp(att[aOff + t2] - max);
                        att[aOff + t2] = e;
                        sum += e;
                    }
                    float inv = 1f / sum;
                    for (int t2 = 0; t2 <= t; t2++) att[aOff + t2] *= inv;
                    Arrays.fill(att, aOff + t + 1, aOff + T, 0f);
                    Arrays.fill(out, qOff, qOff + headDim, 0f);
                    for (int t2 = 0; t2 <= t; t2++) FloatKernels.axpy(att[aOff + t2], v, (b * T + t2) * kvDim + kvOff, out, qOff, headDim);
                }
            }
        });
    }

    /**
     * Backward of {@link #attentionForward}: dAtt[t2] = dOut_t · v_t2, dv_t2 += att[t2] · dOut_t,
     * dScore = att ⊙ (dAtt − Σ att ⊙ dAtt), dq_t += dScore[t2] · k_t2 / √headDim, dk_t2 += dScore[t2] · q_t / √headDim.
     * Parallel over (batch, kv head): the query heads sharing a kv head write its dk, dv from one thread.
     */
    private void attentionBackward(float[] dq, float[] dk, float[] dv, float[] dOut, float[] att, float[] q, float[] k, float[] v) {
        LlamaConfig c = config;
        int headDim = c.headDim(), H = c.nHeads(), KV = c.nKvHeads(), qDim = c.qDim(), kvDim = c.kvDim(), kvMul = c.kvMul();
        float scale = (float) (1.0 / Math.sqrt(headDim));
        Parallel.forRange(B * KV, 1, (start, end) -> {
            float[] dAtt = new float[T]; // (T) for one query position
            for (int bkv = start; bkv < end; bkv++) {
                int b = bkv / KV, kvh = bkv % KV, kvOff = kvh * headDim;
                for (int h = kvh * kvMul; h < (kvh + 1) * kvMul; h++) {
                    for (int t = 0; t < T; t++) {
                        int qOff = (b * T + t) * qDim + h * headDim;
                        int aOff = ((b * H + h) * T + t) * T;
                        float weighted = 0;
                        for (int t2 = 0; t2 <= t; t2++) {
                            int vOff = (b * T + t2) * kvDim + kvOff;
                            dAtt[t2] = FloatKernels.dot(dOut, qOff, v, vOff, headDim);
                            weighted += att[aOff + t2] * dAtt[t2];
                            FloatKernels.axpy(att[aOff + t2], dOut, qOff, dv, vOff, headDim);
                        }
                        for (int t2 = 0; t2 <= t; t2++) {
                            float dScore = att[aOff + t2] * (dAtt[t2] - weighted) * scale;
                            int kOff = (b * T + t2) * kvDim + kvOff;
                            FloatKernels.axpy(dScore, k, kOff, dq, qOff, headDim);
                            FloatKernels.axpy(dScore, q, qOff, dk, kOff, headDim);
                        }
                    }
                }
            }
        });
    }
}
