#!/usr/bin/python3
"""Does quant4j's trainer train like PyTorch? (issue 7, item 6)

Runs `quant4j train` with --save-init (initial weights + model shape + training setup), --dump-batches (every step's
token windows) and --log (every step's loss), then trains the same Llama in PyTorch from the same initial weights on
the same batches in the same order with torch.optim.AdamW (same betas, eps, weight decay on the same tensors: rank >= 2,
not the norms), the same warm-up + cosine schedule and torch.nn.utils.clip_grad_norm_, and compares the per-step
losses. Goal: max relative difference <= 2% over the first 200 steps.

Usage (from the repository root; Debian's python3-torch, so /usr/bin/python3):
  /usr/bin/python3 tools/torch_train_compare.py                       # stories260K's shape from scratch, 200 steps
  /usr/bin/python3 tools/torch_train_compare.py --init models/stories260K/stories260K.bin   # fine-tuning the real model
  /usr/bin/python3 tools/torch_train_compare.py --reuse OUTDIR         # compare an earlier run's files again
Options after `--` go to `quant4j train` unchanged (e.g. -- --lr 3e-3).
Not part of the default test run: it needs PyTorch and takes a few minutes.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    """name -> float32 numpy array, and the __metadata__ map (a minimal reader: F32 tensors only)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"]).copy()
    return out, meta


