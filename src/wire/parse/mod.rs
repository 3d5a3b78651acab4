//! The text format 0.0.4 push-body parser: a byte state machine with the Go parser's strictness.
//!
//! It follows `expfmt.TextParser` of prometheus/common v0.37 (what Pushgateway 1.5.1 runs)
//! state for state, so it accepts and refuses exactly the same bodies; it borrows names and
//! values from the body wherever no escape sequence forces a copy, and reports line and
//! column of the first error.

use crate::model::float;
use crate::model::metric::{MetricType, Value};
use memchr::{memchr, memchr3};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

mod tokens;

pub use crate::model::metric::{ParsedFamily, ParsedMetric};
use tokens::*;

/// Where and why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Go gateway's wording, with the column added after the line.
        write!(
            f,
            "text format parsing error in line {}, column {}: {}",
            self.line, self.column, self.msg
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole body. Families without samples are dropped, as upstream does.
pub fn parse_text(body: &[u8]) -> Result<Vec<ParsedFamily<'_>>, ParseError> {
    parse_text_with(body, false)
}

/// Like `parse_text`; with `utf8_names` (upstream 1.11's `--push.enable-utf8-names`) also
/// accepts quoted UTF-8 names: `{"a.b",x="y"} 1`, `m{"my.label"="v"} 1`, `# TYPE "a.b" gauge`.
pub fn parse_text_with(body: &[u8], utf8_names: bool) -> Result<Vec<ParsedFamily<'_>>, ParseError> {
    parse_text_limited(body, utf8_names, usize::MAX)
}

/// Like `parse_text_with`, refusing a body with more than `max_series` sample lines as
/// soon as it reads one more.
pub fn parse_text_limited(
    body: &[u8],
    utf8_names: bool,
    max_series: usize,
) -> Result<Vec<ParsedFamily<'_>>, ParseError> {
    let mut p = Parser::new(body);
    p.utf8_names = utf8_names;
    p.max_series = max_series;
    p.run()?;
    let mut families = p.families;
    families.retain(|f| !f.metrics.is_empty());
    Ok(families)
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    StartOfLine,
    StartComment,
    ReadingMetricName,
    ReadingLabels,
    StartLabelName,
    StartLabelValue,
    ReadingValue,
    StartTimestamp,
    ReadingHelp,
    ReadingType,
}

/// Which part of a summary or histogram the current line feeds.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Plain,
    Count,
    Sum,
}

/// Signals the end of input where the Go parser's reader returned `io.EOF`.
struct Eof;

struct Parser<'a> {
    buf: &'a [u8],
    /// Index of the next byte to read.
    pos: usize,
    cur: u8,
    line: usize,
    line_start: usize,
    families: Vec<ParsedFamily<'a>>,
    by_name: HashMap<Cow<'a, str>, usize>,
    /// Summary/histogram metrics by family and label signature (labels except quantile/le).
    compound: HashMap<(usize, LabelPairs<'a>), usize>,
    token: Cow<'a, str>,
    mf: usize,
    labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    label_name: Cow<'a, str>,
    quantile: Option<f64>,
    bucket: Option<f64>,
    part: Part,
    /// Labels that identify a summary/histogram metric (all but quantile/le).
    signature: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Per family: whether its type is fixed (by a TYPE line or a first sample).
    types_set: Vec<bool>,
    /// The summary/histogram metric the current line feeds.
    current_compound: Option<usize>,
    /// The metric the current line wrote, for its timestamp.
    last_metric: Option<(usize, usize)>,
    /// Quoted UTF-8 names are allowed.
    utf8_names: bool,
    /// The line opened with `{`: its metric name is the first (quoted) name in the braces.
    name_in_braces: bool,
    /// The metric name of a `{`-line has been read.
    braced_name_seen: bool,
    /// Sample lines read so far, and how many a body may hold (`--push.max-series`): the
    /// parser stops at the bound, so a huge body never becomes a huge parse.
    series: usize,
    max_series: usize,
}

type LabelPairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

type Step<'a> = Result<Option<State>, ParseError>;

