//! Prometheus metric names of OTel metrics (the otlptranslator rules),
//! shared by the exporter and by processors that label derived series
//! with their source's name. Metric names: tokens of the OTel name, then the unit (`By`→`bytes`,
//! `s`→`seconds`, `/s`→`per_second`, `{…}` annotations dropped), then
//! `total` for monotonic sums and `ratio` for gauges of unit `1`.

/// The shape of a metric, as far as naming cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricShape {
    Gauge,
    MonotonicSum,
    NonMonotonicSum,
    Histogram,
    Summary,
}

/// OTel unit → Prometheus word (units not listed pass through, cleaned).
fn main_unit(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// OTel unit after `/` → Prometheus word (singular).
fn per_unit(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Replaces runs of invalid characters by one `_` and strips one leading `_`.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    let mut last_underscore = false;
    for c in unit.chars() {
        if is_metric_char(c) {
            out.push(c);
            last_underscore = false;
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
    }
    if out.starts_with('_') {
        out.remove(0);
    }
    out
}

/// The (main, per) unit suffixes of an OTel unit, cleaned; empty when none.
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), p.trim()),
        None => (unit.trim(), ""),
    };
    let main = if !main.is_empty() && !main.contains(['{', '}']) {
        clean_unit(main_unit(main))
    } else {
        String::new()
    };
    let per = if !per.is_empty() && !per.contains(['{', '}']) {
        clean_unit(&format!("per_{}", per_unit(per)))
    } else {
        String::new()
    };
    (main, per)
}

/// The unit word for `# UNIT` and the family's unit: `By/s` →
/// `bytes_per_second`, `1` → empty.
pub fn unit_word(unit: &str) -> String {
    let (main, per) = unit_suffixes(unit);
    let joined = match (main.is_empty(), per.is_empty()) {
        (true, true) => String::new(),
        (false, true) => main,
        (true, false) => per,
        (false, false) => format!("{main}_{per}"),
    };
    joined.trim_matches('_').to_string()
}

