//! A small YAML writer for JSON values: block style, one document per value. Strings are plain
//! only when no YAML 1.1 or 1.2 reader can take them for anything else (a number, a boolean,
//! null, a date, a flow or block indicator); otherwise they are double-quoted with JSON's escapes,
//! which YAML's double-quoted style reads the same.

use serde_json::Value;

/// `# comment`, then each value as a `---` document.
pub fn documents(comment: &str, docs: &[Value]) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for d in docs {
        out.push_str("---\n");
        block(d, 0, &mut out);
    }
    out
}

/// Writes a value that starts on its own line at `indent`.
fn block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                out.push_str(&pad);
                out.push_str(&scalar_str(k));
                out.push(':');
                child(v, indent, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                // The item's block at indent + 2, with its first indent replaced by "- ".
                let mut inner = String::new();
                block(item, indent + 2, &mut inner);
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&inner[indent + 2..]);
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

/// The value after `key:`: inline when it is a scalar or empty, else on the next lines.
fn child(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            block(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block(v, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_str(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Words that YAML 1.1 readers (PyYAML, go-yaml v2) take for booleans or null.
const RESERVED: [&str; 12] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan", "inf",
];

fn scalar_str(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::documents;

    #[test]
    fn writes_block_yaml_with_quoted_ambiguous_strings() {
        let doc = json!({
            "kind": "Secret",
            "metadata": { "name": "a-bmc-secret", "labels": { "metal-lab.io/lab": "smoke" } },
            "spec": {
                "online": true,
                "port": 623,
                "mac": "00:aa:bb:cc:dd:ee",
                "word": "yes",
                "cpu": "2",
                "empty": {},
                "none": [],
                "list": [{ "dhcp": { "mac": "x" }, "n": 1 }, "b", ["c"]],
                "text": "a \"quoted\" 'word'\nline",
            },
        });
        let text = documents("made by a test", &[doc.clone(), json!({ "a": 1 })]);
        assert_eq!(
            text,
            "# made by a test\n---\nkind: Secret\nmetadata:\n  name: a-bmc-secret\n  labels:\n    \
             metal-lab.io/lab: smoke\nspec:\n  online: true\n  port: 623\n  mac: \
             \"00:aa:bb:cc:dd:ee\"\n  word: \"yes\"\n  cpu: \"2\"\n  empty: {}\n  none: []\n  \
             list:\n    - dhcp:\n        mac: x\n      \"n\": 1\n    - b\n    - - c\n  text: \
             \"a \\\"quoted\\\" 'word'\\nline\"\n---\na: 1\n"
        );
    }
}
