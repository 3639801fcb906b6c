//! `${env:VAR}` substitution in the config text, before it is parsed.
//!
//! References inside YAML comments are left alone. A value substituted
//! inside a quoted scalar is escaped for that quoting (`"` and `\\` in
//! double quotes, `'` in single quotes), so a secret reaches the config
//! exactly as the variable holds it; a plain (unquoted) reference is
//! read as YAML, as in the OTel Collector (`port: ${env:PORT}` is a
//! number).
//!
//! Forms: `${env:VAR}`, `${env:VAR:-default}` (default when unset or
//! empty), and `$$` for a literal `$`. A reference to an unset variable
//! without a default is an error naming the line, not a silent empty value.

use super::ConfigError;

/// Replaces every environment reference in `text`, using `lookup` to read
/// variables (tests pass their own map).
pub fn substitute(
    text: &str,
    source: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (pos, quoting) in reference_positions(text) {
        if pos < copied {
            continue; // inside a reference already replaced, or after `$$`
        }
        out.push_str(&text[copied..pos]);
        let after = &text[pos + 1..];
        if after.starts_with('$') {
            out.push('$');
            copied = pos + 2;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            copied = pos + 1;
            continue;
        };
        let line = text[..pos].matches('\n').count() + 1;
        let error = |message: String| ConfigError::Substitution {
            source_name: source.to_string(),
            line,
            message,
        };
        let end = body
            .find('}')
            .ok_or_else(|| error("`${` without a closing `}`".into()))?;
        let reference = &body[..end];
        let name_and_default = reference.strip_prefix("env:").unwrap_or(reference);
        let (name, default) = match name_and_default.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (name_and_default, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(error(format!(
                "`${{{reference}}}` is not a valid reference; write ${{env:NAME}} or ${{env:NAME:-default}}"
            )));
        }
        let found = lookup(name);
        let value = match (found.clone().filter(|v| !v.is_empty()), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                let state = if found.is_some() { "empty" } else { "not set" };
                return Err(error(format!(
                    "environment variable {name} is {state}; set it or write ${{env:{name}:-default}}"
                )));
            }
        };
        push_quoted(&value, quoting, &mut out);
        copied = pos + 2 + end + 1;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// The scalar a reference sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Plain,
    Double,
    Single,
}

/// Appends `value` as it must be written inside `quoting` to read back
/// as itself.
fn push_quoted(value: &str, quoting: Quoting, out: &mut String) {
    match quoting {
        Quoting::Plain => out.push_str(value),
        Quoting::Single => out.push_str(&value.replace('\'', "''")),
        Quoting::Double => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
        }
    }
}

