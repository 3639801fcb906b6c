#!/usr/bin/env python3
"""Sends a fixed set of metrics, spans and log records to an OTLP endpoint
with the OpenTelemetry Python SDK, exactly as an instrumented Python service
would, for the black-box tests in tests/python_sdk.rs.

Usage:
    send_metrics.py {grpc,http} ENDPOINT [--compression {none,gzip}]
                    [--temporality {cumulative,delta}] [--instance ID]
                    [--timeout SECONDS] [--no-traces] [--no-logs]
                    [--ca PEM [--client-cert PEM --client-key PEM]]

ENDPOINT is the base address of the collector's OTLP server of that
transport, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318
(HTTP; the /v1/<signal> paths are appended here). With https:// the
exporters use TLS, trusting --ca, and present --client-cert when given.

Every signal is exported exactly once, by force_flush (no periodic export),
then the providers are shut down. Exit status: 0 when every export
succeeded, 1 when any failed (the exporter's result, not a guess), 2 on bad
usage. What was sent is printed as one JSON line on stdout.

What is sent (tests/python_sdk.rs asserts its Prometheus translation):
  resource  service.name=checkout, service.namespace=shop,
            service.instance.id=<--instance, default checkout-1>,
            deployment.environment.name=test
  meter     name shop.checkout, version 1.2.3, schema_url SCHEMA_URL,
            attributes {library.kind: sdk-test}
  Counter        shop.orders {order}: +3,+2 {shop.region=eu,payment.method=card,
                 http.response.status_code=200,retry=false}; +4 {shop.region=us,...}
  Counter        shop.payload.size By: +1536 {shop.region=eu}
  UpDownCounter  shop.cart.items {item}: +5, -2 {shop.region=eu}
  Histogram      shop.checkout.duration s, View boundaries [0.1, 0.5, 1, 5]:
                 0.0625, 0.25, 0.25, 2, 8 {shop.region=eu}
  ObservableGauge shop.queue.utilization 1: 0.75 {queue=payments}
  3 spans (one parent, two children) and 2 log records.
"""

import argparse
import json
import math
import os
import sys

# The collector under test is the only configuration: ignore any OTEL_*
# settings of the environment the tests happen to run in.
for _key in [k for k in os.environ if k.startswith("OTEL_")]:
    del os.environ[_key]

