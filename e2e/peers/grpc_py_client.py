"""A proxyless gRPC xDS client on grpcio, run as its own process.

usage: grpc_py_client.py TARGET COUNT [INTERVAL_MS] [MAX_SECONDS]

Calls /attache.test.Echo/Hello on TARGET (e.g. xds:///echo) COUNT times (0: until
SIGTERM or MAX_SECONDS), INTERVAL_MS apart, and prints one line per call: the
reply (the answering server's name) or `ERROR <code> <message>`.
GRPC_XDS_BOOTSTRAP must name the bootstrap file; it is read when grpc first
creates an xds channel, which is why every client is a fresh process."""
import signal
import sys
import time

import grpc


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    target = argv[1]
    count = int(argv[2])
    interval = (int(argv[3]) if len(argv) > 3 else 10) / 1000.0
    max_seconds = float(argv[4]) if len(argv) > 4 else 120.0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    deadline = time.monotonic() + max_seconds
    channel = grpc.insecure_channel(target)
    hello = channel.unary_unary("/attache.test.Echo/Hello")  # bytes in, bytes out
    done = 0
    while not stop and (count == 0 or done < count) and time.monotonic() < deadline:
        try:
            reply = hello(b"hello", timeout=5)
            print(reply.decode(errors="replace"), flush=True)
        except grpc.RpcError as error:
            details = (error.details() or "").replace("\n", " ")
            print(f"ERROR {error.code().name} {details}", flush=True)
        done += 1
        if interval > 0:
            time.sleep(interval)  # pacing between calls, not synchronisation
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
