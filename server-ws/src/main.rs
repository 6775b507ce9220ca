//! `edgebus-server`: a drop-in for `nats-server` on the command line.

use std::process::ExitCode;

use edgebus_server::cli::{self, Command};
use edgebus_server::server::Server;
use edgebus_server::signals::{self, LogFile};
use tracing::error;

fn main() -> ExitCode {
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
    let level = if opts.trace {
        "trace"
    } else if opts.debug {
        "debug"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGEBUS_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("edgebus_server={level},edgebus_core={level},warn"))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    let log = match &cli.log_file {
        Some(path) => match LogFile::open(path) {
            Ok(file) => {
                builder.with_writer(file.clone()).init();
                Some(file)
            }
            Err(e) => {
                eprintln!("edgebus-server: cannot open log file {}: {e}", path.display());
                return ExitCode::from(1);
            }
        },
        None => {
            builder.with_writer(std::io::stderr).init();
            None
        }
    };
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
        signals::spawn(server.shared().clone(), args, log);
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
