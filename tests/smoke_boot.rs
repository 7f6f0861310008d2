//! The smoke OS: `labs/smoke.toml` boots it, and (live) a node PXE-boots it from the lab's own
//! services: DHCP lease, iPXE script, kernel and initrd over HTTP, the report to the web service
//! and the banner with the node's reserved address on its serial console.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use metal_lab::engine::{DockerEngine, Engine, EngineError, LabelFilter};
use metal_lab::smoke;

/// How long a node may take from `lab up` to its report; about 30 s for three nodes here.
const BOOT_DEADLINE: Duration = Duration::from_secs(180);

#[test]
fn the_smoke_lab_boots_the_smoke_os_on_every_node() {
    let lab = metal_lab::lab::load(Path::new("labs/smoke.toml")).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        lab.nodes()
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["master", "worker-1", "worker-2"]
    );
    assert_eq!(smoke::profiles(&lab), ["smoke"]);
    let files = metal_lab::render::render(&lab).expect("render");
    let script = files
        .iter()
        .find(|f| f.path == Path::new("web/nodes/00-aa-bb-cc-dd-ef.ipxe"))
        .expect("worker-1's script");
    assert!(
        script
            .contents
            .contains("kernel http://192.168.26.3/smoke/vmlinuz initrd=initrd"),
        "{}",
        script.contents
    );
    assert!(
        script.contents.contains(
            "lab.node=worker-1 lab.report=http://192.168.26.3/lab/report/00-aa-bb-cc-dd-ef"
        ),
        "{}",
        script.contents
    );
    assert!(
        script
            .contents
            .contains("initrd --name initrd http://192.168.26.3/smoke/initrd"),
        "{}",
        script.contents
    );
}

#[test]
fn a_node_pxe_boots_the_smoke_os_reports_in_and_shows_its_address() {
    let Some(engine) = engine_or_skip("smoke_boot") else {
        return;
    };
    let u = unique("smoke");
    let t = TestLab::new(&u.name, &smoke_node_lab(&u, "02:5a:00:00:00:01"));
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");

    // The smoke OS is part of the plan: the dry run shows its build and export.
    let dry = t.lab(&["up", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let plan = stdout(&dry);
    assert!(
        plan.contains(
            "export smoke OS (vmlinuz, initrd, smoke.iso, disk.img.gz) from image metal-lab/smoke:latest:/out"
        ),
        "{plan}"
    );

    let out = t.lab(&["up", "--timeout", "300"]);
    assert!(out.status.success(), "lab up failed: {}", stderr(&out));
    let started = Instant::now();
    for f in ["vmlinuz", "initrd", "smoke.iso", "disk.img.gz"] {
        let size = std::fs::metadata(t.dir.path().join("webroot/smoke").join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 100_000, "webroot/smoke/{f} has {size} bytes");
    }
    let again = stdout(&t.lab(&["up", "--dry-run"]));
    assert!(
        again.contains("  keep smoke OS") && again.contains("  keep metal-lab/smoke:latest"),
        "a second run changes nothing: {again}"
    );
    copy_from_image_errors(&engine, &rt, t.dir.path());

    let web = format!("{}-web", u.name);
    let node = format!("{}-n", u.name);
    let report = "GET 204 0 /lab/report/02-5a-00-00-00-01";
    let banner = format!("lab-smoke: node n is up at {} ", u.ip(100));
    let console = || {
        let argv = ["cat".to_string(), "/var/lib/lab/console.log".to_string()];
        rt.block_on(engine.exec(&node, &argv))
            .map(|o| o.output)
            .unwrap_or_default()
    };
    loop {
        let log = rt.block_on(engine.logs(&web, None)).expect("web logs");
        let reported = log
            .lines()
            .any(|l| l.starts_with(&format!("{} ", u.ip(100))) && l.contains(report));
        if reported && console().contains(&banner) {
            eprintln!(
                "node n reported in {:.1}s after lab up returned",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        if started.elapsed() > BOOT_DEADLINE {
            let tail: String = console()
                .chars()
                .rev()
                .take(3000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!(
                "node n did not report in within {}s (report seen: {reported})\n--- web log ---\n{log}\n--- console (end) ---\n{tail}",
                BOOT_DEADLINE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let dhcp = rt
        .block_on(engine.logs(&format!("{}-dhcp", u.name), None))
        .expect("dhcp logs");
    assert!(
        dhcp.contains(&format!("DHCPACK(eth0) {} 02:5a:00:00:00:01", u.ip(100))),
        "{dhcp}"
    );

    let out = t.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down failed: {}", stderr(&out));
    assert_eq!(leftovers(&engine, &u.name), (0, 0, 0));
}

/// A path or image that is not there is a typed error, and the container used for the copy is
/// removed either way.
fn copy_from_image_errors(engine: &DockerEngine, rt: &tokio::runtime::Runtime, dir: &Path) {
    let dest = dir.join("copy");
    let missing =
        rt.block_on(engine.copy_from_image("metal-lab/smoke:latest", "/nothing-here", &dest));
    assert!(
        matches!(missing, Err(EngineError::NotFound { kind: "path", .. })),
        "{missing:?}"
    );
    let no_image =
        rt.block_on(engine.copy_from_image("metal-lab/no-such-image:latest", "/out", &dest));
    assert!(
        matches!(no_image, Err(EngineError::ImageMissing { .. })),
        "{no_image:?}"
    );
    let copied = rt
        .block_on(engine.copy_from_image("metal-lab/smoke:latest", "/out/initrd", &dest))
        .expect("copy one file");
    assert_eq!(copied, [Path::new("initrd")]);
    let filter = LabelFilter::new().has(metal_lab::engine::docker::LABEL_COPY_FROM_IMAGE);
    let left = rt.block_on(engine.list_containers(&filter)).expect("list");
    assert!(left.is_empty(), "copy containers left behind: {left:?}");
}
