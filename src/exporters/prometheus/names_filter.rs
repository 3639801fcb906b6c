//! [`NameFilter`]: the `name[]` URL parameter of `/metrics`, as the
//! Prometheus client libraries' exporters take it: only the named metrics
//! are rendered, so a scrape job (`params: {name[]: [...]}`) or a probe
//! can read a few families out of millions of series.

/// Sample-name suffixes a family's lines may carry besides its name
/// (counters are stored under their `_total` name already).
const SUFFIXES: [&str; 4] = ["_bucket", "_count", "_sum", "_created"];

/// The names asked for; empty means every family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter {
    names: Vec<String>,
}

impl NameFilter {
    /// Every family.
    pub fn all() -> Self {
        Self::default()
    }

    /// The `name[]` values of a decoded query string's pairs (other
    /// parameters are ignored; empty values are skipped).
    pub fn from_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let names = pairs
            .into_iter()
            .filter(|(key, value)| *key == "name[]" && !value.is_empty())
            .map(|(_, value)| value.to_string())
            .collect();
        Self { names }
    }

    pub fn is_all(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether the family `family` (its name in the store, e.g.
    /// `requests_total` for a counter) is asked for: by that name, by its
    /// name without `_total`, or by one of its sample names
    /// (`<family>_bucket`, `_count`, `_sum`, `_created`).
    pub fn matches(&self, family: &str) -> bool {
        if self.names.is_empty() {
            return true;
        }
        let base = family.strip_suffix("_total").unwrap_or(family);
        self.names.iter().any(|name| {
            name == family
                || name == base
                || SUFFIXES
                    .iter()
                    .any(|s| name.strip_suffix(s).is_some_and(|n| n == base))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_select_families_by_family_and_sample_names() {
        let f = NameFilter::from_query([
            ("name[]", "requests_total"),
            ("name[]", "latency_seconds_bucket"),
            ("name[]", "queue"),
            ("name[]", ""),
            ("other", "x"),
        ]);
        assert!(!f.is_all());
        assert!(f.matches("requests_total"));
        assert!(f.matches("latency_seconds"));
        assert!(f.matches("queue"));
        assert!(
            f.matches("queue_total"),
            "a counter asked for by its base name"
        );
        assert!(!f.matches("requests"), "a gauge is not a counter's base");
        assert!(!f.matches("latency"));
        assert!(!f.matches("queue_depth"));

        let all = NameFilter::from_query([("other", "x")]);
        assert!(all.is_all() && all.matches("anything"));
        assert_eq!(all, NameFilter::all());
    }
}
