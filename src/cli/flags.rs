//! The flag table: each flag's name, kind, default, help text, how its value is read into a `Config`, and how `/api/v1/status` shows it.

use super::Config;
use super::units::{format_bytes, parse_bytes, parse_go_duration};
use crate::model::gospell::go_duration;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `--name`, `--no-name`, `--name=true|false`.
    Switch,
    /// `--name=value` or `--name value`, given at most once.
    Value,
    /// A value that may be given again and again; the first one given replaces the default.
    List,
}

/// Whether `/api/v1/status` lists a flag.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Always: a flag of the Go gateway 1.5.1, which lists every one of its flags.
    Always,
    /// Only when set away from its default, so that a default run's status has exactly 1.5.1's keys.
    WhenChanged,
}

/// A value a flag cannot take: what it is (`"invalid size"`) and a hint (`" (want …)"`);
/// the caller names the flag and the value.
pub(super) struct Bad(pub &'static str, pub &'static str);

/// How a flag's value goes into a `Config` and comes back out for `/api/v1/status`.
pub(super) struct Access {
    pub set: fn(&mut Config, &str) -> Result<(), Bad>,
    pub show: fn(&Config) -> String,
}

pub(super) struct Flag {
    pub name: &'static str,
    pub kind: Kind,
    /// Read through `access.set` like a given value, so a default is written here alone.
    pub default: &'static str,
    pub help: &'static str,
    pub access: Access,
    pub status: Status,
}

