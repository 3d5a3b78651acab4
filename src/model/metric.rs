//! The metric data model shared by parser, store and exposition: types, values, label sets.

use crate::model::base64;
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
    /// A protobuf metric without a value field: fits no family, so it is never stored.
    Missing,
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

/// Whether `s` is a legacy Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
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

/// The `(name, escaped value)` pairs of a label block, without copying: the value ends at
/// the first quote not escaped by a backslash.
pub fn raw_pairs(block: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = block;
    std::iter::from_fn(move || {
        let eq = memchr::memchr(b'=', rest.as_bytes())?;
        let name = &rest[..eq];
        let value_start = eq + 2; // past `="`
        let b = rest.as_bytes();
        let mut i = value_start;
        loop {
            match memchr::memchr2(b'"', b'\\', b.get(i..)?) {
                Some(j) if b[i + j] == b'\\' => i += j + 2,
                Some(j) => {
                    i += j;
                    break;
                }
                None => return None,
            }
        }
        let value = rest.get(value_start..i)?;
        rest = rest.get(i + 2..).unwrap_or("");
        Some((name, value))
    })
}

/// Iterates the `(name, value)` pairs of a label block, unescaping values.
pub fn block_pairs(block: &str) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
    raw_pairs(block).map(|(n, raw)| {
        let value = if raw.contains('\\') {
            Cow::Owned(unescape(raw))
        } else {
            Cow::Borrowed(raw)
        };
        (n, value)
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

/// The bytes an escaped label value stands for.
fn unescaped_bytes(raw: &str) -> impl Iterator<Item = u8> + '_ {
    let mut b = raw.bytes();
    std::iter::from_fn(move || match b.next()? {
        b'\\' => match b.next()? {
            b'n' => Some(b'\n'),
            other => Some(other),
        },
        c => Some(c),
    })
}

/// Compares two escaped values by the bytes they stand for; without escapes (the usual
/// case) that is a plain slice comparison.
fn cmp_escaped(a: &str, b: &str) -> Ordering {
    if !a.contains('\\') && !b.contains('\\') {
        return a.cmp(b);
    }
    unescaped_bytes(a).cmp(unescaped_bytes(b))
}

/// The exposition order of the Go client (`NormalizeMetricFamilies`) on label blocks:
/// fewer labels first, then label values compared position by position. Names break the
/// remaining ties so that `Equal` means "the same series" (the store's uniqueness check).
/// It runs on every index lookup of a push, so it reads the blocks without allocating.
pub fn cmp_blocks(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    raw_pairs(a)
        .count()
        .cmp(&raw_pairs(b).count())
        .then_with(|| {
            let mut vb = raw_pairs(b).map(|(_, v)| v);
            for (_, va) in raw_pairs(a) {
                match vb.next().map(|vb| cmp_escaped(va, vb)) {
                    Some(Ordering::Equal) => {}
                    Some(o) => return o,
                    None => return Ordering::Greater,
                }
            }
            Ordering::Equal
        })
        .then_with(|| {
            raw_pairs(a)
                .map(|(n, _)| n)
                .cmp(raw_pairs(b).map(|(n, _)| n))
        })
}

/// A key whose order agrees with `cmp_blocks` wherever two keys differ, so that index
/// lookups settle most comparisons without reading any series text (a cache miss each).
/// Word 0: the label count in the top byte, then the first 7 bytes the first value stands
/// for, zero-padded (a shorter value sorts first, as in full). Word 1: 0 in the top byte if
/// word 0 holds the whole first value (at most 7 bytes, no NUL), then the second value's
/// first 7 bytes; otherwise just 1 in the top byte, which sorts after every value the
/// first word captured whole and says nothing more. Equal keys decide nothing.
pub fn sort_prefix(block: &str) -> [u64; 2] {
    let count = raw_pairs(block).count();
    if count >= 255 {
        return [255 << 56, 0];
    }
    let mut values = raw_pairs(block).map(|(_, v)| v);
    let (first, second) = (values.next().unwrap_or(""), values.next().unwrap_or(""));
    let mut w0 = [0u8; 8];
    w0[0] = count as u8;
    let mut bytes = unescaped_bytes(first);
    let mut whole = true;
    for slot in w0[1..].iter_mut() {
        match bytes.next() {
            None => break,
            // A NUL reads like padding: from here on the word cannot tell, so stop.
            Some(0) => {
                whole = false;
                break;
            }
            Some(b) => *slot = b,
        }
    }
    if whole && bytes.next().is_some() {
        whole = false; // longer than 7 bytes
    }
    let mut w1 = [0u8; 8];
    if whole {
        for (slot, b) in w1[1..].iter_mut().zip(unescaped_bytes(second)) {
            *slot = b;
        }
    } else {
        w1[0] = 1;
    }
    [u64::from_be_bytes(w0), u64::from_be_bytes(w1)]
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

/// One family as a scrape shows it.
pub struct FamilyView {
    pub name: Arc<str>,
    pub help: Option<Arc<str>>,
    pub mtype: MetricType,
    pub series: Vec<Series>,
}

/// A stored series: one allocation holding its flags, a line break, then the metric's
/// rendered exposition lines, from which the label block is read back. The flags keep
/// what the text cannot show: `x`, the first line carries one label more than the
/// metric (`quantile` or `le`, always last); for the JSON API `i`, the exposition added
/// the `+Inf` bucket, and `z`, the value is -0 (the text shows 0).
#[derive(Clone)]
pub struct Series(Arc<str>);

/// Flag of a series whose first line ends its labels with `quantile` or `le`.
pub const EXTRA_LABEL: char = 'x';
/// Flag of a series whose `+Inf` bucket the exposition added.
pub const ADDED_INF: char = 'i';
/// Flag of a series whose value is -0.
pub const NEGATIVE_ZERO: char = 'z';
/// Flag of a series with a stored `U__` label name (only with UTF-8 names on, see `names`).
pub const ENCODED_NAMES: char = 'u';

/// The text between the braces of a sample line (empty without braces), and where the
/// last pair in it starts.
fn brace_content(line: &str) -> (&str, usize) {
    let b = line.as_bytes();
    // A metric name holds neither '{' nor ' ', so whichever comes first decides.
    let Some(open) = memchr::memchr2(b'{', b' ', b).filter(|&i| b[i] == b'{') else {
        return ("", 0);
    };
    let content = &line[open + 1..];
    let (mut end, mut last_start) = (0, 0);
    for (name, value) in raw_pairs(content) {
        let start = name.as_ptr() as usize - content.as_ptr() as usize;
        last_start = start;
        end = value.as_ptr() as usize - content.as_ptr() as usize + value.len() + 1;
    }
    (&content[..end], last_start)
}

impl Series {
    /// `raw`: a protobuf value message to keep verbatim (see `ParsedMetric::raw`).
    pub fn new(lines: &str, flags: &str, raw: Option<&[u8]>) -> Series {
        let raw = raw.map(base64::encode);
        let raw_len = raw.as_ref().map_or(0, |r| r.len() + 1);
        let mut s = String::with_capacity(lines.len() + flags.len() + raw_len + 1);
        s.push_str(flags);
        if let Some(r) = raw {
            s.push(' ');
            s.push_str(&r);
        }
        s.push('\n');
        s.push_str(lines);
        Series(s.into())
    }

    /// Flag letters, then optionally a space and the base64 of a raw value message.
    fn header(&self) -> &str {
        let end = memchr::memchr(b'\n', self.0.as_bytes()).unwrap_or(self.0.len());
        &self.0[..end]
    }

    fn flags(&self) -> &str {
        let h = self.header();
        h.split_once(' ').map_or(h, |(f, _)| f)
    }

    /// The protobuf value message pushed with more than the text shows, if any.
    pub fn raw(&self) -> Option<Vec<u8>> {
        let (_, encoded) = self.header().split_once(' ')?;
        base64::decode(encoded.as_bytes()).ok()
    }

    /// The label block (exposition text without braces), read from the first line.
    pub fn block(&self) -> &str {
        let lines = self.lines();
        let first = &lines[..memchr::memchr(b'\n', lines.as_bytes()).unwrap_or(lines.len())];
        let (content, last_start) = brace_content(first);
        if self.has_flag(EXTRA_LABEL) {
            // Drop the extra pair and the comma before it.
            return &content[..last_start.saturating_sub(1)];
        }
        content
    }

    pub fn has_flag(&self, flag: char) -> bool {
        self.flags().contains(flag)
    }

    /// The rendered exposition lines.
    pub fn lines(&self) -> &str {
        let start = self.header().len() + 1;
        self.0.get(start..).unwrap_or("")
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

/// A family as pushed, whatever the body's format (both parsers produce it, the store
/// takes it): body labels only, before the grouping key is applied.
#[derive(Debug, PartialEq)]
pub struct ParsedFamily<'a> {
    pub name: Cow<'a, str>,
    pub help: Option<Cow<'a, str>>,
    pub mtype: MetricType,
    pub metrics: Vec<ParsedMetric<'a>>,
}

#[derive(Debug, PartialEq)]
pub struct ParsedMetric<'a> {
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub value: Value,
    pub timestamp_ms: Option<i64>,
    /// A protobuf value message with fields the text format cannot carry (native
    /// histogram buckets, exemplars, created timestamps), kept verbatim for protobuf scrapes.
    pub raw: Option<&'a [u8]>,
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
    fn sort_prefixes_never_contradict_the_full_order() {
        let values = [
            "", "a", "a\0", "a\0\0b", "ab", "abcdefg", "abcdefgh", "abcdefgz", "b", "\"", "\\",
            "#", "é", "\0",
        ];
        let mut blocks = Vec::new();
        for v in values {
            blocks.push(Labels::from_sorted([("a", v)]));
            blocks.push(Labels::from_sorted([("a", v), ("b", "x")]));
            blocks.push(Labels::from_sorted([("a", "a"), ("b", v)]));
            blocks.push(Labels::from_sorted([("a", v), ("b", v), ("c", "")]));
            for w in values {
                blocks.push(Labels::from_sorted([("a", v), ("b", w)]));
            }
        }
        for x in &blocks {
            for y in &blocks {
                let (px, py) = (sort_prefix(x.block()), sort_prefix(y.block()));
                if px != py {
                    assert_eq!(px.cmp(&py), x.cmp(y), "{x:?} vs {y:?}");
                }
            }
        }
    }

    #[test]
    fn series_read_their_label_block_back_from_the_text() {
        let s = Series::new(
            "h_bucket{job=\"j\",le=\"+Inf\"} 1\nh_sum{job=\"j\"} 0\n",
            "xi",
            Some(b"\x08\x01\x7a\x69"),
        );
        // Base64 of the raw message may hold flag letters; they are not flags.
        assert_eq!(
            (s.raw(), s.has_flag(NEGATIVE_ZERO)),
            (Some(b"\x08\x01\x7a\x69".to_vec()), false)
        );
        assert_eq!(
            (s.block(), s.has_flag(ADDED_INF), s.has_flag(NEGATIVE_ZERO)),
            ("job=\"j\"", true, false)
        );
        assert_eq!(
            s.lines(),
            "h_bucket{job=\"j\",le=\"+Inf\"} 1\nh_sum{job=\"j\"} 0\n"
        );
        assert_eq!(s, Series::new("other{job=\"j\"} 2\n", "", None));
        // Braces, commas, quotes and tabs inside values do not confuse it.
        let v = Series::new("m{a=\"}{,\\\"\t\",b=\"\"} 1\n", "", None);
        assert_eq!(v.block(), "a=\"}{,\\\"\t\",b=\"\"");
        assert_eq!(Series::new("m 1\n", "", None).block(), "");
        assert_eq!(
            Series::new("s{quantile=\"0.5\"} 1\ns_sum 1\n", "x", None).block(),
            ""
        );
        assert_eq!(
            Series::new("s_sum{a=\"1\"} 1\ns_count{a=\"1\"} 1\n", "", None).block(),
            "a=\"1\""
        );
    }

    #[test]
    fn names() {
        assert!(is_label_name("_a1"));
        assert!(!is_label_name("1a"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name(""));
    }
}
