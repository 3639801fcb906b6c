//! HTTP lists with quality weights, as `Accept` and `Accept-Encoding`
//! send them (`name;param;q=0.5, other`): each entry's name and weight.

/// Each entry of `header`: its name (trimmed) and its weight: 1 without a
/// `q` parameter, `None` when the weight does not parse.
pub(super) fn entries(header: &str) -> impl Iterator<Item = (&str, Option<f32>)> {
    header.split(',').map(|entry| {
        let mut params = entry.split(';').map(str::trim);
        let name = params.next().unwrap_or_default();
        let weight = params
            .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
        (name, weight)
    })
}

#[cfg(test)]
mod tests {
    use super::entries;

    #[test]
    fn entries_have_their_weight_one_by_default_and_none_when_unreadable() {
        let got: Vec<_> = entries("gzip, zstd;q=0.5 , br;level=3;Q=0, x;q=bogus").collect();
        assert_eq!(
            got,
            [
                ("gzip", Some(1.0)),
                ("zstd", Some(0.5)),
                ("br", Some(0.0)),
                ("x", None)
            ]
        );
    }
}
