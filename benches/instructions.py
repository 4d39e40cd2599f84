#!/usr/bin/env python3
"""Instructions, not seconds: flowdoc against the baseline under callgrind.

Usage: python3 benches/instructions.py [--packets N] [--flows N] [--few N] [--check RATIO]

Wall time on a shared machine moves by more than most changes (benches/e2e.py reports it);
the instructions a run executes do not: callgrind counts the same total for the same binary
and input whatever else the machine does. This runs flowdoc (`analyze --format json`, one
thread, payload identification on) and the baseline (benches/baseline.rs) under
`valgrind --tool=callgrind` on two captures of the same number of packets from the project's
generator: one with FLOWS flows (the end-to-end benchmark's) and one with FEW, and prints the
instructions of each run, per packet, and what a flow costs flowdoc: the difference between
the two captures over the difference in flows (identification, labelling, the JSON line, the
allocations a flow makes). Under valgrind the sha2 crate runs its portable SHA-256 (the
emulated processor has no SHA extensions), so a TLS handshake counts more than it costs on the
machine. It takes a few minutes: each flowdoc run of 2 million packets is about 100 s.
--check RATIO exits 1 when flowdoc executes more than RATIO times the baseline's instructions
on the FLOWS capture (`.ci/run` does this on a small capture): unlike a timed check, it does
not move with the machine's load, so its bound can sit close to the measured ratio.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import build, capture  # noqa: E402

COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def instructions(cmd):
    """Instructions callgrind counts for one run of `cmd` (its output thrown away)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={os.path.join(tmp, 'cg.out')}", *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    m = COLLECTED.search(out.stderr)
    if not m:
        sys.exit(f"instructions: no count from callgrind for {' '.join(cmd)}:\n{out.stderr[-2000:]}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--flows", type=int, default=50_000)
    ap.add_argument("--few", type=int, default=1_000, help="flows of the second capture")
    ap.add_argument("--check", type=float, default=None)
    a = ap.parse_args()
    if a.few >= a.flows:
        sys.exit("instructions: --few must be below --flows")
    if not shutil.which("valgrind"):
        sys.exit("instructions: valgrind is not installed (Debian: apt-get install valgrind)")
    rel = build()
    n = a.packets
    print(f"callgrind, {n} packets a capture; flowdoc: analyze --format json, one thread")
    print(f"{'capture':<22}{'flowdoc':>16}{'a packet':>10}{'baseline':>16}{'a packet':>10}{'ratio':>8}")
    counts = {}
    ratio = None
    for flows in (a.flows, a.few):
        cap = capture(rel, n, flows)
        fd = instructions([os.path.join(rel, "flowdoc"), "analyze", "--format", "json", "--threads", "1", "-o", os.devnull, cap])
        base = instructions([os.path.join(rel, "baseline"), cap])
        counts[flows] = fd
        ratio = ratio or fd / base
        print(f"{f'{flows:,} flows':<22}{fd:>16,}{fd / n:>10.0f}{base:>16,}{base / n:>10.0f}{fd / base:>8.2f}")
    per_flow = (counts[a.flows] - counts[a.few]) / (a.flows - a.few)
    print(f"a flow costs flowdoc about {per_flow:,.0f} instructions "
          f"({a.flows:,} flows against {a.few:,} over the same packets); "
          f"per packet, apart from flows: {(counts[a.few] - a.few * per_flow) / n:.0f}")
    if a.check is not None:
        verdict = "ok" if ratio <= a.check else "FAILED"
        print(f"check: flowdoc executes {ratio:.2f} times the baseline's instructions on "
              f"{a.flows:,} flows (at most {a.check:.2f}): {verdict}")
        if ratio > a.check:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
