//! TLS on the client port, with rustls: the settings (`tls { … }`, `--tls*`), loading the
//! certificate, key and CA files once at start-up, and the server side of the handshake.
//!
//! As in nats-server, the server sends its `INFO` in plaintext and the client upgrades
//! (unless `handshake_first`, where the handshake comes first); a client that keeps talking
//! plaintext is dropped without an answer, and the handshake must finish within `timeout`.
//! A file that cannot be read or parsed stops the server at start-up, naming the file,
//! because serving plaintext (or nothing) where TLS was asked for is not an option.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
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

/// A built rustls server configuration. Compared by identity: two loads of the same files
/// are different configurations as far as options go.
#[derive(Clone)]
pub struct Loaded(pub Arc<ServerConfig>);

impl PartialEq for Loaded {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Loaded {}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Loaded(rustls::ServerConfig)")
    }
}

/// Why the TLS configuration cannot be built; each names the file at fault.
#[derive(Debug)]
pub enum TlsError {
    MissingCert,
    MissingKey,
    /// `verify` without `ca_file`: there would be nothing to verify client certificates with.
    VerifyWithoutCa,
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
            self.loaded = Some(Loaded(Arc::new(self.build()?)));
        }
        Ok(())
    }

    fn build(&self) -> Result<ServerConfig, TlsError> {
        let cert_file = self.cert_file.as_deref().ok_or(TlsError::MissingCert)?;
        let key_file = self.key_file.as_deref().ok_or(TlsError::MissingKey)?;
        let chain = certificates(cert_file, "certificate")?;
        let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| TlsError::File {
            what: "private key",
            path: key_file.to_path_buf(),
            error,
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Rustls { path: cert_file.to_path_buf(), error })?;
        let builder = match (self.verify, self.ca_file.as_deref()) {
            (false, _) => builder.with_no_client_auth(),
            (true, None) => return Err(TlsError::VerifyWithoutCa),
            (true, Some(ca_file)) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(ca_file, "CA")? {
                    roots.add(cert).map_err(|error| TlsError::Rustls { path: ca_file.to_path_buf(), error })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| TlsError::Verifier { path: ca_file.to_path_buf(), error: e.to_string() })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder.with_single_cert(chain, key).map_err(|error| TlsError::Rustls { path: cert_file.to_path_buf(), error })
    }
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
