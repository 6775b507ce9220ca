//! The flag table: every flag nats-server 2.14 defines (and the two edgebus adds), what
//! each one means here (applied, ignored with a warning, or refused), and the usage text
//! built from the same table, so `-h` cannot drift from what [`super::parse`] accepts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flag {
    Addr,
    Port,
    HttpPort,
    Config,
    CheckConfig,
    Name,
    Pid,
    /// `--signal <command>[=<pid>]`: signal a running server and exit.
    Signal,
    Log,
    Debug,
    Trace,
    DebugTrace,
    JetStream,
    StoreDir,
    User,
    Pass,
    Auth,
    WsPort,
    WsHost,
    Tls,
    TlsVerify,
    TlsCert,
    TlsKey,
    TlsCaCert,
    Version,
    Help,
    /// A nats-server flag accepted and ignored with a warning.
    Ignored(&'static str),
    /// A nats-server flag refused (when true, for booleans).
    Refused(&'static str),
}

pub(super) struct Spec {
    pub(super) names: &'static [&'static str],
    pub(super) flag: Flag,
    pub(super) takes_value: bool,
}

const fn value(names: &'static [&'static str], flag: Flag) -> Spec {
    Spec { names, flag, takes_value: true }
}

const fn switch(names: &'static [&'static str], flag: Flag) -> Spec {
    Spec { names, flag, takes_value: false }
}

const NOT_IMPLEMENTED: &str = "not supported by edgebus";
const NO_CLUSTER: &str = "edgebus runs standalone (no clustering)";

/// Every flag, with nats-server 2.14's names (`server/opts.go` `ConfigureOptions`) plus the
/// edgebus additions `--ws_port` / `--ws_host`.
pub(super) const SPECS: &[Spec] = &[
    value(&["a", "addr", "net"], Flag::Addr),
    value(&["p", "port"], Flag::Port),
    value(&["n", "name", "server_name"], Flag::Name),
    value(&["P", "pid"], Flag::Pid),
    value(&["m", "http_port"], Flag::HttpPort),
    value(&["ms", "https_port"], Flag::Refused("HTTPS monitoring needs TLS, which edgebus does not support")),
    value(&["c", "config"], Flag::Config),
    switch(&["t"], Flag::CheckConfig),
    value(&["sl", "signal"], Flag::Signal),
    value(&["client_advertise"], Flag::Ignored(NO_CLUSTER)),
    value(&["ports_file_dir"], Flag::Ignored(NOT_IMPLEMENTED)),
    value(&["l", "log"], Flag::Log),
    switch(&["T", "logtime"], Flag::Ignored(NOT_IMPLEMENTED)),
    switch(&["s", "syslog"], Flag::Ignored(NOT_IMPLEMENTED)),
    value(&["r", "remote_syslog"], Flag::Ignored(NOT_IMPLEMENTED)),
    switch(&["D", "debug"], Flag::Debug),
    switch(&["V", "trace"], Flag::Trace),
    // Verbose tracing adds system-account traffic, which edgebus does not have.
    switch(&["VV"], Flag::Trace),
    switch(&["DV"], Flag::DebugTrace),
    switch(&["DVV"], Flag::DebugTrace),
    value(&["log_size_limit"], Flag::Ignored(NOT_IMPLEMENTED)),
    value(&["max_traced_msg_len"], Flag::Ignored(NOT_IMPLEMENTED)),
    switch(&["js", "jetstream"], Flag::JetStream),
    value(&["sd", "store_dir"], Flag::StoreDir),
    value(&["user"], Flag::User),
    value(&["pass"], Flag::Pass),
    value(&["auth"], Flag::Auth),
    switch(&["tls"], Flag::Tls),
    switch(&["tlsverify"], Flag::TlsVerify),
    value(&["tlscert"], Flag::TlsCert),
    value(&["tlskey"], Flag::TlsKey),
    value(&["tlscacert"], Flag::TlsCaCert),
    // Asking for a cluster asks for replicated (durable) JetStream: refused, not ignored.
    value(&["routes", "cluster", "cluster_name", "cluster_listen"], Flag::Refused(NO_CLUSTER)),
    value(&["cluster_advertise", "connect_retries"], Flag::Ignored(NO_CLUSTER)),
    switch(&["no_advertise"], Flag::Ignored(NO_CLUSTER)),
    value(&["profile"], Flag::Ignored(NOT_IMPLEMENTED)),
    value(&["ws_port"], Flag::WsPort),
    value(&["ws_host"], Flag::WsHost),
    switch(&["h", "help"], Flag::Help),
    switch(&["v", "version"], Flag::Version),
    switch(&["help_tls"], Flag::Refused("edgebus has no TLS help text; see the tls block in the docs")),
];

/// The usage text (`-h`), in nats-server's layout.
pub fn usage() -> String {
    let mut ignored = Vec::new();
    let mut refused = Vec::new();
    for spec in SPECS {
        let names = spec.names.iter().map(|n| format!("-{n}")).collect::<Vec<_>>().join("/");
        match spec.flag {
            Flag::Ignored(_) => ignored.push(names),
            Flag::Refused(_) => refused.push(names),
            _ => {}
        }
    }
    format!(
        "\
Usage: edgebus-server [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms, --https_port <port>         Use port for https monitoring (refused: no TLS)
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl, --signal <signal>[=<pid>]   Send signal to edgebus-server process (ldm, stop, quit,
                                     term, reopen, reload); pid may be a pid file or end in *

WebSocket Options (edgebus):
        --ws_port <port>             Serve NATS over plain WebSocket (ws://) on this port
        --ws_host <host>             WebSocket host (default: the client host)

Logging Options:
    -l, --log <file>                 File to redirect log output
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (same as -V in edgebus)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version

Accepted for nats-server compatibility and ignored, with a warning:
    {}

Refused (not supported by edgebus):
    {}

Flags may be written with one or two dashes, and -flag=value or -flag value.
",
        wrap(&ignored),
        wrap(&refused),
    )
}

/// Joins flag names into lines of at most ~90 columns.
fn wrap(names: &[String]) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            if line_len + name.len() + 2 > 90 {
                out.push_str(",\n    ");
                line_len = 0;
            } else {
                out.push_str(", ");
                line_len += 2;
            }
        }
        out.push_str(name);
        line_len += name.len();
    }
    out
}
