#!/usr/bin/python3
"""Reference GPTQ harness: IST-DASLab/gptq's algorithm, run on a weight W and a Hessian H, for checking quant4j's Gptq.

Source: https://github.com/IST-DASLab/gptq (Apache-2.0), gptq.py (GPTQ.add_batch, GPTQ.fasterquant) and quant.py
(quantize, Quantizer.find_params with perchannel=True, mse=False). `fasterquant` and `find_params` below follow
theirs line by line on a bare weight matrix instead of an nn.Linear (no CUDA, no layer object), in float32 as theirs.
One addition, off unless asked: `fp16_scales` rounds each scale to float16 before it is used (quant4j stores F16
scales and quantizes against the stored grid); the zero point is then clamped to [0, maxq].

Usage (run with Debian's python3-torch: /usr/bin/python3):

  tools/gptq_reference.py make-fixture DIR --x X.f32 --w W.f32        # H from calibration inputs X, then all cases
  tools/gptq_reference.py make-fixture DIR --random ROWS COLS [--seed S]  # random W and correlated random X
  tools/gptq_reference.py time --rows 2048 --cols 2048 [--groupsize 128] [--actorder] [--hessian-samples N]
                                              # fasterquant time on one layer (and add_batch time)
  tools/gptq_reference.py pack-fixture DIR    # Hugging Face GPTQ (v1) packing of random codes, for quant4j's GptqLayout

pack-fixture follows GPTQModel's qlinear_cuda_old.QuantLinear.pack (the integer packing loops, 2/3/4/8 bits) and
convert_gptq_v2_to_v1_format (qzeros minus 0x55555555 / 0x11111111 / 0x01010101; 3 bits: minus 1 per field): for each case BITS_GS in
DIR/pack.tsv it writes NAME.in (int32 out, in, groups; uint8 codes (out, in); uint8 zeros (groups, out); float16
scales (groups, out)) and NAME.qweight / NAME.qzeros (int32, row-major as the safetensors tensors).

Binary formats (little-endian):
  *.f32 matrix: int32 rows, int32 cols, then rows*cols float32 (row-major).
  X: (tokens, cols) layer inputs; consecutive runs of --seq-len tokens are one sample each (add_batch per sample).

A fixture directory holds W.f32 (rows, cols), H.f32 (cols, cols) = 2/n Σ X Xᵀ as their add_batch accumulates it, and
for each case NAME a file NAME.codes.gz: rows*cols uint8 integer codes (0..maxq, original column order, after
un-permuting act-order), and cases.tsv with one line per case:
  name bits sym groupsize actorder static_groups fp16_scales loss output_error
where loss is fasterquant's printed "error" (sum of Losses) and output_error = Σ_rows (W − Ŵ)_r H (W − Ŵ)_rᵀ
= (2/n)·‖WX − ŴX‖² (float64), Ŵ the dequantized result.

The random fixture's inputs are kept reasonably conditioned (channel scales in [0.25, 2], mixing I + 0.5·G/√n): with
scales down to 0 and mixing I + G/√n, the reference itself changed 0.2% of its codes when only its Cholesky ran in
float64 instead of float32, so no float/double difference could be told from a bug there.
"""
import argparse
import gzip
import math
import os
import struct
import sys
import time

import numpy as np
import torch


# ---- quant.py ------------------------------------------------------------------------------------------------

def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


class Quantizer:
    def configure(self, bits, sym=True, fp16_scales=False):
        self.maxq = torch.tensor(2 ** bits - 1)
        self.sym = sym
        self.fp16_scales = fp16_scales
        self.scale = torch.zeros(1)

    def find_params(self, x):                     # perchannel=True, weight=True, mse=False
        x = x.flatten(1)
        tmp = torch.zeros(x.shape[0])
        xmin = torch.minimum(x.min(1)[0], tmp)
        xmax = torch.maximum(x.max(1)[0], tmp)
        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            tmp = xmin < 0
            if torch.any(tmp):
                xmin[tmp] = -xmax[tmp]
        tmp = (xmin == 0) & (xmax == 0)
        xmin[tmp] = -1
        xmax[tmp] = +1
        self.scale = (xmax - xmin) / self.maxq
        if self.fp16_scales:                      # quant4j's addition (see the header)
            self.scale = self.scale.half().float()
            self.scale[self.scale == 0] = 2.0 ** -24
        if self.sym:
            self.zero = torch.full_like(self.scale, (self.maxq + 1) / 2)
        else:
            self.zero = torch.round(-xmin / self.scale)
            if self.fp16_scales:
                self.zero = torch.clamp(self.zero, 0, self.maxq)
        self.scale = self.scale.reshape([-1, 1])
        self.zero = self.zero.reshape([-1, 1])

    def ready(self):
        return torch.all(self.scale != 0)


