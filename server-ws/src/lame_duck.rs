//! Lame duck mode: how a server leaves a cluster without making every client reconnect at
//! once. On `SIGUSR2` (or `--signal ldm`) the server stops accepting clients, tells every
//! connected client in an `INFO` with `ldm: true` (clients pick another server, or call the
//! application's lame-duck callback), waits `lame_duck_grace_period` so that several servers
//! put in lame duck mode together do not trade clients, then closes its clients one by one,
//! spread over the rest of `lame_duck_duration`, and exits — as nats-server does.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use edgebus_core::proto::write_info;
use tracing::info;

use crate::client::Client;
use crate::server::Shared;

/// How closing `clients` is spread: the pause between closes, and how many are closed per
/// pause. The closes take what is left of `duration` after `grace` (at least one second),
/// a pause of at most a second each (no point spreading ten clients over two minutes); with
/// more clients than nanoseconds to spare they go in batches, as nats-server does.
pub fn spacing(clients: usize, duration: Duration, grace: Duration) -> (Duration, usize) {
    let span = duration.saturating_sub(grace);
    let span = if span.is_zero() { Duration::from_secs(1) } else { span };
    let n = clients.max(1) as u128;
    let per = span.as_nanos() / n;
    if per < 1 {
        let batch = usize::try_from(n / span.as_nanos().max(1)).unwrap_or(usize::MAX).max(1);
        return (Duration::from_nanos(1), batch);
    }
    (Duration::from_nanos(u64::try_from(per).unwrap_or(u64::MAX)).min(Duration::from_secs(1)), 1)
}

/// The pause before the next close: random in `[pause/2, pause)`, so that the clients of
/// several servers in lame duck mode do not reconnect in lock step.
fn jittered(pause: Duration) -> Duration {
    let nanos = u64::try_from(pause.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(fastrand::u64(..nanos).max(nanos / 2))
}

/// Tells every client that takes asynchronous `INFO`s that the server is in lame duck mode.
fn announce(shared: &Shared, clients: &[Arc<Client>]) {
    for c in clients.iter().filter(|c| c.info_updates.load(Ordering::Acquire)) {
        let mut info = shared.info(c.kind, c.id, c.addr.ip().to_string());
        info.ldm = true;
        let mut line = BytesMut::new();
        write_info(&mut line, &info.to_json());
        c.push(&line);
    }
}

/// Runs lame duck mode once the listeners are closed: announces it, waits the grace period,
/// then closes the clients connected now, spread over the lame duck duration. Returns when
/// the last one is closed; the caller then shuts the server down.
pub async fn drain(shared: &Shared) {
    let clients: Vec<Arc<Client>> = shared.clients.lock().values().cloned().collect();
    if clients.is_empty() {
        return;
    }
    let (pause, batch) = spacing(clients.len(), shared.opts.lame_duck_duration, shared.opts.lame_duck_grace_period);
    announce(shared, &clients);
    tokio::time::sleep(shared.opts.lame_duck_grace_period).await;
    info!("Closing existing clients");
    for (i, c) in clients.iter().enumerate() {
        c.close(None);
        if i + 1 == clients.len() {
            break;
        }
        if batch == 1 || i % batch == 0 {
            tokio::time::sleep(jittered(pause)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_spreads_closes_over_what_the_grace_period_leaves() {
        let s = Duration::from_secs;
        // 100 clients over 120 s - 10 s: 1.1 s each, capped at a second
        assert_eq!(spacing(100, s(120), s(10)), (s(1), 1));
        // 1,000 clients over 110 s: 110 ms apart
        assert_eq!(spacing(1000, s(120), s(10)), (Duration::from_millis(110), 1));
        // a grace period as long as the duration still leaves a second
        assert_eq!(spacing(4, s(30), s(30)), (Duration::from_millis(250), 1));
        // more clients than nanoseconds: batches
        let (pause, batch) = spacing(3_000_000_000, s(2), s(1));
        assert_eq!((pause, batch), (Duration::from_nanos(1), 3));
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_pause() {
        for _ in 0..1000 {
            let j = jittered(Duration::from_millis(100));
            assert!(j >= Duration::from_millis(50) && j < Duration::from_millis(100), "{j:?}");
        }
        assert_eq!(jittered(Duration::from_nanos(1)), Duration::ZERO);
    }
}
