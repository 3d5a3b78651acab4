//! The metric data model shared by parser, store and exposition: types, values, label sets.

use std::cmp::Ordering;
use std::fmt;

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

/// A label set sorted by name, packed into one string and one offset table so that a
/// stored series costs two allocations however many labels it has.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Labels {
    text: Box<str>,
    /// End offsets: `ends[2i]` ends name i, `ends[2i+1]` ends value i.
    ends: Box<[u32]>,
}

impl Labels {
    /// Packs pairs that are already sorted by name with no duplicate names.
    pub fn from_sorted<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
        let mut text = String::new();
        let mut ends = Vec::new();
        for (n, v) in pairs {
            text.push_str(n);
            ends.push(text.len() as u32);
            text.push_str(v);
            ends.push(text.len() as u32);
        }
        Labels {
            text: text.into(),
            ends: ends.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The i-th (name, value) pair.
    pub fn pair(&self, i: usize) -> (&str, &str) {
        let start = if i == 0 {
            0
        } else {
            self.ends[2 * i - 1] as usize
        };
        let mid = self.ends[2 * i] as usize;
        let end = self.ends[2 * i + 1] as usize;
        (&self.text[start..mid], &self.text[mid..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(|i| self.pair(i))
    }
}

/// The exposition order of the Go client (`NormalizeMetricFamilies`): fewer labels first,
/// then label values compared position by position. Names break the remaining ties so that
/// `Equal` means "the same series", which the store uses as its uniqueness check.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        self.len()
            .cmp(&other.len())
            .then_with(|| {
                let a = self.iter().map(|(_, v)| v);
                a.cmp(other.iter().map(|(_, v)| v))
            })
            .then_with(|| {
                let a = self.iter().map(|(n, _)| n);
                a.cmp(other.iter().map(|(n, _)| n))
            })
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// A stored metric: its complete, sanitised label set and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub labels: Labels,
    pub value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_pack_and_order_like_go() {
        let a = Labels::from_sorted([("instance", ""), ("job", "b")]);
        let b = Labels::from_sorted([("a", "z"), ("job", "a")]);
        let c = Labels::from_sorted([("job", "x")]);
        assert_eq!(a.pair(1), ("job", "b"));
        assert_eq!(a.len(), 2);
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
    fn names() {
        assert!(is_label_name("_a1"));
        assert!(!is_label_name("1a"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name(""));
    }
}
