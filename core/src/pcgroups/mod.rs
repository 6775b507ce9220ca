//! Partitioned consumer groups, laid out as Synadia's orbit `pcgroups` library lays them out,
//! so members written with either library can share a group: Kafka's consumer group on
//! JetStream primitives, with per-key order and parallel members.
//!
//! A stream's subject transform puts a partition number (`{{partition(n,…)}}`, a hash of the
//! key tokens) in front of each subject; every member owns some partitions and reads them
//! through one pull consumer filtered on `<partition>.…`, in the priority group `PCG` with
//! `pinned_client`, so only one instance of a member receives at a time. The group's config
//! is a JSON value in a KV bucket, key `<stream>.<group>`:
//! - **static** groups (bucket `static-consumer-groups`) read a stream whose subjects already
//!   carry the partition; their membership is fixed at creation, consumers `<group>-<member>`;
//! - **elastic** groups (bucket `elastic-consumer-groups`) read a work-queue stream
//!   `<stream>-<group>` that sources the stream through the partitioning transform; members
//!   come and go by editing the config, and each member re-creates its consumer (named after
//!   the member) when its share of the partitions changes.
//!
//! This module is the rules only (configs, their checks, which partitions a member owns,
//! the stream and consumer configs to create); the hosts do the requests.

mod assign;
mod config;
pub mod json;
mod layout;
#[cfg(test)]
mod tests;

pub use assign::{member_filters, partition_filters, strip_partition};
pub use config::{ElasticConfig, GroupConfig, MemberMapping, PartitioningFilter, PcgError, StaticConfig};
pub use layout::{
    consumer_name, consumer_stream, elastic_stream_config, member_consumer_config, partitioning_dest, pull_expires,
    Timing,
};

/// The KV bucket holding the static groups' configs.
pub const STATIC_BUCKET: &str = "static-consumer-groups";
/// The KV bucket holding the elastic groups' configs.
pub const ELASTIC_BUCKET: &str = "elastic-consumer-groups";
/// The priority group every member consumer pins its instances in.
pub const PRIORITY_GROUP: &str = "PCG";

/// Which flavour a group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Static,
    Elastic,
}

impl Kind {
    /// `"static"` or `"elastic"`, as the hosts name them.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "static" => Some(Kind::Static),
            "elastic" => Some(Kind::Elastic),
            _ => None,
        }
    }

    /// The KV bucket the group's config lives in.
    pub fn bucket(self) -> &'static str {
        match self {
            Kind::Static => STATIC_BUCKET,
            Kind::Elastic => ELASTIC_BUCKET,
        }
    }
}

/// The KV key of a group's config: `<stream>.<group>`.
pub fn config_key(stream: &str, group: &str) -> alloc::string::String {
    let mut k = alloc::string::String::with_capacity(stream.len() + group.len() + 1);
    k.push_str(stream);
    k.push('.');
    k.push_str(group);
    k
}
