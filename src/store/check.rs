//! A push made ready before the lock (labels sanitised, series rendered, per-push errors) and checked against the index under it (types, suffix collisions, duplicates).

use crate::model::grouping::GroupingKey;
use crate::model::metric::{
    Labels, Metric, MetricType, ParsedFamily, Series, Value, is_label_name,
};
use crate::model::names;
use crate::model::series;
use crate::store::selfmetrics::own_family;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use super::*;

/// What one write puts into a group: a family name and what it becomes.
pub(super) struct Write {
    pub(super) name: Arc<str>,
    pub(super) help: Option<Arc<str>>,
    pub(super) mtype: MetricType,
    pub(super) metrics: Vec<Series>,
    /// When it was pushed, if not now (a restored family).
    pub(super) at: Option<SystemTime>,
}

/// The label set every metric of a group carries: body labels, overwritten and completed
/// by the grouping labels, plus `instance=""` when there is no instance (the Go gateway's
/// `sanitizeLabels`), sorted by name.
pub(super) fn sanitized_labels<'a>(
    key: &'a GroupingKey,
    body: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    let mut labels: Vec<(&str, &str)> = key.labels().collect();
    for (n, v) in body {
        if key.get(n).is_none() {
            labels.push((n, v));
        }
    }
    if !labels.iter().any(|(n, _)| *n == "instance") {
        labels.push(("instance", ""));
    }
    labels.sort_by(|a, b| a.0.cmp(b.0));
    labels
}

pub(super) fn describe(name: &str, s: &Series) -> String {
    format!("collected metric {name:?} {s:?}")
}

pub(super) fn timestamp_gauge(key: &GroupingKey, name: &str, value: f64) -> Series {
    let labels = sanitized_labels(key, std::iter::empty());
    let metric = Metric {
        labels: Labels::from_sorted(labels),
        value: Value::Gauge(value),
    };
    series::series(name, &metric)
}

pub(super) fn push_time(key: &GroupingKey, value: f64) -> Write {
    Write {
        name: PUSH_TIME.into(),
        help: Some(PUSH_TIME_HELP.into()),
        mtype: MetricType::Gauge,
        metrics: vec![timestamp_gauge(key, PUSH_TIME, value)],
        at: None,
    }
}

pub(super) fn push_failure_time(key: &GroupingKey, value: f64) -> Write {
    Write {
        name: PUSH_FAILURE_TIME.into(),
        help: Some(PUSH_FAILURE_TIME_HELP.into()),
        mtype: MetricType::Gauge,
        metrics: vec![timestamp_gauge(key, PUSH_FAILURE_TIME, value)],
        at: None,
    }
}

/// The families of `existing` a write removes: for PUT all but the two timestamp gauges,
/// for POST those it names; plus any family a write replaces.
pub(super) fn removed_families(
    existing: Option<&Group>,
    writes: &[Write],
    mode: Mode,
) -> Vec<StoredFamily> {
    let Some(g) = existing else { return Vec::new() };
    let written: HashSet<&str> = writes.iter().map(|w| &*w.name).collect();
    g.families
        .iter()
        .filter(|f| {
            written.contains(f.name())
                || (mode == Mode::Replace && f.name() != PUSH_TIME && f.name() != PUSH_FAILURE_TIME)
        })
        .cloned()
        .collect()
}

/// The writes of a push, a pushed `push_failure_time_seconds` with its own errors (it
/// only applies to an existing group), and the errors found in the rest.
pub(super) type Prepared = (Vec<Write>, Option<(Write, Vec<String>)>, Vec<String>);

