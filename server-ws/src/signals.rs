//! What a running server does with the signals operators send it, as nats-server: `SIGUSR2`
//! enters lame duck mode, `SIGHUP` reloads the configuration (see `reload`), `SIGUSR1` reopens the log file
//! (log rotation). `SIGINT`/`SIGTERM` end the server through the `stop` future of
//! [`crate::server::Server::run`]. Without a handler, the default action of each of these
//! signals would kill the process — the worst answer to an operator asking for a reload.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use tracing::{error, info};

use crate::log_level::LogLevel;
use crate::reload;
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

/// Handles `SIGUSR1`, `SIGUSR2` and `SIGHUP` for the life of the server.
#[cfg(unix)]
pub fn spawn(shared: Arc<Shared>, args: Vec<String>, log: Option<LogFile>, level: LogLevel) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut usr1), Ok(mut usr2), Ok(mut hup)) =
        (signal(SignalKind::user_defined1()), signal(SignalKind::user_defined2()), signal(SignalKind::hangup()))
    else {
        error!("cannot handle SIGUSR1, SIGUSR2 and SIGHUP: lame duck mode, reload and log reopening are off");
        return;
    };
    tokio::spawn(async move {
        // what runs now: the start-up options, then each reload's
        let mut running = shared.opts.clone();
        loop {
            tokio::select! {
                _ = usr2.recv() => {
                    info!("Trapped \"user defined signal 2\" signal");
                    shared.lame_duck.notify_one();
                }
                _ = hup.recv() => {
                    info!("Trapped \"hangup\" signal");
                    match reload::reload(&shared, &args, &mut running, &level).await {
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
pub fn spawn(_shared: Arc<Shared>, _args: Vec<String>, _log: Option<LogFile>, _level: LogLevel) {}
