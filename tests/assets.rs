//! `lab fetch-assets` against a real HTTP server on 127.0.0.1 that the tests run themselves: it
//! serves ranges, can ignore them, drop the connection mid-body, stall, fail, and answer 404.
//! Also the `[assets.NAME]` checks of the lab file and `missing_assets`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metal_lab::assets::{self, FetchError, Outcome};
use metal_lab::lab::{self, Lab};
use metal_lab::ui::Progress;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 server: one thread per connection, `Connection: close`, every request logged.

#[derive(Debug, Clone, Copy)]
enum Behavior {
    /// 200, or 206 for `Range: bytes=N-`.
    Normal,
    /// Always 200 with the whole body, Range or not.
    IgnoreRange,
    /// Announces the full length, sends this many bytes, then closes the connection.
    DropAfter(usize),
    /// Sends this many bytes, then nothing for the duration, then closes.
    Stall(usize, Duration),
    /// Only this status, no body.
    Status(u16),
}

struct Route {
    body: Vec<u8>,
    /// Behaviors of the next requests, one each; then `always`.
    once: VecDeque<Behavior>,
    always: Behavior,
}

#[derive(Debug, Clone)]
struct Req {
    path: String,
    range: Option<String>,
}

struct Server {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    log: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("addr").port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let log: Arc<Mutex<Vec<Req>>> = Arc::default();
        let (r, l) = (routes.clone(), log.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (r, l) = (r.clone(), l.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &r, &l);
                });
            }
        });
        Server { port, routes, log }
    }

    fn url(&self, dir: &str) -> String {
        format!("http://127.0.0.1:{}/{dir}", self.port)
    }

    fn add(&self, path: &str, body: &[u8]) {
        self.routes.lock().unwrap().insert(
            path.to_string(),
            Route {
                body: body.to_vec(),
                once: VecDeque::new(),
                always: Behavior::Normal,
            },
        );
    }

    /// The next request for `path` behaves so (queued after earlier ones).
    fn once(&self, path: &str, b: Behavior) {
        self.routes
            .lock()
            .unwrap()
            .get_mut(path)
            .expect("route")
            .once
            .push_back(b);
    }

    fn always(&self, path: &str, b: Behavior) {
        self.routes
            .lock()
            .unwrap()
            .get_mut(path)
            .expect("route")
            .always = b;
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    fn requests_for(&self, path: &str) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

fn serve(
    conn: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    log: &Mutex<Vec<Req>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let (path, range) = loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("range") {
                    range = Some(v.trim().to_string());
                }
            }
        }
        // As a proxy: open the tunnel (logged as `CONNECT host:port`), then serve what comes
        // through it as if it had been asked directly.
        if line.starts_with("CONNECT ") {
            log.lock().unwrap().push(Req {
                path: format!("CONNECT {path}"),
                range: None,
            });
            out.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            continue;
        }
        break (path, range);
    };
    log.lock().unwrap().push(Req {
        path: path.clone(),
        range: range.clone(),
    });
    let (body, behavior) = {
        let mut routes = routes.lock().unwrap();
        match routes.get_mut(&path) {
            None => (Vec::new(), Behavior::Status(404)),
            Some(r) => (r.body.clone(), r.once.pop_front().unwrap_or(r.always)),
        }
    };
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let head = |status: &str, extra: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n")
    };
    let (head, part): (String, &[u8]) = match (behavior, from) {
        (Behavior::Status(code), _) => (head(&format!("{code} Status"), "", 0), &[]),
        (Behavior::IgnoreRange, _) | (_, None) => (head("200 OK", "", body.len()), &body[..]),
        (_, Some(n)) if n >= body.len() => (
            head(
                "416 Range Not Satisfiable",
                &format!("Content-Range: bytes */{}\r\n", body.len()),
                0,
            ),
            &[],
        ),
        (_, Some(n)) => {
            let cr = format!(
                "Content-Range: bytes {n}-{}/{}\r\n",
                body.len() - 1,
                body.len()
            );
            (head("206 Partial Content", &cr, body.len() - n), &body[n..])
        }
    };
    out.write_all(head.as_bytes())?;
    match behavior {
        Behavior::DropAfter(n) => {
            out.write_all(&part[..n.min(part.len())])?;
            out.flush()?;
            out.shutdown(Shutdown::Both)?;
        }
        Behavior::Stall(n, d) => {
            out.write_all(&part[..n.min(part.len())])?;
            out.flush()?;
            std::thread::sleep(d);
            out.shutdown(Shutdown::Both)?;
        }
        _ => {
            for chunk in part.chunks(64 * 1024) {
                out.write_all(chunk)?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Deterministic file contents that differ per seed.
fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .wrapping_add(u32::from(seed) * 7919)
                .to_le_bytes()[1]
        })
        .collect()
}

