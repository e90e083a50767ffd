# Shared by the experiment scripts: paths, the hydra binary, the models, and a server helper.
# Sourced, not run.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${HYDRA_EXPERIMENTS_DIR:-${TMPDIR:-/tmp}/hydra-experiments}
store=$work/store
hydra=$repo/.build/release/hydra
mkdir -p "$work"

note() { echo "$*" >&2; }

build() {
  note "building hydra (release)…"
  (cd "$repo" && swift build -c release --product hydra >&2)
}

# SmolLM2 in two dtypes (the end-to-end study's models) and, with "synthetic", the synthetic
# Llama, OPT and Falcon of ~1 and ~3 GB (the cold-start study's), converted once into $store.
prepare_models() {
  local gguf
  gguf=$("$repo/tools/fetch-smollm2")
  for dtype in bf16 f32; do
    [ -f "$store/models/smollm2-$dtype.json" ] || "$hydra" convert "$gguf" "$store" --name "smollm2-$dtype" --dtype "$dtype" --max-pp 4 >&2
  done
  [ "${1:-}" = synthetic ] || return 0
  for arch in llama opt falcon; do
    for gb in 1 3; do
      local name="$arch-${gb}gb"
      [ -f "$store/models/$name.json" ] && continue
      "$hydra" synthetic "$work/source-$name" --architecture "$arch" --gb "$gb" --tokenizer-from "$store:smollm2-bf16"
      "$hydra" convert "$work/source-$name" "$store" --name "$name" --max-pp 4 >&2
      rm -rf "$work/source-$name"
    done
  done
}

# start_server PORT RUN_DIR ARGS…: `hydra serve` on 127.0.0.1:PORT in the background, its log and
# event log in RUN_DIR; waits for /healthz. Sets $server_pid.
start_server() {
  local port=$1 dir=$2
  shift 2
  rm -rf "$dir" && mkdir -p "$dir"
  "$hydra" serve --store "$store" --listen "127.0.0.1:$port" --work-dir "$dir/cluster" --event-log "$dir/events.jsonl" "$@" \
    >"$dir/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || { note "hydra serve exited: see $dir/serve.log"; tail -5 "$dir/serve.log" >&2; return 1; }
    sleep 0.2
  done
  note "hydra serve did not come up in 60 s: see $dir/serve.log"
  return 1
}

stop_server() {
  [ -n "${server_pid:-}" ] || return 0
  kill -INT "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# Reads MODEL's chunk files once, so every system's run finds the store server's page cache warm
# (a store serving a popular model from memory) rather than the first one paying for the disk.
warm_store() {
  python3 - "$store" "$1" <<'PY'
import json, os, sys
store, model = sys.argv[1], sys.argv[2]
with open(os.path.join(store, "models", model + ".json")) as f:
    chunks = json.load(f)["chunks"]
for chunk in chunks:
    with open(os.path.join(store, "chunks", chunk["sha256"][:2], chunk["sha256"]), "rb") as f:
        while f.read(8 << 20):
            pass
PY
}

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