impl<'a> Parser<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Parser {
            buf,
            pos: 0,
            cur: 0,
            line: 0,
            line_start: 0,
            series: 0,
            max_series: usize::MAX,
            families: Vec::new(),
            by_name: HashMap::new(),
            compound: HashMap::new(),
            token: Cow::Borrowed(""),
            mf: 0,
            labels: Vec::new(),
            label_name: Cow::Borrowed(""),
            quantile: None,
            bucket: None,
            part: Part::Plain,
            signature: Vec::new(),
            types_set: Vec::new(),
            current_compound: None,
            last_metric: None,
            utf8_names: false,
            name_in_braces: false,
            braced_name_seen: false,
        }
    }

    fn run(&mut self) -> Result<(), ParseError> {
        let mut state = State::StartOfLine;
        loop {
            let step: Result<Step<'a>, Eof> = match state {
                State::StartOfLine => self.start_of_line(),
                State::StartComment => self.start_comment(),
                State::ReadingMetricName => self.reading_metric_name(),
                State::ReadingLabels => Ok(self.reading_labels()),
                State::StartLabelName => self.start_label_name(),
                State::StartLabelValue => self.start_label_value(),
                State::ReadingValue => self.reading_value(),
                State::StartTimestamp => self.start_timestamp(),
                State::ReadingHelp => self.reading_help(),
                State::ReadingType => self.reading_type(),
            };
            match step {
                Ok(Ok(Some(next))) => state = next,
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Err(Eof) => {
                    return Err(self.error_at(self.buf.len(), "unexpected end of input stream"));
                }
            }
        }
    }

    fn error_at(&self, offset: usize, msg: impl Into<String>) -> ParseError {
        let offset = offset.clamp(self.line_start, self.buf.len());
        let column = String::from_utf8_lossy(&self.buf[self.line_start..offset])
            .chars()
            .count()
            + 1;
        ParseError {
            line: self.line,
            column,
            msg: msg.into(),
        }
    }

    /// An error about the byte just read.
    fn error(&self, msg: impl Into<String>) -> Step<'a> {
        Err(self.error_at(self.pos.saturating_sub(1), msg))
    }

    /// An error about the token that ended just before the byte just read.
    fn token_error(&self, msg: impl Into<String>) -> Step<'a> {
        let start = self.pos.saturating_sub(1 + self.token.len());
        Err(self.error_at(start, msg))
    }

    fn set_or_create_current_mf(&mut self) {
        self.part = Part::Plain;
        let name = self.token.clone();
        if let Some(&i) = self.by_name.get(&name) {
            self.mf = i;
            return;
        }
        let strip = |suffix: &str| name.strip_suffix(suffix).filter(|b| !b.is_empty());
        let (count, sum, bucket) = (strip("_count"), strip("_sum"), strip("_bucket"));
        if let Some(base) = count.or(sum)
            && let Some(&i) = self.by_name.get(base)
            && self.families[i].mtype == MetricType::Summary
        {
            self.mf = i;
            self.part = if count.is_some() {
                Part::Count
            } else {
                Part::Sum
            };
            return;
        }
        if let Some(base) = count.or(sum).or(bucket)
            && let Some(&i) = self.by_name.get(base)
            && self.families[i].mtype == MetricType::Histogram
        {
            self.mf = i;
            self.part = match (count, sum) {
                (Some(_), _) => Part::Count,
                (_, Some(_)) => Part::Sum,
                _ => Part::Plain,
            };
            return;
        }
        self.families.push(ParsedFamily {
            name: name.clone(),
            help: None,
            mtype: MetricType::Untyped,
            metrics: Vec::new(),
        });
        self.mf = self.families.len() - 1;
        self.by_name.insert(name, self.mf);
        self.types_set.push(false);
    }

    fn start_of_line(&mut self) -> Result<Step<'a>, Eof> {
        self.line += 1;
        self.line_start = self.pos;
        self.name_in_braces = false;
        self.braced_name_seen = false;
        if self.skip_blank_tab().is_err() {
            return Ok(Ok(None)); // The one place where the end of input is the end.
        }
        Ok(Ok(Some(match self.cur {
            b'#' => State::StartComment,
            b'\n' => State::StartOfLine,
            b'{' if self.utf8_names => {
                self.name_in_braces = true;
                self.labels.clear();
                let _ = self.reading_labels();
                State::StartLabelName
            }
            _ => State::ReadingMetricName,
        })))
    }

    fn start_comment(&mut self) -> Result<Step<'a>, Eof> {
        self.skip_blank_tab()?;
        if self.cur == b'\n' {
            return Ok(Ok(Some(State::StartOfLine)));
        }
        self.read_token_until_whitespace()?;
        if self.cur == b'\n' {
            return Ok(Ok(Some(State::StartOfLine)));
        }
        let keyword = self.token.clone();
        if keyword != "HELP" && keyword != "TYPE" {
            // A plain comment: skip to the end of the line.
            let nl = memchr(b'\n', &self.buf[self.pos..]).ok_or(Eof)?;
            self.pos += nl + 1;
            self.cur = b'\n';
            return Ok(Ok(Some(State::StartOfLine)));
        }
        self.skip_blank_tab()?;
        if let Err(e) = self.read_metric_name()? {
            return Ok(Err(e));
        }
        if self.cur == b'\n' {
            return Ok(Ok(Some(State::StartOfLine)));
        }
        if !is_blank(self.cur) {
            return Ok(self.error("invalid metric name in comment"));
        }
        self.set_or_create_current_mf();
        self.skip_blank_tab()?;
        if self.cur == b'\n' {
            return Ok(Ok(Some(State::StartOfLine)));
        }
        Ok(Ok(Some(if keyword == "HELP" {
            State::ReadingHelp
        } else {
            State::ReadingType
        })))
    }

    fn reading_metric_name(&mut self) -> Result<Step<'a>, Eof> {
        if let Err(e) = self.read_metric_name()? {
            return Ok(Err(e));
        }
        if self.token.is_empty() {
            return Ok(self.error("invalid metric name"));
        }
        self.set_or_create_current_mf();
        // The first sample fixes the type; a later TYPE line is an error.
        self.types_set[self.mf] = true;
        self.labels.clear();
        self.skip_blank_tab_if_current()?;
        Ok(Ok(Some(State::ReadingLabels)))
    }

    fn compound_type(&self) -> bool {
        matches!(
            self.families[self.mf].mtype,
            MetricType::Summary | MetricType::Histogram
        )
    }

    fn reading_labels(&mut self) -> Step<'a> {
        self.quantile = None;
        self.bucket = None;
        self.signature.clear();
        self.current_compound = None;
        if self.cur != b'{' {
            return Ok(Some(State::ReadingValue));
        }
        Ok(Some(State::StartLabelName))
    }

    fn start_label_name(&mut self) -> Result<Step<'a>, Eof> {
        self.skip_blank_tab()?;
        let nameless = self.name_in_braces && !self.braced_name_seen;
        if self.cur == b'}' {
            if nameless {
                return Ok(self.error("invalid metric name"));
            }
            self.skip_blank_tab()?;
            return Ok(Ok(Some(State::ReadingValue)));
        }
        if let Err(e) = self.read_label_name()? {
            return Ok(Err(e));
        }
        if self.token.is_empty() {
            if nameless {
                return Ok(self.error("invalid metric name"));
            }
            let name = self.families[self.mf].name.clone();
            return Ok(self.error(format!("invalid label name for metric {name:?}")));
        }
        self.skip_blank_tab_if_current()?;
        if self.name_in_braces && self.cur != b'=' {
            // The name of a `{`-line: `{"a.b"}` or `{"a.b",x="y"}`.
            if !nameless {
                let name = self.families[self.mf].name.clone();
                return Ok(self.error(format!("multiple metric names for metric {name:?}")));
            }
            let next = match self.cur {
                b',' => State::StartLabelName,
                b'}' => State::ReadingValue,
                c => {
                    return Ok(self.error(format!("unexpected end of metric name {:?}", c as char)));
                }
            };
            self.braced_name_seen = true;
            self.set_or_create_current_mf();
            self.types_set[self.mf] = true;
            if next == State::ReadingValue {
                self.skip_blank_tab()?;
            }
            return Ok(Ok(Some(next)));
        }
        if nameless {
            // Label pairs before the name: there is no family to give them to.
            return Ok(self.error("invalid metric name"));
        }
        if self.cur != b'=' {
            return Ok(self.error(format!(
                "expected '=' after label name, found {:?}",
                self.cur as char
            )));
        }
        if self.token == "__name__" {
            return Ok(self.token_error("label name \"__name__\" is reserved"));
        }
        self.label_name = self.token.clone();
        let mtype = self.families[self.mf].mtype;
        let special = (mtype == MetricType::Summary && self.label_name == "quantile")
            || (mtype == MetricType::Histogram && self.label_name == "le");
        if !special {
            if self.labels.iter().any(|(n, _)| *n == self.label_name) {
                let name = self.families[self.mf].name.clone();
                return Ok(self.token_error(format!("duplicate label names for metric {name:?}")));
            }
            self.labels
                .push((self.label_name.clone(), Cow::Borrowed("")));
        }
        Ok(Ok(Some(State::StartLabelValue)))
    }

    fn start_label_value(&mut self) -> Result<Step<'a>, Eof> {
        self.skip_blank_tab()?;
        if self.cur != b'"' {
            return Ok(self.error(format!(
                "expected '\"' at start of label value, found {:?}",
                self.cur as char
            )));
        }
        let value_start = self.pos;
        if let Err(e) = self.read_token_as_label_value()? {
            return Ok(Err(e));
        }
        let value = self.token.clone();
        let mtype = self.families[self.mf].mtype;
        let name = self.label_name.clone();
        if mtype == MetricType::Summary && name == "quantile" {
            match float::parse_go(&value) {
                // The Go parser marks "no quantile" with NaN, so a NaN quantile is none.
                Some(q) => self.quantile = Some(q).filter(|q| !q.is_nan()),
                None => {
                    let msg =
                        format!("expected float as value for 'quantile' label, got {value:?}");
                    return Ok(Err(self.error_at(value_start, msg)));
                }
            }
        } else if mtype == MetricType::Histogram && name == "le" {
            match float::parse_go(&value) {
                Some(b) => self.bucket = Some(b).filter(|b| !b.is_nan()),
                None => {
                    let msg = format!("expected float as value for 'le' label, got {value:?}");
                    return Ok(Err(self.error_at(value_start, msg)));
                }
            }
        } else {
            if let Some(last) = self.labels.last_mut() {
                last.1 = value.clone();
            }
            if self.compound_type() {
                self.signature.push((name, value.clone()));
            }
        }
        self.skip_blank_tab()?;
        match self.cur {
            b',' => Ok(Ok(Some(State::StartLabelName))),
            b'}' => {
                self.skip_blank_tab()?;
                Ok(Ok(Some(State::ReadingValue)))
            }
            _ => Ok(self.error(format!("unexpected end of label value {value:?}"))),
        }
    }

    fn reading_value(&mut self) -> Result<Step<'a>, Eof> {
        self.series += 1;
        if self.series > self.max_series {
            let msg = format!(
                "too many series in one push: more than {} (--push.max-series)",
                self.max_series
            );
            return Ok(self.error(msg));
        }
        self.read_token_until_whitespace()?;
        let value = match float::parse_go(&self.token) {
            Some(v) => v,
            None => {
                let msg = format!("expected float as value, got {:?}", self.token);
                return Ok(self.token_error(msg));
            }
        };
        let mf = self.mf;
        let labels = std::mem::take(&mut self.labels);
        let mtype = self.families[mf].mtype;
        match mtype {
            MetricType::Counter | MetricType::Gauge | MetricType::Untyped => {
                let v = match mtype {
                    MetricType::Counter => Value::Counter(value),
                    MetricType::Gauge => Value::Gauge(value),
                    _ => Value::Untyped(value),
                };
                self.families[mf].metrics.push(ParsedMetric {
                    labels,
                    value: v,
                    timestamp_ms: None,
                    raw: None,
                });
            }
            MetricType::Summary | MetricType::Histogram => {
                let idx = self.compound_metric(mf, labels, mtype);
                let (part, q, b) = (self.part, self.quantile, self.bucket);
                match &mut self.families[mf].metrics[idx].value {
                    Value::Summary(s) => match (part, q) {
                        (Part::Count, _) => s.count = value as u64,
                        (Part::Sum, _) => s.sum = value,
                        (Part::Plain, Some(q)) => s.quantiles.push((q, value)),
                        (Part::Plain, None) => {}
                    },
                    Value::Histogram(h) => match (part, b) {
                        (Part::Count, _) => h.count = value as u64,
                        (Part::Sum, _) => h.sum = value,
                        (Part::Plain, Some(b)) => h.buckets.push((b, value as u64)),
                        (Part::Plain, None) => {}
                    },
                    _ => {}
                }
            }
            MetricType::GaugeHistogram => {
                // The Go parser has no reassembly for gauge histograms: it stores a family
                // without values that then breaks its exposition. Refusing is the only
                // useful answer.
                let name = self.families[mf].name.clone();
                let msg = format!("unexpected type for metric name {name:?}");
                return Ok(Err(self.error_at(self.line_start, msg)));
            }
        }
        self.last_metric = Some((mf, self.current_metric_index(mf)));
        if self.cur == b'\n' {
            return Ok(Ok(Some(State::StartOfLine)));
        }
        Ok(Ok(Some(State::StartTimestamp)))
    }

    fn current_metric_index(&self, mf: usize) -> usize {
        self.current_compound
            .unwrap_or(self.families[mf].metrics.len() - 1)
    }

    /// Finds or creates the summary/histogram metric for the current label signature.
    fn compound_metric(
        &mut self,
        mf: usize,
        labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        mtype: MetricType,
    ) -> usize {
        let mut sig = std::mem::take(&mut self.signature);
        sig.sort();
        let key = (mf, sig);
        let idx = match self.compound.get(&key) {
            Some(&i) => i,
            None => {
                let value = if mtype == MetricType::Summary {
                    Value::Summary(Box::default())
                } else {
                    Value::Histogram(Box::default())
                };
                let fam = &mut self.families[mf];
                fam.metrics.push(ParsedMetric {
                    labels,
                    value,
                    timestamp_ms: None,
                    raw: None,
                });
                let i = fam.metrics.len() - 1;
                self.compound.insert(key, i);
                i
            }
        };
        self.current_compound = Some(idx);
        idx
    }

    fn start_timestamp(&mut self) -> Result<Step<'a>, Eof> {
        self.skip_blank_tab()?;
        self.read_token_until_whitespace()?;
        let ts: i64 = match self.token.parse() {
            Ok(t) => t,
            Err(_) => {
                let msg = format!("expected integer as timestamp, got {:?}", self.token);
                return Ok(self.token_error(msg));
            }
        };
        if let Some((mf, i)) = self.last_metric {
            self.families[mf].metrics[i].timestamp_ms = Some(ts);
        }
        // Anything but the newline after the timestamp is spurious.
        let rest_start = self.pos - 1;
        let nl = memchr(b'\n', &self.buf[rest_start..]).ok_or(Eof)?;
        if nl > 0 {
            let rest = self.slice(rest_start, rest_start + nl);
            return Ok(Err(self.error_at(
                rest_start,
                format!("spurious string after timestamp: {rest:?}"),
            )));
        }
        self.pos = rest_start + 1;
        self.cur = b'\n';
        Ok(Ok(Some(State::StartOfLine)))
    }

    fn reading_help(&mut self) -> Result<Step<'a>, Eof> {
        if self.families[self.mf].help.is_some() {
            let name = self.families[self.mf].name.clone();
            return Ok(self.error(format!("second HELP line for metric name {name:?}")));
        }
        if let Err(e) = self.read_token_until_newline(true)? {
            return Ok(Err(e));
        }
        self.families[self.mf].help = Some(self.token.clone());
        Ok(Ok(Some(State::StartOfLine)))
    }

    fn reading_type(&mut self) -> Result<Step<'a>, Eof> {
        if self.types_set[self.mf] {
            let name = self.families[self.mf].name.clone();
            return Ok(self.error(format!(
                "second TYPE line for metric name {name:?}, or TYPE reported after samples"
            )));
        }
        let start = self.pos - 1;
        if let Err(e) = self.read_token_until_newline(false)? {
            return Ok(Err(e));
        }
        match MetricType::from_type_line(&self.token) {
            Some(t) => {
                self.families[self.mf].mtype = t;
                self.types_set[self.mf] = true;
                Ok(Ok(Some(State::StartOfLine)))
            }
            None => {
                let msg = format!("unknown metric type {:?}", self.token);
                Ok(Err(self.error_at(start, msg)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metric::Summary;

    fn err(body: &str) -> (usize, usize, String) {
        let e = parse_text(body.as_bytes()).expect_err(body);
        (e.line, e.column, e.msg)
    }

    fn one(body: &str) -> ParsedFamily<'_> {
        let mut f = parse_text(body.as_bytes()).expect(body);
        assert_eq!(f.len(), 1, "{body}");
        f.remove(0)
    }

    #[test]
    fn borrows_from_the_body_where_it_can() {
        let f = one("m{a=\"x\",b=\"y\\\"z\"} 1\n");
        assert!(matches!(f.name, Cow::Borrowed("m")));
        assert!(matches!(f.metrics[0].labels[0].1, Cow::Borrowed("x")));
        assert_eq!(f.metrics[0].labels[1].1, "y\"z");
        assert_eq!(f.metrics[0].value, Value::Untyped(1.0));
    }

    #[test]
    fn lenient_where_go_is() {
        let f = one("  m { a = \"1\" , } 2\n\n#HELP m late\n");
        assert_eq!(f.help.as_deref(), Some("late"));
        assert_eq!(
            f.metrics[0].labels,
            vec![(Cow::Borrowed("a"), Cow::Borrowed("1"))]
        );
        let f = one("# TYPE m GAUGE\nm 1\n\t\n# comment\n   \n");
        assert_eq!(f.mtype, MetricType::Gauge);
        // Families without samples vanish; HELP keeps trailing blanks.
        let fams = parse_text(b"# TYPE x counter\n# HELP y  spaced  \ny 1\n").unwrap();
        assert_eq!(fams.len(), 1);
        assert_eq!(fams[0].help.as_deref(), Some("spaced  "));
        // Samples of one name merge even when interleaved.
        assert_eq!(
            parse_text(b"a 1\nb 1\na{x=\"1\"} 2\n").unwrap()[0]
                .metrics
                .len(),
            2
        );
        assert_eq!(parse_text(b"").unwrap(), vec![]);
    }

    #[test]
    fn timestamps_are_parsed_for_the_store_to_refuse() {
        assert_eq!(one("m 1 -1000\n").metrics[0].timestamp_ms, Some(-1000));
    }

    #[test]
    fn summaries_and_histograms_are_reassembled() {
        let f = one(
            "# TYPE s summary\ns{quantile=\"0.5\",a=\"1\"} 3\ns_sum{a=\"1\"} 4\ns_count{a=\"1\"} 5.9\ns{a=\"2\",quantile=\"0.9\"} 1\n",
        );
        assert_eq!(f.metrics.len(), 2);
        let Value::Summary(s) = &f.metrics[0].value else {
            panic!("not a summary")
        };
        assert_eq!(
            (s.count, s.sum, s.quantiles.clone()),
            (5, 4.0, vec![(0.5, 3.0)])
        );
        assert_eq!(
            f.metrics[0].labels,
            vec![(Cow::Borrowed("a"), Cow::Borrowed("1"))]
        );
        let f = one(
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\n",
        );
        let Value::Histogram(h) = &f.metrics[0].value else {
            panic!("not a histogram")
        };
        assert_eq!(
            (h.count, h.sum, h.buckets.clone()),
            (2, 3.0, vec![(1.0, 1), (f64::INFINITY, 2)])
        );
        // The Go parser marks "no quantile/le" with NaN, so NaN ones add nothing.
        let f = one("# TYPE s summary\ns{quantile=\"NaN\"} 1\ns_count 2\n");
        assert_eq!(
            f.metrics[0].value,
            Value::Summary(Box::new(Summary {
                count: 2,
                ..Summary::default()
            }))
        );
        // Before the TYPE line, suffixed names are families of their own.
        assert_eq!(
            parse_text(b"sm_count 1\n# TYPE sm summary\nsm{quantile=\"0.5\"} 1\n")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn errors_name_line_column_and_expectation() {
        let cases: &[(&str, (usize, usize, &str))] = &[
            ("m 1", (1, 4, "unexpected end of input stream")),
            ("m 1 \n", (1, 5, "expected integer as timestamp, got \"\"")),
            (
                "a 1\nm 1\r\n",
                (2, 3, "expected float as value, got \"1\\r\""),
            ),
            (
                "# TYPE m gauge \n",
                (1, 10, "unknown metric type \"gauge \""),
            ),
            (
                "m 1\n# TYPE m gauge\n",
                (
                    2,
                    10,
                    "second TYPE line for metric name \"m\", or TYPE reported after samples",
                ),
            ),
            (
                "# HELP m a\n# HELP m b\n",
                (2, 10, "second HELP line for metric name \"m\""),
            ),
            (
                "# HELP m a \\\"b\\\"\n",
                (1, 12, "invalid escape sequence '\\\"'"),
            ),
            ("m{a=\"\\t\"} 1\n", (1, 6, "invalid escape sequence '\\t'")),
            (
                "m{a=\"1\",a=\"2\"} 1\n",
                (1, 9, "duplicate label names for metric \"m\""),
            ),
            (
                "m{__name__=\"x\"} 1\n",
                (1, 3, "label name \"__name__\" is reserved"),
            ),
            (
                "m{1a=\"x\"} 1\n",
                (1, 3, "invalid label name for metric \"m\""),
            ),
            (
                "m{a=x} 1\n",
                (1, 5, "expected '\"' at start of label value, found 'x'"),
            ),
            (
                "m{a=\"x\n\"} 1\n",
                (1, 7, "label value \"x\" contains unescaped new-line"),
            ),
            (
                "m{a=\"x\" b=\"y\"} 1\n",
                (1, 9, "unexpected end of label value \"x\""),
            ),
            ("1m 1\n", (1, 1, "invalid metric name")),
            ("a-b 1\n", (1, 2, "expected float as value, got \"-b\"")),
            (
                "m 1_000\n",
                (1, 3, "expected float as value, got \"1_000\""),
            ),
            (
                "m 1e999\n",
                (1, 3, "expected float as value, got \"1e999\""),
            ),
            (
                "m 1 2 3\n",
                (1, 6, "spurious string after timestamp: \" 3\""),
            ),
            ("# TYPE x info\n", (1, 10, "unknown metric type \"info\"")),
            (
                "# TYPE s summary\ns{quantile=\"x\"} 1\n",
                (
                    2,
                    13,
                    "expected float as value for 'quantile' label, got \"x\"",
                ),
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"?\"} 1\n",
                (2, 14, "expected float as value for 'le' label, got \"?\""),
            ),
            (
                "# TYPE g gauge_histogram\ng 1\n",
                (2, 1, "unexpected type for metric name \"g\""),
            ),
            ("# HELP 1x y\n", (1, 8, "invalid metric name in comment")),
        ];
        for (body, (line, col, msg)) in cases {
            assert_eq!(err(body), (*line, *col, msg.to_string()), "{body:?}");
        }
        let e = parse_text(b"m{a=\"\xff\"} 1\n").unwrap_err();
        assert_eq!(
            (e.line, e.msg.starts_with("invalid label value")),
            (1, true)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Mutations of a body that exercises every state, from a fixed-seed xorshift.
        let seed = b"# HELP m h\\n\n# TYPE s summary\ns{quantile=\"0.5\",a=\"x\\\"\"} 1\ns_sum 2\n\
                     # TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nm{a=\"\xc3\xa9\"} -Inf 123\n\
                     {\"u.v\",\"b\\\"c\"=\"1\"} 3\n";
        let alphabet = b"{}=\",\\# \t\n\r01eE+-.:_aZqle\xff";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut body = seed.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = next() as usize % body.len();
                match next() % 3 {
                    0 => body[at] = alphabet[next() as usize % alphabet.len()],
                    1 => {
                        body.remove(at);
                    }
                    _ => body.insert(at, alphabet[next() as usize % alphabet.len()]),
                }
            }
            let cut = next() as usize % (body.len() + 1);
            let _ = parse_text(&body[..cut]);
            let _ = parse_text(&body);
            let _ = parse_text_with(&body[..cut], true);
            let _ = parse_text_with(&body, true);
        }
    }

    #[test]
    fn quoted_utf8_names_only_with_the_flag() {
        let body = "# TYPE \"a.b\" gauge\n{\"a.b\", \"c\\\"d\"=\"1\"} 2\nm{\"x.y\"=\"v\"} 1\n";
        assert_eq!(
            parse_text(body.as_bytes()).unwrap_err().msg,
            "invalid metric name in comment"
        );
        let f = parse_text_with(body.as_bytes(), true).unwrap();
        assert_eq!((&*f[0].name, f[0].mtype), ("a.b", MetricType::Gauge));
        assert_eq!(f[0].metrics[0].labels[0], ("c\"d".into(), "1".into()));
        assert_eq!((&*f[1].name, &*f[1].metrics[0].labels[0].0), ("m", "x.y"));
        for (body, msg) in [
            (
                "{\"a\",\"b\"} 1\n",
                "multiple metric names for metric \"a\"",
            ),
            ("{x=\"1\"} 1\n", "invalid metric name"),
            ("{} 1\n", "invalid metric name"),
            ("{\"a\" x} 1\n", "unexpected end of metric name 'x'"),
            ("{\"a\\t\"} 1\n", "invalid escape sequence '\\t'"),
        ] {
            let e = parse_text_with(body.as_bytes(), true).unwrap_err();
            assert_eq!(e.msg, msg, "{body:?}");
        }
    }

    #[test]
    fn error_text_keeps_the_go_prefix() {
        let e = parse_text(b"m 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "text format parsing error in line 1, column 4: unexpected end of input stream"
        );
    }
}
