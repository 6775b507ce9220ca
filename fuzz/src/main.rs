//! `edgebus-fuzz <target|all> [--seconds N | --executions N] [--seed S] [--crash-dir D]`
//! runs fuzz targets and prints, per target, the executions and the crashes; the exit code is
//! 1 when anything crashed. `edgebus-fuzz replay <target> <file>...` replays saved inputs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use edgebus_fuzz::targets::by_name;
use edgebus_fuzz::{replay, run, Budget, TARGETS};

fn usage() -> ExitCode {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    eprintln!("usage: edgebus-fuzz <target|all> [--seconds N | --executions N] [--seed S] [--crash-dir D]");
    eprintln!("       edgebus-fuzz replay <target> <file>...");
    eprintln!("targets: {}", names.join(", "));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(which) = args.first() else { return usage() };
    if which == "replay" {
        let Some(target) = args.get(1).and_then(|n| by_name(n)) else { return usage() };
        let mut failed = false;
        for file in &args[2..] {
            let result = std::fs::read(file).map_err(|e| e.to_string()).and_then(|d| replay(target, &d));
            println!("{file}: {}", result.as_ref().map_or_else(|e| format!("CRASH {e}"), |_| "ok".into()));
            failed |= result.is_err();
        }
        return if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS };
    }
    let (mut budget, mut seed, mut crash_dir) =
        (Budget::Time(Duration::from_secs(10)), 1u64, PathBuf::from("fuzz/crashes"));
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let Some(v) = rest.next() else { return usage() };
        match (flag.as_str(), v.parse::<u64>()) {
            ("--seconds", Ok(n)) => budget = Budget::Time(Duration::from_secs(n)),
            ("--executions", Ok(n)) => budget = Budget::Executions(n),
            ("--seed", Ok(n)) => seed = n,
            ("--crash-dir", _) => crash_dir = PathBuf::from(v),
            _ => return usage(),
        }
    }
    let targets: Vec<_> = if which == "all" {
        TARGETS.iter().collect()
    } else {
        match by_name(which) {
            Some(t) => vec![t],
            None => return usage(),
        }
    };
    let mut crashed = false;
    for t in targets {
        let r = run(t, seed, budget, &crash_dir);
        println!("{:<20} seed {seed:<6} executions {:<9} crashes {}", t.name, r.executions, r.crashes);
        for (path, why) in &r.failures {
            println!("  {}: {why}", path.display());
        }
        crashed |= r.crashes > 0;
    }
    if crashed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
