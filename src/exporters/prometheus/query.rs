//! [`SeriesQuery`] over the series store, for the JSON API: listing the
//! series a selector matches (stored, then derived: everything `/metrics`
//! serves but StreamGate's own) and reading (and starting) a stored
//! series' history.
//! Both run off the ingest path: a listing holds each shard of a family
//! only while it picks that shard's matching series.

use std::collections::BTreeMap;

use crate::pipeline::query::{
    HistoryError, NameMatch, SeriesHistory, SeriesInfo, SeriesMatcher, SeriesPage, SeriesQuery,
};

use super::PrometheusExporter;
use super::store::{Family, LabelSet, LabelSource, parse_label_block};

fn label_map(block: &str) -> BTreeMap<String, String> {
    parse_label_block(block).into_iter().collect()
}

impl SeriesQuery for PrometheusExporter {
    fn sum_by(
        &self,
        name: &str,
        by: &[&str],
        filter: &[(&str, &str)],
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        let Some(family) = self.store().family(name) else {
            return Vec::new();
        };
        let mut sums: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
        for shard in family.shards() {
            let table = shard.lock();
            for s in table.iter() {
                let super::store::SeriesValue::Number(v) = s.state.value else {
                    continue;
                };
                let labels = label_map(&s.labels().to_string());
                if !filter
                    .iter()
                    .all(|(k, want)| labels.get(*k).is_some_and(|v| v == want))
                {
                    continue;
                }
                let key = by
                    .iter()
                    .map(|k| (k.to_string(), labels.get(*k).cloned().unwrap_or_default()))
                    .collect();
                *sums.entry(key).or_insert(0.0) += v;
            }
        }
        sums.into_iter().collect()
    }

    fn find_series(&self, matcher: &SeriesMatcher, limit: usize) -> SeriesPage {
        let store = self.store();
        let families: Vec<std::sync::Arc<Family>> = match &matcher.name {
            NameMatch::Exact(name) => store.family(name).into_iter().collect(),
            _ => store
                .families_sorted()
                .into_iter()
                .filter(|f| matcher.name.matches(f.name()))
                .collect(),
        };
        let mut page = SeriesPage::default();
        for family in families {
            let room = limit - page.series.len();
            // (label block, parsed labels) of the matching series, one
            // shard locked at a time.
            let mut found: Vec<(String, Option<BTreeMap<String, String>>)> = Vec::new();
            for shard in family.shards() {
                let table = shard.lock();
                found.extend(table.iter().filter_map(|s| {
                    let block = s.labels().to_string();
                    if matcher.labels.is_empty() {
                        return Some((block, None));
                    }
                    let labels = label_map(&block);
                    matcher
                        .labels_match(&labels)
                        .then_some((block, Some(labels)))
                }));
            }
            if found.len() > room {
                page.truncated = true;
                if room == 0 {
                    break;
                }
                found.select_nth_unstable_by(room - 1, |a, b| a.0.cmp(&b.0));
                found.truncate(room);
            }
            found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            page.series
                .extend(found.into_iter().map(|(block, labels)| SeriesInfo {
                    name: family.name().to_string(),
                    kind: family.kind().as_str(),
                    labels: labels.unwrap_or_else(|| label_map(&block)),
                }));
            if page.truncated {
                break;
            }
        }
        if !page.truncated {
            self.find_derived(matcher, limit, &mut page);
        }
        page
    }

    fn series_history(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<SeriesHistory, HistoryError> {
        let mut set = LabelSet::new();
        for (label, value) in labels {
            set.push_str(label, value, LabelSource::Derived);
        }
        set.finish();
        let watched = self.store().watch(name, &set).ok_or_else(|| {
            if !self.derived_families_where(|n| n == name).is_empty() {
                return HistoryError::Derived(name.to_string());
            }
            HistoryError::NotFound(if set.is_empty() {
                name.to_string()
            } else {
                format!("{name}{{{}}}", set.text())
            })
        })?;
        Ok(SeriesHistory {
            name: name.to_string(),
            kind: watched.kind.as_str(),
            labels: label_map(set.text()),
            capacity: watched.capacity,
            points: watched.points,
        })
    }
}

impl PrometheusExporter {
    /// Adds the derived series (`pipeline::derived`) `matcher` picks to
    /// `page`, after the stored ones, up to `limit` in all: each family's
    /// series sorted by label block, the extra label (`horizon`,
    /// `threshold`) among the labels.
    fn find_derived(&self, matcher: &SeriesMatcher, limit: usize, page: &mut SeriesPage) {
        for entry in self.derived_families_where(|name| matcher.name.matches(name)) {
            let room = limit.saturating_sub(page.series.len());
            let mut found: Vec<BTreeMap<String, String>> = Vec::new();
            entry.source.walk(entry.key, &mut |block, extra, _| {
                let mut labels = label_map(&block.joined());
                if let Some((k, v)) = extra {
                    labels.insert(k.to_string(), v.to_string());
                }
                if matcher.labels_match(&labels) {
                    found.push(labels);
                }
                true
            });
            found.sort_unstable();
            if found.len() > room {
                page.truncated = true;
                found.truncate(room);
            }
            page.series
                .extend(found.into_iter().map(|labels| SeriesInfo {
                    name: entry.name.clone(),
                    kind: "gauge",
                    labels,
                }));
            if page.truncated {
                return;
            }
        }
    }
}
