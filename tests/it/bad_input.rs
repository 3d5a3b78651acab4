//! Malformed pushes, against the real binary.
//!
//! Every request in these tables is refused with a 4xx whose body carries the Go
//! Pushgateway 1.5.1 text (parse errors with the column we add), and leaves the store as
//! it was: `/metrics` (own families aside) and `/api/v1/metrics` byte for byte. The
//! writer's rejections (timestamps, inconsistencies) record the failure time of the
//! group pushed to, exactly as the Go gateway does, and change nothing else.
//!
//! A case is one line: name, method, path, headers, body, expected status, a substring
//! the response body must contain. Each case runs on a fresh gateway holding the same
//! baseline, so no case can disturb another. Every 405 must also carry the push URL's
//! `Allow` header.

use crate::common::{Gateway, Response, pushed_part};
use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

/// One malformed request and the answer it must get.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    status: u16,
    /// A substring of the response body.
    msg: &'static str,
}

const fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    status: u16,
    msg: &'static str,
) -> Case {
    Case {
        name,
        method,
        path,
        headers,
        body,
        status,
        msg,
    }
}

/// A group the baseline does not have.
const NEW: &str = "/metrics/job/bad";
/// A group of the baseline.
const BASE: &str = "/metrics/job/base/instance/i1";
const NO_HEADERS: &[(&str, &str)] = &[];
const TEXT: &[(&str, &str)] = &[("Content-Type", "text/plain; version=0.0.4")];
const GZIP: &[(&str, &str)] = &[("Content-Encoding", "gzip")];
const PROTOBUF: &[(&str, &str)] = &[(
    "Content-Type",
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
)];

const PUSH_ALLOW: &str = "DELETE, OPTIONS, POST, PUT";

/// What every case starts from: two groups, every metric type, a HELP text.
const BASELINE: &[(&str, &str)] = &[
    (
        BASE,
        "# HELP base_counter A counter.\n\
         # TYPE base_counter counter\n\
         base_counter{code=\"200\"} 5\n\
         base_counter{code=\"500\"} 1\n\
         # TYPE base_gauge gauge\n\
         base_gauge 3.5\n\
         # TYPE sm summary\n\
         sm{quantile=\"0.5\"} 1\n\
         sm_sum 2\n\
         sm_count 3\n",
    ),
    (
        "/metrics/job/other",
        "# TYPE other_hist histogram\n\
         other_hist_bucket{le=\"1\"} 1\n\
         other_hist_bucket{le=\"+Inf\"} 2\n\
         other_hist_sum 3\n\
         other_hist_count 2\n\
         plain 1\n\
         lat_bucket 1\n",
    ),
];

