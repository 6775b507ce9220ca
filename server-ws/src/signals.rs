//! What a running server does with the signals operators send it, as nats-server: `SIGUSR2`
//! enters lame duck mode, `SIGHUP` reloads the configuration (see `reload`), `SIGUSR1` reopens the log file
//! (log rotation). `SIGINT`/`SIGTERM` end the server through the `stop` future of
//! [`crate::server::Server::run`]. Without a handler, the default action of each of these
//! signals would kill the process — the worst answer to an operator asking for a reload.

use std::sync::Arc;

use tracing::{error, info};

use crate::log_level::LogLevel;
use crate::log_sink::LogSink;
use crate::reload;
use crate::server::Shared;

/// Handles `SIGUSR1`, `SIGUSR2` and `SIGHUP` for the life of the server.
#[cfg(unix)]
pub fn spawn(shared: Arc<Shared>, args: Vec<String>, log: LogSink, level: LogLevel) {
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
                    match reload::reload(&shared, &args, &mut running, &level, &log).await {
                        Ok(()) => info!("Reloaded server configuration"),
                        Err(e) => error!("Failed to reload server configuration: {e}"),
                    }
                }
                _ = usr1.recv() => {
                    info!("Trapped \"user defined signal 1\" signal");
                    if log.path().is_some() {
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
pub fn spawn(_shared: Arc<Shared>, _args: Vec<String>, _log: LogSink, _level: LogLevel) {}
