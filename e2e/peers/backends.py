"""HTTP backends on 127.0.0.1 that answer with their own name."""
import http.server
import threading


class HttpBackend:
    """A threaded HTTP/1.1 server answering every GET with its name.

    The body is the name and the header X-Backend carries it too, so a test can
    tell which backend served a request that went through Envoy."""

    def __init__(self, name):
        self.name = name
        self.requests = 0
        self._lock = threading.Lock()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with backend._lock:
                    backend.requests += 1
                body = backend.name.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Backend", backend.name)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                         kwargs={"poll_interval": 0.05},
                                         name=f"backend-{name}", daemon=True)
        self._thread.start()

    def stop(self):
        if self._thread is not None:
            self.server.shutdown()
            self.server.server_close()
            self._thread.join(timeout=5)
            self._thread = None

    def __repr__(self):
        return f"HttpBackend({self.name!r}, port={self.port})"