# ---- gptq.py -------------------------------------------------------------------------------------------------

class GPTQ:
    def __init__(self, columns):
        self.columns = columns
        self.H = torch.zeros((columns, columns))
        self.nsamples = 0

    def add_batch(self, inp):                     # inp: (batch, tokens, cols)
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        inp = inp.reshape((-1, inp.shape[-1])).t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())

    def fasterquant(self, W, blocksize=128, percdamp=.01, groupsize=-1, actorder=False, static_groups=False):
        """Returns (codes in original column order, dequantized Q, loss, seconds). W: (rows, cols) float32."""
        W = W.clone().float()
        tick = time.time()
        cpu_tick = time.process_time()
        if not self.quantizer.ready():
            self.quantizer.find_params(W)

        H = self.H.clone()
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0

        if static_groups:
            import copy
            groups = []
            for i in range(0, self.columns, groupsize):
                quantizer = copy.deepcopy(self.quantizer)
                quantizer.find_params(W[:, i:(i + groupsize)])
                groups.append(quantizer)

        if actorder:
            perm = torch.argsort(torch.diag(H), descending=True)
            W = W[:, perm]
            H = H[perm][:, perm]
            invperm = torch.argsort(perm)

        Losses = torch.zeros_like(W)
        Q = torch.zeros_like(W)
        C = torch.zeros_like(W)                   # harness: the integer codes beside Q

        damp = percdamp * torch.mean(torch.diag(H))
        diag = torch.arange(self.columns)
        H[diag, diag] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        H = torch.linalg.cholesky(H, upper=True)
        Hinv = H

        for i1 in range(0, self.columns, blocksize):
            i2 = min(i1 + blocksize, self.columns)
            count = i2 - i1

            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            C1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Losses1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]

            for i in range(count):
                w = W1[:, i]
                d = Hinv1[i, i]

                if groupsize != -1:
                    if not static_groups:
                        if (i1 + i) % groupsize == 0:
                            self.quantizer.find_params(W[:, (i1 + i):(i1 + i + groupsize)])
                    else:
                        idx = i1 + i
                        if actorder:
                            idx = perm[idx]
                        self.quantizer = groups[idx // groupsize]

                s, z, maxq = self.quantizer.scale, self.quantizer.zero, self.quantizer.maxq
                C1[:, i] = torch.clamp(torch.round(w.unsqueeze(1) / s) + z, 0, maxq).flatten()
                q = quantize(w.unsqueeze(1), s, z, maxq).flatten()
                Q1[:, i] = q
                Losses1[:, i] = (w - q) ** 2 / d ** 2

                err1 = (w - q) / d
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1

            Q[:, i1:i2] = Q1
            C[:, i1:i2] = C1
            Losses[:, i1:i2] = Losses1 / 2

            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])

        seconds = time.time() - tick
        global LAST_CPU_SECONDS
        LAST_CPU_SECONDS = time.process_time() - cpu_tick
        if actorder:
            Q = Q[:, invperm]
            C = C[:, invperm]
        return C.to(torch.uint8), Q, torch.sum(Losses).item(), seconds


# ---- files ---------------------------------------------------------------------------------------------------

def read_f32(path):
    with open(path, 'rb') as f:
        rows, cols = struct.unpack('<ii', f.read(8))
        return torch.from_numpy(np.frombuffer(f.read(), dtype='<f4').reshape(rows, cols).copy())