pub(super) fn lookup(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// A string kept as given.
macro_rules! text {
    ($field:ident) => {
        Access {
            set: |c, v| {
                c.$field = v.to_string();
                Ok(())
            },
            show: |c| c.$field.clone(),
        }
    };
}

/// A switch: `normalize` has already turned it into `true` or `false`.
macro_rules! switch {
    ($field:ident) => {
        Access {
            set: |c, v| {
                c.$field = v == "true";
                Ok(())
            },
            show: |c| c.$field.to_string(),
        }
    };
}

/// A whole number above 0.
macro_rules! count {
    ($field:ident) => {
        Access {
            set: |c, v| {
                c.$field = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(Bad("invalid number", " (want a whole number above 0)"))?;
                Ok(())
            },
            show: |c| c.$field.to_string(),
        }
    };
}

/// A size above 0 in kingpin's spelling (`512KB`).
macro_rules! bytes {
    ($field:ident) => {
        Access {
            set: |c, v| {
                c.$field = parse_bytes(v)
                    .filter(|&n| n > 0)
                    .ok_or(Bad("invalid size", " (want bytes, e.g. 512KB, 16MB)"))?;
                Ok(())
            },
            show: |c| format_bytes(c.$field),
        }
    };
}

/// A Go duration above 0.
macro_rules! duration {
    ($field:ident) => {
        Access {
            set: |c, v| {
                c.$field = parse_go_duration(v)
                    .filter(|d| !d.is_zero())
                    .ok_or(Bad("invalid duration", " (want e.g. 30s, 2m)"))?;
                Ok(())
            },
            show: |c| go_duration(c.$field),
        }
    };
}

const fn listen() -> Access {
    Access {
        set: |c, v| {
            let port = v.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            if !matches!(port, Some(Ok(_))) {
                return Err(Bad("invalid address", " (want HOST:PORT or :PORT)"));
            }
            c.listen_addresses.push(v.to_string());
            Ok(())
        },
        show: |c| c.listen_addresses.join(","),
    }
}

const fn telemetry_path() -> Access {
    Access {
        set: |c, v| {
            // As Go's path.Join does.
            c.telemetry_path = if v.starts_with('/') {
                v.to_string()
            } else {
                format!("/{v}")
            };
            Ok(())
        },
        show: |c| c.telemetry_path.clone(),
    }
}

/// The persistence interval may be 0 (write after every change), unlike the timeouts.
const fn interval() -> Access {
    Access {
        set: |c, v| {
            c.persistence_interval = parse_go_duration(v).ok_or(Bad("invalid duration", ""))?;
            Ok(())
        },
        show: |c| go_duration(c.persistence_interval),
    }
}

const fn sync() -> Access {
    Access {
        set: |c, v| {
            c.persistence_sync = match v {
                "interval" => false,
                "always" => true,
                _ => return Err(Bad("unrecognized value", " (one of interval, always)")),
            };
            Ok(())
        },
        show: |c| {
            if c.persistence_sync {
                "always"
            } else {
                "interval"
            }
            .into()
        },
    }
}

const fn log_level() -> Access {
    Access {
        set: |c, v| {
            c.log_level.0 = match v {
                "debug" => log::LevelFilter::Debug,
                "info" => log::LevelFilter::Info,
                "warn" => log::LevelFilter::Warn,
                "error" => log::LevelFilter::Error,
                _ => {
                    return Err(Bad(
                        "unrecognized log level",
                        " (one of debug, info, warn, error)",
                    ));
                }
            };
            Ok(())
        },
        show: |c| c.log_level.0.to_string().to_lowercase(),
    }
}

const fn log_format() -> Access {
    Access {
        set: |c, v| {
            c.log_json = match v {
                "logfmt" => false,
                "json" => true,
                _ => return Err(Bad("unrecognized log format", " (one of logfmt, json)")),
            };
            Ok(())
        },
        show: |c| if c.log_json { "json" } else { "logfmt" }.into(),
    }
}

/// Every flag, in `--help`'s order.
pub(super) const FLAGS: &[Flag] = &[
    Flag {
        name: "web.listen-address",
        kind: Kind::List,
        default: ":9091",
        help: "Address to listen on for the web interface, API, and telemetry; repeat for several. \":PORT\" listens on all interfaces.",
        access: listen(),
        status: Status::Always,
    },
    Flag {
        name: "web.telemetry-path",
        kind: Kind::Value,
        default: "/metrics",
        help: "Path under which to expose metrics.",
        access: telemetry_path(),
        status: Status::Always,
    },
    Flag {
        name: "web.external-url",
        kind: Kind::Value,
        default: "",
        help: "The URL under which the Pushgateway is externally reachable; its path prefixes every route when --web.route-prefix is empty.",
        access: text!(external_url),
        status: Status::Always,
    },
    Flag {
        name: "web.route-prefix",
        kind: Kind::Value,
        default: "",
        help: "Prefix for the internal routes of web endpoints. Defaults to the path of --web.external-url.",
        access: text!(route_prefix),
        status: Status::Always,
    },
    Flag {
        name: "web.local-assets",
        kind: Kind::Value,
        default: "",
        help: "Accepted for Debian's prometheus-pushgateway unit files and ignored: the web UI is built in.",
        access: text!(local_assets),
        status: Status::Always,
    },
    Flag {
        name: "web.systemd-socket",
        kind: Kind::Switch,
        default: "false",
        help: "Use systemd socket activation listeners (LISTEN_FDS) instead of port listeners; --web.listen-address is then ignored.",
        access: switch!(systemd_socket),
        status: Status::Always,
    },
    Flag {
        name: "web.max-connections",
        kind: Kind::Value,
        default: "4096",
        help: "Maximum number of open connections across all listeners (capped further by the descriptor limit). Beyond it, the connection that has waited longest without a request in flight is closed to make room; if every one is answering a request, the new one gets a 503.",
        access: count!(max_connections),
        status: Status::WhenChanged,
    },
    Flag {
        name: "web.max-header-bytes",
        kind: Kind::Value,
        default: "1MB",
        help: "Maximum size of a request head (request line and headers), as Go's MaxHeaderBytes; beyond it, 431.",
        access: bytes!(max_header_bytes),
        status: Status::WhenChanged,
    },
    Flag {
        name: "web.read-header-timeout",
        kind: Kind::Value,
        default: "30s",
        help: "Maximum time from the first byte of a request head to its end; then the connection is closed.",
        access: duration!(read_header_timeout),
        status: Status::WhenChanged,
    },
    Flag {
        name: "web.read-body-timeout",
        kind: Kind::Value,
        default: "2m",
        help: "Maximum time to receive a request body once its head is read; then 408 and the connection is closed.",
        access: duration!(read_body_timeout),
        status: Status::WhenChanged,
    },
    Flag {
        name: "web.idle-timeout",
        kind: Kind::Value,
        default: "5m",
        help: "Maximum time a keep-alive connection waits for its next request; then it is closed.",
        access: duration!(idle_timeout),
        status: Status::WhenChanged,
    },
    Flag {
        name: "web.write-timeout",
        kind: Kind::Value,
        default: "2m",
        help: "Maximum time an answer may wait for its client to take more of it; then the connection is closed.",
        access: duration!(write_timeout),
        status: Status::WhenChanged,
    },
    Flag {
        name: "push.max-body-bytes-in-flight",
        kind: Kind::Value,
        default: "64MB",
        help: "Maximum request body bytes (as sent) held at once across all requests being read, queued or handled; beyond it, 503.",
        access: bytes!(max_body_bytes_in_flight),
        status: Status::WhenChanged,
    },
    Flag {
        name: "push.max-body-bytes",
        kind: Kind::Value,
        default: "16MB",
        help: "Maximum size of a request body as sent (checked on Content-Length before reading, and while reading); beyond it, 413.",
        access: bytes!(max_body_bytes),
        status: Status::WhenChanged,
    },
    Flag {
        name: "push.max-decompressed-bytes",
        kind: Kind::Value,
        default: "32MB",
        help: "Maximum size of a gzip or snappy request body once decompressed; beyond it, 413.",
        access: bytes!(max_decompressed_bytes),
        status: Status::WhenChanged,
    },
    Flag {
        name: "push.max-series",
        kind: Kind::Value,
        default: "100000",
        help: "Maximum number of series (sample lines, or protobuf metrics) in one push; beyond it, 400 and nothing is stored.",
        access: count!(max_series),
        status: Status::WhenChanged,
    },
    Flag {
        name: "push.max-error-lines",
        kind: Kind::Value,
        default: "20",
        help: "Maximum number of errors listed in the answer to a refused push (the rest are counted).",
        access: count!(max_error_lines),
        status: Status::WhenChanged,
    },
    Flag {
        name: "web.enable-lifecycle",
        kind: Kind::Switch,
        default: "false",
        help: "Enable shutdown via HTTP request (PUT or POST /-/quit).",
        access: switch!(enable_lifecycle),
        status: Status::Always,
    },
    Flag {
        name: "web.enable-admin-api",
        kind: Kind::Switch,
        default: "false",
        help: "Enable API endpoints for admin control actions (PUT /api/v1/admin/wipe).",
        access: switch!(enable_admin_api),
        status: Status::Always,
    },
    Flag {
        name: "push.disable-consistency-check",
        kind: Kind::Switch,
        default: "false",
        help: "Answer pushes with 202 before the outcome is known, as the Go gateway does with this flag. Pushes are still checked (cheaply), so inconsistent data is never stored.",
        access: switch!(disable_consistency_check),
        status: Status::Always,
    },
    Flag {
        name: "persistence.file",
        kind: Kind::Value,
        default: "",
        help: "File to persist metrics. If empty, metrics are only kept in memory.",
        access: text!(persistence_file),
        status: Status::Always,
    },
    Flag {
        name: "persistence.interval",
        kind: Kind::Value,
        default: "5m",
        help: "The minimum interval at which to write out the persistence file.",
        access: interval(),
        status: Status::Always,
    },
    Flag {
        name: "persistence.sync",
        kind: Kind::Value,
        default: "interval",
        help: "interval: write the file at most once per --persistence.interval (as upstream; a crash loses what came after the last write). always: acknowledge a push, delete or wipe only once it is in an fsynced journal next to the file.",
        access: sync(),
        status: Status::WhenChanged,
    },
    Flag {
        name: "push.enable-utf8-names",
        kind: Kind::Switch,
        default: "false",
        help: "Allow UTF-8 characters in metric and label names (as upstream 1.11): quoted names in text bodies, U__-encoded names in the URL path.",
        access: switch!(utf8_names),
        status: Status::WhenChanged,
    },
    Flag {
        name: "log.level",
        kind: Kind::Value,
        default: "info",
        help: "Only log messages with the given severity or above. One of: [debug, info, warn, error]",
        access: log_level(),
        status: Status::Always,
    },
    Flag {
        name: "log.format",
        kind: Kind::Value,
        default: "logfmt",
        help: "Output format of log messages. One of: [logfmt, json]",
        access: log_format(),
        status: Status::Always,
    },
];

/// Keys the Go gateway 1.5.1 lists in `/api/v1/status` for features not here yet, with
/// their effective values, so scripts reading it find every key. Not flags: refused.
pub(super) const STATUS_ONLY: &[(&str, &str)] = &[("web.config.file", "")];
