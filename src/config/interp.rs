//! `${VAR}` interpolation of string values, so that secrets (tokens, passwords) live in the
//! environment rather than in the lab file.
//!
//! Syntax: `${NAME}` (an error when NAME is unset), `${NAME:-default}` (default when unset or
//! empty) and `$$` for a literal `$`. A `$` followed by anything else is kept as written.

/// Why a value could not be interpolated; `offset` is the byte offset inside the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    #[error("environment variable `{name}` is not set")]
    Missing { name: String, offset: usize },
    #[error("`${{` at byte {offset} is not closed with `}}`")]
    Unclosed { offset: usize },
    #[error("`${{{text}}}` is not a variable name (letters, digits and `_`)")]
    BadName { text: String, offset: usize },
}

/// Resolves every `${...}` in `value` with `lookup`.
pub fn interpolate(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut pos = 0;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            pos += i + 2;
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let start = pos + i;
            let end = body
                .find('}')
                .ok_or(InterpError::Unclosed { offset: start })?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(InterpError::BadName {
                    text: expr.to_string(),
                    offset: start,
                });
            }
            match (
                lookup(name).filter(|v| !(default.is_some() && v.is_empty())),
                default,
            ) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(InterpError::Missing {
                        name: name.to_string(),
                        offset: start,
                    })
                }
            }
            pos += i + 2 + end + 1;
            rest = &body[end + 1..];
        } else {
            out.push('$');
            pos += i + 1;
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_and_keeps_other_text() {
        assert_eq!(interpolate("a ${TOKEN} b", &env).unwrap(), "a s3cret b");
        assert_eq!(
            interpolate("cost $5 and $$HOME", &env).unwrap(),
            "cost $5 and $HOME"
        );
        assert_eq!(
            interpolate("${NOPE:-dflt}/${EMPTY:-x}", &env).unwrap(),
            "dflt/x"
        );
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
    }

    #[test]
    fn reports_missing_unclosed_and_bad_names_with_offsets() {
        assert_eq!(
            interpolate("xx${NOPE}", &env),
            Err(InterpError::Missing {
                name: "NOPE".into(),
                offset: 2
            })
        );
        assert_eq!(
            interpolate("a${TOKEN", &env),
            Err(InterpError::Unclosed { offset: 1 })
        );
        assert!(matches!(
            interpolate("${a b}", &env),
            Err(InterpError::BadName { .. })
        ));
        assert_eq!(
            interpolate("$${X}${MISSING}", &env),
            Err(InterpError::Missing {
                name: "MISSING".into(),
                offset: 5
            })
        );
    }
}
