//! Go `encoding/gob`, as much as the Go gateway's persistence file needs: a decoder driven by the type definitions in the stream, and an encoder for our own values.
//!
//! A gob stream is a sequence of messages, each `uint length` then `int type id` and a
//! body. A negative id defines type `-id` (its body is a `wireType`); a positive id is a
//! value of that type. Unsigned integers take one byte below 128, else a byte holding
//! minus their byte count and the big-endian bytes; signed integers are folded into
//! unsigned ones (`i << 1`, or `!i << 1 | 1` when negative). Struct fields are sent as
//! field-number deltas ending with 0, zero values left out; a top-level value that is not
//! a struct is preceded by a 0 delta. Types with their own encoding (`GobEncoder`,
//! `BinaryMarshaler`, `TextMarshaler`, e.g. `time.Time`) travel as byte strings.

use std::collections::HashMap;
use std::fmt;

/// Where and why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GobError {
    pub offset: usize,
    pub msg: String,
}

impl fmt::Display for GobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gob: {} at byte {}", self.msg, self.offset)
    }
}

// Type ids gob predefines.
const T_BOOL: i64 = 1;
const T_INT: i64 = 2;
const T_UINT: i64 = 3;
const T_FLOAT: i64 = 4;
const T_BYTES: i64 = 5;
const T_STRING: i64 = 6;
const T_COMPLEX: i64 = 7;

/// A decoded value. Pointers are transparent in gob, so there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Complex(f64, f64),
    /// `[]byte`, or the bytes of a type with its own encoding.
    Bytes(Vec<u8>),
    Str(String),
    /// Fields present in the stream, by name.
    Struct(Vec<(String, Value)>),
    Map(Vec<(Value, Value)>),
    List(Vec<Value>),
}

impl Value {
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A type as its definition describes it.
#[derive(Debug, Clone)]
enum Wire {
    Struct(Vec<(String, i64)>),
    Map(i64, i64),
    Slice(i64),
    Array(i64),
    /// GobEncoder, BinaryMarshaler or TextMarshaler: a byte string.
    Opaque,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, GobError> {
        Err(GobError {
            offset: self.pos,
            msg: msg.into(),
        })
    }

    fn byte(&mut self) -> Result<u8, GobError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.err("unexpected end of data"),
        }
    }

    fn uint(&mut self) -> Result<u64, GobError> {
        let b = self.byte()?;
        if b < 0x80 {
            return Ok(u64::from(b));
        }
        let n = (b as i8).unsigned_abs() as usize;
        if n > 8 {
            return self.err(format!("invalid uint length {n}"));
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = v << 8 | u64::from(self.byte()?);
        }
        Ok(v)
    }

    fn int(&mut self) -> Result<i64, GobError> {
        let u = self.uint()?;
        Ok(if u & 1 == 1 {
            !(u >> 1) as i64
        } else {
            (u >> 1) as i64
        })
    }

    fn bytes(&mut self) -> Result<&'a [u8], GobError> {
        let n = self.uint()?;
        let end = self
            .pos
            .checked_add(n as usize)
            .filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Ok(b)
            }
            None => self.err(format!("length {n} runs past the end")),
        }
    }

    /// Go strings are bytes (the gateway's map keys hold 0xFF separators): invalid UTF-8
    /// becomes U+FFFD.
    fn string(&mut self) -> Result<String, GobError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    fn float(&mut self) -> Result<f64, GobError> {
        // Floats travel byte-reversed, so that small exponents make short uints.
        Ok(f64::from_bits(self.uint()?.swap_bytes()))
    }
}

/// Walks the fields of a struct in the stream: `visit(field number, reader)` decodes one.
fn fields<'a>(
    r: &mut Reader<'a>,
    mut visit: impl FnMut(usize, &mut Reader<'a>) -> Result<(), GobError>,
) -> Result<(), GobError> {
    let mut field: i64 = -1;
    loop {
        let delta = r.uint()?;
        if delta == 0 {
            return Ok(());
        }
        field = match i64::try_from(delta).ok().and_then(|d| field.checked_add(d)) {
            Some(f) => f,
            None => return r.err("field number out of range"),
        };
        if !(0..1024).contains(&field) {
            return r.err(format!("field number {field} out of range"));
        }
        visit(field as usize, r)?;
    }
}

/// `CommonType {Name string; Id typeId}`: the id.
fn common_type(r: &mut Reader<'_>) -> Result<i64, GobError> {
    let mut id = 0;
    fields(r, |f, r| {
        match f {
            0 => {
                r.string()?;
            }
            1 => id = r.int()?,
            _ => return r.err("unknown CommonType field"),
        }
        Ok(())
    })?;
    Ok(id)
}

