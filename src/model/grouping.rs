//! Grouping keys: the label set named by a push URL (`/metrics/job/J/name/value...`).

use crate::model::base64::{self, Base64Error};
use crate::model::metric::is_label_name;
use crate::model::names;
use std::cmp::Ordering;
use std::fmt;

/// The labels that identify a group, sorted by name, `job` always among them. Packed
/// into one string and one offset table: a store holds one key per group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupingKey {
    text: Box<str>,
    /// End offsets: `ends[2i]` ends name i, `ends[2i+1]` ends value i.
    ends: Box<[u32]>,
}

/// Why a push URL names no valid group. The texts are the Go gateway's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupingError {
    JobBase64 {
        partial: String,
        err: Base64Error,
    },
    OddComponents(String),
    ImproperName(String),
    LabelBase64 {
        name: String,
        raw: String,
        err: Base64Error,
    },
    JobRequired,
    NotUtf8 {
        name: String,
    },
}

impl fmt::Display for GroupingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupingError::JobBase64 { partial, err } => {
                write!(f, "invalid base64 encoding in job name {partial:?}: {err}")
            }
            GroupingError::OddComponents(s) => {
                write!(f, "odd number of components in label string {s:?}")
            }
            GroupingError::ImproperName(n) => write!(f, "improper label name {n:?}"),
            GroupingError::LabelBase64 { name, raw, err } => {
                write!(f, "invalid base64 encoding for label {name}={raw:?}: {err}")
            }
            GroupingError::JobRequired => f.write_str("job name is required"),
            GroupingError::NotUtf8 { name } => {
                write!(f, "the value of grouping label {name:?} is not valid UTF-8")
            }
        }
    }
}

impl std::error::Error for GroupingError {}

fn utf8(name: &str, v: Vec<u8>) -> Result<String, GroupingError> {
    String::from_utf8(v).map_err(|_| GroupingError::NotUtf8 {
        name: name.to_string(),
    })
}