/// Turns parsed families into writes for `key`: labels sanitised, series rendered, types
/// and label names validated, duplicates inside the push found. Returns the writes, a
/// pushed `push_failure_time_seconds` family (kept aside: it only applies to existing
/// groups) and the errors found.
pub(super) fn prepare(
    key: &GroupingKey,
    families: Vec<ParsedFamily<'_>>,
    utf8_names: bool,
) -> Prepared {
    let mut writes = Vec::with_capacity(families.len() + 2);
    let mut pushed_failure = None;
    let mut all_errors = Vec::new();
    for mut f in families {
        if f.name == PUSH_TIME {
            continue; // always replaced by the gateway's own timestamp
        }
        if utf8_names {
            f.name = Cow::Owned(names::store_form(&f.name, true).into_owned());
            for m in &mut f.metrics {
                for (n, _) in &mut m.labels {
                    if let Cow::Owned(stored) = names::store_form(n, false) {
                        *n = Cow::Owned(stored);
                    }
                }
            }
        }
        let mut errors = Vec::new();
        let mut metrics: Vec<Series> = Vec::with_capacity(f.metrics.len());
        for m in f.metrics {
            let labels = sanitized_labels(key, m.labels.iter().map(|(n, v)| (&**n, &**v)));
            let metric = Metric {
                labels: Labels::from_sorted(labels.iter().copied()),
                value: m.value,
            };
            let series = series::series_with_raw(&f.name, &metric, m.raw);
            if !metric.value.fits(f.mtype) {
                errors.push(format!(
                    "{} is not a {}",
                    describe(&f.name, &series),
                    f.mtype
                ));
            }
            for w in labels.windows(2) {
                if w[0].0 == w[1].0 {
                    let d = describe(&f.name, &series);
                    errors.push(format!(
                        "{d} has two or more labels with the same name: {}",
                        w[0].0
                    ));
                }
            }
            for (n, _) in &labels {
                let (valid, shown) = if utf8_names {
                    let real = names::decode(n);
                    (!real.is_empty() && !real.starts_with("__"), real)
                } else {
                    (is_label_name(n) && !n.starts_with("__"), Cow::Borrowed(*n))
                };
                if !valid {
                    errors.push(format!(
                        "{} has a label with an invalid name: {shown}",
                        describe(&f.name, &series)
                    ));
                }
                if *n == "quantile" && matches!(metric.value, Value::Summary(_)) {
                    let d = describe(&f.name, &series);
                    errors.push(format!("{d} must not have an explicit \"quantile\" label"));
                }
            }
            metrics.push(series);
        }
        let mut sorted: Vec<&Series> = metrics.iter().collect();
        sorted.sort();
        for w in sorted.windows(2) {
            if w[0] == w[1] {
                let d = describe(&f.name, w[1]);
                errors.push(format!(
                    "{d} was collected before with the same name and label values"
                ));
            }
        }
        let write = Write {
            name: Arc::from(&*f.name),
            help: f.help.map(|h| Arc::from(&*h)),
            mtype: f.mtype,
            metrics,
            at: None,
        };
        // A pushed failure family only counts where it is kept (see `Store::push`).
        if f.name == PUSH_FAILURE_TIME {
            pushed_failure = Some((write, errors));
        } else {
            writes.push(write);
            all_errors.extend(errors);
        }
    }
    (writes, pushed_failure, all_errors)
}

/// Checks writes into group `existing` (whose `removed` families go away) against the rest
/// of the store and the gateway's own families: same type per name, no name colliding with
/// a summary's or histogram's series names, no series twice. Costs O(writes · log store).
/// Name arithmetic for the suffix checks: with UTF-8 names on, `a.b` + `_count` is
/// `a.b_count`, whose stored form is not the stored form of `a.b` with `_count` appended.
#[derive(Clone, Copy)]
pub(super) struct Names(pub(super) bool);

impl Names {
    pub(super) fn strip(self, name: &str, suffix: &str) -> Option<String> {
        if self.0 && names::is_encoded(name) {
            let real = names::decode(name);
            let base = real.strip_suffix(suffix).filter(|b| !b.is_empty())?;
            return Some(names::store_form(base, true).into_owned());
        }
        name.strip_suffix(suffix)
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    }

    pub(super) fn append(self, name: &str, suffix: &str) -> String {
        if self.0 && names::is_encoded(name) {
            let real = format!("{}{suffix}", names::decode(name));
            return names::store_form(&real, true).into_owned();
        }
        format!("{name}{suffix}")
    }

