#!/usr/bin/env python3
"""Independent check of `hydra convert` on a GGUF file: dequantise every tensor with the
reference `gguf` package (as transformers does), undo llama.cpp's q/k permutation, round to the
store's dtype with numpy, and compare bit for bit with the tensors the store holds.

    python3 tools/check_gguf_store.py MODEL.gguf STORE NAME

Needs `pip install gguf numpy`. Exits 1 on the first mismatch."""
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

GLOBAL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
          "output.weight": "lm_head.weight"}
LAYER = {"attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
         "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
         "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
         "ffn_down.weight": "mlp.down_proj.weight", "attn_norm.weight": "input_layernorm.weight",
         "ffn_norm.weight": "post_attention_layernorm.weight"}


def hf_name(name):
    if name in GLOBAL:
        return GLOBAL[name]
    _, layer, rest = name.split(".", 2)
    return f"model.layers.{layer}.{LAYER[rest]}"


def to_bf16_bits(values):
    bits = values.astype(np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def read_tensor(store, manifest, tensor):
    out = bytearray()
    for extent in tensor["extents"]:
        chunk = manifest["chunks"][extent["chunk"]]
        assert chunk["compression"] == "none", "compare an uncompressed store"
        path = store / "chunks" / chunk["sha256"][:2] / chunk["sha256"]
        with open(path, "rb") as f:
            f.seek(extent["offset"])
            out += f.read(extent["length"])
    return bytes(out)


def main():
    gguf_path, store, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    manifest = json.loads((store / "models" / f"{name}.json").read_text())
    tensors = {t["name"]: t for t in manifest["tensors"]}
    reader = GGUFReader(gguf_path)
    heads = int(reader.fields["llama.attention.head_count"].parts[-1][0])
    kv_heads = int(reader.fields["llama.attention.head_count_kv"].parts[-1][0])
    checked = 0
    for t in reader.tensors:
        name_hf = hf_name(t.name)
        values = dequantize(t.data, t.tensor_type).astype(np.float32)
        values = values.reshape([int(d) for d in reversed(t.shape)])
        n = heads if name_hf.endswith("q_proj.weight") else kv_heads if name_hf.endswith("k_proj.weight") else None
        if n:
            out, inp = values.shape
            values = values.reshape(n, out // n // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)
        stored = tensors[name_hf]
        raw = read_tensor(store, manifest, stored)
        if stored["dtype"] == "BF16":
            expected = to_bf16_bits(values).tobytes()
        elif stored["dtype"] == "F32":
            expected = values.tobytes()
        else:
            sys.exit(f"unsupported stored dtype {stored['dtype']}")
        if raw != expected:
            sys.exit(f"MISMATCH {name_hf}")
        checked += 1
    print(f"ok: {checked} tensors bit-identical to gguf-py dequantisation ({manifest['source']['dtypePolicy']})")


if __name__ == "__main__":
    main()
