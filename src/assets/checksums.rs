//! Checksums files as release pages publish them, e.g. RancherOS's `checksums.txt`:
//!
//! ```text
//! sha256: 1b2c...  rancheros.iso      RancherOS (also md5: lines, which are ignored)
//! 1b2c...  rancheros.iso              sha256sum (`*name` in binary mode)
//! SHA256 (rancheros.iso) = 1b2c...    BSD / `sha256sum --tag`
//! ```

use std::collections::BTreeMap;

/// SHA-256 hashes (lowercase hex) by file name. Lines of other algorithms, comments and
/// anything unrecognised are skipped; a path such as `./dist/vmlinuz` is keyed by its last
/// component, since assets name plain files. When a name appears twice the first entry wins.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some((hash, name)) = parse_line(line.trim()) {
            let name = name.rsplit('/').next().unwrap_or(name).to_string();
            out.entry(name).or_insert(hash);
        }
    }
    out
}

fn parse_line(line: &str) -> Option<(String, &str)> {
    if let Some(rest) = line.strip_prefix("SHA256 (") {
        let (name, hash) = rest.rsplit_once(") = ")?;
        return sha256_hex(hash).map(|h| (h, name));
    }
    let rest = match line.split_once(':') {
        Some((algo, rest)) if algo.eq_ignore_ascii_case("sha256") => rest.trim_start(),
        Some((algo, _)) if !algo.contains(char::is_whitespace) => return None,
        _ => line,
    };
    let (hash, name) = rest.split_once(char::is_whitespace)?;
    let name = name.trim_start();
    let name = name.strip_prefix('*').unwrap_or(name).trim_end();
    if name.is_empty() {
        return None;
    }
    sha256_hex(hash).map(|h| (h, name))
}

fn sha256_hex(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::parse;

    const A: &str = "a3f1c0ffee00000000000000000000000000000000000000000000000000beef";
    const B: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn rancheros_format_skips_md5() {
        let text = format!("md5: d41d8cd98f00b204e9800998ecf8427e  vmlinuz\nsha256: {A}  vmlinuz\nsha256: {B}  initrd\n");
        let m = parse(&text);
        assert_eq!(m.len(), 2);
        assert_eq!(m["vmlinuz"], A);
        assert_eq!(m["initrd"], B);
    }

    #[test]
    fn sha256sum_and_bsd_formats() {
        let upper = A.to_uppercase();
        let text = format!("{upper}  ./dist/vmlinuz\n{B} *initrd\n# comment\n\nSHA256 (rancheros.iso) = {A}\nnot a line\n");
        let m = parse(&text);
        assert_eq!(
            m["vmlinuz"], A,
            "lowercased, keyed by the last path component"
        );
        assert_eq!(m["initrd"], B, "binary-mode star stripped");
        assert_eq!(m["rancheros.iso"], A);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn short_or_non_hex_hashes_are_skipped() {
        let m = parse("sha256: abc  vmlinuz\nzz00000000000000000000000000000000000000000000000000000000000000  initrd\n");
        assert!(m.is_empty());
    }

    #[test]
    fn first_entry_wins() {
        let m = parse(&format!("{A}  vmlinuz\n{B}  vmlinuz\n"));
        assert_eq!(m["vmlinuz"], A);
    }
}
