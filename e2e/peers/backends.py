"""HTTP backends on 127.0.0.1 that answer with their own name."""
import http.server
import socket
import threading


class HttpBackend:
    """A threaded HTTP/1.1 server answering every GET with its name.

    The body is the name and the header X-Backend carries it too, so a test can
    tell which backend served a request that went through Envoy."""

    def __init__(self, name):
        self.name = name
        self.requests = 0
        self._lock = threading.Lock()
        self._connections = set()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Each answer leaves in one write (buffered, flushed after do_GET),
            # without waiting for a delayed ACK (up to 40 ms on keep-alive
            # connections), and kill() can never cut one in half.
            wbufsize = -1
            disable_nagle_algorithm = True

            def setup(self):
                super().setup()
                with backend._lock:
                    backend._connections.add(self.connection)

            def finish(self):
                with backend._lock:
                    backend._connections.discard(self.connection)
                super().finish()

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

    def kill(self):
        """Dies like a crashed process: stops listening (new connections are
        refused) and cuts every open connection, keep-alive ones included
        (a request being answered gets all of its answer or none of it).
        stop() alone lets open connections go on being served."""
        self.stop()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __repr__(self):
        return f"HttpBackend({self.name!r}, port={self.port})"
