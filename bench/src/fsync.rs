//! JetStream publish with `sync_interval: always` (issue 16): every acknowledged message is
//! on disk before its ack, the setting people choose for data they cannot lose.

use async_nats::jetstream::stream;

use crate::scenarios::{js_publish_counts, Samples, Sizes};
use crate::server::Server;
use crate::Res;

/// nats-server 2.14 reads `sync_interval: always` in the `jetstream` block; the store dir
/// comes from the command line (`-sd`), which overrides the block.
const SYNC_ALWAYS: &str = "jetstream { sync_interval: always }\n";

/// File-stream publish, sequential and 256 acks in flight, on a fresh server of `server`'s
/// kind that fsyncs before every ack.
pub(crate) async fn sync_always(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let durable = Server::start_with(server.kind, &server.bin, Some(SYNC_ALWAYS))?;
    let (seq, par) =
        js_publish_counts(&durable.url, stream::StorageType::File, round, sz.sync_seq, sz.sync_par).await?;
    out.extend([("js_always_seq", seq), ("js_always_256", par)]);
    Ok(())
}
