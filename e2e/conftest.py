"""Shared fixtures for attache's end-to-end tests.

Every test gets its own attache process, config and host file in a temporary
folder. Ports are chosen by attache itself (port 0) and read back from the file
that `serve --write-ports` writes once both listeners are bound.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest
import yaml

E2E = pathlib.Path(__file__).resolve().parent
for _path in (E2E, E2E / "conformance"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from peers.util import Fatal, endpoints, stop_process, wait_until  # noqa: E402,F401

ROOT = pathlib.Path(__file__).resolve().parent.parent
ATTACHE_BIN = os.environ.get("ATTACHE_BIN", str(ROOT / "build" / "attache"))


class Attache:
    """One attache process serving a host file, with helpers to edit it."""

    def __init__(self, workdir: pathlib.Path, services: dict, extra_config=None):
        self.workdir = workdir
        self.hosts_path = workdir / "hosts.yaml"
        self.config_path = workdir / "attache.yaml"
        self.ports_path = workdir / "ports.json"
        self.log_path = workdir / "attache.log"
        self.write_hosts(services)
        config = {
            "xds": {"listen": "127.0.0.1:0"},
            "admin": {"listen": "127.0.0.1:0"},
            "catalog": {"debounce": "10ms", "max_delay": "100ms"},
            "sources": [{"name": "hosts", "type": "file", "path": "hosts.yaml"}],
        }
        for key, value in (extra_config or {}).items():
            config[key] = value
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc = None
        self.xds_port = None
        self.admin_port = None
        self.extra_args = []  # more `serve` flags, e.g. ["--log-format", "json"]

    def write_hosts(self, services: dict):
        """Replaces the host file atomically, as a careful operator would."""
        self.write_hosts_text(yaml.safe_dump({"services": services}))

    def write_hosts_text(self, text: str):
        tmp = self.hosts_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.hosts_path)

    def start(self, xds_port=0, admin_port=0, timeout=20, health_port=0):
        if self.ports_path.exists():
            self.ports_path.unlink()
        config = yaml.safe_load(self.config_path.read_text())
        config["xds"]["listen"] = f"127.0.0.1:{xds_port}"
        config["admin"]["listen"] = f"127.0.0.1:{admin_port}"
        config["admin"]["health_listen"] = f"127.0.0.1:{health_port}"
        self.config_path.write_text(yaml.safe_dump(config))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ATTACHE_BIN, "serve", "--config", str(self.config_path),
             "--write-ports", str(self.ports_path), "--log-level", "debug",
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT)
        ports = wait_until(self._read_ports, timeout=timeout, what="attache to listen")
        self.xds_port, self.admin_port = ports["xds"], ports["admin"]
        self.health_port = ports["health"]
        return self

    def _read_ports(self):
        if self.proc.poll() is not None:
            raise Fatal(f"attache exited with {self.proc.returncode}:\n{self.log()}")
        if not self.ports_path.exists():
            return None
        return json.loads(self.ports_path.read_text())

    @property
    def xds_address(self):
        return f"127.0.0.1:{self.xds_port}"

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def health_url(self):
        return f"http://127.0.0.1:{self.health_port}"

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig=signal.SIGTERM):
        stop_process(self.proc, sig)
        self.proc = None

    def restart(self):
        """Stops attache and starts it again on the same ports."""
        xds, admin, health = self.xds_port, self.admin_port, self.health_port
        self.stop()
        return self.start(xds, admin, health_port=health)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item, so fixtures can print logs of
    the peers when a test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture
def attache_factory(tmp_path):
    started = []

    def make(services, extra_config=None, start=True):
        workdir = tmp_path / f"attache{len(started)}"
        workdir.mkdir()
        instance = Attache(workdir, services, extra_config)
        started.append(instance)
        return instance.start() if start else instance

    yield make
    for instance in started:
        instance.stop()


@pytest.fixture
def xds():
    """open_stream(attache, node=None, service="ads") -> a raw state-of-the-world
    XdsStream (e2e/conformance/ads_client.py), closed when the test ends."""
    from ads_client import XdsStream
    streams = []

    def open_stream(attache, node=None, service="ads"):
        stream = XdsStream(attache.xds_address, node=node, service=service)
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()
