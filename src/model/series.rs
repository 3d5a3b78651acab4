//! A series as the store keeps it: its exposition lines rendered once, byte for byte as the Go client's text writer spells them, with the flags the other formats need.

use crate::model::float;
use crate::model::metric::{self, Labels, Metric, Series, Value};
use crate::model::names;

/// A sample value: like `float::write_go`, but 0, -0, 1 and -1 spelled as the Go text
/// writer's fast path spells them.
fn write_value(out: &mut String, v: f64) {
    if v == 0.0 {
        out.push('0');
    } else {
        float::write_go(out, v);
    }
}

/// `name{labels[,extra]} value\n`. The extra label (`quantile` or `le`) goes last, as in Go.
fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &Labels,
    extra: Option<(&str, f64)>,
    v: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels.block());
        if let Some((n, x)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(n);
            out.push_str("=\"");
            float::write_go(out, x);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_value(out, v);
    out.push('\n');
}

/// Appends the sample lines of one metric; true if it added a `+Inf` bucket of its own.
pub fn write_metric(out: &mut String, name: &str, m: &Metric) -> bool {
    match &m.value {
        Value::Missing => false,
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
            write_sample(out, name, "", &m.labels, None, *v);
            false
        }
        Value::Summary(s) => {
            for (q, v) in &s.quantiles {
                write_sample(out, name, "", &m.labels, Some(("quantile", *q)), *v);
            }
            write_sample(out, name, "_sum", &m.labels, None, s.sum);
            write_sample(out, name, "_count", &m.labels, None, s.count as f64);
            false
        }
        Value::Histogram(h) => {
            let mut has_inf = false;
            for (ub, c) in &h.buckets {
                has_inf |= *ub == f64::INFINITY;
                write_sample(
                    out,
                    name,
                    "_bucket",
                    &m.labels,
                    Some(("le", *ub)),
                    *c as f64,
                );
            }
            if !has_inf {
                write_sample(
                    out,
                    name,
                    "_bucket",
                    &m.labels,
                    Some(("le", f64::INFINITY)),
                    h.count as f64,
                );
            }
            write_sample(out, name, "_sum", &m.labels, None, h.sum);
            write_sample(out, name, "_count", &m.labels, None, h.count as f64);
            !has_inf
        }
    }
}

/// A stored series for `name`: its rendered lines (and flags) in one allocation.
pub fn series(name: &str, m: &Metric) -> Series {
    series_with_raw(name, m, None)
}

/// A stored series that also keeps a protobuf value message verbatim (see
/// `ParsedMetric::raw`).
pub fn series_with_raw(name: &str, m: &Metric, raw: Option<&[u8]>) -> Series {
    let mut lines = String::with_capacity(64);
    let mut flags = String::new();
    if write_metric(&mut lines, name, m) {
        flags.push(metric::ADDED_INF);
    }
    let extra = match &m.value {
        Value::Summary(s) => !s.quantiles.is_empty(),
        Value::Histogram(_) => true,
        _ => false,
    };
    if extra {
        flags.push(metric::EXTRA_LABEL);
    }
    if let Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) = m.value
        && v == 0.0
        && v.is_sign_negative()
    {
        flags.push(metric::NEGATIVE_ZERO);
    }
    let block = m.labels.block();
    if block.contains("U__") && metric::raw_pairs(block).any(|(n, _)| names::is_encoded(n)) {
        flags.push(metric::ENCODED_NAMES);
    }
    Series::new(&lines, &flags, raw)
}
