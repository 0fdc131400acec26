#!/usr/bin/env python3
"""peer against ssh on this machine, in one run, on loopback.

Starts a throwaway sshd (its own host key and user key, 127.0.0.1 only) and a `peer host`
(its own PEER_HOME, embedded relay), pairs a client, and measures through a remote PTY:
  - keystroke echo: 1 byte written, the same byte read back from `stty raw -echo; cat`
  - throughput: N bytes of `head -c N /dev/zero` through the remote PTY
  - host memory: VmRSS of `peer host` idle and with 20 shell sessions
  - head-of-line isolation: keystroke echo in one session while another session floods (`yes`)
  - Ctrl-C latency: from writing ^C to a flooding `yes` to the end of its output at the client
  - time to first byte: from `peer pair URL` to the first output byte of a new session
    (for ssh: from starting `ssh` to its first output byte)
  - reconnect to resumed: the client is stopped (SIGSTOP) for 8 s, longer than the idle timeout;
    from SIGCONT to the echo of a key typed at that moment
for ssh -tt, peer direct and peer relay-only. With a `peer-relay` binary it also starts a
self-hosted relay the way a VPS would run one (token mode, self-signed TLS) and a second
`peer host --relay-only` behind it, and measures echo through it: a native client relay-only,
and the browser test client through that relay's own mobile bridge. Prints Markdown tables;
--chart writes a PNG.
"""
import argparse, os, re, select, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def read_until(fd, needle, timeout=30):
    """Reads `fd` until `needle` has come; TimeoutError after `timeout` seconds, even while
    nothing arrives."""
    buf = b""; end = time.monotonic() + timeout
    while needle not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"never saw {needle!r}; got {buf[-200:]!r}")
        chunk = os.read(fd, 65536)
        if not chunk: raise EOFError(f"EOF before {needle!r}; got {buf[-200:]!r}")
        buf += chunk
    return buf