/// A `wireType` definition body: which kind of type, and its parts.
fn wire_type(r: &mut Reader<'_>) -> Result<Wire, GobError> {
    let mut wire = None;
    fields(r, |f, r| {
        let mut elem = 0;
        let mut key = 0;
        let mut struct_fields = Vec::new();
        match f {
            // ArrayT {CommonType; Elem; Len}, SliceT {CommonType; Elem}
            0 | 1 => fields(r, |g, r| {
                match g {
                    0 => {
                        common_type(r)?;
                    }
                    1 => elem = r.int()?,
                    2 if f == 0 => {
                        r.int()?;
                    }
                    _ => return r.err("unknown array/slice type field"),
                }
                Ok(())
            })?,
            // StructT {CommonType; Field []fieldType{Name; Id}}
            2 => fields(r, |g, r| {
                match g {
                    0 => {
                        common_type(r)?;
                    }
                    1 => {
                        let n = r.uint()?;
                        for _ in 0..n {
                            let (mut name, mut id) = (String::new(), 0);
                            fields(r, |h, r| {
                                match h {
                                    0 => name = r.string()?,
                                    1 => id = r.int()?,
                                    _ => return r.err("unknown fieldType field"),
                                }
                                Ok(())
                            })?;
                            struct_fields.push((name, id));
                        }
                    }
                    _ => return r.err("unknown struct type field"),
                }
                Ok(())
            })?,
            // MapT {CommonType; Key; Elem}
            3 => fields(r, |g, r| {
                match g {
                    0 => {
                        common_type(r)?;
                    }
                    1 => key = r.int()?,
                    2 => elem = r.int()?,
                    _ => return r.err("unknown map type field"),
                }
                Ok(())
            })?,
            // GobEncoderT, BinaryMarshalerT, TextMarshalerT {CommonType}
            4..=6 => fields(r, |g, r| match g {
                0 => common_type(r).map(|_| ()),
                _ => r.err("unknown encoder type field"),
            })?,
            _ => return r.err(format!("unknown wireType field {f}")),
        }
        wire = Some(match f {
            0 => Wire::Array(elem),
            1 => Wire::Slice(elem),
            2 => Wire::Struct(struct_fields),
            3 => Wire::Map(key, elem),
            _ => Wire::Opaque,
        });
        Ok(())
    })?;
    match wire {
        Some(w) => Ok(w),
        None => r.err("empty type definition"),
    }
}

/// Decodes a stream's first value, a map, calling `entry` for each key and value as soon
/// as it is decoded: on an error the entries before it have been delivered (as Go's
/// decoder fills a map in place), and the error says where decoding stopped. Returns the
/// offset just past the value.
pub fn decode_map(buf: &[u8], mut entry: impl FnMut(Value, Value)) -> Result<usize, GobError> {
    let mut types: HashMap<i64, Wire> = HashMap::new();
    let mut r = Reader { buf, pos: 0 };
    loop {
        let len = r.uint()? as usize;
        // A cut-off message is still read as far as it goes, so that a truncated file
        // gives up the entries before the cut.
        let whole = r.pos.checked_add(len).filter(|&e| e <= buf.len());
        let end = whole.unwrap_or(buf.len());
        let mut m = Reader {
            buf: &buf[..end],
            pos: r.pos,
        };
        let id = m.int()?;
        if id == i64::MIN {
            return m.err("invalid type id");
        }
        if id < 0 {
            if whole.is_none() {
                return m.err(format!("message of {len} bytes runs past the end"));
            }
            let wire = wire_type(&mut m)?;
            types.insert(-id, wire);
            r.pos = end;
            continue;
        }
        let Some(Wire::Map(key, elem)) = types.get(&id).cloned() else {
            return m.err(format!("value of type {id} is not a map"));
        };
        if m.uint()? != 0 {
            return m.err("non-zero delta before a top-level value");
        }
        let d = Decoder { types: &types };
        let n = m.uint()?;
        for _ in 0..n {
            let k = d.value(&mut m, key, 0)?;
            let v = d.value(&mut m, elem, 0)?;
            entry(k, v);
        }
        if whole.is_none() {
            return m.err(format!("message of {len} bytes runs past the end"));
        }
        return Ok(end);
    }
}

struct Decoder<'t> {
    types: &'t HashMap<i64, Wire>,
}

