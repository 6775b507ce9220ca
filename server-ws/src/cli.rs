//! Command-line flags, parsed by the rules of Go's `flag` package as nats-server parses them,
//! so scripts and test harnesses written for nats-server can start edgebus unchanged.
//!
//! Go's rules, which differ from the usual GNU ones:
//!
//! * `-flag` and `--flag` are the same; names are case-sensitive (`-v` version, `-V` trace)
//!   and multi-letter short names exist (`-js`, `-sd`, `-DV`), so there is no bundling;
//! * `-flag=value` and `-flag value` are the same, except for booleans, which never take a
//!   separate value (`-D` or `-D=false`; in `-D false` the `false` is a positional argument);
//! * parsing stops at the first argument that is not a flag (or `-`), or after `--`;
//!   nats-server then accepts only `version` or `help` there and rejects anything else.
//!
//! The configuration file (`-c`) is applied first and the flags on top (flags win), then the
//! result is validated, as in nats-server. nats-server flags that edgebus does not implement
//! are accepted with a warning when ignoring them is harmless (logging, clustering hints),
//! and refused when it is not (HTTPS monitoring: serving plaintext where TLS was asked for;
//! routes and clusters: running one unreplicated copy where a cluster was asked for;
//! signals: starting a server where one was meant to be signalled).
//!
//! The flag table and the usage text made from it are in `flags`; this file holds Go's
//! parsing rules and how the flags land on top of the configuration file.

use std::fmt;
use std::path::PathBuf;

use crate::conf::{self, ConfError, Value, ValueKind};
use crate::options::{Options, User};

mod flags;
pub mod signal;

pub use flags::usage;
use flags::{Flag, Spec, SPECS};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start the server (or, with [`Cli::check_config`], only check the configuration).
    Run(Box<Cli>),
    /// `-v` / `--version` / `version`: print the version and exit.
    Version,
    /// `-h` / `--help` / `help`: print this usage text and exit.
    Help(String),
    /// `-sl` / `--signal`: signal a running server and exit.
    Signal(signal::Request),
}

/// Everything the command line (and the configuration file it names) settles.
#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    pub options: Options,
    /// `-c` / `--config`.
    pub config_file: Option<PathBuf>,
    /// `-l` / `--log`, else `log_file` from the configuration file.
    pub log_file: Option<PathBuf>,
    /// `-P` / `--pid`, else `pid_file` from the configuration file.
    pub pid_file: Option<PathBuf>,
    /// `-t`: check the configuration and exit instead of serving.
    pub check_config: bool,
}

