//! The group configs as orbit stores them (same JSON field names), and orbit's checks on
//! them, with its wording.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::Serialize;
use serde_json::Value;

use crate::json::typed::{self, Fields, FromJson};

/// Partitions given to a member by hand instead of the balanced spread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberMapping {
    pub member: String,
    pub partitions: Vec<i64>,
}

/// An elastic group's filter on the source stream, and which of its `*` wildcards (1-based)
/// make the partitioning key (none: the whole subject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitioningFilter {
    pub filter: String,
    pub partitioning_wildcards: Vec<i64>,
}

/// A static group's config (KV `static-consumer-groups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct StaticConfig {
    /// The number of partitions, and so the most members that receive at once.
    pub max_members: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub member_mappings: Vec<MemberMapping>,
}

/// An elastic group's config (KV `elastic-consumer-groups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ElasticConfig {
    pub max_members: u32,
    pub partitioning_filters: Vec<PartitioningFilter>,
    /// orbit's spelling (`max_buffered_msg`, no s).
    #[serde(rename = "max_buffered_msg", skip_serializing_if = "is_zero")]
    pub max_buffered_msgs: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_buffered_bytes: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub member_mappings: Vec<MemberMapping>,
}

// Go writes an empty list as `null`: the lists read both (`Fields::or`).
impl FromJson for MemberMapping {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct MemberMapping")?;
        Ok(MemberMapping { member: f.need("member")?, partitions: f.or("partitions", Vec::new())? })
    }
}

impl FromJson for PartitioningFilter {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct PartitioningFilter")?;
        Ok(PartitioningFilter {
            filter: f.need("filter")?,
            partitioning_wildcards: f.or("partitioning_wildcards", Vec::new())?,
        })
    }
}

impl FromJson for StaticConfig {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct StaticConfig")?;
        Ok(StaticConfig {
            max_members: f.need("max_members")?,
            filters: f.or("filters", Vec::new())?,
            members: f.or("members", Vec::new())?,
            member_mappings: f.or("member_mappings", Vec::new())?,
        })
    }
}

impl FromJson for ElasticConfig {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct ElasticConfig")?;
        Ok(ElasticConfig {
            max_members: f.need("max_members")?,
            partitioning_filters: f.or("partitioning_filters", Vec::new())?,
            max_buffered_msgs: f.get("max_buffered_msg", 0)?,
            max_buffered_bytes: f.get("max_buffered_bytes", 0)?,
            members: f.or("members", Vec::new())?,
            member_mappings: f.or("member_mappings", Vec::new())?,
        })
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Why a config is refused (orbit's messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcgError {
    /// Not JSON of the expected shape.
    Json(String),
    MaxMembers,
    MembersAndMappings,
    MappingCount,
    DuplicateMember,
    DuplicatePartition,
    PartitionRange,
    PartitionCount,
    EmptyFilter,
    FilterWildcards,
    TooManyPartitioningWildcards,
    DuplicatePartitioningWildcard,
    PartitioningWildcardRange,
    /// A membership change asked of a group that maps partitions by hand (or the reverse).
    UsesMappings,
    /// A change an existing group cannot take (partitions, filters, buffers).
    Immutable,
    /// An elastic member's consumer must ack explicitly.
    AckPolicy,
}

impl fmt::Display for PcgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            PcgError::Json(e) => return write!(f, "invalid consumer group config: {e}"),
            PcgError::MaxMembers => "the max number of members must be >= 1",
            PcgError::MembersAndMappings => "either members or member mappings must be provided, not both",
            PcgError::MappingCount => "the number of member mappings must be between 1 and the max number of members",
            PcgError::DuplicateMember => "member names must be unique",
            PcgError::DuplicatePartition => "partition numbers must be used only once",
            PcgError::PartitionRange => {
                "partition numbers must be between 0 and one less than the max number of members"
            }
            PcgError::PartitionCount => "the number of unique partition numbers must be equal to the max number of members",
            PcgError::EmptyFilter => "partitioning filters must have a non-empty filter",
            PcgError::FilterWildcards => "partitioning filters must have at least one * wildcard or end with > wildcard",
            PcgError::TooManyPartitioningWildcards => {
                "the number of partitioning wildcards must not be larger than the total number of * wildcards in the filter"
            }
            PcgError::DuplicatePartitioningWildcard => "partitioning wildcard indexes must be unique",
            PcgError::PartitioningWildcardRange => {
                "partitioning wildcard indexes must be between 1 and the number of * wildcards in the filter"
            }
            PcgError::UsesMappings => "the consumer group uses member mappings: members can not be added or dropped",
            PcgError::AckPolicy => "the ack policy when consuming from elastic consumer groups must be explicit",
            PcgError::Immutable => {
                "the existing consumer group config can not be updated to the requested one, please delete the existing consumer group and create a new one"
            }
        };
        f.write_str(s)
    }
}

