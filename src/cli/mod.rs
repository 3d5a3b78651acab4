//! Command-line flags with the Go gateway's spellings (`--web.listen-address=:9091`).
//!
//! argh can neither declare dotted names nor read `--flag=value`, so argv is first
//! rewritten against the table below (which also owns each flag's default and help text,
//! and gives the errors), then argh parses the values and `parse` checks and types them.

pub use crate::model::gospell::go_duration;
use argh::FromArgs;
use std::fmt;

/// The argh view of the flags: dotted names become dashed (`--web-listen-address`).
#[derive(FromArgs, Debug)]
/// Pushgateway
struct RawArgs {
    /// listen address (repeatable)
    #[argh(option)]
    web_listen_address: Vec<String>,
    /// scrape path
    #[argh(option)]
    web_telemetry_path: Option<String>,
    /// prefix of every route
    #[argh(option)]
    web_route_prefix: Option<String>,
    /// URL under which the gateway is reached
    #[argh(option)]
    web_external_url: Option<String>,
    /// ignored: Debian's UI asset directory
    #[argh(option)]
    web_local_assets: Option<String>,
    /// enable the admin API
    #[argh(switch)]
    web_enable_admin_api: bool,
    /// enable the lifecycle API
    #[argh(switch)]
    web_enable_lifecycle: bool,
    /// accept pushes without checking them
    #[argh(switch)]
    push_disable_consistency_check: bool,
    /// allow UTF-8 metric and label names
    #[argh(switch)]
    push_enable_utf8_names: bool,
    /// persistence file
    #[argh(option)]
    persistence_file: Option<String>,
    /// minimum interval between writes of the persistence file
    #[argh(option)]
    persistence_interval: Option<String>,
    /// when a push reaches the disk
    #[argh(option)]
    persistence_sync: Option<String>,
    /// use sockets from systemd
    #[argh(switch)]
    web_systemd_socket: bool,
    /// open connections
    #[argh(option)]
    web_max_connections: Option<String>,
    /// request head bytes
    #[argh(option)]
    web_max_header_bytes: Option<String>,
    /// time to send a head
    #[argh(option)]
    web_read_header_timeout: Option<String>,
    /// time to send a body
    #[argh(option)]
    web_read_body_timeout: Option<String>,
    /// keep-alive idle time
    #[argh(option)]
    web_idle_timeout: Option<String>,
    /// time an answer may wait for its client
    #[argh(option)]
    web_write_timeout: Option<String>,
    /// body bytes held at once
    #[argh(option)]
    push_max_body_bytes_in_flight: Option<String>,
    /// body bytes as sent
    #[argh(option)]
    push_max_body_bytes: Option<String>,
    /// body bytes once decompressed
    #[argh(option)]
    push_max_decompressed_bytes: Option<String>,
    /// series per push
    #[argh(option)]
    push_max_series: Option<String>,
    /// error lines per answer
    #[argh(option)]
    push_max_error_lines: Option<String>,
    /// log level
    #[argh(option)]
    log_level: Option<String>,
    /// log format
    #[argh(option)]
    log_format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Switch,
    Value,
}

struct Flag {
    name: &'static str,
    kind: Kind,
    default: &'static str,
    help: &'static str,
}

