//! The protobuf decoder's tests: families, bounds, error offsets.
use super::*;

/// A delimited gauge family `name` with one metric labelled `a` = `value` (bytes).
fn family(name: &str, value: &[u8]) -> Vec<u8> {
    let mut label = vec![0x0a, 0x01, b'a', 0x12, value.len() as u8];
    label.extend_from_slice(value);
    let mut metric = vec![0x0a, label.len() as u8];
    metric.extend(label);
    metric.extend_from_slice(&[0x12, 0x09, 0x09]);
    metric.extend_from_slice(&1.0f64.to_le_bytes());
    let mut f = vec![0x0a, name.len() as u8];
    f.extend_from_slice(name.as_bytes());
    f.extend_from_slice(&[0x18, 0x01, 0x22, metric.len() as u8]);
    f.extend(metric);
    let mut out = vec![f.len() as u8];
    out.extend(f);
    out
}

#[test]
fn a_later_family_replaces_an_earlier_one_and_its_defects() {
    let body = [family("x", b"\xff"), family("x", b"ok")].concat();
    let d = decode_delimited(&body, false).unwrap();
    assert!(d.invalid.is_empty(), "{:?}", d.invalid);
    assert_eq!(d.families.len(), 1);
    assert_eq!(d.families[0].metrics[0].labels[0].1, "ok");
    let bad = family("y", b"\xff");
    assert_eq!(decode_delimited(&bad, false).unwrap().invalid.len(), 1);
}

#[test]
fn many_families_decode_in_linear_time() {
    let body: Vec<u8> = (0..50_000)
        .flat_map(|i| family(&format!("f{i}"), b"v"))
        .collect();
    assert_eq!(
        decode_delimited(&body, false).unwrap().families.len(),
        50_000
    );
}

#[test]
fn errors_name_the_byte_offset() {
    let e = decode_delimited(&[0x05, 0x0a, 0x03, b'a', b'b'], false)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "protobuf parsing error at byte 1: unexpected EOF"
    );
    let bad_name = family("1x", b"v");
    let e = decode_delimited(&bad_name, false).err().unwrap();
    assert_eq!(
        e.to_string(),
        "protobuf parsing error at byte 1: invalid metric name \"1x\""
    );
}

/// `v` as a protobuf varint.
fn varint(mut v: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

#[test]
fn lengths_past_one_byte_read_whole() {
    // A HELP of 300 bytes and a name of 200: two-byte lengths, the family's too.
    let (name, help) = ("n".repeat(200), "h".repeat(300));
    let mut f = vec![0x0a];
    f.extend(varint(name.len()));
    f.extend_from_slice(name.as_bytes());
    f.push(0x12);
    f.extend(varint(help.len()));
    f.extend_from_slice(help.as_bytes());
    // Type GAUGE, one metric with gauge value 2.
    f.extend_from_slice(&[0x18, 0x01, 0x22, 0x0b, 0x12, 0x09, 0x09]);
    f.extend_from_slice(&2.0f64.to_le_bytes());
    let mut body = varint(f.len());
    body.extend(f);
    let d = decode_delimited(&body, false).unwrap();
    assert_eq!(d.families[0].name, name);
    assert_eq!(d.families[0].help.as_deref(), Some(help.as_str()));
    assert_eq!(d.families[0].metrics[0].value, Value::Gauge(2.0));
}

#[test]
fn a_field_of_the_wrong_wire_type_is_refused() {
    // Field 1 (the name) as a varint.
    let e = decode_delimited(&[0x02, 0x08, 0x01], false).err().unwrap();
    assert_eq!(
        e.to_string(),
        "protobuf parsing error at byte 2: field 1 has wire type 0, want 2"
    );
}

#[test]
fn the_series_bound_is_checked_after_each_family() {
    let fams: Vec<Vec<u8>> = ["a", "b", "c"].iter().map(|n| family(n, b"v")).collect();
    let body = fams.concat();
    assert_eq!(
        decode_delimited_limited(&body, false, 3).map(|d| d.families.len()),
        Ok(3)
    );
    // Refused at the family that crosses the bound, named by where it ends.
    let e = decode_delimited_limited(&body, false, 2).err().unwrap();
    assert_eq!(
        (e.offset, e.msg.as_str()),
        (
            body.len(),
            "too many series in one push: more than 2 (--push.max-series)"
        )
    );
}

#[test]
fn a_family_s_name_and_type_are_refused_where_they_stand() {
    // The name's length byte is byte 2 of the body, past the family's length.
    let e = decode_delimited(&[0x03, 0x0a, 0x01, 0xff], false)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "protobuf parsing error at byte 2: metric name is not valid UTF-8"
    );
    // The type's value is byte 5 (after the name `m` and the type's key).
    let e = decode_delimited(&[0x05, 0x0a, 0x01, b'm', 0x18, 0x06], false)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "protobuf parsing error at byte 5: unknown metric type 6"
    );
    // Type 5 is a gauge histogram (which the store then refuses), not an unknown type.
    let mut f = family("g", b"v");
    f[5] = 0x05;
    let d = decode_delimited(&f, false).unwrap();
    assert_eq!(d.families[0].mtype, MetricType::GaugeHistogram);
}
