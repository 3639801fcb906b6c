//! The contract of components whose state outlives a restart: learned
//! models, accumulated counters, active alerts. A [`Durable`] component
//! writes its state as bytes on request and takes it back at start; where
//! the bytes live, how often they are written and what happens to a
//! damaged file is the state store's business (`app/state.rs`), so
//! components stay free of files and clocks.
//!
//! A snapshot must be consistent per item (one series' model is never
//! half-written) but need not be atomic across items: items are written
//! while ingest goes on, one lock at a time.

/// Why a snapshot could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("cannot encode the state: {0}")]
    Encode(String),
    #[error("cannot decode the state: {0}")]
    Decode(String),
}

impl DurableError {
    pub fn encode(e: impl std::fmt::Display) -> Self {
        Self::Encode(e.to_string())
    }

    pub fn decode(e: impl std::fmt::Display) -> Self {
        Self::Decode(e.to_string())
    }
}

/// What a restore brought back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Items taken back (series, alerts, …).
    pub items: u64,
    /// Items in the snapshot that could not be used (for example a model
    /// whose shape the current configuration no longer has); they start
    /// afresh.
    pub discarded: u64,
}

/// A component with state worth keeping across restarts.
pub trait Durable: Send + Sync {
    /// Stable, file-name-safe name of this state (e.g. `analysis`).
    fn state_name(&self) -> &'static str;
    /// Version of the snapshot's format. A snapshot written with another
    /// version is not read (it is set aside and the component starts
    /// afresh); bump it whenever the encoding changes.
    fn state_version(&self) -> u32;
    /// Appends a snapshot of the current state to `out`.
    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), DurableError>;
    /// Takes back a snapshot of this version, before any data arrives.
    fn restore(&self, snapshot: &[u8]) -> Result<Restored, DurableError>;
}

/// Appends `value` to `out` in postcard, the encoding snapshots use.
pub fn append<T: serde::Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), DurableError> {
    let written = std::mem::take(out);
    *out = postcard::to_extend(value, written).map_err(DurableError::encode)?;
    Ok(())
}
