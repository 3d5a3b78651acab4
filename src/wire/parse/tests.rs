//! The text parser's tests: Go's accepted and refused bodies, error texts, bounds.
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
    // The timestamp is the sample's own, not its family's first sample's.
    let f = one("m{a=\"1\"} 1\nm{a=\"2\"} 2 1000\n");
    let stamps: Vec<Option<i64>> = f.metrics.iter().map(|m| m.timestamp_ms).collect();
    assert_eq!(stamps, [None, Some(1000)]);
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

#[test]
fn plain_comments_are_skipped_to_their_line_end() {
    let fams = parse_text(b"# a plain comment\nm 1\n#another one\nn 2\n# x y z\n").unwrap();
    let names: Vec<&str> = fams.iter().map(|f| f.name.as_ref()).collect();
    assert_eq!(names, ["m", "n"]);
    assert_eq!(fams[1].metrics[0].value, Value::Untyped(2.0));
    // Lines are still counted after one.
    assert_eq!(err("# a plain comment\nm 1\nn{ 2\n").0, 3);
}

#[test]
fn quantile_and_le_are_special_only_in_their_own_type() {
    let labels = |f: &ParsedFamily<'_>| -> Vec<(String, String)> {
        f.metrics[0]
            .labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let f = one("m{a=\"1\",quantile=\"x\",le=\"y\"} 1\n");
    assert_eq!(
        labels(&f),
        pairs(&[("a", "1"), ("quantile", "x"), ("le", "y")])
    );
    // In a histogram, `quantile` is a label; in a summary, `le` is.
    let f = one(
        "# TYPE h histogram\nh_bucket{a=\"1\",quantile=\"q\",le=\"0.5\"} 1\nh_sum{a=\"1\",quantile=\"q\"} 3\nh_count{a=\"1\",quantile=\"q\"} 2\n",
    );
    assert_eq!(f.metrics.len(), 1);
    assert_eq!(labels(&f), pairs(&[("a", "1"), ("quantile", "q")]));
    assert_eq!(
        f.metrics[0].value,
        Value::Histogram(Box::new(crate::model::metric::Histogram {
            count: 2,
            sum: 3.0,
            buckets: vec![(0.5, 1)],
        }))
    );
    let f = one(
        "# TYPE s summary\ns{le=\"l\",a=\"1\",quantile=\"0.5\"} 1\ns_sum{le=\"l\",a=\"1\"} 3\n",
    );
    assert_eq!(f.metrics.len(), 1);
    assert_eq!(labels(&f), pairs(&[("le", "l"), ("a", "1")]));
}

#[test]
fn the_series_bound_counts_sample_lines() {
    let body = b"a 1\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\n";
    assert_eq!(parse_text_limited(body, false, 3).map(|f| f.len()), Ok(2));
    let e = parse_text_limited(body, false, 2).expect_err("a fourth line");
    assert_eq!(
        (e.line, e.msg.as_str()),
        (
            4,
            "too many series in one push: more than 2 (--push.max-series)"
        )
    );
}

#[test]
fn invalid_label_values_are_quoted_as_go_quotes_them() {
    // The Go gateway 1.5.1's answers to these two bodies: a value that is not UTF-8
    // (its last byte), with controls, spaces and format characters Go escapes.
    let quoted = |value: &str| {
        let mut body = format!("m{{a=\"{value}").into_bytes();
        body.extend_from_slice(b"\xff\"} 1\n");
        parse_text(&body).expect_err("not UTF-8").msg
    };
    assert_eq!(
        quoted("\x01\x0b\x7f\u{85}\u{2028}é\t"),
        r#"invalid label value "\x01\v\x7f\u0085\u2028é\t\xff""#
    );
    assert_eq!(
        quoted("\u{ad}\u{a0}😀\u{200b}\u{feff}\x07\x08\x0c\r\\\\\x1b"),
        r#"invalid label value "\u00ad\u00a0😀\u200b\ufeff\a\b\f\r\\\x1b\xff""#
    );
    // Tag characters (in flag emoji), private use, a format character.
    assert_eq!(
        quoted("\u{e0067}\u{e0020}\u{e000}\u{8e2}"),
        r#"invalid label value "\U000e0067\U000e0020\ue000\u08e2\xff""#
    );
}

#[test]
fn tokens_in_error_texts_are_quoted_as_go_quotes_them() {
    // The Go gateway 1.5.1's answers.
    assert_eq!(
        err("m 1\x01\n").2,
        r#"expected float as value, got "1\x01""#
    );
    assert_eq!(
        err("# TYPE m gau\x01ge\n").2,
        r#"unknown metric type "gau\x01ge""#
    );
}

#[test]
fn lines_are_counted_after_a_timestamp() {
    assert_eq!(err("m 1 1000\nn 2 2000\nn{ 3\n").0, 3);
}

#[test]
fn backslashes_in_a_type_are_dropped_as_go_drops_them() {
    // The Go gateway 1.5.1 stores `gau\ge` as a gauge and refuses `gauge\n` as "gaugen".
    assert_eq!(one("# TYPE m gau\\ge\nm 1\n").mtype, MetricType::Gauge);
    assert_eq!(
        err("# TYPE m gauge\\n\nm 1\n").2,
        "unknown metric type \"gaugen\""
    );
}

#[test]
fn a_help_ending_in_a_backslash_is_refused_at_the_backslash() {
    assert_eq!(
        err("# HELP m abc\\\nm 1\n"),
        (1, 13, "invalid escape sequence '\\\n'".to_string())
    );
}
