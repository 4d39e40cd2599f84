#!/usr/bin/env python3
"""Live-capture benchmark: `flowdoc live -i lo` under tcpreplay, as root.

Usage: sudo python3 benches/live.py [--packets N] [--rounds N]

Two measurements, on two captures from the project's generator (cached in benches/data/): the
IM and Presence mix of benches/e2e.py (20,000 flows, mixed sizes) and a SYN scan (every packet a
new flow, the worst case for the flow table).

1. Sustained: flowdoc captures while tcpreplay sends the capture at 100,000 packets/s and at
   its top speed. Prints the rate tcpreplay reached, libpcap's received and dropped counters
   and the packets flowdoc counted. On this kind of machine the sender is the limit: the kernel
   work of every loopback packet (including the copy into flowdoc's buffer) is done on the
   sending core.
2. Drain: flowdoc is stopped (SIGSTOP) with a buffer that holds the whole burst, tcpreplay fills
   it, flowdoc is continued and the time until it has counted every packet (`--count`) and
   exited is taken: the rate its one thread reads, labels and writes at, whatever the sender
   can do. Median of ROUNDS.

Needs root (or CAP_NET_RAW), libpcap-dev (for `--features live`) and tcpreplay; missing
Debian packages are installed with apt-get, as `.ci/run` does.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import capture, generated  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTERS = re.compile(r"libpcap received (\d+) packets, dropped (\d+)")
PACKETS = re.compile(r"packets (\d+)  in flows")
RATED = re.compile(r"Rated: .*?([\d.]+) pps")


def need_packages():
    need = []
    if not (os.path.exists("/usr/include/pcap.h") or os.path.exists("/usr/include/pcap/pcap.h")):
        need.append("libpcap-dev")
    if not shutil.which("tcpreplay"):
        need.append("tcpreplay")
    if need:
        print(f"live: installing {' '.join(need)}")
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=False)
        subprocess.run(["apt-get", "install", "-y", "-q", *need], stdout=subprocess.DEVNULL,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=True)


def start(flowdoc, args):
    p = subprocess.Popen([flowdoc, "live", "-i", "lo", "--interval", "1000", "--no-color", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # libpcap opens the interface and maps its buffer
    return p


def results(p):
    out, err = p.communicate(timeout=120)
    c = COUNTERS.search(err)
    k = PACKETS.search(out)
    if not c or not k:
        sys.exit(f"live: no counters from flowdoc:\n{err}\n{out[:2000]}")
    return int(c.group(1)), int(c.group(2)), int(k.group(1))


def replay(cap, n, rate):
    speed = ["--topspeed"] if rate is None else ["--pps", str(rate)]
    r = subprocess.run(["tcpreplay", "-K", *speed, "-i", "lo", "-L", str(n), cap],
                       capture_output=True, text=True, check=True)
    m = RATED.search(r.stdout)
    return float(m.group(1)) if m else float("nan")


def sustained(flowdoc, cap, n, rate):
    p = start(flowdoc, [])
    sent = replay(cap, n, rate)
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    return (sent, *results(p))


def drain(flowdoc, cap, n, buffer_mb):
    p = start(flowdoc, ["--buffer-mb", str(buffer_mb), "--count", str(n)])
    p.send_signal(signal.SIGSTOP)
    replay(cap, n, None)
    time.sleep(0.5)
    t0 = time.perf_counter()
    p.send_signal(signal.SIGCONT)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
    took = time.perf_counter() - t0
    return (took, *results(p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("live: capturing on lo needs root")
    need_packages()
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "flowdoc", "-p",
                    "flowdoc-fixturegen", "--features", "flowdoc/live"], cwd=ROOT, check=True)
    rel = os.path.join(ROOT, "target", "release")
    flowdoc = os.path.join(rel, "flowdoc")
    n = a.packets
    caps = [
        ("IM&P mix, 20,000 flows", capture(rel, n, 20_000)),
        (f"SYN scan, {n} flows", generated(rel, f"syn-{n}.pcap", "--syn-scan", n)),
    ]

    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; {n} packets per run")
    print("sustained: flowdoc capturing while tcpreplay sends")
    print(f"{'capture':<28}{'asked pps':>12}{'sent pps':>12}{'received':>11}{'dropped':>9}{'flowdoc':>10}")
    for name, cap in caps:
        for rate in (100_000, None):
            sent, received, dropped, counted = sustained(flowdoc, cap, n, rate)
            asked = "top speed" if rate is None else f"{rate:,}"
            print(f"{name:<28}{asked:>12}{sent:>12,.0f}{received:>11}{dropped:>9}{counted:>10}")
    print(f"drain: flowdoc stopped while {n} packets fill its buffer, then timed until it has read them all (median of {a.rounds})")
    print(f"{'capture':<28}{'median s':>10}{'packets/s':>12}{'dropped':>9}{'flowdoc':>10}")
    for name, cap in caps:
        size = os.path.getsize(cap)
        # The buffer holds the burst: the file's bytes (16 of them a packet its record header)
        # plus 96 a packet for each frame's header in the kernel's ring (TPACKET_V3: 48 bytes,
        # the link-layer address and 16-byte alignment, about 90 a frame). With 64, one round
        # of three of the SYN scan overflowed the ring by one packet on 2026-12-02.
        mb = min(2047, (size + 96 * n) * 5 // 4 // (1 << 20) + 16)
        runs = [drain(flowdoc, cap, n, mb) for _ in range(a.rounds)]
        med = statistics.median(r[0] for r in runs)
        dropped = max(r[2] for r in runs)
        counted = min(r[3] for r in runs)
        print(f"{name:<28}{med:>10.3f}{n / med:>12,.0f}{dropped:>9}{counted:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
