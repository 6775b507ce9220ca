//! Runs a target over generated inputs, counting executions and panics.
//!
//! A stack overflow or abort cannot be caught in-process; the targets run on a thread with a
//! small stack so that recursion driven by input shows up at once, and `tests/fuzz.sh` runs
//! each target in its own process so such a crash is reported against the target.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::gen::{self, Rng};
use crate::targets::Target;

/// How long to run: a number of executions (tests: deterministic) or a duration (the script).
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Executions(u64),
    Time(Duration),
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub executions: u64,
    pub crashes: u64,
    /// Where the failing inputs were saved, with the panic's message.
    pub failures: Vec<(PathBuf, String)>,
}

/// Stack of the fuzzing thread: far below a tokio worker's 2 MiB, so a recursion per level
/// of input nesting overflows here first.
const STACK: usize = 512 * 1024;

/// Runs `target` on inputs from `seed` until `budget` is spent; failing inputs go to
/// `crash_dir/<target>-<seed>-<n>.bin`.
pub fn run(target: &'static Target, seed: u64, budget: Budget, crash_dir: &Path) -> Report {
    let crash_dir = crash_dir.to_path_buf();
    let worker = std::thread::Builder::new().name(format!("fuzz-{}", target.name)).stack_size(STACK).spawn(move || {
        let mut rng = Rng::new(seed ^ fnv(target.name.as_bytes()));
        let mut report = Report::default();
        let start = Instant::now();
        quiet_panics();
        loop {
            let done = match budget {
                Budget::Executions(n) => report.executions >= n,
                Budget::Time(d) => start.elapsed() >= d,
            };
            if done {
                break;
            }
            let data = gen::input(&mut rng, target.dict, target.max_len);
            if let Err(why) = run_one(target, &data) {
                report.crashes += 1;
                let path = crash_dir.join(format!("{}-{seed}-{}.bin", target.name, report.executions));
                let _ = std::fs::create_dir_all(&crash_dir);
                let _ = std::fs::write(&path, &data);
                report.failures.push((path, why));
            }
            report.executions += 1;
        }
        report
    });
    match worker.map(|w| w.join()) {
        Ok(Ok(report)) => report,
        _ => Report { crashes: 1, ..Report::default() },
    }
}

/// Replays one saved input; `Err` holds the panic message.
pub fn replay(target: &'static Target, data: &[u8]) -> Result<(), String> {
    let data = data.to_vec();
    let worker = std::thread::Builder::new().stack_size(STACK).spawn(move || {
        quiet_panics();
        run_one(target, &data)
    });
    match worker.map(|w| w.join()) {
        Ok(Ok(r)) => r,
        _ => Err("the replay thread died".into()),
    }
}

fn run_one(target: &Target, data: &[u8]) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(|| (target.run)(data))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".into())
    })
}

/// Panics are expected and counted; their default report would flood the output.
fn quiet_panics() {
    panic::set_hook(Box::new(|_| {}));
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3))
}