/// Builds the Prometheus name of an OTel metric. `namespace` must already
/// be a valid name (config validation checks it). Returns `None` when
/// nothing of the name survives.
pub fn metric_name(
    name: &str,
    unit: &str,
    shape: MetricShape,
    namespace: &str,
    add_suffixes: bool,
) -> Option<String> {
    if !add_suffixes {
        return name_without_suffixes(name, namespace);
    }
    let mut tokens: Vec<String> = name
        .split(|c: char| !is_metric_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let (mut main, per) = unit_suffixes(unit);
    let per = if per == "per_" {
        String::new()
    } else {
        per.strip_suffix('_').unwrap_or(&per).to_string()
    };
    if !per.is_empty()
        && let Some(stripped) = main.strip_suffix('_')
    {
        main = stripped.to_string();
    }
    if !main.is_empty() && !tokens.contains(&main) {
        tokens.push(main);
    }
    if !per.is_empty() && !tokens.contains(&per) {
        tokens.push(per);
    }
    if shape == MetricShape::MonotonicSum {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    if unit == "1" && shape == MetricShape::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".into());
    }
    if !namespace.is_empty() {
        tokens.insert(0, namespace.to_string());
    }
    let mut out = tokens.join("_");
    if out.is_empty() || out.chars().all(|c| c == '_') {
        return None;
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

fn name_without_suffixes(name: &str, namespace: &str) -> Option<String> {
    let body = name
        .split(|c: char| !(is_metric_char(c) || c == '_'))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if body.is_empty() || body.chars().all(|c| c == '_') {
        return None;
    }
    if namespace.is_empty() {
        if body.starts_with(|c: char| c.is_ascii_digit()) {
            return Some(format!("_{body}"));
        }
        Some(body)
    } else {
        Some(format!("{namespace}_{body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::MetricShape::*;
    use super::*;

    /// Vectors from the upstream otlptranslator tests (facts, not code).
    #[test]
    fn upstream_vectors() {
        let cases: &[(&str, &str, MetricShape, &str, &str)] = &[
            (
                "system.filesystem.usage",
                "By",
                Gauge,
                "",
                "system_filesystem_usage_bytes",
            ),
            ("system.io", "By", MonotonicSum, "", "system_io_bytes_total"),
            (
                "network_transmitted_bytes_total",
                "By",
                MonotonicSum,
                "",
                "network_transmitted_bytes_total",
            ),
            (
                "\t system.filesystem.usage       ",
                "  By\t",
                Gauge,
                "",
                "system_filesystem_usage_bytes",
            ),
            (
                "system.network.dropped",
                "{packets}",
                Gauge,
                "",
                "system_network_dropped",
            ),
            (
                "system.network.dropped",
                "{packets}",
                MonotonicSum,
                "",
                "system_network_dropped_total",
            ),
            (
                "system.network.dropped",
                "nonstandard:_1",
                Gauge,
                "",
                "system_network_dropped_nonstandard:_1",
            ),
            (
                "system.network.packets.dropped",
                "packets",
                Gauge,
                "",
                "system_network_packets_dropped",
            ),
            (
                "system.network.packets",
                "packets",
                MonotonicSum,
                "",
                "system_network_packets_total",
            ),
            (
                "hw.gpu.memory.utilization",
                "1",
                Gauge,
                "",
                "hw_gpu_memory_utilization_ratio",
            ),
            ("hw.fan.speed_ratio", "1", Gauge, "", "hw_fan_speed_ratio"),
            ("objects", "1", MonotonicSum, "", "objects_total"),
            (
                "hw.cpu.speed_limit",
                "Hz",
                Gauge,
                "",
                "hw_cpu_speed_limit_hertz",
            ),
            (
                "broken.metric.speed",
                "km/h",
                Gauge,
                "",
                "broken_metric_speed_km_per_hour",
            ),
            (
                "astro.light.speed_limit",
                "m/s",
                Gauge,
                "",
                "astro_light_speed_limit_meters_per_second",
            ),
            (
                "system.network.dropped",
                "non/standard:_1",
                Gauge,
                "",
                "system_network_dropped_non_per_standard:_1",
            ),
            (
                "broken.metric.speed",
                "km/°",
                Gauge,
                "",
                "broken_metric_speed_km",
            ),
            (
                "broken.metric.success_ratio",
                "%",
                Gauge,
                "",
                "broken_metric_success_ratio_percent",
            ),
            (
                "test.metric.spaces",
                "   \t  ",
                Gauge,
                "",
                "test_metric_spaces",
            ),
            (
                "active_directory.ds.replication.object.rate",
                "{objects}/s",
                Gauge,
                "",
                "active_directory_ds_replication_object_rate_per_second",
            ),
            (
                "system.cpu.load_average.15m",
                "1",
                Gauge,
                "",
                "system_cpu_load_average_15m_ratio",
            ),
            (
                "system.disk.operation_time",
                "s",
                MonotonicSum,
                "",
                "system_disk_operation_time_seconds_total",
            ),
            (
                "mongodbatlas.process.oplog.rate",
                "GiBy/h",
                Gauge,
                "",
                "mongodbatlas_process_oplog_rate_gibibytes_per_hour",
            ),
            (
                "mongodbatlas.process.db.query_targeting.scanned_per_returned",
                "{scanned}/{returned}",
                Gauge,
                "",
                "mongodbatlas_process_db_query_targeting_scanned_per_returned",
            ),
            (
                "apache.workers",
                "connections",
                Gauge,
                "",
                "apache_workers_connections",
            ),
            (
                "redis.latest_fork",
                "us",
                Gauge,
                "",
                "redis_latest_fork_microseconds",
            ),
            (
                "nsxt.node.memory.usage",
                "KBy",
                Gauge,
                "",
                "nsxt_node_memory_usage_kilobytes",
            ),
            ("#test", "", Gauge, "space", "space_test"),
            ("3.14 digits", "", Gauge, "", "_3_14_digits"),
            (
                "envoy__rule_engine_zlib_buf_error",
                "",
                Gauge,
                "",
                "envoy_rule_engine_zlib_buf_error",
            ),
            (":foo::bar", "", Gauge, "", ":foo::bar"),
            (":foo::bar", "", MonotonicSum, "", ":foo::bar_total"),
            (
                "system.io",
                "foo/bar",
                MonotonicSum,
                "",
                "system_io_foo_per_bar_total",
            ),
            (
                "metric_with_字符_foreign_characters",
                "",
                MonotonicSum,
                "",
                "metric_with_foreign_characters_total",
            ),
            ("temperature", "%*()°:C", Gauge, "", "temperature_:C"),
            (
                "requests",
                "1/s",
                MonotonicSum,
                "app",
                "app_requests_per_second_total",
            ),
            (
                "123_requests",
                "",
                MonotonicSum,
                "app",
                "app_123_requests_total",
            ),
            (
                "metric__with__multiple__underscores",
                "unit__multiple__underscores",
                Gauge,
                "",
                "metric_with_multiple_underscores_unit_multiple_underscores",
            ),
            (
                "custom_metric",
                "unit@with#special/chars",
                Gauge,
                "",
                "custom_metric_unit_with_special_per_chars",
            ),
            (
                "custom_metric",
                "By/{custom}",
                Gauge,
                "",
                "custom_metric_bytes",
            ),
            ("metric", "By/", Gauge, "", "metric_bytes"),
            ("metric", " By / s ", Gauge, "", "metric_bytes_per_second"),
            ("metric", "/", Gauge, "", "metric"),
            ("invoices", "1/mo", Gauge, "", "invoices_per_month"),
            (
                "custom",
                "1/custom_unit",
                Gauge,
                "",
                "custom_per_custom_unit",
            ),
            ("capacity", "TiBy", Gauge, "", "capacity_tibibytes"),
            (
                "http.request.duration",
                "ms",
                Histogram,
                "",
                "http_request_duration_milliseconds",
            ),
            (
                "response_time",
                "ms",
                Summary,
                "",
                "response_time_milliseconds",
            ),
            (
                "active_connections",
                "",
                NonMonotonicSum,
                "",
                "active_connections",
            ),
            ("items", "1", MonotonicSum, "", "items_total"),
            (
                "http.server.request.duration",
                "s",
                Histogram,
                "",
                "http_server_request_duration_seconds",
            ),
        ];
        for (name, unit, shape, ns, want) in cases {
            assert_eq!(
                metric_name(name, unit, *shape, ns, true).as_deref(),
                Some(*want),
                "name={name:?} unit={unit:?} shape={shape:?}"
            );
        }
        assert_eq!(metric_name("@#$%", "", Gauge, "", true), None);
    }

    #[test]
    fn without_suffixes_only_sanitises() {
        assert_eq!(
            metric_name(
                "metric_1_this/one/there(where)",
                "1",
                MonotonicSum,
                "test",
                false
            )
            .as_deref(),
            Some("test_metric_1_this_one_there_where")
        );
        assert_eq!(
            metric_name("http.duration", "s", Histogram, "", false).as_deref(),
            Some("http_duration")
        );
    }

    #[test]
    fn unit_words() {
        assert_eq!(unit_word("By/s"), "bytes_per_second");
        assert_eq!(unit_word("1/s"), "per_second");
        assert_eq!(unit_word("1"), "");
        assert_eq!(unit_word("{request}"), "");
        assert_eq!(unit_word("s"), "seconds");
    }
}
