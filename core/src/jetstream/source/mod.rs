//! Stream mirrors and sources: a stream that copies another stream's messages.
//!
//! A mirror keeps the origin's sequence numbers and times (gaps stay gaps) and takes no
//! publishes of its own; a stream with sources stores what it sources under new sequences,
//! each with a `Nats-Stream-Source` header naming where it came from. Both follow their
//! origins on the engine's own ticks, a bounded batch at a time (`link.rs`), so a large origin
//! never holds the engine up, and both remember the last origin sequence they took in the
//! stream's metadata, so a restart resumes exactly there.
//!
//! This file holds the configuration as the `$JS.API` carries it and nats-server's checks on
//! it, in its order and words (`server/stream.go`, `checkStreamCfg`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

use super::config::{valid_name, StreamConfig, SubjectTransformConfig};
use super::errors::ApiError;
use crate::subject;
use crate::transform::{validate_mapping, SubjectTransform};

mod drain;
mod external;
#[cfg(test)]
mod external_tests;
mod graph;
mod info;
mod link;
#[cfg(test)]
pub(super) mod tests;

pub(crate) use link::Links;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `mirror` or one of `sources`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StreamSource {
    pub name: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub opt_start_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subject_transforms: Vec<SubjectTransformConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    /// A durable consumer to source through (nats-server 2.14): kept as given, refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<serde_json::Value>,
}

/// Where an origin in another domain or account is reached.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ExternalStream {
    pub api: String,
    pub deliver: String,
}

impl StreamSource {
    /// The (filter, destination) pairs this source takes messages by; an empty filter is `>`
    /// and an empty destination keeps the subject.
    pub(crate) fn rules(&self) -> Vec<(String, String)> {
        let or_all = |s: &str| if s.is_empty() { String::from(">") } else { String::from(s) };
        if self.subject_transforms.is_empty() {
            return alloc::vec![(or_all(&self.filter_subject), String::new())];
        }
        self.subject_transforms.iter().map(|t| (or_all(&t.src), t.dest.clone())).collect()
    }

    /// nats-server's index name: `<name> <filters> <destinations>` (several joined by a form
    /// feed); its first and last two fields make up the `Nats-Stream-Source` header.
    pub(crate) fn iname(&self) -> String {
        let rules = self.rules();
        let or_all = |s: &str| if s.is_empty() { String::from(">") } else { String::from(s) };
        let filters: Vec<&str> = rules.iter().map(|(f, _)| f.as_str()).collect();
        let dests: Vec<String> = if self.subject_transforms.is_empty() {
            alloc::vec![String::from(">")]
        } else {
            rules.iter().map(|(_, d)| or_all(d)).collect()
        };
        format!("{} {} {}", self.name, filters.join("\u{c}"), dests.join("\u{c}"))
    }

    /// The subject a message on `subj` is stored under, or `None` if this source does not take
    /// it.
    pub(crate) fn map(&self, subj: &[u8]) -> Option<Vec<u8>> {
        for (filter, dest) in self.rules() {
            if !subject::matches(filter.as_bytes(), subj) {
                continue;
            }
            if dest.is_empty() {
                return Some(subj.to_vec());
            }
            return match SubjectTransform::new(&filter, &dest) {
                Ok(Some(t)) => Some(t.map_plain(subj).unwrap_or_else(|| subj.to_vec())),
                _ => Some(subj.to_vec()),
            };
        }
        None
    }

    /// Does this source take messages on `subj`?
    pub(crate) fn takes(&self, subj: &[u8]) -> bool {
        self.rules().iter().any(|(f, _)| subject::matches(f.as_bytes(), subj))
    }
}

/// The transform checks nats-server makes on a mirror's and a source's `subject_transforms`.
fn check_transforms(
    src: &StreamSource,
    bad_source: fn(String) -> ApiError,
    bad_dest: fn(String) -> ApiError,
) -> Result<(), ApiError> {
    for t in &src.subject_transforms {
        if !t.src.is_empty() && subject::validate_subscribe(t.src.as_bytes()).is_err() {
            return Err(bad_source(format!("invalid subject {}", t.src)));
        }
        validate_mapping(&t.src, &t.dest).map_err(|e| bad_dest(format!("{e}")))?;
    }
    Ok(())
}

