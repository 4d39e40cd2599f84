#!/usr/bin/env python3
"""Inputs read in order: flowdoc on a gzipped capture and on a pipe, one thread and every core.

Usage: python3 benches/serial.py [--packets N] [--flows N] [--rounds N] [--level L]

A gzip file or a pipe cannot be cut into ranges: one thread decompresses (or reads the pipe)
and frames whole records, and every thread dissects and folds them. This times, in the same
run and rounds interleaved, medians reported: `flowdoc analyze --format json` on the
benchmark capture of benches/e2e.py gzipped (made once at gzip level L, default 6, and cached
in benches/data/; deterministic: no time or name in its header), and on that capture piped in
by `cat` (`/dev/stdin`), each on one thread and on every core; and for scale the same
analysis of the capture itself. Prints each median, CPU time and each round's ratio of every
core to one thread.
"""
import argparse
import gzip
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import build, capture, cpu_model, timed  # noqa: E402


def gzipped(path, level):
    """`path` gzipped at `level` beside it, made once."""
    out = f"{path}.{level}.gz"
    if not os.path.exists(out):
        tmp = out + ".tmp"
        with open(path, "rb") as src, open(tmp, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0) as z:
                shutil.copyfileobj(src, z, 1 << 20)
        os.rename(tmp, out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--flows", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--level", type=int, default=6)
    a = ap.parse_args()

    rel = build()
    cap = capture(rel, a.packets, a.flows)
    gz = gzipped(cap, a.level)
    flowdoc = os.path.join(rel, "flowdoc")
    cores = os.cpu_count() or 1
    # A fresh copy, as e2e.py reads (an hour-old page cache is read at half the speed here).
    fresh = cap + ".fresh"
    shutil.copyfile(cap, fresh)

    def analyze(threads, src):
        return [flowdoc, "analyze", "--format", "json", "--threads", str(threads), src]

    def piped(threads):
        # `cat` into flowdoc's standard input, through a shell.
        return ["sh", "-c", f"cat '{fresh}' | '{flowdoc}' analyze --format json --threads {threads} /dev/stdin"]

    inputs = [
        ("capture", lambda t: analyze(t, fresh)),
        (f"gzip -{a.level}", lambda t: analyze(t, gz)),
        ("pipe (cat)", piped),
    ]
    tools = [(f"{name}, {t} thread{'s' if t > 1 else ''}", make(t), name, t) for name, make in inputs for t in (1, cores)]
    print(f"machine: {cpu_model()}, {cores} cores, {os.uname().release}")
    print(
        f"capture: {cap} ({a.packets} packets, {a.flows} flows, {os.path.getsize(cap) / 1e6:.0f} MB; "
        f"gzipped {os.path.getsize(gz) / 1e6:.0f} MB); {a.rounds} rounds"
    )
    times = {name: [] for name, *_ in tools}
    cpu = {name: [] for name, *_ in tools}
    try:
        for _ in range(a.rounds):
            for name, cmd, *_ in tools:
                wall, _, used = timed(cmd)
                times[name].append(wall)
                cpu[name].append(used)
    finally:
        os.remove(fresh)
    print(f"{'input':<26}{'median s':>10}{'CPU s':>8}{'Mpkt/s':>10}")
    for name, *_ in tools:
        med = statistics.median(times[name])
        print(f"{name:<26}{med:>10.3f}{statistics.median(cpu[name]):>8.3f}{a.packets / med / 1e6:>10.2f}")
    if cores > 1:
        for name, _ in inputs:
            one, every = times[f"{name}, 1 thread"], times[f"{name}, {cores} threads"]
            r = sorted(o / e for o, e in zip(one, every))
            print(
                f"{name}: {cores} threads run at {statistics.median(one) / statistics.median(every):.2f} times one "
                f"thread's rate (per round: median {statistics.median(r):.2f}, range {r[0]:.2f}-{r[-1]:.2f})"
            )


if __name__ == "__main__":
    main()
