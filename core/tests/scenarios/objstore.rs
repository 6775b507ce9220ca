//! Object stores (the core's `objstore`) on the engine: chunked put and get, overwrite,
//! delete.

use edgebus_core::objstore::{ObjError, ObjectStore, StoreConfig};

use crate::sim::Sim;

/// `n` bytes that differ from chunk to chunk, so a misplaced chunk changes the digest.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).wrapping_add((i >> 12) as u8)).collect()
}

fn read_all(sim: &mut Sim, store: &ObjectStore, name: &str) -> Result<Vec<u8>, ObjError> {
    sim.with_engine(|js, _, _| {
        let mut d = store.get(js, name)?;
        let mut out = Vec::new();
        while let Some(chunk) = d.next_chunk(js) {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    })
}

#[test]
fn objects_go_in_and_come_out_in_chunks() {
    let mut sim = Sim::new();
    let store = sim.with_engine(|js, now, _| ObjectStore::create_store(js, now, &StoreConfig::new("files"))).unwrap();
    let big = pattern(300 * 1024, 1);
    let info = sim.with_engine(|js, now, interest| store.put(js, now, "big.bin", "N1", &big, &interest)).unwrap();
    assert_eq!(info.size, big.len() as u64);
    assert!(info.chunks >= 2, "a 300 KiB object spans chunks: {}", info.chunks);
    assert!(info.digest.starts_with("SHA-256="), "{}", info.digest);
    assert_eq!(read_all(&mut sim, &store, "big.bin").unwrap(), big);

    // Overwriting replaces the object and purges the old chunks.
    let small = pattern(1000, 2);
    let info = sim.with_engine(|js, now, interest| store.put(js, now, "big.bin", "N2", &small, &interest)).unwrap();
    assert_eq!(info.chunks, 1);
    assert_eq!(read_all(&mut sim, &store, "big.bin").unwrap(), small);
    let state = sim.host.engine().stream_state("OBJ_files").unwrap();
    assert_eq!(state.messages, 2, "one chunk and one description: the old chunks are gone");

    // A second object, the listing, then a delete.
    sim.with_engine(|js, now, interest| store.put(js, now, "a.txt", "N3", b"hello", &interest)).unwrap();
    let names: Vec<String> = sim.with_engine(|js, _, _| store.list(js)).unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["a.txt", "big.bin"]);
    sim.with_engine(|js, now, interest| store.delete(js, now, "big.bin", &interest)).unwrap();
    assert!(matches!(read_all(&mut sim, &store, "big.bin"), Err(ObjError::NotFound)));
    assert_eq!(read_all(&mut sim, &store, "a.txt").unwrap(), b"hello");
}
