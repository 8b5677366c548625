#!/usr/bin/env python3
"""Runs the non-model benchmark programs on aivm and its peers side by side and prints ratios.

Each program in programs/ has twins under the same base name (fib.ail, fib.lua, fib.py). Every
peer must print the same output; a mismatch is reported and the program's row is marked. Times
are the best of --runs wall-clock runs, so the numbers are ratios measured in the same session on
the same machine, not absolute claims. Usage:

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
    """Installs lua5.4 from Debian's packages when it is missing."""
    if shutil.which("lua5.4"):
        return
    print("lua5.4 not found: installing it with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "lua5.4"], check=True)


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--aivm", default=None, help="path of an aivm binary (default: build release)")
    args = ap.parse_args()

    ensure_lua()
    aivm = args.aivm or build_aivm()
    peers = [
        ("aivm", lambda p: [aivm, "run", p + ".ail"]),
        ("lua5.4", lambda p: ["lua5.4", p + ".lua"]),
        ("python3", lambda p: [sys.executable, p + ".py"]),
    ]
    names = [n for n in ORDER if not args.only or n in args.only.split(",")]
    print(f"{'program':<10}" + "".join(f"{name:>10}" for name, _ in peers) + f"{'aivm/lua':>10}{'aivm/py':>10}  output", flush=True)
    ratios = []
    for name in names:
        base = os.path.join(PROGRAMS, name)
        times, outputs = [], []
        for _, cmd in peers:
            t, out = time_best(cmd(base), args.runs)
            times.append(t)
            outputs.append(out)
        ok = all(t is not None for t in times) and len(set(outputs)) == 1
        cells = "".join(f"{t:>9.3f}s" if t is not None else f"{'failed':>10}" for t in times)
        if times[0] is not None and times[1] is not None:
            r_lua, r_py = times[0] / times[1], times[0] / times[2] if times[2] else float("nan")
            ratios.append(r_lua)
            cells += f"{r_lua:>10.2f}{r_py:>10.2f}"
        else:
            cells += f"{'-':>10}{'-':>10}"
        note = "same" if ok else "MISMATCH: " + " | ".join(repr(o)[:60] for o in outputs)
        print(f"{name:<10}{cells}  {note}", flush=True)
    if ratios:
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"geometric mean of aivm/lua5.4: {geo:.2f}")


if __name__ == "__main__":
    main()
