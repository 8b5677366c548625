#!/usr/bin/env python3
"""Model-call overhead of aivm beside the Python OpenAI SDK, LangGraph and Pydantic AI, all
against the same local fake OpenAI-compatible server (aivm-fake-llm), in one run:

  1. per-call overhead: N sequential calls at zero latency (client CPU time per call);
  2. tool loop: N agent runs of call -> tool -> call at zero latency (client CPU per loop);
  3. concurrent agents: 1,000 and 10,000 agents each making one call at 100 ms latency
     (wall time, peak memory of the client, memory per agent).

Overheads are the client process's CPU time (user + system) above a run of the same program
with N = 0, so interpreter start-up and imports do not count and the fake server's own time
is not in them. Usage:

    python3 benches/llm_peers.py [--calls 2000] [--loops 500] [--agents 1000,10000] [--only sdk,aivm]

The Python peers are installed into a venv outside the clone (--venv, default
~/.cache/aivm-bench-venv) on first use.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LLM = os.path.join(HERE, "llm")
PEERS = {"sdk": "peer_sdk.py", "langgraph": "peer_langgraph.py", "pydantic": "peer_pydantic.py"}
PACKAGES = ["openai", "langgraph", "langchain-openai", "pydantic-ai-slim[openai]"]


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "aivm", "-p", "aivm-fakes"],
                   cwd=ROOT, check=True)
    rel = os.path.join(ROOT, "target", "release")
    return os.path.join(rel, "aivm"), os.path.join(rel, "aivm-fake-llm")


def ensure_venv(path):
    py = os.path.join(path, "bin", "python")
    if not os.path.exists(py):
        print(f"installing the Python peers into {path}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", path], check=True)
        subprocess.run([py, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    return py


def start_fake(fake, latency_ms):
    proc = subprocess.Popen([fake, "--latency-ms", str(latency_ms)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        sys.exit(f"the fake server did not start: {line!r}")
    return proc, line[len("listening on "):]


def workdir(base_url):
    """A folder with the aivm programs and an aivm.toml binding `bench` to the fake."""
    d = tempfile.mkdtemp(prefix="aivm-llm-bench-")
    for f in os.listdir(LLM):
        if f.endswith(".ail"):
            shutil.copy(os.path.join(LLM, f), d)
    with open(os.path.join(d, "aivm.toml"), "w") as f:
        f.write(f'[models]\nbench = {{ provider = "openai", model = "bench", base_url = "{base_url}", retries = 0 }}\n')
    return d


def run_child(cmd, cwd=None):
    """Like measure, with the child's own CPU time and peak RSS from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:5]))}…: exit {proc.returncode}: {err.decode()[-400:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, out.decode()


def commands(name, py, aivm, d, base_url, mode, n):
    if name == "aivm":
        prog = {"calls": "calls.ail", "tools": "tools.ail"}.get(mode)
        if mode == "concurrent":
            inputs = os.path.join(d, f"inputs-{n}.jsonl")
            with open(inputs, "w") as f:
                f.writelines(f'["{i}"]\n' for i in range(n))
            return [aivm, "run", "--quiet", "--allow-model=bench", "--each", inputs,
                    "--concurrency", str(max(n, 1)), "agent.ail"]
        # The model goes over HTTP (to the fake server): it needs a grant.
        return [aivm, "run", "--quiet", "--allow-model=bench", prog, "--", str(n)]
    return [py, os.path.join(LLM, PEERS[name]), base_url, mode, str(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--loops", type=int, default=500)
    ap.add_argument("--agents", default="1000,10000")
    ap.add_argument("--only", default="aivm,sdk,langgraph,pydantic")
    ap.add_argument("--venv", default=os.path.expanduser("~/.cache/aivm-bench-venv"))
    args = ap.parse_args()
    names = args.only.split(",")
    aivm, fake = build()
    py = ensure_venv(args.venv) if any(n != "aivm" for n in names) else None

    fast, fast_url = start_fake(fake, 0)
    slow, slow_url = start_fake(fake, 100)
    try:
        fast_dir, slow_dir = workdir(fast_url), workdir(slow_url)
        print(f"{'':10} {'per call (CPU)':>16} {'per tool loop':>16}")
        per = {}
        for name in names:
            row = []
            for mode, n in (("calls", args.calls), ("tools", args.loops)):
                try:
                    _, cpu0, _, _ = run_child(commands(name, py, aivm, fast_dir, fast_url, mode, 0), cwd=fast_dir)
                    _, cpu, _, _ = run_child(commands(name, py, aivm, fast_dir, fast_url, mode, n), cwd=fast_dir)
                    row.append(max(cpu - cpu0, 0.0) / n)
                except RuntimeError as e:
                    print(f"{name} {mode}: {e}", file=sys.stderr)
                    row.append(None)
            per[name] = row
            cells = [f"{v * 1e6:13.0f} µs" if v is not None else f"{'failed':>16}" for v in row]
            print(f"{name:10} {cells[0]} {cells[1]}")
        if "aivm" in per and "sdk" in per and None not in per["aivm"] + per["sdk"]:
            print(f"aivm / sdk: per call {per['aivm'][0] / per['sdk'][0]:.3f}, per tool loop {per['aivm'][1] / per['sdk'][1]:.3f}")

        print(f"\n{'agents at 100 ms':18} {'wall':>9} {'peak RSS':>11} {'per agent':>11}")
        for n in [int(x) for x in args.agents.split(",") if x]:
            for name in names:
                try:
                    _, _, rss1, _ = run_child(commands(name, py, aivm, slow_dir, slow_url, "concurrent", 1), cwd=slow_dir)
                    wall, _, rss, _ = run_child(commands(name, py, aivm, slow_dir, slow_url, "concurrent", n), cwd=slow_dir)
                except RuntimeError as e:
                    print(f"{name} {n}: {e}", file=sys.stderr)
                    continue
                per_agent = max(rss - rss1, 0) / n
                print(f"{name + ' ' + str(n):18} {wall:8.2f}s {rss / 1024:8.1f} MiB {per_agent:8.1f} KiB")
    finally:
        fast.kill()
        slow.kill()


if __name__ == "__main__":
    main()
