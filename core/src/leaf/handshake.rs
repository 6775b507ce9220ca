//! The leaf port's handshake: the `INFO` and `CONNECT` bodies, what an accepting side
//! refuses in a `CONNECT`, and the soliciting side's steps.
//!
//! We never negotiate S2 compression: the accepting side announces `"compression":"off"`,
//! and the soliciting side sends no `INFO` of its own and a `CONNECT` without
//! `compress_mode`, which a nats-server hub answers in plain text (section 14.2).

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The `INFO` of a leaf port. Unknown fields of a peer's are ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LeafInfo {
    #[serde(default)]
    pub server_id: String,
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub proto: i32,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub headers: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(default)]
    pub max_payload: i64,
    #[serde(default)]
    pub client_id: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub info_on_connect: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub connect_info: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    /// The hub's leaf URLs (`host:port`), gossiped so a spoke can fail over; a soliciting
    /// server treats an `INFO` without them (`null`) as coming from the wrong port.
    #[serde(default)]
    pub leafnode_urls: Option<Vec<String>>,
    /// The connect-info `INFO`'s permissions of the user the leaf authenticated as: what it
    /// may receive (`import`) and send (`export`), for the soliciting side to enforce too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<crate::leaf::SubjectPermission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<crate::leaf::SubjectPermission>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The leaf `CONNECT` (`leafConnectInfo`). A `lang` field marks a client that dialled the
/// leaf port by mistake.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LeafConnect {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default)]
    pub headers: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// A user's public nkey; [`LeafConnect::sig`] signs the nonce with its seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// The user JWT of a `.creds` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// The hub's `INFO` nonce signed with the user's nkey (base64url), set per connection
    /// with [`Solicitor::sign`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_hub: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub protocol: i32,
    #[serde(default, skip_serializing)]
    pub lang: Option<String>,
    #[serde(default, skip_serializing)]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing)]
    pub compress_mode: Option<String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Why a leaf handshake fails; the `-ERR` text of each is nats-server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectRefusal {
    /// A `CONNECT` that does not parse.
    BadJson,
    /// A client (its `CONNECT` has `lang`) on the leaf port.
    ClientOnLeafPort,
    /// A gateway on the leaf port.
    GatewayOnLeafPort,
    /// The soliciting side has our cluster name.
    SameCluster,
    /// The peer's `INFO` is not a leaf port's (no `client_id` or no `leafnode_urls`).
    WrongPort,
    /// The peer asked for S2 compression, which we never speak.
    Compression,
}

impl ConnectRefusal {
    pub fn text(&self) -> &'static str {
        match self {
            ConnectRefusal::BadJson => "Invalid Leafnode CONNECT",
            ConnectRefusal::ClientOnLeafPort => "Attempted To Connect To Leafnode Port",
            ConnectRefusal::GatewayOnLeafPort => "Attempted To Connect To Leafnode Port With Gateway",
            ConnectRefusal::SameCluster => "remote leafnode has same cluster name",
            ConnectRefusal::WrongPort => "Attempted To Connect To Wrong Port (not a leafnode port)",
            ConnectRefusal::Compression => "Leafnode compression is not supported",
        }
    }
}

/// The accepting side's checks of a leaf `CONNECT`, before credentials (which the host's
/// authenticator checks). `our_cluster` is our cluster name, if we have one.
pub fn check_connect(json: &[u8], our_cluster: Option<&str>) -> Result<LeafConnect, ConnectRefusal> {
    let c: LeafConnect = serde_json::from_slice(json).map_err(|_| ConnectRefusal::BadJson)?;
    if c.lang.as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(ConnectRefusal::ClientOnLeafPort);
    }
    if c.gateway.as_deref().is_some_and(|g| !g.is_empty()) {
        return Err(ConnectRefusal::GatewayOnLeafPort);
    }
    if our_cluster.is_some_and(|ours| !c.cluster.is_empty() && c.cluster == ours) {
        return Err(ConnectRefusal::SameCluster);
    }
    if c.compress_mode.as_deref().is_some_and(|m| m.starts_with("s2")) {
        return Err(ConnectRefusal::Compression);
    }
    Ok(c)
}

/// Whether a dialled link upgrades to TLS after the hub's plaintext `INFO`: when we asked
/// for TLS (`tls { … }` on the remote, a `tls://` URL) or the hub requires it, as
/// nats-server decides.
pub fn needs_tls(hub: &LeafInfo, asked: bool) -> bool {
    asked || hub.tls_required
}

/// What the soliciting side does after an `INFO`.
#[derive(Debug, Clone, PartialEq)]
pub enum SolicitStep {
    /// Send this `CONNECT` body; `ready` when the hub will send no connect-info `INFO`
    /// (then send our interest at once).
    Connect { json: Vec<u8>, ready: bool },
    /// The connect-info `INFO` arrived: send our interest now.
    Ready,
    /// A later `INFO` (new gossip); nothing to send.
    Update,
}

/// The soliciting side's handshake: `INFO` → `CONNECT` → (with `info_on_connect`) the
/// second `INFO` → ready.
#[derive(Debug, Clone)]
pub struct Solicitor {
    connect: LeafConnect,
    state: SolicitState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SolicitState {
    AwaitInfo,
    AwaitConnectInfo,
    Ready,
}

impl Solicitor {
    /// `connect` is what to send (credentials, names); `lang` is never sent.
    pub fn new(connect: LeafConnect) -> Self {
        Solicitor { connect, state: SolicitState::AwaitInfo }
    }

    pub fn is_ready(&self) -> bool {
        self.state == SolicitState::Ready
    }

    /// With a user JWT in the `CONNECT`: the signature of this connection's nonce, made
    /// by the host (which holds the seed) before it hands the hub's `INFO` to
    /// [`Solicitor::on_info`].
    pub fn sign(&mut self, sig: String) {
        self.connect.sig = Some(sig);
    }

    /// Whether the `CONNECT` carries a user JWT or an nkey, so the nonce must be signed.
    pub fn needs_signature(&self) -> bool {
        self.connect.jwt.is_some() || self.connect.nkey.is_some()
    }

    /// Whether the hub still owes its first `INFO` or the connect-info one; the host gives up
    /// on a hub that does not send it within nats-server's 2 s ("Stale Leaf Node Connection").
    pub fn is_waiting(&self) -> bool {
        self.state != SolicitState::Ready
    }

    pub fn on_info(&mut self, info: &LeafInfo) -> Result<SolicitStep, ConnectRefusal> {
        match self.state {
            SolicitState::AwaitInfo => {
                if info.client_id == 0 || info.leafnode_urls.is_none() {
                    return Err(ConnectRefusal::WrongPort);
                }
                let json = serde_json::to_vec(&self.connect).map_err(|_| ConnectRefusal::BadJson)?;
                let ready = !info.info_on_connect;
                self.state = if ready { SolicitState::Ready } else { SolicitState::AwaitConnectInfo };
                Ok(SolicitStep::Connect { json, ready })
            }
            SolicitState::AwaitConnectInfo if info.connect_info => {
                self.state = SolicitState::Ready;
                Ok(SolicitStep::Ready)
            }
            _ => Ok(SolicitStep::Update),
        }
    }
}
