#!/usr/bin/env python3
"""Regenerates the test-vector store: two tiny source models converted by `hydra convert`, and
expected.json with every tensor's dtype, shape, SHA-256 and first values, computed here from the
source bytes (not from the store).

    python3 formats/vectors/make_vectors.py PATH/TO/hydra"""
import hashlib, json, os, shutil, struct, subprocess, sys, tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def safetensors(tensors):
    header, body, offset = {}, b"", 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        body += data
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + body


def pattern(count, width, seed):
    # Deterministic little-endian values; bf16/f16 patterns keep exponents in a narrow range.
    out = bytearray()
    for i in range(count):
        v = (i * 2654435761 + seed * 40503) & 0xFFFFFFFF
        if width == 2:
            out += struct.pack("<H", 0x3C00 | (v >> 22) & 0x3FF if seed % 2 else 0x3F00 | (v >> 25) & 0x7F)
        elif width == 4:
            out += struct.pack("<f", ((v >> 8) % 1000) / 1000.0 - 0.5)
        else:
            out += struct.pack("<q", v % 100)
    return bytes(out)


def model(big_embedding):
    # The big variant's embedding (66000 x 8 bf16 = 1,056,000 bytes) exceeds a 1 MiB chunk and splits.
    vocab = 66000 if big_embedding else 64
    t = [("model.embed_tokens.weight", "BF16", [vocab, 8], pattern(vocab * 8, 2, 2))]
    for layer in range(2):
        p = f"model.layers.{layer}."
        t += [(p + "self_attn.q_proj.weight", "F32", [8, 8], pattern(64, 4, 10 + layer)),
              (p + "mlp.up_proj.weight", "F16", [16, 8], pattern(128, 2, 21 + layer)),
              (p + "input_layernorm.weight", "F32", [8], pattern(8, 4, 30 + layer))]
    t += [("model.norm.weight", "F32", [8], pattern(8, 4, 40)),
          ("lm_head.weight", "BF16", [64, 8], pattern(64 * 8, 2, 4))]
    return t


def main():
    hydra = sys.argv[1]
    store = HERE / "store"
    shutil.rmtree(store, ignore_errors=True)
    expected = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, big, flags in [("vector-plain", False, []), ("vector-zstd", True, ["--compress", "zstd", "--chunk-size-mib", "1"])]:
            src = Path(tmp) / name
            src.mkdir()
            tensors = model(big)
            (src / "model.safetensors").write_bytes(safetensors(tensors))
            (src / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 8}))
            subprocess.run([hydra, "convert", str(src), str(store), "--name", name, "--max-pp", "2", *flags], check=True)
            expected[name] = {n: {"dtype": d, "shape": s, "sha256": hashlib.sha256(b).hexdigest(), "first8Bytes": b[:8].hex()}
                              for n, d, s, b in tensors}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
