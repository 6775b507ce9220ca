//! A short, deterministic run of every fuzz target (a fixed number of executions from a fixed
//! seed) so the targets cannot rot, and every saved crash input replayed as a regression.

use std::path::Path;

use edgebus_fuzz::{replay, run, Budget, TARGETS};

fn short(name: &str, executions: u64) {
    let Some(target) = TARGETS.iter().find(|t| t.name == name) else { panic!("no target {name}") };
    let crash_dir = std::env::temp_dir().join(format!("edgebus-fuzz-crashes-{}", std::process::id()));
    let r = run(target, 7, Budget::Executions(executions), &crash_dir);
    assert_eq!(r.executions, executions);
    assert!(r.failures.is_empty(), "{name} crashed: {:?}", r.failures);
    assert_eq!(r.crashes, 0, "{name}: the fuzz thread itself died");
}

#[test]
fn proto_split() {
    short("proto_split", 3000);
}

#[test]
fn jsapi() {
    short("jsapi", 1500);
}

#[test]
fn config() {
    short("config", 2000);
}

#[test]
fn ws_frame() {
    short("ws_frame", 3000);
}

#[test]
fn filestore_recovery() {
    short("filestore_recovery", 150);
}

/// `fuzz/regressions/<target>/<anything>`: inputs that once crashed a target.
#[test]
fn saved_crashes_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    for target in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target.name)) else { continue };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).unwrap_or_default();
            if let Err(why) = replay(target, &data) {
                panic!("{}: {why}", entry.path().display());
            }
        }
    }
}
