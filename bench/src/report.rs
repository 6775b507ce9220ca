//! Results: medians, ratios, the text table, the JSON file and the README section.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metrics::{Better, Target, METRICS};
use crate::stats::{median, median_interval, paired_ratios};

/// The confidence level of every interval in the report.
pub(crate) const LEVEL: f64 = 0.9;
use crate::Res;

#[derive(Serialize, Deserialize)]
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) samples: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct MetricResult {
    pub(crate) key: String,
    pub(crate) label: String,
    pub(crate) unit: String,
    pub(crate) higher_is_better: bool,
    pub(crate) nats: Stat,
    pub(crate) edgebus: Stat,
    /// Above 1 means edgebus is better: edgebus/nats for throughputs, nats/edgebus for
    /// latencies and memory. The median of the per-round ratios (each round's two samples
    /// were taken back to back), so a slow round of the machine cancels out.
    pub(crate) ratio: f64,
    /// The 90% bootstrap interval of that paired median ratio (rounds resampled).
    #[serde(default)]
    pub(crate) ratio_interval: Option<(f64, f64)>,
    /// The ratio of the two medians (what earlier reports showed).
    #[serde(default)]
    pub(crate) ratio_of_medians: f64,
    /// The 90% bootstrap interval of edgebus's own median (for targets on its own value).
    #[serde(default)]
    pub(crate) edgebus_interval: Option<(f64, f64)>,
    /// The target as text, e.g. "ratio >= 1.2" or "edgebus >= 0.9".
    pub(crate) target: Option<String>,
    /// The target on the ratio scale (for the chart), when it is a ratio target.
    pub(crate) target_ratio: Option<f64>,
    /// Decided as issue 16 sets it: on the paired median (edgebus's own median for a target
    /// on its own value), and for "ratio >= 1" (faster, not a tie) also on the lower end of
    /// the 90% interval.
    pub(crate) met: Option<bool>,
    /// Met, but the interval's conservative end is not (the lower end below a ">= t", the
    /// upper end not below a "< t"): a target at the line, which another run may miss.
    #[serde(default)]
    pub(crate) at_the_line: bool,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Machine {
    pub(crate) nproc: usize,
    pub(crate) cpu: String,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
}

impl Machine {
    pub(crate) fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} cores (`nproc`), {}, {} GiB RAM, Linux {}", self.nproc, self.cpu, self.memory_gib, self.kernel)
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) command: String,
    pub(crate) date: String,
    pub(crate) quick: bool,
    pub(crate) rounds: usize,
    pub(crate) seconds: f64,
    pub(crate) machine: Machine,
    pub(crate) nats_server: String,
    pub(crate) edgebus: String,
    pub(crate) sizes: crate::scenarios::Sizes,
    pub(crate) metrics: Vec<MetricResult>,
    pub(crate) errors: Vec<String>,
    /// The browser run's setting (Chromium and nats-server versions, sizes, rounds).
    #[serde(default)]
    pub(crate) browser: Option<serde_json::Value>,
    /// Why the browser rows are missing, when they are.
    #[serde(default)]
    pub(crate) browser_skipped: Option<String>,
}

/// Samples per metric key, per server.
pub(crate) type Collected = BTreeMap<&'static str, (Vec<f64>, Vec<f64>)>;

