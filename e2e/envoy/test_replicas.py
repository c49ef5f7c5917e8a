"""Two attache replicas with the same sources, behind one xds_cluster: an
Envoy that moves from one to the other keeps everything it holds. Versions
are content hashes, so the second replica names the same state with the same
versions, and Envoy modifies no cluster or listener."""
import types

from peers.grpc_peers import clients_of_node
from peers.util import endpoints, wait_until
from test_envoy import (envoy_state, failures, request_loops,  # noqa: F401 (a fixture)
                        wait_for_endpoints, wait_for_traffic_to)


def envoy_on_two_replicas(attache_factory, envoy_factory, backend_factory):
    """Two replicas serving the same host file behind one Envoy's xds_cluster,
    with traffic flowing. Returns (backend, envoy, replicas, serving) where
    `serving()` is the replica Envoy is connected to, once exactly one has it."""
    backend = backend_factory("echo-a")
    services = {"echo": {"endpoints": endpoints(backend.port)},
                "billing": {"connect_timeout": "250ms", "endpoints": endpoints(backend.port)}}
    replicas = [attache_factory(services), attache_factory(services)]
    envoy = envoy_factory(types.SimpleNamespace(xds_port=[r.xds_port for r in replicas]))
    wait_for_endpoints(envoy, "echo", [backend])
    wait_for_traffic_to(envoy, backend)

    def serving():
        having = [r for r in replicas if clients_of_node(r.admin_url, envoy.node_id)]
        return having[0] if len(having) == 1 else None
    wait_until(serving, what="one replica serving envoy")
    wait_until(lambda: envoy.stat("control_plane.connected_state") == 1, what="envoy connected")
    return backend, envoy, replicas, serving


def resynced_from(envoy, replica, successes):
    """Envoy is connected to `replica` and accepted CDS and EDS again since
    `successes` (its update_success stats before)."""
    stats = envoy.stats("connected_state|update_success")
    return (clients_of_node(replica.admin_url, envoy.node_id)
            and stats["control_plane.connected_state"] == 1
            and stats["cluster_manager.cds.update_success"]
            > successes["cluster_manager.cds.update_success"]
            and stats["cluster.echo.update_success"] > successes["cluster.echo.update_success"])


def test_envoy_moves_between_replicas_without_churn(attache_factory, envoy_factory,
                                                    backend_factory, request_loops):
    backend, envoy, replicas, serving = envoy_on_two_replicas(
        attache_factory, envoy_factory, backend_factory)
    first = serving()
    other = next(r for r in replicas if r is not first)
    before = envoy_state(envoy)
    successes = envoy.stats("update_success")

    loop = request_loops(envoy)
    loop.wait_for(lambda results: len(results) >= 10, what="10 requests before the move")
    first.stop()

    wait_until(lambda: resynced_from(envoy, other, successes), timeout=30,
               what="envoy on the other replica, with CDS and EDS accepted from it")
    loop.wait_for(lambda results: len(results) >= 30, what="30 requests in all")
    results = loop.stop()

    after = envoy_state(envoy)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert after["cluster_modified"] == before["cluster_modified"]
    assert after["listener_modified"] == before["listener_modified"]
    assert not failures(results, {backend.name}), failures(results, {backend.name})[:10]
