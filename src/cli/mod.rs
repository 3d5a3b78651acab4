//! Command-line flags with the Go gateway's spellings (`--web.listen-address=:9091`): argv to a checked `Config`, `--help`, and the values `/api/v1/status` reports.
//!
//! argh can neither declare dotted names nor read `--flag=value`, so argv is first
//! rewritten against the flag table (`flags`, which owns each flag's name, default, help,
//! reading and status view) into `--flag NAME=VALUE` pairs that argh reads.

mod flags;
mod units;

use argh::FromArgs;
use flags::{FLAGS, Kind, STATUS_ONLY, Status, lookup};
use std::fmt;
pub use units::{format_bytes, parse_bytes, parse_go_duration};

/// What argh reads: the normalised argv, one `--flag NAME=VALUE` per flag given.
#[derive(FromArgs, Debug)]
/// Pushgateway
struct RawArgs {
    /// a flag as NAME=VALUE
    #[argh(option)]
    flag: Vec<String>,
}

/// The parsed, validated configuration.
#[derive(Debug, Clone, Default)]
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
    pub log_level: LogLevel,
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
    /// Flag name and current value as strings, for `/api/v1/status`: the flags 1.5.1 has,
    /// and the others only when set away from their defaults.
    pub fn flag_values(&self) -> Vec<(String, String)> {
        let default = defaults();
        let mut all: Vec<(String, String)> = FLAGS
            .iter()
            .filter(|f| {
                f.status == Status::Always || (f.access.show)(self) != (f.access.show)(&default)
            })
            .map(|f| (f.name.to_string(), (f.access.show)(self)))
            .collect();
        all.extend(
            STATUS_ONLY
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        all
    }
}

/// The configuration of a run given no flags.
fn defaults() -> Config {
    let mut c = Config::default();
    for f in FLAGS {
        // Every default is checked to read by `every_default_reads_and_only_a_list_repeats`.
        let _ = (f.access.set)(&mut c, f.default);
    }
    c
}

/// `--log.level`: a `log::LevelFilter` with a default, so that `Config` has one (every
/// real default comes from the flag table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLevel(pub log::LevelFilter);

impl Default for LogLevel {
    fn default() -> Self {
        LogLevel(log::LevelFilter::Info)
    }
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

fn read(c: &mut Config, name: &str, value: &str) -> Result<(), CliError> {
    let flag = lookup(name).ok_or_else(|| CliError(format!("unknown long flag '--{name}'")))?;
    (flag.access.set)(c, value).map_err(|flags::Bad(what, hint)| {
        CliError(format!("{what} {value:?} for flag '--{name}'{hint}"))
    })
}

/// Rewrites upstream spellings into one argh reads: `--a.b=v` and `--a.b v` become
/// `--flag a.b=v`; a switch's `--a.b`, `--a.b=true`, `--no-a.b`, `--a.b=false` become
/// `--flag a.b=true` or `--flag a.b=false`.
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
        let value = match flag.kind {
            Kind::Switch => match inline {
                None => (!negated).to_string(),
                Some(v @ ("true" | "false")) => v.to_string(),
                Some(v) => {
                    return Err(CliError(format!(
                        "invalid boolean value {v:?} for flag '--{name}'"
                    )));
                }
            },
            Kind::Value | Kind::List => match inline {
                Some(v) => v.to_string(),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| CliError(format!("expected argument for flag '--{name}'")))?,
            },
        };
        out.push("--flag".to_string());
        out.push(format!("{}={value}", flag.name));
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
    let given: Vec<(&str, &str)> = raw
        .flag
        .iter()
        .filter_map(|nv| nv.split_once('='))
        .collect();
    let values = |f: &flags::Flag| -> Vec<&str> {
        given
            .iter()
            .filter(|(n, _)| *n == f.name)
            .map(|(_, v)| *v)
            .collect()
    };
    // As kingpin: only a list flag may be given twice (checked before any value is read).
    if let Some(f) = FLAGS
        .iter()
        .find(|f| f.kind != Kind::List && values(f).len() > 1)
    {
        return Err(CliError(format!("flag '{}' cannot be repeated", f.name)));
    }
    let mut c = Config::default();
    for f in FLAGS {
        let values = values(f);
        if values.is_empty() {
            read(&mut c, f.name, f.default)?;
        }
        for v in values {
            read(&mut c, f.name, v)?;
        }
    }
    Ok(Command::Run(Box::new(c)))
}

/// The `--help` text: every flag with its default.
pub fn help() -> String {
    let mut s = String::from(
        "usage: pushgateway [<flags>]\n\nThe Pushgateway: keeps the last push of each group of metrics for Prometheus to scrape.\n\nFlags:\n  -h, --help  Show this help.\n      --version  Show the version.\n",
    );
    for f in FLAGS {
        let arg = if f.kind == Kind::Switch {
            format!("--[no-]{}", f.name)
        } else {
            format!("--{}={}", f.name, f.default)
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
        assert_eq!(c.log_level.0, log::LevelFilter::Info);
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
        assert_eq!(c.log_level.0, log::LevelFilter::Debug);
    }

    #[test]
    fn every_default_reads_and_only_a_list_repeats() {
        for f in FLAGS {
            let mut c = Config::default();
            assert!((f.access.set)(&mut c, f.default).is_ok(), "{}", f.name);
        }
        assert_eq!(
            run(&["--log.level=info", "--log.level=debug"]).unwrap_err(),
            "flag 'log.level' cannot be repeated"
        );
        assert_eq!(
            run(&["--web.enable-lifecycle", "--no-web.enable-lifecycle"]).unwrap_err(),
            "flag 'web.enable-lifecycle' cannot be repeated"
        );
    }

    #[test]
    fn a_default_run_reports_exactly_the_status_keys_of_1_5_1() {
        let mut keys: Vec<String> = run(&[])
            .unwrap()
            .flag_values()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "log.format",
                "log.level",
                "persistence.file",
                "persistence.interval",
                "push.disable-consistency-check",
                "web.config.file",
                "web.enable-admin-api",
                "web.enable-lifecycle",
                "web.external-url",
                "web.listen-address",
                "web.local-assets",
                "web.route-prefix",
                "web.systemd-socket",
                "web.telemetry-path",
            ]
        );
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
