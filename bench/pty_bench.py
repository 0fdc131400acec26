#!/usr/bin/env python3
"""peer against ssh on this machine, in one run, on loopback.

Starts a throwaway sshd (its own host key and user key, 127.0.0.1 only) and a `peer host`
(its own PEER_HOME, embedded relay), pairs a client, and measures through a remote PTY:
  - keystroke echo: 1 byte written, the same byte read back from `stty raw -echo; cat`
  - throughput: N bytes of `head -c N /dev/zero` through the remote PTY
  - host memory: VmRSS of `peer host` idle and with 20 shell sessions
for ssh -tt, peer direct and peer relay-only. With a `peer-relay` binary it also starts a
self-hosted relay the way a VPS would run one (token mode, self-signed TLS) and a second
`peer host --relay-only` behind it, and measures echo through it: a native client relay-only,
and the browser test client through that relay's own mobile bridge. Prints a Markdown table.
"""
import argparse, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def read_until(fd, needle, timeout=30):
    buf = b""; end = time.time() + timeout
    while needle not in buf:
        if time.time() > end: raise TimeoutError(f"never saw {needle!r}; got {buf[-200:]!r}")
        chunk = os.read(fd, 65536)
        if not chunk: raise EOFError(f"EOF before {needle!r}; got {buf[-200:]!r}")
        buf += chunk
    return buf

