//! Delimited protobuf `io.prometheus.client.MetricFamily` push bodies, decoded by hand.
//!
//! Only the fields the gateway uses are read (names, HELP, type, labels, the classic value
//! fields, timestamps); unknown and newer fields are skipped by wire type, as protobuf
//! readers must. A malformed body is an error naming its byte offset.

use crate::model::metric::{Histogram, MetricType, Summary, Value, block_pairs, is_metric_name};
use crate::model::names::{self, Escaping};
use crate::wire::parse::{ParsedFamily, ParsedMetric};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Why a protobuf body was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub msg: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "protobuf parsing error at byte {}: {}",
            self.offset, self.msg
        )
    }
}

impl std::error::Error for DecodeError {}

/// What a body holds: its families (a repeated name replaces the earlier family, as in the
/// Go gateway), and the label values that are not UTF-8, which the Go gateway refuses in
/// its consistency check (so the failure is recorded) rather than as a bad body.
pub struct Decoded<'a> {
    pub families: Vec<ParsedFamily<'a>>,
    pub invalid: Vec<String>,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the whole body, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Reader<'a> {
        Reader { buf, pos: 0, base }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn err(&self, msg: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: self.base + self.pos,
            msg: msg.into(),
        }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("unexpected EOF"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint overflows 64 bits"))
    }

    fn key(&mut self) -> Result<(u64, u8), DecodeError> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(self.err("unexpected EOF"));
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn double(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.fixed64()?))
    }

    /// A length-delimited field, as a reader of its own.
    fn message(&mut self) -> Result<Reader<'a>, DecodeError> {
        let len = self.varint()?;
        let base = self.base + self.pos;
        let len = usize::try_from(len).map_err(|_| self.err("length out of range"))?;
        Ok(Reader::new(self.take(len)?, base))
    }

    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.message().map(drop),
            FIXED32 => self.take(4).map(drop),
            w => Err(self.err(format!("unsupported wire type {w}"))),
        }
    }

    /// Expects `wire` for `field`, else names the mismatch.
    fn expect(&self, field: u64, wire: u8, want: u8) -> Result<(), DecodeError> {
        if wire == want {
            Ok(())
        } else {
            Err(self.err(format!("field {field} has wire type {wire}, want {want}")))
        }
    }
}

/// Decodes a whole delimited body: length-prefixed messages until a clean end.
/// `utf8_names`: a family name may be any non-empty UTF-8 (`--push.enable-utf8-names`).
#[cfg(test)]
pub fn decode_delimited(body: &[u8], utf8_names: bool) -> Result<Decoded<'_>, DecodeError> {
    decode_delimited_limited(body, utf8_names, usize::MAX)
}

/// Like `decode_delimited`, refusing a body with more than `max_series` metrics once the
/// family that crosses the bound is read.
pub fn decode_delimited_limited(
    body: &[u8],
    utf8_names: bool,
    max_series: usize,
) -> Result<Decoded<'_>, DecodeError> {
    let mut r = Reader::new(body, 0);
    let mut series = 0usize;
    // Per family: the family and the non-UTF-8 label values it holds; a later family of
    // the same name replaces both, as Go's map does.
    let mut families: Vec<(ParsedFamily<'_>, Vec<String>)> = Vec::new();
    let mut by_name: HashMap<Cow<'_, str>, usize> = HashMap::new();
    while !r.at_end() {
        let mut m = r.message()?;
        let mut invalid = Vec::new();
        let offset = r.base + r.pos;
        let family = decode_family(&mut m, &mut invalid, utf8_names)?;
        series = series.saturating_add(family.metrics.len());
        if series > max_series {
            return Err(DecodeError {
                offset,
                msg: format!(
                    "too many series in one push: more than {max_series} (--push.max-series)"
                ),
            });
        }
        match by_name.get(&family.name) {
            Some(&i) => families[i] = (family, invalid),
            None => {
                by_name.insert(family.name.clone(), families.len());
                families.push((family, invalid));
            }
        }
    }
    let mut out = Decoded {
        families: Vec::new(),
        invalid: Vec::new(),
    };
    // Families without metrics are dropped, as the text parser drops them.
    for (family, invalid) in families.into_iter().filter(|(f, _)| !f.metrics.is_empty()) {
        out.families.push(family);
        out.invalid.extend(invalid);
    }
    Ok(out)
}

/// Decodes one (not length-delimited) `MetricFamily` message, as the Go gateway's
/// persistence file holds them; also the label values that are not UTF-8, if any.
pub fn decode_message(
    message: &[u8],
    utf8_names: bool,
) -> Result<(ParsedFamily<'_>, Vec<String>), DecodeError> {
    let mut r = Reader::new(message, 0);
    let mut invalid = Vec::new();
    let family = decode_family(&mut r, &mut invalid, utf8_names)?;
    Ok((family, invalid))
}

