//! The JSON API bodies (`/api/v1/metrics`, `/api/v1/status`) in Go `encoding/json` form.

use crate::model::float;
use crate::model::gospell::{rfc3339_nano, write_str};
use crate::model::metric::{Value, block_pairs};
use crate::model::names;
use crate::store::{Group, StoredFamily};
use crate::wire::expose;
use std::borrow::Cow;
use std::time::SystemTime;

fn write_num(out: &mut String, v: f64) {
    out.push('"');
    float::write_go(out, v);
    out.push('"');
}

/// A label map. With UTF-8 names on, stored names are shown as pushed (see `names`), and
/// sorted again as the real names sort.
fn write_labels<'a, V: AsRef<str>>(
    out: &mut String,
    labels: impl Iterator<Item = (&'a str, V)>,
    utf8: bool,
) {
    let mut labels: Vec<(Cow<'a, str>, V)> = labels
        .map(|(n, v)| {
            let n = if utf8 {
                names::decode(n)
            } else {
                Cow::Borrowed(n)
            };
            (n, v)
        })
        .collect();
    if utf8 {
        labels.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out.push('{');
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, n);
        out.push(':');
        write_str(out, v.as_ref());
    }
    out.push('}');
}

fn write_metric(out: &mut String, block: &str, value: &Value, utf8: bool) {
    // Keys sorted, as Go marshals a map.
    match value {
        Value::Missing => {
            out.push_str("{\"labels\":");
            write_labels(out, block_pairs(block), utf8);
        }
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
            out.push_str("{\"labels\":");
            write_labels(out, block_pairs(block), utf8);
            out.push_str(",\"value\":");
            write_num(out, *v);
        }
        Value::Summary(s) => {
            out.push_str("{\"count\":");
            write_num(out, s.count as f64);
            out.push_str(",\"labels\":");
            write_labels(out, block_pairs(block), utf8);
            out.push_str(",\"quantiles\":{");
            let mut qs: Vec<(String, f64)> = s
                .quantiles
                .iter()
                .map(|(q, v)| (float::go(*q), *v))
                .collect();
            qs.sort_by(|a, b| a.0.cmp(&b.0));
            qs.dedup_by(|a, b| a.0 == b.0);
            for (i, (q, v)) in qs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, q);
                out.push(':');
                write_num(out, *v);
            }
            out.push_str("},\"sum\":");
            write_num(out, s.sum);
        }
        Value::Histogram(h) => {
            out.push_str("{\"buckets\":{");
            let mut bs: Vec<(String, u64)> =
                h.buckets.iter().map(|(b, c)| (float::go(*b), *c)).collect();
            bs.sort_by(|a, b| a.0.cmp(&b.0));
            bs.dedup_by(|a, b| a.0 == b.0);
            for (i, (b, c)) in bs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, b);
                out.push(':');
                write_num(out, *c as f64);
            }
            out.push_str("},\"count\":");
            write_num(out, h.count as f64);
            out.push_str(",\"labels\":");
            write_labels(out, block_pairs(block), utf8);
            out.push_str(",\"sum\":");
            write_num(out, h.sum);
        }
    }
    out.push('}');
}

fn write_family(out: &mut String, f: &StoredFamily, utf8: bool) {
    out.push_str("{\"time_stamp\":");
    write_str(out, &rfc3339_nano(f.pushed_at()));
    out.push_str(",\"type\":");
    write_str(out, f.mtype().proto_name());
    if let Some(h) = f.help().filter(|h| !h.is_empty()) {
        out.push_str(",\"help\":");
        write_str(out, h);
    }
    out.push_str(",\"metrics\":[");
    let mut first = true;
    for s in f.metrics.iter() {
        // Series keep their rendered text; the API reads the values back from it.
        let Some(value) = expose::read_value(f.name(), f.mtype(), s) else {
            continue;
        };
        if !first {
            out.push(',');
        }
        first = false;
        write_metric(out, s.block(), &value, utf8);
    }
    out.push_str("]}");
}

/// `GET /api/v1/metrics`: one object per group (groups in grouping-key order, which the
/// Go gateway leaves random), keys sorted like a Go map. `utf8`: names are shown as pushed.
pub fn metrics_json(groups: &[std::sync::Arc<Group>], utf8: bool) -> String {
    let mut out = String::from("{\"status\":\"success\",\"data\":[");
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_group(&mut out, g, utf8);
    }
    out.push_str("]}");
    out
}

/// One group as `/api/v1/metrics` lists it.
pub fn write_group(out: &mut String, g: &Group, utf8: bool) {
    // A family named `labels` or `last_push_successful` takes that key, as in Go.
    let mut entries: Vec<(Cow<'_, str>, String)> = Vec::with_capacity(g.families.len() + 2);
    let mut labels = String::new();
    write_labels(&mut labels, g.key.labels(), utf8);
    entries.push(("labels".into(), labels));
    entries.push((
        "last_push_successful".into(),
        g.last_push_successful().to_string(),
    ));
    for f in g.families.iter() {
        let mut s = String::new();
        write_family(&mut s, f, utf8);
        let name = if utf8 {
            names::decode(f.name())
        } else {
            Cow::Borrowed(f.name())
        };
        match entries.iter_mut().find(|(k, _)| *k == name) {
            Some(e) => e.1 = s,
            None => entries.push((name, s)),
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    out.push('{');
    for (j, (k, v)) in entries.iter().enumerate() {
        if j > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
}

/// A JSON object of strings, keys sorted as Go marshals a map.
fn write_string_map<K: AsRef<str>, V: AsRef<str>>(out: &mut String, entries: &[(K, V)]) {
    let mut sorted: Vec<(&str, &str)> = entries
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    sorted.sort();
    write_labels(out, sorted.into_iter(), false);
}

/// `GET /api/v1/status`: build information, flags and start time.
pub fn status_json(
    build: &[(&str, String)],
    flags: &[(String, String)],
    start: SystemTime,
) -> String {
    let mut out = String::from("{\"status\":\"success\",\"data\":{\"build_information\":");
    write_string_map(&mut out, build);
    out.push_str(",\"flags\":");
    write_string_map(&mut out, flags);
    out.push_str(",\"start_time\":");
    write_str(&mut out, &rfc3339_nano(start));
    out.push_str("}}");
    out
}
