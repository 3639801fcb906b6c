//! [`Batch`]: a request as the pipeline carries it, its validated protobuf
//! bytes and what validating them learned (the point count; for traces an
//! index of the spans). Hot consumers read it in place through `view()`
//! ([`MetricsBatch::view`], [`TracesBatch::resources`],
//! [`LogsBatch::view`]); others may ask
//! for the decoded OTLP structures, which are built once, on first use.

use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;

use super::otlp::{ItemCount, LogsRequest, MetricsRequest, TracesRequest};
use super::wire::WireError;
use super::wire::logs::{LogsRequestView, validate_logs};
use super::wire::metrics::{MetricsRequestView, validate_metrics};
use super::wire::repair::{find_invalid_strings, replace_invalid_utf8};
use super::wire::span_index::{IndexedResource, SpanIndex};
use super::wire::traces::TracesRequestView;

/// An OTLP export request that can travel as validated bytes.
pub trait WireRequest: Message + Default + ItemCount + Send + Sync + 'static {
    /// What validation learns and the batch keeps for its consumers.
    type Index: std::fmt::Debug + Default + Send + Sync;

    /// Checks a whole request in protobuf form (every field prost would
    /// check).
    fn validate(bytes: &[u8]) -> Result<Self::Index, WireError>;

    /// The number of items in a validated request.
    fn count(index: &Self::Index) -> u64;
}

impl WireRequest for MetricsRequest {
    /// The number of data points.
    type Index = u64;

    fn validate(bytes: &[u8]) -> Result<u64, WireError> {
        validate_metrics(bytes)
    }

    fn count(points: &u64) -> u64 {
        *points
    }
}

impl WireRequest for TracesRequest {
    type Index = SpanIndex;

    fn validate(bytes: &[u8]) -> Result<SpanIndex, WireError> {
        SpanIndex::build(bytes)
    }

    fn count(index: &SpanIndex) -> u64 {
        index.len() as u64
    }
}

impl WireRequest for LogsRequest {
    /// The number of log records.
    type Index = u64;

    fn validate(bytes: &[u8]) -> Result<u64, WireError> {
        validate_logs(bytes)
    }

    fn count(records: &u64) -> u64 {
        *records
    }
}

/// A validated request.
#[derive(Debug)]
pub struct Batch<R: WireRequest> {
    wire: Bytes,
    index: R::Index,
    decoded: OnceLock<R>,
    /// Strings of the sender's request that were not valid UTF-8 and
    /// were repaired (see [`super::wire::repair`]).
    repaired_strings: u32,
}

/// A validated metrics request.
pub type MetricsBatch = Batch<MetricsRequest>;
/// A validated traces request.
pub type TracesBatch = Batch<TracesRequest>;
/// A validated logs request.
pub type LogsBatch = Batch<LogsRequest>;

impl<R: WireRequest> Batch<R> {
    /// Checks a request in protobuf form. Strings that are not valid
    /// UTF-8 are repaired in a copy ([`super::wire::repair`]) rather than
    /// refused; every other fault refuses the request.
    pub fn decode(wire: Bytes) -> Result<Self, WireError> {
        let (wire, index, repaired_strings) = match R::validate(&wire) {
            Ok(index) => (wire, index, 0),
            Err(WireError::InvalidUtf8 { .. }) => {
                let invalid = find_invalid_strings(&wire, R::validate)?;
                let mut copy = wire.to_vec();
                for range in &invalid {
                    replace_invalid_utf8(&mut copy[range.clone()]);
                }
                let index = R::validate(&copy)?;
                let repaired = u32::try_from(invalid.len()).unwrap_or(u32::MAX);
                (Bytes::from(copy), index, repaired)
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            wire,
            index,
            decoded: OnceLock::new(),
            repaired_strings,
        })
    }

    /// How many of the sender's strings were not valid UTF-8 and had
    /// their invalid bytes replaced by `?`.
    pub fn repaired_strings(&self) -> u32 {
        self.repaired_strings
    }

    /// Wraps a request built in process (or decoded from OTLP/JSON).
    pub fn from_request(request: R) -> Self {
        let wire = Bytes::from(request.encode_to_vec());
        // What prost encodes always validates; were it ever refused, the
        // consumers reading in place would see no items.
        let index = R::validate(&wire).unwrap_or_else(|e| {
            tracing::error!(error = %e, "an encoded request failed validation");
            R::Index::default()
        });
        Self {
            wire,
            index,
            decoded: OnceLock::from(request),
            repaired_strings: 0,
        }
    }

    /// Wraps a request decoded from a sender's OTLP/JSON: its protobuf
    /// form is checked as a protobuf body is, so what the JSON mapping
    /// lets through but OTLP forbids (an id of the wrong length) is
    /// refused the same way.
    pub fn from_sent_request(request: R) -> Result<Self, WireError> {
        let wire = Bytes::from(request.encode_to_vec());
        let index = R::validate(&wire)?;
        Ok(Self {
            wire,
            index,
            decoded: OnceLock::from(request),
            repaired_strings: 0,
        })
    }

    /// The request as decoded OTLP structures, decoded on first use.
    pub fn request(&self) -> &R {
        self.decoded.get_or_init(|| {
            // Validation checked every field prost reads, so this cannot
            // fail; if it ever did, the consumers asking see no items.
            R::decode(&self.wire[..]).unwrap_or_else(|e| {
                tracing::error!(error = %e, "validated request failed to decode");
                R::default()
            })
        })
    }

    /// The protobuf bytes.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }
}

impl MetricsBatch {
    /// The request read in place.
    pub fn view(&self) -> MetricsRequestView<'_> {
        MetricsRequestView::new(&self.wire)
    }
}

impl TracesBatch {
    /// The request read in place.
    pub fn view(&self) -> TracesRequestView<'_> {
        TracesRequestView::new(&self.wire)
    }

    /// The spans by resource, from the index validation built: no
    /// second reading of the bytes.
    pub fn resources(&self) -> impl Iterator<Item = IndexedResource<'_>> {
        self.index.resources(&self.wire)
    }
}

impl LogsBatch {
    /// The request read in place.
    pub fn view(&self) -> LogsRequestView<'_> {
        LogsRequestView::new(&self.wire)
    }
}

impl<R: WireRequest> From<R> for Batch<R> {
    fn from(request: R) -> Self {
        Self::from_request(request)
    }
}

impl<R: WireRequest> ItemCount for Batch<R> {
    fn item_count(&self) -> u64 {
        R::count(&self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truncations_agree_with_prost<R: WireRequest + PartialEq + std::fmt::Debug>(request: R) {
        let bytes = request.encode_to_vec();
        let batch = Batch::<R>::decode(Bytes::from(bytes.clone())).expect("valid");
        assert_eq!(batch.item_count(), request.item_count());
        assert_eq!(batch.request(), &request);
        let mut refused = 0;
        for cut in 0..bytes.len() {
            let prost_ok = R::decode(&bytes[..cut]).is_ok();
            let ours = Batch::<R>::decode(Bytes::copy_from_slice(&bytes[..cut]));
            assert_eq!(ours.is_ok(), prost_ok, "cut at {cut}: {ours:?}");
            refused += usize::from(ours.is_err());
        }
        assert!(refused > bytes.len() / 2);
    }

    #[test]
    fn truncated_requests_are_refused_and_whole_ones_counted() {
        truncations_agree_with_prost(crate::model::wire::tests::sample_metrics());
        truncations_agree_with_prost(crate::model::wire::traces_tests::sample_traces());
        truncations_agree_with_prost(crate::model::wire::logs::tests::sample_logs());
    }
}