/// The samples of a stored report's `metrics`, for [`summarize`] to decide again (rows no
/// metric defines any more are left out).
pub(crate) fn collected_of(metrics: &serde_json::Value) -> Collected {
    let samples = |m: &serde_json::Value, side: &str| -> Vec<f64> {
        m[side]["samples"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default()
    };
    let mut out = Collected::new();
    for m in metrics.as_array().map(Vec::as_slice).unwrap_or_default() {
        if let Some(def) = METRICS.iter().find(|d| Some(d.key) == m["key"].as_str()) {
            out.insert(def.key, (samples(m, "nats"), samples(m, "edgebus")));
        }
    }
    out
}

pub(crate) fn summarize(collected: &Collected) -> Vec<MetricResult> {
    let mut out = Vec::new();
    for def in METRICS {
        let Some((nats, edge)) = collected.get(def.key) else {
            continue;
        };
        let (n, e) = (median(nats), median(edge));
        let (num, den) = match def.better {
            Better::Higher => (edge, nats),
            Better::Lower => (nats, edge),
        };
        let ratios = paired_ratios(num, den);
        let ratio_of_medians = median(num) / median(den);
        let ratio = if ratios.is_empty() { ratio_of_medians } else { median(&ratios) };
        let ratio_interval = (!ratios.is_empty()).then(|| median_interval(&ratios, LEVEL));
        let edgebus_interval = (!edge.is_empty()).then(|| median_interval(edge, LEVEL));
        let lower_end = |iv: Option<(f64, f64)>| iv.map(|(lo, _)| lo).filter(|x| x.is_finite());
        let upper_end = |iv: Option<(f64, f64)>| iv.map(|(_, hi)| hi).filter(|x| x.is_finite());
        let Decided { target, target_ratio, met, strict } = match def.target {
            None => Decided::default(),
            Some(Target::Ratio(t)) => {
                let strict = lower_end(ratio_interval).map(|lo| lo >= t);
                // "ratio >= 1" asks for faster, so the interval decides it; otherwise the median
                let met = if t <= 1.0 { strict } else { ratio.is_finite().then_some(ratio >= t) };
                Decided { target: Some(format!("ratio >= {t}")), target_ratio: Some(t), met, strict }
            }
            Some(Target::Own(t)) => Decided {
                target: Some(format!("edgebus >= {}", target_num(t))),
                target_ratio: None,
                met: e.is_finite().then_some(e >= t),
                strict: lower_end(edgebus_interval).map(|lo| lo >= t),
            },
            Some(Target::OwnBelow(t)) => Decided {
                target: Some(format!("edgebus < {} {}", target_num(t), def.unit)),
                target_ratio: None,
                met: e.is_finite().then_some(e < t),
                strict: upper_end(edgebus_interval).map(|hi| hi < t),
            },
            Some(Target::OwnOf(key, t)) => own_of(collected, key, edge, t),
        };
        let at_the_line = met == Some(true) && strict != Some(true);
        out.push(MetricResult {
            key: def.key.into(),
            label: def.label.into(),
            unit: def.unit.into(),
            higher_is_better: def.better == Better::Higher,
            nats: Stat { median: n, samples: nats.clone() },
            edgebus: Stat { median: e, samples: edge.clone() },
            ratio,
            ratio_interval,
            ratio_of_medians,
            edgebus_interval,
            target,
            target_ratio,
            met,
            at_the_line,
        });
    }
    out
}

/// How a row's target came out: its text, the target on the ratio scale (for the chart),
/// met as the issue decides it, and met on the interval's conservative end.
#[derive(Default)]
struct Decided {
    target: Option<String>,
    target_ratio: Option<f64>,
    met: Option<bool>,
    strict: Option<bool>,
}

/// A target on edgebus's value as a fraction of its value in row `key` (both edgebus-side,
/// paired by round): the text says which row and what fraction this run reached, with its
/// interval; met when the median fraction reaches `t` (strictly: the interval's lower end).
fn own_of(collected: &Collected, key: &str, edge: &[f64], t: f64) -> Decided {
    let label = METRICS.iter().find(|m| m.key == key).map_or(key, |m| m.label);
    let base = collected.get(key).map(|(_, e)| e.as_slice()).unwrap_or_default();
    let fractions = paired_ratios(edge, base);
    if fractions.is_empty() {
        return Decided { target: Some(format!("edgebus >= {t} x \"{label}\" (not measured)")), ..Decided::default() };
    }
    let (lo, hi) = median_interval(&fractions, LEVEL);
    let mid = median(&fractions);
    Decided {
        target: Some(format!("edgebus >= {t} x \"{label}\" (edgebus only, same round: {mid:.2}, {lo:.2}–{hi:.2})")),
        target_ratio: None,
        met: mid.is_finite().then_some(mid >= t),
        strict: lo.is_finite().then_some(lo >= t),
    }
}

/// A target as the issue writes it: 0.9, 50k, 2M.
fn target_num(t: f64) -> String {
    if t >= 1e6 && (t / 1e6).fract() == 0.0 {
        format!("{}M", t / 1e6)
    } else if t >= 1e4 && (t / 1e3).fract() == 0.0 {
        format!("{}k", t / 1e3)
    } else {
        format!("{t}")
    }
}

/// 1234567 -> "1.23M", 45678 -> "45.7k", 12.345 -> "12.3", 0.987 -> "0.99".
pub(crate) fn human(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn verdict(m: &MetricResult) -> &'static str {
    match m.met {
        Some(true) if m.at_the_line => "yes, at the line",
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "",
    }
}

/// The table as Markdown (also printed to the terminal).
pub(crate) fn markdown_table(metrics: &[MetricResult]) -> String {
    let mut s = String::from(
        "| scenario | unit | nats-server | edgebus | ratio | 90% interval | target | met |\n\
         | --- | --- | ---: | ---: | ---: | :---: | --- | --- |\n",
    );
    for m in metrics {
        // a target on edgebus's own value is decided on its own interval: show that one
        let own_target = m.target.is_some() && m.target_ratio.is_none();
        let edgebus = match m.edgebus_interval {
            Some((lo, hi)) if own_target && lo.is_finite() => {
                format!("{} ({}–{})", human(m.edgebus.median), human(lo), human(hi))
            }
            _ => human(m.edgebus.median),
        };
        let nats = if m.nats.samples.is_empty() { "—".to_string() } else { human(m.nats.median) };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.label,
            m.unit,
            nats,
            edgebus,
            if m.ratio.is_finite() { format!("{:.2}", m.ratio) } else { String::new() },
            match m.ratio_interval {
                Some((lo, hi)) if lo.is_finite() => format!("{lo:.2}–{hi:.2}"),
                _ => String::new(),
            },
            m.target.as_deref().unwrap_or(""),
            verdict(m)
        );
    }
    s
}

