"""One workload host of a test cluster, as its own process (so that a test can
SIGKILL or SIGSTOP it): an HTTP server on ADDRESS:8080 and a gRPC echo server
on ADDRESS:9090, both answering NAME.

usage: host.py ADDRESS NAME

Run inside the test's own network namespace only (ADDRESS is local there)."""
import http.server
import signal
import sys
import threading
from concurrent import futures

import grpc

HTTP_PORT = 8080
GRPC_PORT = 9090


def main(argv):
    address, name = argv[1], argv[2]
    body = name.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http_server = http.server.ThreadingHTTPServer((address, HTTP_PORT), Handler)
    http_server.daemon_threads = True
    threading.Thread(target=http_server.serve_forever, daemon=True).start()

    handler = grpc.method_handlers_generic_handler(
        "attache.test.Echo", {"Hello": grpc.unary_unary_rpc_method_handler(lambda r, c: body)})
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=(handler,))
    if not grpc_server.add_insecure_port(f"{address}:{GRPC_PORT}"):
        raise SystemExit(f"cannot bind {address}:{GRPC_PORT}")
    grpc_server.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    grpc_server.stop(None)
    http_server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
