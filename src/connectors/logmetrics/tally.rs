//! The records of one resource counted by severity before any series is
//! touched: a request's thousand records usually carry a handful of
//! severities, so the series tables are probed once per severity instead
//! of once per record.

use std::collections::HashMap;

/// How many distinct severities are searched linearly before the rest go
/// to a hash map (a request whose texts are all different stays linear
/// in its size).
const LINEAR: usize = 16;

/// A severity as a record sends it: its number and its text.
pub type Severity<'a> = (i32, &'a str);

/// Records counted by severity, in the order each severity first came.
#[derive(Default)]
pub struct SeverityTally<'a> {
    /// The first [`LINEAR`] severities and their counts.
    first: Vec<(Severity<'a>, u64)>,
    /// Where the last record's severity is in `first`: runs of records
    /// of one severity are the common case.
    last: usize,
    /// Severities past the first [`LINEAR`], with their place in `order`.
    rest: HashMap<Severity<'a>, usize>,
    /// The severities in `rest`, in the order they first came, and counts.
    order: Vec<(Severity<'a>, u64)>,
}

impl<'a> SeverityTally<'a> {
    /// Counts one record.
    #[inline]
    pub fn add(&mut self, severity: Severity<'a>) {
        if let Some((seen, n)) = self.first.get_mut(self.last)
            && *seen == severity
        {
            *n += 1;
            return;
        }
        if let Some(i) = self.first.iter().position(|(s, _)| *s == severity) {
            self.first[i].1 += 1;
            self.last = i;
            return;
        }
        if self.first.len() < LINEAR {
            self.last = self.first.len();
            self.first.push((severity, 1));
            return;
        }
        let next = self.order.len();
        let at = *self.rest.entry(severity).or_insert(next);
        match self.order.get_mut(at) {
            Some((_, n)) => *n += 1,
            None => self.order.push((severity, 1)),
        }
    }

    /// Whether no record was counted.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Each severity counted and its number of records, in the order
    /// each first came.
    pub fn counts(&self) -> impl Iterator<Item = (Severity<'a>, u64)> + '_ {
        self.first.iter().chain(&self.order).copied()
    }

    /// Empties the tally for the next resource, keeping its room.
    pub fn clear(&mut self) {
        self.first.clear();
        self.last = 0;
        self.rest.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_severity_in_the_order_it_first_came() {
        let mut tally = SeverityTally::default();
        assert!(tally.is_empty());
        for s in [(9, "INFO"), (9, "INFO"), (17, ""), (9, "INFO"), (9, "info")] {
            tally.add(s);
        }
        let counts: Vec<_> = tally.counts().collect();
        assert_eq!(counts, [((9, "INFO"), 3), ((17, ""), 1), ((9, "info"), 1)]);
        tally.clear();
        assert!(tally.is_empty());
        assert_eq!(tally.counts().count(), 0);
    }

    #[test]
    fn many_distinct_severities_are_all_counted() {
        let texts: Vec<String> = (0..100).map(|i| format!("level-{i}")).collect();
        let mut tally = SeverityTally::default();
        for round in 0..3 {
            for (i, text) in texts.iter().enumerate() {
                if i % 3 >= round {
                    tally.add((0, text));
                }
            }
        }
        let counts: Vec<_> = tally.counts().collect();
        assert_eq!(counts.len(), 100);
        for (i, ((number, text), n)) in counts.into_iter().enumerate() {
            assert_eq!((number, text), (0, texts[i].as_str()));
            assert_eq!(n, (i % 3 + 1) as u64, "{text}");
        }
    }
}