/// Why the command line cannot be used; `Display` gives the message to print before
/// exiting with status 1 (the texts follow Go's `flag` package and nats-server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// `---x`, `-=x`.
    BadSyntax(String),
    /// A flag neither nats-server nor edgebus defines.
    UndefinedFlag(String),
    /// A flag that takes a value came last.
    MissingArgument(String),
    InvalidValue {
        flag: String,
        value: String,
        reason: String,
    },
    InvalidBool {
        flag: String,
        value: String,
    },
    /// A positional argument other than `version` / `help`.
    UnrecognizedCommand(String),
    /// A nats-server flag edgebus refuses (see the module docs).
    Unsupported {
        flag: String,
        reason: String,
    },
    /// The configuration file is unreadable or wrong, or the options are inconsistent.
    Config(ConfError),
    /// The TLS certificate, key or CA file cannot be used (the message names the file).
    Tls(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::BadSyntax(arg) => write!(f, "bad flag syntax: {arg}"),
            CliError::UndefinedFlag(name) => write!(f, "flag provided but not defined: -{name}"),
            CliError::MissingArgument(name) => write!(f, "flag needs an argument: -{name}"),
            CliError::InvalidValue { flag, value, reason } => {
                write!(f, "invalid value {value:?} for flag -{flag}: {reason}")
            }
            CliError::InvalidBool { flag, value } => {
                write!(f, "invalid boolean value {value:?} for -{flag}: parse error")
            }
            CliError::UnrecognizedCommand(arg) => write!(f, "unrecognized command: {arg:?}"),
            CliError::Unsupported { flag, reason } => {
                write!(f, "flag -{flag} is not supported by edgebus: {reason}")
            }
            CliError::Config(e) => e.fmt(f),
            CliError::Tls(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ConfError> for CliError {
    fn from(e: ConfError) -> Self {
        CliError::Config(e)
    }
}

/// One flag as given on the command line.
struct Setting {
    spec: &'static Spec,
    /// The name as typed (one of `spec.names`), for messages.
    name: String,
    /// The value for flags that take one.
    text: String,
    /// The value for boolean flags.
    on: bool,
}

/// Parses the command line. `args` are the arguments *without* the program name
/// (`std::env::args().skip(1)`).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, CliError> {
    let args: Vec<String> = args.into_iter().collect();
    let (settings, rest) = scan(&args)?;

    let wants = |flag: Flag| settings.iter().any(|s| s.spec.flag == flag && s.on);
    if wants(Flag::Version) {
        return Ok(Command::Version);
    }
    if wants(Flag::Help) {
        return Ok(Command::Help(usage()));
    }
    if let Some(text) = last_text(&settings, Flag::Signal) {
        return signal::Request::parse(text).map(Command::Signal).map_err(|e| CliError::InvalidValue {
            flag: "signal".into(),
            value: text.to_string(),
            reason: e.0,
        });
    }
    if let Some(first) = rest.first() {
        return match first.to_ascii_lowercase().as_str() {
            "version" => Ok(Command::Version),
            "help" => Ok(Command::Help(usage())),
            _ => Err(CliError::UnrecognizedCommand(first.clone())),
        };
    }

    let mut cli = Cli {
        options: Options::default(),
        config_file: last_text(&settings, Flag::Config).map(PathBuf::from),
        log_file: None,
        pid_file: None,
        check_config: false,
    };
    if let Some(path) = cli.config_file.clone() {
        let value = conf::parse_file(&path)?;
        conf::apply(&value, &mut cli.options)?;
        cli.log_file = file_setting(&value, &["log_file", "logfile"]);
        cli.pid_file = file_setting(&value, &["pid_file", "pidfile"]);
    }
    apply_flags(&settings, &mut cli)?;
    conf::validate(&cli.options)?;
    // Read the TLS files now, so a bad one stops the start (and fails `-t`) naming it.
    cli.options.tls.load().map_err(|e| CliError::Tls(e.to_string()))?;
    cli.options.websocket.tls.load().map_err(|e| CliError::Tls(format!("websocket: {e}")))?;
    cli.options.leafnodes.load().map_err(CliError::Tls)?;
    Ok(Command::Run(Box::new(cli)))
}

/// Splits `args` into flags and the positional arguments after them, by Go's rules.
fn scan(args: &[String]) -> Result<(Vec<Setting>, Vec<String>), CliError> {
    let mut settings = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        let body = match arg.strip_prefix("--") {
            Some("") => {
                i += 1;
                break;
            }
            Some(body) => body,
            None => &arg[1..],
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(CliError::BadSyntax(arg.clone()));
        }
        i += 1;
        let (name, inline) = match body.split_once('=') {
            Some((name, v)) => (name, Some(v)),
            None => (body, None),
        };
        let spec =
            SPECS.iter().find(|s| s.names.contains(&name)).ok_or_else(|| CliError::UndefinedFlag(name.to_string()))?;
        let mut setting = Setting { spec, name: name.to_string(), text: String::new(), on: true };
        if spec.takes_value {
            setting.text = match inline {
                Some(v) => v.to_string(),
                None => {
                    let v = args.get(i).ok_or_else(|| CliError::MissingArgument(name.to_string()))?;
                    i += 1;
                    v.clone()
                }
            };
        } else if let Some(v) = inline {
            setting.on = parse_go_bool(v)
                .ok_or_else(|| CliError::InvalidBool { flag: name.to_string(), value: v.to_string() })?;
        }
        settings.push(setting);
    }
    Ok((settings, args.get(i..).unwrap_or_default().to_vec()))
}

/// The value of the last occurrence of a value-taking flag.
fn last_text(settings: &[Setting], flag: Flag) -> Option<&str> {
    settings.iter().rev().find(|s| s.spec.flag == flag).map(|s| s.text.as_str())
}

/// A path-valued key of the configuration file (already type-checked by `conf::apply`).
fn file_setting(value: &Value, keys: &[&str]) -> Option<PathBuf> {
    keys.iter().find_map(|k| match value.get(k).map(|v| &v.kind) {
        Some(ValueKind::String(s)) if !s.is_empty() => Some(PathBuf::from(s)),
        _ => None,
    })
}

