//! The dotted key path (`nodes.worker.cpus`, `services.web.ports[1]`) at a byte offset of a lab
//! file, so that a TOML type error names the key as well as line and column.
//!
//! serde's errors carry only a span; the path is found by parsing the document again with its
//! spans (which succeeds: the syntax was fine, only a type was wrong) and looking for the deepest
//! key or value that holds the offset.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The key path at the error span, or `None` when the document does not parse or nothing in it
/// holds that position.
pub(super) fn key_path(text: &str, span: &Range<usize>) -> Option<String> {
    // A span at the very start or over the whole file (a missing top-level table) has no key.
    if span.start == 0 && (span.end == 0 || span.end >= text.len()) {
        return None;
    }
    let doc = DeTable::parse(text).ok()?;
    let mut best: Option<(usize, String)> = None;
    walk_table(doc.get_ref(), span.start, &mut Vec::new(), &mut best);
    best.map(|(_, p)| p)
}

fn contains(s: Range<usize>, at: usize) -> bool {
    s.start <= at && at < s.end.max(s.start + 1)
}

/// Remembers `path` when it is deeper than the best found so far; a key that holds the offset
/// itself (an unknown key) counts as deeper than any value around it.
fn note(path: &[String], exact: bool, best: &mut Option<(usize, String)>) {
    let depth = if exact { usize::MAX } else { path.len() };
    if best.as_ref().is_none_or(|(d, _)| depth > *d) {
        let mut s = String::new();
        for seg in path {
            if !seg.starts_with('[') && !s.is_empty() {
                s.push('.');
            }
            s.push_str(seg);
        }
        *best = Some((depth, s));
    }
}

fn walk_table(
    table: &DeTable<'_>,
    at: usize,
    path: &mut Vec<String>,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table {
        path.push(segment(key.get_ref()));
        if contains(key.span(), at) {
            note(path, true, best);
        } else if contains(value.span(), at) {
            note(path, false, best);
        }
        walk_value(value, at, path, best);
        path.pop();
    }
}

fn walk_value(
    value: &Spanned<DeValue<'_>>,
    at: usize,
    path: &mut Vec<String>,
    best: &mut Option<(usize, String)>,
) {
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, at, path, best),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                if contains(item.span(), at) {
                    note(path, false, best);
                }
                walk_value(item, at, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A key as TOML would write it: bare when it can be, else quoted (`sha256."rancheros.iso"`).
fn segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> Option<String> {
        let i = text.find(needle).expect("needle");
        key_path(text, &(i..i + needle.len()))
    }

    #[test]
    fn finds_values_in_tables_arrays_and_inline_tables() {
        let t = "[vars]\nx = [1, 2]\n\n[nodes.worker]\ncpus = \"2\"\n\n[services.web]\nports = [\"1:1\", 2]\nenv = { A = 3 }\n";
        assert_eq!(at(t, "[1, 2]").as_deref(), Some("vars.x"));
        assert_eq!(at(t, "\"2\"").as_deref(), Some("nodes.worker.cpus"));
        assert_eq!(at(t, "2]\nenv").as_deref(), Some("services.web.ports[1]"));
        assert_eq!(at(t, "3 }").as_deref(), Some("services.web.env.A"));
        assert_eq!(at("[a]\n\"b.c\" = 1\n", "1").as_deref(), Some("a.\"b.c\""));
        assert_eq!(
            at("[a]\n\n[node.n2]\nx = 1\n", "node").as_deref(),
            Some("node")
        );
    }
}