impl GroupingKey {
    /// Builds the key from the (percent-decoded) job segment and the rest of the path
    /// after it (empty, or starting with `/`), following the Go gateway's `splitLabels`.
    /// With `utf8_names`, label names are `U__` value-decoded first (upstream 1.11) and
    /// kept in their stored form (see `names`).
    pub fn parse(
        job: &[u8],
        job_is_base64: bool,
        rest: &[u8],
        utf8_names: bool,
    ) -> Result<GroupingKey, GroupingError> {
        let job = if job_is_base64 {
            base64::decode(job).map_err(|(partial, err)| GroupingError::JobBase64 {
                partial: String::from_utf8_lossy(&partial).into_owned(),
                err,
            })?
        } else {
            job.to_vec()
        };
        let mut labels: Vec<(String, String)> = Vec::new();
        if rest.len() > 1 {
            let parts: Vec<&[u8]> = rest.split(|&c| c == b'/').collect();
            if parts.len().is_multiple_of(2) {
                return Err(GroupingError::OddComponents(
                    String::from_utf8_lossy(rest).into_owned(),
                ));
            }
            for pair in parts[1..].chunks_exact(2) {
                let (raw_name, raw_value) = (pair[0], pair[1]);
                let (name, b64) = match raw_name.strip_suffix(b"@base64") {
                    Some(n) => (n, true),
                    None => (raw_name, false),
                };
                let trimmed = String::from_utf8_lossy(name).into_owned();
                let valid = if utf8_names {
                    // The real name may not be reserved either: upstream stores such a
                    // group's failure record and then cannot serve a scrape.
                    let real = names::decode(&trimmed);
                    std::str::from_utf8(name).is_ok() && !real.is_empty() && !real.starts_with("__")
                } else {
                    is_label_name(&trimmed)
                };
                if !valid || trimmed.starts_with("__") {
                    return Err(GroupingError::ImproperName(trimmed));
                }
                let name = if utf8_names {
                    names::store_form(&names::decode(&trimmed), false).into_owned()
                } else {
                    trimmed.clone()
                };
                let value = if b64 {
                    base64::decode(raw_value).map_err(|(_, err)| GroupingError::LabelBase64 {
                        name: trimmed.clone(),
                        raw: String::from_utf8_lossy(raw_value).into_owned(),
                        err,
                    })?
                } else {
                    raw_value.to_vec()
                };
                let value = utf8(&name, value)?;
                // A later pair with the same name wins, as in a Go map.
                match labels.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = value,
                    None => labels.push((name, value)),
                }
            }
        }
        if job.is_empty() {
            return Err(GroupingError::JobRequired);
        }
        let job = utf8("job", job)?;
        // The job segment overrides any `job` pair in the label path.
        labels.retain(|(n, _)| n != "job");
        labels.push(("job".to_string(), job));
        labels.sort();
        Ok(GroupingKey::pack(&labels))
    }

    fn pack(labels: &[(String, String)]) -> GroupingKey {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(labels.len() * 2);
        for (n, v) in labels {
            text.push_str(n);
            ends.push(text.len() as u32);
            text.push_str(v);
            ends.push(text.len() as u32);
        }
        GroupingKey {
            text: text.into(),
            ends: ends.into(),
        }
    }

    /// A key from a label map (a persistence file's): `job` must be there and not empty,
    /// names valid as in a push path; with `utf8_names` names are kept in stored form.
    pub fn from_labels(
        labels: Vec<(String, String)>,
        utf8_names: bool,
    ) -> Result<GroupingKey, GroupingError> {
        let mut out = Vec::with_capacity(labels.len());
        for (n, v) in labels {
            let valid = if utf8_names {
                !n.is_empty() && !n.starts_with("__")
            } else {
                is_label_name(&n) && !n.starts_with("__")
            };
            if !valid {
                return Err(GroupingError::ImproperName(n));
            }
            let n = if utf8_names {
                names::store_form(&n, false).into_owned()
            } else {
                n
            };
            out.push((n, v));
        }
        if !out.iter().any(|(n, v)| n == "job" && !v.is_empty()) {
            return Err(GroupingError::JobRequired);
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(GroupingKey::pack(&out))
    }

    /// The `(name, value)` pairs, sorted by name.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.ends.len() / 2).map(|i| {
            let start = if i == 0 {
                0
            } else {
                self.ends[2 * i - 1] as usize
            };
            let mid = self.ends[2 * i] as usize;
            let end = self.ends[2 * i + 1] as usize;
            (&self.text[start..mid], &self.text[mid..end])
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The Go gateway's map key: names and values joined by 0xFF bytes. Groups are listed
    /// in the byte order of this string.
    pub fn id(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (n, v)) in self.labels().enumerate() {
            if i > 0 {
                out.push(0xFF);
            }
            out.extend_from_slice(n.as_bytes());
            out.push(0xFF);
            out.extend_from_slice(v.as_bytes());
        }
        out
    }
}

impl Ord for GroupingKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.id().cmp(&other.id())
    }
}

