#!/usr/bin/env python3
"""A second, independent reader of store format v1, written from store-v1.md alone, and the
check that the test vectors read back as expected.json says.

    python3 formats/vectors/read_store.py [STORE [EXPECTED]]

Needs `zstandard` (PyPI) for compressed chunks and `xxhash` (PyPI) for format 1.1's chunk XXH3."""
import hashlib, json, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_chunk(store, chunk):
    blob = (store / "chunks" / chunk["sha256"][:2] / chunk["sha256"]).read_bytes()
    if len(blob) != chunk["storedBytes"] or hashlib.sha256(blob).hexdigest() != chunk["sha256"]:
        raise ValueError(f"chunk {chunk['sha256']} is corrupt")
    if "xxh3" in chunk:  # format 1.1: XXH3-64 of the stored bytes, canonical (big-endian) hex
        import xxhash
        if xxhash.xxh3_64_hexdigest(blob) != chunk["xxh3"]:
            raise ValueError(f"chunk {chunk['sha256']}: xxh3 {xxhash.xxh3_64_hexdigest(blob)} is not the manifest's {chunk['xxh3']}")
    kind = chunk["compression"]
    if kind == "none":
        return blob
    import zstandard
    content = zstandard.ZstdDecompressor().decompress(blob, max_output_size=chunk["payloadBytes"])
    if kind == "zstd":
        return content
    width = {"zstd-planes2": 2, "zstd-planes4": 4}[kind]  # anything else: unknown, fail loudly
    n = len(content) // width
    out = bytearray(len(content))
    for plane in range(width):
        out[plane::width] = content[plane * n:(plane + 1) * n]
    return bytes(out)


def read_entry(store, name):
    manifest = json.loads((store / "models" / f"{name}.json").read_text())
    assert manifest["format"] == "hydra-store", "not a manifest"
    major = int(manifest["formatVersion"].split(".")[0])
    if major != 1:
        raise ValueError(f"format version {manifest['formatVersion']} not supported")
    cache = {}
    tensors = {}
    for t in manifest["tensors"]:
        data = b""
        for e in t["extents"]:
            if e["chunk"] not in cache:
                cache[e["chunk"]] = load_chunk(store, manifest["chunks"][e["chunk"]])
            data += cache[e["chunk"]][e["offset"]:e["offset"] + e["length"]]
        tensors[t["name"]] = (t["dtype"], t["shape"], data)
    return manifest, tensors


def main():
    store = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "store"
    expected = json.loads((Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "expected.json").read_text())
    checked = 0
    for name, want in expected.items():
        manifest, tensors = read_entry(store, name)
        assert set(tensors) == set(want), f"{name}: tensor names differ"
        for tensor, w in want.items():
            dtype, shape, data = tensors[tensor]
            assert (dtype, shape) == (w["dtype"], w["shape"]), f"{name}/{tensor}: dtype/shape"
            assert hashlib.sha256(data).hexdigest() == w["sha256"], f"{name}/{tensor}: bytes differ"
            checked += 1
        for plan in manifest["stagePlans"]:
            layers = [l for s in plan["stages"] for l in range(s["firstLayer"], s["endLayer"])]
            assert layers == list(range(manifest["layerCount"])), f"{name}: pp={plan['pp']} does not cover every layer once"
    print(f"read_store.py: {checked} tensors in {len(expected)} entries read back as expected")


if __name__ == "__main__":
    main()
