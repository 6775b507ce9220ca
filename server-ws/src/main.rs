//! `edgebus-server`: a drop-in for `nats-server` on the command line.

use std::process::ExitCode;

use edgebus_server::cli::{self, Command};
use edgebus_server::log_level::LogLevel;
use edgebus_server::log_sink::LogSink;
use edgebus_server::server::Server;
use edgebus_server::signals;
use tracing::error;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    tune_malloc();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match cli::parse(args.iter().cloned()) {
        Ok(Command::Run(cli)) => cli,
        Ok(Command::Version) => {
            println!("edgebus-server v{} (NATS protocol {})", env!("CARGO_PKG_VERSION"), edgebus_core::NATS_VERSION);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Signal(request)) => {
            return match request.send() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("edgebus-server: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Err(e) => {
            eprintln!("edgebus-server: {e}");
            return ExitCode::from(1);
        }
    };
    if cli.check_config {
        println!("edgebus-server: configuration is valid");
        return ExitCode::SUCCESS;
    }
    let opts = cli.options;
    let (filter, log_level) = LogLevel::layer(opts.debug, opts.trace);
    let format = tracing_subscriber::fmt::layer().with_ansi(false);
    let log = match LogSink::open(cli.log_file.as_deref()) {
        Ok(sink) => sink,
        Err(e) => {
            let path = cli.log_file.as_deref().unwrap_or(std::path::Path::new("")).display();
            eprintln!("edgebus-server: cannot open log file {path}: {e}");
            return ExitCode::from(1);
        }
    };
    tracing_subscriber::registry().with(filter).with(format.with_writer(log.clone())).init();
    if let Some(pid_file) = &cli.pid_file {
        if let Err(e) = std::fs::write(pid_file, std::process::id().to_string()) {
            error!("cannot write pid file {}: {e}", pid_file.display());
            return ExitCode::from(1);
        }
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgebus-server: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let server = match Server::bind(opts).await {
            Ok(s) => s,
            Err(e) => {
                error!("cannot listen: {e}");
                return ExitCode::from(1);
            }
        };
        signals::spawn(server.shared().clone(), args, log, log_level);
        server.run(shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A fixed mmap threshold (a fixed value also stops glibc raising it) and trim threshold: with
/// them the RSS of five rounds of mixed load levels off (bench `memtime`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_TUNABLES: &str = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072";

/// glibc's malloc keeps what a burst freed: memory freed in the middle of its heaps goes back
/// to the system only on `malloc_trim`, and its mmap threshold rises with every large block
/// freed, so later large buffers (read and write batches, JetStream blocks) come from the heap
/// too and leave holes when freed. A server that runs bursts of load then grows round after
/// round. The cure is a fixed mmap threshold (large blocks are mapped and unmapped, never in
/// the heap) and a low trim threshold. `unsafe_code` is forbidden, so `mallopt` is out; glibc
/// reads the same settings from `GLIBC_TUNABLES` at start-up, so the server re-executes itself
/// once with them (same pid: `exec` replaces the image) unless the operator chose their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    use std::os::unix::process::CommandExt;
    /// Set in the re-executed process so a glibc that drops `GLIBC_TUNABLES` cannot loop us.
    const DONE: &str = "EDGEBUS_MALLOC_TUNED";
    if std::env::var_os("GLIBC_TUNABLES").is_some() || std::env::var_os(DONE).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    let err = cmd.args(args).env("GLIBC_TUNABLES", MALLOC_TUNABLES).env(DONE, "1").exec();
    // `exec` returns only when it failed: run untuned rather than not at all
    eprintln!("edgebus-server: cannot re-execute with GLIBC_TUNABLES ({err}); running without");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