const FLAGS: &[Flag] = &[
    Flag {
        name: "web.listen-address",
        kind: Kind::Value,
        default: ":9091",
        help: "Address to listen on for the web interface, API, and telemetry; repeat for several. \":PORT\" listens on all interfaces.",
    },
    Flag {
        name: "web.telemetry-path",
        kind: Kind::Value,
        default: "/metrics",
        help: "Path under which to expose metrics.",
    },
    Flag {
        name: "web.external-url",
        kind: Kind::Value,
        default: "",
        help: "The URL under which the Pushgateway is externally reachable; its path prefixes every route when --web.route-prefix is empty.",
    },
    Flag {
        name: "web.route-prefix",
        kind: Kind::Value,
        default: "",
        help: "Prefix for the internal routes of web endpoints. Defaults to the path of --web.external-url.",
    },
    Flag {
        name: "web.local-assets",
        kind: Kind::Value,
        default: "",
        help: "Accepted for Debian's prometheus-pushgateway unit files and ignored: the web UI is built in.",
    },
    Flag {
        name: "web.systemd-socket",
        kind: Kind::Switch,
        default: "false",
        help: "Use systemd socket activation listeners (LISTEN_FDS) instead of port listeners; --web.listen-address is then ignored.",
    },
    Flag {
        name: "web.max-connections",
        kind: Kind::Value,
        default: "4096",
        help: "Maximum number of open connections across all listeners (capped further by the descriptor limit). Beyond it, the connection that has waited longest without a request in flight is closed to make room; if every one is answering a request, the new one gets a 503.",
    },
    Flag {
        name: "web.max-header-bytes",
        kind: Kind::Value,
        default: "1MB",
        help: "Maximum size of a request head (request line and headers), as Go's MaxHeaderBytes; beyond it, 431.",
    },
    Flag {
        name: "web.read-header-timeout",
        kind: Kind::Value,
        default: "30s",
        help: "Maximum time from the first byte of a request head to its end; then the connection is closed.",
    },
    Flag {
        name: "web.read-body-timeout",
        kind: Kind::Value,
        default: "2m",
        help: "Maximum time to receive a request body once its head is read; then 408 and the connection is closed.",
    },
    Flag {
        name: "web.idle-timeout",
        kind: Kind::Value,
        default: "5m",
        help: "Maximum time a keep-alive connection waits for its next request; then it is closed.",
    },
    Flag {
        name: "web.write-timeout",
        kind: Kind::Value,
        default: "2m",
        help: "Maximum time an answer may wait for its client to take more of it; then the connection is closed.",
    },
    Flag {
        name: "push.max-body-bytes-in-flight",
        kind: Kind::Value,
        default: "64MB",
        help: "Maximum request body bytes (as sent) held at once across all requests being read, queued or handled; beyond it, 503.",
    },
    Flag {
        name: "push.max-body-bytes",
        kind: Kind::Value,
        default: "16MB",
        help: "Maximum size of a request body as sent (checked on Content-Length before reading, and while reading); beyond it, 413.",
    },
    Flag {
        name: "push.max-decompressed-bytes",
        kind: Kind::Value,
        default: "32MB",
        help: "Maximum size of a gzip or snappy request body once decompressed; beyond it, 413.",
    },
    Flag {
        name: "push.max-series",
        kind: Kind::Value,
        default: "100000",
        help: "Maximum number of series (sample lines, or protobuf metrics) in one push; beyond it, 400 and nothing is stored.",
    },
    Flag {
        name: "push.max-error-lines",
        kind: Kind::Value,
        default: "20",
        help: "Maximum number of errors listed in the answer to a refused push (the rest are counted).",
    },
    Flag {
        name: "web.enable-lifecycle",
        kind: Kind::Switch,
        default: "false",
        help: "Enable shutdown via HTTP request (PUT or POST /-/quit).",
    },
    Flag {
        name: "web.enable-admin-api",
        kind: Kind::Switch,
        default: "false",
        help: "Enable API endpoints for admin control actions (PUT /api/v1/admin/wipe).",
    },
    Flag {
        name: "push.disable-consistency-check",
        kind: Kind::Switch,
        default: "false",
        help: "Answer pushes with 202 before the outcome is known, as the Go gateway does with this flag. Pushes are still checked (cheaply), so inconsistent data is never stored.",
    },
    Flag {
        name: "persistence.file",
        kind: Kind::Value,
        default: "",
        help: "File to persist metrics. If empty, metrics are only kept in memory.",
    },
    Flag {
        name: "persistence.interval",
        kind: Kind::Value,
        default: "5m",
        help: "The minimum interval at which to write out the persistence file.",
    },
    Flag {
        name: "persistence.sync",
        kind: Kind::Value,
        default: "interval",
        help: "interval: write the file at most once per --persistence.interval (as upstream; a crash loses what came after the last write). always: acknowledge a push, delete or wipe only once it is in an fsynced journal next to the file.",
    },
    Flag {
        name: "push.enable-utf8-names",
        kind: Kind::Switch,
        default: "false",
        help: "Allow UTF-8 characters in metric and label names (as upstream 1.11): quoted names in text bodies, U__-encoded names in the URL path.",
    },
    Flag {
        name: "log.level",
        kind: Kind::Value,
        default: "info",
        help: "Only log messages with the given severity or above. One of: [debug, info, warn, error]",
    },
    Flag {
        name: "log.format",
        kind: Kind::Value,
        default: "logfmt",
        help: "Output format of log messages. One of: [logfmt, json]",
    },
];

