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
            return Ok(self.error(format!(
                "invalid label name for metric {}",
                go_quote(name.as_bytes())
            )));
        }
        self.skip_blank_tab_if_current()?;
        if self.name_in_braces && self.cur != b'=' {
            // The name of a `{`-line: `{"a.b"}` or `{"a.b",x="y"}`.
            if !nameless {
                let name = self.families[self.mf].name.clone();
                return Ok(self.error(format!(
                    "multiple metric names for metric {}",
                    go_quote(name.as_bytes())
                )));
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
                return Ok(self.token_error(format!(
                    "duplicate label names for metric {}",
                    go_quote(name.as_bytes())
                )));
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
                    let msg = format!(
                        "expected float as value for 'quantile' label, got {}",
                        go_quote(value.as_bytes())
                    );
                    return Ok(Err(self.error_at(value_start, msg)));
                }
            }
        } else if mtype == MetricType::Histogram && name == "le" {
            match float::parse_go(&value) {
                Some(b) => self.bucket = Some(b).filter(|b| !b.is_nan()),
                None => {
                    let msg = format!(
                        "expected float as value for 'le' label, got {}",
                        go_quote(value.as_bytes())
                    );
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
            _ => Ok(self.error(format!(
                "unexpected end of label value {}",
                go_quote(value.as_bytes())
            ))),
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
                let msg = format!(
                    "expected float as value, got {}",
                    go_quote(self.token.as_bytes())
                );
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
                let msg = format!(
                    "unexpected type for metric name {}",
                    go_quote(name.as_bytes())
                );
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
                let msg = format!(
                    "expected integer as timestamp, got {}",
                    go_quote(self.token.as_bytes())
                );
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
                format!(
                    "spurious string after timestamp: {}",
                    go_quote(rest.as_bytes())
                ),
            )));
        }
        self.pos = rest_start + 1;
        self.cur = b'\n';
        Ok(Ok(Some(State::StartOfLine)))
    }

    fn reading_help(&mut self) -> Result<Step<'a>, Eof> {
        if self.families[self.mf].help.is_some() {
            let name = self.families[self.mf].name.clone();
            return Ok(self.error(format!(
                "second HELP line for metric name {}",
                go_quote(name.as_bytes())
            )));
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
                "second TYPE line for metric name {}, or TYPE reported after samples",
                go_quote(name.as_bytes())
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
                let msg = format!("unknown metric type {}", go_quote(self.token.as_bytes()));
                Ok(Err(self.error_at(start, msg)))
            }
        }
    }
}

#[cfg(test)]
mod tests;
