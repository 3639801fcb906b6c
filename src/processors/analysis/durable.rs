//! The analysis processor's durable state: every analysed series' models
//! (baseline with its daily and weekly profiles, forecaster with its
//! tracked errors, counter-rate and ratio state), keyed by the series'
//! identity hash, so a restart keeps what weeks of data taught them.
//!
//! Models are restored before data arrives and wait to be claimed: the
//! first point of a series after the restart takes its saved models, in
//! place of new ones. Models not claimed within [`UNCLAIMED_TTL`] are
//! dropped (they are written again meanwhile, so a second restart keeps
//! them). A model whose shape no longer fits the configuration (other
//! seasonality, slot counts, horizons) starts afresh and is counted as
//! discarded.
//!
//! Payload (postcard): the number of series, then each series, then the
//! forecast horizons they were tracked for (seconds; absent in snapshots
//! of earlier builds). Forecasters of other horizons would go on with
//! errors learned for another distance ahead: their series are discarded.

use serde::{Deserialize, Serialize};

use super::ratio::RatioGroup;
use super::{AnalysisProcessor, ByIdentity, Slot};
use crate::analytics::baselines::{Baseline, RateConverter};
use crate::analytics::forecasts::{ForecastState, SavedForecastState};
use crate::pipeline::durable::{Durable, DurableError, Restored, append as put};

/// Series written per lock of the series map.
const CHUNK: usize = 128;

/// How long restored models wait for their series to reappear.
pub const UNCLAIMED_TTL_SECS: f64 = 7.0 * 86_400.0;

/// One series as written.
#[derive(Serialize)]
struct SavedRef<'a> {
    hash: u64,
    last_point_secs: f64,
    rate: Option<&'a RateConverter>,
    ratio: Option<&'a RatioGroup>,
    baseline: &'a Baseline,
    forecaster: &'a ForecastState,
}

/// One series as read back (the same fields, owned).
#[derive(Deserialize)]
struct SavedOwned {
    hash: u64,
    last_point_secs: f64,
    rate: Option<RateConverter>,
    ratio: Option<RatioGroup>,
    baseline: Baseline,
    forecaster: SavedForecastState,
}

/// Restored models waiting for their series.
#[derive(Debug, Clone)]
pub struct Saved {
    pub last_point_secs: f64,
    rate: Option<RateConverter>,
    ratio: Option<RatioGroup>,
    baseline: Baseline,
    forecaster: ForecastState,
}

impl Saved {
    fn to_ref(&self, hash: u64) -> SavedRef<'_> {
        SavedRef {
            hash,
            last_point_secs: self.last_point_secs,
            rate: self.rate.as_ref(),
            ratio: self.ratio.as_ref(),
            baseline: &self.baseline,
            forecaster: &self.forecaster,
        }
    }

    /// Puts these models into a slot just made for their series, and
    /// gives back the series' ratio group if it saved one (only a ratio
    /// series does).
    pub fn claim(self, slot: &mut Slot) -> Option<RatioGroup> {
        // A counter stays a counter: keep the saved rate state only where
        // the new slot converts rates too.
        if let (true, Some(rate)) = (slot.counter, self.rate) {
            slot.rate = rate;
        }
        slot.series.baseline = self.baseline;
        slot.series.forecaster = self.forecaster;
        self.ratio
    }
}

impl Durable for AnalysisProcessor {
    fn state_name(&self) -> &'static str {
        "analysis"
    }

    /// 2: compact models (issue 7): no per-slot visit counts or run
    /// buffer, one interval scale per horizon, 16-bit counts. 3: the
    /// profiles' slot rates live in the settings, and the forecaster
    /// keeps no first time (the daily shape knows its own history).
    /// 4: a baseline's profile cells are one allocation, the
    /// forecaster's regression ring and tracked forecasts another (the
    /// discounted fit that replaced the ring keeps this version: see
    /// [`SavedForecastState`], which reads both).
    fn state_version(&self) -> u32 {
        4
    }

    /// Written [`CHUNK`] series per lock, so evaluation and ingest wait
    /// at most for one chunk (a series' models are kilobytes).
    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), DurableError> {
        let hashes: Vec<u64> = self.series.lock().keys().copied().collect();
        let mut items = Vec::new();
        let mut written = 0u64;
        for chunk in hashes.chunks(CHUNK) {
            let series = self.series.lock();
            let ratios = self.ratios.lock();
            for hash in chunk {
                let Some(slot) = series.get(hash) else {
                    continue;
                };
                let s = &slot.series;
                put(
                    &SavedRef {
                        hash: *hash,
                        last_point_secs: f64::from(slot.last_point),
                        rate: slot.rate(),
                        ratio: ratios.get(hash),
                        baseline: &s.baseline,
                        forecaster: &s.forecaster,
                    },
                    &mut items,
                )?;
                written += 1;
            }
        }
        // Models restored but not claimed yet are kept too (a claim moves
        // them into the series map, so none is written twice).
        for (hash, saved) in self.restored.lock().iter() {
            put(&saved.to_ref(*hash), &mut items)?;
            written += 1;
        }
        put(&written, out)?;
        out.extend_from_slice(&items);
        put(&self.forecast_settings.config().horizons_secs, out)?;
        Ok(())
    }

    fn restore(&self, snapshot: &[u8]) -> Result<Restored, DurableError> {
        let (count, mut rest): (u64, _) =
            postcard::take_from_bytes(snapshot).map_err(DurableError::decode)?;
        let mut outcome = Restored::default();
        // Built aside and taken in only once the whole snapshot has been
        // read: a snapshot that fails half-way leaves no model behind.
        let room = self
            .config
            .max_series
            .saturating_sub(self.restored.lock().len());
        let mut read = Vec::new();
        for _ in 0..count {
            let (saved, tail): (SavedOwned, _) =
                postcard::take_from_bytes(rest).map_err(DurableError::decode)?;
            rest = tail;
            read.push(saved);
        }
        // The horizons the forecasters were tracked for (snapshots of
        // earlier builds end with the series: taken to be the same).
        let same_horizons = if rest.is_empty() {
            true
        } else {
            let (horizons, tail): (Vec<f64>, _) =
                postcard::take_from_bytes(rest).map_err(DurableError::decode)?;
            rest = tail;
            horizons == self.forecast_settings.config().horizons_secs
        };
        if !rest.is_empty() {
            return Err(DurableError::decode(format!(
                "{} bytes after the last series",
                rest.len()
            )));
        }
        let mut restored = ByIdentity::default();
        for saved in read {
            let models = saved
                .baseline
                .resume(self.baseline_settings.clone())
                .zip(saved.forecaster.resume(&self.forecast_settings))
                .filter(|_| same_horizons);
            let Some((baseline, forecaster)) = models else {
                outcome.discarded += 1;
                continue;
            };
            if restored.len() >= room {
                outcome.discarded += 1;
                continue;
            }
            restored.insert(
                saved.hash,
                Saved {
                    last_point_secs: saved.last_point_secs,
                    rate: saved.rate,
                    ratio: saved.ratio,
                    baseline,
                    forecaster,
                },
            );
            outcome.items += 1;
        }
        self.restored.lock().extend(restored);
        Ok(outcome)
    }
}
