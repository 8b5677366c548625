#!/usr/bin/env python3
"""MCP tool-call overhead of aivm beside the Python MCP SDK client (mcp 2.3.0), both calling
server-everything's `echo` (the npm server of the tests, run with the machine's `node`), over
stdio and over Streamable HTTP:

  1. per call: N sequential `echo` calls in one session, after one warm-up call (µs per call,
     timed inside each client: aivm's program reads clock.now() around its loop, the Python
     peer uses perf_counter);
  2. start-up: from the start of the client to the first `echo` answered. For aivm, the time
     until the line printed after the call reaches the runner, minus the same for a program
     that prints at once (so process start and compilation do not count); for Python,
     connect + initialize + list_tools + the first call, inside the process (imports do not
     count). Over stdio this includes spawning node; over HTTP the server is already up.

A third peer, a bare JSON-RPC client with no SDK (mcp/peer_raw.py), gives the floor: the
server's own time per call, which each client's overhead sits above. Every figure is the best
of --runs runs, the peers interleaved. Usage:

    python3 benches/mcp_peers.py [--calls 1000] [--runs 5] [--only stdio,http] [--aivm PATH]

The Python SDK comes from tests/mcp/.venv (tests/mcp/requirements.txt), made on first use;
the servers from tests/mcp/node_modules (`npm ci --prefix tests/mcp` on first use).
"""

import argparse
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MCP_BENCH = os.path.join(HERE, "mcp")
TESTS_MCP = os.path.join(ROOT, "tests", "mcp")
EVERYTHING = os.path.join(TESTS_MCP, "node_modules", "@modelcontextprotocol", "server-everything",
                          "dist", "index.js")


def build_aivm():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "aivm"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "aivm")


def ensure_servers():
    if not os.path.exists(EVERYTHING):
        print("installing the npm servers into tests/mcp", file=sys.stderr)
        subprocess.run(["npm", "ci", "--no-fund", "--no-audit", "--prefix", TESTS_MCP], check=True)


