#!/usr/bin/env python3
"""Loads every tensor of a safetensors file with a Python peer loader, materialised in process
memory, and prints {"bytes", "seconds"} as JSON (the load alone, without interpreter start).

usage: load_peer.py safetensors FILE
       load_peer.py runai FILE CONCURRENCY
"""
import json
import os
import sys
import time


def load_safetensors(path):
    from safetensors.torch import load_file
    started = time.perf_counter()
    tensors = load_file(path)
    # load_file maps the file lazily: clone so every byte is read into process memory, and keep
    # every clone (a clone dropped at once would hand its memory to the next one).
    kept = [t.clone() for t in tensors.values()]
    total = sum(t.numel() * t.element_size() for t in kept)
    return total, time.perf_counter() - started


def load_runai(path):
    from runai_model_streamer import SafetensorsStreamer
    started = time.perf_counter()
    total = 0
    kept = []
    with SafetensorsStreamer() as streamer:
        streamer.stream_file(path)
        for _, tensor in streamer.get_tensors():
            kept.append(tensor.clone())  # the streamer reuses its buffers
            total += tensor.numel() * tensor.element_size()
    return total, time.perf_counter() - started


def main():
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "runai":
        os.environ["RUNAI_STREAMER_CONCURRENCY"] = sys.argv[3]
        total, seconds = load_runai(path)
    elif kind == "safetensors":
        total, seconds = load_safetensors(path)
    else:
        sys.exit(f"unknown loader {kind}")
    print(json.dumps({"bytes": total, "seconds": seconds}))


if __name__ == "__main__":
    main()