/// A lab directory with `lab.toml`; assets go to `webroot/os`.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(assets: &str) -> Dir {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "[lab]\nname = \"assets\"\n\n[network]\nsubnet = \"10.250.0.0/24\"\n\n{assets}"
        );
        std::fs::write(dir.path().join("lab.toml"), text).expect("write lab.toml");
        Dir { dir }
    }
    fn file(&self) -> PathBuf {
        self.dir.path().join("lab.toml")
    }
    fn dest(&self, file: &str) -> PathBuf {
        self.dir.path().join("webroot/os").join(file)
    }
    fn lab(&self) -> Lab {
        lab::load(&self.file()).unwrap_or_else(|d| panic!("{d}"))
    }
    /// `lab -f lab.toml ARGS` with plain output and no proxy from the environment.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
        cmd.current_dir(self.dir.path())
            .arg("-f")
            .arg(self.file())
            .args(args)
            .env("CI", "true");
        for v in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
            "LAB_ASSET_MIRROR",
        ] {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run lab");
        eprintln!(
            "$ lab {}\n--- status {:?}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Options for library calls: quick retries and stall detection.
fn quick() -> assets::Options {
    assets::Options {
        stall_timeout: Duration::from_millis(400),
        backoff: Duration::from_millis(50),
        ..assets::Options::default()
    }
}

fn fetch(lab: &Lab, opts: &assets::Options) -> Vec<assets::FileReport> {
    let all: Vec<_> = lab.assets().values().collect();
    assets::fetch(&all, opts, &Progress::quiet()).expect("proxy settings")
}

/// A server with `rel/vmlinuz` (300 KiB), `rel/initrd` (4 MiB) and `rel/SHA256SUMS` in
/// sha256sum format; `rel/checksums.txt` in RancherOS's format (with md5 lines).
fn release() -> (Server, Vec<u8>, Vec<u8>) {
    let s = Server::start();
    let (k, i) = (content(1, 300 * 1024), content(2, 4 << 20));
    s.add("/rel/vmlinuz", &k);
    s.add("/rel/initrd", &i);
    s.add(
        "/rel/SHA256SUMS",
        format!("{}  vmlinuz\n{}  initrd\n", sha256(&k), sha256(&i)).as_bytes(),
    );
    let rancher = format!(
        "md5: 0123456789abcdef0123456789abcdef  vmlinuz\nsha256: {}  vmlinuz\nsha256: {}  initrd\n",
        sha256(&k),
        sha256(&i)
    );
    s.add("/rel/checksums.txt", rancher.as_bytes());
    (s, k, i)
}

fn asset_table(base_url: &str, checksums: &str) -> String {
    format!("[assets.os]\nbase_url = \"{base_url}\"\nfiles = [\"vmlinuz\", \"initrd\"]\nchecksums = \"{checksums}\"\ndest = \"webroot/os\"\n")
}

// ---------------------------------------------------------------------------------------------
// Downloads

#[test]
fn full_download_then_skip_without_network() {
    let (s, k, i) = release();
    let d = Dir::new(&asset_table(&s.url("rel"), "checksums.txt"));
    let out = d.run(&["fetch-assets"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(d.dest("vmlinuz")).unwrap(), k);
    assert_eq!(std::fs::read(d.dest("initrd")).unwrap(), i);
    assert!(
        d.dest("checksums.txt").is_file(),
        "the checksums file is kept beside the files"
    );
    assert!(!d.dest("vmlinuz.part").exists() && !d.dest("initrd.part").exists());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("2 files: 2 downloaded (4.3 MiB), 0 already present, 0 failed"),
        "{stdout}"
    );
    // Reads are at most 1 MiB, so a 4 MiB file passes at least one quarter mark.
    assert!(
        stdout.lines().any(|l| l.contains("os/initrd: ")
            && l.contains("% (")
            && l.contains(" of 4194304 bytes)")),
        "plain progress lines per quarter: {stdout}"
    );

    let before = s.requests().len();
    let out = d.run(&["fetch-assets", "os"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        s.requests().len(),
        before,
        "files present and verified: no request at all"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("os/vmlinuz  already present, sha256 verified"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 files: 0 downloaded (0 B), 2 already present, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn sha256sum_format_and_present_files_need_only_the_checksums() {
    let (s, k, _) = release();
    let d = Dir::new(&asset_table(&s.url("rel"), "SHA256SUMS"));
    // vmlinuz is there already (copied by hand), with no local checksums to verify it against.
    std::fs::create_dir_all(d.dest("")).unwrap();
    std::fs::write(d.dest("vmlinuz"), &k).unwrap();
    let reports = fetch(&d.lab(), &quick());
    assert!(reports.iter().all(|r| r.ok()), "{reports:#?}");
    assert!(matches!(reports[0].result, Ok(Outcome::Present)));
    assert!(matches!(reports[1].result, Ok(Outcome::Downloaded(_))));
    assert!(
        s.requests_for("/rel/vmlinuz").is_empty(),
        "the present file is verified, not downloaded"
    );
    assert_eq!(s.requests_for("/rel/SHA256SUMS").len(), 1);
}

#[test]
fn a_stale_local_checksums_copy_does_not_condemn_a_good_file() {
    let (s, k, _) = release();
    let d = Dir::new(&asset_table(&s.url("rel"), "SHA256SUMS"));
    std::fs::create_dir_all(d.dest("")).unwrap();
    std::fs::write(d.dest("vmlinuz"), &k).unwrap();
    // The kept copy of the checksums file is out of date: it names another vmlinuz.
    std::fs::write(
        d.dest("SHA256SUMS"),
        format!("{}  vmlinuz\n", sha256(b"an older kernel")),
    )
    .unwrap();
    let reports = fetch(&d.lab(), &quick());
    assert!(reports.iter().all(|r| r.ok()), "{reports:#?}");
    assert!(
        matches!(reports[0].result, Ok(Outcome::Present)),
        "{reports:#?}"
    );
    assert!(
        s.requests_for("/rel/vmlinuz").is_empty(),
        "the good file is verified against the source's checksums, not downloaded again"
    );
    assert_eq!(std::fs::read(d.dest("vmlinuz")).unwrap(), k);
}

#[test]
fn resume_after_a_dropped_connection() {
    let (s, k, _) = release();
    s.once("/rel/vmlinuz", Behavior::DropAfter(100_000));
    let d = Dir::new(&asset_table(&s.url("rel"), "checksums.txt"));
    let out = d.run(&["fetch-assets"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let reqs = s.requests_for("/rel/vmlinuz");
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].range, None);
    assert_eq!(
        reqs[1].range.as_deref(),
        Some("bytes=100000-"),
        "the second request resumes"
    );
    assert_eq!(std::fs::read(d.dest("vmlinuz")).unwrap(), k);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("broke after 97.7 KiB") && stdout.contains("retrying in 0.5s"),
        "{stdout}"
    );
    assert!(stdout.contains("after 1 retry"), "{stdout}");
}

#[test]
fn resume_a_part_file_left_by_an_earlier_run() {
    let (s, _, i) = release();
    let d = Dir::new(&asset_table(&s.url("rel"), "checksums.txt"));
    std::fs::create_dir_all(d.dest("")).unwrap();
    std::fs::write(d.dest("initrd.part"), &i[..700_000]).unwrap();
    let reports = fetch(&d.lab(), &quick());
    let Ok(Outcome::Downloaded(dl)) = &reports[1].result else {
        panic!("{reports:#?}")
    };
    assert_eq!(
        (dl.resumed_from, dl.size, dl.retries),
        (700_000, i.len() as u64, 0)
    );
    assert_eq!(
        s.requests_for("/rel/initrd")[0].range.as_deref(),
        Some("bytes=700000-")
    );
    assert_eq!(std::fs::read(d.dest("initrd")).unwrap(), i);
    assert!(!d.dest("initrd.part").exists());
}

#[test]
fn a_complete_part_file_is_verified_and_renamed() {
    let (s, _, i) = release();
    let d = Dir::new(&asset_table(&s.url("rel"), "checksums.txt"));
    std::fs::create_dir_all(d.dest("")).unwrap();
    std::fs::write(d.dest("initrd.part"), &i).unwrap();
    let reports = fetch(&d.lab(), &quick());
    assert!(reports.iter().all(|r| r.ok()), "{reports:#?}");
    assert_eq!(
        s.requests_for("/rel/initrd")[0].range.as_deref(),
        Some(format!("bytes={}-", i.len()).as_str()),
        "416 for a range past the end"
    );
    assert_eq!(std::fs::read(d.dest("initrd")).unwrap(), i);
}

#[test]
fn start_over_when_the_server_ignores_ranges() {
    let (s, _, i) = release();
    s.always("/rel/initrd", Behavior::IgnoreRange);
    let d = Dir::new(&asset_table(&s.url("rel"), "checksums.txt"));
    std::fs::create_dir_all(d.dest("")).unwrap();
    // A stale part that does not even match: appending the 200 body to it would be corrupt.
    std::fs::write(d.dest("initrd.part"), vec![0xAAu8; 4096]).unwrap();
    let out = d.run(&["fetch-assets"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let reqs = s.requests_for("/rel/initrd");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].range.as_deref(), Some("bytes=4096-"));
    assert_eq!(std::fs::read(d.dest("initrd")).unwrap(), i);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("the server ignored the range request; starting over (4.0 KiB discarded)")
    );
    assert!(
        !stdout.contains("resumed at"),
        "nothing was resumed: {stdout}"
    );
}

/// Two `lab fetch-assets` of one file at once: the second is refused while the first holds the
/// `.part` file (its transfer stalls for 2 s), instead of writing into it too; the first
/// finishes with the whole file.
#[test]
fn a_second_fetch_of_a_file_being_downloaded_is_refused() {
    let (s, k, _) = release();
    s.once(
        "/rel/vmlinuz",
        Behavior::Stall(50_000, Duration::from_secs(2)),
    );
    let d = Dir::new(&format!(
        "[assets.os]\nbase_url = \"{}\"\nfiles = [\"vmlinuz\"]\nsha256 = {{ vmlinuz = \"{}\" }}\ndest = \"webroot/os\"\n",
        s.url("rel"),
        sha256(&k)
    ));
    std::thread::scope(|scope| {
        let first = scope.spawn(|| d.run(&["fetch-assets"], &[]));
        let started = std::time::Instant::now();
        // The first holds the lock before it asks, and until the file is in place.
        while s.requests_for("/rel/vmlinuz").is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the first never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let second = d.run(&["fetch-assets"], &[]);
        assert_eq!(second.status.code(), Some(1));
        let stderr = text(&second.stderr);
        assert!(
            stderr.contains(&format!(
                "file `vmlinuz`: another lab process is downloading it (it holds {})",
                d.dest("vmlinuz.part").display()
            )) && stderr.contains("help: wait for the other `lab fetch-assets` to finish"),
            "{stderr}"
        );
        let first = first.join().unwrap();
        assert_eq!(first.status.code(), Some(0));
    });
    assert_eq!(std::fs::read(d.dest("vmlinuz")).unwrap(), k);
    assert!(!d.dest("vmlinuz.part").exists());
    let reqs = s.requests_for("/rel/vmlinuz");
    assert_eq!(
        reqs.len(),
        2,
        "only the first asked, then resumed: {reqs:?}"
    );
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=50000-"));
}

#[test]
fn a_stalled_transfer_times_out_and_resumes() {
    let (s, k, _) = release();
    s.once(
        "/rel/vmlinuz",
        Behavior::Stall(50_000, Duration::from_secs(3)),
    );
    let d = Dir::new(&asset_table(&s.url("rel"), "checksums.txt"));
    let start = std::time::Instant::now();
    let reports = fetch(&d.lab(), &quick());
    assert!(reports.iter().all(|r| r.ok()), "{reports:#?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the stall timeout cut it short: {:?}",
        start.elapsed()
    );
    let reqs = s.requests_for("/rel/vmlinuz");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=50000-"));
    assert_eq!(std::fs::read(d.dest("vmlinuz")).unwrap(), k);
}

#[test]
fn server_errors_are_retried_then_reported() {
    let (s, _, _) = release();
    s.once("/rel/vmlinuz", Behavior::Status(503));
    s.always("/rel/initrd", Behavior::Status(500));
    let d = Dir::new(&asset_table(&s.url("rel"), "checksums.txt"));
    let opts = assets::Options {
        attempts: 3,
        ..quick()
    };
    let reports = fetch(&d.lab(), &opts);
    assert!(reports[0].ok(), "one 503, then fine: {reports:#?}");
    assert_eq!(s.requests_for("/rel/vmlinuz").len(), 2);
    assert_eq!(
        s.requests_for("/rel/initrd").len(),
        3,
        "3 attempts without progress"
    );
    let err = reports[1].result.as_ref().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "HTTP 500 Internal Server Error from {}/initrd",
            s.url("rel")
        )
    );
    assert!(!d.dest("initrd").exists());
}

#[test]
fn mismatch_deletes_the_download_and_names_both_hashes() {
    let (s, k, _) = release();
    let wrong = "0".repeat(64);
    let d = Dir::new(&format!(
        "[assets.os]\nbase_url = \"{}\"\nfiles = [\"vmlinuz\"]\nsha256 = {{ vmlinuz = \"{wrong}\" }}\ndest = \"webroot/os\"\n",
        s.url("rel")
    ));
    let out = d.run(&["fetch-assets"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let url = format!("{}/vmlinuz", s.url("rel"));
    let expect = format!(
        "error: 1 of 1 files of lab `assets` failed:\n  asset `os`, file `vmlinuz`: SHA-256 mismatch for {url}: expected {wrong} (pinned in the lab file), got {}; the download was deleted\n",
        sha256(&k)
    );
    assert!(stderr.starts_with(&expect), "{stderr}");
    assert!(
        stderr.contains("help: the file served is not the one expected"),
        "{stderr}"
    );
    assert!(
        !d.dest("vmlinuz").exists() && !d.dest("vmlinuz.part").exists(),
        "nothing is left behind"
    );
    assert!(
        s.requests_for("/rel/checksums.txt").is_empty(),
        "a pinned hash needs no checksums file"
    );
}

#[test]
fn not_found_names_the_url() {
    let (s, _, _) = release();
    let d = Dir::new(&format!(
        "[assets.os]\nbase_url = \"{}\"\nfiles = [\"vmlinuz\", \"gone.iso\"]\nsha256 = {{ \"gone.iso\" = \"{}\" }}\nchecksums = \"checksums.txt\"\ndest = \"webroot/os\"\n",
        s.url("rel"),
        "a".repeat(64)
    ));
    let out = d.run(&["fetch-assets"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr).replace(&s.port.to_string(), "PORT");
    insta::assert_snapshot!("not_found_stderr", stderr);
    assert_eq!(
        s.requests_for("/rel/gone.iso").len(),
        1,
        "a 404 is not retried"
    );
    assert!(d.dest("vmlinuz").is_file(), "the other file still arrives");
    assert!(
        !d.dest("checksums.txt").exists(),
        "the checksums copy is kept only when every file verified"
    );
}

#[test]
fn a_file_missing_from_the_checksums_list() {
    let s = Server::start();
    s.add("/rel/a", b"aaa");
    s.add(
        "/rel/SHA256SUMS",
        format!("{}  other\n", sha256(b"x")).as_bytes(),
    );
    let d = Dir::new(&format!("[assets.os]\nbase_url = \"{}\"\nfiles = [\"a\"]\nchecksums = \"SHA256SUMS\"\ndest = \"webroot/os\"\n", s.url("rel")));
    let reports = fetch(&d.lab(), &quick());
    let err = reports[0].result.as_ref().unwrap_err();
    assert!(matches!(err, FetchError::NotListed { .. }));
    assert_eq!(
        err.to_string(),
        format!("{}/SHA256SUMS lists no SHA-256 for `a`", s.url("rel"))
    );
    assert!(
        s.requests_for("/rel/a").is_empty(),
        "nothing is downloaded that cannot be verified"
    );
}

#[test]
fn check_verifies_offline() {
    let (s, k, _) = release();
    let d = Dir::new(&asset_table(&s.url("rel"), "checksums.txt"));
    let out = d.run(&["fetch-assets", "--check"], &[]);
    assert_eq!(out.status.code(), Some(1), "nothing downloaded yet");
    assert!(
        text(&out.stderr)
            .contains("webroot/os/vmlinuz is missing\n    help: run `lab fetch-assets -f"),
        "{}",
        text(&out.stderr)
    );
    assert!(s.requests().is_empty(), "--check never touches the network");

    assert_eq!(d.run(&["fetch-assets"], &[]).status.code(), Some(0));
    let before = s.requests().len();
    let out = d.run(&["fetch-assets", "--check"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("2 files: 2 verified, 0 missing or not verified"));

    let mut bad = k.clone();
    bad[10] ^= 1;
    std::fs::write(d.dest("vmlinuz"), &bad).unwrap();
    let out = d.run(&["fetch-assets", "--check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "SHA-256 mismatch for {}: expected {}",
            d.dest("vmlinuz").display(),
            sha256(&k)
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("got {}\n", sha256(&bad))),
        "{stderr}"
    );
    assert!(d.dest("vmlinuz").exists(), "--check changes nothing");
    assert_eq!(
        s.requests().len(),
        before,
        "--check never touches the network"
    );

    // fetch replaces the corrupt file.
    assert_eq!(d.run(&["fetch-assets"], &[]).status.code(), Some(0));
    assert_eq!(std::fs::read(d.dest("vmlinuz")).unwrap(), k);
}

#[test]
fn mirror_serves_every_file_and_the_checksums() {
    let (s, k, i) = release();
    for (name, body) in [("vmlinuz", &k), ("initrd", &i)] {
        s.add(&format!("/mirror/{name}"), body);
    }
    s.add(
        "/mirror/checksums.txt",
        format!(
            "sha256: {}  vmlinuz\nsha256: {}  initrd\n",
            sha256(&k),
            sha256(&i)
        )
        .as_bytes(),
    );
    // base_url points at a port nothing listens on: only the mirror can work.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = Dir::new(&asset_table(
        &format!("http://127.0.0.1:{dead}/rel"),
        "checksums.txt",
    ));
    let out = d.run(
        &["fetch-assets", "--mirror", &format!("{}/", s.url("mirror"))],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let paths: Vec<String> = s.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 3);
    assert!(paths.iter().all(|p| p.starts_with("/mirror/")), "{paths:?}");
    assert_eq!(std::fs::read(d.dest("initrd")).unwrap(), i);

    // The same from the environment.
    let d2 = Dir::new(&asset_table(
        &format!("http://127.0.0.1:{dead}/rel"),
        "checksums.txt",
    ));
    let out = d2.run(&["fetch-assets"], &[("LAB_ASSET_MIRROR", &s.url("mirror"))]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(d2.dest("vmlinuz")).unwrap(), k);
}

#[test]
fn proxy_from_the_environment() {
    let (s, k, _) = release();
    // A host nobody can resolve: only the proxy (our server, tunnelling) can reach it.
    let d = Dir::new(&asset_table("http://assets.invalid/rel", "checksums.txt"));
    let proxy = format!("http://127.0.0.1:{}", s.port);
    let out = d.run(&["fetch-assets"], &[("HTTP_PROXY", &proxy)]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(d.dest("vmlinuz")).unwrap(), k);
    let tunnels = s
        .requests()
        .iter()
        .filter(|r| r.path == "CONNECT assets.invalid:80")
        .count();
    assert_eq!(tunnels, 3, "checksums and both files through the proxy");

    // no_proxy names the host: lab connects directly, which cannot work here.
    let d = Dir::new(&asset_table("http://assets.invalid/rel", "checksums.txt"));
    let out = d.run(
        &["fetch-assets"],
        &[("HTTP_PROXY", &proxy), ("no_proxy", "example.org,.invalid")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("asset `os`, file `checksums.txt`: cannot fetch http://assets.invalid/rel/checksums.txt: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("asset `os`, file `vmlinuz`: not fetched: its SHA-256 comes from http://assets.invalid/rel/checksums.txt, which could not be fetched"),
        "{stderr}"
    );
    assert_eq!(
        tunnels,
        s.requests()
            .iter()
            .filter(|r| r.path.starts_with("CONNECT"))
            .count()
    );
}

#[test]
fn bad_mirror_and_unknown_asset_are_usage_errors() {
    let d = Dir::new(&asset_table("http://127.0.0.1:9/rel", "checksums.txt"));
    let out = d.run(&["fetch-assets", "--mirror", "ftp://host/x"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(
        "`ftp://host/x` is not a mirror URL: lab downloads over http and https, not `ftp`"
    ));
    let out = d.run(&["fetch-assets", "kernel"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr)
        .contains("lab `assets` has no asset named `kernel`\n  help: use one of: os"));
}

#[test]
fn a_lab_without_assets_has_nothing_to_fetch() {
    let d = Dir::new("");
    let out = d.run(&["fetch-assets"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout)
        .contains("lab `assets` has no assets ([assets.NAME] tables): nothing to fetch"));
}

// ---------------------------------------------------------------------------------------------
// The asset table in the lab file

fn invalid(assets: &str) -> String {
    let text =
        format!("[lab]\nname = \"assets\"\n\n[network]\nsubnet = \"10.250.0.0/24\"\n\n{assets}");
    match lab::from_str(Path::new("lab.toml"), &text, &|_| None) {
        Ok(_) => panic!("expected errors for:\n{assets}"),
        Err(d) => d.to_string(),
    }
}

#[test]
fn asset_url_must_be_http() {
    let e = invalid("[assets.os]\nbase_url = \"github.com/rancher/os\"\nfiles = [\"vmlinuz\"]\nchecksums = \"sums\"\ndest = \"w\"\n");
    insta::assert_snapshot!("invalid_base_url", e);
    let e = invalid("[assets.os]\nbase_url = \"ftp://mirror/os\"\nfiles = [\"vmlinuz\"]\nchecksums = \"sums\"\ndest = \"w\"\n");
    assert!(e.contains("error: lab.toml:8:12: assets.os.base_url: `ftp://mirror/os` is not a download URL: lab downloads over http and https, not `ftp`"), "{e}");
}

#[test]
fn pinned_hashes_name_listed_files_and_are_hex() {
    let e = invalid(&format!(
        "[assets.os]\nbase_url = \"https://example.org/os\"\nfiles = [\"vmlinuz\", \"initrd\"]\nsha256 = {{ vmlinuz = \"xyz\", initrd = \"{}\", kernel = \"{}\" }}\ndest = \"w\"\n",
        "b".repeat(64),
        "c".repeat(64)
    ));
    insta::assert_snapshot!("invalid_sha256", e);
    assert!(e.contains(
        "assets.os.sha256.kernel: `kernel` is not one of the files of this asset (vmlinuz, initrd)"
    ));
    assert!(e.contains("assets.os.sha256.vmlinuz: `xyz` is not a SHA-256 hash"));
}

#[test]
fn dotted_file_names_must_be_quoted() {
    let e = invalid(&format!(
        "[assets.os]\nbase_url = \"https://example.org/os\"\nfiles = [\"rancheros.iso\"]\nsha256 = {{ rancheros.iso = \"{}\" }}\ndest = \"w\"\n",
        "b".repeat(64)
    ));
    insta::assert_snapshot!("unquoted_dotted_name", e);
}

#[test]
fn every_file_needs_a_way_to_be_verified() {
    let e = invalid(&format!(
        "[assets.os]\nbase_url = \"https://example.org/os\"\nfiles = [\"vmlinuz\", \"initrd\", \"initrd\", \"a/b\"]\nsha256 = {{ vmlinuz = \"{}\" }}\ndest = \"w\"\n\n[assets.Bad]\nbase_url = \"https://example.org\"\nfiles = []\nchecksums = \"sums\"\ndest = \"w\"\n",
        "a".repeat(64)
    ));
    insta::assert_snapshot!("invalid_files", e);
}

#[test]
fn two_assets_may_not_store_the_same_file() {
    let e = invalid(
        "[assets.a]\nbase_url = \"https://example.org/a\"\nfiles = [\"vmlinuz\"]\nchecksums = \"sums\"\ndest = \"w\"\n\n[assets.b]\nbase_url = \"https://example.org/b\"\nfiles = [\"initrd\", \"vmlinuz\"]\nchecksums = \"sums\"\ndest = \"./w\"\n",
    );
    let e = e.replace(
        &std::env::current_dir().unwrap().display().to_string(),
        "CWD",
    );
    insta::assert_snapshot!("same_file_twice", e);
}

#[test]
fn unknown_keys_in_an_asset() {
    let e = invalid("[assets.os]\nbase_url = \"https://example.org/os\"\nfiles = [\"vmlinuz\"]\nchecksums = \"sums\"\ndest = \"w\"\nmd5 = \"x\"\n");
    assert!(e.contains("unknown field `md5`"), "{e}");
}

#[test]
fn the_example_labs_fetch_rancheros_into_the_web_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["rancheros", "rancher"] {
        let lab =
            lab::load(&root.join(format!("labs/{name}.toml"))).unwrap_or_else(|d| panic!("{d}"));
        let a = &lab.assets()["rancheros"];
        assert_eq!(
            a.base_url,
            "https://github.com/rancher/os/releases/download/v1.5.8"
        );
        assert_eq!(a.files, ["vmlinuz", "initrd", "rancheros.iso"]);
        assert_eq!(a.checksums.as_deref(), Some("checksums.txt"));
        let web = lab.web_root().expect("web root");
        assert_eq!(
            a.path("vmlinuz"),
            web.join("rancheros/vmlinuz"),
            "the profiles boot rancheros/vmlinuz from the web root"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// missing_assets: what `lab up` warns about

#[test]
fn missing_assets_names_files_nodes_and_the_command() {
    let d = Dir::new("");
    std::fs::create_dir_all(d.dir.path().join("webroot")).unwrap();
    let text = format!(
        r#"[lab]
name = "assets"

[network]
subnet = "10.250.0.0/24"

[services.dhcp]
kind = "dnsmasq"
dhcp_range = ["10.250.0.100", "10.250.0.200"]

[services.web]
kind = "httpd"
root = "webroot"

[profiles.os]
kernel = "os/vmlinuz"
initrd = "os/initrd"

[profiles.other]
kernel = "http://example.org/vmlinuz"

[nodes.a]
count = 2
profile = "os"

[nodes.b]
profile = "other"

{}"#,
        asset_table("https://example.org/rel", "checksums.txt").replace(
            "files = [\"vmlinuz\", \"initrd\"]",
            "files = [\"vmlinuz\", \"initrd\", \"os.iso\"]"
        )
    );
    std::fs::write(d.file(), &text).unwrap();
    let lab = d.lab();
    let missing = assets::missing_assets(&lab);
    assert_eq!(missing.len(), 1);
    let m = &missing[0];
    assert_eq!(
        (m.asset.as_str(), m.files.as_slice(), m.nodes.as_slice()),
        (
            "os",
            &["vmlinuz".to_string(), "initrd".into(), "os.iso".into()][..],
            &["a-1".to_string(), "a-2".into()][..]
        )
    );
    assert_eq!(
        m.command,
        format!("lab fetch-assets -f {} os", d.file().display())
    );
    assert_eq!(m.to_string(), format!("asset `os` is not downloaded yet (vmlinuz, initrd, os.iso missing); a-1, a-2 cannot boot until it is: run `lab fetch-assets -f {} os`", d.file().display()));

    // `/os/vmlinuz` and `./os/initrd` name the same files under the web root.
    let slashed = text
        .replace("kernel = \"os/vmlinuz\"", "kernel = \"/os/vmlinuz\"")
        .replace("initrd = \"os/initrd\"", "initrd = \"./os/initrd\"");
    assert_ne!(slashed, text);
    std::fs::write(d.file(), &slashed).unwrap();
    assert_eq!(assets::missing_assets(&d.lab())[0].nodes, ["a-1", "a-2"]);
    std::fs::write(d.file(), &text).unwrap();

    std::fs::create_dir_all(d.dest("")).unwrap();
    std::fs::write(d.dest("vmlinuz"), b"k").unwrap();
    std::fs::write(d.dest("initrd"), b"i").unwrap();
    let missing = assets::missing_assets(&lab);
    assert_eq!(missing[0].files, ["os.iso"]);
    assert!(
        missing[0].nodes.is_empty(),
        "no node boots the ISO directly"
    );
    std::fs::write(d.dest("os.iso"), b"iso").unwrap();
    assert!(assets::missing_assets(&lab).is_empty());
}
