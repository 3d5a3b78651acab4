//! What the store holds: groups, their families and series lists, the gateway's two timestamp families, push modes and errors.

use crate::model::float;
use crate::model::grouping::GroupingKey;
use crate::model::metric::{MetricType, Series};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

pub const PUSH_TIME: &str = "push_time_seconds";
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
pub const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
pub const PUSH_FAILURE_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

/// What the families of one name, HELP and type share across groups (interned by the
/// index, so ten thousand groups pushing the same family hold one copy).
#[derive(Debug)]
pub struct FamilyMeta {
    pub name: Arc<str>,
    pub help: Option<Arc<str>>,
    pub mtype: MetricType,
}

/// One family as stored in one group.
#[derive(Debug, Clone)]
pub struct StoredFamily {
    pub(super) meta: Arc<FamilyMeta>,
    /// In push order, each with its complete sorted label set and rendered lines.
    pub metrics: SeriesList,
    /// When the push that last wrote this family arrived, in nanoseconds since the epoch.
    pub(super) pushed_at: u64,
}

impl StoredFamily {
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn help(&self) -> Option<&str> {
        self.meta.help.as_deref()
    }

    pub fn mtype(&self) -> MetricType {
        self.meta.mtype
    }

    pub fn pushed_at(&self) -> SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.pushed_at)
    }
}

pub(super) fn nanos(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The series of one stored family. Most families hold one series, which then needs no
/// allocation of its own.
#[derive(Debug, Clone)]
pub enum SeriesList {
    One(Series),
    Many(Arc<[Series]>),
}

impl From<Vec<Series>> for SeriesList {
    fn from(mut v: Vec<Series>) -> SeriesList {
        match v.len() {
            1 => SeriesList::One(v.remove(0)),
            _ => SeriesList::Many(v.into()),
        }
    }
}

impl std::ops::Deref for SeriesList {
    type Target = [Series];
    fn deref(&self) -> &[Series] {
        match self {
            SeriesList::One(s) => std::slice::from_ref(s),
            SeriesList::Many(v) => v,
        }
    }
}

/// A group: the families last pushed under one grouping key. Immutable once published;
/// a push builds a new one that shares the families it does not touch.
#[derive(Debug)]
pub struct Group {
    pub key: GroupingKey,
    pub(super) id: u64,
    /// Sorted by name.
    pub families: Box<[StoredFamily]>,
}

impl Group {
    pub fn family(&self, name: &str) -> Option<&StoredFamily> {
        let i = self
            .families
            .binary_search_by(|f| f.name().cmp(name))
            .ok()?;
        Some(&self.families[i])
    }

    /// The value of one of the two timestamp gauges (0 when absent or unreadable).
    pub fn timestamp(&self, name: &str) -> f64 {
        let line = self
            .family(name)
            .and_then(|f| f.metrics.first())
            .map(Series::lines);
        let value = line.and_then(|l| l.trim_end().rsplit(' ').next());
        value.and_then(float::parse_go).unwrap_or(0.0)
    }

    /// As the Go gateway decides it: the last push failed iff the failure time is later.
    pub fn last_push_successful(&self) -> bool {
        self.timestamp(PUSH_FAILURE_TIME) <= self.timestamp(PUSH_TIME)
    }
}

/// PUT replaces the whole group, POST only the families it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Replace,
    Add,
}

/// Why a parsed push was refused. Such a push changes nothing but the group's
/// `push_failure_time_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    Timestamps,
    Inconsistent(Vec<String>),
    /// The store takes no more changes: the daemon is shutting down.
    Closed,
}

impl PushError {
    /// The message, with at most `max_lines` of the errors listed (Go lists them all,
    /// which for a push of a million duplicate series is a 100 MB answer).
    pub fn message(&self, max_lines: usize) -> String {
        let mut out =
            String::from("pushed metrics are invalid or inconsistent with existing metrics: ");
        match self {
            PushError::Timestamps => out.push_str("pushed metrics must not have timestamps"),
            PushError::Inconsistent(errs) if errs.len() == 1 => out.push_str(&errs[0]),
            PushError::Inconsistent(errs) => {
                out.push_str(&format!("{} error(s) occurred:", errs.len()));
                for e in errs.iter().take(max_lines.max(1)) {
                    out.push_str("\n* ");
                    out.push_str(e);
                }
                if errs.len() > max_lines.max(1) {
                    out.push_str(&format!(
                        "\n* ... and {} more (--push.max-error-lines)",
                        errs.len() - max_lines.max(1)
                    ));
                }
            }
            PushError::Closed => return "shutting down: no more changes are taken".into(),
        }
        out
    }
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(usize::MAX))
    }
}

impl std::error::Error for PushError {}