/// nats-server's checks on `mirror` and `sources` that need no other stream, in its order.
pub(super) fn check(cfg: &StreamConfig) -> Result<(), ApiError> {
    if let Some(m) = &cfg.mirror {
        check_mirror(cfg, m)?;
    }
    if !cfg.sources.is_empty() && cfg.allow_msg_schedules {
        return Err(ApiError::with(400, 10187, "stream source can not also schedule messages"));
    }
    let mut inames: Vec<String> = Vec::new();
    for src in &cfg.sources {
        if !valid_name(&src.name) {
            return Err(ApiError::with(400, 10141, "sourced stream name is invalid"));
        }
        let iname = src.iname();
        if inames.contains(&iname) {
            return Err(ApiError::with(400, 10140, "duplicate source configuration detected"));
        }
        inames.push(iname);
        if !src.filter_subject.is_empty() && !src.subject_transforms.is_empty() {
            return Err(ApiError::with(
                400,
                10144,
                "source with multiple subject transforms cannot also have a single subject filter",
            ));
        }
        check_transforms(
            src,
            |e| ApiError::with(400, 10145, format!("source transform source: {e}")),
            |e| ApiError::with(400, 10146, format!("source transform: {e}")),
        )?;
        let filters: Vec<&str> = src.subject_transforms.iter().map(|t| t.src.as_str()).collect();
        for (i, a) in filters.iter().enumerate() {
            if filters.iter().enumerate().any(|(j, b)| i != j && subject::is_subset(a.as_bytes(), b.as_bytes())) {
                return Err(ApiError::with(400, 10147, "source filters can not overlap"));
            }
        }
        if src.consumer.is_some() {
            return Err(ApiError::stream_config("sourcing through a durable consumer is not supported by edgebus"));
        }
        if let Some(ext) = &src.external {
            check_external(ext)?;
        }
    }
    Ok(())
}

fn check_mirror(cfg: &StreamConfig, m: &StreamSource) -> Result<(), ApiError> {
    if cfg.first_seq.is_some_and(|s| s > 0) {
        return Err(ApiError::with(400, 10143, "stream mirrors can not have first sequence configured"));
    }
    if !cfg.subjects.is_empty() {
        return Err(ApiError::with(400, 10034, "stream mirrors can not contain subjects"));
    }
    if !cfg.sources.is_empty() {
        return Err(ApiError::with(400, 10031, "stream mirrors can not also contain other sources"));
    }
    if cfg.allow_msg_counter {
        return Err(ApiError::with(400, 10173, "stream mirrors can not also calculate counters"));
    }
    if cfg.allow_atomic {
        return Err(ApiError::with(400, 10198, "stream mirrors can not also use atomic publishing"));
    }
    if cfg.allow_batched {
        return Err(ApiError::with(400, 10209, "stream mirrors can not also use batch publishing"));
    }
    if cfg.allow_msg_schedules {
        return Err(ApiError::with(400, 10186, "stream mirrors can not also schedule messages"));
    }
    if !m.filter_subject.is_empty() && !m.subject_transforms.is_empty() {
        return Err(ApiError::with(
            400,
            10150,
            "mirror with multiple subject transforms cannot also have a single subject filter",
        ));
    }
    if cfg.subject_delete_marker_ttl.is_some_and(|t| t > 0) {
        return Err(ApiError::stream_config("subject delete markers forbidden on mirrors"));
    }
    for (i, t) in m.subject_transforms.iter().enumerate() {
        check_transforms(
            &StreamSource { subject_transforms: alloc::vec![t.clone()], ..StreamSource::default() },
            |e| ApiError::with(400, 10151, format!("mirror transform source: {e}")),
            |e| ApiError::with(400, 10154, format!("mirror transform: {e}")),
        )?;
        let collide = m
            .subject_transforms
            .iter()
            .enumerate()
            .any(|(j, u)| i != j && subject::overlaps(t.src.as_bytes(), u.src.as_bytes()));
        if collide {
            return Err(ApiError::with(400, 10152, "mirror subject filters can not overlap"));
        }
    }
    if m.consumer.is_some() {
        return Err(ApiError::stream_config("mirroring through a durable consumer is not supported by edgebus"));
    }
    match &m.external {
        None if !valid_name(&m.name) => Err(ApiError::with(400, 10142, "mirrored stream name is invalid")),
        None => Ok(()),
        Some(ext) => check_external(ext),
    }
}

/// The prefix checks nats-server makes on `external` (followed in `external.rs`).
fn check_external(ext: &ExternalStream) -> Result<(), ApiError> {
    if !ext.deliver.is_empty() && subject::validate_publish(ext.deliver.as_bytes()).is_err() {
        return Err(ApiError::with(
            400,
            10024,
            format!("stream external delivery prefix {} must not contain wildcards", ext.deliver),
        ));
    }
    if !ext.api.is_empty() {
        if subject::validate_publish(ext.api.as_bytes()).is_err() {
            return Err(ApiError::stream_config(format!(
                "stream external api prefix {:?} must be a valid subject without wildcards",
                ext.api
            )));
        }
        if subject::overlaps(ext.api.as_bytes(), b"$JS.API") {
            return Err(ApiError::with(
                400,
                10021,
                format!("stream external api prefix {} must not overlap with $JS.API", ext.api),
            ));
        }
    }
    Ok(())
}

/// May a stream's `mirror` change from `old` to `new` in an update? Removing it promotes the
/// mirror to a normal stream (nats-server 2.12+); anything else is refused.
pub(super) fn check_update(old: &StreamConfig, new: &StreamConfig) -> Result<(), ApiError> {
    match &new.mirror {
        Some(m) if old.mirror.as_ref() != Some(m) => {
            Err(ApiError::with(400, 10055, "stream mirror configuration can not be updated"))
        }
        _ => Ok(()),
    }
}
