#!/usr/bin/env python3
"""Regenerate fast-agent-requirements.txt (exact versions + sha256 of the wheel pip picks here).

usage: .ci/make-fast-agent-lock.py PYTHON312 [fast-agent-mcp==0.10.30]
Creates a throw-away venv, installs the package, freezes it, downloads every pinned
wheel and writes the hash-pinned lock next to this script. Run on the CI platform
(Linux x86_64, CPython 3.12): the hashes are those of this platform's wheels.
"""
import hashlib
import os
import re
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
py = sys.argv[1]
spec = sys.argv[2] if len(sys.argv) > 2 else "fast-agent-mcp==0.10.30"
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731

with tempfile.TemporaryDirectory() as tmp:
    venv, wheels = os.path.join(tmp, "venv"), os.path.join(tmp, "wheels")
    subprocess.run([py, "-m", "venv", venv], check=True)
    pip = [os.path.join(venv, "bin", "pip"), "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", spec], check=True)
    freeze = subprocess.run([*pip, "freeze"], check=True, capture_output=True, text=True).stdout
    pins = [l.strip() for l in freeze.splitlines() if "==" in l]
    req = os.path.join(tmp, "freeze.txt")
    open(req, "w").write("\n".join(pins) + "\n")
    subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "-r", req, "-d", wheels],
                   check=True)
    by_name = {}
    for f in os.listdir(wheels):
        by_name.setdefault(norm(f.split("-")[0]), []).append(f)
    out = [f"# Exact, hash-pinned dependency set for {spec} on CPython 3.12 / Linux x86_64.",
           "# Installed with: pip install --no-deps --require-hashes -r fast-agent-requirements.txt",
           "# Regenerate with .ci/make-fast-agent-lock.py (same directory)."]
    for pin in sorted(pins, key=lambda p: norm(p.split("==")[0])):
        name = pin.split("==")[0]
        files = by_name[norm(name)]
        hashes = [hashlib.sha256(open(os.path.join(wheels, f), "rb").read()).hexdigest() for f in files]
        out.append(f"{pin} \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in hashes))
    open(os.path.join(here, "fast-agent-requirements.txt"), "w").write("\n".join(out) + "\n")
    print(f"wrote {len(pins)} pins")