def sshd_files(tmp, addr, port):
    """A throwaway sshd's host key, user key and config in `tmp`, listening on addr:port only.
    Returns (the sshd command, the user key)."""
    hk, uk = os.path.join(tmp, "host_key"), os.path.join(tmp, "user_key")
    for k in (hk, uk):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
    auth = os.path.join(tmp, "authorized_keys"); shutil.copy(uk + ".pub", auth)
    cfg = os.path.join(tmp, "sshd_config")
    with open(cfg, "w") as f:
        f.write(f"Port {port}\nListenAddress {addr}\nHostKey {hk}\nAuthorizedKeysFile {auth}\n"
                f"PidFile {tmp}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n"
                "PasswordAuthentication no\n")
    os.makedirs("/run/sshd", exist_ok=True)
    return [shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", cfg], uk

def start_sshd(tmp):
    port = free_port()
    cmd, uk = sshd_files(tmp, "127.0.0.1", port)
    p = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
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

def start_flood(cmd, env, got=None):
    """Starts `yes` in a remote PTY and drains the client's output in a thread; returns once
    10 MB have arrived. `got`, a one-element list, counts the bytes as they arrive."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    got = [0] if got is None else got
    def drain():
        while True:
            chunk = os.read(p.stdout.fileno(), 1 << 20)
            if not chunk: break
            got[0] += len(chunk)
    t = threading.Thread(target=drain, daemon=True); t.start()
    end = time.time() + 30
    while got[0] < 10_000_000:
        if time.time() > end: raise TimeoutError("the flood never started")
        time.sleep(0.01)
    return p, t

def ctrl_c(p, t):
    """Writes ^C to a flooding client; seconds until its output ends (the remote `yes` died and
    everything in flight arrived)."""
    t0 = time.perf_counter()
    os.write(p.stdin.fileno(), b"\x03")
    t.join(timeout=60)
    dt = time.perf_counter() - t0
    if t.is_alive(): p.kill()
    p.wait()
    return dt

def first_byte(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    os.read(p.stdout.fileno(), 1)
    dt = time.perf_counter() - t0
    p.wait()
    return dt

def pair_to_first_byte(peer, url, env, home):
    """Seconds from `peer pair URL` (a fresh device) to the first byte of a new session."""
    e = dict(env, PEER_HOME=home)
    t0 = time.perf_counter()
    subprocess.run([peer, "pair", url, "--name", "fresh"], env=e, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0 + first_byte([peer, "attach", "--new", "--", "echo", "FIRST"], e)

def reconnect_to_resumed(cmd, env):
    """Seconds from waking a client that slept past the idle timeout to the echo of a key typed
    on waking."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    read_until(p.stdout.fileno(), b"READY")
    os.kill(p.pid, signal.SIGSTOP)
    time.sleep(8)
    t0 = time.perf_counter()
    os.kill(p.pid, signal.SIGCONT)
    os.write(p.stdin.fileno(), b"z")
    read_until(p.stdout.fileno(), b"z", timeout=60)
    dt = time.perf_counter() - t0
    p.kill(); p.wait()
    err = p.stderr.read().decode(errors="replace")
    if "reconnected" not in err:
        raise RuntimeError(f"no reconnect happened: {err}")
    return dt

def chart(path, res, extra, bridge):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    med = statistics.median
    names = list(res)
    short = {"ssh -tt": "ssh -tt", "peer direct": "peer\ndirect", "peer relay-only": "peer\nrelay-only",
             "peer relay-only, external peer-relay (token, TLS)": "peer relay-only,\nexternal relay"}
    ticks = [short.get(n, n) for n in names]
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    x = range(len(names))
    w = 0.2
    for i, (key, label) in enumerate([("p50", "echo p50"), ("p99", "echo p99"),
                                       ("flood_p50", "p50, other session flooding"),
                                       ("flood_p99", "p99, other session flooding")]):
        ax[0][0].bar([j + (i - 1.5) * w for j in x], [med(res[n][key]) for n in names], w, label=label)
    ax[0][0].set_xticks(list(x), ticks); ax[0][0].set_yscale("log"); ax[0][0].set_ylabel("µs (log)"); ax[0][0].set_title("keystroke echo (lower is better)")
    ax[0][0].legend(fontsize=8)
    ax[0][1].bar(ticks, [med(res[n]["mbs"]) for n in names], color="tab:green")
    ax[0][1].set_ylabel("MB/s"); ax[0][1].set_title("throughput through the PTY (higher is better)")
    ax[1][0].bar(ticks, [med(res[n]["ctrl_c"]) * 1000 for n in names], color="tab:red")
    ax[1][0].set_ylabel("ms"); ax[1][0].set_title("Ctrl-C while `yes` floods, to end of output")
    labels = ["ssh: start\nto first byte", "peer: pair URL\nto first byte",
              "peer direct:\nreconnect\nto echo", "peer relay-only:\nreconnect\nto echo"]
    vals = [med(extra["ssh_first"]), med(extra["pair_first"]),
            med(res["peer direct"]["reconnect"] or [0]), med(res["peer relay-only"]["reconnect"] or [0])]
    ax[1][1].bar(labels, [v * 1000 for v in vals], color="tab:purple")
    ax[1][1].set_ylabel("ms"); ax[1][1].set_title("getting connected"); ax[1][1].tick_params(axis="x", labelsize=8)
    fig.suptitle("peer vs ssh on loopback (medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)

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
    ap.add_argument("--chart", help="write a PNG chart here (needs matplotlib)")
    ap.add_argument("--echo-only", action="store_true",
                    help="measure keystroke echo only (ssh, peer direct, relay-only; quick A/B runs)")
    ap.add_argument("--bridge-bench", default="target/release/examples/bridge_bench",
                    help="the browser-path probe (cargo build --release -p peer-testkit --example bridge_bench)")
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
        ext = None if a.echo_only else start_external(a, peer, env, tmp)
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
        keys = ("p50", "p90", "p99", "mbs", "rss", "flood_p50", "flood_p99", "ctrl_c", "reconnect",
                "no_reconnect")
        res = {k: {m: [] for m in keys} for k in paths}
        extra = {"ssh_first": [], "pair_first": []}
        for run in range(a.runs):
            for name, mk in paths.items():
                e = echo(mk(raw), a.echo, envs[name])
                for k, v in zip(("p50", "p90", "p99"), e): res[name][k].append(v)
                if a.echo_only:
                    print(f"run {run+1} {name}: echo p50 {e[0]:.0f} µs p90 {e[1]:.0f} µs p99 {e[2]:.0f} µs",
                          file=sys.stderr)
                    continue
                rss_file = os.path.join(tmp, "rss")
                mbs, total = throughput(mk(zero), envs[name], rss_file)
                res[name]["mbs"].append(mbs)
                rss = max_rss_kb(rss_file)
                if rss: res[name]["rss"].append(rss)
                print(f"run {run+1} {name}: echo p50 {e[0]:.0f} µs p99 {e[2]:.0f} µs, {mbs:.1f} MB/s ({total} B)", file=sys.stderr)
                # Head-of-line isolation and Ctrl-C: one session floods, another echoes.
                flood, drain = start_flood(mk("yes"), envs[name])
                fe = echo(mk(raw), a.echo, envs[name])
                res[name]["flood_p50"].append(fe[0]); res[name]["flood_p99"].append(fe[2])
                res[name]["ctrl_c"].append(ctrl_c(flood, drain))
                print(f"run {run+1} {name}: while flooding echo p50 {fe[0]:.0f} µs p99 {fe[2]:.0f} µs; "
                      f"Ctrl-C {res[name]['ctrl_c'][-1]*1000:.0f} ms", file=sys.stderr)
                if name != "ssh -tt":
                    try:
                        res[name]["reconnect"].append(reconnect_to_resumed(mk(raw), envs[name]))
                        print(f"run {run+1} {name}: reconnect to resumed {res[name]['reconnect'][-1]*1000:.0f} ms", file=sys.stderr)
                    except RuntimeError as e:
                        # Reported in the table, not fatal: the other numbers of the run stand.
                        res[name]["no_reconnect"].append(str(e))
                        print(f"run {run+1} {name}: reconnect not measured: {e}", file=sys.stderr)
            if a.echo_only:
                continue
            extra["ssh_first"].append(first_byte(ssh + ["echo FIRST"], cenv))
            fresh = subprocess.run([peer, "pair", "--no-wait"], env=dict(env, PEER_HOME=hosth), check=True,
                                   capture_output=True).stdout.decode()
            purl = [l.split(": ", 1)[1].strip() for l in fresh.splitlines() if l.startswith("pairing URL: ")][0]
            extra["pair_first"].append(pair_to_first_byte(peer, purl, env, os.path.join(tmp, f"fresh{run}")))
            print(f"run {run+1}: ssh start to first byte {extra['ssh_first'][-1]*1000:.0f} ms, "
                  f"peer pair URL to first byte {extra['pair_first'][-1]*1000:.0f} ms", file=sys.stderr)
        # The browser path: WebSocket + Noise through peer host's embedded mobile bridge.
        bridge = {"p50": [], "p90": [], "p99": []}
        ext_bridge = {"p50": [], "p90": [], "p99": []}
        bb = os.path.abspath(a.bridge_bench)
        if a.echo_only:
            pass
        elif os.path.exists(bb):
            for run in range(a.runs):
                targets = [(hosth, [], bridge, "bridge")]
                if ext:
                    targets.append((ext["hosth"], ["--bridge", ext["ws"]], ext_bridge, "external bridge"))
                for home, flags, into, label in targets:
                    fresh = subprocess.run([peer, "pair", "--no-wait"], env=dict(env, PEER_HOME=home), check=True,
                                           capture_output=True).stdout.decode()
                    burl = [l.split(": ", 1)[1].strip() for l in fresh.splitlines() if l.startswith("pairing URL: ")][0]
                    out = subprocess.run([bb, burl, "--echo", str(a.echo)] + flags, check=True,
                                         capture_output=True).stdout.decode()
                    line = [l for l in out.splitlines() if l.startswith("bridge echo:")][0]
                    for k, v in zip(("p50", "p90", "p99"), [float(t) for t in re.findall(r"p\d+ (\d+)", line)]):
                        into[k].append(v)
                    print(f"run {run+1} {label}: {line}", file=sys.stderr)
        else:
            print(f"(no {bb}: skipping the browser path)", file=sys.stderr)
        med = lambda xs: statistics.median(xs)
        base = res["ssh -tt"]
        if a.echo_only:
            print("| path | echo p50 (µs) | p90 | p99 | p50 vs ssh |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for name, r in res.items():
                print(f"| {name} | {med(r['p50']):.0f} | {med(r['p90']):.0f} | {med(r['p99']):.0f} | "
                      f"{med(r['p50'])/med(base['p50']):.2f}× |")
            return
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
        print("\n| path | echo p50 while another session floods (µs) | p99 | p99 vs idle p99 | Ctrl-C to end of output (ms) | reconnect to resumed (ms) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, r in res.items():
            rc = f"{med(r['reconnect'])*1000:.0f}" if r["reconnect"] else "– (no resume)"
            if r["no_reconnect"]:
                rc += f" ({len(r['no_reconnect'])} run(s) without a reconnect)"
            print(f"| {name} | {med(r['flood_p50']):.0f} | {med(r['flood_p99']):.0f} | "
                  f"{med(r['flood_p99'])/med(r['p99']):.1f}× | {med(r['ctrl_c'])*1000:.0f} | {rc} |")
        print(f"\nssh: start to first byte {med(extra['ssh_first'])*1000:.0f} ms (key already trusted); "
              f"peer: pairing URL to first byte of a new session {med(extra['pair_first'])*1000:.0f} ms")
        if a.chart:
            chart(a.chart, res, extra, bridge)
            print(f"\nchart: {a.chart}", file=sys.stderr)
    finally:
        if ext:
            for p in (ext["host"], ext["relay"]):
                p.terminate(); p.wait(timeout=15)
        host.terminate(); host.wait(timeout=15)
        sshd.terminate(); sshd.wait()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
