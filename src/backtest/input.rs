//! Reading backtest inputs: one CSV file, or every `*.csv` under a
//! directory (recursively, in sorted order), each with a header naming
//! `timestamp` and `value` columns. Errors name the file, the line and
//! the fix.

use std::path::{Path, PathBuf};

use super::timestamp;

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Bad {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: no CSV files found (expected a .csv file or a directory holding some)")]
    Empty { path: String },
}

/// One parsed row. Its texts are spans of the file's text (no
/// allocation per row).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub time_secs: f64,
    /// `None` for an empty or non-numeric cell (a gap).
    pub value: Option<f64>,
    timestamp: std::ops::Range<usize>,
    value_span: std::ops::Range<usize>,
}

/// A parsed file: its text and its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    text: String,
    pub rows: Vec<Row>,
}

impl Series {
    /// The timestamp of `row` as written.
    pub fn timestamp_text(&self, row: &Row) -> &str {
        &self.text[row.timestamp.clone()]
    }

    /// The value cell of `row` as written.
    pub fn value_text(&self, row: &Row) -> &str {
        &self.text[row.value_span.clone()]
    }
}

/// The byte range of `part` (a subslice of `whole`) within `whole`.
fn span(whole: &str, part: &str) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// The CSV files to process: (absolute path, path relative to the input).
/// A directory `skip` (the backtest's output, when it lies inside the
/// input) is passed over, so a second run does not read the first one's
/// output; each directory is read once however symbolic links lead back
/// to it.
pub fn discover(input: &Path, skip: Option<&Path>) -> Result<Vec<(PathBuf, PathBuf)>, InputError> {
    let io = |source| InputError::Io {
        path: input.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(input).map_err(io)?;
    let mut found = Vec::new();
    if meta.is_file() {
        let name = input.file_name().map(PathBuf::from).unwrap_or_default();
        found.push((input.to_path_buf(), name));
    } else {
        let mut seen = std::collections::HashSet::new();
        // (An output directory not made yet cannot hold inputs.)
        let skip = skip.and_then(|s| std::fs::canonicalize(s).ok());
        walk(input, input, skip.as_deref(), &mut seen, &mut found)?;
        found.sort_by(|a, b| a.1.cmp(&b.1));
    }
    if found.is_empty() {
        return Err(InputError::Empty {
            path: input.display().to_string(),
        });
    }
    Ok(found)
}

fn walk(
    root: &Path,
    dir: &Path,
    skip: Option<&Path>,
    seen: &mut std::collections::HashSet<PathBuf>,
    found: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), InputError> {
    let io = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    let real = std::fs::canonicalize(dir).map_err(io)?;
    // (The input itself is read even as the output: the backtest
    // refuses to write over its files.)
    if (dir != root && skip == Some(real.as_path())) || !seen.insert(real) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(root, &path, skip, seen, found)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            found.push((path, relative));
        }
    }
    Ok(())
}

/// Parses a whole CSV file.
pub fn read(path: &Path) -> Result<Series, InputError> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(text, &path.display().to_string())
}

/// Parses CSV text; `name` is used in errors.
pub fn parse(text: String, name: &str) -> Result<Series, InputError> {
    let rows = parse_rows(&text, name)?;
    Ok(Series { text, rows })
}

fn parse_rows(text: &str, name: &str) -> Result<Vec<Row>, InputError> {
    let bad = |line: usize, message: String| InputError::Bad {
        path: name.to_string(),
        line,
        message,
    };
    // A byte-order mark (as spreadsheet programs write) is not part of
    // the header.
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = body
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_index, header)) = lines.next() else {
        return Err(bad(
            1,
            "the file is empty; it needs a header `timestamp,value`".into(),
        ));
    };
    let columns: Vec<String> = cells(header)
        .map_err(|m| bad(header_index + 1, m))?
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let find = |name: &str| columns.iter().position(|c| c == name);
    let (Some(t_col), Some(v_col)) = (find("timestamp"), find("value")) else {
        return Err(bad(
            header_index + 1,
            format!("the header `{header}` must name the columns `timestamp` and `value`"),
        ));
    };
    let mut rows = Vec::new();
    let mut previous = f64::NEG_INFINITY;
    for (index, line) in lines {
        let cells = cells(line).map_err(|m| bad(index + 1, m))?;
        let (Some(t), Some(v)) = (cells.get(t_col), cells.get(v_col)) else {
            return Err(bad(
                index + 1,
                format!("expected {} columns, found {}", columns.len(), cells.len()),
            ));
        };
        let time_secs = timestamp::parse(t).map_err(|m| bad(index + 1, m))?;
        if time_secs < previous {
            return Err(bad(
                index + 1,
                format!("timestamp `{t}` is earlier than the row before; sort the file by time"),
            ));
        }
        previous = time_secs;
        let value = v.parse::<f64>().ok().filter(|x| x.is_finite());
        rows.push(Row {
            time_secs,
            value,
            timestamp: span(text, t),
            value_span: span(text, v),
        });
    }
    Ok(rows)
}

