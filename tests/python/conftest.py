"""Fixtures: a `teleinfo serve` started on 127.0.0.1 for the session, and VictoriaMetrics
(Debian's package) as an oracle when installed.

TELEINFO_BIN names the binary (default: target/debug/teleinfo, built by run.sh)."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Teleinfo:
    def __init__(self, binary, data):
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", data, "--listen", "127.0.0.1:0", "--opentsdb-telnet", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, TELEINFO_LOG="warn"),
        )
        self.http = self.telnet = None
        deadline = time.time() + 30
        while (self.http is None or self.telnet is None) and time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("teleinfo serve: http listening on "):
                self.http = line.rsplit(" ", 1)[1].strip()
            if line.startswith("teleinfo serve: opentsdb telnet listening on "):
                self.telnet = line.rsplit(" ", 1)[1].strip()
        assert self.http and self.telnet, "teleinfo serve did not start"
        self.host, port = self.http.rsplit(":", 1)
        self.http_port = int(port)
        self.telnet_port = int(self.telnet.rsplit(":", 1)[1])
        self.url = "http://" + self.http

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")

    def post(self, path, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self):
        self.proc.terminate()
        try:
            assert self.proc.wait(timeout=30) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="session")
def teleinfo():
    binary = os.environ.get("TELEINFO_BIN") or os.path.join(ROOT, "target", "debug", "teleinfo")
    assert os.path.exists(binary), f"{binary} not built: run tests/python/run.sh"
    data = tempfile.mkdtemp(prefix="teleinfo-py-")
    t = Teleinfo(binary, data)
    yield t
    t.stop()
    shutil.rmtree(data, ignore_errors=True)


class Victoria:
    def __init__(self, binary, data):
        self.port = free_port()
        self.tsdb_port = free_port()
        self.proc = subprocess.Popen(
            [
                binary,
                "-storageDataPath", data,
                "-httpListenAddr", f"127.0.0.1:{self.port}",
                "-opentsdbHTTPListenAddr", f"127.0.0.1:{self.tsdb_port}",
                "-retentionPeriod", "100y",
                "-search.latencyOffset", "0s",
                "-loggerLevel", "ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.put_url = f"http://127.0.0.1:{self.tsdb_port}/api/put"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("victoria-metrics did not start")

    def put(self, points):
        req = urllib.request.Request(self.put_url, data=json.dumps(points).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status in (200, 204)

    def flush(self):
        urllib.request.urlopen(self.url + "/internal/force_flush", timeout=30).read()

    def samples(self, metric):
        """How many samples of `metric` an export shows right now (after a flush)."""
        self.flush()
        params = urllib.parse.urlencode({"match[]": metric})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{params}", timeout=60) as r:
            return sum(len(json.loads(line)["values"]) for line in r.read().decode().splitlines() if line)

    def wait_for_samples(self, metric, n, within=30):
        """Waits until `n` samples of `metric` are searchable. A 204 from /api/put means
        accepted, not yet visible: one force_flush does not always show the last requests
        to the next query. Returns the count seen last; the caller checks it."""
        deadline = time.time() + within
        while True:
            seen = self.samples(metric)
            if seen >= n or time.time() > deadline:
                return seen
            time.sleep(0.2)

    def query_range(self, q, start, end, step):
        params = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step, "nocache": 1})
        with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{params}", timeout=60) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def victoria():
    binary = shutil.which("victoria-metrics")
    if binary is None:
        if os.environ.get("TELEINFO_REQUIRE_VM") == "1":
            pytest.fail("victoria-metrics is not installed (apt-get install victoria-metrics)")
        pytest.skip("victoria-metrics is not installed")
    data = tempfile.mkdtemp(prefix="vm-")
    v = Victoria(binary, data)
    yield v
    v.stop()
    shutil.rmtree(data, ignore_errors=True)