fn string<'a>(r: &mut Reader<'a>) -> Result<Result<&'a str, &'a [u8]>, DecodeError> {
    let len = r.varint()?;
    let len = usize::try_from(len).map_err(|_| r.err("length out of range"))?;
    let bytes = r.take(len)?;
    Ok(std::str::from_utf8(bytes).map_err(|_| bytes))
}

fn utf8<'a>(r: &mut Reader<'a>, what: &str) -> Result<&'a str, DecodeError> {
    let start = r.pos;
    match string(r)? {
        Ok(s) => Ok(s),
        Err(_) => Err(DecodeError {
            offset: r.base + start,
            msg: format!("{what} is not valid UTF-8"),
        }),
    }
}

fn metric_type(n: u64) -> Option<MetricType> {
    Some(match n {
        0 => MetricType::Counter,
        1 => MetricType::Gauge,
        2 => MetricType::Summary,
        3 => MetricType::Untyped,
        4 => MetricType::Histogram,
        5 => MetricType::GaugeHistogram,
        _ => return None,
    })
}

fn decode_family<'a>(
    r: &mut Reader<'a>,
    invalid: &mut Vec<String>,
    utf8_names: bool,
) -> Result<ParsedFamily<'a>, DecodeError> {
    let start = r.base;
    let mut name = "";
    let mut help = None;
    // proto2 default: a family without a type is a counter.
    let mut mtype = MetricType::Counter;
    let mut metrics = Vec::new();
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect(field, wire, LEN)?;
                name = utf8(r, "metric name")?;
            }
            2 => {
                r.expect(field, wire, LEN)?;
                // Go keeps any bytes; a text scrape could not show invalid UTF-8 either.
                help = Some(match string(r)? {
                    Ok(h) => Cow::Borrowed(h),
                    Err(bytes) => Cow::Owned(String::from_utf8_lossy(bytes).into_owned()),
                });
            }
            3 => {
                r.expect(field, wire, VARINT)?;
                let at = r.pos;
                let n = r.varint()?;
                mtype = metric_type(n).ok_or_else(|| DecodeError {
                    offset: r.base + at,
                    msg: format!("unknown metric type {n}"),
                })?;
            }
            4 => {
                r.expect(field, wire, LEN)?;
                let mut m = r.message()?;
                metrics.push(decode_metric(&mut m, invalid)?);
            }
            _ => r.skip(wire)?,
        }
    }
    // Unlike the Go gateway, refuse names its text exposition could not print.
    let valid = if utf8_names {
        !name.is_empty()
    } else {
        is_metric_name(name)
    };
    if !valid {
        return Err(DecodeError {
            offset: start,
            msg: format!("invalid metric name {name:?}"),
        });
    }
    // A metric's value is the field its family's type names; another one (or none) makes
    // the consistency check refuse the push, as in the Go gateway.
    let metrics = metrics
        .into_iter()
        .map(|(labels, values, timestamp_ms): RawMetric<'a>| {
            let fits = values.iter().position(|(v, _)| v.fits(mtype));
            let chosen = match fits {
                Some(i) => values.into_iter().nth(i),
                None => values.into_iter().next(),
            };
            let (value, raw) = chosen.unwrap_or((Value::Missing, None));
            ParsedMetric {
                labels,
                value,
                timestamp_ms,
                raw,
            }
        })
        .collect();
    Ok(ParsedFamily {
        name: Cow::Borrowed(name),
        help,
        mtype,
        metrics,
    })
}

fn single_value(r: &mut Reader<'_>) -> Result<f64, DecodeError> {
    let mut v = 0.0;
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, FIXED64) => v = r.double()?,
            _ => r.skip(wire)?,
        }
    }
    Ok(v)
}

fn decode_summary(r: &mut Reader<'_>) -> Result<Summary, DecodeError> {
    let mut s = Summary::default();
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, VARINT) => s.count = r.varint()?,
            (2, FIXED64) => s.sum = r.double()?,
            (3, LEN) => {
                let mut q = r.message()?;
                let (mut quantile, mut value) = (0.0, 0.0);
                while !q.at_end() {
                    let (f, w) = q.key()?;
                    match (f, w) {
                        (1, FIXED64) => quantile = q.double()?,
                        (2, FIXED64) => value = q.double()?,
                        _ => q.skip(w)?,
                    }
                }
                s.quantiles.push((quantile, value));
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(s)
}

