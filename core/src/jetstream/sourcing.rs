//! What a stream on another server asks of this one when it mirrors or sources one of our
//! streams (`mirror { external { api: "$JS.edge.API" } }` in a cluster above a leaf).
//!
//! nats-server creates the consumer through the API, as any client would: an ephemeral push
//! consumer marked `direct` (flow control, idle heartbeats, ack policy none, a short inactive
//! threshold), re-created from its last sequence after a gap. nats-server 2.14 first asks
//! for a durable "sourcing" consumer (`sourcing: true`, with `Nats-Required-Api-Level: 4`)
//! that it can reset later and that acks by flow control; edgebus does not serve those, so it
//! answers as a server below that level does (`10185`), which is nats-server's cue to fall
//! back to the `direct` consumer. Deliveries carry the `$JS.ACK` reply with stream and
//! delivery sequences even under ack policy none: that reply is how the mirror detects a gap.

use super::config::ConsumerConfig;
use super::consumer::Consumer;
use super::errors::ApiError;
use crate::proto::header_value;

/// The API level edgebus reports (`$JS.API.INFO` `api.level`, `_nats.level`).
pub(super) const API_LEVEL: u32 = 4;

/// Header by which a request names the least API level it needs (nats-server's
/// `JSRequiredApiLevel`).
const REQUIRED_API_LEVEL: &[u8] = b"Nats-Required-Api-Level";

/// The required-level check for the requests that create consumers (the ones nats-server
/// sends it with).
pub(super) fn check_request(toks: &[&str], headers: Option<&[u8]>) -> Result<(), ApiError> {
    match toks {
        ["CONSUMER", "CREATE", ..] | ["CONSUMER", "DURABLE", "CREATE", ..] => check_required_level(headers),
        _ => Ok(()),
    }
}

/// `Err` when the request's headers ask for a level above ours, or for one that is not a
/// number (nats-server's `errorOnRequiredApiLevel`).
pub(super) fn check_required_level(headers: Option<&[u8]>) -> Result<(), ApiError> {
    let Some(value) = headers.and_then(|h| header_value(h, REQUIRED_API_LEVEL)) else { return Ok(()) };
    if value.is_empty() {
        return Ok(());
    }
    match core::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<u32>().ok()) {
        Some(level) if level <= API_LEVEL => Ok(()),
        _ => Err(ApiError::REQUIRED_API_LEVEL),
    }
}

/// The rules for `direct` and `sourcing` consumers, checked before the consumer's config is
/// normalised (as nats-server's `checkConsumerCfg` does).
pub(super) fn check_config(config: &ConsumerConfig) -> Result<(), ApiError> {
    if config.sourcing {
        // durable sourcing (consumer reset, flow-control acks) is not served here
        return Err(ApiError::REQUIRED_API_LEVEL);
    }
    if config.direct {
        if !config.is_push() {
            return Err(ApiError::DIRECT_REQUIRES_PUSH);
        }
        if config.is_durable() {
            return Err(ApiError::DIRECT_REQUIRES_EPHEMERAL);
        }
    }
    Ok(())
}

/// Whether a consumer shows in `CONSUMER.NAMES` / `CONSUMER.LIST`: a `direct` one belongs to
/// another server's mirror or source and is left out, as nats-server's `getPublicConsumers`
/// leaves it out.
pub(super) fn listed(c: &Consumer) -> bool {
    !c.config().direct
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn push() -> ConsumerConfig {
        ConsumerConfig { deliver_subject: Some("d.x".to_string()), ..Default::default() }
    }

    #[test]
    fn required_level_header() {
        assert_eq!(check_required_level(None), Ok(()));
        assert_eq!(check_required_level(Some(b"NATS/1.0\r\nNats-Required-Api-Level: 4\r\n\r\n")), Ok(()));
        assert_eq!(check_required_level(Some(b"NATS/1.0\r\nOther: 9\r\n\r\n")), Ok(()));
        for bad in ["5", "x", "-1"] {
            let h = alloc::format!("NATS/1.0\r\nNats-Required-Api-Level: {bad}\r\n\r\n");
            assert_eq!(check_required_level(Some(h.as_bytes())), Err(ApiError::REQUIRED_API_LEVEL), "{bad}");
        }
    }

    #[test]
    fn direct_needs_an_ephemeral_push_consumer_and_sourcing_is_declined() {
        let direct = ConsumerConfig { direct: true, ..push() };
        assert_eq!(check_config(&direct), Ok(()));
        let pull = ConsumerConfig { direct: true, ..Default::default() };
        assert_eq!(check_config(&pull), Err(ApiError::DIRECT_REQUIRES_PUSH));
        let durable = ConsumerConfig { durable_name: Some("d".to_string()), ..direct.clone() };
        assert_eq!(check_config(&durable), Err(ApiError::DIRECT_REQUIRES_EPHEMERAL));
        let sourcing = ConsumerConfig { sourcing: true, ..direct };
        assert_eq!(check_config(&sourcing), Err(ApiError::REQUIRED_API_LEVEL));
    }
}