/// The README section body (between the markers).
pub(crate) fn readme_section(r: &Report) -> String {
    let missed: Vec<&str> = r.metrics.iter().filter(|m| m.met == Some(false)).map(|m| m.label.as_str()).collect();
    let mut s = format!(
        "Measured with `{}` on {} ({}): {}; {} vs {}. {} rounds, each scenario run against \
         each server alternately (the shortest ones, pub/sub, permissions, WebSocket, leaf and \
         request/reply under load, \
         two to four alternating pairs a round; the longest, memory over time and cost growth, \
         every other round, from the first); the table shows medians. The whole run took \
         {:.0} s.\n\n",
        r.command,
        r.date,
        if r.quick { "quick run" } else { "full run" },
        r.machine.describe(),
        r.nats_server,
        r.edgebus,
        r.rounds,
        r.seconds
    );
    s += "Ratio > 1 always means edgebus is better: edgebus / nats-server for throughputs, \
          nats-server / edgebus for latencies and memory. The ratio is the median of the \
          per-pair ratios (each pair measures both servers back to back); the 90% interval \
          is a bootstrap over the pairs (for edgebus's own value, the interval of that \
          value, in parentheses). A target is decided as issue 16 sets it: on the paired \
          median (edgebus's own median for a target on its own value), and a \"ratio >= 1\" \
          target (faster, not a tie) also needs the interval's lower end at 1 or above. A \
          target met on its median whose interval's conservative end is not (\"yes, at the \
          line\") may be missed by another run. Every delivered message is checked against what \
          was sent (count, duplicates, order): a fault fails the run. Raw samples: \
          [`bench/results/results.json`](bench/results/results.json).\n\n";
    s += "Rows marked *(async-nats)* are driven by async-nats, which on two cores spends more CPU \
          per message than either server and so sets their rate; the targets for publish only, \
          1 pub -> 1 sub and the leaf link are on the *raw TCP client* rows instead (our own client, \
          `bench/src/wsraw.rs`, the same for both servers), which leave the server the limit.\n\n";
    match (&r.browser, &r.browser_skipped) {
        (Some(b), _) => {
            s += &format!(
                "Rows starting with *page:* run in headless Chromium ({}): edgebus inside the page \
                 (JetStream and KV persisted in IndexedDB, each ack after its commit) in the \
                 edgebus column; in the nats-server column, what a web page uses today: nats.ws \
                 in the same page talking to nats-server over a WebSocket on loopback (JetStream \
                 file store). The batch API row publishes with `publishMany` ({} messages per \
                 call) into a `subscribeBatch` callback; nats.ws has no batch API, so that row has \
                 no nats-server figure and no ratio (the per-message row compares like with \
                 like). The cold open is the time \
                 from `open()` after a page reload until the stream's info and last message are \
                 read. The raw write+flush row is edgebus only: 64 B `write` + `flush` calls on \
                 a `FileSystemSyncAccessHandle` in a dedicated worker started as the OPFS store \
                 starts its own, timed in the worker, each round next to the OPFS rows; the \
                 sequential OPFS publish and KV put targets are edgebus's own rate as a \
                 fraction of it, round by round (issue 12: within 80% of one write+flush). The \
                 page -> worker -> page row is the same call asked of such a worker from the \
                 page, one at a time (a fresh 64 B array transferred, the answer awaited, as the \
                 store's append is): the floor for a sequential publish with the store in a \
                 worker, with nothing of edgebus in it.\n\n",
                b.get("chromium").and_then(serde_json::Value::as_str).unwrap_or("Chromium"),
                b.get("batch").and_then(serde_json::Value::as_u64).unwrap_or(0),
            );
        }
        (None, Some(why)) => s += &format!("The browser rows were not measured: {why}.\n\n"),
        (None, None) => {}
    }
    s += &markdown_table(&r.metrics);
    s += "\n![ratios edgebus vs nats-server](bench/results/ratios.png)\n\n";
    if missed.is_empty() {
        s += "Every target was met in this run.\n";
    } else {
        s += &format!("Targets missed in this run: {}.\n", missed.join("; "));
    }
    let close: Vec<&str> = r.metrics.iter().filter(|m| m.at_the_line).map(|m| m.label.as_str()).collect();
    if !close.is_empty() {
        s += &format!("\nMet on the median, with the interval reaching past the target: {}.\n", close.join("; "));
    }
    if !r.errors.is_empty() {
        s += "\nErrors during the run:\n\n";
        for e in &r.errors {
            s += &format!("- {e}\n");
        }
    }
    s
}

pub(crate) const BEGIN: &str = "<!-- bench:begin (generated by edgebus-bench; do not edit) -->";
pub(crate) const END: &str = "<!-- bench:end -->";

/// Replaces the text between the markers in `readme`; false when the markers are missing.
pub(crate) fn update_readme(readme: &Path, body: &str) -> Res<bool> {
    let text = std::fs::read_to_string(readme)?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Ok(false);
    };
    if e < b {
        return Ok(false);
    }
    let new = format!("{}{BEGIN}\n{body}{}", &text[..b], &text[e..]);
    std::fs::write(readme, new)?;
    Ok(true)
}