fn decode_histogram(r: &mut Reader<'_>) -> Result<Histogram, DecodeError> {
    let mut h = Histogram::default();
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, VARINT) => h.count = r.varint()?,
            (2, FIXED64) => h.sum = r.double()?,
            (3, LEN) => {
                let mut b = r.message()?;
                let (mut count, mut bound) = (0, 0.0);
                while !b.at_end() {
                    let (f, w) = b.key()?;
                    match (f, w) {
                        (1, VARINT) => count = b.varint()?,
                        (2, FIXED64) => bound = b.double()?,
                        _ => b.skip(w)?,
                    }
                }
                h.buckets.push((bound, count));
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(h)
}

/// A value with, if it has fields the text format cannot carry, its message verbatim.
type RawValue<'a> = (Value, Option<&'a [u8]>);

/// Labels, every value field present, and the timestamp of one metric.
type RawMetric<'a> = (
    Vec<(Cow<'a, str>, Cow<'a, str>)>,
    Vec<RawValue<'a>>,
    Option<i64>,
);

/// Whether a message holds a field outside `known`; with `bucket_known`, also whether a
/// field-3 sub-message (a histogram bucket) holds one outside `bucket_known`.
fn has_other_fields(msg: &[u8], known: &[u64], bucket_known: &[u64]) -> Result<bool, DecodeError> {
    let mut r = Reader::new(msg, 0);
    while !r.at_end() {
        let (field, wire) = r.key()?;
        if !known.contains(&field) {
            return Ok(true);
        }
        if field == 3 && wire == LEN && !bucket_known.is_empty() {
            let bucket = r.message()?;
            if has_other_fields(bucket.buf, bucket_known, &[])? {
                return Ok(true);
            }
        } else {
            r.skip(wire)?;
        }
    }
    Ok(false)
}

/// The value message itself when it carries more than its text form shows.
fn raw_if_rich<'a>(
    msg: &Reader<'a>,
    known: &[u64],
    bucket_known: &[u64],
) -> Result<Option<&'a [u8]>, DecodeError> {
    Ok(has_other_fields(msg.buf, known, bucket_known)?.then_some(msg.buf))
}

fn decode_metric<'a>(
    r: &mut Reader<'a>,
    invalid: &mut Vec<String>,
) -> Result<RawMetric<'a>, DecodeError> {
    let mut labels = Vec::new();
    let mut values = Vec::new();
    let mut timestamp_ms = None;
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect(field, wire, LEN)?;
                let mut p = r.message()?;
                let (mut name, mut val): (Cow<'a, str>, Cow<'a, str>) =
                    (Cow::Borrowed(""), Cow::Borrowed(""));
                let mut bad_value = None;
                while !p.at_end() {
                    let (f, w) = p.key()?;
                    match (f, w) {
                        // A name that is not UTF-8 turns into one the check refuses
                        // (recording the failure, as Go's check does).
                        (1, LEN) => {
                            name = match string(&mut p)? {
                                Ok(n) => Cow::Borrowed(n),
                                Err(bytes) => {
                                    Cow::Owned(String::from_utf8_lossy(bytes).into_owned())
                                }
                            }
                        }
                        (2, LEN) => {
                            val = match string(&mut p)? {
                                Ok(s) => Cow::Borrowed(s),
                                Err(bytes) => {
                                    bad_value = Some(bytes.escape_ascii().to_string());
                                    Cow::Owned(String::from_utf8_lossy(bytes).into_owned())
                                }
                            };
                        }
                        _ => p.skip(w)?,
                    }
                }
                if let Some(shown) = bad_value {
                    invalid.push(format!(
                        "a metric has a label named {name:?} whose value is not utf8: \"{shown}\""
                    ));
                }
                labels.push((name, val));
            }
            2 | 3 | 5 => {
                r.expect(field, wire, LEN)?;
                let mut m = r.message()?;
                // A counter may carry an exemplar (2) and a created timestamp (3).
                let raw = raw_if_rich(&m, &[1], &[])?;
                let v = single_value(&mut m)?;
                let value = match field {
                    2 => Value::Gauge(v),
                    3 => Value::Counter(v),
                    _ => Value::Untyped(v),
                };
                values.push((value, raw));
            }
            4 => {
                r.expect(field, wire, LEN)?;
                let mut m = r.message()?;
                let raw = raw_if_rich(&m, &[1, 2, 3], &[])?;
                values.push((Value::Summary(Box::new(decode_summary(&mut m)?)), raw));
            }
            6 => {
                r.expect(field, wire, VARINT)?;
                timestamp_ms = Some(r.varint()? as i64);
            }
            7 => {
                r.expect(field, wire, LEN)?;
                let mut m = r.message()?;
                // Native buckets, float counts and exemplars only travel in protobuf.
                let raw = raw_if_rich(&m, &[1, 2, 3], &[1, 2])?;
                values.push((Value::Histogram(Box::new(decode_histogram(&mut m)?)), raw));
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((labels, values, timestamp_ms))
}

