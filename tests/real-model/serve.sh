#!/usr/bin/env bash
# Starts the real model server set up by setup.sh on 127.0.0.1 and waits until it is healthy;
# prints the base URL to give the tests as AIVM_REAL_LLM_SERVER. Stop it with
# `kill $(cat CACHE_DIR/server.pid)`.
#
#   tests/real-model/serve.sh [CACHE_DIR] [PORT]
set -euo pipefail

cache=${1:-${AIVM_REAL_LLM_CACHE:-$HOME/.cache/aivm-real-llm}}
port=${2:-8201}
here=$(cd "$(dirname "$0")" && pwd)

# The tool-call template: SmolLM2's own chat template has no syntax for tools, so the server
# would silently ignore them.
"$cache/bin/llama-server" -m "$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" -a smollm2 \
  --host 127.0.0.1 --port "$port" -c 4096 -np 1 -t 2 --no-ui \
  --chat-template-file "$here/chatml-tools.jinja" > "$cache/server.log" 2>&1 &
echo $! > "$cache/server.pid"
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/health" > /dev/null 2>&1; then
    echo "http://127.0.0.1:$port/v1"
    exit 0
  fi
  sleep 0.1
done
echo "the server did not become healthy; see $cache/server.log" >&2
exit 1
