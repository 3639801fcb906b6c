//! Values recorded per series between two drains of a connector's
//! table (the span durations the window processor is handed), kept in
//! one buffer in arrival order rather than one buffer per series: a
//! point appends to memory just written, where a buffer per series would
//! miss the cache on nearly every point once there are thousands of
//! series. At the drain they are grouped by series with a counting sort.

/// The held values and, after [`HeldValues::group`], their grouping.
#[derive(Default)]
pub struct HeldValues {
    /// The series index and the value of each held value, in arrival
    /// order (two arrays: 12 bytes a value, where pairs would pad to 16).
    series: Vec<u32>,
    values: Vec<f64>,
    /// Grouped values, and where each series' run starts (`starts[i]`
    /// to `starts[i + 1]`).
    grouped: Vec<f64>,
    starts: Vec<u32>,
}

impl HeldValues {
    /// Holds `value` for series `index` (below `u32::MAX`).
    #[inline]
    pub fn push(&mut self, index: usize, value: f64) {
        if let Ok(index) = u32::try_from(index) {
            self.series.push(index);
            self.values.push(value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Groups the held values of series `0..series` by series (in arrival
    /// order within each) for [`HeldValues::of`], and empties the log.
    /// Values of an index past `series` are dropped.
    pub fn group(&mut self, series: usize) {
        self.starts.clear();
        self.grouped.clear();
        let used = self.series.len();
        // Nothing held (the tables that hold nothing): every series gets
        // an empty run without a pass over the series.
        if used > 0 {
            self.group_held(series);
        }
        // After a burst, and once values stop coming, give back most of
        // what the log grew to.
        trim_after_clear(&mut self.series, used);
        trim_after_clear(&mut self.values, used);
    }

    /// [`HeldValues::group`] of a log that holds values.
    fn group_held(&mut self, series: usize) {
        self.starts.resize(series + 1, 0);
        for &i in &self.series {
            if let Some(n) = self.starts.get_mut(i as usize + 1) {
                *n += 1;
            }
        }
        for i in 1..self.starts.len() {
            self.starts[i] += self.starts[i - 1];
        }
        let total = self.starts.last().copied().unwrap_or(0) as usize;
        self.grouped.resize(total, 0.0);
        // Fill each run from its start; `starts[i]` ends at run i's end,
        // which is run i + 1's start, and is set back below.
        for (&i, &v) in self.series.iter().zip(&self.values) {
            let i = i as usize;
            if i < series
                && let Some(at) = self.starts.get_mut(i)
            {
                self.grouped[*at as usize] = v;
                *at += 1;
            }
        }
        for i in (1..self.starts.len()).rev() {
            self.starts[i] = self.starts[i - 1];
        }
        if let Some(first) = self.starts.first_mut() {
            *first = 0;
        }
    }

    /// The values grouped for series `index` by the last
    /// [`HeldValues::group`].
    pub fn of(&self, index: usize) -> &[f64] {
        match (self.starts.get(index), self.starts.get(index + 1)) {
            (Some(&a), Some(&b)) => self.grouped.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Lets the grouped values go (keeping a modest allocation).
    pub fn release(&mut self) {
        let used = self.grouped.len();
        trim_after_clear(&mut self.grouped, used);
        self.starts.clear();
    }
}

/// Empties `list`, which held `used` entries, and gives back most of its
/// allocation when that is more than four times what it held (and more
/// than a modest floor): a list grown by a burst shrinks once the burst
/// has passed, one that stays busy keeps its room.
pub fn trim_after_clear<T>(list: &mut Vec<T>, used: usize) {
    list.clear();
    if list.capacity() > 4 * used.max(1024) {
        list.shrink_to(2 * used);
    }
}

#[cfg(test)]
mod tests {
    use super::HeldValues;

    #[test]
    fn values_are_grouped_by_series_in_arrival_order() {
        let mut held = HeldValues::default();
        for (i, v) in [(2, 0.5), (0, 1.0), (2, 0.25), (3, 7.0), (0, 2.0), (9, 3.0)] {
            held.push(i, v);
        }
        held.group(4);
        assert_eq!(held.of(0), &[1.0, 2.0]);
        assert_eq!(held.of(1), &[] as &[f64]);
        assert_eq!(held.of(2), &[0.5, 0.25]);
        assert_eq!(held.of(3), &[7.0]);
        assert_eq!(held.of(9), &[] as &[f64], "past the series: dropped");
        assert!(held.is_empty(), "the log is emptied");
        held.release();
        assert_eq!(held.of(0), &[] as &[f64]);
        held.push(1, 4.0);
        held.group(2);
        assert_eq!(held.of(0), &[] as &[f64]);
        assert_eq!(held.of(1), &[4.0]);
    }

    #[test]
    fn what_a_burst_grew_is_given_back_once_it_has_passed() {
        let mut held = HeldValues::default();
        for i in 0..100_000 {
            held.push(i % 10, i as f64);
        }
        held.group(10);
        assert_eq!(held.of(3).len(), 10_000);
        held.release();
        // The next drain holds nothing: the burst's room goes.
        held.group(10);
        assert!(
            held.series.capacity() <= 4 * 1024,
            "{}",
            held.series.capacity()
        );
        assert!(
            held.values.capacity() <= 4 * 1024,
            "{}",
            held.values.capacity()
        );
        held.release();
        assert!(
            held.grouped.capacity() <= 4 * 1024,
            "{}",
            held.grouped.capacity()
        );
        // A steady stream keeps its room from one drain to the next.
        for round in 0..3 {
            for i in 0..5_000 {
                held.push(i % 10, i as f64);
            }
            held.group(10);
            assert_eq!(held.of(0).len(), 500, "round {round}");
            assert!(held.series.capacity() >= 5_000, "round {round}");
            held.release();
        }
    }

    #[test]
    fn values_are_kept_exactly() {
        let mut held = HeldValues::default();
        held.push(0, 0.005);
        held.push(0, 0.123_456_789_012);
        held.group(1);
        assert_eq!(held.of(0), &[0.005, 0.123_456_789_012]);
    }
}
