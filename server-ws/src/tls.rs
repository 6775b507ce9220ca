//! TLS with rustls: the settings (`tls { … }`, `--tls*`, a leaf port's or a leaf remote's
//! `tls { … }`), loading the certificate, key and CA files at start-up and again at each
//! configuration reload ([`Certs`] holds what new connections get), and both sides of the
//! handshake (the client port and the leaf port accept; a leaf remote dials).
//!
//! As in nats-server, the server sends its `INFO` in plaintext and the client upgrades
//! (unless `handshake_first`, where the handshake comes first); a client that keeps talking
//! plaintext is dropped without an answer, and the handshake must finish within `timeout`.
//! A file that cannot be read or parsed stops the server at start-up, naming the file (and
//! refuses a reload, the certificates in service staying),
//! because serving plaintext (or nothing) where TLS was asked for is not an option.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// nats-server's `TLS_TIMEOUT`: how long a client has to finish the handshake.
pub const TLS_TIMEOUT: Duration = Duration::from_secs(2);

/// The first byte of a TLS record carrying a handshake message.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What `tls { … }` or the `--tls*` flags ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// A `tls` block or a `--tls*` flag asked for TLS on the client port.
    pub enabled: bool,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The CAs a client certificate must chain to (with `verify`).
    pub ca_file: Option<PathBuf>,
    /// Require a client certificate signed by `ca_file`.
    pub verify: bool,
    /// `verify_and_map`: `verify`, and the certificate names the user
    /// ([`crate::auth::certmap`]).
    pub verify_and_map: bool,
    pub timeout: Duration,
    /// The client starts the TLS handshake before the server sends `INFO`.
    pub handshake_first: bool,
    /// The rustls configuration built from the files by [`TlsOptions::load`].
    pub loaded: Option<Loaded>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            enabled: false,
            cert_file: None,
            key_file: None,
            ca_file: None,
            verify: false,
            verify_and_map: false,
            timeout: TLS_TIMEOUT,
            handshake_first: false,
            loaded: None,
        }
    }
}

/// A built rustls configuration: a server's (the default) or a dialling client's, with the
/// bytes of the files it was built from. Compared by those bytes (the options beside it in
/// [`TlsOptions`] compare themselves), so a configuration reload that loads the same files
/// again changes nothing, and one whose certificate, key or CA file now holds something
/// else swaps the certificates (see `reload`).
pub struct Loaded<C = ServerConfig>(pub Arc<C>, Arc<[u8]>);

impl<C> Clone for Loaded<C> {
    fn clone(&self) -> Self {
        Loaded(self.0.clone(), self.1.clone())
    }
}

impl<C> PartialEq for Loaded<C> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.1 == other.1
    }
}

impl<C> Loaded<C> {
    fn new(config: C, options: &TlsOptions) -> Loaded<C> {
        Loaded(Arc::new(config), options.file_contents())
    }
}

impl<C> Eq for Loaded<C> {}

impl<C> fmt::Debug for Loaded<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Loaded({})", std::any::type_name::<C>())
    }
}

