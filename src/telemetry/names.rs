//! Names of StreamGate's self-metrics. Every one starts with `streamgate_`.

pub const BUILD_INFO: &str = "streamgate_build_info";
pub const UPTIME_SECONDS: &str = "streamgate_uptime_seconds";
pub const START_TIME_SECONDS: &str = "streamgate_process_start_time_seconds";
pub const PROCESS_RESIDENT_MEMORY: &str = "streamgate_process_resident_memory_bytes";
pub const PROCESS_CPU_SECONDS: &str = "streamgate_process_cpu_seconds_total";
pub const PROCESS_OPEN_FDS: &str = "streamgate_process_open_fds";
pub const PROCESS_THREADS: &str = "streamgate_process_threads";
pub const PROCESS_MEMORY_LIMIT: &str = "streamgate_process_memory_limit_bytes";
pub const HEAP_ALLOCATED: &str = "streamgate_heap_allocated_bytes";
pub const HEAP_RESIDENT: &str = "streamgate_heap_resident_bytes";
pub const RECEIVER_ACCEPTED_ITEMS: &str = "streamgate_receiver_accepted_items_total";
pub const RECEIVER_REFUSED_ITEMS: &str = "streamgate_receiver_refused_items_total";
pub const RECEIVER_REFUSED_REQUESTS: &str = "streamgate_receiver_refused_requests_total";
pub const RECEIVER_RECEIVED_BYTES: &str = "streamgate_receiver_received_bytes_total";
pub const RECEIVER_REPAIRED_STRINGS: &str = "streamgate_receiver_repaired_strings_total";
pub const RECEIVER_UNKNOWN_PATHS: &str = "streamgate_receiver_unknown_path_requests_total";
pub const RECEIVER_REQUEST_DURATION: &str = "streamgate_receiver_request_duration_seconds";
pub const RECEIVER_MEMORY_LIMIT: &str = "streamgate_receiver_memory_limit_bytes";
pub const RECEIVER_IN_FLIGHT_BYTES: &str = "streamgate_receiver_in_flight_bytes";
pub const EXPORTER_ACTIVE_SERIES: &str = "streamgate_exporter_prometheus_active_series";
pub const EXPORTER_EXPIRED_SERIES: &str = "streamgate_exporter_prometheus_expired_series_total";
pub const EXPORTER_REMOVED_SERIES: &str = "streamgate_exporter_prometheus_removed_series_total";
pub const EXPORTER_SCRAPES: &str = "streamgate_exporter_prometheus_scrapes_total";
pub const EXPORTER_RENDER_SECONDS: &str = "streamgate_exporter_prometheus_render_seconds_total";
pub const EXPORTER_LAST_RENDER_SECONDS: &str = "streamgate_exporter_prometheus_last_render_seconds";
pub const EXPORTER_OUT_OF_ORDER_POINTS: &str =
    "streamgate_exporter_prometheus_out_of_order_points_total";
pub const EXPORTER_OVERFLOW_POINTS: &str = "streamgate_exporter_prometheus_overflow_points_total";

pub const CONNECTOR_OVERFLOW_POINTS: &str = "streamgate_connector_overflow_points_total";

pub const WINDOWS_SERIES: &str = "streamgate_processor_windows_series";
pub const WINDOWS_SKIPPED: &str = "streamgate_processor_windows_skipped_points_total";

pub const SERVICEGRAPH_PENDING_SPANS: &str = "streamgate_connector_servicegraph_pending_spans";
pub const SERVICEGRAPH_UNPAIRED_SPANS: &str =
    "streamgate_connector_servicegraph_unpaired_spans_total";
pub const SERVICEGRAPH_DROPPED_SPANS: &str =
    "streamgate_connector_servicegraph_dropped_spans_total";

pub const ANALYSIS_SERIES: &str = "streamgate_processor_analysis_series";
pub const ANALYSIS_SKIPPED: &str = "streamgate_processor_analysis_skipped_points_total";

pub const RUNTIME_WORKERS: &str = "streamgate_runtime_workers";
pub const RUNTIME_ALIVE_TASKS: &str = "streamgate_runtime_alive_tasks";
pub const RUNTIME_GLOBAL_QUEUE: &str = "streamgate_runtime_global_queue_depth";
pub const RUNTIME_BUSY_SECONDS: &str = "streamgate_runtime_worker_busy_seconds_total";
pub const RUNTIME_PARKS: &str = "streamgate_runtime_worker_parks_total";

pub const PROFILING_PUSHES: &str = "streamgate_profiling_pushes_total";