def start_sshd(tmp):
    port = free_port()
    hk, uk = os.path.join(tmp, "host_key"), os.path.join(tmp, "user_key")
    for k in (hk, uk):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
    auth = os.path.join(tmp, "authorized_keys"); shutil.copy(uk + ".pub", auth)
    cfg = os.path.join(tmp, "sshd_config")
    with open(cfg, "w") as f:
        f.write(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {auth}\n"
                f"PidFile {tmp}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n"
                "PasswordAuthentication no\n")
    os.makedirs("/run/sshd", exist_ok=True)
    p = subprocess.Popen([shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", cfg],
                         stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close(); break
        except OSError: time.sleep(0.05)
    ssh = ["ssh", "-tt", "-p", str(port), "-i", uk, "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "127.0.0.1"]
    return p, ssh

def echo(cmd, n, env):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    ifd, ofd = p.stdin.fileno(), p.stdout.fileno()
    read_until(ofd, b"READY")
    lat = []
    for i in range(n + 20):
        t0 = time.perf_counter_ns()
        os.write(ifd, b"x")
        got = b""
        while b"x" not in got:
            got += os.read(ofd, 64)
        if i >= 20: lat.append((time.perf_counter_ns() - t0) / 1000.0)
    p.kill(); p.wait()
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
    return q(0.5), q(0.9), q(0.99)

def throughput(cmd, env, rss_file):
    if TIME:
        cmd = [TIME, "-f", "%M", "-o", rss_file] + cmd
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    ofd = p.stdout.fileno(); total = 0; t0 = None
    while True:
        chunk = os.read(ofd, 1 << 20)
        if not chunk: break
        if t0 is None: t0 = time.perf_counter()
        total += len(chunk)
    dt = time.perf_counter() - t0
    p.wait()
    return total / dt / 1e6, total

TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None

def max_rss_kb(path):
    try:
        with open(path) as f: return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError): return None

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"): return int(line.split()[1])

def start_external(a, peer, env, tmp):
    """A `peer-relay` in token mode with a self-signed certificate, a relay-only `peer host`
    behind it (token and pin given), and a client paired through it; None without the binary."""
    relay_bin = os.path.abspath(a.relay)
    if not os.path.exists(relay_bin):
        print(f"(no {relay_bin}: skipping the external-relay rows)", file=sys.stderr)
        return None
    token = subprocess.run([relay_bin, "--generate-token"], check=True, capture_output=True).stdout.decode().strip()
    tokens = os.path.join(tmp, "relay-tokens")
    with open(tokens, "w") as f: f.write(token + "\n")
    os.chmod(tokens, 0o600)
    relay = subprocess.Popen([relay_bin, "--http-bind", "127.0.0.1:0", "--https-bind", "127.0.0.1:0",
                              "--dev-tls", "--quic-bind", "off", "--access", "token",
                              "--tokens-file", tokens, "--allow-root"],
                             env=dict(env, RUST_LOG="error"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    https = http = fp = None
    for line in relay.stdout:
        line = line.decode().strip()
        if line.startswith("relay URL: https://"): https = line.split(": ", 1)[1]
        elif line.startswith("relay URL: http://"): http = line.split("http://", 1)[1].rstrip("/")
        elif line.startswith("self-signed certificate, SHA-256 fingerprint: "): fp = line.split(": ", 1)[1]
        if https and http and fp: break
    hosth, clienth = os.path.join(tmp, "ext-host"), os.path.join(tmp, "ext-client")
    host = subprocess.Popen([peer, "host", "--listen", "127.0.0.1", "--relay", https, "--relay-only",
                             "--relay-cert-sha256", fp],
                            env=dict(env, PEER_HOME=hosth, PEER_RELAY_TOKEN=token),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    url = None
    for line in host.stdout:
        line = line.decode()
        if line.startswith("pairing URL: "): url = line.split(": ", 1)[1].strip(); break
    if url is None:
        raise RuntimeError("the host behind the external relay did not start")
    cenv = dict(env, PEER_HOME=clienth)
    subprocess.run([peer, "--relay-only", "pair", url, "--name", "bench"], env=cenv, check=True,
                   stdout=subprocess.DEVNULL)
    return {"relay": relay, "host": host, "hosth": hosth, "cenv": cenv, "ws": f"ws://{http}"}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="target/release/peer")
    ap.add_argument("--echo", type=int, default=1000, help="keystrokes per path")
    ap.add_argument("--bytes", type=int, default=200_000_000, help="bytes per throughput run")
    ap.add_argument("--runs", type=int, default=3, help="repeats; the table shows medians")
    ap.add_argument("--bridge-bench", default="target/release/examples/bridge_bench",
                    help="the browser-path probe (cargo build --release -p peer --example bridge_bench)")
    ap.add_argument("--relay", default="target/release/peer-relay",
                    help="peer-relay binary for the external-relay rows (skipped if missing)")
    a = ap.parse_args()
    peer = os.path.abspath(a.peer)
    tmp = tempfile.mkdtemp(prefix="peer-bench-")
    env = dict(os.environ, PEER_KEY_STORE="file", RUST_LOG="error")
    hosth, clienth = os.path.join(tmp, "host"), os.path.join(tmp, "client")
    sshd, ssh = start_sshd(tmp)
    host = subprocess.Popen([peer, "host", "--listen", "127.0.0.1"], env=dict(env, PEER_HOME=hosth),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        url = None
        for line in host.stdout:
            line = line.decode()
            if line.startswith("pairing URL: "): url = line.split(": ", 1)[1].strip(); break
        time.sleep(0.5)
        idle_rss = rss_kb(host.pid)
        cenv = dict(env, PEER_HOME=clienth)
        subprocess.run([peer, "pair", url, "--name", "bench"], env=cenv, check=True, stdout=subprocess.DEVNULL)
        # 20 idle shell sessions, before anything else holds output buffers.
        for _ in range(20):
            subprocess.run([peer, "new", "--", "sh"], env=cenv, check=True, stdout=subprocess.DEVNULL)
        time.sleep(1)
        busy_rss = rss_kb(host.pid)
        ext = start_external(a, peer, env, tmp)
        raw = "stty raw -echo; printf READY; cat"
        zero = f"head -c {a.bytes} /dev/zero"
        paths = {
            "ssh -tt": lambda r: ssh + [r],
            "peer direct": lambda r: [peer, "attach", "--new", "--", "sh", "-c", r],
            "peer relay-only": lambda r: [peer, "--relay-only", "attach", "--new", "--", "sh", "-c", r],
        }
        envs = {name: cenv for name in paths}
        if ext:
            name = "peer relay-only, external peer-relay (token, TLS)"
            paths[name] = lambda r: [peer, "--relay-only", "attach", "--new", "--", "sh", "-c", r]
            envs[name] = ext["cenv"]
        res = {k: {"p50": [], "p90": [], "p99": [], "mbs": [], "rss": []} for k in paths}
        for run in range(a.runs):
            for name, mk in paths.items():
                e = echo(mk(raw), a.echo, envs[name])
                for k, v in zip(("p50", "p90", "p99"), e): res[name][k].append(v)
                rss_file = os.path.join(tmp, "rss")
                mbs, total = throughput(mk(zero), envs[name], rss_file)
                res[name]["mbs"].append(mbs)
                rss = max_rss_kb(rss_file)
                if rss: res[name]["rss"].append(rss)
                print(f"run {run+1} {name}: echo p50 {e[0]:.0f} µs p99 {e[2]:.0f} µs, {mbs:.1f} MB/s ({total} B)", file=sys.stderr)
        # The browser path: WebSocket + Noise through peer host's embedded mobile bridge.
        bridge = {"p50": [], "p90": [], "p99": []}
        ext_bridge = {"p50": [], "p90": [], "p99": []}
        bb = os.path.abspath(a.bridge_bench)
        if os.path.exists(bb):
            for run in range(a.runs):
                targets = [(hosth, [], bridge, "bridge")]
                if ext:
                    targets.append((ext["hosth"], ["--bridge", ext["ws"]], ext_bridge, "external bridge"))
                for home, extra, into, label in targets:
                    fresh = subprocess.run([peer, "pair"], env=dict(env, PEER_HOME=home), check=True,
                                           capture_output=True).stdout.decode()
                    burl = [l.split(": ", 1)[1].strip() for l in fresh.splitlines() if l.startswith("pairing URL: ")][0]
                    out = subprocess.run([bb, burl, "--echo", str(a.echo)] + extra, check=True,
                                         capture_output=True).stdout.decode()
                    line = [l for l in out.splitlines() if l.startswith("bridge echo:")][0]
                    for k, v in zip(("p50", "p90", "p99"), [float(t) for t in re.findall(r"p\d+ (\d+)", line)]):
                        into[k].append(v)
                    print(f"run {run+1} {label}: {line}", file=sys.stderr)
        else:
            print(f"(no {bb}: skipping the browser path)", file=sys.stderr)
        med = lambda xs: statistics.median(xs)
        base = res["ssh -tt"]
        print(f"| path | echo p50 (µs) | p90 | p99 | throughput (MB/s) | p50 vs ssh | MB/s vs ssh | client max RSS (MiB) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, r in res.items():
            print(f"| {name} | {med(r['p50']):.0f} | {med(r['p90']):.0f} | {med(r['p99']):.0f} | {med(r['mbs']):.1f} | "
                  f"{med(r['p50'])/med(base['p50']):.2f}× | {med(r['mbs'])/med(base['mbs']):.2f}× | "
                  f"{(med(r['rss'])/1024 if r['rss'] else float('nan')):.1f} |")
        for label, b in (("browser bridge (embedded)", bridge),
                         ("browser bridge, external peer-relay (token, TLS)", ext_bridge)):
            if b["p50"]:
                print(f"| {label} | {med(b['p50']):.0f} | {med(b['p90']):.0f} | {med(b['p99']):.0f} | – | "
                      f"{med(b['p50'])/med(base['p50']):.2f}× | – | – |")
        print(f"\npeer host RSS: idle {idle_rss/1024:.1f} MiB, with 20 idle shell sessions {busy_rss/1024:.1f} MiB")
    finally:
        if ext:
            for p in (ext["host"], ext["relay"]):
                p.terminate(); p.wait(timeout=15)
        host.terminate(); host.wait(timeout=15)
        sshd.terminate(); sshd.wait()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