    /// A stored name as the pusher wrote it, for messages.
    pub(super) fn real(self, name: &str) -> Cow<'_, str> {
        if self.0 {
            names::decode(name)
        } else {
            Cow::Borrowed(name)
        }
    }
}

pub(super) fn check(
    index: &Index,
    existing: Option<&Group>,
    removed: &[StoredFamily],
    writes: &[Write],
    names: Names,
) -> Vec<String> {
    let gid = existing.map(|g| g.id);
    // Looked up once per written name: maps keep a push with many families linear.
    let mut removed_counts: HashMap<&str, usize> = HashMap::with_capacity(removed.len());
    for f in removed {
        *removed_counts.entry(f.name()).or_insert(0) += f.metrics.len();
    }
    let removed_count = |name: &str| removed_counts.get(name).copied().unwrap_or(0);
    let written: HashMap<&str, MetricType> = writes.iter().map(|w| (&*w.name, w.mtype)).collect();
    // The type a name will have after the write, if it is present at all.
    let type_after = |name: &str| -> Option<MetricType> {
        if let Some(t) = written.get(name) {
            return Some(*t);
        }
        if let Some(fi) = index.families.get(name)
            && fi.series.len() > removed_count(name)
        {
            return Some(fi.mtype);
        }
        own_family(name).map(|o| o.mtype)
    };
    let mut errors = Vec::new();
    for w in writes {
        let name = &*w.name;
        if let Some(o) = own_family(name)
            && o.mtype != w.mtype
        {
            errors.push(format!(
                "gathered metric family {name} has type {} but should have {}",
                w.mtype, o.mtype
            ));
            continue;
        }
        if let Some(fi) = index.families.get(name) {
            if fi.series.len() > removed_count(name) && fi.mtype != w.mtype {
                if let Some(m) = w.metrics.first() {
                    errors.push(format!("{} is not a {}", describe(name, m), fi.mtype));
                }
                continue;
            }
            for m in &w.metrics {
                if let Some(slot) = fi.series.get(&Slot::new(m, 0))
                    && Some(slot.group) != gid
                {
                    let d = describe(name, m);
                    errors.push(format!(
                        "{d} was collected before with the same name and label values"
                    ));
                }
            }
        }
        for suffix in ["_count", "_sum", "_bucket"] {
            let Some(base) = names.strip(name, suffix) else {
                continue;
            };
            let (n, b) = (names.real(name), names.real(&base));
            match type_after(&base) {
                Some(MetricType::Summary) if suffix != "_bucket" => errors.push(format!(
                    "collected metric named {n:?} collides with previously collected summary named {b:?}"
                )),
                Some(MetricType::Histogram) => errors.push(format!(
                    "collected metric named {n:?} collides with previously collected histogram named {b:?}"
                )),
                _ => {}
            }
        }
        let suffixes: &[&str] = match w.mtype {
            MetricType::Summary => &["_count", "_sum"],
            MetricType::Histogram => &["_count", "_sum", "_bucket"],
            _ => &[],
        };
        for s in suffixes {
            let other = names.append(name, s);
            if type_after(&other).is_some() {
                let (name, other) = (names.real(name), names.real(&other));
                // client_golang words the `_bucket` case differently.
                let what = if *s == "_bucket" {
                    "histogram"
                } else {
                    "histogram or summary"
                };
                errors.push(format!(
                    "collected {what} named {name:?} collides with previously collected metric named {other:?}"
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::Names;

    #[test]
    fn without_utf8_names_a_u_name_is_an_ordinary_name() {
        let plain = Names(false);
        assert_eq!(
            plain.strip("U__a_2e_b__count", "_count").as_deref(),
            Some("U__a_2e_b_")
        );
        assert_eq!(plain.append("U__a_2e_b", "_count"), "U__a_2e_b_count");
        // With them, the suffix goes on the real name (`a.b` + `_count`).
        let utf8 = Names(true);
        let stored = utf8.append("U__a_2e_b", "_count");
        assert_ne!(stored, "U__a_2e_b_count");
        assert_eq!(utf8.strip(&stored, "_count").as_deref(), Some("U__a_2e_b"));
    }
}
