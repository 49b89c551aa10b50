"""What the measuring scripts share: the release binary, moto's server on a free loopback
port, and moto's request log read as it grows. Imported by scripts/measure-pacing and
scripts/measure-org (they put this directory on sys.path)."""

import os
import re
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# moto's werkzeug log: one line per answered request.
# Errors come coloured: "\x1b[33mGET /x HTTP/1.1\x1b[0m" 404.
REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)?(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/[0-9.]+'
                     r'(?:\x1b\[[0-9;]*m)?" (\d{3})')


def binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    return os.path.join(target, "release", "fleetdeck")


def moto_server():
    path = os.environ.get("FLEETDECK_MOTO_SERVER", "")
    if not path:
        home = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
        path = os.path.join(home, "fleetdeck", "venv", "bin", "moto_server")
    if not os.path.isfile(path):
        sys.exit(f"moto_server not found at {path}: run ./scripts/test once (it installs moto), "
                 "or set FLEETDECK_MOTO_SERVER")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("moto_server exited before answering")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("moto_server did not start within a minute")


class Log:
    """moto's log, read as it grows: each request line with the time it was seen."""

    def __init__(self, path):
        self.file = open(path, "r", errors="replace")
        self.partial = ""

    def poll(self):
        chunk = self.file.read()
        now = time.monotonic()
        if not chunk:
            return []
        text = self.partial + chunk
        lines = text.split("\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            m = REQUEST.search(line)
            if m:
                out.append((now, m.group(2), int(m.group(3))))
        return out
