"""Tiny HTTP backends for the demo: each answers "<port>" on every path."""
import http.server
import sys
import threading


def serve(port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"hello from 127.0.0.1:{port}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


for port in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(port),), daemon=True).start()
threading.Event().wait()