def write_f32(path, m):
    m = m.detach().cpu().numpy().astype('<f4')
    with open(path, 'wb') as f:
        f.write(struct.pack('<ii', *m.shape))
        f.write(m.tobytes())


CASES = []
for bits in (4, 3):
    for sym in (True, False):
        for gs in (32, 128, -1):
            for act in (False, True):
                CASES.append((bits, sym, gs, act, False, False))
CASES += [(4, True, 32, True, True, False), (3, False, 128, True, True, False),   # static groups with act-order
          (4, True, 32, False, False, True), (3, False, 32, True, True, True),    # fp16 scales (quant4j's stored grid)
          (2, False, 32, False, False, False), (8, True, 128, False, False, False)]


def case_name(bits, sym, gs, act, static, fp16):
    return 'w%d_%s_%s%s%s%s' % (bits, 'sym' if sym else 'asym', 'g%d' % gs if gs > 0 else 'none',
                                '_act' if act else '', '_static' if static else '', '_fp16' if fp16 else '')


def run_case(W, H, bits, sym, gs, act, static, fp16):
    g = GPTQ(W.shape[1])
    g.H = H.clone()
    g.quantizer = Quantizer()
    g.quantizer.configure(bits, sym=sym, fp16_scales=fp16)
    return g.fasterquant(W, groupsize=gs, actorder=act, static_groups=static)