/// Positions of every `$` that is not inside a YAML comment, with the
/// scalar it sits in. A quote opens a quoted scalar only where a scalar
/// may begin (after `: `, `- `, `[`, `{`, `,` or at the start of a line),
/// so the apostrophe of `don't` in a plain value or a comment opens
/// nothing; a quoted scalar may go on over several lines. The lines of a
/// block scalar (`|` or `>`) are its text: a `#` or a quote there is
/// part of the value, and a reference there is plain.
fn reference_positions(text: &str) -> Vec<(usize, Quoting)> {
    let mut positions = Vec::new();
    let mut quote: Option<char> = None;
    let mut in_comment = false;
    let mut previous = '\n';
    // The last character before this one that is not a space or tab.
    let mut last_solid = '\n';
    // The indentation of the line that opened a block scalar, while its
    // lines are read; whether this line's last token is a block header.
    let mut block_of: Option<usize> = None;
    let mut header = false;
    let mut line_indent = 0;
    let mut chars = text.char_indices().peekable();
    let mut line_start = true;
    while let Some((i, c)) = chars.next() {
        if line_start {
            line_start = false;
            let indent = text[i..].len() - text[i..].trim_start_matches(' ').len();
            let blank = text[i + indent..]
                .chars()
                .next()
                .is_none_or(|n| n == '\n' || n == '\r');
            if quote.is_none() {
                line_indent = indent;
                if let Some(parent) = block_of {
                    if c != '\n' && (blank || indent > parent) {
                        // A line of the block scalar: all of it is text.
                        let end = text[i..].find('\n').map_or(text.len(), |e| i + e);
                        positions.extend(
                            text[i..end]
                                .match_indices('$')
                                .map(|(at, _)| (i + at, Quoting::Plain)),
                        );
                        while chars.next_if(|&(j, _)| j < end).is_some() {}
                        continue;
                    }
                    if !blank {
                        block_of = None;
                    }
                }
            }
        }
        if c == '\n' {
            in_comment = false;
            line_start = true;
            if quote.is_none() && header {
                block_of = Some(line_indent);
            }
            header = false;
        } else if in_comment {
            // comment text is copied as it is
        } else if let Some(q) = quote {
            if q == '"' && c == '\\' {
                // An escape: the next character is part of the value.
                chars.next();
                previous = c;
                continue;
            }
            if c == q {
                if q == '\'' && chars.peek().map(|&(_, n)| n) == Some('\'') {
                    chars.next(); // `''` is a quote inside single quotes
                } else {
                    quote = None;
                }
            } else if c == '$' {
                let quoting = if q == '"' {
                    Quoting::Double
                } else {
                    Quoting::Single
                };
                positions.push((i, quoting));
            }
        } else if c == '#' && previous.is_whitespace() {
            in_comment = true;
        } else if header && (c.is_ascii_digit() || matches!(c, '-' | '+' | ' ' | '\t' | '\r')) {
            // A block header's chomping and indentation indicators.
        } else {
            header = false;
            let begins = may_begin_scalar(previous, last_solid);
            if begins && matches!(c, '|' | '>') {
                header = true;
            } else if begins && (c == '"' || c == '\'') {
                quote = Some(c);
            } else if c == '$' {
                positions.push((i, Quoting::Plain));
            }
        }
        previous = c;
        if c != ' ' && c != '\t' {
            last_solid = c;
        }
    }
    positions
}

