//! Which partitions a member owns. This must give exactly what orbit gives: members of a
//! group may run either library, and two members that disagree would both (or neither) read
//! a partition.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::config::{GroupConfig, MemberMapping};

/// The consumer filters (`<partition>.<filter>`) of `member`: with a member list, the
/// partitions spread over the sorted, deduplicated members (at most `max_members` of them) in
/// contiguous runs, the remainder dealt out one each from the first member, so a member
/// joining or leaving moves few partitions; with mappings, the partitions mapped to it (as
/// `<partition>.>`, whatever the filter, as orbit does).
pub fn partition_filters(
    members: &[String],
    max_members: u32,
    mappings: &[MemberMapping],
    member: &str,
    filter: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    if !members.is_empty() {
        let mut sorted: Vec<&str> = Vec::with_capacity(members.len());
        for m in members {
            if !sorted.contains(&m.as_str()) {
                sorted.push(m);
            }
        }
        sorted.sort_unstable();
        sorted.truncate(max_members as usize);
        let n = sorted.len() as u32;
        if n == 0 {
            return out;
        }
        let per = max_members / n;
        for i in 0..max_members {
            let owner = if i < n * per { (i / per) % n } else { (i - n * per) % n };
            if sorted[owner as usize] == member {
                out.push(filter_for(i, filter));
            }
        }
    } else {
        for m in mappings.iter().filter(|m| m.member == member) {
            out.extend(m.partitions.iter().map(|&p| filter_for(p, ">")));
        }
    }
    out
}

fn filter_for(partition: impl ToString, filter: &str) -> String {
    let mut s = partition.to_string();
    s.push('.');
    s.push_str(filter);
    s
}

/// All the consumer filters of `member` in a group (empty: not a member now).
pub fn member_filters(config: &GroupConfig, member: &str) -> Vec<String> {
    let (members, max, mappings, filters): (_, _, _, Vec<&str>) = match config {
        GroupConfig::Static(c) => {
            (&c.members, c.max_members, &c.member_mappings, c.filters.iter().map(String::as_str).collect())
        }
        GroupConfig::Elastic(c) => (
            &c.members,
            c.max_members,
            &c.member_mappings,
            c.partitioning_filters.iter().map(|f| f.filter.as_str()).collect(),
        ),
    };
    if filters.is_empty() {
        return partition_filters(members, max, mappings, member, ">");
    }
    filters.iter().flat_map(|f| partition_filters(members, max, mappings, member, f)).collect()
}

/// The subject as published: without the partition token the group's stream put in front.
pub fn strip_partition(subject: &str) -> &str {
    subject.split_once('.').map_or(subject, |(_, rest)| rest)
}
