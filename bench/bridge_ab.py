#!/usr/bin/env python3
"""Browser keystroke echo through `peer host`'s own front, two builds side by side in one run.

Each build is a directory holding a release `peer` and the `bridge_bench` probe that speaks that
build's browser channel (`cargo build --release -p peer --bin peer -p peer-testkit --example
bridge_bench`, then copy `target/release/peer` and `target/release/examples/bridge_bench`).
Rounds alternate between the builds so that whatever else the machine does hits both alike.

    bench/bridge_ab.py BEFORE_DIR AFTER_DIR [--rounds 5] [--echo 500]
"""
import argparse, os, re, statistics, subprocess, tempfile, time

def run_round(build, echo):
    home = tempfile.mkdtemp(prefix="peer-ab-")
    env = dict(os.environ, PEER_HOME=home, PEER_KEY_STORE="file", RUST_LOG="error", XDG_STATE_HOME="")
    host = subprocess.Popen([os.path.join(build, "peer"), "host", "--listen", "127.0.0.1", "--name", "ab"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = host.stdout.readline()
            if line.startswith("pairing URL: "):
                url = line.split("pairing URL: ", 1)[1].strip()
        if url is None:
            raise RuntimeError(f"{build}: no pairing URL")
        out = subprocess.run([os.path.join(build, "bridge_bench"), url, "--echo", str(echo)],
                             capture_output=True, text=True, timeout=300, check=True).stdout
        m = re.search(r"bridge echo: p50 (\d+) µs, p90 (\d+) µs, p99 (\d+) µs", out)
        if not m:
            raise RuntimeError(f"{build}: unexpected output {out!r}")
        return tuple(int(x) for x in m.groups())
    finally:
        host.terminate()
        host.wait(timeout=10)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--echo", type=int, default=500)
    a = ap.parse_args()
    res = {"before": [], "after": []}
    for r in range(a.rounds):
        for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
            res[name].append(run_round(getattr(a, name), a.echo))
            print(f"round {r + 1} {name}: p50/p90/p99 {res[name][-1]} µs", flush=True)
    print("\n| build | echo p50 | p90 | p99 |\n| --- | ---: | ---: | ---: |")
    for name in ("before", "after"):
        med = [statistics.median(x[i] for x in res[name]) for i in range(3)]
        print(f"| {name} | {med[0]:.0f} µs | {med[1]:.0f} µs | {med[2]:.0f} µs |")
    b = statistics.median(x[0] for x in res["before"])
    f = statistics.median(x[0] for x in res["after"])
    print(f"\nafter / before, p50: {f / b:.2f}")

if __name__ == "__main__":
    main()
