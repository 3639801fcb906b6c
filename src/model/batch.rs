//! [`MetricsBatch`]: a metrics request as the pipeline carries it, its
//! validated protobuf bytes. Hot consumers read it in place through
//! [`MetricsBatch::view`]; others may ask for the decoded OTLP structures,
//! which are built once, on first use.

use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;

use super::otlp::{ItemCount, MetricsRequest};
use super::wire::WireError;
use super::wire::metrics::{MetricsRequestView, validate_metrics};

/// A validated metrics request.
#[derive(Debug)]
pub struct MetricsBatch {
    wire: Bytes,
    points: u64,
    decoded: OnceLock<MetricsRequest>,
}

impl MetricsBatch {
    /// Checks an `ExportMetricsServiceRequest` in protobuf form.
    pub fn decode(wire: Bytes) -> Result<Self, WireError> {
        let points = validate_metrics(&wire)?;
        Ok(Self {
            wire,
            points,
            decoded: OnceLock::new(),
        })
    }

    /// Wraps a request built in process (or decoded from OTLP/JSON).
    pub fn from_request(request: MetricsRequest) -> Self {
        let points = request.item_count();
        let wire = Bytes::from(request.encode_to_vec());
        Self {
            wire,
            points,
            decoded: OnceLock::from(request),
        }
    }

    /// The request read in place.
    pub fn view(&self) -> MetricsRequestView<'_> {
        MetricsRequestView::new(&self.wire)
    }

    /// The request as decoded OTLP structures, decoded on first use.
    pub fn request(&self) -> &MetricsRequest {
        self.decoded.get_or_init(|| {
            // Validation checked every field prost reads, so this cannot
            // fail; if it ever did, the consumers asking see no points.
            MetricsRequest::decode(&self.wire[..]).unwrap_or_else(|e| {
                tracing::error!(error = %e, "validated metrics request failed to decode");
                MetricsRequest::default()
            })
        })
    }

    /// The protobuf bytes.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }
}

impl From<MetricsRequest> for MetricsBatch {
    fn from(request: MetricsRequest) -> Self {
        Self::from_request(request)
    }
}

impl ItemCount for MetricsBatch {
    fn item_count(&self) -> u64 {
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_requests_are_refused_and_whole_ones_counted() {
        let request = crate::model::wire::tests::sample_metrics();
        let bytes = request.encode_to_vec();
        let batch = MetricsBatch::decode(Bytes::from(bytes.clone())).expect("valid");
        assert_eq!(batch.item_count(), request.item_count());
        assert_eq!(batch.request(), &request);
        let mut refused = 0;
        for cut in 0..bytes.len() {
            let prost_ok = MetricsRequest::decode(&bytes[..cut]).is_ok();
            let ours = MetricsBatch::decode(Bytes::copy_from_slice(&bytes[..cut]));
            assert_eq!(ours.is_ok(), prost_ok, "cut at {cut}: {ours:?}");
            refused += usize::from(ours.is_err());
        }
        assert!(refused > bytes.len() / 2);
    }
}
