"""Prometheus metrics, one registry per application (no process-global collectors, so two apps
in one test process do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

__all__ = ["Metrics"]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge(
            "courtlink_connections", "Open Socket.IO connections on this node", registry=r
        )
        self.participants = Gauge(
            "courtlink_participants", "Seats held through this node", registry=r
        )
        self.sessions = Gauge("courtlink_sessions", "Sessions by state", ["state"], registry=r)
        self.events = Counter(
            "courtlink_signaling_events", "Socket.IO events received", ["event"], registry=r
        )
        self.errors = Counter(
            "courtlink_errors", "Refused or failed requests", ["where", "code"], registry=r
        )
        self.http_requests = Counter(
            "courtlink_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "courtlink_http_request_seconds", "HTTP request duration", ["route"], registry=r
        )
        ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu seconds, open fds
        self.threads = Gauge("courtlink_threads", "Threads in this process", registry=r)
        self.tasks = Gauge("courtlink_asyncio_tasks", "asyncio tasks in this process", registry=r)
        self.media = Gauge("courtlink_media", "Media objects on this node", ["kind"], registry=r)
        self.media_latency = Histogram(
            "courtlink_media_added_latency_seconds",
            "Time an RTP packet spends in the server, from its arrival to its last copy sent",
            buckets=(
                0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075, 0.001,
                0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1,
            ),
            registry=r,
        )  # fmt: skip
        self.audit_events = Gauge(
            "courtlink_audit_head_seq", "Sequence number of the audit chain's head", registry=r
        )
