"""A raw incremental (delta) xDS client for wire-level conformance tests.

The delta counterpart of ads_client.XdsStream: it sends exactly the
DeltaDiscoveryRequests a test builds (subscribe and unsubscribe lists,
initial_resource_versions, response_nonce, error_detail, resource locators)
and hands back every DeltaDiscoveryResponse as it arrived, decoded with the
official Envoy schemas from `xds-protos`. The stream plumbing (request
queue, reader thread, close) is XdsStream's; what differs is the messages.

    stream = DeltaStream(attache.xds_address, node=envoy_node())
    response = stream.subscribe(CLUSTER, ["*"])   # send, receive, ACK
    resources_of(response)                        # {name: decoded Cluster}
    removed(response)                             # set of removed_resources
    stream.send(ENDPOINT, subscribe=["alpha"], unsubscribe=["beta"])
    stream.expect_nothing()

The stream remembers what the client holds per type ({name: version}, from
every response handed out), as a real client would, for
initial_resource_versions on a reconnect: `stream.held[CLUSTER]`.
"""
import queue
import threading
import time

import grpc
from google.rpc import status_pb2

from ads_client import (CLUSTER, ENDPOINT, LISTENER, MAX_MESSAGE, MESSAGE_CLASS, QUIET_WINDOW,
                        RECV_TIMEOUT, ROUTE, SHORT, NoResponse, StreamClosed, XdsStream,
                        _any_name, envoy_node)
from envoy.service.cluster.v3 import cds_pb2_grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.endpoint.v3 import eds_pb2_grpc
from envoy.service.listener.v3 import lds_pb2_grpc
from envoy.service.route.v3 import rds_pb2_grpc

RESOURCE_TYPE = "type.googleapis.com/envoy.service.discovery.v3.Resource"
WILDCARD = "*"

TTL_FEATURE = "xds.config.supports-resource-ttl"
RESOURCE_IN_SOTW_FEATURE = "xds.config.resource-in-sotw"


# --- decoding ------------------------------------------------------------------
def wrapped_resources(response, type_url=None):
    """{name: envoy.service.discovery.v3.Resource} of a delta response.

    Asserts what item C26 requires of every Resource: a non-empty name and
    version, no name twice, and (unless it is a heartbeat, without body) a
    body that is an Any of exactly the response's type whose own name is the
    Resource's name. Asserts the response's type_url (the expected one, if
    given) is one of the xDS types.
    """
    if type_url is not None:
        assert response.type_url == type_url, (
            f"response type_url {response.type_url!r}, expected {type_url!r}")
    assert response.type_url in MESSAGE_CLASS, (
        f"response type_url {response.type_url!r} is not one of the xDS types")
    result = {}
    for index, resource in enumerate(response.resources):
        assert resource.name, f"resource {index} of {describe(response)} has no name"
        assert resource.version, f"resource {resource.name!r} has no version"
        assert resource.name not in result, (
            f"{resource.name!r} appears twice in one response")
        if resource.HasField("resource"):
            assert resource.resource.type_url == response.type_url, (
                f"resource {resource.name!r} of a {response.type_url} response is an "
                f"Any of {resource.resource.type_url!r}")
            message = decode(resource.resource, response.type_url)
            assert _any_name(message) == resource.name, (
                f"Resource named {resource.name!r} holds a resource named "
                f"{_any_name(message)!r}")
        result[resource.name] = resource
    return result


def decode(any_, type_url):
    message = MESSAGE_CLASS[type_url]()
    message.ParseFromString(any_.value)
    return message


def resources_of(response, type_url=None):
    """{name: decoded message} of the resources of a response that have a body."""
    return {name: decode(resource.resource, response.type_url)
            for name, resource in wrapped_resources(response, type_url).items()
            if resource.HasField("resource")}


def versions(response, type_url=None):
    """{name: per-resource version} of every Resource of a response."""
    return {name: resource.version
            for name, resource in wrapped_resources(response, type_url).items()}


