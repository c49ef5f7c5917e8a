"""Fixtures for the dashboard test: headless Chromium (Debian's
/usr/bin/chromium) driven by playwright-core from e2e/dashboard/driver.mjs,
and raw ADS streams (e2e/conformance/ads_client.py). attache_factory comes
from e2e/conftest.py. scripts/setup.sh installs Chromium and runs `npm ci`
here."""
import json
import os
import pathlib
import queue
import shutil
import subprocess
import sys
import threading

import pytest

from peers.util import tail

HERE = pathlib.Path(__file__).resolve().parent
CONFORMANCE = HERE.parent / "conformance"
if str(CONFORMANCE) not in sys.path:
    sys.path.insert(0, str(CONFORMANCE))


CHROMIUM = os.environ.get("ATTACHE_CHROMIUM", "/usr/bin/chromium")
# Seconds for one browser command (a page load, a screenshot).
COMMAND_TIMEOUT = 30


class Browser:
    """One Chromium page behind driver.mjs: one JSON command per line."""

    def __init__(self, workdir):
        node = shutil.which("node")
        missing = [what for what, present in (
            ("node", node),
            (CHROMIUM, os.path.exists(CHROMIUM)),
            ("e2e/dashboard/node_modules/playwright-core",
             (HERE / "node_modules" / "playwright-core").is_dir()),
        ) if not present]
        if missing:
            raise AssertionError(f"missing {', '.join(missing)}: run scripts/setup.sh")
        self.stderr_path = pathlib.Path(workdir) / "driver.stderr"
        self._stderr = open(self.stderr_path, "ab")
        env = dict(os.environ, ATTACHE_CHROMIUM=CHROMIUM)
        for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
            env.pop(proxy, None)
        self.proc = subprocess.Popen(
            [node, str(HERE / "driver.mjs")], cwd=HERE, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._answers = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="driver-reader").start()

    def _read(self):
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def command(self, op, **fields):
        self.proc.stdin.write(json.dumps(dict(fields, op=op)) + "\n")
        self.proc.stdin.flush()
        try:
            line = self._answers.get(timeout=COMMAND_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"browser: no answer to {op} within {COMMAND_TIMEOUT}s\n"
                                 f"{tail(self.stderr_path)}") from None
        if line is None:
            raise AssertionError(f"browser driver exited ({self.proc.poll()}):\n"
                                 f"{tail(self.stderr_path)}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise AssertionError(f"browser: {op} failed: {answer['error']}")
        return answer["value"]

    def goto(self, url):
        return self.command("goto", url=url)

    def evaluate(self, expression):
        return self.command("evaluate", expression=expression)

    def screenshot(self, path):
        return self.command("screenshot", path=str(path))

    def stats(self):
        return self.command("stats")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the driver closes Chromium and exits
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


@pytest.fixture
def browser(tmp_path, request):
    instance = Browser(tmp_path)
    yield instance
    instance.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"--- browser driver stderr ---\n{tail(instance.stderr_path)}")
        for log in sorted(tmp_path.glob("attache*/attache.log")):
            print(f"--- tail of {log} ---\n{tail(log, 60)}")