class Llama(torch.nn.Module):
    """The Llama architecture as quant4j's LlamaTrainer computes it (GGUF tensor names, adjacent-pair or NeoX RoPE)."""

    def __init__(self, cfg, weights):
        super().__init__()
        self.cfg = cfg
        self.p = torch.nn.ParameterDict()
        for name, w in weights.items():
            self.p[name.replace(".", "__")] = torch.nn.Parameter(torch.from_numpy(w))
        half = cfg["head_dim"] // 2
        j = np.arange(half, dtype=np.float64)
        freq = np.power(np.float64(cfg["rope_theta"]), -2.0 * j / cfg["head_dim"]).astype(np.float32)  # (half)
        t = np.arange(cfg["seq"], dtype=np.float32)[:, None]
        angle = (t * freq[None, :]).astype(np.float32)                                                  # (T, half)
        self.cos = torch.from_numpy(np.cos(angle.astype(np.float64)).astype(np.float32))
        self.sin = torch.from_numpy(np.sin(angle.astype(np.float64)).astype(np.float32))

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def rmsnorm(self, x, weight):
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg["norm_eps"])
        return weight * (x * rstd)

    def rope(self, x):  # x (B, T, H, headDim)
        T = x.shape[1]
        cos, sin = self.cos[:T, None, :], self.sin[:T, None, :]
        if self.cfg["rope_type"] == "NEOX":
            half = x.shape[-1] // 2
            a, b = x[..., :half], x[..., half:]
            return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)

    def forward(self, tokens):  # tokens (B, T) -> logits (B, T, vocab)
        c = self.cfg
        B, T = tokens.shape
        H, KV, hd = c["n_heads"], c["n_kv_heads"], c["head_dim"]
        x = self.w("token_embd.weight")[tokens]
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        for l in range(c["n_layers"]):
            blk = f"blk.{l}."
            h = self.rmsnorm(x, self.w(blk + "attn_norm.weight"))
            q = (h @ self.w(blk + "attn_q.weight").T).view(B, T, H, hd)
            k = (h @ self.w(blk + "attn_k.weight").T).view(B, T, KV, hd)
            v = (h @ self.w(blk + "attn_v.weight").T).view(B, T, KV, hd)
            q, k = self.rope(q), self.rope(k)
            k = k.repeat_interleave(H // KV, dim=2)
            v = v.repeat_interleave(H // KV, dim=2)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))                 # (B, H, T, hd)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, H * hd)
            x = x + y @ self.w(blk + "attn_output.weight").T
            h = self.rmsnorm(x, self.w(blk + "ffn_norm.weight"))
            g = h @ self.w(blk + "ffn_gate.weight").T
            u = h @ self.w(blk + "ffn_up.weight").T
            x = x + (F.silu(g) * u) @ self.w(blk + "ffn_down.weight").T
        x = self.rmsnorm(x, self.w("output_norm.weight"))
        head = self.w("token_embd.weight") if c["tied_embeddings"] else self.w("output.weight")
        return x @ head.T


def learning_rate(step, steps, warmup, max_lr, min_lr):
    """Linear warm-up then cosine decay, as quant4j's AdamW.learningRate."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if steps <= warmup:
        return max_lr
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/torch-compare", help="working directory (default out/torch-compare)")
    ap.add_argument("--init", help="fine-tune this model instead of training stories260K's shape from scratch")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--data", default="data/text/tinystories_sample.txt")
    ap.add_argument("--reuse", metavar="DIR", help="skip quant4j; compare the files an earlier run left in DIR")
    ap.add_argument("--goal", type=float, default=0.02, help="largest relative loss difference allowed (default 0.02)")
    ap.add_argument("rest", nargs="*", help="after --: more `quant4j train` options")
    a = ap.parse_args()
    out = a.reuse or a.out
    os.makedirs(out, exist_ok=True)
    init_file, batches_file, log_file = (os.path.join(out, f) for f in ("init.safetensors", "batches.i32", "quant4j.tsv"))
    if not a.reuse:
        cmd = ["./quant4j", "train", "--data", a.data, "--steps", str(a.steps), "--batch", "8", "--seq", "64",
               "--lr", "1e-3", "--warmup", "20", "--clip", "1.0", "--weight-decay", "0.1", "--seed", "1", "--eval-every", "0",
               "--save-init", init_file, "--dump-batches", batches_file, "--log", log_file, "-o", os.path.join(out, "quant4j.gguf")]
        cmd += ["--init", a.init] if a.init else ["--config", "stories260k", "--tokenizer", "models/stories260K/tok512.bin"]
        cmd += a.rest
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)

    weights, meta = read_safetensors(init_file)
    cfg = json.loads(meta["quant4j.train"])
    if cfg["rope_scaling"] or cfg["qkv_bias"]:
        raise SystemExit("this comparison covers plain Llama (no rope scaling, no q/k/v bias)")
    steps, B, T = cfg["steps"], cfg["batch"], cfg["seq"]
    f32 = lambda v: float(np.float32(v))
    batches = np.fromfile(batches_file, dtype="<i4")
    if batches.size != steps * 2 * B * T:
        raise SystemExit(f"{batches_file}: {batches.size} ids, expected {steps} steps x 2 x {B} x {T}")
    batches = batches.reshape(steps, 2, B, T)
    q_loss, q_lr, q_norm = [], [], []
    with open(log_file) as f:
        next(f)
        for line in f:
            s, loss, lr, norm = line.split("\t")
            q_loss.append(float(loss)); q_lr.append(float(lr)); q_norm.append(float(norm))

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = Llama(cfg, weights)
    decay = [p for n, p in model.p.items() if p.dim() >= 2]
    no_decay = [p for n, p in model.p.items() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": f32(cfg["weight_decay"])},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=f32(cfg["lr"]), betas=(f32(cfg["beta1"]), f32(cfg["beta2"])), eps=f32(cfg["eps"]))
    rows, worst, worst_step, lr_diff = [], 0.0, 0, 0.0
    for step in range(steps):
        inputs = torch.from_numpy(batches[step, 0].astype(np.int64))
        targets = torch.from_numpy(batches[step, 1].astype(np.int64))
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), targets.reshape(-1))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"]) if cfg["grad_clip"] > 0 else torch.tensor(0.0)
        lr = learning_rate(step, steps, cfg["warmup"], f32(cfg["lr"]), f32(cfg["min_lr"]))
        lr_diff = max(lr_diff, abs(lr - q_lr[step]) / q_lr[step])
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        t = loss.item()
        rel = abs(q_loss[step] - t) / t
        if rel > worst:
            worst, worst_step = rel, step + 1
        rows.append((step + 1, t, q_loss[step], rel, float(norm), q_norm[step]))
        if (step + 1) % 20 == 0 or step == 0:
            print(f"step {step + 1:4d}  torch {t:.5f}  quant4j {q_loss[step]:.5f}  rel.diff {rel:.2e}  |g| torch {float(norm):.4f} quant4j {q_norm[step]:.4f}", flush=True)

    with open(os.path.join(out, "compare.tsv"), "w") as f:
        f.write("step\ttorch_loss\tquant4j_loss\trel_diff\ttorch_grad_norm\tquant4j_grad_norm\n")
        for r in rows:
            f.write("\t".join(str(v) for v in r) + "\n")
    mean = sum(r[3] for r in rows) / len(rows)
    print(f"learning rates: max relative difference {lr_diff:.2e}")
    print(f"losses over {steps} steps: max relative difference {worst:.3e} (step {worst_step}), mean {mean:.3e}; "
          f"first {rows[0][1]:.4f} -> last {rows[-1][1]:.4f} (torch)")
    print(f"per-step table: {os.path.join(out, 'compare.tsv')}")
    ok = worst <= a.goal
    print(("PASS" if ok else "FAIL") + f": goal max relative difference <= {a.goal:.0%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