/// Bodies the text parser refuses: 400, nothing changes. Columns are 1-based characters.
#[rustfmt::skip]
const PARSE_ERRORS: &[Case] = &[
    case("no_final_newline", "PUT", NEW, NO_HEADERS, b"x 1", 400, "text format parsing error in line 1, column 4: unexpected end of input stream"),
    case("no_final_newline_in_help", "PUT", NEW, NO_HEADERS, b"# HELP x abc", 400, "text format parsing error in line 1, column 13: unexpected end of input stream"),
    case("eof_inside_labels", "POST", BASE, NO_HEADERS, b"x{a=\"1\"", 400, "text format parsing error in line 1, column 8: unexpected end of input stream"),
    case("trailing_blank_after_value", "PUT", NEW, NO_HEADERS, b"x 1 \n", 400, "text format parsing error in line 1, column 5: expected integer as timestamp, got \"\""),
    case("crlf_after_value", "PUT", BASE, NO_HEADERS, b"x 1\r\n", 400, "text format parsing error in line 1, column 3: expected float as value, got \"1\\r\""),
    case("crlf_after_type", "PUT", NEW, NO_HEADERS, b"# TYPE x gauge\r\nx 1\r\n", 400, "text format parsing error in line 1, column 10: unknown metric type \"gauge\\r\""),
    case("type_with_trailing_blank", "PUT", NEW, NO_HEADERS, b"# TYPE x counter \nx 1\n", 400, "text format parsing error in line 1, column 10: unknown metric type \"counter \""),
    case("unknown_type", "PUT", NEW, NO_HEADERS, b"x 0\n# TYPE y foo\ny 1\n", 400, "text format parsing error in line 2, column 10: unknown metric type \"foo\""),
    case("type_after_samples", "PUT", NEW, NO_HEADERS, b"x 1\n# TYPE x counter\n", 400, "text format parsing error in line 2, column 10: second TYPE line for metric name \"x\", or TYPE reported after samples"),
    case("duplicate_help", "POST", BASE, NO_HEADERS, b"# HELP x a\n# HELP x b\nx 1\n", 400, "text format parsing error in line 2, column 10: second HELP line for metric name \"x\""),
    case("duplicate_type", "PUT", NEW, NO_HEADERS, b"# TYPE x counter\n# TYPE x gauge\nx 1\n", 400, "text format parsing error in line 2, column 10: second TYPE line for metric name \"x\", or TYPE reported after samples"),
    case("retype_after_samples", "PUT", NEW, NO_HEADERS, b"# TYPE c counter\nc{a=\"1\"} 1\n# TYPE c gauge\n", 400, "text format parsing error in line 3, column 10: second TYPE line for metric name \"c\", or TYPE reported after samples"),
    case("invalid_escape_in_label_value", "PUT", NEW, NO_HEADERS, b"x{a=\"\\t\"} 1\n", 400, "text format parsing error in line 1, column 6: invalid escape sequence '\\t'"),
    case("invalid_escape_in_help", "PUT", NEW, NO_HEADERS, b"# HELP x a \\\"b\\\"\nx 1\n", 400, "text format parsing error in line 1, column 12: invalid escape sequence '\\\"'"),
    case("label_value_not_quoted", "PUT", NEW, NO_HEADERS, b"x{a=b} 1\n", 400, "text format parsing error in line 1, column 5: expected '\"' at start of label value, found 'b'"),
    case("label_value_column_counts_characters", "PUT", NEW, NO_HEADERS, b"x{a=\"\xc3\xa9\xc3\xa9\",b=c} 1\n", 400, "text format parsing error in line 1, column 12: expected '\"' at start of label value, found 'c'"),
    case("label_value_unterminated", "PUT", NEW, NO_HEADERS, b"x{a=\"b\n\"} 1\n", 400, "text format parsing error in line 1, column 7: label value \"b\" contains unescaped new-line"),
    case("label_value_invalid_utf8", "PUT", NEW, NO_HEADERS, b"x{a=\"\xff\"} 1\n", 400, "text format parsing error in line 1, column 6: invalid label value \""),
    case("label_name_leading_digit", "PUT", NEW, NO_HEADERS, b"x{1a=\"b\"} 1\n", 400, "text format parsing error in line 1, column 3: invalid label name for metric \"x\""),
    case("label_name___name__", "PUT", NEW, NO_HEADERS, b"x{__name__=\"y\"} 1\n", 400, "text format parsing error in line 1, column 3: label name \"__name__\" is reserved"),
    case("duplicate_label_names", "PUT", NEW, NO_HEADERS, b"x{a=\"1\",a=\"2\"} 1\n", 400, "text format parsing error in line 1, column 9: duplicate label names for metric \"x\""),
    case("label_without_equals", "PUT", NEW, NO_HEADERS, b"x{a} 1\n", 400, "text format parsing error in line 1, column 4: expected '=' after label name, found '}'"),
    case("labels_without_comma", "PUT", NEW, NO_HEADERS, b"x{a=\"1\" b=\"2\"} 1\n", 400, "text format parsing error in line 1, column 9: unexpected end of label value \"1\""),
    case("metric_name_leading_digit", "PUT", NEW, NO_HEADERS, b"1x 1\n", 400, "text format parsing error in line 1, column 1: invalid metric name"),
    case("metric_name_nul", "PUT", NEW, NO_HEADERS, b"\0 1\n", 400, "text format parsing error in line 1, column 1: invalid metric name"),
    case("metric_name_dash", "PUT", NEW, NO_HEADERS, b"x-y 1\n", 400, "text format parsing error in line 1, column 2: expected float as value, got \"-y\""),
    case("metric_name_in_help_invalid", "PUT", NEW, NO_HEADERS, b"# HELP 1x foo\n", 400, "text format parsing error in line 1, column 8: invalid metric name in comment"),
    case("value_with_underscore", "PUT", NEW, NO_HEADERS, b"a 1\nb 2\nc 1_000\n", 400, "text format parsing error in line 3, column 3: expected float as value, got \"1_000\""),
    case("value_hex_without_exponent", "PUT", NEW, NO_HEADERS, b"x 0x10\n", 400, "text format parsing error in line 1, column 3: expected float as value, got \"0x10\""),
    case("value_out_of_range", "PUT", NEW, NO_HEADERS, b"x 1e999\n", 400, "text format parsing error in line 1, column 3: expected float as value, got \"1e999\""),
    case("value_word", "POST", BASE, NO_HEADERS, b"x abc\n", 400, "text format parsing error in line 1, column 3: expected float as value, got \"abc\""),
    case("summary_count_word", "PUT", NEW, NO_HEADERS, b"# TYPE s summary\ns_count abc\n", 400, "text format parsing error in line 2, column 9: expected float as value, got \"abc\""),
    case("timestamp_not_integer", "PUT", NEW, NO_HEADERS, b"x 1 1.5\n", 400, "text format parsing error in line 1, column 5: expected integer as timestamp, got \"1.5\""),
    case("spurious_string_after_timestamp", "PUT", NEW, NO_HEADERS, b"x 1 1234 5\n", 400, "text format parsing error in line 1, column 9: spurious string after timestamp: \" 5\""),
    case("spurious_string_text_content_type", "PUT", NEW, TEXT, b"x 1 2 3\n", 400, "text format parsing error in line 1, column 6: spurious string after timestamp: \" 3\""),
    case("gauge_histogram_sample", "PUT", NEW, NO_HEADERS, b"# TYPE x gauge_histogram\nx 1\n", 400, "unexpected type for metric name \"x\""),
    case("summary_quantile_not_float", "PUT", NEW, NO_HEADERS, b"# TYPE s summary\ns{quantile=\"a\"} 1\n", 400, "text format parsing error in line 2, column 13: expected float as value for 'quantile' label, got \"a\""),
    case("histogram_le_not_float", "PUT", NEW, NO_HEADERS, b"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", 400, "text format parsing error in line 2, column 14: expected float as value for 'le' label, got \"x\""),
    case("label_value_invalid_utf8_go_quoting", "PUT", NEW, NO_HEADERS, b"x{a=\"\xff\"} 1\n", 400, "text format parsing error in line 1, column 6: invalid label value \"\\xff\""),
];

