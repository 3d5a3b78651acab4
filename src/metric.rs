//! The metric data model shared by parser, store and exposition: types, values, label sets.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// The family types of `io.prometheus.client.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Summary,
    Untyped,
    Histogram,
    GaugeHistogram,
}

impl MetricType {
    /// The spelling of a `# TYPE` line (a gauge histogram prints as `histogram`).
    pub fn text_name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
            MetricType::Histogram | MetricType::GaugeHistogram => "histogram",
        }
    }

    /// The protobuf enum name, as the JSON API and error messages spell it.
    pub fn proto_name(self) -> &'static str {
        match self {
            MetricType::Counter => "COUNTER",
            MetricType::Gauge => "GAUGE",
            MetricType::Summary => "SUMMARY",
            MetricType::Untyped => "UNTYPED",
            MetricType::Histogram => "HISTOGRAM",
            MetricType::GaugeHistogram => "GAUGE_HISTOGRAM",
        }
    }

    /// Parses a `# TYPE` value the way the Go parser does (upper-cased enum name).
    pub fn from_type_line(s: &str) -> Option<MetricType> {
        Some(match s.to_ascii_uppercase().as_str() {
            "COUNTER" => MetricType::Counter,
            "GAUGE" => MetricType::Gauge,
            "SUMMARY" => MetricType::Summary,
            "UNTYPED" => MetricType::Untyped,
            "HISTOGRAM" => MetricType::Histogram,
            "GAUGE_HISTOGRAM" => MetricType::GaugeHistogram,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proto_name())
    }
}

/// A summary: sample count, sum and quantiles in the order they were pushed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: f64,
    pub quantiles: Vec<(f64, f64)>,
}

/// A classic histogram: count, sum and cumulative buckets `(upper bound, count)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub count: u64,
    pub sum: f64,
    pub buckets: Vec<(f64, u64)>,
}

/// One metric's value; which variant it is must match the family type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Counter(f64),
    Gauge(f64),
    Untyped(f64),
    Summary(Box<Summary>),
    Histogram(Box<Histogram>),
}

impl Value {
    /// Whether this value may stand in a family of type `t`.
    pub fn fits(&self, t: MetricType) -> bool {
        matches!(
            (self, t),
            (Value::Counter(_), MetricType::Counter)
                | (Value::Gauge(_), MetricType::Gauge)
                | (Value::Untyped(_), MetricType::Untyped)
                | (Value::Summary(_), MetricType::Summary)
                | (
                    Value::Histogram(_),
                    MetricType::Histogram | MetricType::GaugeHistogram
                )
        )
    }
}

/// Whether `s` is a legacy Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// A label set sorted by name, kept as its exposition text (`a="x",job="j"`, values
/// escaped): one allocation, copied verbatim into a scrape, and read back for sorting and
/// the JSON API. A raw `="` cannot occur inside an escaped value, so it counts the labels.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Labels(Box<str>);

/// Appends `v` escaped as an exposition label value.
pub fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Iterates the `(name, value)` pairs of a label block, unescaping values.
pub fn block_pairs(block: &str) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
    let mut rest = block;
    std::iter::from_fn(move || {
        let (name, after) = rest.split_once("=\"")?;
        let b = after.as_bytes();
        let mut i = 0;
        let mut escaped = false;
        while i < b.len() && (escaped || b[i] != b'"') {
            escaped = !escaped && b[i] == b'\\';
            i += 1;
        }
        let raw = &after[..i.min(after.len())];
        rest = after.get(i + 2..).unwrap_or("");
        let value = if raw.contains('\\') {
            Cow::Owned(unescape(raw))
        } else {
            Cow::Borrowed(raw)
        };
        Some((name, value))
    })
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The exposition order of the Go client (`NormalizeMetricFamilies`) on label blocks:
/// fewer labels first, then label values compared position by position. Names break the
/// remaining ties so that `Equal` means "the same series" (the store's uniqueness check).
pub fn cmp_blocks(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let count = |s: &str| s.matches("=\"").count();
    count(a)
        .cmp(&count(b))
        .then_with(|| {
            block_pairs(a)
                .map(|(_, v)| v)
                .cmp(block_pairs(b).map(|(_, v)| v))
        })
        .then_with(|| {
            block_pairs(a)
                .map(|(n, _)| n)
                .cmp(block_pairs(b).map(|(n, _)| n))
        })
}

