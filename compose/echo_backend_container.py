#!/usr/bin/env python3
"""Runs the echo backend (scripts/echo_backend.py) inside the `backend` container.

scripts/echo_backend.py binds 127.0.0.1, which is right on a developer machine
but unreachable from the Envoy container. This wrapper serves the very same
handler (echo_backend.EchoHandler) on ECHO_HOST:ECHO_PORT (default
0.0.0.0:8080; the port is not published on the host). Environment:
ECHO_BACKEND_DIR (where echo_backend.py is, default /app), ECHO_HOST,
ECHO_PORT, ECHO_VERBOSE=1. Prints "LISTENING <port>" like the original.
"""

import os
import signal
import sys
from http.server import ThreadingHTTPServer


def main() -> None:
    sys.path.insert(0, os.environ.get("ECHO_BACKEND_DIR", "/app"))
    import echo_backend  # noqa: PLC0415 - path set just above

    host = os.environ.get("ECHO_HOST", "0.0.0.0")
    port = int(os.environ.get("ECHO_PORT", "8080"))
    server = ThreadingHTTPServer((host, port), echo_backend.EchoHandler)
    server.daemon_threads = True
    server.verbose = os.environ.get("ECHO_VERBOSE") == "1"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