/// Paths and methods refused before any body is read: 4xx, nothing changes.
#[rustfmt::skip]
const PATH_ERRORS: &[Case] = &[
    case("odd_components", "PUT", "/metrics/job/j/a/b/c", NO_HEADERS, b"x 1\n", 400, "odd number of components in label string \"/a/b/c\""),
    case("odd_components_trailing_slash", "PUT", "/metrics/job/j/instance/i/", NO_HEADERS, b"x 1\n", 400, "odd number of components in label string \"/instance/i/\""),
    case("odd_components_delete", "DELETE", "/metrics/job/base/instance", NO_HEADERS, b"", 400, "odd number of components in label string \"/instance\""),
    case("improper_label_name_dash", "PUT", "/metrics/job/j/a-b/c", NO_HEADERS, b"x 1\n", 400, "improper label name \"a-b\""),
    case("improper_label_name_reserved", "PUT", "/metrics/job/j/__a/c", NO_HEADERS, b"x 1\n", 400, "improper label name \"__a\""),
    case("improper_label_name_digit", "POST", "/metrics/job/j/1a/c", NO_HEADERS, b"x 1\n", 400, "improper label name \"1a\""),
    case("improper_label_name_empty_base64", "PUT", "/metrics/job/j/@base64/YQ", NO_HEADERS, b"x 1\n", 400, "improper label name \"\""),
    case("improper_label_name_delete", "DELETE", "/metrics/job/base/instance/i1/a-b/c", NO_HEADERS, b"", 400, "improper label name \"a-b\""),
    case("base64_label_plus", "PUT", "/metrics/job/j/lab@base64/a+b", NO_HEADERS, b"x 1\n", 400, "invalid base64 encoding for label lab=\"a+b\": illegal base64 data at input byte 1"),
    case("base64_label_padding_inside", "PUT", "/metrics/job/j/lab@base64/YQ=Y", NO_HEADERS, b"x 1\n", 400, "invalid base64 encoding for label lab=\"YQ=Y\": illegal base64 data at input byte 2"),
    case("base64_label_invalid_chars", "PUT", "/metrics/job/j/lab@base64/!!!!", NO_HEADERS, b"x 1\n", 400, "invalid base64 encoding for label lab=\"!!!!\": illegal base64 data at input byte 0"),
    case("base64_label_truncated", "POST", "/metrics/job/j/lab@base64/YWJjZ", NO_HEADERS, b"x 1\n", 400, "invalid base64 encoding for label lab=\"YWJjZ\": illegal base64 data at input byte 4"),
    case("base64_label_delete", "DELETE", "/metrics/job/base/instance@base64/a+b", NO_HEADERS, b"", 400, "invalid base64 encoding for label instance=\"a+b\": illegal base64 data at input byte 1"),
    case("base64_job_empty", "PUT", "/metrics/job@base64/=", NO_HEADERS, b"x 1\n", 400, "job name is required"),
    case("base64_job_only_padding", "POST", "/metrics/job@base64/==/instance/i", NO_HEADERS, b"x 1\n", 400, "job name is required"),
    case("base64_job_invalid", "PUT", "/metrics/job@base64/!x!/instance/i", NO_HEADERS, b"x 1\n", 400, "invalid base64 encoding in job name \"\": illegal base64 data at input byte 0"),
    case("base64_job_truncated", "PUT", "/metrics/job@base64/YWJjZ", NO_HEADERS, b"x 1\n", 400, "invalid base64 encoding in job name \"abc\": illegal base64 data at input byte 4"),
    case("base64_job_delete", "DELETE", "/metrics/job@base64/!x!", NO_HEADERS, b"", 400, "invalid base64 encoding in job name \"\": illegal base64 data at input byte 0"),
    case("percent_escape_invalid", "PUT", "/metrics/job/j/v/%zz", NO_HEADERS, b"x 1\n", 400, "400 Bad Request"),
    case("percent_escape_truncated", "PUT", "/metrics/job/j/v/%4", NO_HEADERS, b"x 1\n", 400, "400 Bad Request"),
    case("percent_escape_invalid_delete", "DELETE", "/metrics/job/base/instance/%zz", NO_HEADERS, b"", 400, "400 Bad Request"),
    case("job_not_utf8", "PUT", "/metrics/job/%FF", NO_HEADERS, b"x 1\n", 400, "not valid UTF-8"),
    case("label_value_not_utf8", "POST", "/metrics/job/j/a/%FF", NO_HEADERS, b"x 1\n", 400, "not valid UTF-8"),
    case("base64_label_value_not_utf8", "PUT", "/metrics/job/j/a@base64/__4", NO_HEADERS, b"x 1\n", 400, "not valid UTF-8"),
    // `instance=""` named in the path: the same series as the baseline's group `other`.
    // Go stores the failure time anyway and poisons itself; we store nothing.
    case("empty_instance_twin", "PUT", "/metrics/job/other/instance/", NO_HEADERS, b"plain 2\n", 400, "was collected before with the same name and label values"),
    case("no_job_segment", "POST", "/metrics/job", NO_HEADERS, b"x 1\n", 404, "404 page not found"),
    case("get_on_push_url", "GET", BASE, NO_HEADERS, b"", 405, "Method Not Allowed"),
    case("head_on_push_url", "HEAD", BASE, NO_HEADERS, b"", 405, ""),
    case("patch_on_push_url", "PATCH", BASE, NO_HEADERS, b"x 1\n", 405, "Method Not Allowed"),
    case("empty_base64_job", "PUT", "/metrics/job@base64/", NO_HEADERS, b"x 1\n", 404, "404 page not found"),
    // A body that its Content-Encoding or Content-Type says is something else.
    case("gzip_body_not_gzip", "PUT", NEW, GZIP, b"x 1\n", 400, "unexpected EOF"),
    case("protobuf_body_not_protobuf", "PUT", NEW, PROTOBUF, b"x 1\n", 400, "protobuf parsing error at byte 1: unexpected EOF"),
];

