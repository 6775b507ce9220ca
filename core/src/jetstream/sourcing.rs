//! What a stream on another server asks of this one when it mirrors or sources one of our
//! streams (`mirror { external { api: "$JS.edge.API" } }` in a cluster above a leaf).
//!
//! nats-server creates the consumer through the API, as any client would: a push consumer
//! marked `direct` (flow control, idle heartbeats, ack policy none, a short inactive
//! threshold), re-created from its last sequence after a gap. Since 2.14 (API level 4) it
//! marks the request `sourcing: true` too, under a name stable for the mirror or source
//! (`JS_MIRROR_<hash>`), with `Nats-Required-Api-Level: 4`; a server below that level
//! answers `10185` and is asked again without it. The origin then "upgrades" the consumer as
//! nats-server's `jsConsumerCreateRequest` does ([`upgrade`]): on a limits stream it stays an
//! ephemeral `direct` consumer under the name plus a random suffix (the stable name may be
//! asked for again while the old one lingers); on an interest or work-queue stream it
//! becomes a durable under the stable name that acks by flow control (`ack_policy:
//! flow_control`), so what the mirror or source has stored is acknowledged here and a work
//! queue is drained by what sources it. Deliveries carry the `$JS.ACK` reply with stream and
//! delivery sequences even under ack policy none: that reply is how the mirror detects a gap.

use alloc::format;

use super::config::{AckPolicy, ConsumerConfig, Retention};
use super::consumer::Consumer;
use super::errors::ApiError;
use crate::proto::header_value;

/// The heartbeat a consumer acking by flow control must have (nats-server's
/// `sourceHealthHB`): the mirror's health check counts on it.
const FC_ACK_HEARTBEAT: i64 = 1_000_000_000;

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

/// A sourcing request's consumer as the origin makes it (see the module doc): on an
/// interest or work-queue stream a durable acking by flow control, else the `direct`
/// consumer under the asked name plus `suffix`.
pub(super) fn upgrade(config: &mut ConsumerConfig, retention: Retention, suffix: &str) {
    let Some(name) = config.name.clone().filter(|n| config.direct && config.sourcing && !n.is_empty()) else {
        return;
    };
    if retention == Retention::Limits {
        config.name = Some(format!("{name}-{suffix}"));
        return;
    }
    config.direct = false;
    config.durable_name = Some(name);
    config.ack_policy = AckPolicy::FlowControl;
    config.ack_wait = 0;
    config.max_deliver = 0;
    config.inactive_threshold = 0;
}

/// What a durable sourcing consumer asked for again keeps of the one it finds: where it
/// started (the request names where the mirror is now, the consumer knows better).
pub(super) fn keep_start(config: &mut ConsumerConfig, existing: &ConsumerConfig) {
    if config.sourcing && config.is_durable() {
        config.deliver_policy = existing.deliver_policy;
        config.opt_start_seq = existing.opt_start_seq;
        config.opt_start_time = existing.opt_start_time.clone();
    }
}

/// nats-server's defaults for ack policy `flow_control` (not pedantic): flow control on and
/// the one heartbeat it allows.
pub(super) fn flow_control_ack_defaults(config: &mut ConsumerConfig) {
    if config.ack_policy == AckPolicy::FlowControl {
        config.flow_control = true;
        config.idle_heartbeat = FC_ACK_HEARTBEAT;
    }
}

/// nats-server's checks on ack policy `flow_control` (`checkConsumerCfg`), after defaults.
pub(super) fn check_flow_control_acks(config: &ConsumerConfig) -> Result<(), ApiError> {
    if config.ack_policy != AckPolicy::FlowControl {
        return Ok(());
    }
    if !config.is_push() {
        return Err(ApiError::ACK_FC_REQUIRES_PUSH);
    }
    if !config.flow_control {
        return Err(ApiError::ACK_FC_REQUIRES_FC);
    }
    if config.idle_heartbeat != FC_ACK_HEARTBEAT {
        return Err(ApiError::stream_config("flow control ack policy heartbeat needs to be 1s"));
    }
    if config.max_ack_pending <= 0 {
        return Err(ApiError::ACK_FC_REQUIRES_MAX_ACK_PENDING);
    }
    if config.ack_wait != 0 || !config.backoff.is_empty() {
        return Err(ApiError::ACK_FC_REQUIRES_NO_ACK_WAIT);
    }
    if config.max_deliver > 0 {
        return Err(ApiError::ACK_FC_REQUIRES_NO_MAX_DELIVER);
    }
    Ok(())
}

