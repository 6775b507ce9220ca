//! The browser half: `node bench/browser/run.mjs` (Playwright driving headless Chromium)
//! measures edgebus inside a page against nats.ws in the same page talking to nats-server
//! over a loopback WebSocket, and hands back one JSON document; its samples join the table
//! here. The Node script does the measuring so the numbers are what a page sees; this side
//! only builds the web package, starts the script and files its samples under the metric
//! keys of [`crate::metrics::METRICS`] (edgebus in the edgebus column, nats.ws→nats-server
//! in the nats-server column).

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::report::Collected;
use crate::Res;

/// The rows measured with an API nats.ws has no counterpart for (the batch API): only the
/// edgebus column is filed, so no ratio sets a batch against one-at-a-time publishing.
/// The raw OPFS `write`+`flush` rows likewise: they measure the browser, not a client.
const EDGEBUS_ONLY: &[&str] = &["page_pubsub_batch", "page_opfs_flush", "page_opfs_rt"];

/// The script's sample names → the metric keys of the table.
const KEYS: &[(&str, &str)] = &[
    ("pubsub16_batch", "page_pubsub_batch"),
    ("pubsub16", "page_pubsub"),
    ("rr_us", "page_rr_p50"),
    ("js_seq", "page_js_seq"),
    ("js_par", "page_js_par"),
    ("kv_put", "page_kv_put"),
    ("kv_get", "page_kv_get"),
    ("cold_open", "page_cold_open"),
    ("js_seq_opfs", "page_js_seq_opfs"),
    ("js_par_opfs", "page_js_par_opfs"),
    ("kv_put_opfs", "page_kv_put_opfs"),
    ("kv_get_opfs", "page_kv_get_opfs"),
    ("cold_open_opfs", "page_cold_open_opfs"),
    ("opfs_flush", "page_opfs_flush"),
    ("opfs_rt", "page_opfs_rt"),
];

/// What the browser run left for the report besides its samples.
pub(crate) struct Outcome {
    /// Chromium and nats-server versions, sizes, rounds (the script's JSON minus samples).
    pub(crate) info: Option<Value>,
    /// Why nothing was measured (a missing tool), in plain words.
    pub(crate) skipped: Option<String>,
    pub(crate) errors: Vec<String>,
}

fn which(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Builds the web package (unless `build` is false), runs the browser benchmark and adds its
/// samples to `collected`.
pub(crate) fn run(
    root: &Path,
    rounds: usize,
    quick: bool,
    build: bool,
    nats_bin: &Path,
    collected: &mut Collected,
) -> Res<Outcome> {
    let skip = |why: String| Ok(Outcome { info: None, skipped: Some(why), errors: Vec::new() });
    if !which("node") {
        return skip("node is not installed".into());
    }
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return skip(format!("{chromium} is missing (apt-get install chromium)"));
    }
    if build {
        eprintln!("building: bash web/build.sh");
        let status = Command::new("bash").arg("web/build.sh").current_dir(root).stdout(Stdio::null()).status()?;
        if !status.success() {
            return Err("bash web/build.sh failed".into());
        }
    }
    let mut cmd = Command::new("node");
    cmd.arg("bench/browser/run.mjs").args(["--rounds", &rounds.to_string()]);
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd
        .current_dir(root)
        .env("NATS_SERVER_BIN", nats_bin)
        .env("CHROMIUM_PATH", &chromium)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("node bench/browser/run.mjs failed ({})", out.status).into());
    }
    let mut doc: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("node bench/browser/run.mjs printed no JSON document: {e}"))?;
    if let Some(why) = doc.get("skipped").and_then(Value::as_str) {
        return skip(why.to_string());
    }
    let samples = doc.as_object_mut().and_then(|o| o.remove("samples")).unwrap_or(Value::Null);
    for (name, key) in KEYS {
        let Some(s) = samples.get(name) else { continue };
        let e = collected.entry(key).or_default();
        for (side, list) in [("nats", &mut e.0), ("edgebus", &mut e.1)] {
            if side == "nats" && EDGEBUS_ONLY.contains(key) {
                continue;
            }
            list.extend(s.get(side).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_f64));
        }
    }
    let errors = doc
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|e| format!("browser: {e}"))
        .collect();
    if let Some(o) = doc.as_object_mut() {
        o.remove("medians");
        o.remove("errors");
    }
    Ok(Outcome { info: Some(doc), skipped: None, errors })
}
