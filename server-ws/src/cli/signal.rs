//! `--signal <command>[=<pid>]` (`-sl`): signals a running server instead of starting one, as
//! nats-server does — operators script lame duck mode, reloads and log rotation this way.
//! The pid is a number, a pid file, or a prefix ending in `*` matching several servers; with
//! none, the one running `edgebus-server` is found with `pgrep`.

use std::fmt;
use std::process::Command;

/// What `--signal` asks for, and the signal that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `stop`: SIGKILL.
    Stop,
    /// `quit`: SIGINT, a clean shutdown.
    Quit,
    /// `term`: SIGTERM, a clean shutdown outside lame duck mode.
    Term,
    /// `reopen`: SIGUSR1, reopen the log file (log rotation).
    Reopen,
    /// `reload`: SIGHUP, reload the configuration file.
    Reload,
    /// `ldm`: SIGUSR2, enter lame duck mode.
    LameDuck,
}

impl Action {
    fn parse(command: &str) -> Result<Action, SignalError> {
        Ok(match command {
            "stop" => Action::Stop,
            "quit" => Action::Quit,
            "term" => Action::Term,
            "reopen" => Action::Reopen,
            "reload" => Action::Reload,
            "ldm" => Action::LameDuck,
            other => return Err(SignalError(format!("unknown signal {other:?}"))),
        })
    }

    /// The name `kill -s` takes.
    fn signal_name(self) -> &'static str {
        match self {
            Action::Stop => "KILL",
            Action::Quit => "INT",
            Action::Term => "TERM",
            Action::Reopen => "USR1",
            Action::Reload => "HUP",
            Action::LameDuck => "USR2",
        }
    }
}

/// A parsed `--signal` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    /// The pid as given (after reading a pid file); empty: find the server.
    pid: String,
}

/// Why the signal could not be sent; printed before exiting with status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError(pub String);

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SignalError {}

impl Request {
    /// `ldm`, `ldm=1234`, `reload=/var/run/edgebus.pid`, `quit=12*`.
    pub fn parse(text: &str) -> Result<Request, SignalError> {
        let mut parts = text.split('=');
        let command = parts.next().unwrap_or_default();
        let pid = parts.next().map(read_pid_file).unwrap_or_default();
        let extra: Vec<&str> = parts.collect();
        if !extra.is_empty() {
            return Err(SignalError(format!("invalid signal parameters: {extra:?}")));
        }
        let action = Action::parse(command)?;
        Ok(Request { action, pid })
    }

    /// Sends the signal to the server(s) meant, with `kill` (this crate has no unsafe code,
    /// so no direct `kill(2)`).
    pub fn send(&self) -> Result<(), SignalError> {
        let glob = self.pid.ends_with('*');
        let prefix = self.pid.trim_end_matches('*');
        let pids = if prefix.is_empty() || glob {
            if !prefix.is_empty() && prefix.parse::<u32>().is_err() {
                return Err(SignalError(format!("invalid pid: {prefix}")));
            }
            running_servers()?.into_iter().filter(|p| p.to_string().starts_with(prefix)).collect()
        } else {
            vec![prefix.parse::<u32>().map_err(|_| SignalError(format!("invalid pid: {prefix}")))?]
        };
        match pids.as_slice() {
            [] => return Err(SignalError("no edgebus-server processes running".into())),
            [_, _, ..] if !glob => {
                let list: String = pids.iter().map(|p| format!("\n{p}")).collect();
                return Err(SignalError(format!("multiple edgebus-server processes running:{list}")));
            }
            _ => {}
        }
        let mut failed = String::new();
        for pid in pids {
            let out = Command::new("kill").args(["-s", self.action.signal_name(), &pid.to_string()]).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => failed.push_str(&format!(
                    "\nsignal {:?} {pid}: {}",
                    self.action.signal_name(),
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => failed.push_str(&format!("\nsignal {:?} {pid}: {e}", self.action.signal_name())),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(SignalError(failed))
        }
    }
}

/// A pid file's content when `text` names a readable file, else `text` itself (nats-server's
/// `maybeReadPidFile`).
fn read_pid_file(text: &str) -> String {
    std::fs::read_to_string(text).map(|s| s.trim().to_string()).unwrap_or_else(|_| text.to_string())
}

/// The pids of the other `edgebus-server` processes.
fn running_servers() -> Result<Vec<u32>, SignalError> {
    let out = Command::new("pgrep")
        .args(["-x", "edgebus-server"])
        .output()
        .map_err(|_| SignalError("unable to resolve pid, try providing one".into()))?;
    let me = std::process::id();
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|p| *p != me)
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_nats_server_forms() {
        let r = Request::parse("ldm=1234").unwrap();
        assert_eq!((r.action, r.pid.as_str()), (Action::LameDuck, "1234"));
        assert_eq!(Request::parse("reload").unwrap().action, Action::Reload);
        assert_eq!(Request::parse("quit=12*").unwrap().pid, "12*");
        assert_eq!(Request::parse("bogus").unwrap_err().0, "unknown signal \"bogus\"");
        assert!(Request::parse("ldm=1=2").unwrap_err().0.starts_with("invalid signal parameters"));
        assert_eq!(Request::parse("ldm=abc").unwrap().send().unwrap_err().0, "invalid pid: abc");
    }

    #[test]
    fn reads_a_pid_file() {
        let dir = std::env::temp_dir().join(format!("edgebus-sig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.pid");
        std::fs::write(&file, "4321\n").unwrap();
        assert_eq!(Request::parse(&format!("term={}", file.display())).unwrap().pid, "4321");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
