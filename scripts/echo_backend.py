#!/usr/bin/env python3
"""Echo upstream for the end-to-end tests and the demo.

Tests need to see exactly which headers reached the upstream after the filter
ran (identity headers added, tokens and spoofed headers removed), so every
request is answered 200 with a JSON body:

    {"method": "GET", "path": "/x?y=1", "headers": {"name": "value", ...},
     "header_list": [["name", "value"], ...], "body_len": 0}

`headers` keys are lowercased. A header sent more than once is joined into one
value with ", " (how HTTP defines combining repeated fields); `header_list`
keeps every field separately and in order, for tests that care.

Standard library only; binds 127.0.0.1 unless --host says otherwise (a
container needs 0.0.0.0). Usage:
    python3 scripts/echo_backend.py --port 8080 [--host 127.0.0.1]
With --port 0 a free port is chosen and printed as "LISTENING <port>" on the
first line of stdout, which is how the test harness learns it.
"""

import argparse
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every method and path with the request it saw."""

    protocol_version = "HTTP/1.1"
    server_version = "echo-backend"

    def _echo(self):
        length = 0
        try:
            length = int(self.headers.get("content-length", "0") or "0")
        except ValueError:
            length = 0
        length = max(0, min(length, MAX_BODY))
        if length:
            self.rfile.read(length)
        headers = {}
        header_list = []
        for name, value in self.headers.items():
            key = name.lower()
            header_list.append([key, value])
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": headers,
                "header_list": header_list,
                "body_len": length,
            },
            sort_keys=True,
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _echo

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        if self.server.verbose:
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    parser.add_argument("--verbose", action="store_true", help="log each request")
    args = parser.parse_args()
    # socketserver's default listen backlog is 5: a burst of resumed requests
    # (8 at once in the e2e suite) could overflow it, and a dropped SYN showed
    # up as a rare 503 "upstream connect error" after Envoy's connect timeout.
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer((args.host, args.port), EchoHandler)
    server.daemon_threads = True
    server.verbose = args.verbose
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
