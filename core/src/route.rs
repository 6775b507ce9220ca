//! Who gets a published message: the delivery rule shared by every host.

use crate::sublist::MatchResult;

/// Offers a message to every plain subscriber and to one member of each queue group, chosen
/// at random. `offer` attempts one delivery and says whether it took: a subscriber that is
/// closing, or the publisher's own subscription with echo off, declines, and the next member of
/// the group is tried so the group still gets its copy. Returns how many deliveries were made.
pub fn route<T>(result: &MatchResult<T>, rng: &mut fastrand::Rng, offer: impl FnMut(&T) -> bool) -> usize {
    route_local_first(result, rng, |_| false, offer)
}

/// [`route`] where some members are remote (a leaf peer's queue interest): a queue group
/// gives its copy to a local member if one takes it, and only otherwise to a remote one, as
/// nats-server prefers local queue members for messages from clients and leaves.
pub fn route_local_first<T>(
    result: &MatchResult<T>,
    rng: &mut fastrand::Rng,
    is_remote: impl Fn(&T) -> bool,
    mut offer: impl FnMut(&T) -> bool,
) -> usize {
    let mut delivered = 0;
    for s in &result.plain {
        if offer(s) {
            delivered += 1;
        }
    }
    for g in &result.queues {
        let n = g.members.len();
        if n == 0 {
            continue;
        }
        let start = rng.usize(..n);
        let mut took = false;
        for remote in [false, true] {
            for i in 0..n {
                let m = &g.members[(start + i) % n];
                if is_remote(m) == remote && offer(m) {
                    took = true;
                    break;
                }
            }
            if took {
                delivered += 1;
                break;
            }
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sublist::Sublist;
    use alloc::vec::Vec;

    #[test]
    fn one_per_group_plus_all_plain() {
        let mut sl = Sublist::new();
        for i in 0..3 {
            sl.insert(b"q", Some(b"A"), i).unwrap();
        }
        sl.insert(b"q", Some(b"B"), 10).unwrap();
        sl.insert(b"q", None, 20).unwrap();
        let r = sl.matches(b"q");
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = [0usize; 21];
        for _ in 0..300 {
            let n = route(&r, &mut rng, |s| {
                counts[*s as usize] += 1;
                true
            });
            assert_eq!(n, 3);
        }
        assert_eq!(counts[0] + counts[1] + counts[2], 300);
        assert!(counts[..3].iter().all(|c| *c > 50), "{counts:?}");
        assert_eq!((counts[10], counts[20]), (300, 300));
    }

    #[test]
    fn local_members_first_remote_only_as_fallback() {
        let mut sl = Sublist::new();
        sl.insert(b"q", Some(b"A"), 1u32).unwrap();
        sl.insert(b"q", Some(b"A"), 100u32).unwrap();
        let r = sl.matches(b"q");
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..50 {
            let mut got = Vec::new();
            route_local_first(
                &r,
                &mut rng,
                |s| *s >= 100,
                |s| {
                    got.push(*s);
                    true
                },
            );
            assert_eq!(got, [1]);
        }
        let mut got = Vec::new();
        route_local_first(
            &r,
            &mut rng,
            |s| *s >= 100,
            |s| {
                got.push(*s);
                *s != 1
            },
        );
        assert_eq!(got, [1, 100]);
    }

    #[test]
    fn declined_member_passes_to_another() {
        let mut sl = Sublist::new();
        sl.insert(b"q", Some(b"A"), 1u32).unwrap();
        sl.insert(b"q", Some(b"A"), 2u32).unwrap();
        let r = sl.matches(b"q");
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..20 {
            let mut got = Vec::new();
            route(&r, &mut rng, |s| {
                if *s == 1 {
                    return false;
                }
                got.push(*s);
                true
            });
            assert_eq!(got, [2]);
        }
    }
}