/// Why the TLS configuration cannot be built; each names the file at fault.
#[derive(Debug)]
pub enum TlsError {
    MissingCert,
    MissingKey,
    /// `verify` without `ca_file`: there would be nothing to verify client certificates with.
    VerifyWithoutCa,
    /// A dialling side without `ca_file`: edgebus has no system trust store to verify the
    /// server's certificate with, and dialling unverified would be less than TLS.
    DialWithoutCa,
    /// A client certificate without its key, or a key without its certificate.
    HalfClientCert,
    File {
        what: &'static str,
        path: PathBuf,
        error: pem::Error,
    },
    NoCertificate {
        path: PathBuf,
    },
    Rustls {
        path: PathBuf,
        error: rustls::Error,
    },
    Verifier {
        path: PathBuf,
        error: String,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::MissingCert => f.write_str("missing 'cert_file' in TLS configuration"),
            TlsError::MissingKey => f.write_str("missing 'key_file' in TLS configuration"),
            TlsError::VerifyWithoutCa => {
                f.write_str("TLS 'verify' needs a 'ca_file' to verify client certificates with")
            }
            TlsError::DialWithoutCa => f.write_str(
                "TLS to a remote needs a 'ca_file' to verify its certificate with (edgebus has no system trust store)",
            ),
            TlsError::HalfClientCert => {
                f.write_str("a client certificate needs both 'cert_file' and 'key_file' in TLS configuration")
            }
            TlsError::File { what, path, error } => {
                let why = match error {
                    pem::Error::Io(e) => e.to_string(),
                    pem::Error::NoItemsFound => format!("no {what} found"),
                    e => e.to_string(),
                };
                write!(f, "error parsing TLS {what} file {}: {why}", path.display())
            }
            TlsError::NoCertificate { path } => {
                write!(f, "error parsing TLS certificate file {}: no certificate found", path.display())
            }
            TlsError::Rustls { path, error } => {
                write!(f, "error parsing X509 certificate/key pair {}: {error}", path.display())
            }
            TlsError::Verifier { path, error } => {
                write!(f, "error parsing TLS CA file {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for TlsError {}

impl TlsOptions {
    /// Reads the files and builds the rustls configuration, once (later calls keep it).
    /// Does nothing when TLS is off.
    pub fn load(&mut self) -> Result<(), TlsError> {
        if self.enabled && self.loaded.is_none() {
            self.loaded = Some(Loaded::new(self.build()?, self));
        }
        Ok(())
    }

    fn build(&self) -> Result<ServerConfig, TlsError> {
        let cert_file = self.cert_file.as_deref().ok_or(TlsError::MissingCert)?;
        let key_file = self.key_file.as_deref().ok_or(TlsError::MissingKey)?;
        let (chain, key) = identity(cert_file, key_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Rustls { path: cert_file.to_path_buf(), error })?;
        let builder = match (self.verify, self.ca_file.as_deref()) {
            (false, _) => builder.with_no_client_auth(),
            (true, None) => return Err(TlsError::VerifyWithoutCa),
            (true, Some(ca_file)) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_file)?), provider)
                    .build()
                    .map_err(|e| TlsError::Verifier { path: ca_file.to_path_buf(), error: e.to_string() })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder.with_single_cert(chain, key).map_err(|error| TlsError::Rustls { path: cert_file.to_path_buf(), error })
    }

    /// The dialling side's configuration (a leaf remote's `tls { … }`): the server's
    /// certificate must chain to `ca_file`; `cert_file` and `key_file` are our certificate
    /// for a server that verifies clients.
    pub fn client_config(&self) -> Result<Loaded<ClientConfig>, TlsError> {
        let ca_file = self.ca_file.as_deref().ok_or(TlsError::DialWithoutCa)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Rustls { path: ca_file.to_path_buf(), error })?
            .with_root_certificates(roots(ca_file)?);
        let config = match (self.cert_file.as_deref(), self.key_file.as_deref()) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert_file), Some(key_file)) => {
                let (chain, key) = identity(cert_file, key_file)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| TlsError::Rustls { path: cert_file.to_path_buf(), error })?
            }
            _ => return Err(TlsError::HalfClientCert),
        };
        Ok(Loaded::new(config, self))
    }

    /// The certificate, key and CA files' bytes, each behind its length, as a
    /// [`Loaded`] built from them is compared. A file that cannot be read counts as empty
    /// (building from it failed already, or will).
    fn file_contents(&self) -> Arc<[u8]> {
        let mut all = Vec::new();
        for path in [&self.cert_file, &self.key_file, &self.ca_file] {
            let bytes = path.as_deref().and_then(|p| std::fs::read(p).ok()).unwrap_or_default();
            all.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            all.extend_from_slice(&bytes);
        }
        all.into()
    }
}

/// A certificate chain and its private key.
fn identity(
    cert_file: &Path,
    key_file: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = certificates(cert_file, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| TlsError::File {
        what: "private key",
        path: key_file.to_path_buf(),
        error,
    })?;
    Ok((chain, key))
}

/// The CAs of a PEM file, to verify a peer's certificate with.
fn roots(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_file, "CA")? {
        roots.add(cert).map_err(|error| TlsError::Rustls { path: ca_file.to_path_buf(), error })?;
    }
    Ok(roots)
}