/// Bodies that parse but that the writer refuses: 400, and only the failure time of the
/// group named by the path changes (a group that did not exist appears holding nothing
/// but `push_time_seconds 0` and the failure time). Paths here use plain labels only.
#[rustfmt::skip]
const WRITER_REJECTIONS: &[Case] = &[
    case("timestamp", "PUT", NEW, NO_HEADERS, b"x 1 1234\n", 400, "pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps"),
    case("timestamp_existing_group", "POST", BASE, NO_HEADERS, b"y 1 1234\n", 400, "pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps"),
    case("timestamp_on_histogram_bucket", "PUT", NEW, NO_HEADERS, b"# TYPE h histogram\nh_bucket{le=\"1\"} 1 5\n", 400, "pushed metrics must not have timestamps"),
    case("timestamp_text_content_type", "PUT", NEW, TEXT, b"x 1 2\n", 400, "pushed metrics must not have timestamps"),
    case("duplicate_series", "PUT", NEW, NO_HEADERS, b"x{a=\"1\"} 1\nx{a=\"1\"} 2\n", 400, "pushed metrics are invalid or inconsistent with existing metrics: collected metric \"x\" {a=\"1\",instance=\"\",job=\"bad\"} was collected before with the same name and label values"),
    case("duplicate_series_existing_group", "PUT", BASE, NO_HEADERS, b"x{a=\"1\"} 1\nx{a=\"1\"} 2\n", 400, "was collected before with the same name and label values"),
    case("job_label_override_collapses", "PUT", "/metrics/job/j", NO_HEADERS, b"x{job=\"a\"} 1\nx{job=\"b\"} 2\n", 400, "was collected before with the same name and label values"),
    case("instance_label_override_collapses", "PUT", "/metrics/job/j/instance/i", NO_HEADERS, b"x{instance=\"a\"} 1\nx{instance=\"b\"} 2\n", 400, "was collected before with the same name and label values"),
    case("type_conflict_gauge", "PUT", "/metrics/job/x", NO_HEADERS, b"# TYPE base_gauge counter\nbase_gauge 1\n", 400, "pushed metrics are invalid or inconsistent with existing metrics: collected metric \"base_gauge\" {instance=\"\",job=\"x\"} is not a GAUGE"),
    case("type_conflict_untyped", "PUT", "/metrics/job/x", NO_HEADERS, b"# TYPE plain gauge\nplain 1\n", 400, "is not a UNTYPED"),
    case("type_conflict_histogram", "PUT", "/metrics/job/x", NO_HEADERS, b"# TYPE other_hist counter\nother_hist 1\n", 400, "is not a HISTOGRAM"),
    case("type_conflict_existing_group", "POST", BASE, NO_HEADERS, b"# TYPE plain gauge\nplain 1\n", 400, "is not a UNTYPED"),
    case("own_type_process", "PUT", NEW, NO_HEADERS, b"# TYPE process_start_time_seconds counter\nprocess_start_time_seconds 1\n", 400, "pushed metrics are invalid or inconsistent with existing metrics: gathered metric family process_start_time_seconds has type COUNTER but should have GAUGE"),
    case("own_type_go", "PUT", NEW, NO_HEADERS, b"# TYPE go_goroutines counter\ngo_goroutines 1\n", 400, "gathered metric family go_goroutines has type COUNTER but should have GAUGE"),
    case("own_type_pushgateway", "POST", BASE, NO_HEADERS, b"# TYPE pushgateway_build_info counter\npushgateway_build_info 1\n", 400, "gathered metric family pushgateway_build_info has type COUNTER but should have GAUGE"),
    case("suffix_collision_in_body", "PUT", NEW, NO_HEADERS, b"sx_count 1\n# TYPE sx summary\nsx{quantile=\"0.5\"} 1\n", 400, "collected metric named \"sx_count\" collides with previously collected summary named \"sx\""),
    case("suffix_collision_with_summary", "PUT", NEW, NO_HEADERS, b"sm_count 1\n", 400, "pushed metrics are invalid or inconsistent with existing metrics: collected metric named \"sm_count\" collides with previously collected summary named \"sm\""),
    case("suffix_collision_with_histogram", "PUT", NEW, NO_HEADERS, b"other_hist_bucket 1\n", 400, "collected metric named \"other_hist_bucket\" collides with previously collected histogram named \"other_hist\""),
    case("reserved_body_label", "PUT", NEW, NO_HEADERS, b"x{__x=\"1\"} 1\n", 400, "pushed metrics are invalid or inconsistent with existing metrics: collected metric \"x\" {__x=\"1\",instance=\"\",job=\"bad\"} has a label with an invalid name: __x"),
    case("reserved_body_label_existing_group", "POST", BASE, NO_HEADERS, b"x{__x=\"1\"} 1\n", 400, "has a label with an invalid name: __x"),
    case("histogram_bucket_collision_wording", "PUT", NEW, NO_HEADERS, b"# TYPE lat histogram\nlat_count 1\n", 400, "collected histogram named \"lat\" collides with previously collected metric named \"lat_bucket\""),
    case("summary_with_quantile_grouping_label", "PUT", "/metrics/job/bad/quantile/x", NO_HEADERS, b"# TYPE s summary\ns{quantile=\"0.5\"} 1\n", 400, "must not have an explicit \"quantile\" label"),
    case("all_errors_reported", "PUT", "/metrics/job/x", NO_HEADERS, b"# TYPE base_gauge counter\nbase_gauge 1\nx{__y=\"1\"} 1\n", 400, "2 error(s) occurred:"),
];

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn body_parse_errors_are_refused_and_change_nothing() {
    run_table(PARSE_ERRORS, Effect::Nothing);
}