/// The parsed, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addresses: Vec<String>,
    pub telemetry_path: String,
    pub route_prefix: String,
    pub external_url: String,
    pub local_assets: String,
    pub enable_lifecycle: bool,
    pub enable_admin_api: bool,
    pub disable_consistency_check: bool,
    pub utf8_names: bool,
    pub persistence_file: String,
    pub persistence_interval: std::time::Duration,
    /// `--persistence.sync=always`.
    pub persistence_sync: bool,
    pub log_level: log::LevelFilter,
    pub log_json: bool,
    pub systemd_socket: bool,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub read_header_timeout: std::time::Duration,
    pub read_body_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub write_timeout: std::time::Duration,
    pub max_body_bytes_in_flight: usize,
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub max_series: usize,
    pub max_error_lines: usize,
}

impl Config {
    /// Flag name and current value as strings, for `/api/v1/status`.
    pub fn flag_values(&self) -> Vec<(String, String)> {
        let b = |v: bool| v.to_string();
        let all: Vec<(String, String)> = vec![
            ("web.listen-address".into(), self.listen_addresses.join(",")),
            ("web.telemetry-path".into(), self.telemetry_path.clone()),
            ("web.route-prefix".into(), self.route_prefix.clone()),
            ("web.external-url".into(), self.external_url.clone()),
            ("web.local-assets".into(), self.local_assets.clone()),
            // The effective values of upstream flags whose features are not here yet, so
            // scripts reading /api/v1/status find every key the Go gateway reports.
            ("persistence.file".into(), self.persistence_file.clone()),
            (
                "persistence.interval".into(),
                go_duration(self.persistence_interval),
            ),
            ("web.config.file".into(), String::new()),
            ("web.systemd-socket".into(), b(self.systemd_socket)),
            ("web.enable-lifecycle".into(), b(self.enable_lifecycle)),
            ("web.enable-admin-api".into(), b(self.enable_admin_api)),
            (
                "push.disable-consistency-check".into(),
                b(self.disable_consistency_check),
            ),
            (
                "log.level".into(),
                self.log_level.to_string().to_lowercase(),
            ),
            // 1.5.1 has no such flag: its status keys stay exactly 1.5.1's unless it is on.
            ("push.enable-utf8-names".into(), b(self.utf8_names)),
            (
                "persistence.sync".into(),
                if self.persistence_sync {
                    "always"
                } else {
                    "interval"
                }
                .into(),
            ),
            (
                "log.format".into(),
                if self.log_json { "json" } else { "logfmt" }.into(),
            ),
            (
                "web.max-connections".into(),
                self.max_connections.to_string(),
            ),
            (
                "web.max-header-bytes".into(),
                format_bytes(self.max_header_bytes),
            ),
            (
                "web.read-header-timeout".into(),
                go_duration(self.read_header_timeout),
            ),
            (
                "web.read-body-timeout".into(),
                go_duration(self.read_body_timeout),
            ),
            ("web.idle-timeout".into(), go_duration(self.idle_timeout)),
            ("web.write-timeout".into(), go_duration(self.write_timeout)),
            (
                "push.max-body-bytes-in-flight".into(),
                format_bytes(self.max_body_bytes_in_flight),
            ),
            (
                "push.max-body-bytes".into(),
                format_bytes(self.max_body_bytes),
            ),
            (
                "push.max-decompressed-bytes".into(),
                format_bytes(self.max_decompressed_bytes),
            ),
            ("push.max-series".into(), self.max_series.to_string()),
            (
                "push.max-error-lines".into(),
                self.max_error_lines.to_string(),
            ),
        ];
        // Flags 1.5.1 does not have are reported only when set away from their default,
        // so that the status of a default run has exactly 1.5.1's keys.
        let default = |k: &str| {
            lookup(k).map(|f| match f.kind {
                Kind::Value if k.contains("-bytes") => parse_bytes(f.default).map(format_bytes),
                Kind::Value if k.contains("timeout") => {
                    parse_go_duration(f.default).map(go_duration)
                }
                _ => Some(f.default.to_string()),
            })
        };
        all.into_iter()
            .filter(|(k, v)| match k.as_str() {
                "push.enable-utf8-names" => v == "true",
                "persistence.sync" => v != "interval",
                k if k.starts_with("web.max-")
                    || k.starts_with("push.max-")
                    || k.starts_with("web.read-")
                    || k == "web.idle-timeout"
                    || k == "web.write-timeout" =>
                {
                    default(k).flatten().as_deref() != Some(v.as_str())
                }
                _ => true,
            })
            .collect()
    }
}

