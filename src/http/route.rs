//! URL routing with the Go gateway's rules: percent-decoding, path cleaning redirects,
//! trailing-slash and case redirects, 404 and 405 with `Allow`.

/// What a request path and method resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// PUT, POST or DELETE on `/metrics/job[@base64]/<job>[<rest>]`.
    Push {
        job: Vec<u8>,
        job_base64: bool,
        rest: Vec<u8>,
    },
    Scrape,
    Healthy,
    Ready,
    ApiMetrics,
    ApiStatus,
    /// OPTIONS on anything under `/api/v1/` (CORS preflight).
    ApiOptions,
    Wipe,
    Quit,
    /// The web UI's page (`/` and `/status`).
    Ui,
    /// The UI's list of groups.
    UiGroups,
    /// The UI's view of one group, named as in a push path.
    UiGroup {
        job: Vec<u8>,
        job_base64: bool,
        rest: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Route(Route),
    Redirect {
        status: u16,
        location: String,
    },
    /// OPTIONS on a known path: 200 with this `Allow`.
    Options(&'static str),
    MethodNotAllowed {
        allow: &'static str,
    },
    /// The Go gateway's own text for `GET /-/quit`.
    QuitWrongMethod,
    NotFound,
    /// An invalid percent escape: refused before routing, as Go's server does.
    BadRequest,
}

/// Which optional routes exist, and under which prefix.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Empty, or `/path` without a trailing slash (see `route_prefix`).
    pub prefix: String,
    pub telemetry_path: String,
    pub enable_admin: bool,
    pub enable_lifecycle: bool,
}

const PUSH_ALLOW: &str = "DELETE, OPTIONS, POST, PUT";
const GET_ALLOW: &str = "GET, OPTIONS";

/// Decodes `%XX` escapes; `+` stays a plus. `None` on a malformed escape.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None; // from_str_radix would take "+1"
            }
            let h = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Go's `path.Clean` for rooted paths, keeping a trailing slash as `net/http` does.
fn clean(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in path.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    let ends_dir = path.ends_with(b"/") || path.ends_with(b"/.") || path.ends_with(b"/..");
    if out.is_empty() || (ends_dir && !out.ends_with(b"/")) {
        out.push(b'/');
    }
    out
}

/// Escapes a decoded path for a `Location` header.
fn escape_path(path: &[u8]) -> String {
    let mut s = String::with_capacity(path.len());
    for &c in path {
        if c.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&c) {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    }
}

/// The effective route prefix (Go's `computeRoutePrefix`): `--web.route-prefix`, else the
/// path of `--web.external-url`; `/` means none; one leading slash, no trailing one.
pub fn route_prefix(route_prefix: &str, external_url: &str) -> String {
    let chosen = if route_prefix.is_empty() {
        url_path(external_url)
    } else {
        route_prefix
    };
    let trimmed = chosen.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// The path part of a URL (`http://host:1/a/b?q` → `/a/b`).
pub fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.split(['?', '#']).next().unwrap_or("")
}

/// Resolves `method` on the raw (still percent-encoded) path.
pub fn resolve(method: &str, raw_path: &str, query: Option<&str>, cfg: &RouteConfig) -> Resolved {
    let Some(path) = percent_decode(raw_path) else {
        return Resolved::BadRequest;
    };
    let cleaned = clean(&path);
    if cleaned != path {
        return Resolved::Redirect {
            status: 301,
            location: with_query(escape_path(&cleaned), query),
        };
    }
    // The one route that ignores the prefix: the Go gateway's own text for GET /-/quit.
    if method == "GET" && path == b"/-/quit" {
        return Resolved::QuitWrongMethod;
    }
    if cfg.prefix.is_empty() {
        return resolve_under(method, &path, query, cfg, "");
    }
    let prefix = cfg.prefix.as_bytes();
    if path == prefix {
        return Resolved::Redirect {
            status: 301,
            location: with_query(format!("{}/", cfg.prefix), query),
        };
    }
    match path
        .strip_prefix(prefix)
        .filter(|rest| rest.starts_with(b"/"))
    {
        Some(rest) => resolve_under(method, rest, query, cfg, &cfg.prefix),
        None => Resolved::NotFound,
    }
}