/// The rules for `direct` consumers, checked before the consumer's config is normalised (as
/// nats-server's `checkConsumerCfg` does).
pub(super) fn check_config(config: &ConsumerConfig) -> Result<(), ApiError> {
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

/// Whether a consumer counts against a stream's consumer rules (the work-queue overlap
/// checks): a mirror's or source's does not (nats-server's `numLimitableConsumers`).
pub(super) fn limitable(config: &ConsumerConfig) -> bool {
    !config.direct && !config.sourcing
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
    fn direct_needs_an_ephemeral_push_consumer() {
        let direct = ConsumerConfig { direct: true, ..push() };
        assert_eq!(check_config(&direct), Ok(()));
        let pull = ConsumerConfig { direct: true, ..Default::default() };
        assert_eq!(check_config(&pull), Err(ApiError::DIRECT_REQUIRES_PUSH));
        let durable = ConsumerConfig { durable_name: Some("d".to_string()), ..direct.clone() };
        assert_eq!(check_config(&durable), Err(ApiError::DIRECT_REQUIRES_EPHEMERAL));
        let sourcing = ConsumerConfig { sourcing: true, ..direct };
        assert_eq!(check_config(&sourcing), Ok(()));
    }

    #[test]
    fn a_sourcing_consumer_is_durable_on_a_work_queue_and_renamed_on_a_limits_stream() {
        let asked = ConsumerConfig {
            name: Some("JS_SRC_x".to_string()),
            direct: true,
            sourcing: true,
            ack_wait: 5,
            max_deliver: 1,
            inactive_threshold: 9,
            ..push()
        };
        let mut limits = asked.clone();
        upgrade(&mut limits, Retention::Limits, "abc");
        assert_eq!(limits.name.as_deref(), Some("JS_SRC_x-abc"));
        assert!(limits.direct && limits.durable_name.is_none());
        let mut wq = asked.clone();
        upgrade(&mut wq, Retention::Workqueue, "abc");
        assert_eq!((wq.name.as_deref(), wq.durable_name.as_deref()), (Some("JS_SRC_x"), Some("JS_SRC_x")));
        assert_eq!((wq.direct, wq.ack_policy, wq.ack_wait, wq.max_deliver), (false, AckPolicy::FlowControl, 0, 0));
        let mut plain = ConsumerConfig { sourcing: false, ..asked };
        upgrade(&mut plain, Retention::Interest, "abc");
        assert_eq!(plain.ack_policy, AckPolicy::None);
    }

    #[test]
    fn flow_control_acks_need_a_push_consumer_without_ack_wait() {
        let mut c = ConsumerConfig { ack_policy: AckPolicy::FlowControl, max_ack_pending: 10, ..push() };
        flow_control_ack_defaults(&mut c);
        assert_eq!(check_flow_control_acks(&c), Ok(()));
        let pull = ConsumerConfig { deliver_subject: None, ..c.clone() };
        assert_eq!(check_flow_control_acks(&pull), Err(ApiError::ACK_FC_REQUIRES_PUSH));
        let wait = ConsumerConfig { ack_wait: 1, ..c.clone() };
        assert_eq!(check_flow_control_acks(&wait), Err(ApiError::ACK_FC_REQUIRES_NO_ACK_WAIT));
        let md = ConsumerConfig { max_deliver: 3, ..c };
        assert_eq!(check_flow_control_acks(&md), Err(ApiError::ACK_FC_REQUIRES_NO_MAX_DELIVER));
    }
}
