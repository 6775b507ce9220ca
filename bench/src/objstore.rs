//! Object store put and get of one large object (issue 16): 10 MiB written through the
//! object-store API (chunked into a JetStream stream) and read back, on both servers; what
//! comes back must be byte for byte what went in.

use std::time::Instant;

use async_nats::jetstream::{self, object_store, stream};
use tokio::io::AsyncReadExt;

use crate::scenarios::{connect, Samples, Sizes};
use crate::Res;

/// Objects written (and read) per round: one 10 MiB transfer takes about 0.1 s, so a few
/// make the sample less of a coin toss.
const OBJECTS: usize = 3;

/// Bytes that do not compress or repeat (a SplitMix64 stream), so neither server can take a
/// shortcut on them.
fn contents(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Put then get rates in MiB/s over [`OBJECTS`] objects of `sz.obj_bytes` each.
pub(crate) async fn put_get(url: &str, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let js = jetstream::new(connect(url).await?);
    let bucket = format!("BENCH_OBJ_{round}");
    let _ = js.delete_object_store(&bucket).await;
    let store = js
        .create_object_store(object_store::Config {
            bucket: bucket.clone(),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let len = sz.obj_bytes as usize;
    let data: Vec<Vec<u8>> = (0..OBJECTS).map(|i| contents(len, (round * OBJECTS + i) as u64)).collect();
    let start = Instant::now();
    for (i, d) in data.iter().enumerate() {
        let info = store.put(format!("object-{i}").as_str(), &mut d.as_slice()).await?;
        if info.size != len {
            return Err(format!("object store: integrity: object {i} stored as {} bytes of {len}", info.size).into());
        }
    }
    let put_secs = start.elapsed().as_secs_f64();
    let mut back = Vec::with_capacity(len);
    let start = Instant::now();
    for (i, d) in data.iter().enumerate() {
        back.clear();
        store.get(format!("object-{i}")).await?.read_to_end(&mut back).await?;
        if back != *d {
            return Err(format!("object store: integrity: object {i} read back differs ({} bytes)", back.len()).into());
        }
    }
    let get_secs = start.elapsed().as_secs_f64();
    js.delete_object_store(&bucket).await?;
    let mib = (OBJECTS * len) as f64 / (1024.0 * 1024.0);
    out.extend([("obj_put", mib / put_secs), ("obj_get", mib / get_secs)]);
    Ok(())
}