impl PartialOrd for GroupingKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(labels: &[(&str, &str)], utf8: bool) -> Result<GroupingKey, GroupingError> {
        let labels = labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        GroupingKey::from_labels(labels, utf8)
    }

    #[test]
    fn keys_read_from_a_file_are_checked_like_push_paths() {
        let improper = |labels: &[(&str, &str)], utf8: bool| {
            matches!(from(labels, utf8), Err(GroupingError::ImproperName(_)))
        };
        // Legacy names: a valid name, not reserved.
        assert!(from(&[("job", "a"), ("x", "1")], false).is_ok());
        assert!(improper(&[("job", "a"), ("a.b", "1")], false));
        assert!(improper(&[("job", "a"), ("__x", "1")], false));
        // UTF-8 names: any name but an empty or reserved one, kept in stored form.
        let k = from(&[("job", "a"), ("a.b", "1")], true).expect("a UTF-8 name");
        assert_eq!(k.get("U__a_2e_b"), Some("1"));
        assert!(improper(&[("job", "a"), ("", "1")], true));
        assert!(improper(&[("job", "a"), ("__x", "1")], true));
        // A job, not empty.
        for labels in [&[("x", "1")][..], &[("job", ""), ("x", "1")][..]] {
            assert!(matches!(
                from(labels, false),
                Err(GroupingError::JobRequired)
            ));
        }
    }

    #[test]
    fn the_go_map_key_separates_every_name_and_value() {
        let k = from(&[("job", "a"), ("instance", "x")], false).expect("a key");
        assert_eq!(k.id(), b"instance\xffx\xffjob\xffa");
    }

    fn key(job: &str, rest: &str) -> Result<Vec<(String, String)>, String> {
        GroupingKey::parse(job.as_bytes(), false, rest.as_bytes(), false)
            .map(|k| {
                k.labels()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn paths() {
        assert_eq!(key("j", ""), Ok(pairs(&[("job", "j")])));
        assert_eq!(key("j", "/"), Ok(pairs(&[("job", "j")])));
        assert_eq!(key("j", "/a/1/a/2"), Ok(pairs(&[("a", "2"), ("job", "j")])));
        assert_eq!(key("a", "/job/b"), Ok(pairs(&[("job", "a")])));
        assert_eq!(key("ts", "/foo/"), Ok(pairs(&[("foo", ""), ("job", "ts")])));
        assert_eq!(
            key("j", "/y/1/y@base64/Mg"),
            Ok(pairs(&[("job", "j"), ("y", "2")]))
        );
        assert_eq!(
            key("j", "/lab@base64/="),
            Ok(pairs(&[("job", "j"), ("lab", "")]))
        );
        assert_eq!(
            key("j", "/lab/a+b c"),
            Ok(pairs(&[("job", "j"), ("lab", "a+b c")]))
        );
        assert_eq!(
            key("j", "/a/b/c").unwrap_err(),
            "odd number of components in label string \"/a/b/c\""
        );
        assert_eq!(
            key("j", "/instance/i/").unwrap_err(),
            "odd number of components in label string \"/instance/i/\""
        );
        assert_eq!(
            key("j", "/a-b/c").unwrap_err(),
            "improper label name \"a-b\""
        );
        assert_eq!(
            key("j", "/__a/c").unwrap_err(),
            "improper label name \"__a\""
        );
        assert_eq!(
            key("j", "/@base64/YQ").unwrap_err(),
            "improper label name \"\""
        );
        assert_eq!(
            key("j", "/lab@base64/a+b").unwrap_err(),
            "invalid base64 encoding for label lab=\"a+b\": illegal base64 data at input byte 1"
        );
        assert!(
            key("j", "/v@base64/__4")
                .unwrap_err()
                .contains("not valid UTF-8")
        );
        assert!(GroupingKey::parse(b"\xff", false, b"", false).is_err());
    }

    #[test]
    fn base64_jobs() {
        let k = GroupingKey::parse(b"L3Zhci90bXA", true, b"", false).unwrap();
        assert_eq!(k.get("job"), Some("/var/tmp"));
        assert_eq!(
            GroupingKey::parse(b"=", true, b"", false).unwrap_err(),
            GroupingError::JobRequired
        );
        assert_eq!(
            GroupingKey::parse(b"!x!", true, b"/instance/i", false)
                .unwrap_err()
                .to_string(),
            "invalid base64 encoding in job name \"\": illegal base64 data at input byte 0"
        );
    }

    #[test]
    fn id_orders_like_go() {
        let a = GroupingKey::from_labels(pairs(&[("job", "a")]), false).unwrap();
        let ab = GroupingKey::from_labels(pairs(&[("job", "ab")]), false).unwrap();
        // 0xFF sorts after every UTF-8 byte, so "a" + 0xFF... > "ab".
        let a_i =
            GroupingKey::from_labels(pairs(&[("instance", "x"), ("job", "a")]), false).unwrap();
        assert!(a_i < a && ab < GroupingKey::from_labels(pairs(&[("job", "b")]), false).unwrap());
        assert_eq!(a.id(), b"job\xffa");
    }
}