impl Labels {
    /// Packs pairs that are already sorted by name with no duplicate names.
    pub fn from_sorted<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
        let mut text = String::new();
        for (i, (n, v)) in pairs.into_iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(n);
            text.push_str("=\"");
            escape_label_value(&mut text, v);
            text.push('"');
        }
        Labels(text.into())
    }

    /// The exposition text, without braces.
    pub fn block(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_blocks(&self.0, &other.0)
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

/// A metric with its complete, sanitised label set and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub labels: Labels,
    pub value: Value,
}

/// A stored series: one allocation holding the label block, optional flags after a tab,
/// a line break, then the metric's rendered exposition lines. The flags keep what the text
/// cannot show, for the JSON API: `i`, the exposition added the `+Inf` bucket; `z`, the
/// value is -0 (the text shows 0).
#[derive(Clone)]
pub struct Series(Arc<str>);

/// Flag of a series whose `+Inf` bucket the exposition added.
pub const ADDED_INF: char = 'i';
/// Flag of a series whose value is -0.
pub const NEGATIVE_ZERO: char = 'z';

impl Series {
    pub fn new(labels: &Labels, lines: &str, flags: &str) -> Series {
        let mut s = String::with_capacity(labels.block().len() + lines.len() + flags.len() + 2);
        s.push_str(labels.block());
        if !flags.is_empty() {
            s.push('\t');
            s.push_str(flags);
        }
        s.push('\n');
        s.push_str(lines);
        Series(s.into())
    }

    fn header(&self) -> (&str, &str) {
        // Label values escape newlines and quote tabs, so the first of each ends a part.
        let header = self.0.split_once('\n').map_or(&*self.0, |(h, _)| h);
        header.split_once('\t').unwrap_or((header, ""))
    }

    /// The label block (exposition text without braces).
    pub fn block(&self) -> &str {
        let (block, _) = self.header();
        block
    }

    pub fn has_flag(&self, flag: char) -> bool {
        self.header().1.contains(flag)
    }

    /// The rendered exposition lines.
    pub fn lines(&self) -> &str {
        self.0.split_once('\n').map_or("", |(_, l)| l)
    }
}

impl PartialEq for Series {
    fn eq(&self, other: &Self) -> bool {
        self.block() == other.block()
    }
}
impl Eq for Series {}
impl Ord for Series {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_blocks(self.block(), other.block())
    }
}
impl PartialOrd for Series {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.block())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_pack_and_order_like_go() {
        let a = Labels::from_sorted([("instance", ""), ("job", "b")]);
        let b = Labels::from_sorted([("a", "z"), ("job", "a")]);
        let c = Labels::from_sorted([("job", "x")]);
        assert_eq!(a.block(), "instance=\"\",job=\"b\"");
        // Fewer labels first, then values position by position regardless of names.
        let mut v = vec![b.clone(), a.clone(), c.clone()];
        v.sort();
        assert_eq!(v, vec![c, a, b]);
        let d = Labels::from_sorted([("instance", ""), ("zob", "b")]);
        assert_ne!(
            Labels::from_sorted([("instance", ""), ("job", "b")]).cmp(&d),
            Ordering::Equal
        );
    }

    #[test]
    fn escaped_values_read_back_and_sort_by_their_raw_bytes() {
        let tricky = "q\"b\\n\n}{,=\"x";
        let l = Labels::from_sorted([("a", tricky), ("b", "")]);
        let pairs: Vec<(String, String)> = block_pairs(l.block())
            .map(|(n, v)| (n.to_string(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            vec![("a".into(), tricky.into()), ("b".into(), String::new())]
        );
        // '"' (0x22) sorts before '#' (0x23) although its escape starts with '\\' (0x5C).
        let quote = Labels::from_sorted([("a", "\"")]);
        let hash = Labels::from_sorted([("a", "#")]);
        assert!(quote < hash);
    }

    #[test]
    fn series_keep_block_and_lines_in_one_allocation() {
        let l = Labels::from_sorted([("job", "j")]);
        let s = Series::new(&l, "h_bucket{job=\"j\",le=\"+Inf\"} 1\n", "i");
        assert_eq!(
            (s.block(), s.has_flag(ADDED_INF), s.has_flag(NEGATIVE_ZERO)),
            ("job=\"j\"", true, false)
        );
        assert_eq!(s.lines(), "h_bucket{job=\"j\",le=\"+Inf\"} 1\n");
        assert_eq!(s, Series::new(&l, "other\n", ""));
    }

    #[test]
    fn names() {
        assert!(is_label_name("_a1"));
        assert!(!is_label_name("1a"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name(""));
    }
}
