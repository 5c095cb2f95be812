#!/usr/bin/python3
"""AutoAWQ GEMM packing of a random 4-bit layer, for quant4j's AwqLayout test (Debian's python3-torch).

  tools/awq_reference.py DIR [--seed 0]               one layer: codes, packed tensors, dequantized
  tools/awq_reference.py DIR --checkpoint [--seed 0]  a whole tiny LlamaForCausalLM AWQ checkpoint

The checkpoint (config.json with quantization_config as AutoAWQ writes it, model.safetensors: F16 embeddings, norms
and head, every linear layer as qweight / qzeros / scales from random codes) comes with expected.tsv (HF weight name,
out, in, float offset) and expected.f32: each layer's dequantize_gemm output transposed to (out, in).

Follows AutoAWQ's WQLinear_GEMM.from_linear (intweight = round((W + zeros·scales) / scales) per input column,
transposed to (in, out), packed 8 outputs a word in order_map [0, 2, 4, 6, 1, 3, 5, 7]; zeros packed the same way)
and, independently, its utils/packing_utils.dequantize_gemm (unpack_awq shifts, reverse_awq_order
[0, 4, 1, 5, 2, 6, 3, 7], (iweight - izeros) * scales with zeros and scales repeated group_size times).

Writes (little-endian) DIR/layer.in: int32 out, in, group_size; uint8 codes (out, in); uint8 zeros (groups, out);
float16 scales (groups, out); DIR/layer.qweight, layer.qzeros (int32, row-major); DIR/layer.scales (float16);
DIR/layer.deq.f32 (float32 (in, out), dequantize_gemm's output, i.e. Wᵀ).
"""
import argparse
import os
import struct

import torch

