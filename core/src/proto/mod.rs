//! The NATS client protocol: an incremental parser for both directions (and the leaf
//! port's), the encoders, the JSON bodies of `INFO` / `CONNECT`, header blocks and the `-ERR`
//! catalogue.
//!
//! Parsing is zero-copy: subjects, sids and payloads come out as `Bytes` slices of the read
//! buffer. Bytes go in through [`Parser::buffer_mut`] in whatever pieces the transport hands
//! over (a TCP read, a WebSocket frame); any split of the stream parses the same.

mod encode;
mod error;
mod headers;
mod json;
mod leaf;
mod parse;
mod verb;

pub use encode::*;
pub use error::ProtocolError;
pub use headers::{fields, header_value, Fields, HeaderError, Headers, MSG_ID};
pub use json::{too_deep, ConnectOptions, ServerInfo};
pub use leaf::{LeafMsg, LeafOp, LeafRole};
#[doc(hidden)]
pub use parse::{Args, Line, Refusal};
pub use parse::{ClientOp, ClientRole, Limits, Message, ParseError, Parser, PubSpan, Publish, ServerOp, ServerRole};
#[doc(hidden)]
pub use verb::{Shape, Verbs};

/// Where every JetStream ack subject starts: the reply subject of each message a consumer
/// delivers. Here rather than in `jetstream` because hosts built without the engine (the
/// page's tab link) recognise consumer deliveries by it.
pub const ACK_PREFIX: &[u8] = b"$JS.ACK.";

/// The client-facing parser a server runs on each connection.
pub type ClientOpParser = Parser<ClientRole>;
/// The parser a client (or a bridge to an upstream server) runs on what a server sends.
pub type ServerOpParser = Parser<ServerRole>;
/// The parser of a leaf-node connection, in either role (the leaf port speaks one language
/// both ways).
pub type LeafOpParser = Parser<LeafRole>;