impl Decoder<'_> {
    fn value(&self, r: &mut Reader<'_>, id: i64, depth: usize) -> Result<Value, GobError> {
        if depth > 64 {
            return r.err("types nested too deeply");
        }
        Ok(match id {
            T_BOOL => Value::Bool(r.uint()? != 0),
            T_INT => Value::Int(r.int()?),
            T_UINT => Value::Uint(r.uint()?),
            T_FLOAT => Value::Float(r.float()?),
            T_BYTES => Value::Bytes(r.bytes()?.to_vec()),
            T_STRING => Value::Str(r.string()?),
            T_COMPLEX => Value::Complex(r.float()?, r.float()?),
            _ => match self.types.get(&id) {
                None => return r.err(format!("unknown type id {id}")),
                Some(Wire::Opaque) => Value::Bytes(r.bytes()?.to_vec()),
                Some(Wire::Struct(defs)) => {
                    let mut out = Vec::new();
                    fields(r, |f, r| {
                        let Some((name, t)) = defs.get(f) else {
                            return r.err(format!("struct field {f} is not defined"));
                        };
                        out.push((name.clone(), self.value(r, *t, depth + 1)?));
                        Ok(())
                    })?;
                    Value::Struct(out)
                }
                Some(Wire::Map(k, e)) => {
                    let n = r.uint()?;
                    let mut out = Vec::new();
                    for _ in 0..n {
                        let key = self.value(r, *k, depth + 1)?;
                        out.push((key, self.value(r, *e, depth + 1)?));
                    }
                    Value::Map(out)
                }
                Some(Wire::Slice(e) | Wire::Array(e)) => {
                    let n = r.uint()?;
                    let mut out = Vec::new();
                    for _ in 0..n {
                        out.push(self.value(r, *e, depth + 1)?);
                    }
                    Value::List(out)
                }
            },
        })
    }
}

/// Builds a gob stream: type definitions, then values, each framed as a message.
#[derive(Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