pub const DELIVERY_ITEMS: &str = "streamgate_exporter_sent_items_total";
pub const DELIVERY_FAILED: &str = "streamgate_exporter_failed_items_total";
pub const DELIVERY_DROPPED: &str = "streamgate_exporter_dropped_items_total";
pub const DELIVERY_RETRIES: &str = "streamgate_exporter_retried_requests_total";
pub const DELIVERY_QUEUE_ITEMS: &str = "streamgate_exporter_queue_items";
pub const DELIVERY_QUEUE_BYTES: &str = "streamgate_exporter_queue_bytes";
pub const DELIVERY_QUEUE_CAPACITY: &str = "streamgate_exporter_queue_capacity_bytes";
pub const DELIVERY_LAST_SUCCESS: &str = "streamgate_exporter_last_success_timestamp_seconds";

pub const STATE_SNAPSHOTS: &str = "streamgate_state_snapshots_total";
pub const STATE_SNAPSHOT_BYTES: &str = "streamgate_state_snapshot_bytes";
pub const STATE_LAST_SNAPSHOT: &str = "streamgate_state_last_snapshot_timestamp_seconds";
pub const STATE_RESTORED_ITEMS: &str = "streamgate_state_restored_items";
pub const STATE_RESTORE_FAILURES: &str = "streamgate_state_restore_failures_total";

pub const TLS_HANDSHAKE_FAILURES: &str = "streamgate_server_tls_handshake_failures_total";
pub const ADMIN_UNAUTHENTICATED: &str = "streamgate_server_unauthenticated_requests_total";
pub const ADMIN_OVERLOADED: &str = "streamgate_server_overloaded_requests_total";

pub const ALERTING_NOTIFICATIONS: &str = "streamgate_alerting_notifications_total";
pub const ALERTING_QUEUE: &str = "streamgate_alerting_queue_length";
pub const ALERTING_ACTIVE: &str = "streamgate_alerting_active_alerts";

/// Every self-metric family name; no received metric may take one.
pub const ALL: [&str; 60] = [
    DELIVERY_ITEMS,
    DELIVERY_FAILED,
    DELIVERY_DROPPED,
    DELIVERY_RETRIES,
    DELIVERY_QUEUE_ITEMS,
    DELIVERY_QUEUE_BYTES,
    DELIVERY_QUEUE_CAPACITY,
    DELIVERY_LAST_SUCCESS,
    STATE_SNAPSHOTS,
    STATE_SNAPSHOT_BYTES,
    STATE_LAST_SNAPSHOT,
    STATE_RESTORED_ITEMS,
    STATE_RESTORE_FAILURES,
    EXPORTER_OVERFLOW_POINTS,
    TLS_HANDSHAKE_FAILURES,
    ADMIN_UNAUTHENTICATED,
    ADMIN_OVERLOADED,
    RECEIVER_MEMORY_LIMIT,
    RECEIVER_IN_FLIGHT_BYTES,
    PROCESS_MEMORY_LIMIT,
    HEAP_ALLOCATED,
    HEAP_RESIDENT,
    PROFILING_PUSHES,
    RUNTIME_WORKERS,
    RUNTIME_ALIVE_TASKS,
    RUNTIME_GLOBAL_QUEUE,
    RUNTIME_BUSY_SECONDS,
    RUNTIME_PARKS,
    ALERTING_NOTIFICATIONS,
    ALERTING_QUEUE,
    ALERTING_ACTIVE,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_CPU_SECONDS,
    PROCESS_OPEN_FDS,
    PROCESS_THREADS,
    ANALYSIS_SERIES,
    ANALYSIS_SKIPPED,
    SERVICEGRAPH_PENDING_SPANS,
    SERVICEGRAPH_UNPAIRED_SPANS,
    SERVICEGRAPH_DROPPED_SPANS,
    WINDOWS_SERIES,
    WINDOWS_SKIPPED,
    CONNECTOR_OVERFLOW_POINTS,
    BUILD_INFO,
    UPTIME_SECONDS,
    START_TIME_SECONDS,
    RECEIVER_ACCEPTED_ITEMS,
    RECEIVER_REFUSED_ITEMS,
    RECEIVER_REFUSED_REQUESTS,
    RECEIVER_RECEIVED_BYTES,
    RECEIVER_REPAIRED_STRINGS,
    RECEIVER_UNKNOWN_PATHS,
    RECEIVER_REQUEST_DURATION,
    EXPORTER_ACTIVE_SERIES,
    EXPORTER_EXPIRED_SERIES,
    EXPORTER_REMOVED_SERIES,
    EXPORTER_SCRAPES,
    EXPORTER_RENDER_SECONDS,
    EXPORTER_LAST_RENDER_SECONDS,
    EXPORTER_OUT_OF_ORDER_POINTS,
];