#[test]
fn path_and_method_errors_are_refused_and_change_nothing() {
    run_table(PATH_ERRORS, Effect::Nothing);
}

#[test]
fn writer_rejections_record_only_the_failure_time() {
    run_table(WRITER_REJECTIONS, Effect::FailureRecorded);
}

#[test]
fn tables_are_well_formed() {
    let all: Vec<&Case> = [PARSE_ERRORS, PATH_ERRORS, WRITER_REJECTIONS]
        .iter()
        .flat_map(|t| t.iter())
        .collect();
    let mut names = HashSet::new();
    for c in &all {
        assert!(names.insert(c.name), "case name used twice: {}", c.name);
        assert!(
            (400..500).contains(&c.status),
            "{}: not a 4xx: {}",
            c.name,
            c.status
        );
    }
    let passing = PARSE_ERRORS.len() + PATH_ERRORS.len() + WRITER_REJECTIONS.len();
    assert!(passing >= 30, "only {passing} cases");
    for c in WRITER_REJECTIONS {
        assert!(
            !c.path.contains('@') && !c.path.contains('%'),
            "{}: writer cases need a plain path",
            c.name
        );
    }
}

// ---------------------------------------------------------------------------
// The runner.

#[derive(Clone, Copy)]
enum Effect {
    /// `/metrics` and `/api/v1/metrics` stay byte-identical.
    Nothing,
    /// Only the failure time of the path's group changes.
    FailureRecorded,
}

