//! Text exposition format 0.0.4, byte for byte as the Go client's `MetricFamilyToText`.

use crate::model::float;
use crate::model::metric::{self, FamilyView, MetricType, Series, Value};
use crate::model::names::{self, Escaping};
use crate::model::series::series;
use crate::store::selfmetrics::Gathered;
use crate::wire::parse;
use crate::wire::proto;
use std::sync::Arc;

/// The `Content-Type` of a text scrape (Go gateway 1.5.1).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn escape_help(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
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

/// One family of a scrape: pushed series, or the gateway's own metrics, or both when a
/// push used an own name (then with the gateway's HELP and type, sorted together).
struct Merged {
    name: Arc<str>,
    help: Option<Arc<str>>,
    mtype: MetricType,
    series: Vec<Series>,
}

/// Merges the gateway's own families into the pushed ones, by name.
fn merge(mut own: Vec<Gathered>, pushed: Vec<FamilyView>) -> Vec<Merged> {
    own.sort_by_key(|o| o.family.name);
    let mut own = own.into_iter().peekable();
    let mut out = Vec::with_capacity(pushed.len() + 16);
    let from_own = |o: Gathered, extra: Vec<Series>| {
        let mut series: Vec<Series> = o.metrics.iter().map(|m| series(o.family.name, m)).collect();
        series.extend(extra);
        series.sort();
        Merged {
            name: o.family.name.into(),
            help: Some(o.family.help.into()),
            mtype: o.family.mtype,
            series,
        }
    };
    for f in pushed {
        while let Some(o) = own.next_if(|o| o.family.name < &*f.name) {
            out.push(from_own(o, Vec::new()));
        }
        match own.next_if(|o| o.family.name == &*f.name) {
            Some(o) => out.push(from_own(o, f.series)),
            None => out.push(Merged {
                name: f.name,
                help: f.help,
                mtype: f.mtype,
                series: f.series,
            }),
        }
    }
    out.extend(own.map(|o| from_own(o, Vec::new())));
    out
}

/// Whether a family holds stored names that a scrape must spell out (see `names`).
fn has_encoded_names(f: &Merged) -> bool {
    names::is_encoded(&f.name) || f.series.iter().any(|s| s.has_flag(metric::ENCODED_NAMES))
}

/// With UTF-8 names on, families come in the order of the names as pushed (as upstream
/// sorts them before escaping), not of their stored forms.
fn sort_real_names(families: &mut [Merged]) {
    if families.iter().any(|f| names::is_encoded(&f.name)) {
        families.sort_by_cached_key(|f| names::decode(&f.name).into_owned());
    }
}

/// A text scrape as pieces to write in order: each family's header, then its series'
/// stored lines, copied, never rendered again. `escaping` is None unless UTF-8 names are
/// on; then series with stored `U__` names are spelled out for the scheme asked for.
pub fn text(
    own: Vec<Gathered>,
    pushed: Vec<FamilyView>,
    escaping: Option<Escaping>,
) -> Vec<Series> {
    let mut families = merge(own, pushed);
    if escaping.is_some() {
        sort_real_names(&mut families);
    }
    let mut out = Vec::with_capacity(families.iter().map(|f| f.series.len() + 1).sum());
    for f in families {
        let scheme = escaping.filter(|_| has_encoded_names(&f));
        let Some(scheme) = scheme else {
            out.push(Series::new(
                &header(&f.name, f.help.as_deref(), f.mtype),
                "",
                None,
            ));
            out.extend(f.series);
            continue;
        };
        let mut name = String::new();
        names::write_name(&mut name, &names::output(&f.name, scheme));
        out.push(Series::new(
            &header(&name, f.help.as_deref(), f.mtype),
            "",
            None,
        ));
        let whole = names::is_encoded(&f.name);
        for s in f.series {
            if whole || s.has_flag(metric::ENCODED_NAMES) {
                let extra = s.has_flag(metric::EXTRA_LABEL);
                let lines = names::rewrite_lines(&f.name, s.lines(), extra, scheme);
                out.push(Series::new(&lines, "", None));
            } else {
                out.push(s);
            }
        }
    }
    out
}

/// A delimited protobuf scrape, encoded one family at a time as it is read, so that only
/// one family's bytes exist at once. Values are read back from the stored text, which
/// keeps shortest round-trip digits, so nothing is lost.
pub struct ProtobufStream {
    families: std::vec::IntoIter<Merged>,
    escaping: Option<Escaping>,
}

impl ProtobufStream {
    /// Appends the next family's encoding to `out`; false when there is none left.
    pub fn next_family(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(f) = self.families.next() else {
            return false;
        };
        let metrics: Vec<proto::EncodeMetric<'_>> = f
            .series
            .iter()
            .filter_map(|s| Some((s.block(), read_value(&f.name, f.mtype, s)?, s.raw())))
            .collect();
        let scheme = self.escaping.filter(|_| has_encoded_names(&f));
        let name = match scheme {
            Some(scheme) => names::output(&f.name, scheme),
            None => std::borrow::Cow::Borrowed(&*f.name),
        };
        proto::encode_family(out, &name, f.help.as_deref(), f.mtype, &metrics, scheme);
        true
    }
}

/// A protobuf scrape; `escaping` as for `text`.
pub fn protobuf(
    own: Vec<Gathered>,
    pushed: Vec<FamilyView>,
    escaping: Option<Escaping>,
) -> ProtobufStream {
    let mut families = merge(own, pushed);
    if escaping.is_some() {
        sort_real_names(&mut families);
    }
    ProtobufStream {
        families: families.into_iter(),
        escaping,
    }
}

/// Reads a stored series' value back from its rendered lines, leaving out a `+Inf`
/// bucket the exposition added and restoring a -0.
pub fn read_value(name: &str, mtype: MetricType, s: &Series) -> Option<Value> {
    match mtype {
        MetricType::Counter | MetricType::Gauge | MetricType::Untyped => {
            let mut v = float::parse_go(s.lines().trim_end().rsplit(' ').next()?)?;
            if s.has_flag(metric::NEGATIVE_ZERO) {
                v = -0.0;
            }
            Some(match mtype {
                MetricType::Counter => Value::Counter(v),
                MetricType::Gauge => Value::Gauge(v),
                _ => Value::Untyped(v),
            })
        }
        MetricType::Summary | MetricType::Histogram | MetricType::GaugeHistogram => {
            let text = format!("# TYPE {name} {}\n{}", mtype.text_name(), s.lines());
            let mut families = parse::parse_text(text.as_bytes()).ok()?;
            let mut value = families.pop()?.metrics.pop()?.value;
            if let Value::Histogram(h) = &mut value
                && s.has_flag(metric::ADDED_INF)
            {
                h.buckets.pop();
            }
            Some(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metric::{Histogram, Labels, Metric, Summary};
    use crate::model::series::write_metric;

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
