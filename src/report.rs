//! What commands print for people: the plan of `lab up --dry-run` and the table of
//! `lab status`. (JSON output is the serialized model itself.)

use std::fmt::Write as _;

use crate::lab::Lab;
use crate::observe::{Member, Observed};
use crate::plan::{Action, Desired, Plan};

/// The dry run: every object `lab up` would make, and what it would do to each.
pub fn plan(lab: &Lab, desired: &Desired, plan: &Plan, only: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "lab `{}` (dry run: nothing is changed)", lab.name());
    let _ = writeln!(
        out,
        "\nnetwork {} subnet {} gateway {}",
        desired.network.name, desired.network.subnet, desired.network.gateway
    );
    let _ = writeln!(
        out,
        "\nimages (built from lab's own Dockerfiles, FROM {}):",
        lab.base_image()
    );
    for p in &plan.images_to_pull {
        let _ = writeln!(out, "  pull {} (missing; needed {})", p.image, p.needed_by);
    }
    for i in &desired.images {
        let what = if plan.images_to_build.iter().any(|b| b.tag == i.tag) {
            "build"
        } else {
            "keep"
        };
        // A service's own build names its directory; lab's own images share the header's base.
        let from = if i.builtin {
            String::new()
        } else {
            format!(" from {}", i.context.display())
        };
        let _ = writeln!(
            out,
            "  {what} {}{from} context-hash {}",
            i.tag,
            &i.context_hash[..12.min(i.context_hash.len())]
        );
    }
    if !desired.assets.is_empty() {
        let _ = writeln!(out, "\nbuilt assets:");
        for a in &desired.assets {
            let what = if plan.exports.contains(a) {
                "export"
            } else {
                "keep"
            };
            let _ = writeln!(
                out,
                "  {what} {} ({}) from image {}:{} into {} (profiles: {})",
                a.name,
                a.files.join(", "),
                a.image,
                a.path,
                a.dest.display(),
                a.users.join(", ")
            );
        }
    }
    let _ = writeln!(out, "\nvolumes:");
    for v in &desired.volumes {
        let what = if plan.volumes_to_create.contains(v) {
            "create"
        } else {
            "keep"
        };
        let _ = writeln!(out, "  {what} {}", v.name);
    }
    let _ = writeln!(out, "\ncontainers:");
    for c in desired
        .containers
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.lab_name))
    {
        let action = plan
            .actions
            .iter()
            .find(|a| a.name() == c.name)
            .map_or("create", Action::verb);
        let _ = writeln!(
            out,
            "  {action} {} ({}) image {} ip {}",
            c.name, c.role, c.image, c.ip
        );
        let ports: Vec<String> = c
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{}:{}->{}/{}",
                    p.host_ip, p.host_port, p.container_port, p.protocol
                )
            })
            .collect();
        list(&mut out, "ports", &ports);
        list(&mut out, "devices", &c.devices);
        list(&mut out, "caps", &c.cap_add);
        let mounts: Vec<String> = c
            .mounts
            .iter()
            .map(|m| {
                let ro = if m.read_only { ":ro" } else { "" };
                format!("{}:{}{ro}", m.source, m.target)
            })
            .collect();
        list(&mut out, "mounts", &mounts);
        let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        list(&mut out, "labels", &labels);
    }
    for a in plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Remove { .. }))
    {
        let _ = writeln!(out, "  remove {} (not in the lab file any more)", a.name());
    }
    let _ = writeln!(out, "\nfiles (under {}):", desired.state_dir.display());
    for f in &desired.files {
        let _ = writeln!(out, "  {}", f.path.display());
    }
    out
}

fn list(out: &mut String, what: &str, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(out, "      {what:<8} {}", items.join(", "));
    }
}

/// The plain-text table `lab status` prints.
pub fn status(r: &Observed) -> String {
    let mut rows = vec![["SERVICE", "KIND", "STATE", "IP", "ENDPOINTS"]
        .map(String::from)
        .to_vec()];
    for e in &r.services {
        rows.push(vec![
            e.name.clone(),
            e.kind.to_string(),
            state(e),
            ip(e),
            e.endpoints.join("  "),
        ]);
    }
    let mut out = format!("lab {}\n\n{}", r.lab, columns(&rows));
    if !r.nodes.is_empty() {
        let mut rows = vec![[
            "NODE",
            "STATE",
            "POWER",
            "PHASE",
            "FROM",
            "BOOTS",
            "MAC",
            "BOOT IP",
            "BMC IP",
            "ENDPOINTS",
        ]
        .map(String::from)
        .to_vec()];
        for e in &r.nodes {
            let phase = match (&e.phase, &e.phase_since, &e.problem) {
                (_, _, Some(problem)) => format!("stuck: {problem}"),
                (Some(p), Some(t), None) => format!("{p} since {}", short_time(t)),
                (Some(p), None, None) => p.to_string(),
                (None, _, None) => String::new(),
            };
            rows.push(vec![
                e.name.clone(),
                state(e),
                e.power.map(|p| p.to_string()).unwrap_or_default(),
                phase,
                e.boot_source.map(|b| b.to_string()).unwrap_or_default(),
                e.boots.map(|b| b.to_string()).unwrap_or_default(),
                e.mac.clone().unwrap_or_default(),
                e.boot_ip.clone().unwrap_or_default(),
                ip(e),
                e.endpoints.join("  "),
            ]);
        }
        out.push('\n');
        out.push_str(&columns(&rows));
    }
    out
}

fn state(m: &Member) -> String {
    m.state.map_or("absent".to_string(), |s| s.to_string())
}

fn ip(m: &Member) -> String {
    m.ip.map(|ip| ip.to_string()).unwrap_or_default()
}

/// `2026-11-21T01:02:03.456Z` -> `01:02:03`.
fn short_time(ts: &str) -> &str {
    ts.split_once('T')
        .map_or(ts, |(_, t)| t.get(..8).unwrap_or(t))
}

fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == r.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
