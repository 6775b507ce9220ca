//! The log level, from `debug` / `trace` (`-D`, `-V`), switchable by a reload as in
//! nats-server. `EDGEBUS_LOG` (an `EnvFilter` directive) overrides both; a level chosen by
//! it is the operator's and a reload leaves it alone.

use tracing_subscriber::{reload, EnvFilter, Registry};

/// The filter directive for the configured levels.
pub fn directive(debug: bool, trace: bool) -> String {
    let level = if trace {
        "trace"
    } else if debug {
        "debug"
    } else {
        "info"
    };
    format!("edgebus_server={level},edgebus_core={level},warn")
}

/// The running filter, and whether a reload may replace it.
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
}

impl LogLevel {
    /// The filter layer to install and its control. The filter is `EDGEBUS_LOG` when set,
    /// else the one of `debug` / `trace`.
    pub fn layer(debug: bool, trace: bool) -> (reload::Layer<EnvFilter, Registry>, LogLevel) {
        let (filter, from_env) = match EnvFilter::try_from_env("EDGEBUS_LOG") {
            Ok(f) => (f, true),
            Err(_) => (EnvFilter::new(directive(debug, trace)), false),
        };
        let (layer, handle) = reload::Layer::new(filter);
        (layer, LogLevel { handle, from_env })
    }

    /// Switches to the levels of `debug` / `trace`, unless `EDGEBUS_LOG` chose them.
    pub fn set(&self, debug: bool, trace: bool) -> Result<(), String> {
        if self.from_env {
            return Err("the log level is set by EDGEBUS_LOG".into());
        }
        self.handle.reload(EnvFilter::new(directive(debug, trace))).map_err(|e| e.to_string())
    }
}
