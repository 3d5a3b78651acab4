//! The web UI: one embedded page (no external assets) and the two small JSON views it loads, the group list and one group.
//!
//! The page never holds the whole store: it lists groups from `groups_json` (labels, push
//! and failure times, a family count: tens of bytes a group) and renders a few hundred at
//! a time; a group's families and samples come from `group_json` when it is opened.

use crate::http::api;
use crate::model::base64;
use crate::model::gospell;
use crate::model::names;
use crate::store::{Group, PUSH_FAILURE_TIME, PUSH_TIME};
use std::borrow::Cow;
use std::sync::Arc;

/// The page, served at `P/` and `P/status`.
pub const PAGE: &str = include_str!("ui.html");

/// The path under `P/metrics/` (and `P/ui/group/`) that names a group, every value
/// base64-encoded so that any value (empty, or holding `/`) survives the URL; an empty
/// value is `=`, which decodes to nothing.
pub fn group_path(g: &Group) -> String {
    let b64 = |v: &str| {
        if v.is_empty() {
            "=".to_string()
        } else {
            base64::encode(v.as_bytes())
        }
    };
    let mut out = format!("job@base64/{}", b64(g.key.get("job").unwrap_or("")));
    for (n, v) in g.key.labels().filter(|(n, _)| *n != "job") {
        out.push('/');
        out.push_str(n);
        out.push_str("@base64/");
        out.push_str(&b64(v));
    }
    out
}

/// `{"groups":[{"labels":{..},"path":"..","push_time":s,"failure_time":s,"families":n}]}`,
/// groups in grouping-key order; times in Unix seconds; the two timestamp gauges are not
/// counted as families.
pub fn groups_json(groups: &[Arc<Group>], utf8: bool) -> String {
    let mut out = String::with_capacity(64 + groups.len() * 120);
    out.push_str("{\"groups\":[");
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"labels\":{");
        let mut labels: Vec<(Cow<'_, str>, &str)> = g
            .key
            .labels()
            .map(|(n, v)| {
                (
                    if utf8 {
                        names::decode(n)
                    } else {
                        Cow::Borrowed(n)
                    },
                    v,
                )
            })
            .collect();
        labels.sort();
        for (j, (n, v)) in labels.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            gospell::write_str(&mut out, n);
            out.push(':');
            gospell::write_str(&mut out, v);
        }
        out.push_str("},\"path\":");
        gospell::write_str(&mut out, &group_path(g));
        let families = g
            .families
            .iter()
            .filter(|f| f.name() != PUSH_TIME && f.name() != PUSH_FAILURE_TIME)
            .count();
        out.push_str(&format!(
            ",\"push_time\":{},\"failure_time\":{},\"families\":{families}}}",
            json_number(g.timestamp(PUSH_TIME)),
            json_number(g.timestamp(PUSH_FAILURE_TIME)),
        ));
    }
    out.push_str("]}");
    out
}

fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "0".into()
    }
}

/// One group as `/api/v1/metrics` shows it.
pub fn group_json(g: &Group, utf8: bool) -> String {
    let mut out = String::new();
    api::write_group(&mut out, g, utf8);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::grouping::GroupingKey;
    use crate::store::{Mode, Store};
    use crate::wire::parse::parse_text;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn groups_list_with_paths_that_round_trip() {
        let s = Store::new();
        let key = GroupingKey::parse(b"a/b", false, b"/instance//x/y", false).unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        s.push(&key, parse_text(b"m 1\n").unwrap(), Mode::Replace, t)
            .unwrap();
        let groups = s.groups();
        let path = group_path(&groups[0]);
        assert_eq!(path, "job@base64/YS9i/instance@base64/=/x@base64/eQ");
        let (job, rest) = path["job@base64/".len()..].split_once('/').unwrap();
        let back =
            GroupingKey::parse(job.as_bytes(), true, format!("/{rest}").as_bytes(), false).unwrap();
        assert_eq!(back, key);
        assert_eq!(
            groups_json(&groups, false),
            "{\"groups\":[{\"labels\":{\"instance\":\"\",\"job\":\"a/b\",\"x\":\"y\"},\
             \"path\":\"job@base64/YS9i/instance@base64/=/x@base64/eQ\",\
             \"push_time\":1700000000,\"failure_time\":0,\"families\":1}]}"
        );
    }
}
