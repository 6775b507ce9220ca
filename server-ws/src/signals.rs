//! What a running server does with the signals operators send it, as nats-server: `SIGUSR2`
//! enters lame duck mode, `SIGHUP` reloads the configuration, `SIGUSR1` reopens the log file
//! (log rotation). `SIGINT`/`SIGTERM` end the server through the `stop` future of
//! [`crate::server::Server::run`]. Without a handler, the default action of each of these
//! signals would kill the process — the worst answer to an operator asking for a reload.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use tracing::{error, info};

use crate::cli::{self, Command};
use crate::options::Options;
use crate::server::Shared;

/// The log file, reopened by path on `SIGUSR1` so that a rotated log is written anew. Clones
/// share the file: one is the logger's, one the signal handler's.
#[derive(Clone)]
pub struct LogFile(Arc<(PathBuf, Mutex<File>)>);

impl LogFile {
    pub fn open(path: &Path) -> io::Result<LogFile> {
        Ok(LogFile(Arc::new((path.to_path_buf(), Mutex::new(append(path)?)))))
    }

    /// Starts a new file at the same path (the old one was moved away by the rotation).
    pub fn reopen(&self) -> io::Result<()> {
        *self.0 .1.lock() = append(&self.0 .0)?;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One log line's access to the file.
pub struct LogWriter<'a>(MutexGuard<'a, File>);

impl io::Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LogWriter<'a>;
    fn make_writer(&'a self) -> LogWriter<'a> {
        LogWriter(self.0 .1.lock())
    }
}

/// Why a reload was refused; logged as nats-server logs it.
#[derive(Debug, PartialEq, Eq)]
pub struct ReloadError(pub String);

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The options a reload would change, by configuration name. Every option differs only
/// through a restart for now, so a reload that changes any is refused as a whole and the
/// server keeps running on what it has (nats-server does the same for options it cannot
/// reload); `Options` fields missing here still refuse, under a generic name.
pub fn changed(old: &Options, new: &Options) -> Vec<&'static str> {
    macro_rules! diff {
        ($($field:ident => $name:literal),* $(,)?) => {{
            let mut names = Vec::new();
            $(if old.$field != new.$field { names.push($name); })*
            names
        }};
    }
    let mut names = diff!(
        host => "host", port => "port", http_port => "http_port", http_host => "http_host",
        max_payload => "max_payload", max_pending => "max_pending",
        max_control_line => "max_control_line", max_connections => "max_connections",
        max_subscriptions => "max_subscriptions", ping_interval => "ping_interval",
        ping_max => "ping_max", write_deadline => "write_deadline",
        lame_duck_duration => "lame_duck_duration", lame_duck_grace_period => "lame_duck_grace_period",
        authorization => "authorization", trust => "operator", websocket => "websocket",
        jetstream => "jetstream", accounts => "accounts", tls => "tls", server_name => "server_name",
        debug => "debug", trace => "trace",
    );
    if names.is_empty() && old != new {
        names.push("options");
    }
    names
}

/// Re-reads the configuration the server was started with (the same command line) and
/// compares it with what runs.
pub fn reload(args: &[String], running: &Options) -> Result<(), ReloadError> {
    let cli = match cli::parse(args.iter().cloned()) {
        Ok(Command::Run(cli)) => cli,
        Ok(_) => return Err(ReloadError("the command line does not start a server".into())),
        Err(e) => return Err(ReloadError(e.to_string())),
    };
    match changed(running, &cli.options).as_slice() {
        [] => Ok(()),
        names => Err(ReloadError(format!("config reload not supported for {}", names.join(", ")))),
    }
}

/// Handles `SIGUSR1`, `SIGUSR2` and `SIGHUP` for the life of the server.
#[cfg(unix)]
pub fn spawn(shared: Arc<Shared>, args: Vec<String>, log: Option<LogFile>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut usr1), Ok(mut usr2), Ok(mut hup)) =
        (signal(SignalKind::user_defined1()), signal(SignalKind::user_defined2()), signal(SignalKind::hangup()))
    else {
        error!("cannot handle SIGUSR1, SIGUSR2 and SIGHUP: lame duck mode, reload and log reopening are off");
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = usr2.recv() => {
                    info!("Trapped \"user defined signal 2\" signal");
                    shared.lame_duck.notify_one();
                }
                _ = hup.recv() => {
                    info!("Trapped \"hangup\" signal");
                    match reload(&args, &shared.opts) {
                        Ok(()) => info!("Reloaded server configuration"),
                        Err(e) => error!("Failed to reload server configuration: {e}"),
                    }
                }
                _ = usr1.recv() => {
                    info!("Trapped \"user defined signal 1\" signal");
                    if let Some(log) = &log {
                        match log.reopen() {
                            Ok(()) => info!("File log re-opened"),
                            Err(e) => error!("cannot reopen the log file: {e}"),
                        }
                    }
                }
            }
        }
    });
}

#[cfg(not(unix))]
pub fn spawn(_shared: Arc<Shared>, _args: Vec<String>, _log: Option<LogFile>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_what_it_would_change() {
        let old = Options::default();
        assert!(changed(&old, &old.clone()).is_empty());
        let mut new = old.clone();
        new.max_payload = 10;
        new.authorization.token = Some("t".into());
        assert_eq!(changed(&old, &new), ["max_payload", "authorization"]);
        let mut only_warnings = old.clone();
        only_warnings.warnings.push("x".into());
        assert_eq!(changed(&old, &only_warnings), ["options"]);
    }
}
