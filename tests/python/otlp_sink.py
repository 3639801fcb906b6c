"""An OTLP/HTTP endpoint for tests of StreamGate's OTLP exporter.

No OTLP backend (Collector, Tempo, Jaeger) can be installed here, so this
stands in for one and checks the wire format strictly with the official
OpenTelemetry protobuf classes (the `opentelemetry-proto` package the
Python SDK depends on): the path must be /v1/{traces,metrics,logs}, the
content type application/x-protobuf, a gzip body must inflate, and the
body must parse as that signal's export request; anything else is
answered 4xx as a real receiver would. The first FAIL_FIRST requests are
answered 503 with Retry-After: 0 (to exercise retries).

Prints its port on the first line of stdout; GET /summary returns JSON of
what was received.
"""

import gzip
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SIGNALS = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}

lock = threading.Lock()
state = {
    "requests": [],
    "refused": [],
    "failed_on_purpose": 0,
}
fail_first = int(os.environ.get("FAIL_FIRST", "0"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body=b"", content_type="text/plain", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, code, why):
        with lock:
            state["refused"].append({"path": self.path, "code": code, "why": why})
        self.answer(code, why.encode())

    def do_GET(self):
        if self.path != "/summary":
            return self.answer(404)
        with lock:
            body = json.dumps(state).encode()
        self.answer(200, body, "application/json")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        global fail_first
        with lock:
            if fail_first > 0:
                fail_first -= 1
                state["failed_on_purpose"] += 1
                return self.answer(503, b"busy", headers=[("Retry-After", "0")])
        if self.path not in SIGNALS:
            return self.refuse(404, "unknown path " + self.path)
        if self.headers.get("Content-Type") != "application/x-protobuf":
            return self.refuse(415, "content type " + str(self.headers.get("Content-Type")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            try:
                raw = gzip.decompress(raw)
            except OSError as e:
                return self.refuse(400, "bad gzip: %s" % e)
        elif encoding:
            return self.refuse(415, "encoding " + encoding)
        request_type, response_type = SIGNALS[self.path]
        message = request_type()
        try:
            message.ParseFromString(raw)
        except Exception as e:  # protobuf's DecodeError and friends
            return self.refuse(400, "not a %s: %s" % (request_type.__name__, e))
        with lock:
            state["requests"].append(
                {
                    "path": self.path,
                    "encoding": encoding,
                    "user_agent": self.headers.get("User-Agent", ""),
                    "tenant": self.headers.get("X-Scope-OrgID", ""),
                    "bytes": len(raw),
                    "request": MessageToDict(message),
                }
            )
        self.answer(
            200, response_type().SerializeToString(), "application/x-protobuf"
        )


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