fn run_table(table: &[Case], effect: Effect) {
    report(table_failures(table, effect), table.len());
}

fn report(failures: Vec<String>, total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs every case on a fresh gateway and returns the failures.
fn table_failures(table: &[Case], effect: Effect) -> Vec<String> {
    table
        .iter()
        .filter_map(|c| {
            run_case(c, effect)
                .err()
                .map(|e| format!("{}: {e}", c.name))
        })
        .collect()
}

fn run_case(c: &Case, effect: Effect) -> Result<(), String> {
    let gw = Gateway::start(&[]);
    attempt(&gw, c, effect)
}

fn attempt(gw: &Gateway, c: &Case, effect: Effect) -> Result<(), String> {
    for (path, body) in BASELINE {
        let r = gw.put(path, body);
        if r.status != 200 {
            return Err(format!(
                "baseline push to {path}: {} {}",
                r.status,
                r.text()
            ));
        }
    }
    let before = Snapshot::take(gw)?;
    let t0 = unix_now();
    let r = gw.request(c.method, c.path, c.headers, c.body);
    let t1 = unix_now();
    let what = format!("{} {} \"{}\"", c.method, c.path, c.body.escape_ascii());
    check_response(c, &r).map_err(|e| format!("{what}: {e}"))?;
    let after = Snapshot::take(gw)?;
    match effect {
        Effect::Nothing => unchanged(&before, &after),
        Effect::FailureRecorded => {
            failure_recorded(&before, &after, &grouping_labels(c.path), t0, t1)
        }
    }
    .map_err(|e| format!("{what}: {e}"))
}

fn check_response(c: &Case, r: &Response) -> Result<(), String> {
    let body = r.text();
    if r.status != c.status {
        return Err(format!(
            "status {} (want {}), body {body:?}",
            r.status, c.status
        ));
    }
    if !body.contains(c.msg) {
        return Err(format!("body {body:?} does not contain {:?}", c.msg));
    }
    if c.status == 405 && r.header("Allow") != Some(PUSH_ALLOW) {
        return Err(format!(
            "405 with Allow {:?}, want {PUSH_ALLOW:?}",
            r.header("Allow")
        ));
    }
    Ok(())
}

/// The store as clients see it.
struct Snapshot {
    /// `/metrics` without own families, push times masked (see `common::pushed_part`).
    pushed: String,
    /// `/metrics` as served.
    raw: String,
    /// `/api/v1/metrics` as served.
    json: String,
}

impl Snapshot {
    fn take(gw: &Gateway) -> Result<Snapshot, String> {
        let m = gw.get("/metrics");
        if m.status != 200 {
            return Err(format!("scrape failed: {} {}", m.status, m.text()));
        }
        let j = gw.get("/api/v1/metrics");
        if j.status != 200 {
            return Err(format!("/api/v1/metrics failed: {} {}", j.status, j.text()));
        }
        let raw = m.text();
        Ok(Snapshot {
            pushed: pushed_part(&raw),
            raw,
            json: j.text(),
        })
    }
}

fn unchanged(before: &Snapshot, after: &Snapshot) -> Result<(), String> {
    if after.pushed != before.pushed {
        return Err(format!(
            "/metrics changed:\n{}",
            line_diff(&before.pushed, &after.pushed)
        ));
    }
    if after.json != before.json {
        return Err(format!(
            "/api/v1/metrics changed:\nbefore {}\nafter  {}",
            before.json, after.json
        ));
    }
    Ok(())
}

/// Checks that the only change is the failure time of the group `key`.
fn failure_recorded(
    before: &Snapshot,
    after: &Snapshot,
    key: &[(String, String)],
    t0: f64,
    t1: f64,
) -> Result<(), String> {
    let labels = exposition_labels(key);
    let failure = format!("push_failure_time_seconds{{{labels}}}");
    let success = format!("push_time_seconds{{{labels}}}");
    let existed = before
        .pushed
        .lines()
        .any(|l| l == format!("{success} <ts>"));
    if existed {
        let zero = format!("{failure} 0\n");
        if !before.pushed.contains(&zero) {
            return Err(format!("baseline has no line {zero:?}"));
        }
        let want = before
            .pushed
            .replacen(&zero, &format!("{failure} <ts>\n"), 1);
        if after.pushed != want {
            return Err(format!(
                "/metrics: want only the failure time of {labels} set:\n{}",
                line_diff(&want, &after.pushed)
            ));
        }
    } else {
        let mut rest = after.pushed.clone();
        for line in [format!("{failure} <ts>"), format!("{success} <ts>")] {
            rest = remove_line(&rest, &line).ok_or_else(|| {
                format!(
                    "/metrics lacks {line:?} for the new group:\n{}",
                    line_diff(&before.pushed, &after.pushed)
                )
            })?;
        }
        if rest != before.pushed {
            return Err(format!(
                "/metrics: want only the two timestamps of the new group {labels}:\n{}",
                line_diff(&before.pushed, &after.pushed)
            ));
        }
        if sample_value(&after.raw, &success) != Some(0.0) {
            return Err(format!("want {success} 0 in\n{}", after.raw));
        }
    }
    match sample_value(&after.raw, &failure) {
        Some(v) if v >= t0 - 1.0 && v <= t1 + 1.0 => {}
        other => {
            return Err(format!(
                "failure time {other:?} not within the request ({t0}..{t1})"
            ));
        }
    }
    json_failure_recorded(&before.json, &after.json, &key_json(key), existed)
}

/// `/api/v1/metrics`: every other group byte-identical and in place; the target group
/// marked unsuccessful, with nothing changed but its failure-time family (or, if new,
/// holding nothing but the two timestamp families, success time 0).
fn json_failure_recorded(
    before: &str,
    after: &str,
    key: &str,
    existed: bool,
) -> Result<(), String> {
    let gb = json_groups(before).ok_or("cannot split /api/v1/metrics (before)")?;
    let ga = json_groups(after).ok_or("cannot split /api/v1/metrics (after)")?;
    let marker = format!("\"labels\":{key},\"last_push_successful\":");
    let ib = gb.iter().position(|g| g.contains(&marker));
    let ia = ga
        .iter()
        .position(|g| g.contains(&marker))
        .ok_or_else(|| format!("group {key} missing from /api/v1/metrics: {after}"))?;
    if ib.is_some() != existed {
        return Err(format!(
            "group {key}: /metrics and /api/v1/metrics disagree"
        ));
    }
    let others = |gs: &[&str], skip: Option<usize>| -> Vec<String> {
        gs.iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, g)| g.to_string())
            .collect()
    };
    if others(&ga, Some(ia)) != others(&gb, ib) {
        return Err(format!(
            "/api/v1/metrics: another group changed:\nbefore {before}\nafter  {after}"
        ));
    }
    let target = ga[ia];
    let failed = format!("{marker}false");
    if !target.contains(&failed) {
        return Err(format!("group not marked unsuccessful: {target}"));
    }
    let drop = |obj: &str, name: &str| {
        drop_member(obj, name).ok_or_else(|| format!("no family {name} in {obj}"))
    };
    match ib {
        Some(ib) => {
            let want = drop(gb[ib], "push_failure_time_seconds")?;
            let got = drop(target, "push_failure_time_seconds")?.replacen(
                &failed,
                &format!("{marker}true"),
                1,
            );
            if got != want {
                return Err(format!(
                    "/api/v1/metrics: more than the failure time changed:\nbefore {}\nafter  {target}",
                    gb[ib]
                ));
            }
        }
        None => {
            let bare = drop(
                &drop(target, "push_failure_time_seconds")?,
                "push_time_seconds",
            )?;
            if bare != format!("{{{failed}}}") {
                return Err(format!("new group holds more than timestamps: {target}"));
            }
            let success = member(target, "push_time_seconds").unwrap_or_default();
            if !success.contains("\"value\":\"0\"") {
                return Err(format!("new group's push time is not 0: {target}"));
            }
        }
    }
    let failure = member(target, "push_failure_time_seconds").unwrap_or_default();
    if failure.contains("\"value\":\"0\"") {
        return Err(format!("failure time still 0: {target}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Helpers.

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// The grouping key of a plain push path `/metrics/job/J[/name/value]...`.
fn grouping_labels(path: &str) -> Vec<(String, String)> {
    let rest = path.strip_prefix("/metrics/job/").expect("a push path");
    let mut parts = rest.split('/');
    let job = parts.next().expect("a job").to_string();
    let mut labels = BTreeMap::new();
    let rest: Vec<&str> = parts.collect();
    for pair in rest.chunks(2) {
        let value = pair.get(1).copied().unwrap_or_default();
        labels.insert(pair[0].to_string(), value.to_string());
    }
    labels.insert("job".to_string(), job);
    labels.into_iter().collect()
}

/// The labels of a group's timestamp series: the key plus `instance=""` if absent.
fn exposition_labels(key: &[(String, String)]) -> String {
    let mut labels: BTreeMap<&str, &str> =
        key.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    labels.entry("instance").or_insert("");
    labels
        .iter()
        .map(|(n, v)| format!("{n}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(",")
}

fn key_json(key: &[(String, String)]) -> String {
    let pairs: Vec<String> = key
        .iter()
        .map(|(n, v)| format!("\"{n}\":\"{v}\""))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// The value of the sample line `series V` in exposition text.
fn sample_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// `text` (lines ending in `\n`) without the first line equal to `line`.
fn remove_line(text: &str, line: &str) -> Option<String> {
    let mut lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| *l == line)?;
    lines.remove(i);
    Some(lines.iter().map(|l| format!("{l}\n")).collect())
}

/// The lines only in `a` (`-`) and only in `b` (`+`).
fn line_diff(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in la.iter().filter(|l| !lb.contains(l)) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in lb.iter().filter(|l| !la.contains(l)) {
        out.push_str(&format!("+ {l}\n"));
    }
    if out.is_empty() {
        out = format!("(same lines, different order)\nwant:\n{a}\ngot:\n{b}");
    }
    out
}

/// The index just past the JSON object starting at `start` (a `{`).
fn object_end(s: &[u8], start: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &c) in s.iter().enumerate().skip(start) {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The group objects of `/api/v1/metrics`, in order.
fn json_groups(json: &str) -> Option<Vec<&str>> {
    let b = json.as_bytes();
    let mut i = json.find("\"data\":[")? + "\"data\":[".len();
    let mut groups = Vec::new();
    loop {
        match *b.get(i)? {
            b',' | b' ' | b'\n' => i += 1,
            b']' => return Some(groups),
            b'{' => {
                let end = object_end(b, i)?;
                groups.push(&json[i..end]);
                i = end;
            }
            _ => return None,
        }
    }
}

/// The object value of the member `name` of a group object.
fn member<'a>(obj: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":{{");
    let start = obj.find(&key)? + key.len() - 1;
    let end = object_end(obj.as_bytes(), start)?;
    Some(&obj[start..end])
}

/// `obj` without its member `name` (and the comma that separated it).
fn drop_member(obj: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\":{{");
    let start = obj.find(&key)?;
    let end = object_end(obj.as_bytes(), start + key.len() - 1)?;
    let (mut a, mut b) = (start, end);
    if obj[..a].ends_with(',') {
        a -= 1;
    } else if obj[b..].starts_with(',') {
        b += 1;
    }
    Some(format!("{}{}", &obj[..a], &obj[b..]))
}
