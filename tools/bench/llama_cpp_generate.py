#!/usr/bin/env python3
"""One llama.cpp measurement for `hydra bench generate`: prefill a prompt, then greedy-decode,
for `--batch` identical sequences; prints one JSON line with the timings.

    python3 llama_cpp_generate.py MODEL.gguf --prompt-ids 1,2,3 --new-tokens 128 [--batch 8] [--threads 2]
    python3 llama_cpp_generate.py --make-f16 Q4_1.gguf F16.gguf

Needs llama-cpp-python (tools/bench/setup-llama-cpp builds it)."""
import argparse
import json
import sys
import time

import llama_cpp
import numpy as np


def make_f16(source, target):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_F16
    params.allow_requantize = True
    rc = llama_cpp.llama_model_quantize(source.encode(), target.encode(), params)
    sys.exit(rc)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--prompt-ids")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--make-f16", nargs=2)
    args = parser.parse_args()
    if args.make_f16:
        make_f16(*args.make_f16)
    ids = [int(x) for x in args.prompt_ids.split(",")]
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(args.model.encode(), model_params)
    ctx_params = llama_cpp.llama_context_default_params()
    ctx_params.n_ctx = (len(ids) + args.new_tokens + 16) * args.batch
    ctx_params.n_batch = max(512, len(ids) * args.batch)
    ctx_params.n_ubatch = ctx_params.n_batch
    ctx_params.n_seq_max = args.batch
    ctx_params.n_threads = args.threads
    ctx_params.n_threads_batch = args.threads
    ctx = llama_cpp.llama_init_from_model(model, ctx_params)
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)

    batch = llama_cpp.llama_batch_init(len(ids) * args.batch, 0, args.batch)

    def fill(entries):
        batch.n_tokens = len(entries)
        for i, (token, pos, seq, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits

    def argmax(index):
        row = llama_cpp.llama_get_logits_ith(ctx, index)
        return int(np.ctypeslib.as_array(row, shape=(n_vocab,)).argmax())

    start = time.perf_counter()
    fill([(t, p, s, p == len(ids) - 1) for s in range(args.batch) for p, t in enumerate(ids)])
    assert llama_cpp.llama_decode(ctx, batch) == 0
    next_tokens = [argmax(s * len(ids) + len(ids) - 1) for s in range(args.batch)]
    prefill = time.perf_counter() - start
    generated = [[t] for t in next_tokens]
    start = time.perf_counter()
    for step in range(1, args.new_tokens):
        fill([(next_tokens[s], len(ids) + step - 1, s, True) for s in range(args.batch)])
        assert llama_cpp.llama_decode(ctx, batch) == 0
        next_tokens = [argmax(s) for s in range(args.batch)]
        for s in range(args.batch):
            generated[s].append(next_tokens[s])
    decode = time.perf_counter() - start
    print(json.dumps({"prefillSeconds": prefill, "decodeSeconds": decode, "promptTokens": len(ids) * args.batch,
                      "decodedTokens": (args.new_tokens - 1) * args.batch, "firstTokens": generated[0][:8]}))


if __name__ == "__main__":
    main()