/// Parses a Go duration (`5m`, `1h30m`, `1.5s`, `300ms`, `0`), as kingpin does.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        nanos += num * scale;
    }
    (nanos.is_finite() && nanos < u64::MAX as f64)
        .then(|| std::time::Duration::from_nanos(nanos.round() as u64))
}

/// Parses a size in bytes as kingpin's `Base2Bytes` does: a number with an optional unit
/// (`B`, `KB`, `MB`, `GB`, `TB`, each 1024 times the last; `KiB`... too).
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let shift = match &s[digits..] {
        "" | "B" => 0,
        "KB" | "KiB" | "K" => 10,
        "MB" | "MiB" | "M" => 20,
        "GB" | "GiB" | "G" => 30,
        "TB" | "TiB" | "T" => 40,
        _ => return None,
    };
    usize::try_from(n.checked_mul(1u64 << shift)?).ok()
}

/// Formats a size as kingpin's `Base2Bytes` does: the largest unit that divides it.
pub fn format_bytes(n: usize) -> String {
    for (shift, unit) in [(40, "TB"), (30, "GB"), (20, "MB"), (10, "KB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

#[derive(Debug, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value flag's value: as given, or the default `FLAGS` gives it.
fn value(given: Option<String>, name: &str) -> String {
    debug_assert!(lookup(name).is_some(), "--{name} is not in FLAGS");
    given.unwrap_or_else(|| lookup(name).map_or("", |f| f.default).to_string())
}

fn lookup(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// Rewrites upstream spellings into argh's: `--a.b=v` and `--a.b v` become `--a-b v`;
/// `--a.b`, `--a.b=true` become `--a-b`; `--no-a.b` and `--a.b=false` vanish.
fn normalize(args: &[String]) -> Result<Result<Vec<String>, Command>, CliError> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Err(Command::Help));
        }
        if arg == "--version" {
            return Ok(Err(Command::Version));
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(CliError(format!("unexpected argument {arg:?}")));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let (flag, negated) = match (lookup(name), name.strip_prefix("no-").and_then(lookup)) {
            (Some(f), _) => (f, false),
            (None, Some(f)) if f.kind == Kind::Switch && inline.is_none() => (f, true),
            _ => return Err(CliError(format!("unknown long flag '--{name}'"))),
        };
        let dashed = format!("--{}", flag.name.replace('.', "-"));
        match flag.kind {
            Kind::Switch => {
                let on = match inline {
                    None => !negated,
                    Some("true") => true,
                    Some("false") => false,
                    Some(v) => {
                        return Err(CliError(format!(
                            "invalid boolean value {v:?} for flag '--{name}'"
                        )));
                    }
                };
                if on {
                    out.push(dashed);
                }
            }
            Kind::Value => {
                let value = match inline {
                    Some(v) => v.to_string(),
                    None => it.next().cloned().ok_or_else(|| {
                        CliError(format!("expected argument for flag '--{name}'"))
                    })?,
                };
                out.push(dashed);
                out.push(value);
            }
        }
    }
    Ok(Ok(out))
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, CliError> {
    let argv = match normalize(args)? {
        Ok(argv) => argv,
        Err(cmd) => return Ok(cmd),
    };
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let raw = RawArgs::from_args(&["pushgateway"], &strs)
        .map_err(|e| CliError(e.output.trim().replace('\n', " ")))?;
    // Defaults live in `FLAGS` alone.
    let web_telemetry_path = value(raw.web_telemetry_path, "web.telemetry-path");
    let web_route_prefix = value(raw.web_route_prefix, "web.route-prefix");
    let web_external_url = value(raw.web_external_url, "web.external-url");
    let web_local_assets = value(raw.web_local_assets, "web.local-assets");
    let persistence_file = value(raw.persistence_file, "persistence.file");
    let persistence_interval = value(raw.persistence_interval, "persistence.interval");
    let persistence_sync = value(raw.persistence_sync, "persistence.sync");
    let web_max_connections = value(raw.web_max_connections, "web.max-connections");
    let web_max_header_bytes = value(raw.web_max_header_bytes, "web.max-header-bytes");
    let web_read_header_timeout = value(raw.web_read_header_timeout, "web.read-header-timeout");
    let web_read_body_timeout = value(raw.web_read_body_timeout, "web.read-body-timeout");
    let web_idle_timeout = value(raw.web_idle_timeout, "web.idle-timeout");
    let web_write_timeout = value(raw.web_write_timeout, "web.write-timeout");
    let push_max_body_bytes_in_flight = value(
        raw.push_max_body_bytes_in_flight,
        "push.max-body-bytes-in-flight",
    );
    let push_max_body_bytes = value(raw.push_max_body_bytes, "push.max-body-bytes");
    let push_max_decompressed_bytes = value(
        raw.push_max_decompressed_bytes,
        "push.max-decompressed-bytes",
    );
    let push_max_series = value(raw.push_max_series, "push.max-series");
    let push_max_error_lines = value(raw.push_max_error_lines, "push.max-error-lines");
    let log_level = value(raw.log_level, "log.level");
    let log_format = value(raw.log_format, "log.format");
    let log_level = match log_level.as_str() {
        "debug" => log::LevelFilter::Debug,
        "info" => log::LevelFilter::Info,
        "warn" => log::LevelFilter::Warn,
        "error" => log::LevelFilter::Error,
        v => {
            return Err(CliError(format!(
                "unrecognized log level {v:?} for flag '--log.level' (one of debug, info, warn, error)"
            )));
        }
    };
    let log_json = match log_format.as_str() {
        "logfmt" => false,
        "json" => true,
        v => {
            return Err(CliError(format!(
                "unrecognized log format {v:?} for flag '--log.format' (one of logfmt, json)"
            )));
        }
    };
    let mut listen = raw.web_listen_address;
    if listen.is_empty() {
        listen.push(value(None, "web.listen-address"));
    }
    for a in &listen {
        if !a.contains(':')
            || a.rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            return Err(CliError(format!(
                "invalid address {a:?} for flag '--web.listen-address' (want HOST:PORT or :PORT)"
            )));
        }
    }
    let mut telemetry_path = web_telemetry_path;
    if !telemetry_path.starts_with('/') {
        telemetry_path.insert(0, '/'); // as Go's path.Join does
    }
    Ok(Command::Run(Box::new(Config {
        listen_addresses: listen,
        telemetry_path,
        route_prefix: web_route_prefix,
        external_url: web_external_url,
        local_assets: web_local_assets,
        enable_lifecycle: raw.web_enable_lifecycle,
        enable_admin_api: raw.web_enable_admin_api,
        disable_consistency_check: raw.push_disable_consistency_check,
        utf8_names: raw.push_enable_utf8_names,
        persistence_interval: parse_go_duration(&persistence_interval).ok_or_else(|| {
            CliError(format!(
                "invalid duration {:?} for flag '--persistence.interval'",
                persistence_interval
            ))
        })?,
        persistence_sync: match persistence_sync.as_str() {
            "interval" => false,
            "always" => true,
            v => {
                return Err(CliError(format!(
                    "unrecognized value {v:?} for flag '--persistence.sync' (one of interval, always)"
                )));
            }
        },
        persistence_file,
        log_level,
        log_json,
        systemd_socket: raw.web_systemd_socket,
        max_connections: count(&web_max_connections, "web.max-connections")?,
        max_header_bytes: bytes(&web_max_header_bytes, "web.max-header-bytes")?,
        read_header_timeout: duration(&web_read_header_timeout, "web.read-header-timeout")?,
        read_body_timeout: duration(&web_read_body_timeout, "web.read-body-timeout")?,
        idle_timeout: duration(&web_idle_timeout, "web.idle-timeout")?,
        write_timeout: duration(&web_write_timeout, "web.write-timeout")?,
        max_body_bytes_in_flight: bytes(
            &push_max_body_bytes_in_flight,
            "push.max-body-bytes-in-flight",
        )?,
        max_body_bytes: bytes(&push_max_body_bytes, "push.max-body-bytes")?,
        max_decompressed_bytes: bytes(&push_max_decompressed_bytes, "push.max-decompressed-bytes")?,
        max_series: count(&push_max_series, "push.max-series")?,
        max_error_lines: count(&push_max_error_lines, "push.max-error-lines")?,
    })))
}

/// A positive whole number for flag `name`.
fn count(v: &str, name: &str) -> Result<usize, CliError> {
    v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
        CliError(format!(
            "invalid number {v:?} for flag '--{name}' (want a whole number above 0)"
        ))
    })
}

