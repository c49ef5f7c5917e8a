"""Fixtures for the end-to-end tests of attache's Kubernetes sources.

Real kube-apiserver + etcd pairs (tools/kube_cluster.py, built by
tools/build.sh), attache started with `type: kubernetes` sources pointing at
them, and raw ADS streams decoded with the official xds-protos schemas.

The API servers refuse loopback addresses in EndpointSlices, so endpoints use
documentation addresses (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) as
DATA ONLY: nothing in these tests ever sends a packet to them.
"""
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for extra in (HERE, ROOT / "tools", ROOT / "e2e" / "conformance"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from kube_cluster import KubeCluster, ensure_binaries  # noqa: E402
from kube_support import AdsRecorder, start_attache  # noqa: E402
from peers.util import tail  # noqa: E402


@pytest.fixture(scope="session")
def kube_bin():
    """The etcd, kube-apiserver and kubectl binaries (tools/build.sh; instant when built)."""
    return ensure_binaries()


class ClusterSet:
    """Named KubeClusters sharing one folder; all SIGKILLed at teardown."""

    def __init__(self, base: pathlib.Path, bin_dir):
        self.base = base
        self.bin_dir = bin_dir
        self.clusters = {}

    def make(self, name, start=True, **kwargs):
        cluster = KubeCluster(self.base / name, name=name, bin_dir=self.bin_dir, **kwargs)
        self.clusters[name] = cluster
        return cluster.start() if start else cluster

    def kill_all(self):
        for cluster in self.clusters.values():
            cluster.kill()


@pytest.fixture(scope="module")
def clusters(tmp_path_factory, kube_bin, request):
    """make(name, start=True, **KubeCluster kwargs) -> KubeCluster, per module."""
    made = ClusterSet(tmp_path_factory.mktemp("kube"), kube_bin)
    yield made
    made.kill_all()


@pytest.fixture(scope="module")
def attaches(tmp_path_factory):
    """make(sources, **options) -> a started attache (e2e/conftest.py's Attache)
    whose sources are the given kubernetes sources; all stopped at teardown."""
    base = tmp_path_factory.mktemp("attache")
    made = []

    def make(sources, **options):
        instance = start_attache(base / f"attache{len(made)}", sources, **options)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.stop()


@pytest.fixture
def ads():
    """open(attache, names) -> AdsRecorder subscribed to CDS (all) and EDS of names;
    closed at the end of the test."""
    opened = []

    def open_recorder(attache, eds_names):
        recorder = AdsRecorder(attache.xds_address, eds_names)
        opened.append(recorder)
        return recorder

    yield open_recorder
    for recorder in opened:
        recorder.close()


@pytest.fixture(autouse=True)
def _logs_on_failure(request, tmp_path_factory):
    """On a failed test, print the tail of every attache and API server log of the run."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    base = tmp_path_factory.getbasetemp()
    seen = set()
    for pattern, lines in (("attache*/attache*/attache.log", 80), ("kube*/*/kube-apiserver.log", 8)):
        for log in sorted(base.glob(pattern)):
            if log.resolve() in seen:  # pytest's "...current" symlinks
                continue
            seen.add(log.resolve())
            print(f"--- tail of {log.resolve()} ---\n{tail(log, lines)}")
