"""Real peers for attache's end-to-end tests: HTTP backends, Envoy, gRPC servers
and proxyless gRPC xDS clients. Every peer listens and connects on 127.0.0.1 only."""