def removed(response):
    """The set of removed_resources; asserts no name is listed twice."""
    listed = list(response.removed_resources)
    assert len(listed) == len(set(listed)), f"a name removed twice: {listed}"
    return set(listed)


def is_heartbeat(response):
    """A response whose every Resource has no body (and that removes nothing)."""
    return (len(response.resources) > 0 and not response.removed_resources
            and all(not r.HasField("resource") for r in response.resources))


def describe(response):
    if isinstance(response, StreamClosed):
        return str(response)
    parts = []
    for resource in response.resources:
        body = "" if resource.HasField("resource") else "(no body)"
        ttl = f"(ttl {resource.ttl.ToJsonString()})" if resource.HasField("ttl") else ""
        parts.append(f"{resource.name}@{resource.version[:8]}{body}{ttl}")
    return (f"delta {SHORT.get(response.type_url, response.type_url)} response "
            f"nonce={response.nonce!r} resources={parts} "
            f"removed={list(response.removed_resources)}")


# --- the stream ----------------------------------------------------------------
DELTA_METHODS = {
    "ads": lambda channel: ads_pb2_grpc.AggregatedDiscoveryServiceStub(
        channel).DeltaAggregatedResources,
    "cds": lambda channel: cds_pb2_grpc.ClusterDiscoveryServiceStub(channel).DeltaClusters,
    "eds": lambda channel: eds_pb2_grpc.EndpointDiscoveryServiceStub(channel).DeltaEndpoints,
    "lds": lambda channel: lds_pb2_grpc.ListenerDiscoveryServiceStub(channel).DeltaListeners,
    "rds": lambda channel: rds_pb2_grpc.RouteDiscoveryServiceStub(channel).DeltaRoutes,
}


