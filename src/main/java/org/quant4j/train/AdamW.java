package org.quant4j.train;

import org.quant4j.train.Params.Param;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * AdamW (Loshchilov &amp; Hutter): Adam's moment estimates with decoupled weight decay, applied to matrices only
 * (norm weights are not decayed), plus the two things every LLM training loop wraps around it: a learning rate with
 * linear warm-up then cosine decay, and clipping of the global gradient norm.
 * <pre>
 *   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²,   m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)
 *   θ ← θ − lr·(m̂ / (√v̂ + ε) + λ·θ)
 * </pre>
 */
public final class AdamW {
    public record Hyper(float beta1, float beta2, float eps, float weightDecay) {
        public static Hyper defaults() { return new Hyper(0.9f, 0.95f, 1e-8f, 0.1f); }
    }

    final Hyper hyper;
    final Map<Param, float[]> m = new IdentityHashMap<>(), v = new IdentityHashMap<>(); // first and second moments, shaped as the parameter
    int t;                                                                                  // updates done

    public AdamW(Params params, Hyper hyper) { this(params.all(), hyper); }

    /** An optimizer for these parameters only (QLoRA: the adapters; the base stays frozen). */
    public AdamW(List<Param> params, Hyper hyper) {
        this.hyper = hyper;
        for (Param p : params) {
            m.put(p, new float[p.value().length]);
            v.put(p, new float[p.value().length]);
        }
    }

    public int updates() { return t; }

    /** One update of every parameter from its gradient. */
    public void update(Params params, float lr) { update(params.all(), lr); }

    /** One update of each of {@code params} (those given to the constructor) from its gradient. */
    public void update(List<Param> params, float lr) {
        t++;
        float b1 = hyper.beta1(), b2 = hyper.beta2();
        float correction1 = (float) (1 - Math.pow(b1, t)), correction2 = (float) (1 - Math.pow(b2, t));
        for (Param p : params) {
            float[] w = p.value(), g = p.grad(), mp = m.get(p), vp = v.get(p);
            float decay = p.shape().length >= 2 ? hyper.weightDecay() : 0f;
            for (int i = 0; i < w.length; i++) {
                mp[i] = b1 * mp[i] + (1 - b1) * g[i];
                vp[i] = b2 * vp[i] + (1 - b2) * g[i] * g[i];
                float mHat = mp[i] / correction1, vHat = vp[i] / correction2;
                w[i] -= lr * (mHat / ((float) Math.sqrt(vHat) + hyper.eps()) + decay * w[i]);
            }
        }
    }

    /** Linear warm-up over {@code warmup} steps to {@code maxLr}, then cosine decay to {@code minLr} at {@code steps}. */
    public static float learningRate(int step, int steps, int warmup, float maxLr, float minLr) {
        if (step < warmup) return maxLr * (step + 1) / warmup;
        if (steps <= warmup) return maxLr;
        double progress = Math.min(1.0, (step - warmup) / (double) Math.max(1, steps - warmup));
        return (float) (minLr + 0.5 * (maxLr - minLr) * (1 + Math.cos(Math.PI * progress)));
    }

    /** Scales every gradient so that their global L2 norm is at most {@code maxNorm}; returns the norm before clipping. */
    public static float clipGradients(Params params, float maxNorm) { return clipGradients(params.all(), maxNorm); }

    public static float clipGradients(List<Param> params, float maxNorm) {
        double ss = 0;
        for (Param p : params) for (float g : p.grad()) ss += (double) g * g;
        float norm = (float) Math.sqrt(ss);
        if (maxNorm > 0 && norm > maxNorm) {
            float s = maxNorm / norm;
            for (Param p : params) {
                float[] g = p.grad();
                for (int i = 0; i < g.length; i++) g[i] *= s;
            }
        }
        return norm;
    }
}
