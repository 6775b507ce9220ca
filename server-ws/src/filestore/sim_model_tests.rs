//! The simulated disk keeps POSIX's promises and no more: each rule of `sim.rs` checked on
//! its own, so a store test that passes on it passes for the right reason.

#![allow(clippy::unwrap_used)]

use std::io;
use std::path::Path;

use super::sim::SimDisk;
use super::vfs::{Fs, OpenMode};

fn disk_with_dir() -> SimDisk {
    let disk = SimDisk::new();
    disk.create_dir_all(Path::new("/d")).unwrap();
    disk.open_dir(Path::new("/")).unwrap().unwrap().sync_all().unwrap();
    disk
}

fn rng() -> fastrand::Rng {
    fastrand::Rng::with_seed(7)
}

#[test]
fn only_fsynced_data_and_entries_survive_a_power_loss() {
    let disk = disk_with_dir();
    let f = disk.open(Path::new("/d/a"), OpenMode::ReadWrite).unwrap();
    f.append(b"hello").unwrap();
    f.sync_data().unwrap();
    // the file's data is durable, its name is not
    disk.power_loss(&mut rng());
    assert!(!disk.exists(Path::new("/d/a")));
    assert!(f.append(b"x").is_err(), "handles die with the power");

    let f = disk.open(Path::new("/d/a"), OpenMode::ReadWrite).unwrap();
    f.append(b"hello").unwrap();
    f.sync_data().unwrap();
    disk.open_dir(Path::new("/d")).unwrap().unwrap().sync_all().unwrap();
    f.append(b" world").unwrap();
    // a removal not made durable is undone too
    disk.remove_file(Path::new("/d/a")).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let disk2 = disk_with_dir();
        let g = disk2.open(Path::new("/d/a"), OpenMode::ReadWrite).unwrap();
        g.append(b"hello").unwrap();
        g.sync_data().unwrap();
        disk2.open_dir(Path::new("/d")).unwrap().unwrap().sync_all().unwrap();
        g.append(b" world").unwrap();
        disk2.power_loss(&mut fastrand::Rng::with_seed(seed));
        let data = disk2.read(Path::new("/d/a")).unwrap();
        assert!(data.starts_with(b"hello") && data.len() <= 11, "{data:?}");
        seen.insert(data);
    }
    assert!(seen.contains(&b"hello"[..]), "the unsynced tail is usually lost");
    assert!(seen.len() > 2, "and sometimes partly kept, torn: {seen:?}");
    disk.power_loss(&mut rng());
    assert_eq!(&disk.read(Path::new("/d/a")).unwrap()[..5], b"hello");
}

#[test]
fn a_failed_fsync_loses_the_dirty_data_even_if_a_retry_succeeds() {
    let disk = disk_with_dir();
    let f = disk.open(Path::new("/d/a"), OpenMode::ReadWrite).unwrap();
    disk.open_dir(Path::new("/d")).unwrap().unwrap().sync_all().unwrap();
    f.append(b"safe").unwrap();
    f.sync_data().unwrap();
    f.append(b"doomed").unwrap();
    disk.fail_fsync_after(Some(0));
    assert!(f.sync_data().is_err());
    disk.fail_fsync_after(None);
    f.append(b"later").unwrap();
    f.sync_data().unwrap();
    assert_eq!(disk.read(Path::new("/d/a")).unwrap(), b"safedoomedlater", "the cache still shows it");
    disk.power_loss(&mut rng());
    assert_eq!(disk.read(Path::new("/d/a")).unwrap(), b"safe\0\0\0\0\0\0later");
    assert_eq!(disk.stats().failed_fsyncs, 1);
}

#[test]
fn a_full_disk_writes_what_fits_and_says_enospc() {
    let disk = disk_with_dir();
    disk.set_capacity(Some(8));
    let f = disk.open(Path::new("/d/a"), OpenMode::ReadWrite).unwrap();
    f.append(b"12345").unwrap();
    let e = f.append(b"6789").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    assert_eq!(f.size().unwrap(), 8);
    f.set_len(5).unwrap();
    disk.set_capacity(None);
    f.append(b"6789").unwrap();
    assert_eq!(disk.read(Path::new("/d/a")).unwrap(), b"123456789");
    assert_eq!(disk.used(), 9);
}