/// Whether a scalar may begin here: after whitespace or a flow
/// collection's `[`, `{`, `,`, following a key's `:`, a list's `-`, a
/// flow indicator or the start of a line.
fn may_begin_scalar(previous: char, last_solid: char) -> bool {
    (previous.is_whitespace() || matches!(previous, '[' | '{' | ','))
        && matches!(last_solid, '\n' | ':' | '-' | '[' | '{' | ',' | '?')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("9999".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_references_and_defaults() {
        let text = "a: ${env:PORT}\nb: ${env:NOPE:-x}\nc: ${EMPTY:-d}\nd: $$HOME\ne: $1";
        let out = substitute(text, "t.yaml", env).unwrap();
        assert_eq!(out, "a: 9999\nb: x\nc: d\nd: $HOME\ne: $1");
    }

    #[test]
    fn comments_are_not_substituted() {
        let text = "# use ${env:NAME}\na: x # ${env:NOPE}\nb: \"#${env:PORT}\"";
        let out = substitute(text, "t.yaml", env).unwrap();
        assert_eq!(out, "# use ${env:NAME}\na: x # ${env:NOPE}\nb: \"#9999\"");
    }

    /// A secret reaches the config as the variable holds it, whatever
    /// quoting the reference sits in.
    #[test]
    fn quoted_references_read_back_as_the_variable_holds_them() {
        let secret = "p\"a'ss\\word\nnext\t#1";
        let lookup = |n: &str| (n == "SECRET").then(|| secret.to_string());
        for text in [
            "a:\n  b: \"${env:SECRET}\"\n",
            "a:\n  b: '${env:SECRET}'\n",
            "a:\n  b: \"x\\\"${env:SECRET}\"\n",
            "a:\n  b: 'it''s ${env:SECRET}'\n",
            "a:\n  - \"${env:SECRET}\"\n",
            "a: [\"${env:SECRET}\"]\n",
        ] {
            let out = substitute(text, "t.yaml", lookup).unwrap();
            let parsed: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&out).unwrap_or_else(|e| panic!("{text}: {out}: {e}"));
            let value = match &parsed["a"] {
                serde_yaml_ng::Value::Sequence(items) => items[0].as_str().map(str::to_string),
                other => other["b"].as_str().map(str::to_string),
            }
            .unwrap_or_default();
            let single_folds = text.contains('\'');
            if single_folds {
                // Single quotes cannot hold a line break (it folds to a
                // space) or a tab escape; the rest is exact.
                assert!(
                    value.ends_with(&secret.replace('\n', " ")),
                    "{text}: {value:?}"
                );
            } else {
                assert!(value.ends_with(secret), "{text}: {value:?}");
            }
        }
    }

    /// An apostrophe in a plain value or a comment opens no quote: the
    /// comment after it is still a comment.
    #[test]
    fn an_apostrophe_inside_a_word_opens_no_quote() {
        let text = "a: don't # it's ${env:NOPE}\nb: ${env:PORT}\n";
        let out = substitute(text, "t.yaml", env).unwrap();
        assert_eq!(out, "a: don't # it's ${env:NOPE}\nb: 9999\n");
    }

    /// A quoted scalar goes on over its line breaks: a reference on its
    /// second line is escaped for its quotes, and a `#` there is text.
    #[test]
    fn a_quoted_scalar_over_several_lines_stays_quoted() {
        let lookup = |n: &str| (n == "SECRET").then(|| "a\"b'c".to_string());
        for (text, want) in [
            ("a: \"first\n  #${env:SECRET}\"\n", "first #a\"b'c"),
            ("a: 'first\n  #${env:SECRET}'\n", "first #a\"b'c"),
        ] {
            let out = substitute(text, "t.yaml", lookup).unwrap();
            let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
            assert_eq!(parsed["a"].as_str(), Some(want), "{text:?} → {out:?}");
        }
        // After the quote closes, a comment is a comment again.
        let text = "a: \"x\n  y\" # ${env:NOPE}\nb: ${env:PORT}\n";
        let out = substitute(text, "t.yaml", env).unwrap();
        assert_eq!(out, "a: \"x\n  y\" # ${env:NOPE}\nb: 9999\n");
    }

    /// The lines of a block scalar are text: a quote there opens nothing
    /// and a `#` comments nothing, so the reference after them is
    /// substituted; the block ends where the indentation does.
    #[test]
    fn a_block_scalar_is_text() {
        let text =
            "a: |-\n  it's \"#1\n\n  # ${env:PORT}\nb: x # ${env:NOPE}\nc: >\n  ${env:PORT}\n";
        let out = substitute(text, "t.yaml", env).unwrap();
        assert_eq!(
            out,
            "a: |-\n  it's \"#1\n\n  # 9999\nb: x # ${env:NOPE}\nc: >\n  9999\n"
        );
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
        assert_eq!(parsed["a"].as_str(), Some("it's \"#1\n\n# 9999"));
        // `>` inside a plain value is no header.
        let out = substitute("a: x > y\nb: ${env:PORT}\n", "t.yaml", env).unwrap();
        assert_eq!(out, "a: x > y\nb: 9999\n");
    }

    #[test]
    fn unset_variable_names_line() {
        let err = substitute("a: 1\nb: ${env:MISSING}\n", "t.yaml", env).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("t.yaml:2"), "{text}");
        assert!(text.contains("MISSING is not set"), "{text}");
        let err = substitute("a: ${env:EMPTY}\n", "t.yaml", env).unwrap_err();
        assert!(err.to_string().contains("EMPTY is empty"), "{err}");
    }
}
