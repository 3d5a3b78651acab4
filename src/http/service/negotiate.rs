//! What a request's headers ask for: the scrape's format and escaping, gzip, a protobuf body.

use crate::model::names::Escaping;

/// The media type and parameters of one `Content-Type` or `Accept` element.
pub(super) fn media(s: &str) -> (&str, Vec<(&str, &str)>) {
    let mut parts = s.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    (media, params)
}

/// Whether the scrape should be delimited protobuf: the first `Accept` element, by
/// falling quality, that names protobuf delimited `MetricFamily` or text 0.0.4 decides
/// (the Go client's `expfmt.Negotiate`); anything else means text. Also the last known
/// `escaping=` parameter among the elements looked at (upstream 1.11's negotiation).
pub(super) fn negotiate(accept: Option<&str>) -> (bool, Option<Escaping>) {
    let mut escaping = None;
    let Some(accept) = accept else {
        return (false, None);
    };
    let mut entries: Vec<(f64, &str)> = accept
        .split(',')
        .map(|e| {
            let q = media(e)
                .1
                .iter()
                .find(|(k, _)| *k == "q")
                .and_then(|(_, v)| v.parse().ok());
            (q.unwrap_or(1.0), e)
        })
        .collect();
    entries.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, e) in entries {
        let (m, params) = media(e);
        if let Some(s) = params
            .iter()
            .find(|(k, _)| *k == "escaping")
            .and_then(|(_, v)| Escaping::from_param(v))
        {
            escaping = Some(s);
        }
        if is_protobuf(e) {
            return (true, escaping);
        }
        let version = params
            .iter()
            .find(|(k, _)| *k == "version")
            .map(|(_, v)| *v);
        if m.eq_ignore_ascii_case("text/plain") && version.is_none_or(|v| v == "0.0.4") {
            return (false, escaping);
        }
    }
    (false, escaping)
}

/// Go gateway 1.5.1: gzip iff some `Accept-Encoding` element is `gzip` (q ignored).
pub(super) fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|e| e == "gzip" || e.starts_with("gzip;"))
    })
}

/// Whether a `Content-Type` selects delimited protobuf, by the Go gateway's rule: the media
/// type (any case) with `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`.
pub(super) fn is_protobuf(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let params: Vec<(&str, &str)> = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    media.eq_ignore_ascii_case("application/vnd.google.protobuf")
        && params.contains(&("proto", "io.prometheus.client.MetricFamily"))
        && params.contains(&("encoding", "delimited"))
}