/// A positive size for flag `name`.
fn bytes(v: &str, name: &str) -> Result<usize, CliError> {
    parse_bytes(v).filter(|&n| n > 0).ok_or_else(|| {
        CliError(format!(
            "invalid size {v:?} for flag '--{name}' (want bytes, e.g. 512KB, 16MB)"
        ))
    })
}

/// A positive Go duration for flag `name`.
fn duration(v: &str, name: &str) -> Result<std::time::Duration, CliError> {
    parse_go_duration(v)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CliError(format!(
                "invalid duration {v:?} for flag '--{name}' (want e.g. 30s, 2m)"
            ))
        })
}

/// The `--help` text: every flag with its default.
pub fn help() -> String {
    let mut s = String::from(
        "usage: pushgateway [<flags>]\n\nThe Pushgateway: keeps the last push of each group of metrics for Prometheus to scrape.\n\nFlags:\n  -h, --help  Show this help.\n      --version  Show the version.\n",
    );
    for f in FLAGS {
        let arg = if f.kind == Kind::Value {
            format!("--{}={}", f.name, f.default)
        } else {
            format!("--[no-]{}", f.name)
        };
        s.push_str(&format!("      {arg}\n          {}\n", f.help));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args) {
            Ok(Command::Run(c)) => Ok(*c),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn go_durations_parse_and_print_like_go() {
        let d = |s: &str| parse_go_duration(s).map(go_duration);
        assert_eq!(d("5m").as_deref(), Some("5m0s"));
        assert_eq!(d("1h30m").as_deref(), Some("1h30m0s"));
        assert_eq!(d("1.5s").as_deref(), Some("1.5s"));
        assert_eq!(d("300ms").as_deref(), Some("300ms"));
        assert_eq!(d("0").as_deref(), Some("0s"));
        assert_eq!(d("90s").as_deref(), Some("1m30s"));
        for bad in ["", "5", "5x", "m", "-1s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_read_and_print_like_kingpin() {
        assert_eq!(parse_bytes("1MB"), Some(1 << 20));
        assert_eq!(parse_bytes("512KB"), Some(512 << 10));
        assert_eq!(parse_bytes("16MiB"), Some(16 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        for bad in ["", "MB", "1XB", "-1", "1.5MB"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        assert_eq!(format_bytes(1 << 20), "1MB");
        assert_eq!(format_bytes(1500), "1500B");
        assert_eq!(format_bytes(3 << 10), "3KB");
    }

    #[test]
    fn limits_have_defaults_and_refuse_nonsense() {
        let c = run(&[]).unwrap();
        assert_eq!(c.max_header_bytes, 1 << 20);
        assert_eq!(c.max_body_bytes, 16 << 20);
        assert_eq!(c.max_series, 100_000);
        assert_eq!(c.read_header_timeout, std::time::Duration::from_secs(30));
        // A default run reports exactly 1.5.1's status keys.
        assert!(!c.flag_values().iter().any(|(k, _)| k.contains("max-")));
        let c = run(&["--push.max-body-bytes=1KB", "--web.idle-timeout=10s"]).unwrap();
        assert_eq!(c.max_body_bytes, 1024);
        let keys: Vec<_> = c.flag_values().into_iter().collect();
        assert!(keys.contains(&("push.max-body-bytes".into(), "1KB".into())));
        assert!(keys.contains(&("web.idle-timeout".into(), "10s".into())));
        for bad in [
            "--web.max-connections=0",
            "--push.max-series=lots",
            "--web.max-header-bytes=1XB",
            "--web.read-body-timeout=0",
        ] {
            let e = run(&[bad]).unwrap_err();
            assert!(e.contains(bad.split('=').next().unwrap()), "{e}");
        }
    }

    #[test]
    fn defaults() {
        let c = run(&[]).unwrap();
        assert_eq!(c.listen_addresses, [":9091"]);
        assert_eq!(c.telemetry_path, "/metrics");
        assert!(!c.disable_consistency_check && !c.log_json);
        assert_eq!(c.log_level, log::LevelFilter::Info);
        // Every default comes from FLAGS, as --help shows it.
        assert_eq!(c.persistence_interval, std::time::Duration::from_secs(300));
        assert!(!c.persistence_sync && c.persistence_file.is_empty());
        assert_eq!(
            (c.max_connections, c.max_series, c.max_error_lines),
            (4096, 100_000, 20)
        );
        assert_eq!(c.max_body_bytes, 16 << 20);
    }

    #[test]
    fn upstream_spellings() {
        let c = run(&[
            "--web.listen-address=127.0.0.1:1",
            "--web.listen-address",
            ":2",
            "--web.telemetry-path=/m",
            "--push.disable-consistency-check",
            "--log.level",
            "debug",
            "--log.format=json",
            "--web.enable-admin-api=true",
            "--no-web.enable-lifecycle",
        ])
        .unwrap();
        assert_eq!(c.listen_addresses, ["127.0.0.1:1", ":2"]);
        assert_eq!(c.telemetry_path, "/m");
        assert!(
            c.disable_consistency_check && c.log_json && c.enable_admin_api && !c.enable_lifecycle
        );
        assert_eq!(c.log_level, log::LevelFilter::Debug);
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(run(&["--nope"]).unwrap_err(), "unknown long flag '--nope'");
        assert!(
            run(&["--log.level=loud"])
                .unwrap_err()
                .contains("--log.level")
        );
        assert!(
            run(&["--log.format=xml"])
                .unwrap_err()
                .contains("--log.format")
        );
        assert!(
            run(&["--web.listen-address"])
                .unwrap_err()
                .contains("--web.listen-address")
        );
        assert!(
            run(&["--web.listen-address=nohost"])
                .unwrap_err()
                .contains("--web.listen-address")
        );
        assert!(
            run(&["--push.disable-consistency-check=maybe"])
                .unwrap_err()
                .contains("--push.disable-consistency-check")
        );
        assert!(run(&["stray"]).is_err());
        assert_eq!(run(&["--help"]).unwrap_err(), "Help");
        assert_eq!(run(&["--version"]).unwrap_err(), "Version");
    }
}
