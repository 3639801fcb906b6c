//! Label names: every run of characters outside `[a-zA-Z0-9]` becomes one
//! `_`, a name starting with a digit gets `key_` in front, and a key with
//! no letter or digit at all is `_`. That is the
//! OTel specification's rule; otlptranslator's label namer keeps runs of
//! `_` and puts `key` before one leading `_` (docs/METRICS.md). Shared by
//! the exporter and by the alerts, whose labels match the series'.

/// Whether `name` is a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a user may set a label of this name: a label name not
/// starting with `__` (reserved for Prometheus's own use).
pub fn is_settable_label_name(name: &str) -> bool {
    is_label_name(name) && !name.starts_with("__")
}

/// Writes the Prometheus label name for an attribute key into `out`.
/// A key with no letter or digit (`ようこそ`, `__`) becomes `_`, so its
/// values still keep series apart; only the empty key writes nothing,
/// which drops the label.
pub fn sanitize_label_into(key: &str, out: &mut String) {
    let start = out.len();
    if is_already_valid(key) {
        out.push_str(key);
        return;
    }
    let mut last_underscore = false;
    for c in key.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
            last_underscore = false;
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
    }
    finish(out, start);
}

/// Fast path: a key already valid and in canonical form needs no work.
fn is_already_valid(key: &str) -> bool {
    let bytes = key.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() => {}
        _ => return false,
    }
    let mut last_underscore = false;
    for b in bytes {
        match b {
            b'_' if last_underscore => return false,
            b'_' => last_underscore = true,
            b if b.is_ascii_alphanumeric() => last_underscore = false,
            _ => return false,
        }
    }
    true
}

fn finish(out: &mut String, start: usize) {
    let label = &out[start..];
    if label.is_empty() {
        return;
    }
    if label.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(start, "key_");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sanitize(key: &str) -> String {
        let mut out = String::from("prefix:");
        sanitize_label_into(key, &mut out);
        out.split_off("prefix:".len())
    }

    #[test]
    fn upstream_vectors() {
        let cases = [
            ("label:with:colons", "label_with_colons"),
            ("LabelWithCapitalLetters", "LabelWithCapitalLetters"),
            ("label!with&special$chars)", "label_with_special_chars_"),
            (
                "label_with_foreign_characters_字符",
                "label_with_foreign_characters_",
            ),
            ("label.with.dots", "label_with_dots"),
            (".foo", "_foo"),
            ("123label", "key_123label"),
            (
                "_label_starting_with_underscore",
                "_label_starting_with_underscore",
            ),
            (
                "__label_starting_with_2underscores",
                "_label_starting_with_2underscores",
            ),
            (
                "label__with__double__underscores",
                "label_with_double_underscores",
            ),
            (
                "label.name__with&&special##chars",
                "label_name_with_special_chars",
            ),
            ("trailing_underscores___", "trailing_underscores_"),
            ("http.method", "http_method"),
            ("label@with$symbols", "label_with_symbols"),
            ("service.version", "service_version"),
        ];
        for (key, want) in cases {
            assert_eq!(sanitize(key), want, "key {key:?}");
        }
        assert_eq!(sanitize("ようこそ"), "_");
        assert_eq!(sanitize(""), "");
        assert_eq!(sanitize("__"), "_");
        assert_eq!(sanitize("名 前"), "_");
    }
}
