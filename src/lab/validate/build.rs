//! A `container` service's own image: `build = "DIR"` and `cap_add`.

use std::ops::Range;

use super::Validator;
use crate::config::Str;
use crate::lab::Build;

impl Validator<'_> {
    /// The tag lab builds a service's context into, scoped to the lab.
    pub(super) fn build_tag(&self, service: &str) -> String {
        format!("metal-lab/{}-{service}:latest", self.lab_name)
    }

    /// The build directory: present, holding a Dockerfile, and hashed.
    pub(super) fn build(
        &mut self,
        b: &Str,
        table: &Range<usize>,
        key: &str,
        _name: &str,
    ) -> Option<Build> {
        let key = format!("{key}.build");
        let dir = self.dir_path(Some(b), "", table, &key)?;
        let dockerfile = dir.join("Dockerfile");
        let text = match std::fs::read_to_string(&dockerfile) {
            Ok(t) => t,
            Err(e) => {
                let msg = if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "the build directory has no Dockerfile ({})",
                        dockerfile.display()
                    )
                } else {
                    format!("cannot read {}: {e}", dockerfile.display())
                };
                self.err(
                    Some(b.span()),
                    key,
                    msg,
                    "a build directory holds a Dockerfile (named exactly so), as for `docker build DIR`",
                );
                return None;
            }
        };
        match crate::images::dir_hash(&dir) {
            Ok(hash) => Some(Build {
                from: first_from(&text),
                dir,
                hash,
            }),
            Err(e) => {
                self.err(
                    Some(b.span()),
                    key,
                    format!("cannot read the build directory {}: {e}", dir.display()),
                    "check the permissions of the files in it",
                );
                None
            }
        }
    }

    /// Capabilities as Docker names them: upper-case letters and `_` (`NET_ADMIN`).
    pub(super) fn cap_add(&mut self, caps: &[Str], key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in caps.iter().enumerate() {
            let ckey = format!("{key}.cap_add[{i}]");
            let Some(t) = self.text(c, &ckey) else {
                continue;
            };
            let ok = t.len() <= 40
                && t.starts_with(|ch: char| ch.is_ascii_uppercase())
                && t.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_');
            if ok {
                out.push(t);
            } else {
                self.err(
                    Some(c.span()),
                    ckey,
                    format!("`{t}` is not a capability name"),
                    "write a Linux capability in upper case, e.g. NET_ADMIN or SYS_PTRACE",
                );
            }
        }
        out
    }
}

/// The image a Dockerfile's first `FROM` names; empty for `scratch` or a `$VARIABLE`.
fn first_from(dockerfile: &str) -> String {
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let image = words.find(|w| !w.starts_with("--")).unwrap_or_default();
        if image == "scratch" || image.contains('$') {
            return String::new();
        }
        return image.to_string();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_from_skips_flags_and_ignores_scratch_and_variables() {
        use super::first_from;
        assert_eq!(
            first_from("# x\nFROM --platform=linux/amd64 debian:bookworm-slim AS b\nFROM alpine\n"),
            "debian:bookworm-slim"
        );
        assert_eq!(first_from("FROM scratch\n"), "");
        assert_eq!(first_from("ARG B\nFROM ${B}\n"), "");
    }
}