/// Every certificate of a PEM file; at least one.
fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |error| TlsError::File { what, path: path.to_path_buf(), error };
    let certs =
        CertificateDer::pem_file_iter(path).map_err(file_error)?.collect::<Result<Vec<_>, _>>().map_err(file_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(certs)
}

/// What a client that does not start with a TLS handshake gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// Nothing: the connection is closed (the client port, as nats-server's `crypto/tls`:
    /// a plaintext `CONNECT` never gets a reply).
    Drop,
    /// The `400` Go's HTTP server writes when what came looks like an HTTP request (the
    /// `wss://` port, served by Go's HTTP server in nats-server), then the close.
    HttpAnswer,
}

/// What Go's `net/http` answers to an HTTP request on an HTTPS port.
const HTTP_ON_HTTPS: &[u8] = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The server side of the handshake on `stream`, within `timeout`.
///
/// A client whose first byte is not a TLS handshake record is refused before rustls sees it
/// (rustls would answer with an alert), as `plaintext` says.
pub async fn accept(
    mut stream: TcpStream,
    config: &Loaded,
    timeout: Duration,
    plaintext: Plaintext,
) -> io::Result<TlsStream<TcpStream>> {
    let handshake = async {
        let mut first = [0u8; 5];
        let n = stream.peek(&mut first).await?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        if first[0] != HANDSHAKE_RECORD {
            if plaintext == Plaintext::HttpAnswer && looks_like_http(&first[..n]) {
                stream.write_all(HTTP_ON_HTTPS).await?;
                let _ = stream.shutdown().await;
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, "first record does not look like a TLS handshake"));
        }
        tokio_rustls::TlsAcceptor::from(config.0.clone()).accept(stream).await
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timeout"))?
}

/// Go's `tlsRecordHeaderLooksLikeHTTP`, on what has arrived of the first five bytes.
fn looks_like_http(head: &[u8]) -> bool {
    ["GET /", "HEAD ", "POST ", "PUT /", "OPTIO"].iter().any(|m| m.as_bytes().starts_with(head))
}

/// The client side of the handshake on `stream` (a leaf remote dialling a hub), within
/// `timeout`; the server's certificate must name `host` (a DNS name or an IP address).
pub async fn connect(
    stream: TcpStream,
    config: &Loaded<ClientConfig>,
    host: &str,
    timeout: Duration,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TLS server name {host:?}: {e}")))?;
    let handshake = tokio_rustls::TlsConnector::from(config.0.clone()).connect(name, stream);
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timeout"))?
}

/// The TLS configurations new connections are served with: the client port's, the WebSocket
/// port's, the leaf port's, and each leaf remote's (by its name, which a reload that adds
/// or removes remotes does not change; see `leaf::remotes`).
/// A configuration reload replaces them all at once, as nats-server loads changed
/// certificate files for new connections; connections already up keep the ones they
/// were opened with.
#[derive(Clone, Default)]
pub struct Certs {
    pub client: Option<Loaded>,
    pub websocket: Option<Loaded>,
    pub leaf: Option<Loaded>,
    pub remotes: Vec<(String, Option<Loaded<ClientConfig>>)>,
}

impl Certs {
    /// What loaded options hold (see [`TlsOptions::load`] and `LeafOptions::load`).
    pub fn of(opts: &crate::options::Options) -> Certs {
        Certs {
            client: opts.tls.loaded.clone(),
            websocket: opts.websocket.tls.loaded.clone(),
            leaf: opts.leafnodes.tls.loaded.clone(),
            remotes: opts.leafnodes.remotes.iter().map(|r| (r.name(), r.connector.clone())).collect(),
        }
    }

    /// The TLS client configuration of the remote `name`, if it has one.
    pub fn remote(&self, name: &str) -> Option<Loaded<ClientConfig>> {
        self.remotes.iter().find(|(n, _)| n == name).and_then(|(_, c)| c.clone())
    }
}

/// Copies the certificate, key and CA file settings and what was loaded from them from
/// `from` into `into`: what is left different between the two is a change of something
/// other than the certificates.
pub fn copy_files(into: &mut TlsOptions, from: &TlsOptions) {
    into.cert_file.clone_from(&from.cert_file);
    into.key_file.clone_from(&from.key_file);
    into.ca_file.clone_from(&from.ca_file);
    into.loaded.clone_from(&from.loaded);
}