/// The cells of one CSV line (RFC 4180): separated by commas; a cell
/// in double quotes may hold commas, and `""` inside it stands for a
/// quote (left doubled in the span: the cells read here are numbers and
/// timestamps). Spaces around a cell, or inside its quotes around the
/// text, are not part of it.
fn cells(line: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start();
        let (cell, after) = if let Some(quoted) = trimmed.strip_prefix('"') {
            // The closing quote is the first one not doubled.
            let bytes = quoted.as_bytes();
            let mut i = 0;
            let close = loop {
                match bytes[i..].iter().position(|&b| b == b'"') {
                    Some(p) if bytes.get(i + p + 1) == Some(&b'"') => i += p + 2,
                    Some(p) => break i + p,
                    None => {
                        return Err(format!(
                            "a quoted cell is not closed in `{line}` (a cell may not span lines)"
                        ));
                    }
                }
            };
            let after = quoted[close + 1..].trim_start();
            if !(after.is_empty() || after.starts_with(',')) {
                return Err(format!(
                    "text follows a quoted cell's closing quote in `{line}`"
                ));
            }
            (quoted[..close].trim(), after)
        } else {
            let end = trimmed.find(',').unwrap_or(trimmed.len());
            (trimmed[..end].trim_end(), &trimmed[end..])
        };
        out.push(cell);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_gaps_and_reordered_columns() {
        let series = parse(
            "value,timestamp\n1.5,2014-04-10 00:00:00\n,2014-04-10 00:05:00\nx,1397088600\n".into(),
            "t.csv",
        )
        .unwrap();
        let rows = &series.rows;
        assert_eq!(rows.len(), 3);
        assert_eq!(series.timestamp_text(&rows[0]), "2014-04-10 00:00:00");
        assert_eq!(series.value_text(&rows[2]), "x");
        assert_eq!(rows[0].value, Some(1.5));
        assert_eq!(rows[1].value, None);
        assert_eq!(rows[2].value, None);
        assert_eq!(rows[1].time_secs - rows[0].time_secs, 300.0);
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        let err = parse("time,val\n1,2\n".into(), "a.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("a.csv:1:") && err.contains("`timestamp` and `value`"),
            "{err}"
        );
        let err = parse("timestamp,value\n1,2\nnope,3\n".into(), "b.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("b.csv:3:") && err.contains("RFC 3339"),
            "{err}"
        );
        let err = parse("timestamp,value\n5,2\n4,3\n".into(), "c.csv")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.csv:3:") && err.contains("sort"), "{err}");
    }

    #[test]
    fn quoted_cells_and_a_byte_order_mark() {
        let series = parse(
            "\u{feff}timestamp,note,value\n1700000000,\"x,1\",5\n1700000300,\"say \"\"hi\"\", 2\",6\n\"1700000600\" , \"z, 99\" ,\" 7\"\n".into(),
            "q.csv",
        )
        .unwrap();
        let values: Vec<_> = series.rows.iter().map(|r| r.value).collect();
        assert_eq!(values, vec![Some(5.0), Some(6.0), Some(7.0)]);
        assert_eq!(series.timestamp_text(&series.rows[2]), "1700000600");
        let err = parse("timestamp,value\n1,\"2\n".into(), "u.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("u.csv:2:") && err.contains("not closed"),
            "{err}"
        );
        assert_eq!(cells("a, b ,,\"c\"").unwrap(), vec!["a", "b", "", "c"]);
        assert_eq!(cells("").unwrap(), vec![""]);
        assert!(cells("\"a\"b,c").is_err());
    }

    #[test]
    fn discovers_csv_files_recursively_in_order() {
        let dir = std::env::temp_dir().join(format!("sg-backtest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("b/c")).unwrap();
        std::fs::write(dir.join("z.csv"), "timestamp,value\n").unwrap();
        std::fs::write(dir.join("b/c/a.csv"), "timestamp,value\n").unwrap();
        std::fs::write(dir.join("b/notes.txt"), "x").unwrap();
        // A link back up is followed once, and a skipped directory not at
        // all.
        std::os::unix::fs::symlink("..", dir.join("b/c/up")).unwrap();
        std::fs::create_dir_all(dir.join("out")).unwrap();
        std::fs::write(dir.join("out/z.csv"), "timestamp,value\n").unwrap();
        let found = discover(&dir, Some(&dir.join("out"))).unwrap();
        let relative: Vec<_> = found.iter().map(|(_, r)| r.display().to_string()).collect();
        assert_eq!(relative, vec!["b/c/a.csv", "z.csv"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
