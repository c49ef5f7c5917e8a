"""A raw xDS (state of the world) client for wire-level conformance tests.

It sends exactly the DiscoveryRequests a test builds and hands back every
DiscoveryResponse as it arrived, decoded with the official Envoy schemas from the
`xds-protos` package. Nothing here is clever on purpose: a test states every
field that matters (nonce, version_info, resource_names, error_detail).

    stream = XdsStream(attache.xds_address, node=envoy_node())
    stream.send(CLUSTER)                  # node goes on the first request only
    response = stream.recv(CLUSTER)       # raises if nothing arrives in time
    clusters = by_name(response)          # {name: envoy.config.cluster.v3.Cluster}
    stream.ack(response)
    stream.expect_nothing()               # a plain ACK is not answered
"""
import os
import queue
import threading
import time

import grpc
from google.rpc import status_pb2

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
# Imported for their side effect: they register the filter types, so an Any
# holding one can be unpacked.
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2)
# The typed configs attache puts inside Clusters, so that json_format and
# Any.Unpack know them.
from envoy.extensions.load_balancing_policies.least_request.v3 import (  # noqa: F401
    least_request_pb2)
from envoy.extensions.load_balancing_policies.ring_hash.v3 import ring_hash_pb2  # noqa: F401
from envoy.extensions.load_balancing_policies.round_robin.v3 import (  # noqa: F401
    round_robin_pb2)
from envoy.extensions.load_balancing_policies.wrr_locality.v3 import (  # noqa: F401
    wrr_locality_pb2)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from envoy.service.cluster.v3 import cds_pb2_grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.endpoint.v3 import eds_pb2_grpc
from envoy.service.listener.v3 import lds_pb2_grpc
from envoy.service.route.v3 import rds_pb2_grpc

PREFIX = "type.googleapis.com/"
CLUSTER = PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = PREFIX + "envoy.config.route.v3.RouteConfiguration"
HCM = PREFIX + ("envoy.extensions.filters.network.http_connection_manager.v3."
                "HttpConnectionManager")
ROUTER = PREFIX + "envoy.extensions.filters.http.router.v3.Router"
ALL_TYPES = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
SHORT = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS"}

MESSAGE_CLASS = {
    CLUSTER: cluster_pb2.Cluster,
    ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    LISTENER: listener_pb2.Listener,
    ROUTE: route_pb2.RouteConfiguration,
}

# The per-type services and the type each one serves.
SERVICE_TYPE = {"cds": CLUSTER, "eds": ENDPOINT, "lds": LISTENER, "rds": ROUTE}

GRPC_FEATURE = "envoy.lb.does_not_support_overprovisioning"

# Seconds to wait for a response that must come. Generous: a slow CI machine
# must not turn a correct server red. Override with ATTACHE_XDS_TIMEOUT.
RECV_TIMEOUT = float(os.environ.get("ATTACHE_XDS_TIMEOUT", "5"))
# Window for asserting that no response comes (absence cannot be polled).
QUIET_WINDOW = float(os.environ.get("ATTACHE_XDS_QUIET", "0.7"))

MAX_MESSAGE = 256 * 1024 * 1024


def envoy_node(node_id="envoy-test", cluster="conformance", zone="zone-a"):
    """A node as an Envoy proxy sends it."""
    node = base_pb2.Node(id=node_id, cluster=cluster, user_agent_name="envoy",
                         user_agent_version="1.40.0")
    node.locality.region = "region-1"
    node.locality.zone = zone
    return node


def grpc_node(node_id="grpc-test", cluster="conformance", zone="zone-a"):
    """A node as a proxyless gRPC client (grpcio) sends it."""
    node = base_pb2.Node(id=node_id, cluster=cluster, user_agent_name="gRPC Python",
                         user_agent_version="1.85.3")
    node.locality.zone = zone
    node.client_features.extend([GRPC_FEATURE])
    return node