/// The `Content-Type` of a delimited protobuf scrape (and push).
pub const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire: u8) {
    put_varint(out, field << 3 | u64::from(wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_double(out: &mut Vec<u8>, field: u64, v: f64) {
    put_key(out, field, FIXED64);
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

fn put_uint(out: &mut Vec<u8>, field: u64, v: u64) {
    put_key(out, field, VARINT);
    put_varint(out, v);
}

fn type_number(t: MetricType) -> u64 {
    match t {
        MetricType::Counter => 0,
        MetricType::Gauge => 1,
        MetricType::Summary => 2,
        MetricType::Untyped => 3,
        MetricType::Histogram => 4,
        MetricType::GaugeHistogram => 5,
    }
}

/// The `Metric` field number of a value.
fn value_field(value: &Value) -> u64 {
    match value {
        Value::Gauge(_) => 2,
        Value::Counter(_) => 3,
        Value::Summary(_) => 4,
        Value::Untyped(_) => 5,
        Value::Histogram(_) => 7,
        Value::Missing => 0,
    }
}

fn encode_metric(
    block: &str,
    value: &Value,
    raw: Option<&[u8]>,
    escaping: Option<Escaping>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    for (name, v) in block_pairs(block) {
        let name = match escaping {
            Some(scheme) => names::output(name, scheme),
            None => Cow::Borrowed(name),
        };
        let mut pair = Vec::with_capacity(name.len() + v.len() + 4);
        put_bytes(&mut pair, 1, name.as_bytes());
        put_bytes(&mut pair, 2, v.as_bytes());
        put_bytes(&mut m, 1, &pair);
    }
    if let Some(raw) = raw {
        put_bytes(&mut m, value_field(value), raw);
        return m;
    }
    let mut inner = Vec::new();
    match value {
        Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => {
            put_double(&mut inner, 1, *v);
            put_bytes(&mut m, value_field(value), &inner);
        }
        Value::Summary(s) => {
            put_uint(&mut inner, 1, s.count);
            put_double(&mut inner, 2, s.sum);
            for (q, v) in &s.quantiles {
                let mut qm = Vec::with_capacity(18);
                put_double(&mut qm, 1, *q);
                put_double(&mut qm, 2, *v);
                put_bytes(&mut inner, 3, &qm);
            }
            put_bytes(&mut m, 4, &inner);
        }
        Value::Histogram(h) => {
            put_uint(&mut inner, 1, h.count);
            put_double(&mut inner, 2, h.sum);
            for (bound, count) in &h.buckets {
                let mut bm = Vec::with_capacity(20);
                put_uint(&mut bm, 1, *count);
                put_double(&mut bm, 2, *bound);
                put_bytes(&mut inner, 3, &bm);
            }
            put_bytes(&mut m, 7, &inner);
        }
        Value::Missing => {}
    }
    m
}

/// Appends one length-delimited `MetricFamily`; metrics are (label block, value).
/// One metric to encode: its label block, its value, and the value message verbatim when
/// the push carried more than the value shows.
pub type EncodeMetric<'a> = (&'a str, Value, Option<Vec<u8>>);

/// Appends one length-delimited `MetricFamily`.
pub fn encode_family(
    out: &mut Vec<u8>,
    name: &str,
    help: Option<&str>,
    mtype: MetricType,
    metrics: &[EncodeMetric<'_>],
    escaping: Option<Escaping>,
) {
    let f = encode_message(name, help, mtype, metrics, escaping);
    put_varint(out, f.len() as u64);
    out.extend_from_slice(&f);
}

/// One `MetricFamily` message, not length-delimited (see `encode_family`).
pub fn encode_message(
    name: &str,
    help: Option<&str>,
    mtype: MetricType,
    metrics: &[EncodeMetric<'_>],
    escaping: Option<Escaping>,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(64 + metrics.len() * 48);
    put_bytes(&mut f, 1, name.as_bytes());
    if let Some(h) = help {
        put_bytes(&mut f, 2, h.as_bytes());
    }
    put_uint(&mut f, 3, type_number(mtype));
    for (block, value, raw) in metrics {
        put_bytes(
            &mut f,
            4,
            &encode_metric(block, value, raw.as_deref(), escaping),
        );
    }
    f
}

#[cfg(test)]
mod tests;
