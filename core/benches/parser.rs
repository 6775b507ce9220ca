//! Protocol parser micro-benchmarks: bytes/s and ops/s of `Parser<ClientRole>` on a
//! realistic client stream fed in socket-sized chunks.
//!
//! `cargo bench -p edgebus-core --bench parser`

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edgebus_core::proto::{write_pub, ClientOpParser, Limits};

/// What a busy client connection sends: mostly small PUBs on a handful of subjects, some with
/// reply inboxes, HPUBs with a JetStream-style header block, the occasional 1 KiB and 4 KiB
/// message and a PING now and then. Returns the bytes and the number of operations.
fn mixed_stream(ops: usize) -> (Vec<u8>, usize) {
    let mut out = BytesMut::new();
    let small = [b'x'; 16];
    let medium = [b'm'; 128];
    let large = [b'l'; 1024];
    let huge = [b'h'; 4096];
    for i in 0..ops {
        let subject = format!("orders.eu.{}.created", i % 64);
        match i % 50 {
            0 => out.extend_from_slice(b"PING\r\n"),
            1..=9 => {
                let reply = format!("_INBOX.Dx9kQ2mUqJ8yRLw1ZpTn3B.{i}");
                write_pub(&mut out, subject.as_bytes(), Some(reply.as_bytes()), None, &medium);
            }
            10..=19 => {
                let headers = format!("NATS/1.0\r\nNats-Msg-Id: msg-{i}\r\nNats-Expected-Stream: ORDERS\r\n\r\n");
                let mut message = headers.clone().into_bytes();
                message.extend_from_slice(&medium);
                write_pub(&mut out, subject.as_bytes(), None, Some(headers.len()), &message);
            }
            20 => write_pub(&mut out, subject.as_bytes(), None, None, &large),
            21 => write_pub(&mut out, subject.as_bytes(), None, None, &huge),
            _ => write_pub(&mut out, subject.as_bytes(), None, None, &small),
        }
    }
    (out.to_vec(), ops)
}

/// 16-byte PUBs only: the per-operation overhead.
fn small_stream(ops: usize) -> (Vec<u8>, usize) {
    let mut out = BytesMut::new();
    for _ in 0..ops {
        write_pub(&mut out, b"bench.pub.16", None, None, &[b'x'; 16]);
    }
    (out.to_vec(), ops)
}

/// Feeds `data` in `chunk`-byte reads (like a socket) and parses every operation.
fn parse_all(data: &[u8], chunk: usize) -> usize {
    let mut parser = ClientOpParser::new(Limits::default());
    let mut n = 0;
    for piece in data.chunks(chunk) {
        parser.extend(piece);
        while let Some(op) = parser.poll_op().expect("valid stream") {
            black_box(&op);
            n += 1;
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("parser");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    // Bytes per second on the mixed stream, operations per second on the small one.
    let (mixed, ops) = mixed_stream(20_000);
    assert_eq!(parse_all(&mixed, 64 * 1024), ops);
    g.throughput(Throughput::Bytes(mixed.len() as u64));
    g.bench_function("mixed_pub_hpub", |b| b.iter(|| parse_all(black_box(&mixed), 64 * 1024)));
    let (small, ops) = small_stream(50_000);
    assert_eq!(parse_all(&small, 64 * 1024), ops);
    g.throughput(Throughput::Elements(ops as u64));
    g.bench_function("pub_16b", |b| b.iter(|| parse_all(black_box(&small), 64 * 1024)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