/// Applies the flags on top of what the configuration file set. As nats-server merges
/// them, an empty string or a port of 0 given as a flag does not override the file.
fn apply_flags(settings: &[Setting], cli: &mut Cli) -> Result<(), CliError> {
    let mut user = None;
    let mut pass = None;
    let mut ws_port = None;
    let mut ws_host = None;
    let mut tls = TlsFlags::default();
    for s in settings {
        let opts = &mut cli.options;
        let text = (!s.text.is_empty()).then(|| s.text.clone());
        match s.spec.flag {
            Flag::Addr => {
                if let Some(host) = text {
                    opts.host = host;
                }
            }
            Flag::Port => {
                let port = int_value(s)?;
                if port != 0 {
                    opts.port = port;
                }
            }
            Flag::HttpPort => {
                let port = int_value(s)?;
                if port != 0 {
                    opts.http_port = port;
                }
            }
            Flag::Name => {
                if text.is_some() {
                    opts.server_name = text;
                }
            }
            Flag::Pid => cli.pid_file = text.map(PathBuf::from).or(cli.pid_file.take()),
            Flag::Log => cli.log_file = text.map(PathBuf::from).or(cli.log_file.take()),
            Flag::Debug => opts.debug = s.on,
            Flag::Trace => opts.trace = s.on,
            Flag::DebugTrace => {
                opts.debug = s.on;
                opts.trace = s.on;
            }
            Flag::JetStream => opts.jetstream.enabled = s.on,
            Flag::StoreDir => {
                if let Some(dir) = text {
                    opts.jetstream.store_dir = Some(PathBuf::from(dir));
                }
            }
            Flag::User => user = text.or(user),
            Flag::Pass => pass = text.or(pass),
            Flag::Auth => {
                if text.is_some() {
                    opts.authorization.token = text;
                }
            }
            Flag::WsPort => ws_port = Some(int_value(s)?),
            Flag::WsHost => ws_host = text.or(ws_host),
            Flag::CheckConfig => cli.check_config = s.on,
            Flag::Tls => tls.set(s.on, |_| {}),
            Flag::TlsVerify => tls.set(true, |t| t.verify = s.on),
            Flag::TlsCert => tls.set(true, |t| t.cert_file = text.map(PathBuf::from)),
            Flag::TlsKey => tls.set(true, |t| t.key_file = text.map(PathBuf::from)),
            Flag::TlsCaCert => tls.set(true, |t| t.ca_file = text.map(PathBuf::from)),
            Flag::Ignored(why) => opts.warnings.push(format!("flag -{} ignored: {why}", s.name)),
            Flag::Refused(why) => {
                if s.on {
                    return Err(CliError::Unsupported { flag: s.name.clone(), reason: why.into() });
                }
            }
            Flag::Config | Flag::Version | Flag::Help | Flag::Signal => {}
        }
    }

    let opts = &mut cli.options;
    tls.apply(opts)?;
    match (user, pass) {
        (Some(username), pass) => {
            let password = pass.unwrap_or_default();
            match opts.authorization.users.iter_mut().find(|u| u.username == username) {
                Some(existing) => existing.password = password,
                None => {
                    opts.authorization.single_user = opts.authorization.users.is_empty();
                    opts.authorization.users.push(User::new(username, password));
                }
            }
        }
        (None, Some(_)) => opts.warnings.push("flag -pass ignored: no -user given".into()),
        (None, None) => {}
    }
    if let Some(host) = ws_host {
        opts.websocket.host = host;
    }
    match ws_port {
        Some(port) if port != 0 => {
            // Without a websocket block, `--ws_port` alone turns WebSocket on: plain ws://
            // on the client host, as the flag's help says.
            let had_block = opts.websocket.port != 0;
            opts.websocket.port = port;
            if !had_block {
                if opts.websocket.host.is_empty() {
                    opts.websocket.host = opts.host.clone();
                }
                opts.websocket.no_tls = true;
            }
        }
        _ => {
            if opts.websocket.port == 0 && !opts.websocket.host.is_empty() {
                opts.warnings.push(
                    "WebSocket host set but no WebSocket port (--ws_port or websocket { port }): \
                     WebSocket stays off"
                        .into(),
                );
            }
        }
    }
    Ok(())
}