ORDER_MAP = [0, 2, 4, 6, 1, 3, 5, 7]
AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def pack(intweight, bits=4):                     # (rows, cols) int32 -> (rows, cols / 8) as from_linear
    pack_num = 32 // bits
    q = torch.zeros((intweight.shape[0], intweight.shape[1] // 32 * bits), dtype=torch.int32)
    for col in range(intweight.shape[1] // pack_num):
        for i in range(pack_num):
            q[:, col] |= intweight[:, col * pack_num + ORDER_MAP[i]] << (i * bits)
    return q


def unpack_awq(qweight, qzeros, bits=4):
    shifts = torch.arange(0, 32, bits)
    iweights = torch.bitwise_right_shift(qweight[:, :, None], shifts[None, None, :]).to(torch.int8).view(qweight.shape[0], -1)
    izeros = torch.bitwise_right_shift(qzeros[:, :, None], shifts[None, None, :]).to(torch.int8).view(qzeros.shape[0], -1)
    return iweights, izeros


def reverse_awq_order(iweights, izeros, bits=4):
    order = torch.arange(iweights.shape[-1], dtype=torch.int32).view(-1, 32 // bits)[:, AWQ_REVERSE_ORDER].view(-1)
    return iweights[:, order.long()], izeros[:, order.long()]


def dequantize_gemm(qweight, qzeros, scales, bits, group_size):
    iweight, izeros = unpack_awq(qweight, qzeros, bits)
    iweight, izeros = reverse_awq_order(iweight, izeros, bits)
    iweight = torch.bitwise_and(iweight, (2 ** bits) - 1)
    izeros = torch.bitwise_and(izeros, (2 ** bits) - 1)
    scales = scales.repeat_interleave(group_size, dim=0)
    izeros = izeros.repeat_interleave(group_size, dim=0)
    return (iweight - izeros) * scales


def write_safetensors(path, tensors):           # name -> (dtype string, shape, bytes), as the safetensors format
    import json
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {'dtype': dtype, 'shape': list(shape), 'data_offsets': [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def checkpoint(a):
    import json
    dim, hidden, layers, heads, kv_heads, vocab, gs = 64, 128, 2, 4, 2, 96, 32
    head_dim = dim // heads
    config = {'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'hidden_size': dim, 'intermediate_size': hidden,
              'num_hidden_layers': layers, 'num_attention_heads': heads, 'num_key_value_heads': kv_heads,
              'vocab_size': vocab, 'max_position_embeddings': 64, 'rms_norm_eps': 1e-5, 'rope_theta': 10000.0,
              'tie_word_embeddings': False, 'hidden_act': 'silu', 'torch_dtype': 'float16',
              'quantization_config': {'quant_method': 'awq', 'zero_point': True, 'group_size': gs, 'bits': 4, 'version': 'gemm',
                                      'modules_to_not_convert': None}}
    tensors, expected, rows = {}, [], []

    def f16(name, shape, scale):
        t = (torch.randn(*shape) * scale).half()
        tensors[name] = ('F16', shape, t.numpy().astype('<f2').tobytes())

    f16('model.embed_tokens.weight', (vocab, dim), 1.0)
    for l in range(layers):
        shapes = {'self_attn.q_proj': (dim, dim), 'self_attn.k_proj': (kv_heads * head_dim, dim),
                  'self_attn.v_proj': (kv_heads * head_dim, dim), 'self_attn.o_proj': (dim, dim),
                  'mlp.gate_proj': (hidden, dim), 'mlp.up_proj': (hidden, dim), 'mlp.down_proj': (dim, hidden)}
        for module, (out, inn) in shapes.items():
            prefix = 'model.layers.%d.%s' % (l, module)
            groups = inn // gs
            codes = torch.randint(0, 16, (inn, out), dtype=torch.int32)  # intweight, already (in, out)
            zeros = torch.randint(0, 16, (groups, out), dtype=torch.int32)
            scales = (torch.rand(groups, out) * 0.05 + 0.002).half()
            qweight, qzeros = pack(codes), pack(zeros)
            tensors[prefix + '.qweight'] = ('I32', tuple(qweight.shape), qweight.numpy().astype('<i4').tobytes())
            tensors[prefix + '.qzeros'] = ('I32', tuple(qzeros.shape), qzeros.numpy().astype('<i4').tobytes())
            tensors[prefix + '.scales'] = ('F16', tuple(scales.shape), scales.numpy().astype('<f2').tobytes())
            deq = dequantize_gemm(qweight, qzeros, scales.float(), 4, gs)  # (in, out)
            rows.append('%s.weight\t%d\t%d\t%d' % (prefix, out, inn, sum(e.numel() for e in expected)))
            expected.append(deq.t().contiguous())
        f16('model.layers.%d.input_layernorm.weight' % l, (dim,), 0.2)
        f16('model.layers.%d.post_attention_layernorm.weight' % l, (dim,), 0.2)
    f16('model.norm.weight', (dim,), 0.2)
    f16('lm_head.weight', (vocab, dim), 0.5)
    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    write_safetensors(os.path.join(a.dir, 'model.safetensors'), tensors)
    with open(os.path.join(a.dir, 'expected.tsv'), 'w') as f:
        f.write('\n'.join(rows) + '\n')
    torch.cat([e.view(-1) for e in expected]).numpy().astype('<f4').tofile(os.path.join(a.dir, 'expected.f32'))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('dir')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--checkpoint', action='store_true')
    a = p.parse_args()
    torch.manual_seed(a.seed)
    if a.checkpoint:
        return checkpoint(a)
    out, inn, gs = 32, 64, 32
    groups = inn // gs
    codes = torch.randint(0, 16, (out, inn), dtype=torch.int32)
    zeros = torch.randint(0, 16, (groups, out), dtype=torch.int32)
    scales = (torch.rand(groups, out) * 0.1 + 0.001).half()
    # the float weight these codes stand for, then from_linear's own rounding back to codes
    w = ((codes - zeros.t().repeat_interleave(gs, dim=1)).float() * scales.float().t().repeat_interleave(gs, dim=1))
    scale_zeros = zeros.t().float() * scales.float().t()               # (out, groups)
    intweight = torch.cat([torch.round((w[:, idx] + scale_zeros[:, idx // gs]) / scales.float().t()[:, idx // gs]).to(torch.int32)[:, None]
                           for idx in range(inn)], dim=1)
    assert torch.equal(intweight, codes)
    qweight = pack(intweight.t().contiguous())
    qzeros = pack(zeros)
    deq = dequantize_gemm(qweight, qzeros, scales.float(), 4, gs)
    assert torch.allclose(deq, w.t())
    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, 'layer.in'), 'wb') as f:
        f.write(struct.pack('<3i', out, inn, gs))
        f.write(codes.to(torch.uint8).numpy().tobytes())
        f.write(zeros.to(torch.uint8).numpy().tobytes())
        f.write(scales.numpy().astype('<f2').tobytes())
    qweight.numpy().astype('<i4').tofile(os.path.join(a.dir, 'layer.qweight'))
    qzeros.numpy().astype('<i4').tofile(os.path.join(a.dir, 'layer.qzeros'))
    scales.numpy().astype('<f2').tofile(os.path.join(a.dir, 'layer.scales'))
    deq.numpy().astype('<f4').tofile(os.path.join(a.dir, 'layer.deq.f32'))


if __name__ == '__main__':
    main()
