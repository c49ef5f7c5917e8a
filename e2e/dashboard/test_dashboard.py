"""The admin dashboard (GET / on the admin port) in a real browser: headless
Chromium shows the host file's services, the source and a connected xDS
client, then follows an edit of the host file without reloading the page.

Synchronisation is by polling the page's DOM (wait_until), never by
sleeping. Set ATTACHE_E2E_ARTIFACTS to a folder to keep the screenshot."""
import os
import pathlib
import shutil
import uuid

from ads_client import CLUSTER, ENDPOINT, envoy_node
from peers.util import endpoints, http_get, wait_until

SOURCE = "hosts"  # the source name e2e/conftest.py gives the host file
# Text from outside (here a NACK message) must show as text, never as HTML.
HOSTILE = '<img src=x onerror="window.__pwned=1"><b>bold</b> & rejected'
MARKER = "set-before-the-edit"

# What the page shows, read from its DOM in one go.
SNAPSHOT_JS = r"""(() => {
  const text = (node) => (node ? node.textContent.trim() : null);
  const count = (td) => text(td.querySelector(".count")) ?? text(td);
  const matrix = {};
  for (const tr of document.querySelectorAll("#matrix tbody tr[data-service]")) {
    const sources = {};
    for (const td of tr.querySelectorAll("td[data-source]")) {
      sources[td.dataset.source] = { count: count(td), health: td.dataset.health };
    }
    const total = tr.querySelector("td[data-total]");
    matrix[tr.dataset.service] = {
      total: { count: count(total), health: total.dataset.health }, sources };
  }
  const sources = {};
  for (const tr of document.querySelectorAll("#sources tbody tr[data-source]")) {
    sources[tr.dataset.source] = { state: text(tr.querySelector(".state")) };
  }
  const clients = {};
  for (const tr of document.querySelectorAll("#clients tbody tr[data-type]")) {
    clients[`${tr.dataset.node} ${tr.dataset.type}`] = {
      status: text(tr.querySelector(".sync")), nacks: text(tr.querySelector(".nacks")),
      last_nack: text(tr.querySelector(".nack")) };
  }
  return {
    title: document.title,
    generation: text(document.getElementById("generation")),
    updated: text(document.getElementById("updated")),
    status: text(document.getElementById("status")),
    matrix, sources, clients,
    injected: document.querySelectorAll("#clients img, #clients b").length,
    pwned: window.__pwned ?? null,
    marker: window.__attacheTestMarker ?? null,
  };
})()"""


def cell(snapshot, service, source=SOURCE):
    return snapshot["matrix"][service]["sources"][source]


def wait_for_page(browser, predicate, what, timeout=15):
    """Polls the page until predicate(snapshot) holds; returns the snapshot."""
    last = {}

    def check():
        last["snapshot"] = browser.evaluate(SNAPSHOT_JS)
        return last["snapshot"] if predicate(last["snapshot"]) else None

    try:
        return wait_until(check, timeout=timeout, interval=0.05, what=what)
    except AssertionError as error:
        raise AssertionError(f"{error}\nthe page shows: {last.get('snapshot')}") from None


def test_dashboard_shows_the_mesh_and_follows_changes_live(
        attache_factory, browser, xds, tmp_path):
    services = {
        "echo": {"endpoints": endpoints(9101, 9102)},
        "billing": {"endpoints": (endpoints(9201, health="healthy")
                                  + endpoints(9202, health="draining"))},
    }
    attache = attache_factory(services)

    # The page: one HTML document on the admin port.
    status, body = http_get(attache.admin_url + "/")
    assert status == 200 and "<title>attache dashboard</title>" in body
    page = browser.goto(attache.admin_url + "/")
    assert page["status"] == 200, page
    assert page["title"] == "attache dashboard"
    assert page["content_type"] == "text/html; charset=utf-8"

    # The host file's services with their endpoint counts, the source synced.
    first = wait_for_page(browser, lambda s: (
        set(s["matrix"]) == {"echo", "billing"}
        and s["sources"].get(SOURCE, {}).get("state") == "synced"), "services and source")
    assert first["title"] == "attache dashboard"
    assert first["status"] == "live"
    assert first["generation"].isdigit(), first
    assert cell(first, "echo") == {"count": "2", "health": "ok"}
    assert cell(first, "billing") == {"count": "2", "health": "warn"}
    assert first["matrix"]["billing"]["total"] == {"count": "2", "health": "warn"}

    # A client: CDS ACKed, EDS NACKed with a message full of HTML.
    node_id = f"dashboard-envoy-{uuid.uuid4().hex[:8]}"
    stream = xds(attache, envoy_node(node_id=node_id))
    stream.subscribe(CLUSTER)
    stream.send(ENDPOINT, ["echo"])
    stream.nack(stream.recv(ENDPOINT), message=HOSTILE)
    clients = wait_for_page(browser, lambda s: (
        s["clients"].get(f"{node_id} CDS", {}).get("status") == "in sync"
        and s["clients"].get(f"{node_id} EDS", {}).get("nacks") == "1"), "the client")
    eds = clients["clients"][f"{node_id} EDS"]
    assert eds == {"status": "NACKed", "nacks": "1", "last_nack": HOSTILE}, eds
    assert clients["injected"] == 0 and clients["pwned"] is None, clients

    # Edit the host file: the page must follow without being reloaded.
    browser.evaluate(f"window.__attacheTestMarker = {MARKER!r}")
    navigations = browser.stats()["navigations"]
    services["echo"]["endpoints"] += endpoints(9103)
    services["billing"]["endpoints"][0]["health"] = "unhealthy"
    services["payments"] = {"endpoints": endpoints(9301)}
    attache.write_hosts(services)
    after = wait_for_page(browser, lambda s: (
        cell(s, "echo")["count"] == "3" and "payments" in s["matrix"]
        and cell(s, "billing")["health"] == "bad"), "the edit of the host file")
    assert cell(after, "echo") == {"count": "3", "health": "ok"}
    assert cell(after, "payments") == {"count": "1", "health": "ok"}
    assert cell(after, "billing") == {"count": "2", "health": "bad"}
    assert int(after["generation"]) > int(first["generation"]), (first, after)
    assert after["marker"] == MARKER, "the page was reloaded"
    stats = browser.stats()
    assert stats["navigations"] == navigations == 1, stats
    assert stats["origins"] == [attache.admin_url], stats  # nothing from elsewhere
    assert stats["errors"] == [] and stats["failed"] == [], stats

    # A screenshot, for people.
    path = tmp_path / "dashboard.png"
    browser.screenshot(path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, len(data)
    artifacts = os.environ.get("ATTACHE_E2E_ARTIFACTS")
    if artifacts:
        pathlib.Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, pathlib.Path(artifacts) / "dashboard.png")
    print(f"screenshot: {path}")
