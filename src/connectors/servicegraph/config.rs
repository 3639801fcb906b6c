//! Configuration of the service-graph connector (`connectors.servicegraph`).

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;
pub use crate::connectors::dimension::{Dimension, default_latency_buckets};

/// `connectors.servicegraph`: request, error and latency metrics per edge
/// (client service → server service), as Grafana's service graph queries
/// them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceGraphConfig {
    /// Whether spans are paired into service-graph edges.
    pub enabled: bool,
    /// Most span halves waiting for their pair; a new half beyond it is
    /// dropped and counted in `traces_service_graph_dropped_spans_total`.
    pub max_items: usize,
    /// How long a half waits for its pair; then it is counted in
    /// `traces_service_graph_unpaired_spans_total` (or becomes a virtual
    /// node edge).
    pub wait: HumanDuration,
    /// Upper bounds of the `…_server_seconds` and `…_client_seconds`
    /// histograms, strictly increasing.
    pub latency_histogram_buckets: Vec<HumanDuration>,
    /// Extra dimensions, looked up in each side's span attributes, then its
    /// resource's, then `default`; exported as `client_<name>` and
    /// `server_<name>` (left out when missing and without default).
    pub dimensions: Vec<Dimension>,
    /// Draw edges to services that send no spans: a root SERVER/CONSUMER
    /// span becomes an edge from `user`, and a CLIENT/PRODUCER span whose
    /// pair never came but that has one of `peer_attributes` becomes an
    /// edge to that peer; both with `connection_type="virtual_node"`.
    pub virtual_nodes: bool,
    /// Attributes naming the peer of an unpaired client span, first found
    /// wins.
    pub peer_attributes: Vec<String>,
    /// Most series per metric; beyond it edges count in one overflow
    /// series labelled `otel_metric_overflow="true"`.
    pub cardinality_limit: usize,
    /// A series with no request for this long is dropped from the connector.
    pub series_ttl: HumanDuration,
    /// How often the series that changed are handed on (zero: after every
    /// traces request and expiry round).
    pub flush_interval: HumanDuration,
}

impl Default for ServiceGraphConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_items: 10_000,
            wait: HumanDuration::secs(2),
            latency_histogram_buckets: default_latency_buckets(),
            dimensions: Vec::new(),
            virtual_nodes: true,
            peer_attributes: vec!["peer.service".into(), "db.name".into(), "db.system".into()],
            cardinality_limit: 10_000,
            series_ttl: HumanDuration::secs(300),
            flush_interval: HumanDuration::secs(1),
        }
    }
}

impl ServiceGraphConfig {
    /// Bucket bounds in seconds.
    pub fn bounds(&self) -> Vec<f64> {
        self.latency_histogram_buckets
            .iter()
            .map(|b| b.get().as_secs_f64())
            .collect()
    }

    pub fn validate(&self) -> Result<(), String> {
        const AT: &str = "connectors.servicegraph";
        if self.max_items == 0 {
            return Err(format!("{AT}.max_items must be at least 1"));
        }
        if self.wait.get().is_zero() {
            return Err(format!("{AT}.wait must be longer than 0s"));
        }
        let bounds = self.bounds();
        if bounds.is_empty() {
            return Err(format!("{AT}.latency_histogram_buckets is empty"));
        }
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "{AT}.latency_histogram_buckets must be strictly increasing"
            ));
        }
        if self.cardinality_limit == 0 {
            return Err(format!("{AT}.cardinality_limit must be at least 1"));
        }
        for (i, d) in self.dimensions.iter().enumerate() {
            if d.name.is_empty() {
                return Err(format!("{AT}.dimensions: a dimension has an empty name"));
            }
            if self.dimensions[..i].iter().any(|o| o.name == d.name) {
                return Err(format!("{AT}.dimensions: `{}` is listed twice", d.name));
            }
        }
        if self.flush_interval.get() > std::time::Duration::from_secs(60) {
            return Err(format!("{AT}.flush_interval must be at most 1m"));
        }
        if self.peer_attributes.iter().any(|p| p.is_empty()) {
            return Err(format!("{AT}.peer_attributes: an attribute name is empty"));
        }
        Ok(())
    }
}