/// Resolves a path with the prefix removed; redirects put the prefix back.
fn resolve_under(
    method: &str,
    path: &[u8],
    query: Option<&str>,
    cfg: &RouteConfig,
    prefix: &str,
) -> Resolved {
    let redirect_status = if method == "GET" { 301 } else { 307 };
    if let Some(r) = resolve_exact(method, path, cfg) {
        return r;
    }
    // httprouter recommends dropping the slash of an empty job segment (the target is a 404).
    if path == b"/metrics/job/" {
        let location = format!("{prefix}/metrics/job");
        return Resolved::Redirect {
            status: redirect_status,
            location: with_query(location, query),
        };
    }
    // httprouter's repairs: a trailing slash too many or too few, or the wrong case.
    let candidates = [
        path.strip_suffix(b"/").map(<[u8]>::to_vec),
        Some([path, b"/"].concat()),
        Some(lowercase_fixed(path)),
    ];
    for c in candidates.into_iter().flatten() {
        if c != path && resolve_exact(method, &c, cfg).is_some() {
            let location = format!("{prefix}{}", escape_path(&c));
            return Resolved::Redirect {
                status: redirect_status,
                location: with_query(location, query),
            };
        }
    }
    Resolved::NotFound
}

/// httprouter repairs the case of a route's fixed segments only: a job or label value
/// keeps its case (and a base64 job its meaning).
fn lowercase_fixed(path: &[u8]) -> Vec<u8> {
    let lower = path.to_ascii_lowercase();
    for fixed in [&b"/metrics/job@base64/"[..], b"/metrics/job/"] {
        if lower.starts_with(fixed) {
            return [fixed, &path[fixed.len()..]].concat();
        }
    }
    lower
}

fn for_methods(method: &str, allow: &'static str, routes: &[(&str, Route)]) -> Resolved {
    match routes.iter().find(|(m, _)| *m == method) {
        Some((_, r)) => Resolved::Route(r.clone()),
        None if method == "OPTIONS" => Resolved::Options(allow),
        None => Resolved::MethodNotAllowed { allow },
    }
}

fn resolve_exact(method: &str, path: &[u8], cfg: &RouteConfig) -> Option<Resolved> {
    if let Some(r) = resolve_push(method, path) {
        return Some(r);
    }
    if path == cfg.telemetry_path.as_bytes() {
        return Some(for_methods(method, GET_ALLOW, &[("GET", Route::Scrape)]));
    }
    Some(match path {
        b"/-/healthy" => for_methods(method, GET_ALLOW, &[("GET", Route::Healthy)]),
        b"/-/ready" => for_methods(method, GET_ALLOW, &[("GET", Route::Ready)]),
        // Under a prefix GET lands here too; only the unprefixed GET has Go's own text.
        b"/-/quit" => for_methods(
            method,
            "OPTIONS, POST, PUT",
            &[("PUT", Route::Quit), ("POST", Route::Quit)],
        ),
        b"/" | b"/status" => for_methods(method, GET_ALLOW, &[("GET", Route::Ui)]),
        b"/ui/groups" => for_methods(method, GET_ALLOW, &[("GET", Route::UiGroups)]),
        p if p.starts_with(b"/ui/group/") => {
            // The group is named as in a push path: reuse that grammar.
            let as_push = [&b"/metrics/"[..], &p[b"/ui/group/".len()..]].concat();
            match resolve_push("PUT", &as_push)? {
                Resolved::Route(Route::Push {
                    job,
                    job_base64,
                    rest,
                }) => for_methods(
                    method,
                    GET_ALLOW,
                    &[(
                        "GET",
                        Route::UiGroup {
                            job,
                            job_base64,
                            rest,
                        },
                    )],
                ),
                _ => return None,
            }
        }
        b"/api/v1" => Resolved::Redirect {
            status: 301,
            location: format!("{}/api/v1/", cfg.prefix),
        },
        p if p.starts_with(b"/api/v1/") => resolve_api(method, &p[7..], cfg)?,
        _ => return None,
    })
}