class DeltaStream(XdsStream):
    """One delta xDS stream: ADS (service="ads") or a per-type Delta service
    ("cds", "eds", "lds", "rds"). Reuses XdsStream's request queue, reader
    thread, close() and expect_closed(); sends and decodes delta messages."""

    def __init__(self, address, node=None, service="ads", channel_options=()):
        # Not XdsStream.__init__: it would open a state-of-the-world call.
        options = [("grpc.max_receive_message_length", MAX_MESSAGE),
                   ("grpc.max_send_message_length", MAX_MESSAGE)]
        options.extend(channel_options)
        if service not in DELTA_METHODS:
            raise ValueError(f"unknown service {service!r}")
        self.address = address
        self.service = service
        self.node = node if node is not None else envoy_node()
        self.channel = grpc.insecure_channel(address, options=options)
        self._requests = queue.Queue()
        self._incoming = queue.Queue()
        self._backlog = []
        self.received = []          # every response handed out, in order
        self.wire_order = []        # every response in the order it came off the wire
        self.sent = []              # every request sent, in order
        self.node_sent = False
        self.held = {}              # type_url -> {name: version} the client holds
        self.latest_nonce = {}      # type_url -> nonce of the latest response handed out
        self.closed = None
        self._call = DELTA_METHODS[service](self.channel)(self._request_iterator())
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- sending ----------------------------------------------------------------
    def send(self, type_url, subscribe=(), unsubscribe=(), initial_resource_versions=None,
             response_nonce="", error_detail=None, node=None, with_node=None,
             locators_subscribe=(), locators_unsubscribe=()):
        """Sends one DeltaDiscoveryRequest exactly as described.

        Nothing is filled in: response_nonce is empty unless given.
        error_detail: a message string (sent as google.rpc.Status code 3) or a
        Status. The node goes on the first request of the stream unless
        with_node says otherwise; node overrides it. locators_*: ResourceLocator
        messages or (name, {dynamic parameter: value}) pairs.
        """
        request = discovery_pb2.DeltaDiscoveryRequest(
            type_url=type_url, response_nonce=response_nonce,
            resource_names_subscribe=list(subscribe),
            resource_names_unsubscribe=list(unsubscribe))
        for name, version in (initial_resource_versions or {}).items():
            request.initial_resource_versions[name] = version
            # What a client lists there is what it holds.
            self.held.setdefault(type_url, {})[name] = version
        for field, locators in ((request.resource_locators_subscribe, locators_subscribe),
                                (request.resource_locators_unsubscribe, locators_unsubscribe)):
            for locator in locators:
                if not isinstance(locator, discovery_pb2.ResourceLocator):
                    name, parameters = locator
                    locator = discovery_pb2.ResourceLocator(name=name)
                    for key, value in (parameters or {}).items():
                        locator.dynamic_parameters[key] = value
                field.append(locator)
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
        self.sent.append(request)
        self._requests.put(request)
        return request

    def ack(self, response, subscribe=(), unsubscribe=(), type_url=None):
        """ACKs a response by its nonce (with subscription changes, if given)."""
        return self.send(response.type_url if type_url is None else type_url,
                         subscribe, unsubscribe, response_nonce=response.nonce)

    def nack(self, response, message="rejected by the conformance test", subscribe=(),
             unsubscribe=(), type_url=None):
        """NACKs a response: its nonce and an error_detail."""
        return self.send(response.type_url if type_url is None else type_url,
                         subscribe, unsubscribe, response_nonce=response.nonce,
                         error_detail=message)

    # -- receiving --------------------------------------------------------------
    def _hand_out(self, response):
        self.received.append(response)
        self.latest_nonce[response.type_url] = response.nonce
        held = self.held.setdefault(response.type_url, {})
        for resource in response.resources:
            held[resource.name] = resource.version
        for name in response.removed_resources:
            held.pop(name, None)
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
                    f"no delta {SHORT.get(type_url, 'xDS') if type_url else 'xDS'} "
                    f"response within {timeout}s; backlog: "
                    f"{[describe(r) for r in self._backlog]}")
            _, response = item
            if isinstance(response, StreamClosed):
                self.closed = response
                raise response
            if type_url is None or response.type_url == type_url:
                return self._hand_out(response)
            self._backlog.append(response)

    def expect_nothing(self, type_url=None, timeout=None, allow=None):
        """Asserts that no response (of type_url, if given) arrives within timeout
        (at most a second by default). allow(response) -> bool may accept some
        responses (they go to the backlog). A closed stream fails too."""
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

    def recv_until(self, predicate, timeout=None, ack=True):
        """Receives responses (ACKing each, unless ack=False) until one satisfies
        predicate. Returns (that response, every response received on the way)."""
        timeout = RECV_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoResponse(f"no matching delta response within {timeout}s; got "
                                 f"{[describe(r) for r in seen]}")
            try:
                response = self.recv(timeout=remaining)
            except NoResponse:
                raise NoResponse(f"no matching delta response within {timeout}s; got "
                                 f"{[describe(r) for r in seen]}") from None
            seen.append(response)
            if ack:
                self.ack(response)
            if predicate(response):
                return response, seen

    def drain(self, type_url=None, window=None, ack=True):
        """Receives (and ACKs) whatever responses (of type_url) come within
        window of each other; returns them."""
        window = QUIET_WINDOW if window is None else window
        got = []
        while True:
            try:
                response = self.recv(type_url, timeout=window)
            except NoResponse:
                return got
            if ack:
                self.ack(response)
            got.append(response)

    # -- conveniences -----------------------------------------------------------
    def subscribe(self, type_url, names=(), unsubscribe=(), ack=True, **fields):
        """Sends a request for type_url subscribing names, receives the response
        of that type and ACKs it (unless ack=False). Returns the response."""
        self.send(type_url, names, unsubscribe, **fields)
        response = self.recv(type_url)
        if ack:
            self.ack(response)
        return response


__all__ = ["CLUSTER", "ENDPOINT", "LISTENER", "ROUTE", "RESOURCE_TYPE", "WILDCARD",
           "TTL_FEATURE", "RESOURCE_IN_SOTW_FEATURE", "DeltaStream", "wrapped_resources",
           "resources_of", "versions", "removed", "is_heartbeat", "describe", "decode"]
