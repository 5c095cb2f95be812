#!/usr/bin/env python3
"""Compare the tensors of two GGUF files: names, ggml types, shapes and data bytes.

Used to check that `quant4j quantize --type T` writes the same tensor data as llama.cpp's `llama-quantize`:

    PYTHONPATH=/path/to/llama.cpp/gguf-py python3 tools/gguf_compare.py ours.gguf theirs.gguf

Needs llama.cpp's gguf-py package (in its source tree) and numpy. Prints one line per tensor that differs and a
summary; exits 0 when every tensor's type, shape and bytes are identical, 1 otherwise.
"""
import sys

from gguf import GGUFReader  # llama.cpp/gguf-py


def tensors(path):
    r = GGUFReader(path)
    return r, {t.name: t for t in r.tensors}


def main(a_path, b_path):
    ra, a = tensors(a_path)
    rb, b = tensors(b_path)
    differ = 0
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print(f"{name}: only in {'first' if name in a else 'second'} file")
            differ += 1
            continue
        ta, tb = a[name], b[name]
        if ta.tensor_type != tb.tensor_type or list(ta.shape) != list(tb.shape):
            print(f"{name}: {ta.tensor_type.name} {list(ta.shape)} vs {tb.tensor_type.name} {list(tb.shape)}")
            differ += 1
            continue
        da, db = ta.data.tobytes(), tb.data.tobytes()
        if da != db:
            first = next(i for i in range(min(len(da), len(db))) if da[i] != db[i]) if len(da) == len(db) else -1
            n = sum(1 for x, y in zip(da, db) if x != y)
            print(f"{name}: {ta.tensor_type.name} bytes differ ({n} of {len(da)}, first at {first})")
            differ += 1
    same = len(set(a) & set(b)) - differ
    print(f"{same} of {len(set(a) | set(b))} tensors identical (type, shape, bytes)")
    for key in ("general.file_type", "general.quantization_version"):
        fa, fb = ra.fields.get(key), rb.fields.get(key)
        va = fa.parts[fa.data[0]].tolist() if fa else None
        vb = fb.parts[fb.data[0]].tolist() if fb else None
        print(f"{key}: {va} vs {vb}")
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