def ensure_python():
    """tests/mcp/.venv, as aivm_fakes::mcp::python() makes it."""
    venv = os.path.join(TESTS_MCP, ".venv")
    py = os.path.join(venv, "bin", "python")
    marker = os.path.join(venv, ".requirements-installed")
    if not os.path.exists(marker):
        print("installing the Python MCP SDK into tests/mcp/.venv", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "-r",
                        os.path.join(TESTS_MCP, "requirements.txt")], check=True)
        open(marker, "w").close()
    return py


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http_server():
    """server-everything in streamableHttp mode; returns (process, url) once it listens."""
    port = free_port()
    proc = subprocess.Popen(["node", EVERYTHING, "streamableHttp"], env=dict(os.environ, PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if "listening" in line:
            return proc, f"http://127.0.0.1:{port}/mcp"
    proc.kill()
    sys.exit("server-everything did not start in streamableHttp mode")


def workdir(aivm, transport, url):
    """A folder with the programs, an aivm.toml naming `everything`, and its aivm.lock."""
    d = tempfile.mkdtemp(prefix=f"aivm-mcp-bench-{transport}-")
    for f in os.listdir(MCP_BENCH):
        if f.endswith(".ail"):
            shutil.copy(os.path.join(MCP_BENCH, f), d)
    with open(os.path.join(d, "aivm.toml"), "w") as f:
        if transport == "stdio":
            f.write(f'[mcp.servers.everything]\ncommand = "node"\nargs = [{json.dumps(EVERYTHING)}, "stdio"]\n')
        else:
            f.write(f'[mcp.servers.everything]\nurl = "{url}"\n')
    subprocess.run([aivm, "mcp", "lock", "--yes"], cwd=d, check=True, capture_output=True)
    return d


def aivm_cmd(aivm, prog, *args):
    return [aivm, "run", "--quiet", "--allow-tool=everything.echo", prog, "--", *args]


def first_line(cmd, cwd):
    """Seconds from spawning `cmd` to its first line of output, and to its exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    at_line = time.perf_counter() - start
    _, err = proc.communicate()
    total = time.perf_counter() - start
    if proc.returncode != 0 or not line.startswith("Echo: first"):
        raise RuntimeError(f"{' '.join(cmd[:4])}…: exit {proc.returncode}: {line!r} {err[-400:]}")
    return at_line, total


def aivm_loop(aivm, d, n):
    """Seconds for n calls, from the program's own clock (ms resolution)."""
    proc = subprocess.run(aivm_cmd(aivm, "calls.ail", str(n)), cwd=d, capture_output=True, text=True,
                          timeout=600)
    m = re.search(r"(\d+) calls, \d+ characters, (\d+) ms", proc.stdout)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"aivm calls.ail: exit {proc.returncode}: {proc.stdout[-200:]} {proc.stderr[-400:]}")
    return int(m.group(2)) / 1000


def python_run(py, peer, transport, target, n):
    proc = subprocess.run([py, os.path.join(MCP_BENCH, peer), transport, target, str(n)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{peer} {transport}: exit {proc.returncode}: {proc.stderr[-400:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(aivm, py, transport, target, d, n, runs):
    """The best of each measure over `runs` runs, in seconds."""
    best = {k: math.inf for k in ("aivm_call", "py_call", "raw_call", "aivm_start", "aivm_exit", "py_first",
                                   "py_ready", "aivm_none")}
    for _ in range(runs):
        # Interleaved, so that a burst of load on the shared machine hits both peers alike.
        best["aivm_call"] = min(best["aivm_call"], aivm_loop(aivm, d, n) / n)
        out = python_run(py, "peer_sdk.py", transport, target, n)
        best["py_call"] = min(best["py_call"], out["loop_s"] / n)
        best["py_first"] = min(best["py_first"], out["first_s"])
        best["py_ready"] = min(best["py_ready"], out["ready_s"])
        raw = python_run(py, "peer_raw.py", transport, target, n)
        best["raw_call"] = min(best["raw_call"], raw["loop_s"] / n)
        none_line, _ = first_line(aivm_cmd(aivm, "none.ail"), d)
        first, total = first_line(aivm_cmd(aivm, "first.ail"), d)
        best["aivm_none"] = min(best["aivm_none"], none_line)
        best["aivm_start"] = min(best["aivm_start"], first)
        # From the answer to the exit: closing the session and stopping the server.
        best["aivm_exit"] = min(best["aivm_exit"], total - first)
    best["aivm_start"] -= best["aivm_none"]
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="stdio,http")
    ap.add_argument("--aivm", help="an aivm binary to use instead of building target/release/aivm")
    args = ap.parse_args()
    aivm = os.path.abspath(args.aivm) if args.aivm else build_aivm()
    ensure_servers()
    py = ensure_python()

    server, url = start_http_server()
    results = {}
    try:
        for transport in args.only.split(","):
            target = EVERYTHING if transport == "stdio" else url
            d = workdir(aivm, transport, url)
            try:
                results[transport] = bench(aivm, py, transport, target, d, args.calls, args.runs)
            except RuntimeError as e:
                print(f"{transport}: {e}", file=sys.stderr)
            finally:
                shutil.rmtree(d, ignore_errors=True)
    finally:
        server.kill()
        server.wait()

    print(f"echo on server-everything, {args.calls} calls, best of {args.runs} runs")
    print("\nper call      aivm    python SDK  ratio   bare client (floor)   aivm above floor  SDK above floor")
    for transport, b in results.items():
        print(f"{transport:8} {b['aivm_call'] * 1e6:7.0f} µs {b['py_call'] * 1e6:9.0f} µs {b['aivm_call'] / b['py_call']:6.2f}"
              f" {b['raw_call'] * 1e6:14.0f} µs {(b['aivm_call'] - b['raw_call']) * 1e6:15.0f} µs"
              f" {(b['py_call'] - b['raw_call']) * 1e6:13.0f} µs")
    print("\nstart-up      aivm    python SDK  ratio   (SDK init+list_tools)   aivm exit after answer")
    for transport, b in results.items():
        print(f"{transport:8} {b['aivm_start'] * 1e3:7.1f} ms {b['py_first'] * 1e3:9.1f} ms {b['aivm_start'] / b['py_first']:6.2f}"
              f" {b['py_ready'] * 1e3:16.1f} ms {b['aivm_exit'] * 1e3:22.1f} ms")


if __name__ == "__main__":
    main()