/// Appends gob's unsigned integer encoding.
pub fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    out.push((-((8 - skip) as i8)) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

pub fn put_int(out: &mut Vec<u8>, v: i64) {
    let u = if v < 0 {
        (!(v as u64)) << 1 | 1
    } else {
        (v as u64) << 1
    };
    put_uint(out, u);
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A type definition's parts, as `wireType` lays them out.
pub enum Def<'a> {
    /// Name, then fields (name, type id).
    Struct(&'a str, &'a [(&'a str, i64)]),
    /// Name, key type, element type.
    Map(&'a str, i64, i64),
    /// A type with its own encoding (GobEncoder).
    GobEncoder(&'a str),
}

fn put_common(out: &mut Vec<u8>, name: &str, id: i64) {
    if !name.is_empty() {
        out.push(1);
        put_bytes(out, name.as_bytes());
        out.push(1);
    } else {
        out.push(2);
    }
    put_int(out, id);
    out.push(0);
}

impl Writer {
    fn message(&mut self, body: &[u8]) {
        put_uint(&mut self.out, body.len() as u64);
        self.out.extend_from_slice(body);
    }

    /// Defines type `id`.
    pub fn define(&mut self, id: i64, def: Def<'_>) {
        let mut b = Vec::new();
        put_int(&mut b, -id);
        match def {
            Def::Struct(name, fields) => {
                b.push(3); // StructT
                b.push(1);
                put_common(&mut b, name, id);
                b.push(1);
                put_uint(&mut b, fields.len() as u64);
                for (n, t) in fields {
                    b.push(1);
                    put_bytes(&mut b, n.as_bytes());
                    b.push(1);
                    put_int(&mut b, *t);
                    b.push(0);
                }
                b.push(0);
            }
            Def::Map(name, key, elem) => {
                b.push(4); // MapT
                b.push(1);
                put_common(&mut b, name, id);
                b.push(1);
                put_int(&mut b, key);
                b.push(1);
                put_int(&mut b, elem);
                b.push(0);
            }
            Def::GobEncoder(name) => {
                b.push(5); // GobEncoderT
                b.push(1);
                put_common(&mut b, name, id);
                b.push(0);
            }
        }
        b.push(0); // end of wireType
        self.message(&b);
    }

    /// Sends a top-level value of non-struct type `id` whose encoding is `body`.
    pub fn value(&mut self, id: i64, body: &[u8]) {
        let mut b = Vec::with_capacity(body.len() + 4);
        put_int(&mut b, id);
        b.push(0); // the singleton delta of a non-struct value
        b.extend_from_slice(body);
        self.message(&b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_in_gobs_encoding() {
        for (v, bytes) in [
            (0u64, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0xff, 0x80]),
            (256, &[0xfe, 0x01, 0x00]),
            (
                u64::MAX,
                &[0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ] {
            let mut out = Vec::new();
            put_uint(&mut out, v);
            assert_eq!(out, bytes);
            assert_eq!(Reader { buf: &out, pos: 0 }.uint(), Ok(v));
        }
        for v in [0i64, 1, -1, 65, -65, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_int(&mut out, v);
            assert_eq!(Reader { buf: &out, pos: 0 }.int(), Ok(v));
        }
        // Type 65 defined (-65) is sent as 0xff 0x81, as in the Go gateway's files.
        let mut out = Vec::new();
        put_int(&mut out, -65);
        assert_eq!(out, [0xff, 0x81]);
    }

    #[test]
    fn every_basic_type_decodes_as_go_encodes_it() {
        let mut w = Writer::default();
        w.define(65, Def::Map("M", T_UINT, 66));
        let fields = [
            ("B", T_BOOL),
            ("I", T_INT),
            ("U", T_UINT),
            ("F", T_FLOAT),
            ("C", T_COMPLEX),
            ("Y", T_BYTES),
            ("S", T_STRING),
        ];
        w.define(66, Def::Struct("S", &fields));
        let float = |out: &mut Vec<u8>, f: f64| put_uint(out, f.to_bits().swap_bytes());
        let mut body = Vec::new();
        put_uint(&mut body, 1);
        put_uint(&mut body, 7);
        body.push(1);
        put_uint(&mut body, 1);
        body.push(1);
        put_int(&mut body, -5);
        body.push(1);
        put_uint(&mut body, 300);
        body.push(1);
        float(&mut body, 1.5);
        body.push(1);
        float(&mut body, 2.0);
        float(&mut body, -0.5);
        body.push(1);
        put_bytes(&mut body, b"\x00\xff");
        body.push(1);
        put_bytes(&mut body, "é".as_bytes());
        body.push(0);
        w.value(65, &body);
        let mut got = Vec::new();
        assert_eq!(decode_map(&w.out, |k, v| got.push((k, v))), Ok(w.out.len()));
        let want = Value::Struct(vec![
            ("B".into(), Value::Bool(true)),
            ("I".into(), Value::Int(-5)),
            ("U".into(), Value::Uint(300)),
            ("F".into(), Value::Float(1.5)),
            ("C".into(), Value::Complex(2.0, -0.5)),
            ("Y".into(), Value::Bytes(vec![0, 0xff])),
            ("S".into(), Value::Str("é".into())),
        ]);
        assert_eq!(got, [(Value::Uint(7), want)]);
        // A length byte of 0x80 (-128) is no length gob writes.
        let e = Reader {
            buf: &[0x80],
            pos: 0,
        }
        .uint()
        .unwrap_err();
        assert_eq!(e.to_string(), "gob: invalid uint length 128 at byte 1");
    }

    /// An ArrayT (wireType field 0) or SliceT (field 1) definition of type `id`:
    /// CommonType, Elem, and Len if given.
    fn list_def(kind: u8, id: i64, elem: i64, len: Option<i64>) -> Vec<u8> {
        let mut b = Vec::new();
        put_int(&mut b, -id);
        b.push(kind + 1);
        b.push(1);
        put_common(&mut b, "T", id);
        b.push(1);
        put_int(&mut b, elem);
        if let Some(n) = len {
            b.push(1);
            put_int(&mut b, n);
        }
        b.extend_from_slice(&[0, 0]);
        b
    }

    #[test]
    fn arrays_and_slices_decode_as_go_encodes_them() {
        let mut w = Writer::default();
        // `type A [2]uint` and `type L []string`.
        w.message(&list_def(0, 67, T_UINT, Some(2)));
        w.message(&list_def(1, 68, T_STRING, None));
        w.define(65, Def::Map("M", T_STRING, 66));
        w.define(66, Def::Struct("S", &[("A", 67), ("L", 68)]));
        let mut body = Vec::new();
        put_uint(&mut body, 1);
        put_bytes(&mut body, b"k");
        body.push(1);
        for v in [2, 3, 300] {
            put_uint(&mut body, v);
        }
        body.push(1);
        put_uint(&mut body, 2);
        put_bytes(&mut body, b"x");
        put_bytes(&mut body, b"y");
        body.push(0);
        w.value(65, &body);
        let mut got = Vec::new();
        assert_eq!(decode_map(&w.out, |_, v| got.push(v)), Ok(w.out.len()));
        assert_eq!(
            got,
            [Value::Struct(vec![
                (
                    "A".into(),
                    Value::List(vec![Value::Uint(3), Value::Uint(300)])
                ),
                (
                    "L".into(),
                    Value::List(vec![Value::Str("x".into()), Value::Str("y".into())])
                ),
            ])]
        );
        // A slice type has no length: a third field in its definition is refused.
        let mut bad = Writer::default();
        bad.message(&list_def(1, 69, T_STRING, Some(2)));
        let e = decode_map(&bad.out, |_, _| {}).unwrap_err();
        assert_eq!(e.msg, "unknown array/slice type field");
    }

    /// A stream whose one value is a map of one entry: key 1, then `value` of type `elem`,
    /// after `defs`.
    fn one_entry(defs: impl FnOnce(&mut Writer), elem: i64, value: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        defs(&mut w);
        w.define(65, Def::Map("M", T_UINT, elem));
        let mut body = vec![1, 1];
        body.extend_from_slice(value);
        w.value(65, &body);
        w.out
    }

    #[test]
    fn nesting_is_bounded_at_64_levels() {
        // A chain of `n` struct types, each holding the next, the last a uint.
        let chain = |n: i64| {
            let defs = |w: &mut Writer| {
                for i in 0..n {
                    let inner = if i + 1 == n { T_UINT } else { 67 + i };
                    w.define(66 + i, Def::Struct("S", &[("F", inner)]));
                }
            };
            let mut value = vec![1; n as usize];
            value.push(5);
            value.extend(std::iter::repeat_n(0, n as usize));
            decode_map(&one_entry(defs, 66, &value), |_, _| {}).map(drop)
        };
        assert_eq!(chain(64), Ok(()), "the uint at depth 64");
        let e = chain(65).unwrap_err();
        assert_eq!(e.msg, "types nested too deeply");
        // Types that hold themselves: a struct, a map by its key and by its element, a
        // slice, each nested 100 deep, are refused, not followed down the stack.
        let deep = |def: Def<'static>, one: &[u8], end: &[u8]| {
            let mut value = one.repeat(100);
            value.extend_from_slice(end);
            let defs = |w: &mut Writer| w.define(66, def);
            decode_map(&one_entry(defs, 66, &value), |_, _| {}).map_err(|e| e.msg)
        };
        let refused = Err("types nested too deeply".to_string());
        assert_eq!(deep(Def::Struct("S", &[("F", 66)]), &[1], &[0]), refused);
        assert_eq!(deep(Def::Map("K", 66, T_UINT), &[1], &[0]), refused);
        assert_eq!(deep(Def::Map("E", T_UINT, 66), &[1, 1], &[0]), refused);
        let mut w = Writer::default();
        w.message(&list_def(1, 66, 66, None));
        w.define(65, Def::Map("M", T_UINT, 66));
        let mut body = vec![1, 1];
        body.extend_from_slice(&[1; 100]);
        body.push(0);
        w.value(65, &body);
        let e = decode_map(&w.out, |_, _| {}).unwrap_err();
        assert_eq!(e.msg, "types nested too deeply");
        // Type id 0 is no definition (those are negative): a value of an unknown type.
        let e = decode_map(&[0x02, 0x00, 0x00], |_, _| {}).unwrap_err();
        assert_eq!(e.msg, "value of type 0 is not a map");
    }

    #[test]
    fn a_map_of_structs_round_trips() {
        let mut w = Writer::default();
        w.define(65, Def::Map("M", T_STRING, 66));
        w.define(66, Def::Struct("S", &[("A", T_STRING), ("B", 67)]));
        w.define(67, Def::GobEncoder("T"));
        let mut body = Vec::new();
        put_uint(&mut body, 2);
        for (k, a, b) in [("k1", "x", &b"\x01\x02"[..]), ("k2", "", &b""[..])] {
            put_bytes(&mut body, k.as_bytes());
            if !a.is_empty() {
                body.push(1);
                put_bytes(&mut body, a.as_bytes());
                body.push(1);
            } else {
                body.push(2);
            }
            put_bytes(&mut body, b);
            body.push(0);
        }
        w.value(65, &body);
        let mut got = Vec::new();
        let end = decode_map(&w.out, |k, v| got.push((k, v))).unwrap();
        assert_eq!(end, w.out.len());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, Value::Str("k1".into()));
        assert_eq!(got[0].1.field("A"), Some(&Value::Str("x".into())));
        assert_eq!(got[0].1.field("B"), Some(&Value::Bytes(vec![1, 2])));
        assert_eq!(got[1].1.field("A"), None);
        // Cut anywhere: an error, never a panic, and only whole entries delivered.
        for cut in 0..w.out.len() {
            let mut n = 0;
            assert!(decode_map(&w.out[..cut], |_, _| n += 1).is_err());
            assert!(n <= 1);
        }
    }
}