from opentelemetry._logs import SeverityNumber  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import (  # noqa: E402
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.metrics import CallbackOptions, Observation  # noqa: E402
from opentelemetry.sdk.metrics import (  # noqa: E402
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (  # noqa: E402
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import (  # noqa: E402
    ExplicitBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
BOUNDARIES = [0.1, 0.5, 1.0, 5.0]
DURATIONS = [0.0625, 0.25, 0.25, 2.0, 8.0]
SPANS = 3
LOG_RECORDS = 2


class CheckedMetricExporter(MetricExporter):
    """Delegates to the OTLP exporter and keeps each export's result."""

    def __init__(self, inner):
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.results = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self.results.append(result)
        return result

    def force_flush(self, timeout_millis=10_000):
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis=30_000, **kwargs):
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class CheckedSpanExporter(SpanExporter):
    def __init__(self, inner):
        self.inner = inner
        self.results = []
        self.exported = 0

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        return result

    def force_flush(self, timeout_millis=30_000):
        return self.inner.force_flush(timeout_millis)

    def shutdown(self):
        self.inner.shutdown()


class CheckedLogExporter(LogRecordExporter):
    def __init__(self, inner):
        self.inner = inner
        self.results = []
        self.exported = 0

    def export(self, batch):
        result = self.inner.export(batch)
        self.results.append(result)
        if result is LogRecordExportResult.SUCCESS:
            self.exported += len(batch)
        return result

    def force_flush(self, timeout_millis=30_000):
        return self.inner.force_flush(timeout_millis)

    def shutdown(self):
        self.inner.shutdown()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("transport", choices=["grpc", "http"])
    parser.add_argument("endpoint", help="base URL of the OTLP server, e.g. http://127.0.0.1:4317")
    parser.add_argument("--compression", choices=["none", "gzip"], default="none")
    parser.add_argument("--temporality", choices=["cumulative", "delta"], default="cumulative")
    parser.add_argument("--instance", default="checkout-1", help="service.instance.id")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per export, retries included")
    parser.add_argument("--no-traces", action="store_true")
    parser.add_argument("--no-logs", action="store_true")
    parser.add_argument("--ca", help="PEM file of the CA to trust (an https:// endpoint)")
    parser.add_argument("--client-cert", help="PEM client certificate (mutual TLS)")
    parser.add_argument("--client-key", help="PEM key of --client-cert")
    return parser.parse_args(argv)


def read_file(path):
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def temporality_preference(name):
    if name == "cumulative":
        return None
    delta, cumulative = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
    # The SDK's "delta" preference: monotonic instruments as deltas,
    # up-down counters and gauges stay cumulative.
    return {
        Counter: delta,
        Histogram: delta,
        ObservableCounter: delta,
        UpDownCounter: cumulative,
        ObservableUpDownCounter: cumulative,
        ObservableGauge: cumulative,
    }


def build_exporters(args):
    """The three OTLP exporters of the chosen transport."""
    base = args.endpoint.rstrip("/")
    temporality = temporality_preference(args.temporality)
    if args.transport == "grpc":
        import grpc

        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        compression = grpc.Compression.Gzip if args.compression == "gzip" else grpc.Compression.NoCompression
        common = dict(endpoint=base, timeout=args.timeout, compression=compression)
        if base.startswith("https://"):
            common["insecure"] = False
            common["credentials"] = grpc.ssl_channel_credentials(
                root_certificates=read_file(args.ca),
                private_key=read_file(args.client_key),
                certificate_chain=read_file(args.client_cert),
            )
        else:
            common["insecure"] = True
        return (
            OTLPMetricExporter(preferred_temporality=temporality, **common),
            OTLPSpanExporter(**common),
            OTLPLogExporter(**common),
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
    common = dict(timeout=args.timeout, compression=compression)
    if args.ca:
        common["certificate_file"] = args.ca
    if args.client_cert:
        common["client_certificate_file"] = args.client_cert
        common["client_key_file"] = args.client_key
    return (
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics", preferred_temporality=temporality, **common),
        OTLPSpanExporter(endpoint=f"{base}/v1/traces", **common),
        OTLPLogExporter(endpoint=f"{base}/v1/logs", **common),
    )


def send_metrics(resource, exporter):
    checked = CheckedMetricExporter(exporter)
    # math.inf: no background thread and no export at shutdown, so the one
    # export is the force_flush below.
    reader = PeriodicExportingMetricReader(checked, export_interval_millis=math.inf)
    provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[
            View(
                instrument_name="shop.checkout.duration",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=BOUNDARIES),
            )
        ],
    )
    meter = provider.get_meter(
        "shop.checkout",
        version="1.2.3",
        schema_url=SCHEMA_URL,
        attributes={"library.kind": "sdk-test"},
    )
    eu = {
        "shop.region": "eu",
        "payment.method": "card",
        "http.response.status_code": 200,
        "retry": False,
    }
    us = dict(eu, **{"shop.region": "us"})

    orders = meter.create_counter("shop.orders", unit="{order}", description="Orders placed.")
    orders.add(3, eu)
    orders.add(2, eu)
    orders.add(4, us)

    payload = meter.create_counter("shop.payload.size", unit="By", description="Bytes of order payloads received.")
    payload.add(1536, {"shop.region": "eu"})

    cart = meter.create_up_down_counter("shop.cart.items", unit="{item}", description="Items in open carts.")
    cart.add(5, {"shop.region": "eu"})
    cart.add(-2, {"shop.region": "eu"})

    duration = meter.create_histogram("shop.checkout.duration", unit="s", description="Time to check out.")
    for seconds in DURATIONS:
        duration.record(seconds, {"shop.region": "eu"})

    def utilization(_options: CallbackOptions):
        yield Observation(0.75, {"queue": "payments"})

    meter.create_observable_gauge(
        "shop.queue.utilization",
        callbacks=[utilization],
        unit="1",
        description="Share of the queue in use.",
    )

    flushed = provider.force_flush(timeout_millis=15_000)
    provider.shutdown(timeout_millis=15_000)
    ok = flushed and len(checked.results) == 1 and checked.results[0] is MetricExportResult.SUCCESS
    return ok, [r.name for r in checked.results]


def send_traces(resource, exporter):
    checked = CheckedSpanExporter(exporter)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(checked))
    tracer = provider.get_tracer("shop.checkout", "1.2.3")
    with tracer.start_as_current_span("checkout", attributes={"shop.region": "eu"}) as span:
        span.add_event("cart.locked", {"items": 3})
        with tracer.start_as_current_span("reserve-stock"):
            pass
        with tracer.start_as_current_span("charge-card", attributes={"payment.method": "card"}):
            pass
    flushed = provider.force_flush(timeout_millis=15_000)
    provider.shutdown()
    ok = flushed and checked.exported == SPANS and all(r is SpanExportResult.SUCCESS for r in checked.results)
    return ok, checked.exported


def send_logs(resource, exporter):
    checked = CheckedLogExporter(exporter)
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(checked))
    logger = provider.get_logger("shop.checkout", "1.2.3")
    logger.emit(
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body="order placed",
        attributes={"shop.region": "eu", "order.items": 3},
    )
    logger.emit(
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body={"event": "payment retried", "attempt": 2},
        attributes={"shop.region": "us"},
    )
    flushed = provider.force_flush(timeout_millis=15_000)
    provider.shutdown()
    ok = (
        flushed
        and checked.exported == LOG_RECORDS
        and all(r is LogRecordExportResult.SUCCESS for r in checked.results)
    )
    return ok, checked.exported


def main(argv):
    args = parse_args(argv)
    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.namespace": "shop",
            "service.instance.id": args.instance,
            "deployment.environment.name": "test",
        }
    )
    metric_exporter, span_exporter, log_exporter = build_exporters(args)
    summary = {"transport": args.transport, "compression": args.compression, "temporality": args.temporality}
    ok, summary["metric_exports"] = send_metrics(resource, metric_exporter)
    if not args.no_traces:
        traces_ok, summary["spans"] = send_traces(resource, span_exporter)
        ok = ok and traces_ok
    if not args.no_logs:
        logs_ok, summary["log_records"] = send_logs(resource, log_exporter)
        ok = ok and logs_ok
    summary["ok"] = ok
    print(json.dumps(summary), flush=True)
    if not ok:
        print("send_metrics.py: an export failed (see the exporter's log above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
