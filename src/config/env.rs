//! `${env:VAR}` substitution in the config text, before it is parsed.
//!
//! References inside YAML comments are left alone.
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
    for pos in reference_positions(text) {
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
        let value = match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(error(format!(
                    "environment variable {name} is not set; set it or write ${{env:{name}:-default}}"
                )));
            }
        };
        out.push_str(&value);
        copied = pos + 2 + end + 1;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// Positions of every `$` that is not inside a YAML comment.
fn reference_positions(text: &str) -> Vec<usize> {
    let mut positions = Vec::new();
    let mut quote: Option<char> = None;
    let mut in_comment = false;
    let mut previous = '\n';
    for (i, c) in text.char_indices() {
        if c == '\n' {
            quote = None;
            in_comment = false;
        } else if in_comment {
            // comment text is copied as it is
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '$' {
                positions.push(i);
            }
        } else if c == '#' && previous.is_whitespace() {
            in_comment = true;
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        } else if c == '$' {
            positions.push(i);
        }
        previous = c;
    }
    positions
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

    #[test]
    fn unset_variable_names_line() {
        let err = substitute("a: 1\nb: ${env:MISSING}\n", "t.yaml", env).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("t.yaml:2"), "{text}");
        assert!(text.contains("MISSING"), "{text}");
    }
}