def make_fixture(args):
    torch.manual_seed(args.seed)
    os.makedirs(args.dir, exist_ok=True)
    if args.random:
        rows, cols = args.random
        W = torch.randn(rows, cols) * 0.02
        W[:, torch.randperm(cols)[:cols // 64]] *= 8                      # a few outlier input channels
        mix = 0.5 * torch.randn(cols, cols) / math.sqrt(cols) + torch.eye(cols)
        X = (torch.randn(args.tokens, cols) * (0.25 + 1.75 * torch.rand(cols))) @ mix   # correlated, uneven channels
        X[:, torch.randperm(cols)[:3]] = 0                                 # dead inputs
    else:
        W, X = read_f32(args.w), read_f32(args.x)
    g = GPTQ(W.shape[1])
    for s in range(0, X.shape[0], args.seq_len):
        g.add_batch(X[s:s + args.seq_len].unsqueeze(0))
    H = g.H
    write_f32(os.path.join(args.dir, 'W.f32'), W)
    write_f32(os.path.join(args.dir, 'H.f32'), H)
    Hd = H.double()
    with open(os.path.join(args.dir, 'cases.tsv'), 'w') as out:
        out.write('name\tbits\tsym\tgroupsize\tactorder\tstatic_groups\tfp16_scales\tloss\toutput_error\n')
        for case in CASES:
            codes, Q, loss, _ = run_case(W, H, *case)
            D = (W - Q).double()
            err = torch.sum((D @ Hd) * D).item()
            name = case_name(*case)
            with open(os.path.join(args.dir, name + '.codes.gz'), 'wb') as raw, \
                    gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as f:
                f.write(codes.numpy().tobytes())
            out.write('%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.9g\t%.9g\n' % ((name,) + tuple(int(v) for v in case) + (loss, err)))
            print(name, 'loss %.6g output error %.6g' % (loss, err))


def time_layer(args):
    torch.manual_seed(args.seed)
    rows, cols = args.rows, args.cols
    W = torch.randn(rows, cols) * 0.02
    X = torch.randn(args.tokens, cols) @ (torch.randn(cols, cols) / math.sqrt(cols) + torch.eye(cols))
    g = GPTQ(cols)
    g.add_batch(X.unsqueeze(0))
    H = g.H
    best = None
    for _ in range(args.repeat):
        _, _, loss, seconds = run_case(W, H, args.bits, args.sym, args.groupsize, args.actorder, False, False)
        if best is None or seconds < best:
            best, best_cpu = seconds, LAST_CPU_SECONDS
    print('reference fasterquant %dx%d bits=%d groupsize=%d actorder=%s threads=%d: %.3f s (best of %d), loss %.6g, cpu %.3f s'
          % (rows, cols, args.bits, args.groupsize, args.actorder, torch.get_num_threads(), best, args.repeat, loss, best_cpu))
    if args.hessian_samples > 0:                 # add_batch over samples of seq_len random tokens, as quant4j bench --hessian
        x = torch.rand(args.hessian_seq_len, cols) - 0.5
        warm = GPTQ(cols)
        warm.add_batch(x.unsqueeze(0))
        acc = GPTQ(cols)
        tick = time.time()
        for _ in range(args.hessian_samples):
            acc.add_batch(x.unsqueeze(0))
        seconds = time.time() - tick
        print('reference add_batch cols=%d samples=%d seq_len=%d threads=%d: %.3f s'
              % (cols, args.hessian_samples, args.hessian_seq_len, torch.get_num_threads(), seconds))
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        write_f32(os.path.join(args.save, 'W.f32'), W)
        write_f32(os.path.join(args.save, 'H.f32'), H)


def gptqmodel_pack(intweight, zeros, bits):
    """intweight (in, out) uint32, zeros (groups, out) uint32 → qweight, qzeros as GPTQModel packs them (2/4/8 bits)."""
    qweight = np.zeros((intweight.shape[0] // 32 * bits, intweight.shape[1]), dtype=np.uint32)
    i = 0
    row = 0
    while row < qweight.shape[0]:
        for j in range(i, i + (32 // bits)):
            qweight[row] |= intweight[j] << (bits * (j - i))
        i += 32 // bits
        row += 1
    qzeros = np.zeros((zeros.shape[0], zeros.shape[1] // 32 * bits), dtype=np.uint32)
    i = 0
    col = 0
    while col < qzeros.shape[1]:
        for j in range(i, i + (32 // bits)):
            qzeros[:, col] |= zeros[:, j] << (bits * (j - i))
        i += 32 // bits
        col += 1
    qzeros = torch.from_numpy(qzeros.astype(np.int32))
    qzeros -= {2: 0b01010101010101010101010101010101, 4: 0b00010001000100010001000100010001,
               8: 0b00000001000000010000000100000001}[bits]   # convert_gptq_v2_to_v1_format
    return qweight.astype(np.int32), qzeros.numpy()


def gptqmodel_pack3(intweight, zeros):
    """3 bits, as AutoGPTQ's / GPTQModel's pack_original: 32 values in 3 words (10, a value split 2 + 1 bits, 10, a
    value split 1 + 2 bits, 10), the same loops along out for qzeros; v1 zeros hold (zero - 1) mod 8 per field
    (GPTQModel's _revert_gptq_v1_qzeros_correction: a packed-word constant would carry across the split fields)."""
    def pack_along(v, words):                     # v (n, m) uint32 → (n // 32 * 3, m), packing along axis 0
        out = np.zeros((words, v.shape[1]), dtype=np.uint32)
        i = 0
        row = 0
        while row < words:
            for j in range(i, i + 10):
                out[row] |= v[j] << (3 * (j - i))
            i += 10
            out[row] |= v[i] << 30
            row += 1
            out[row] |= (v[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                out[row] |= v[j] << (3 * (j - i) + 1)
            i += 10
            out[row] |= v[i] << 31
            row += 1
            out[row] |= (v[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                out[row] |= v[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
        return out
    qweight = pack_along(intweight, intweight.shape[0] // 32 * 3)
    stored = (zeros.astype(np.int64) - 1) & 7
    qzeros = pack_along(stored.T.astype(np.uint32), zeros.shape[1] // 32 * 3).T.copy()
    return qweight.astype(np.int32), qzeros.astype(np.int32)


def unpack3(words):
    """(k·3, m) int32 words → (k·32, m) 3-bit values, word by word as GPTQModel's unpack of 3-bit columns."""
    w = words.astype(np.int64) & 0xffffffff
    out = np.zeros((w.shape[0] // 3 * 32, w.shape[1]), dtype=np.int64)
    for b in range(w.shape[0] // 3):
        w0, w1, w2 = w[3 * b], w[3 * b + 1], w[3 * b + 2]
        o = out[32 * b:32 * b + 32]
        for i in range(10):
            o[i] = (w0 >> (3 * i)) & 7
        o[10] = ((w0 >> 30) & 3) | ((w1 << 2) & 4)
        for i in range(10):
            o[11 + i] = (w1 >> (3 * i + 1)) & 7
        o[21] = ((w1 >> 31) & 1) | ((w2 << 1) & 6)
        for i in range(10):
            o[22 + i] = (w2 >> (3 * i + 2)) & 7
    return out


def pack_fixture(args):
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.dir, exist_ok=True)
    with open(os.path.join(args.dir, 'pack.tsv'), 'w') as tsv:
        tsv.write('name\tbits\tgroupsize\tsym\n')
        for bits, gs, sym in ((4, 32, 0), (4, 64, 1), (2, 32, 0), (8, 128, 0), (4, -1, 0), (3, 32, 0), (3, 64, 1)):
            out, inf = 64, 128
            groups = 1 if gs < 0 else inf // gs
            codes = rng.integers(0, 2 ** bits, size=(out, inf), dtype=np.uint32)
            zeros = np.full((groups, out), 2 ** (bits - 1), dtype=np.uint32) if sym else \
                rng.integers(0, 2 ** bits, size=(groups, out), dtype=np.uint32)
            if not sym:
                zeros[0, :4] = 0                              # zero points of 0 borrow across fields in v1
            scales = (rng.random((groups, out)) * 0.05 + 0.001).astype(np.float16)
            if bits == 3:
                qweight, qzeros = gptqmodel_pack3(codes.T.copy(), zeros)
                # the loader's view: unpacked codes, and zeros with v1's +1 per field, are what was packed
                assert (unpack3(qweight) == codes.T).all()
                assert (((unpack3(qzeros.T.copy()).T + 1) & 7) == zeros).all()
            else:
                qweight, qzeros = gptqmodel_pack(codes.T.copy(), zeros, bits)
            name = 'w%d_g%d%s' % (bits, gs, '_sym' if sym else '')
            with open(os.path.join(args.dir, name + '.in'), 'wb') as f:
                f.write(struct.pack('<iii', out, inf, groups))
                f.write(codes.astype(np.uint8).tobytes())
                f.write(zeros.astype(np.uint8).tobytes())
                f.write(scales.astype('<f2').tobytes())
            qweight.astype('<i4').tofile(os.path.join(args.dir, name + '.qweight'))
            qzeros.astype('<i4').tofile(os.path.join(args.dir, name + '.qzeros'))
            tsv.write('%s\t%d\t%d\t%d\n' % (name, bits, gs, sym))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    m = sub.add_parser('make-fixture')
    m.add_argument('dir')
    m.add_argument('--w')
    m.add_argument('--x')
    m.add_argument('--random', nargs=2, type=int, metavar=('ROWS', 'COLS'))
    m.add_argument('--tokens', type=int, default=2048)
    m.add_argument('--seq-len', type=int, default=128)
    m.add_argument('--seed', type=int, default=0)
    t = sub.add_parser('time')
    t.add_argument('--rows', type=int, default=2048)
    t.add_argument('--cols', type=int, default=2048)
    t.add_argument('--tokens', type=int, default=4096)
    t.add_argument('--bits', type=int, default=4)
    t.add_argument('--sym', action='store_true')
    t.add_argument('--groupsize', type=int, default=128)
    t.add_argument('--actorder', action='store_true')
    t.add_argument('--repeat', type=int, default=3)
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--hessian-samples', type=int, default=0, help='also time add_batch over this many samples')
    t.add_argument('--hessian-seq-len', type=int, default=2048, help='tokens per add_batch sample (default 2048)')
    t.add_argument('--save', help='also write W.f32 and H.f32 here (to time quant4j on the same layer)')
    k = sub.add_parser('pack-fixture')
    k.add_argument('dir')
    k.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    if args.cmd == 'pack-fixture':
        pack_fixture(args)
    elif args.cmd == 'make-fixture':
        if not args.random and not (args.w and args.x):
            p.error('make-fixture needs --random ROWS COLS or --w and --x')
        make_fixture(args)
    else:
        time_layer(args)


if __name__ == '__main__':
    sys.exit(main())
