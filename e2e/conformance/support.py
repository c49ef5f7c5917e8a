"""Small helpers shared by the conformance tests (catalogs, witnesses, waits)."""
import copy
import importlib.util
import pathlib
import urllib.request

from ads_client import CLUSTER, ENDPOINT, LISTENER, ROUTE, by_name

# e2e/conftest.py is loaded by pytest as a conftest, not as an importable module;
# load its plain helpers (endpoints, wait_until) from the file itself.
_spec = importlib.util.spec_from_file_location(
    "attache_e2e_conftest", pathlib.Path(__file__).resolve().parent.parent / "conftest.py")
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
endpoints = _e2e.endpoints
wait_until = _e2e.wait_until


def catalog(*service_names, base_port=9000):
    """A host-file catalog: each named service with two loopback endpoints."""
    services = {}
    for index, name in enumerate(service_names):
        port = base_port + 10 * index
        services[name] = {"endpoints": endpoints(port, port + 1)}
    return services


def with_changes(services, **changes):
    """A deep copy of services with some replaced (None removes one)."""
    result = copy.deepcopy(services)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def moved(service, port):
    """A copy of a service whose endpoints are replaced by one on `port`."""
    result = copy.deepcopy(service)
    result["endpoints"] = endpoints(port)
    return result


def endpoint_ports(cla):
    """Sorted port numbers of every endpoint of a ClusterLoadAssignment."""
    return sorted(lb.endpoint.address.socket_address.port_value
                  for locality in cla.endpoints for lb in locality.lb_endpoints)


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8", "replace")


class Witness:
    """A second stream that proves the server has processed a host-file edit.

    Absence of a response on the stream under test means something only once
    the server has provably seen the edit: the witness is subscribed to
    something the edit changes and waits for that push.
    """

    def __init__(self, open_stream, attache, node, type_url, resource_names=()):
        self.type_url = type_url
        self.stream = open_stream(attache, node)
        self.stream.subscribe(type_url, resource_names)

    def wait_for(self, predicate, what="the edit"):
        """Receives (and ACKs) pushes until predicate({name: message}) holds."""
        response, _ = self.stream.recv_until(
            lambda r: r.type_url == self.type_url and predicate(by_name(r)))
        return response


def collect_types(stream, type_urls, predicate=None, timeout=None):
    """Receives (and ACKs) responses until one of each of type_urls has come
    (that satisfies predicate(response), if given). Returns {type_url: the first
    such response of that type}."""
    wanted = set(type_urls)
    found = {}

    def done(response):
        if response.type_url in wanted and response.type_url not in found and (
                predicate is None or predicate(response)):
            found[response.type_url] = response
        return set(found) == wanted

    stream.recv_until(done, timeout=timeout)
    return found


__all__ = ["collect_types", "CLUSTER", "ENDPOINT", "LISTENER", "ROUTE", "catalog", "with_changes",
           "moved", "endpoint_ports", "http_get", "Witness",
           "endpoints", "wait_until"]