class StreamClosed(Exception):
    """The server ended the stream (with a status, possibly OK)."""

    def __init__(self, code, details):
        super().__init__(f"stream closed by server: {code} {details!r}")
        self.code = code
        self.details = details


class NoResponse(AssertionError):
    """No response arrived within the timeout."""


def _any_name(message):
    if isinstance(message, endpoint_pb2.ClusterLoadAssignment):
        return message.cluster_name
    return message.name


def resources(response, type_url=None):
    """Decodes every Any of a response with its official message class.

    Asserts that the response carries a type_url (the expected one, if given) and
    that every Any inside carries exactly that same type_url.
    """
    if type_url is not None:
        assert response.type_url == type_url, (
            f"response type_url {response.type_url!r}, expected {type_url!r}")
    assert response.type_url in MESSAGE_CLASS, (
        f"response type_url {response.type_url!r} is not one of the xDS types")
    cls = MESSAGE_CLASS[response.type_url]
    decoded = []
    for index, any_ in enumerate(response.resources):
        assert any_.type_url == response.type_url, (
            f"resource {index} of a {response.type_url} response is an Any of "
            f"{any_.type_url!r}")
        message = cls()
        message.ParseFromString(any_.value)
        decoded.append(message)
    return decoded


def names(response, type_url=None):
    """Names of the resources of a response, in order, duplicates kept."""
    return [_any_name(message) for message in resources(response, type_url)]


def by_name(response, type_url=None):
    """{name: message} of a response; asserts that no name appears twice."""
    decoded = resources(response, type_url)
    result = {}
    for message in decoded:
        name = _any_name(message)
        assert name not in result, f"{name!r} appears twice in one response"
        result[name] = message
    return result


def raw_by_name(response, type_url=None):
    """{name: serialized bytes of the resource as sent}."""
    decoded = resources(response, type_url)
    return {_any_name(m): any_.value for m, any_ in zip(decoded, response.resources)}


def describe(response):
    if isinstance(response, StreamClosed):
        return str(response)
    try:
        listed = names(response)
    except AssertionError as error:
        listed = f"<undecodable: {error}>"
    return (f"{SHORT.get(response.type_url, response.type_url)} response "
            f"version={response.version_info!r} nonce={response.nonce!r} "
            f"resources={listed}")