#[test]
fn a_bit_flip_changes_one_bit_of_durable_data() {
    let disk = disk_with_dir();
    let f = disk.open(Path::new("/d/a"), OpenMode::ReadWrite).unwrap();
    f.append(&[0; 32]).unwrap();
    f.sync_all().unwrap();
    disk.open_dir(Path::new("/d")).unwrap().unwrap().sync_all().unwrap();
    let at = disk.flip_bit(Path::new("/d/a"), &mut rng()).unwrap();
    disk.power_loss(&mut rng());
    let data = disk.read(Path::new("/d/a")).unwrap();
    assert_eq!(data.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
    assert_ne!(data[at], 0);
}

#[test]
fn renamed_directories_keep_their_contents_and_runs_repeat_by_seed() {
    let run = |seed| {
        let disk = disk_with_dir();
        disk.create_dir_all(Path::new("/d/s/msgs")).unwrap();
        for d in ["/d", "/d/s"] {
            disk.open_dir(Path::new(d)).unwrap().unwrap().sync_all().unwrap();
        }
        let f = disk.open(Path::new("/d/s/msgs/1"), OpenMode::ReadWrite).unwrap();
        f.append(b"abc").unwrap();
        f.sync_all().unwrap();
        disk.open_dir(Path::new("/d/s/msgs")).unwrap().unwrap().sync_all().unwrap();
        f.append(&[9; 100]).unwrap();
        disk.rename(Path::new("/d/s"), Path::new("/d/t")).unwrap();
        assert_eq!(disk.files_under(Path::new("/d/t")), [Path::new("/d/t/msgs/1")]);
        disk.power_loss(&mut fastrand::Rng::with_seed(seed));
        assert!(!disk.exists(Path::new("/d/t")), "the rename was not made durable");
        (disk.read(Path::new("/d/s/msgs/1")).unwrap(), disk.stats())
    };
    for seed in 0..16 {
        assert_eq!(run(seed), run(seed), "seed {seed}");
    }
}

/// Space allocated ahead: zeros, durable once fsynced like any data; writes into it are
/// durable only once fsynced, and a power loss may keep a prefix of them, torn; the disk
/// fills with the allocation as with a write.
#[test]
fn writes_into_allocated_space_are_lost_unless_fsynced() {
    let disk = disk_with_dir();
    let f = disk.open(Path::new("/d/a"), OpenMode::ReadWrite).unwrap();
    disk.open_dir(Path::new("/d")).unwrap().unwrap().sync_all().unwrap();
    f.write_at(b"head", 0).unwrap();
    f.allocate(16).unwrap();
    f.sync_data().unwrap();
    f.write_at(b"more", 4).unwrap();
    assert_eq!(disk.read(Path::new("/d/a")).unwrap(), b"headmore\0\0\0\0\0\0\0\0");
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let disk2 = disk_with_dir();
        let g = disk2.open(Path::new("/d/a"), OpenMode::ReadWrite).unwrap();
        disk2.open_dir(Path::new("/d")).unwrap().unwrap().sync_all().unwrap();
        g.write_at(b"head", 0).unwrap();
        g.allocate(16).unwrap();
        g.sync_data().unwrap();
        g.write_at(b"more", 4).unwrap();
        disk2.power_loss(&mut fastrand::Rng::with_seed(seed));
        let data = disk2.read(Path::new("/d/a")).unwrap();
        assert_eq!(data.len(), 16, "the allocation was fsynced");
        assert!(data.starts_with(b"head") && data[8..].iter().all(|&b| b == 0), "{data:?}");
        seen.insert(data);
    }
    assert!(seen.contains(&b"head\0\0\0\0\0\0\0\0\0\0\0\0"[..]), "the unsynced write is usually lost");
    assert!(seen.len() > 2, "and sometimes partly kept: {seen:?}");
    f.sync_data().unwrap();
    disk.power_loss(&mut rng());
    assert_eq!(disk.read(Path::new("/d/a")).unwrap(), b"headmore\0\0\0\0\0\0\0\0");
    // a full disk allocates what fits and says so
    let disk = disk_with_dir();
    disk.set_capacity(Some(10));
    let f = disk.open(Path::new("/d/b"), OpenMode::ReadWrite).unwrap();
    assert_eq!(f.allocate(16).unwrap_err().kind(), io::ErrorKind::StorageFull);
    assert_eq!(f.size().unwrap(), 10);
    f.write_at(b"0123456789", 0).unwrap();
    assert_eq!(f.write_at(b"x", 10).unwrap_err().kind(), io::ErrorKind::StorageFull);
}