fn check_mappings(max_members: u32, members: &[String], mappings: &[MemberMapping]) -> Result<(), PcgError> {
    if max_members < 1 {
        return Err(PcgError::MaxMembers);
    }
    if !members.is_empty() && !mappings.is_empty() {
        return Err(PcgError::MembersAndMappings);
    }
    if mappings.is_empty() {
        // members are taken leniently: deduplicated and capped when partitions are assigned
        return Ok(());
    }
    if mappings.len() > max_members as usize {
        return Err(PcgError::MappingCount);
    }
    let mut names = BTreeSet::new();
    let mut partitions = BTreeSet::new();
    for m in mappings {
        if !names.insert(m.member.as_str()) {
            return Err(PcgError::DuplicateMember);
        }
        for &p in &m.partitions {
            if !partitions.insert(p) {
                return Err(PcgError::DuplicatePartition);
            }
            if p < 0 || p >= i64::from(max_members) {
                return Err(PcgError::PartitionRange);
            }
        }
    }
    if partitions.len() != max_members as usize {
        return Err(PcgError::PartitionCount);
    }
    Ok(())
}

impl StaticConfig {
    pub fn validate(&self) -> Result<(), PcgError> {
        check_mappings(self.max_members, &self.members, &self.member_mappings)
    }
}

impl ElasticConfig {
    pub fn validate(&self) -> Result<(), PcgError> {
        if self.max_members < 1 {
            return Err(PcgError::MaxMembers);
        }
        for pf in &self.partitioning_filters {
            if pf.filter.is_empty() {
                return Err(PcgError::EmptyFilter);
            }
            let stars = pf.filter.split('.').filter(|t| *t == "*").count() as i64;
            if stars == 0 && pf.filter != ">" && !pf.filter.ends_with(".>") {
                return Err(PcgError::FilterWildcards);
            }
            if pf.partitioning_wildcards.len() as i64 > stars {
                return Err(PcgError::TooManyPartitioningWildcards);
            }
            let mut seen = BTreeSet::new();
            for &w in &pf.partitioning_wildcards {
                if !seen.insert(w) {
                    return Err(PcgError::DuplicatePartitioningWildcard);
                }
                if w < 1 || w > stars {
                    return Err(PcgError::PartitioningWildcardRange);
                }
            }
        }
        check_mappings(self.max_members, &self.members, &self.member_mappings)
    }

    /// What a running group cannot change: its partitions, filters and buffer limits.
    pub fn same_shape(&self, other: &ElasticConfig) -> bool {
        self.max_members == other.max_members
            && self.partitioning_filters == other.partitioning_filters
            && self.max_buffered_msgs == other.max_buffered_msgs
            && self.max_buffered_bytes == other.max_buffered_bytes
    }

    /// The config with `add` joined to the members (orbit's `AddMembers`).
    pub fn with_members(&self, add: &[String]) -> Result<ElasticConfig, PcgError> {
        if !self.member_mappings.is_empty() {
            return Err(PcgError::UsesMappings);
        }
        let mut c = self.clone();
        for m in add.iter().filter(|m| !m.is_empty()) {
            if !c.members.contains(m) {
                c.members.push(m.clone());
            }
        }
        Ok(c)
    }

    /// The config without the members in `drop` (orbit's `DeleteMembers`).
    pub fn without_members(&self, drop: &[String]) -> Result<ElasticConfig, PcgError> {
        if !self.member_mappings.is_empty() {
            return Err(PcgError::UsesMappings);
        }
        let mut c = self.clone();
        c.members.retain(|m| !drop.contains(m));
        Ok(c)
    }
}

/// Either flavour's config, read from its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupConfig {
    Static(StaticConfig),
    Elastic(ElasticConfig),
}

impl GroupConfig {
    /// Reads and checks a stored config.
    pub fn parse(kind: super::Kind, json: &[u8]) -> Result<GroupConfig, PcgError> {
        let json_err = |e: typed::ApiJsonError| PcgError::Json(e.into());
        let c = match kind {
            super::Kind::Static => GroupConfig::Static(typed::from_slice(json).map_err(json_err)?),
            super::Kind::Elastic => GroupConfig::Elastic(typed::from_slice(json).map_err(json_err)?),
        };
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), PcgError> {
        match self {
            GroupConfig::Static(c) => c.validate(),
            GroupConfig::Elastic(c) => c.validate(),
        }
    }

    /// Whether `member` is in the membership (listed, or given partitions by hand).
    pub fn is_member(&self, member: &str) -> bool {
        let (members, mappings) = match self {
            GroupConfig::Static(c) => (&c.members, &c.member_mappings),
            GroupConfig::Elastic(c) => (&c.members, &c.member_mappings),
        };
        members.iter().any(|m| m == member) || mappings.iter().any(|m| m.member == member)
    }

    /// The JSON stored in the KV bucket.
    pub fn to_json(&self) -> Vec<u8> {
        match self {
            GroupConfig::Static(c) => serde_json::to_vec(c),
            GroupConfig::Elastic(c) => serde_json::to_vec(c),
        }
        .unwrap_or_default()
    }
}
