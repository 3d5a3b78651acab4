//! Text exposition format 0.0.4, byte for byte as the Go client's `MetricFamilyToText`.

use crate::float;
use crate::metric::{self, Labels, Metric, MetricType, Series, Value};
use crate::selfmetrics::Gathered;

/// The `Content-Type` of a text scrape (Go gateway 1.5.1).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A sample value: like `float::write_go`, but 0, -0, 1 and -1 spelled as the Go text
/// writer's fast path spells them.
fn write_value(out: &mut String, v: f64) {
    if v == 0.0 {
        out.push('0');
    } else {
        float::write_go(out, v);
    }
}

fn escape_help(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
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
    Series::new(&lines, &flags)
}

/// The `# HELP` (if any) and `# TYPE` lines of a family.
pub fn header(name: &str, help: Option<&str>, mtype: MetricType) -> String {
    let mut out = String::with_capacity(64);
    if let Some(h) = help {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_help(&mut out, h);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(mtype.text_name());
    out.push('\n');
    out
}

/// An own family, merged with pushed series of the same name (sorted together), as text.
pub fn render_own(own: &Gathered, pushed: &[Series]) -> String {
    let mut all: Vec<Series> = own
        .metrics
        .iter()
        .map(|m| series(own.family.name, m))
        .collect();
    all.extend(pushed.iter().cloned());
    all.sort();
    let mut out = header(own.family.name, Some(own.family.help), own.family.mtype);
    for s in &all {
        out.push_str(s.lines());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Histogram, Summary};

    fn labels(p: &[(&str, &str)]) -> Labels {
        Labels::from_sorted(p.iter().copied())
    }

    #[test]
    fn untyped_with_escapes() {
        let m = Metric {
            labels: labels(&[("a", "x\\y\"z\nw"), ("instance", ""), ("job", "j")]),
            value: Value::Untyped(-0.0),
        };
        let text = header("m", Some("line\\one\ntwo \"q\" <&>"), MetricType::Untyped)
            + series("m", &m).lines();
        assert_eq!(
            text,
            "# HELP m line\\\\one\\ntwo \"q\" <&>\n# TYPE m untyped\nm{a=\"x\\\\y\\\"z\\nw\",instance=\"\",job=\"j\"} 0\n"
        );
    }

    #[test]
    fn series_give_back_their_label_block() {
        let l = labels(&[("a", "x,\"}"), ("instance", ""), ("job", "j")]);
        for value in [
            Value::Untyped(1.0),
            Value::Summary(Box::default()),
            Value::Summary(Box::new(Summary {
                quantiles: vec![(0.5, 1.0)],
                ..Summary::default()
            })),
            Value::Histogram(Box::default()),
        ] {
            let m = Metric {
                labels: l.clone(),
                value,
            };
            assert_eq!(series("m", &m).block(), l.block(), "{m:?}");
        }
        let bare = Metric {
            labels: labels(&[]),
            value: Value::Histogram(Box::default()),
        };
        assert_eq!(series("h", &bare).block(), "");
    }

    #[test]
    fn summary_and_histogram_lines() {
        let l = labels(&[("instance", ""), ("job", "j")]);
        let s = Metric {
            labels: l.clone(),
            value: Value::Summary(Box::new(Summary {
                count: 1234567,
                sum: 12.0,
                quantiles: vec![(0.5, 1.0), (0.99, 1e6)],
            })),
        };
        let h = Metric {
            labels: l,
            value: Value::Histogram(Box::new(Histogram {
                count: 3,
                sum: 1.5,
                buckets: vec![(1.0, 1), (1e3, 2)],
            })),
        };
        let mut out = String::new();
        write_metric(&mut out, "s", &s);
        write_metric(&mut out, "h", &h);
        assert_eq!(
            out,
            "s{instance=\"\",job=\"j\",quantile=\"0.5\"} 1\n\
             s{instance=\"\",job=\"j\",quantile=\"0.99\"} 1e+06\n\
             s_sum{instance=\"\",job=\"j\"} 12\n\
             s_count{instance=\"\",job=\"j\"} 1.234567e+06\n\
             h_bucket{instance=\"\",job=\"j\",le=\"1\"} 1\n\
             h_bucket{instance=\"\",job=\"j\",le=\"1000\"} 2\n\
             h_bucket{instance=\"\",job=\"j\",le=\"+Inf\"} 3\n\
             h_sum{instance=\"\",job=\"j\"} 1.5\n\
             h_count{instance=\"\",job=\"j\"} 3\n"
        );
    }
}