class XdsStream:
    """One xDS stream: ADS (service="ads") or a per-type service ("cds", ...)."""

    def __init__(self, address, node=None, service="ads", channel_options=()):
        options = [("grpc.max_receive_message_length", MAX_MESSAGE),
                   ("grpc.max_send_message_length", MAX_MESSAGE)]
        options.extend(channel_options)
        self.address = address
        self.service = service
        self.node = node if node is not None else envoy_node()
        self.channel = grpc.insecure_channel(address, options=options)
        self._requests = queue.Queue()
        self._incoming = queue.Queue()
        self._backlog = []          # responses read from the wire, not yet handed out
        self.received = []          # every response handed out, in order
        self.wire_order = []        # every response in the order it came off the wire
        self.sent = []              # every request sent, in order
        self.node_sent = False
        self.subscriptions = {}     # type_url -> names of the last request of that type
        self.latest_nonce = {}      # type_url -> nonce of the latest response handed out
        self.accepted_version = {}  # type_url -> version_info of the last ACKed response
        self.closed = None
        if service == "ads":
            method = ads_pb2_grpc.AggregatedDiscoveryServiceStub(
                self.channel).StreamAggregatedResources
        elif service == "cds":
            method = cds_pb2_grpc.ClusterDiscoveryServiceStub(self.channel).StreamClusters
        elif service == "eds":
            method = eds_pb2_grpc.EndpointDiscoveryServiceStub(self.channel).StreamEndpoints
        elif service == "lds":
            method = lds_pb2_grpc.ListenerDiscoveryServiceStub(self.channel).StreamListeners
        elif service == "rds":
            method = rds_pb2_grpc.RouteDiscoveryServiceStub(self.channel).StreamRoutes
        else:
            raise ValueError(f"unknown service {service!r}")
        self._call = method(self._request_iterator())
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- plumbing ---------------------------------------------------------------
    def _request_iterator(self):
        while True:
            request = self._requests.get()
            if request is None:
                return
            yield request

    def _read(self):
        try:
            for response in self._call:
                self.wire_order.append(response)
                self._incoming.put((time.monotonic(), response))
            self._incoming.put((time.monotonic(),
                                StreamClosed(grpc.StatusCode.OK, "stream ended")))
        except grpc.RpcError as error:
            self._incoming.put((time.monotonic(), StreamClosed(error.code(), error.details())))
        except Exception as error:  # pragma: no cover - a bug in the client itself
            self._incoming.put((time.monotonic(), StreamClosed(None, repr(error))))

    def close(self):
        self._requests.put(None)
        self._call.cancel()
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sending ----------------------------------------------------------------
    def send(self, type_url, resource_names=(), version_info=None, response_nonce=None,
             error_detail=None, node=None, with_node=None):
        """Sends one DiscoveryRequest exactly as described.

        version_info / response_nonce: None means what a real client would send
        (the last ACKed version and the latest nonce seen for this type); a string,
        even empty, is sent as given. error_detail: a message string (sent as a
        google.rpc.Status with code 3) or a Status. The node goes on the first
        request of the stream unless with_node says otherwise; node overrides it.
        """
        if version_info is None:
            version_info = self.accepted_version.get(type_url, "")
        if response_nonce is None:
            response_nonce = self.latest_nonce.get(type_url, "")
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url, version_info=version_info, response_nonce=response_nonce,
            resource_names=list(resource_names))
        if with_node is None:
            with_node = not self.node_sent
        if node is not None:
            request.node.CopyFrom(node)
        elif with_node:
            request.node.CopyFrom(self.node)
        if request.HasField("node"):
            self.node_sent = True
        if error_detail is not None:
            if isinstance(error_detail, str):
                error_detail = status_pb2.Status(code=3, message=error_detail)
            request.error_detail.CopyFrom(error_detail)
        self.subscriptions[type_url] = list(resource_names)
        self.sent.append(request)
        self._requests.put(request)
        return request

    def ack(self, response, resource_names=None):
        """ACKs a response: its version and nonce, the same names as before."""
        type_url = self._type_of(response)
        if resource_names is None:
            resource_names = self.subscriptions.get(type_url, [])
        self.accepted_version[type_url] = response.version_info
        return self.send(type_url, resource_names, version_info=response.version_info,
                         response_nonce=response.nonce)

    def nack(self, response, message="rejected by the conformance test",
             resource_names=None, version_info=None):
        """NACKs a response: its nonce, the last accepted version, an error_detail."""
        type_url = self._type_of(response)
        if resource_names is None:
            resource_names = self.subscriptions.get(type_url, [])
        if version_info is None:
            version_info = self.accepted_version.get(type_url, "")
        return self.send(type_url, resource_names, version_info=version_info,
                         response_nonce=response.nonce, error_detail=message)

    def _type_of(self, response):
        # On a per-type stream the test may have sent an empty type_url; the
        # subscription is kept under the key it used.
        if response.type_url in self.subscriptions or self.service == "ads":
            return response.type_url
        if "" in self.subscriptions:
            return ""
        return response.type_url

    # -- receiving --------------------------------------------------------------
    def _take(self, timeout):
        """Next (time, item) from the wire, or None on timeout."""
        try:
            return self._incoming.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def _hand_out(self, response):
        self.received.append(response)
        self.latest_nonce[response.type_url] = response.nonce
        if self.service != "ads" and "" in self.subscriptions:
            self.latest_nonce[""] = response.nonce
        return response

    def recv(self, type_url=None, timeout=None):
        """The next response (of type_url, if given; others wait in a backlog).

        Raises StreamClosed if the server ended the stream, NoResponse on timeout.
        """
        timeout = RECV_TIMEOUT if timeout is None else timeout
        for index, response in enumerate(self._backlog):
            if type_url is None or response.type_url == type_url:
                del self._backlog[index]
                return self._hand_out(response)
        if self.closed is not None:
            raise self.closed
        deadline = time.monotonic() + timeout
        while True:
            item = self._take(deadline - time.monotonic())
            if item is None:
                raise NoResponse(
                    f"no {SHORT.get(type_url, 'xDS') if type_url else 'xDS'} response "
                    f"within {timeout}s; backlog: {[describe(r) for r in self._backlog]}")
            _, response = item
            if isinstance(response, StreamClosed):
                self.closed = response
                raise response
            if type_url is None or response.type_url == type_url:
                return self._hand_out(response)
            self._backlog.append(response)

    def recv_timed(self, type_url=None, timeout=None):
        """Like recv, also returns the monotonic time the response was read."""
        timeout = RECV_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            item = self._take(deadline - time.monotonic())
            if item is None:
                raise NoResponse(f"no response within {timeout}s")
            arrived, response = item
            if isinstance(response, StreamClosed):
                self.closed = response
                raise response
            if type_url is None or response.type_url == type_url:
                return arrived, self._hand_out(response)
            self._backlog.append(response)

    def expect_nothing(self, type_url=None, timeout=None, allow=None):
        """Asserts that no response (of type_url, if given) arrives within timeout.

        allow(response) -> bool may accept some responses (they go to the backlog).
        A stream closed by the server fails the assertion too.
        """
        timeout = QUIET_WINDOW if timeout is None else timeout

        def offending(response):
            if type_url is not None and response.type_url != type_url:
                return False
            return not (allow and allow(response))

        for response in self._backlog:
            assert not offending(response), f"unexpected {describe(response)}"
        if self.closed is not None:
            raise AssertionError(f"stream already closed: {self.closed}")
        deadline = time.monotonic() + timeout
        while True:
            item = self._take(deadline - time.monotonic())
            if item is None:
                return
            _, response = item
            if isinstance(response, StreamClosed):
                self.closed = response
                raise AssertionError(f"expected silence, but {response}")
            assert not offending(response), f"unexpected {describe(response)}"
            self._backlog.append(response)

    def expect_closed(self, timeout=None):
        """Waits for the server to end the stream; returns the StreamClosed."""
        timeout = RECV_TIMEOUT if timeout is None else timeout
        if self.closed is not None:
            return self.closed
        deadline = time.monotonic() + timeout
        while True:
            item = self._take(deadline - time.monotonic())
            if item is None:
                raise NoResponse(f"the stream stayed open for {timeout}s")
            _, response = item
            if isinstance(response, StreamClosed):
                self.closed = response
                return response
            self._backlog.append(response)

    def wire_index(self, response):
        """Position of a response (the object handed out) in arrival order."""
        for index, candidate in enumerate(self.wire_order):
            if candidate is response:
                return index
        raise ValueError("not a response of this stream")

    # -- conveniences -----------------------------------------------------------
    def subscribe(self, type_url, resource_names=(), ack=True, **fields):
        """Sends a request for type_url (as a real client would), receives the
        response of that type and ACKs it (unless ack=False). Returns the response."""
        self.send(type_url, resource_names, **fields)
        response = self.recv(type_url)
        if ack:
            self.ack(response)
        return response

    def recv_until(self, predicate, timeout=None, ack=True):
        """Receives responses (ACKing each, unless ack=False) until one satisfies
        predicate. Returns (that response, every response received on the way)."""
        timeout = RECV_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoResponse(
                    f"no matching response within {timeout}s; got "
                    f"{[describe(r) for r in seen]}")
            response = self.recv(timeout=remaining)
            seen.append(response)
            if ack:
                self.ack(response)
            if predicate(response):
                return response, seen
