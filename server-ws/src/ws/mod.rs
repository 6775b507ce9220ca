//! WebSocket as nats-server speaks it: the HTTP upgrade with its checks and answers
//! ([`upgrade`], [`http`], [`origin`]), a leaf remote's upgrade ([`dial`]), the framing ([`frame`])
//! and permessage-deflate ([`deflate`]). Each part is sans-IO except
//! the upgrade's read/write loop; [`crate::transport`] does the socket work.

pub mod deflate;
pub mod dial;
pub mod frame;
pub mod http;
pub mod origin;
pub mod upgrade;
