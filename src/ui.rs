//! Progress output: one line per object (image, network, container, readiness check), shown as
//! indicatif spinners on a terminal and as plain timestamped lines elsewhere (CI logs), where
//! indicatif prints nothing.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Reports progress of concurrent steps, each under a key such as `container rancheros-master`.
pub struct Progress {
    mode: Mode,
    start: Instant,
    /// Plain output of byte steps: the last quarter printed per key.
    quarters: Mutex<HashMap<String, u64>>,
}

/// Shows `bar` under `key` with `msg`, ticking, and keeps it for later updates.
fn add_bar(
    multi: &MultiProgress,
    bars: &Mutex<HashMap<String, ProgressBar>>,
    bar: ProgressBar,
    style: ProgressStyle,
    key: &str,
    msg: &str,
) {
    let bar = multi.add(bar);
    bar.set_style(style);
    bar.set_prefix(key.to_string());
    bar.set_message(msg.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    if let Ok(mut b) = bars.lock() {
        b.insert(key.to_string(), bar);
    }
}

enum Mode {
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
    Lines,
    Quiet,
}

impl Progress {
    /// Spinners when stdout is a terminal and `CI` is not set; plain lines otherwise.
    pub fn auto() -> Progress {
        let tty = std::io::stdout().is_terminal() && std::env::var_os("CI").is_none();
        let mode = if tty {
            Mode::Bars {
                multi: MultiProgress::new(),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Mode::Lines
        };
        Progress {
            mode,
            start: Instant::now(),
            quarters: Mutex::new(HashMap::new()),
        }
    }

    /// Nothing at all (for JSON output and tests).
    pub fn quiet() -> Progress {
        Progress {
            mode: Mode::Quiet,
            start: Instant::now(),
            quarters: Mutex::new(HashMap::new()),
        }
    }

    /// A step begins.
    pub fn start(&self, key: &str, msg: &str) {
        match &self.mode {
            Mode::Bars { multi, bars } => {
                let style = ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:<34} {wide_msg} {elapsed:>4}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
                add_bar(multi, bars, ProgressBar::new_spinner(), style, key, msg);
            }
            Mode::Lines => self.line(key, msg),
            Mode::Quiet => {}
        }
    }

    /// A step that moves bytes (a download): on a terminal a bar with bytes, speed and ETA (the
    /// message follows it); plain output prints the start, each quarter done and the end.
    pub fn start_bytes(&self, key: &str, msg: &str, total: Option<u64>) {
        match &self.mode {
            Mode::Bars { multi, bars } => {
                let template = "{spinner:.cyan} {prefix:<34} [{bar:24}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta:<4} {wide_msg}";
                let style = ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                let bar = ProgressBar::new(total.unwrap_or(0));
                add_bar(multi, bars, bar, style, key, msg);
            }
            Mode::Lines => self.line(key, msg),
            Mode::Quiet => {}
        }
    }

    /// Bytes done so far of a step begun with [`Progress::start_bytes`], and the total once known.
    pub fn set_bytes(&self, key: &str, done: u64, total: Option<u64>) {
        match &self.mode {
            Mode::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().ok().and_then(|b| b.get(key).cloned()) {
                    if let Some(t) = total {
                        bar.set_length(t);
                    }
                    bar.set_position(done);
                }
            }
            Mode::Lines => {
                let Some(t) = total.filter(|t| *t > 0) else {
                    return;
                };
                let q = (done.min(t) * 4 / t).min(3);
                let Ok(mut quarters) = self.quarters.lock() else {
                    return;
                };
                let last = quarters.entry(key.to_string()).or_insert(q);
                if q > *last {
                    *last = q;
                    drop(quarters);
                    self.line(key, &format!("{}% ({} of {} bytes)", q * 25, done, t));
                }
            }
            Mode::Quiet => {}
        }
    }

    /// A step moves on (e.g. a build step); plain output prints it too.
    /// A passing state of a step, shown on its bar only (plain output keeps one line per step).
    pub fn status(&self, key: &str, msg: &str) {
        if let Mode::Bars { bars, .. } = &self.mode {
            if let Some(bar) = bars.lock().ok().and_then(|b| b.get(key).cloned()) {
                bar.set_message(msg.to_string());
            }
        }
    }

    pub fn update(&self, key: &str, msg: &str) {
        match &self.mode {
            Mode::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().ok().and_then(|b| b.get(key).cloned()) {
                    bar.set_message(msg.to_string());
                }
            }
            Mode::Lines => self.line(key, msg),
            Mode::Quiet => {}
        }
    }

    /// A step ended, well (`ok`) or not.
    pub fn finish(&self, key: &str, ok: bool, msg: &str) {
        match &self.mode {
            Mode::Bars { bars, .. } => {
                let bar = bars.lock().ok().and_then(|mut b| b.remove(key));
                let mark = if ok { "✔" } else { "✘" };
                match bar {
                    Some(bar) => {
                        bar.set_style(
                            ProgressStyle::with_template("{prefix} {wide_msg} {elapsed:>4}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(format!("{mark} {key:<34}"));
                        bar.finish_with_message(msg.to_string());
                    }
                    None => self.println(&format!("{mark} {key:<34} {msg}")),
                }
            }
            Mode::Lines => self.line(
                key,
                &format!("{} {msg}", if ok { "done:" } else { "FAILED:" }),
            ),
            Mode::Quiet => {}
        }
    }

    /// A line outside any step (a summary, a warning).
    pub fn println(&self, msg: &str) {
        match &self.mode {
            Mode::Bars { multi, .. } => {
                let _ = multi.println(msg);
            }
            Mode::Lines => println!("{msg}"),
            Mode::Quiet => {}
        }
    }

    fn line(&self, key: &str, msg: &str) {
        println!(
            "[{:>6.1}s] {key}: {msg}",
            self.start.elapsed().as_secs_f64()
        );
    }
}
