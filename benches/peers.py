#!/usr/bin/env python3
"""Runs the non-model benchmark programs on aivm and its peers side by side and prints ratios.

Each program in programs/ has twins under the same base name (fib.ail, fib.lua, fib.py, fib.rs).
aivm runs with the JIT off and on (`--jit=off`, `--jit=auto`), beside Lua 5.4, LuaJIT with its JIT
off (`-joff`) and on, CPython, and the Rust twin compiled with `rustc -O`. Every peer must print
the same output; a mismatch is reported and the program's row is marked. Times are the best of
--runs wall-clock runs, so the numbers are ratios measured in the same session on the same
machine, not absolute claims. A peer whose tool is missing shows as "-". Afterwards the JIT's
compile time per specialisation (`AIVM_JIT_STATS=1`) is listed for each program. Usage:

    python3 benches/peers.py [--runs N] [--only fib,loop] [--aivm PATH]
"""

import argparse
import math
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAMS = os.path.join(HERE, "programs")
ORDER = ["fib", "loop", "strings", "sort", "words", "nbody"]


def ensure_lua():
    """Installs lua5.4 and luajit from Debian's packages when they are missing."""
    missing = [p for p in ("lua5.4", "luajit") if not shutil.which(p)]
    if not missing:
        return
    print(f"{', '.join(missing)} not found: installing with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False)


def build_rust(names):
    """Compiles the Rust twins with rustc -O into target/peers/; returns {name: binary}."""
    out_dir = os.path.join(ROOT, "target", "peers")
    os.makedirs(out_dir, exist_ok=True)
    bins = {}
    for name in names:
        src = os.path.join(PROGRAMS, name + ".rs")
        exe = os.path.join(out_dir, name)
        if os.path.exists(src) and subprocess.run(["rustc", "-O", "--edition", "2021", "-o", exe, src]).returncode == 0:
            bins[name] = exe
    return bins


def build_aivm():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "aivm"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "aivm")


def time_best(cmd, runs):
    best, out = math.inf, None
    for _ in range(runs):
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return None, "timed out after 600 s"
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            return None, f"exit {proc.returncode}: {proc.stderr.strip()[:200]}"
        best, out = min(best, elapsed), proc.stdout
    return best, out


def jit_stats(aivm, path):
    """The JIT's compile events for one run of `--jit=auto`."""
    env = dict(os.environ, AIVM_JIT_STATS="1")
    proc = subprocess.run([aivm, "run", "--jit=auto", path], capture_output=True, text=True, env=env, timeout=600)
    return [line[5:] for line in proc.stderr.splitlines() if line.startswith("jit: ")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--aivm", default=None, help="path of an aivm binary (default: build release)")
    args = ap.parse_args()

    ensure_lua()
    aivm = args.aivm or build_aivm()
    names = [n for n in ORDER if not args.only or n in args.only.split(",")]
    rust = build_rust(names)
    have = shutil.which
    peers = [
        ("jit=off", lambda n, p: [aivm, "run", "--jit=off", p + ".ail"]),
        ("jit=auto", lambda n, p: [aivm, "run", "--jit=auto", p + ".ail"]),
        ("lua5.4", lambda n, p: ["lua5.4", p + ".lua"] if have("lua5.4") else None),
        ("luajit-i", lambda n, p: ["luajit", "-joff", p + ".lua"] if have("luajit") else None),
        ("luajit", lambda n, p: ["luajit", p + ".lua"] if have("luajit") else None),
        ("python3", lambda n, p: [sys.executable, p + ".py"]),
        ("rust -O", lambda n, p: [rust[n]] if n in rust else None),
    ]
    col = {name: i for i, (name, _) in enumerate(peers)}
    ratios = [("auto/off", "jit=auto", "jit=off"), ("auto/rust", "jit=auto", "rust -O"),
              ("auto/ljit-i", "jit=auto", "luajit-i"), ("auto/lua", "jit=auto", "lua5.4")]
    print(f"{'program':<9}" + "".join(f"{name:>10}" for name, _ in peers)
          + "".join(f"{r:>12}" for r, _, _ in ratios) + "  output", flush=True)
    stats = {}
    for name in names:
        base = os.path.join(PROGRAMS, name)
        times, outputs = [], []
        for _, cmd in peers:
            c = cmd(name, base)
            t, out = time_best(c, args.runs) if c else (None, None)
            times.append(t)
            if t is not None:
                outputs.append(out)
        ok = len(set(outputs)) == 1 and times[0] is not None and times[1] is not None
        cells = "".join(f"{t:>9.3f}s" if t is not None else f"{'-':>10}" for t in times)
        for _, a, b in ratios:
            ta, tb = times[col[a]], times[col[b]]
            cells += f"{ta / tb:>12.2f}" if ta and tb else f"{'-':>12}"
        note = "same" if ok else "MISMATCH: " + " | ".join(repr(o)[:60] for o in outputs)
        print(f"{name:<9}{cells}  {note}", flush=True)
        stats[name] = jit_stats(aivm, base + ".ail")
    print("\nJIT compile events with --jit=auto (specialisation, wall time, functions compiled):")
    for name in names:
        events = stats.get(name) or ["(nothing compiled)"]
        for e in events:
            print(f"  {name:<9}{e}")


if __name__ == "__main__":
    main()