fn resolve_api(method: &str, sub: &[u8], cfg: &RouteConfig) -> Option<Resolved> {
    if method == "OPTIONS" {
        return Some(Resolved::Route(Route::ApiOptions));
    }
    Some(match sub {
        b"/metrics" => for_methods(method, GET_ALLOW, &[("GET", Route::ApiMetrics)]),
        b"/status" => for_methods(method, GET_ALLOW, &[("GET", Route::ApiStatus)]),
        b"/admin/wipe" if cfg.enable_admin => {
            for_methods(method, "OPTIONS, PUT", &[("PUT", Route::Wipe)])
        }
        _ => return None,
    })
}

fn resolve_push(method: &str, path: &[u8]) -> Option<Resolved> {
    let (after, job_base64) = if let Some(a) = path.strip_prefix(b"/metrics/job/") {
        (a, false)
    } else if let Some(a) = path.strip_prefix(b"/metrics/job@base64/") {
        (a, true)
    } else {
        return None;
    };
    let (job, rest) = match after.iter().position(|&c| c == b'/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, &b""[..]),
    };
    if job.is_empty() {
        return None;
    }
    let route = Route::Push {
        job: job.to_vec(),
        job_base64,
        rest: rest.to_vec(),
    };
    let routes = [
        ("PUT", route.clone()),
        ("POST", route.clone()),
        ("DELETE", route),
    ];
    Some(for_methods(method, PUSH_ALLOW, &routes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RouteConfig {
        RouteConfig {
            prefix: String::new(),
            telemetry_path: "/metrics".into(),
            enable_admin: false,
            enable_lifecycle: false,
        }
    }

    fn r(method: &str, path: &str) -> Resolved {
        resolve(method, path, None, &cfg())
    }

    fn redirect(status: u16, location: &str) -> Resolved {
        Resolved::Redirect {
            status,
            location: location.into(),
        }
    }

    #[test]
    fn push_paths() {
        let push = |job: &str, rest: &str, b64| {
            Resolved::Route(Route::Push {
                job: job.into(),
                job_base64: b64,
                rest: rest.into(),
            })
        };
        assert_eq!(r("PUT", "/metrics/job/j"), push("j", "", false));
        assert_eq!(r("POST", "/metrics/job/j/a/b"), push("j", "/a/b", false));
        assert_eq!(
            r("DELETE", "/metrics/job@base64/YQ/"),
            push("YQ", "/", true)
        );
        assert_eq!(
            r("PUT", "/metrics/job/j/v/a+b%20c"),
            push("j", "/v/a+b c", false)
        );
        assert_eq!(r("PUT", "/metrics/job/a%2Fb"), push("a", "/b", false));
        assert_eq!(r("PUT", "/metrics/%6Aob/j"), push("j", "", false));
        assert_eq!(
            r("GET", "/metrics/job/j"),
            Resolved::MethodNotAllowed { allow: PUSH_ALLOW }
        );
        assert_eq!(
            r("HEAD", "/metrics/job/j"),
            Resolved::MethodNotAllowed { allow: PUSH_ALLOW }
        );
        assert_eq!(
            r("OPTIONS", "/metrics/job/j"),
            Resolved::Options(PUSH_ALLOW)
        );
    }

    #[test]
    fn go_router_quirks() {
        assert_eq!(r("PUT", "/metrics/job"), Resolved::NotFound);
        assert_eq!(r("PUT", "/metrics/job/"), redirect(307, "/metrics/job"));
        assert_eq!(
            r("PUT", "/metrics"),
            Resolved::MethodNotAllowed { allow: GET_ALLOW }
        );
        assert_eq!(
            r("HEAD", "/metrics"),
            Resolved::MethodNotAllowed { allow: GET_ALLOW }
        );
        assert_eq!(
            r("PUT", "/metrics/job//a/b"),
            redirect(301, "/metrics/job/a/b")
        );
        assert_eq!(
            r("PUT", "/metrics/job/j/../k"),
            redirect(301, "/metrics/job/k")
        );
        assert_eq!(r("GET", "/METRICS"), redirect(301, "/metrics"));
        assert_eq!(r("GET", "/api/v1"), redirect(301, "/api/v1/"));
        assert_eq!(r("PUT", "/metrics/job/j/v/%zz"), Resolved::BadRequest);
        assert_eq!(r("PUT", "/metrics/job/j/v/%+1"), Resolved::BadRequest);
        assert_eq!(
            r("PUT", "/Metrics/job/MyJob"),
            redirect(307, "/metrics/job/MyJob")
        );
        assert_eq!(r("GET", "/nope"), Resolved::NotFound);
        assert_eq!(r("GET", "/api/v1/nope"), Resolved::NotFound);
        assert_eq!(r("PUT", "/metrics/jobs/j"), Resolved::NotFound);
        assert_eq!(r("PUT", "/api/v1/admin/wipe"), Resolved::NotFound);
        assert_eq!(
            r("OPTIONS", "/api/v1/x"),
            Resolved::Route(Route::ApiOptions)
        );
        assert_eq!(
            r("POST", "/api/v1/status"),
            Resolved::MethodNotAllowed { allow: GET_ALLOW }
        );
        assert_eq!(r("GET", "/-/quit"), Resolved::QuitWrongMethod);
        assert_eq!(
            resolve("GET", "/a//b", Some("x=1"), &cfg()),
            redirect(301, "/a/b?x=1")
        );
    }

    #[test]
    fn route_prefix_like_go() {
        assert_eq!(route_prefix("", ""), "");
        assert_eq!(
            route_prefix("/", "http://x/y"),
            "",
            "a prefix of / is none at all"
        );
        assert_eq!(route_prefix("pg/", ""), "/pg");
        assert_eq!(route_prefix("", "https://example.org:9091/gw/?a=b"), "/gw");
        assert_eq!(route_prefix("", "http://example.org"), "");
        let pg = RouteConfig {
            prefix: "/pg".into(),
            ..cfg()
        };
        let r = |m: &str, p: &str| resolve(m, p, None, &pg);
        assert_eq!(
            r("PUT", "/pg/metrics/job/a"),
            Resolved::Route(Route::Push {
                job: b"a".to_vec(),
                job_base64: false,
                rest: vec![]
            })
        );
        assert_eq!(r("GET", "/api/v1/status"), Resolved::NotFound);
        assert_eq!(
            r("GET", "/pg/api/v1/status"),
            Resolved::Route(Route::ApiStatus)
        );
        assert_eq!(r("GET", "/pg"), redirect(301, "/pg/"));
        assert_eq!(r("GET", "/-/healthy"), Resolved::NotFound);
        assert_eq!(r("GET", "/-/quit"), Resolved::QuitWrongMethod);
        assert_eq!(
            r("GET", "/pg/-/quit"),
            Resolved::MethodNotAllowed {
                allow: "OPTIONS, POST, PUT"
            }
        );
        assert_eq!(r("GET", "/pg/METRICS"), redirect(301, "/pg/metrics"));
        assert_eq!(r("GET", "/pg/api/v1"), redirect(301, "/pg/api/v1/"));
        assert_eq!(r("GET", "/pgx/metrics"), Resolved::NotFound);
    }
}
