//! File-store recovery from damaged files: a store written through the engine (a stream with
//! messages, deletes and a consumer with acks) is copied, its files are damaged as the input
//! says (bytes overwritten, cut short, replaced, extended, removed), and the engine recovers
//! from the copy and serves requests. Nothing may panic.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use edgebus_core::jetstream::store::MemStorage;
use edgebus_core::jetstream::JetStream;
use edgebus_server::filestore::{FileStorage, FileStoreConfig};

const T0: u64 = 1_800_000_000_000_000_000;

fn temp(tag: &str) -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let dir = std::env::temp_dir().join(format!("edgebus-fuzz-fs-{tag}-{}-{thread}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::create_dir_all(&dir);
    dir
}

fn files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if let Ok(b) = fs::read(&p) {
            out.push((p, b));
        }
    }
}

/// The pristine store, written once: relative paths and contents.
fn pristine() -> &'static Vec<(PathBuf, Vec<u8>)> {
    static FILES: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = temp("pristine");
        if let Ok(storage) = FileStorage::new(&dir, FileStoreConfig { segment_size: 512, ..FileStoreConfig::default() })
        {
            let (mut js, _) = JetStream::new(Box::new(storage), Box::new(MemStorage), T0, 1);
            let yes = |_: &[u8]| true;
            let r = Some(&b"_INBOX.r"[..]);
            js.handle_msg(
                T0,
                b"$JS.API.STREAM.CREATE.S",
                r,
                None,
                br#"{"name":"S","subjects":["s.>"],"storage":"file"}"#,
                &yes,
            );
            js.handle_msg(
                T0,
                b"$JS.API.CONSUMER.CREATE.S.C",
                r,
                None,
                br#"{"stream_name":"S","config":{"durable_name":"C","ack_policy":"explicit"}}"#,
                &yes,
            );
            for i in 0..40u32 {
                let hdr = b"NATS/1.0\r\nNats-Msg-Id: x\r\n\r\n";
                js.handle_msg(
                    T0 + u64::from(i),
                    format!("s.{}", i % 5).as_bytes(),
                    r,
                    (i % 3 == 0).then_some(&hdr[..]),
                    format!("payload {i}").as_bytes(),
                    &yes,
                );
            }
            js.handle_msg(T0, b"$JS.API.STREAM.MSG.DELETE.S", r, None, br#"{"seq":7}"#, &yes);
            js.handle_msg(T0, b"$JS.API.CONSUMER.MSG.NEXT.S.C", Some(b"_INBOX.n"), None, br#"{"batch":5}"#, &yes);
            js.handle_msg(T0, b"$JS.ACK.S.C.1.1.1.0.0", None, None, b"", &yes);
            js.take_outbound();
        }
        let mut out = Vec::new();
        files(&dir, &mut out);
        let out =
            out.into_iter().filter_map(|(p, b)| p.strip_prefix(&dir).ok().map(|r| (r.to_path_buf(), b))).collect();
        let _ = fs::remove_dir_all(&dir);
        out
    })
}

fn damage(u: &mut Unstructured<'_>, mut b: Vec<u8>) -> Result<Option<Vec<u8>>> {
    Ok(Some(match u.int_in_range(0..=5)? {
        0 => return Ok(None),
        1 => {
            let cut = u.int_in_range(0..=b.len())?;
            b.truncate(cut);
            b
        }
        2 => u.arbitrary()?,
        3 => {
            b.extend_from_slice(&u.arbitrary::<Vec<u8>>()?);
            b
        }
        _ => {
            for _ in 0..u.int_in_range(1..=8)? {
                if b.is_empty() {
                    break;
                }
                let at = u.int_in_range(0..=b.len() - 1)?;
                b[at] = u.arbitrary()?;
            }
            b
        }
    }))
}

pub(super) fn run(data: &[u8]) {
    let files = pristine();
    if files.is_empty() {
        return;
    }
    let mut u = Unstructured::new(data);
    let dir = temp("case");
    let mut damaged = Vec::new();
    for (rel, content) in files {
        let pick = u.ratio(1, 3).unwrap_or(false);
        let content =
            if pick { damage(&mut u, content.clone()).unwrap_or(Some(content.clone())) } else { Some(content.clone()) };
        damaged.push((rel, content));
    }
    for (rel, content) in &damaged {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        if let Some(c) = content {
            let _ = fs::write(&path, c);
        }
    }
    if let Ok(storage) = FileStorage::new(&dir, FileStoreConfig::default()) {
        let (mut js, _) = JetStream::new(Box::new(storage), Box::new(MemStorage), T0 + 1_000_000_000, 2);
        let yes = |_: &[u8]| true;
        let r = Some(&b"_INBOX.r"[..]);
        js.handle_msg(T0, b"$JS.API.STREAM.INFO.S", r, None, b"", &yes);
        for seq in 0..45u32 {
            js.handle_msg(T0, b"$JS.API.STREAM.MSG.GET.S", r, None, format!("{{\"seq\":{seq}}}").as_bytes(), &yes);
        }
        js.handle_msg(T0, b"$JS.API.CONSUMER.MSG.NEXT.S.C", Some(b"_INBOX.n"), None, br#"{"batch":50}"#, &yes);
        js.handle_msg(T0, b"s.new", r, None, b"after recovery", &yes);
        js.handle_msg(T0, b"$JS.API.STREAM.PURGE.S", r, None, br#"{"keep":3}"#, &yes);
        js.take_outbound();
    }
    let _ = fs::remove_dir_all(&dir);
}