/// The `--tls*` flags, applied as nats-server applies them: any of them replaces the
/// file's `tls` block with one made of the flags alone (cert and key required), and
/// `--tls=false` turns TLS off whatever else was given.
#[derive(Default)]
struct TlsFlags {
    given: bool,
    off: bool,
    opts: crate::tls::TlsOptions,
}

impl TlsFlags {
    fn set(&mut self, on: bool, f: impl FnOnce(&mut crate::tls::TlsOptions)) {
        self.given = true;
        self.off |= !on;
        f(&mut self.opts);
    }

    fn apply(self, opts: &mut Options) -> Result<(), CliError> {
        if self.off {
            opts.tls = crate::tls::TlsOptions::default();
            return Ok(());
        }
        if !self.given {
            return Ok(());
        }
        if self.opts.cert_file.is_none() {
            return Err(CliError::Tls("TLS Server certificate must be present and valid".into()));
        }
        if self.opts.key_file.is_none() {
            return Err(CliError::Tls("TLS Server private key must be present and valid".into()));
        }
        opts.tls = crate::tls::TlsOptions { enabled: true, ..self.opts };
        Ok(())
    }
}

fn int_value(s: &Setting) -> Result<i32, CliError> {
    let invalid =
        |reason: &str| CliError::InvalidValue { flag: s.name.clone(), value: s.text.clone(), reason: reason.into() };
    let n = parse_go_int(&s.text).map_err(invalid)?;
    i32::try_from(n).map_err(|_| invalid("value out of range"))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` as `flag.IntVar` uses it: optional sign, then decimal,
/// `0x` hex, `0o`/leading-`0` octal or `0b` binary (digit-separating underscores are not
/// accepted). Errors are Go's texts.
fn parse_go_int(s: &str) -> Result<i64, &'static str> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err("parse error");
    }
    let magnitude = u64::from_str_radix(digits, radix).map_err(|_| "value out of range")?;
    let n = if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() };
    n.ok_or("value out of range")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn run(line: &str) -> Cli {
        match parse(args(line)) {
            Ok(Command::Run(cli)) => *cli,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn fail(line: &str) -> String {
        parse(args(line)).expect_err(line).to_string()
    }

    /// A config file with unique name under the temp dir, removed when dropped.
    struct TempConf(PathBuf);

    impl TempConf {
        fn new(text: &str) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("edgebus-cli-{}-{n}.conf", std::process::id()));
            fs::write(&path, text).unwrap();
            TempConf(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempConf {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    #[test]
    fn no_arguments_means_defaults() {
        let cli = run("");
        assert_eq!(cli.options, Options::default());
        assert_eq!((cli.config_file, cli.log_file, cli.pid_file, cli.check_config), (None, None, None, false));
    }

    #[test]
    fn go_flag_forms() {
        for line in ["-sd /data", "-sd=/data", "--store_dir /data", "--store_dir=/data", "-store_dir /data"] {
            assert_eq!(run(line).options.jetstream.store_dir, Some(PathBuf::from("/data")), "{line}");
        }
        for line in ["-p 4223", "-p=4223", "--port 4223", "--port=4223", "-port=4223", "-p 0x107f", "-p 010177"] {
            assert_eq!(run(line).options.port, 4223, "{line}");
        }
        assert!(run("-js").options.jetstream.enabled);
        assert!(run("--jetstream").options.jetstream.enabled);
        assert!(!run("-js=false").options.jetstream.enabled);
        assert!(run("-js=1").options.jetstream.enabled);
        let o = run("-DV").options;
        assert!(o.debug && o.trace);
        let o = run("-DVV").options;
        assert!(o.debug && o.trace);
        let o = run("-VV").options;
        assert!(!o.debug && o.trace);
        let o = run("-D --trace").options;
        assert!(o.debug && o.trace);
        assert!(!run("-D -D=false").options.debug, "last one wins");
        assert!(!run("-D=F").options.debug);
        let o = run("-a 127.0.0.1 --addr=127.0.0.2").options;
        assert_eq!(o.host, "127.0.0.2");
        assert_eq!(run("--net 10.1.1.1").options.host, "10.1.1.1");
        assert_eq!(run("-m 8222").options.http_port, 8222);
        assert_eq!(run("--http_port=8223").options.http_port, 8223);
        for line in ["-n edge", "--name edge", "--server_name=edge"] {
            assert_eq!(run(line).options.server_name.as_deref(), Some("edge"), "{line}");
        }
        let cli = run("-l /tmp/e.log -P=/tmp/e.pid");
        assert_eq!(cli.log_file, Some(PathBuf::from("/tmp/e.log")));
        assert_eq!(cli.pid_file, Some(PathBuf::from("/tmp/e.pid")));
        let cli = run("--log /tmp/f.log --pid /tmp/f.pid -t");
        assert_eq!(cli.log_file, Some(PathBuf::from("/tmp/f.log")));
        assert!(cli.check_config);
        // A flag's value may itself start with a dash.
        assert_eq!(run("--auth -secret").options.authorization.token.as_deref(), Some("-secret"));
        // An empty value does not override.
        assert_eq!(run("-a=").options.host, "0.0.0.0");
    }

    #[test]
    fn positional_arguments() {
        assert_eq!(parse(args("version")).unwrap(), Command::Version);
        assert_eq!(parse(args("-p 1 VERSION")).unwrap(), Command::Version);
        assert!(matches!(parse(args("help")).unwrap(), Command::Help(_)));
        assert_eq!(fail("foo"), "unrecognized command: \"foo\"");
        assert_eq!(fail("-p 4222 foo -D"), "unrecognized command: \"foo\"");
        // A boolean never takes a separate value.
        assert_eq!(fail("-D false"), "unrecognized command: \"false\"");
        // `--` ends the flags; `-` alone is positional.
        assert_eq!(fail("-p 1 -- -D"), "unrecognized command: \"-D\"");
        assert_eq!(fail("-"), "unrecognized command: \"-\"");
        assert_eq!(run("-p 5 --").options.port, 5);
    }

    #[test]
    fn version_and_help() {
        for line in ["-v", "--version", "-v -p 1", "-version=true"] {
            assert_eq!(parse(args(line)).unwrap(), Command::Version, "{line}");
        }
        assert!(matches!(parse(args("-v=false")).unwrap(), Command::Run(_)));
        // Flags are all parsed first: a bad one still fails.
        assert!(parse(args("-v --bogus")).is_err());
        let Command::Help(text) = parse(args("-h")).unwrap() else { panic!() };
        assert_eq!(parse(args("--help")).unwrap(), Command::Help(text.clone()));
        assert_eq!(text, usage());
        // Every flag is listed.
        for spec in SPECS {
            for name in spec.names {
                let listed = [" ", ",", "/", "\n"].iter().any(|end| text.contains(&format!("-{name}{end}")));
                assert!(listed, "-{name} missing from usage:\n{text}");
            }
        }
    }

    #[test]
    fn flag_errors() {
        assert_eq!(fail("--bogus"), "flag provided but not defined: -bogus");
        assert_eq!(fail("-max_payload 10"), "flag provided but not defined: -max_payload");
        assert_eq!(fail("-p"), "flag needs an argument: -p");
        assert_eq!(fail("-D -sd"), "flag needs an argument: -sd");
        assert_eq!(fail("-p abc"), "invalid value \"abc\" for flag -p: parse error");
        assert_eq!(
            fail("-p 99999999999999999999"),
            "invalid value \"99999999999999999999\" for flag -p: value out of range"
        );
        assert_eq!(fail("-p 9999999999"), "invalid value \"9999999999\" for flag -p: value out of range");
        assert_eq!(fail("-js=maybe"), "invalid boolean value \"maybe\" for -js: parse error");
        assert_eq!(fail("---p 1"), "bad flag syntax: ---p");
        assert_eq!(fail("-=x"), "bad flag syntax: -=x");
        assert!(fail("-p 70000").contains("invalid port 70000"));
        assert!(fail("-P").contains("needs an argument"));
        assert!(fail("-V=yes").contains("invalid boolean value"));
    }

    #[test]
    fn unsupported_flags() {
        let cli = run("-T --cluster_advertise x --connect_retries 3 --no_advertise");
        assert_eq!(cli.options.warnings.len(), 4, "{:?}", cli.options.warnings);
        assert!(cli.options.warnings[0].starts_with("flag -T ignored"));
        assert!(fail("--ms 8443").starts_with("flag -ms is not supported by edgebus: HTTPS"));
        for cluster in ["--routes nats://x:6222", "--cluster nats://0.0.0.0:6222", "--cluster_name c"] {
            assert!(fail(cluster).contains("edgebus runs standalone"), "{cluster}");
        }
        assert!(matches!(parse(args("-sl ldm=12")), Ok(Command::Signal(_))));
        assert!(fail("--signal nope").contains("unknown signal"));
        assert!(fail("--help_tls").contains("not supported"));
    }

    /// The `--tls*` flags as nats-server applies them; the files are read at parse time,
    /// so a missing one stops the start naming it (loading real certificates is covered by
    /// tests/python/test_tls.py, which generates them).
    #[test]
    fn tls_flags() {
        assert_eq!(fail("--tls"), "TLS Server certificate must be present and valid");
        assert_eq!(fail("--tlscert c.pem"), "TLS Server private key must be present and valid");
        assert_eq!(fail("--tlsverify --tlskey k.pem"), "TLS Server certificate must be present and valid");
        let e = fail("--tls --tlscert /nonexistent/c.pem --tlskey /nonexistent/k.pem");
        assert!(e.starts_with("error parsing TLS certificate file /nonexistent/c.pem: "), "{e}");
        let o = run("--tls=false").options;
        assert!(o.warnings.is_empty() && !o.tls.enabled);
        // `--tls=false` turns off the file's block too, whatever other flags say.
        let conf = TempConf::new("tls { cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem }\n");
        let o = run(&format!("-c {} --tls=false --tlscert x.pem", conf.path())).options;
        assert!(!o.tls.enabled);
        let e = fail(&format!("-c {}", conf.path()));
        assert!(e.contains("/nonexistent/c.pem"), "{e}");
        // flags replace the block: the flag's certificate is the one read, not the block's
        let cert = TempConf::new("not a certificate\n");
        let e = fail(&format!("-c {} --tlscert {} --tlskey /nonexistent/k2.pem", conf.path(), cert.path()));
        assert!(
            e.contains(&format!("error parsing TLS certificate file {}: no certificate found", cert.path())),
            "{e}"
        );
    }

    #[test]
    fn auth_flags() {
        let o = run("--user derek --pass s3cr3t").options;
        assert_eq!(o.authorization.users, vec![User::new("derek", "s3cr3t")]);
        assert_eq!(run("--user solo").options.authorization.users[0].password, "");
        assert_eq!(run("--auth t0k3n").options.authorization.token.as_deref(), Some("t0k3n"));
        let o = run("--pass lonely").options;
        assert!(o.authorization.users.is_empty());
        assert_eq!(o.warnings, vec!["flag -pass ignored: no -user given".to_string()]);
    }

    #[test]
    fn websocket_flags() {
        // No websocket block: --ws_port turns it on, plain ws, on the client host.
        let o = run("-a 127.0.0.1 --ws_port 8080").options;
        assert_eq!((o.websocket.host.as_str(), o.websocket.port, o.websocket.no_tls), ("127.0.0.1", 8080, true));
        let o = run("--ws_port=8081").options;
        assert_eq!(o.websocket.host, "0.0.0.0");
        let o = run("--ws_host 127.0.0.9 --ws_port 8082").options;
        assert_eq!(o.websocket.host, "127.0.0.9");
        let o = run("--ws_host 127.0.0.9").options;
        assert_eq!(o.websocket.port, 0);
        assert_eq!(o.warnings.len(), 1);
        // With a block, the flag only moves the port.
        let conf = TempConf::new("websocket { host: 10.0.0.1, port: 9000, no_tls: true }\n");
        let o = run(&format!("-c {} --ws_port 9001 -a 127.0.0.1", conf.path())).options;
        assert_eq!((o.websocket.host.as_str(), o.websocket.port, o.websocket.no_tls), ("10.0.0.1", 9001, true));
        // A block without TLS and without `no_tls: true` refuses, with nats-server's words.
        let conf = TempConf::new("websocket { host: 10.0.0.1, port: 9000 }\n");
        assert_eq!(fail(&format!("-c {}", conf.path())), "websocket requires TLS configuration");
    }

    #[test]
    fn flags_override_the_file() {
        let conf = TempConf::new(concat!(
            "listen: 127.0.0.1:1111\nhttp_port: 8000\nserver_name: from-file\ndebug: true\n",
            "max_pending: 4MB\nwrite_deadline: \"2s\"\nlog_file: /var/log/file.log\npid_file: /run/file.pid\n",
            "jetstream { store_dir: /file/store }\nauthorization { users: [ {user: a, password: b} ] }\n",
            "unknown_thing: 1\n",
        ));
        let cli = run(&format!(
            "-c {} -p 2222 -m 0 -n from-flag -D=false -sd /flag/store --user c --pass d -P /run/flag.pid",
            conf.path()
        ));
        let o = &cli.options;
        assert_eq!(cli.config_file, Some(PathBuf::from(conf.path())));
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 2222));
        assert_eq!(o.http_port, 8000, "-m 0 does not override (nats-server merges non-zero ports)");
        assert_eq!(o.server_name.as_deref(), Some("from-flag"));
        assert!(!o.debug);
        assert_eq!(o.max_pending, 4 << 20);
        assert_eq!(o.write_deadline, Duration::from_secs(2));
        assert_eq!(o.jetstream.store_dir, Some(PathBuf::from("/flag/store")));
        assert!(o.jetstream.enabled, "a jetstream block enables JetStream");
        assert_eq!(o.authorization.users.len(), 2);
        assert_eq!(cli.log_file, Some(PathBuf::from("/var/log/file.log")));
        assert_eq!(cli.pid_file, Some(PathBuf::from("/run/flag.pid")));
        assert_eq!(o.warnings.len(), 1);
        assert!(o.warnings[0].contains("unknown field \"unknown_thing\""), "{:?}", o.warnings);
        // --config and -c are the same; the last one wins.
        let other = TempConf::new("port: 3333\n");
        assert_eq!(run(&format!("-c {} --config={}", conf.path(), other.path())).options.port, 3333);
    }

    #[test]
    fn config_errors_and_validation() {
        let conf = TempConf::new("port: 1\nmax_payload: 2MB\nmax_pending: 1MB\n");
        assert_eq!(
            fail(&format!("-c {}", conf.path())),
            "max_payload (2097152) cannot be higher than max_pending (1048576)"
        );
        let conf = TempConf::new("port: 1\n\nauthorization { token: $UNDEFINED_EDGEBUS_TEST_VAR }\n");
        let msg = fail(&format!("-c {}", conf.path()));
        assert!(msg.contains(":3:") && msg.contains("UNDEFINED_EDGEBUS_TEST_VAR"), "{msg}");
        assert!(matches!(parse(args("-c /nonexistent/edgebus.conf")), Err(CliError::Config(ConfError::Read { .. }))));
        // The acceptance suite's file.
        let conf = TempConf::new(
            "# written by the NATS acceptance suite (conftest.py)\nwebsocket {\n  host: \"127.0.0.1\"\n  \
             port: 12345\n  no_tls: true\n}\nmax_pending: 4MB\nwrite_deadline: \"2s\"\n",
        );
        let o = run(&format!("-c {} -p -1", conf.path())).options;
        assert_eq!((o.port, o.websocket.port, o.max_pending), (-1, 12345, 4_194_304));
    }

    #[test]
    fn go_ints_and_bools() {
        assert_eq!(parse_go_int("42"), Ok(42));
        assert_eq!(parse_go_int("-1"), Ok(-1));
        assert_eq!(parse_go_int("+7"), Ok(7));
        assert_eq!(parse_go_int("0"), Ok(0));
        assert_eq!(parse_go_int("0x1F"), Ok(31));
        assert_eq!(parse_go_int("0b101"), Ok(5));
        assert_eq!(parse_go_int("0o17"), Ok(15));
        assert_eq!(parse_go_int("017"), Ok(15));
        assert_eq!(parse_go_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_go_int("9223372036854775808"), Err("value out of range"));
        for bad in ["", "-", "0x", "08", "1_000", "12a", " 1", "++1"] {
            assert_eq!(parse_go_int(bad), Err("parse error"), "{bad:?}");
        }
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
    }

    /// Arbitrary argument lists never panic.
    #[test]
    fn garbage_arguments_never_panic() {
        let pieces =
            ["-", "--", "-p", "=", "-D=", "x", "-js", "--ws_port", "-1", "é", "-=", "---", "-c", "-v=1", "help"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut line = Vec::new();
            for _ in 0..(seed % 6) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let a = pieces[(seed as usize) % pieces.len()];
                let b = pieces[((seed >> 32) as usize) % pieces.len()];
                line.push(if seed.is_multiple_of(3) { format!("{a}{b}") } else { a.to_string() });
            }
            // `-c` with a random path must not find a file; point it somewhere empty.
            let line: Vec<String> =
                line.into_iter().map(|a| if a == "x" { "/nonexistent/x".into() } else { a }).collect();
            let _ = parse(line);
        }
    }
}
