//! `streamgate backtest`: runs the analytics over recorded series from
//! CSV files, as fast as it can, writing per-row outputs beside a summary.
//!
//! [`input`] reads and validates the CSVs, [`timestamp`] parses their time
//! formats. The model that produces each row's columns comes in through
//! the [`RowModel`] trait, so the same walker serves every analytics
//! configuration.

pub mod batch;
pub mod input;
pub mod model;
pub mod plot;
pub mod runner;
pub mod timestamp;

/// What produces the output columns of each row.
pub trait RowModel {
    /// Output column names after `timestamp,value`.
    fn columns(&self) -> Vec<String>;
    /// Feeds one row (`None` = gap) and writes its output cells
    /// (`None` = empty, during warm-up) into `out`, one per column.
    fn update(&mut self, time_secs: f64, value: Option<f64>, out: &mut Vec<Option<f64>>);
}
