//! Text exposition format 0.0.4, byte for byte as the Go client's `MetricFamilyToText`.

use crate::float;
use crate::metric::{Labels, Metric, MetricType, Value};
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

fn escape_label_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
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
        for (i, (n, val)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(n);
            out.push_str("=\"");
            escape_label_value(out, val);
            out.push('"');
        }
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

/// Appends the sample lines of one metric.
pub fn write_metric(out: &mut String, name: &str, m: &Metric) {
    match &m.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
            write_sample(out, name, "", &m.labels, None, *v)
        }
        Value::Summary(s) => {
            for (q, v) in &s.quantiles {
                write_sample(out, name, "", &m.labels, Some(("quantile", *q)), *v);
            }
            write_sample(out, name, "_sum", &m.labels, None, s.sum);
            write_sample(out, name, "_count", &m.labels, None, s.count as f64);
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
        }
    }
}

/// One family: `# HELP` (if any), `# TYPE`, then the metrics in the order given (callers
/// pass them sorted by label set).
pub fn render_family<'m>(
    name: &str,
    help: Option<&str>,
    mtype: MetricType,
    metrics: impl Iterator<Item = &'m Metric>,
) -> Vec<u8> {
    let mut out = String::with_capacity(256);
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
    for m in metrics {
        write_metric(&mut out, name, m);
    }
    out.into_bytes()
}

/// An own family, merged with pushed metrics of the same name (sorted together).
pub fn render_own<'m>(own: &'m Gathered, pushed: impl Iterator<Item = &'m Metric>) -> Vec<u8> {
    let mut all: Vec<&Metric> = own.metrics.iter().chain(pushed).collect();
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    render_family(
        own.family.name,
        Some(own.family.help),
        own.family.mtype,
        all.into_iter(),
    )
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
        let text = render_family(
            "m",
            Some("line\\one\ntwo \"q\" <&>"),
            MetricType::Untyped,
            [&m].into_iter(),
        );
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "# HELP m line\\\\one\\ntwo \"q\" <&>\n# TYPE m untyped\nm{a=\"x\\\\y\\\"z\\nw\",instance=\"\",job=\"j\"} 0\n"
        );
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
