//! The daemon: flags, logging, store, HTTP listeners, and graceful shutdown on signals (the library does the rest).

use pushgateway::http::{self, route, service};
use pushgateway::store::{self, selfmetrics};
use pushgateway::{cli, logger, persist};

use async_std::channel;
use async_std::io::ReadExt;
use async_std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match cli::parse(&args) {
        Ok(cli::Command::Run(c)) => *c,
        Ok(cli::Command::Help) => {
            print!("{}", cli::help());
            return;
        }
        Ok(cli::Command::Version) => {
            println!("pushgateway, version {} (rust)", selfmetrics::VERSION);
            return;
        }
        Err(e) => {
            eprintln!("pushgateway: error: {e}, try --help");
            std::process::exit(2);
        }
    };
    logger::init(config.log_level.0, config.log_json);
    // Before any thread starts: taking systemd's sockets clears its variables. Our own
    // sockets are bound later, once the store is loaded (as Go does): until then a
    // client is refused rather than left waiting.
    let systemd = if config.systemd_socket {
        match http::systemd_listeners() {
            Ok(l) => Some(l),
            Err(e) => {
                log::error!("HTTP server stopped: {e}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    let nofile = http::raise_nofile_limit();
    std::process::exit(async_std::task::block_on(run(config, systemd, nofile)));
}

async fn run(config: cli::Config, systemd: Option<Vec<std::net::TcpListener>>, nofile: u64) -> i32 {
    log::info!("starting pushgateway version={}", selfmetrics::VERSION);
    let (quit_tx, quit_rx) = channel::bounded::<&'static str>(4);
    let store = Arc::new(store::Store::new().with_utf8_names(config.utf8_names));
    let settings = service::Settings {
        routes: route::RouteConfig {
            prefix: route::route_prefix(&config.route_prefix, &config.external_url),
            telemetry_path: config.telemetry_path.clone(),
            enable_admin: config.enable_admin_api,
            enable_lifecycle: config.enable_lifecycle,
        },
        disable_consistency_check: config.disable_consistency_check,
        utf8_names: config.utf8_names,
        flags: config.flag_values(),
        limits: service::PushLimits {
            max_decompressed: config.max_decompressed_bytes,
            max_series: config.max_series,
            max_error_lines: config.max_error_lines,
        },
    };
    let tx = quit_tx.clone();
    let quit = Box::new(move || {
        let _ = tx.try_send("quit requested over HTTP");
    });
    let persister = if config.persistence_file.is_empty() {
        None
    } else {
        let opts = persist::Options {
            file: config.persistence_file.clone().into(),
            interval: config.persistence_interval,
            durable: config.persistence_sync,
            utf8_names: config.utf8_names,
        };
        match persist::Persister::start(opts, store.clone()) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                log::error!(
                    "cannot start persistence: file={} err=\"{e}\"",
                    config.persistence_file
                );
                return 1;
            }
        }
    };
    let settle = persister.as_ref().and_then(|p| p.settle());
    let service =
        Arc::new(service::Service::new(store.clone(), settings, quit).with_settle(settle));
    let listeners = match systemd.map_or_else(|| http::bind(&config.listen_addresses), Ok) {
        Ok(l) => l,
        Err(e) => {
            // The Go gateway exits 0 here; a supervisor must see the failure.
            log::error!("HTTP server stopped: {e}");
            return 1;
        }
    };
    if let Err(e) = watch_signals(quit_tx, persister.clone()) {
        log::warn!("cannot watch termination signals: {e}");
    }
    for l in &listeners {
        // The bound address, so that `:0` (any free port) can be found by whoever started us.
        if let Ok(a) = l.local_addr() {
            log::info!("listening on address={a}");
        }
    }
    let limits = http::Limits {
        max_header_bytes: config.max_header_bytes,
        max_body_bytes: config.max_body_bytes,
        head_timeout: config.read_header_timeout,
        body_timeout: config.read_body_timeout,
        idle_timeout: config.idle_timeout,
        write_timeout: config.write_timeout,
        max_connections: config.max_connections,
        max_body_bytes_in_flight: config.max_body_bytes_in_flight,
    };
    let server = http::Server::start(listeners, service, limits, nofile);
    let reason = quit_rx.recv().await.unwrap_or("shutdown");
    log::info!("{reason}, shutting down");
    // No new requests; those in flight are answered. Then no change is taken any more, so
    // that the final write holds every change that was acknowledged.
    server.drain(Duration::from_secs(15)).await;
    store.close();
    if let Some(p) = persister {
        // The final write: off the executor, it may take a while on a slow disk.
        async_std::task::spawn_blocking(move || p.shutdown()).await;
    }
    log::info!("see you next time!");
    0
}

/// Forwards SIGTERM and SIGINT into the shutdown channel, and turns SIGHUP into an
/// immediate write of the persistence file (the Go gateway dies on SIGHUP without
/// writing; we keep serving), each through a self-pipe.
fn watch_signals(
    tx: channel::Sender<&'static str>,
    persister: Option<Arc<persist::Persister>>,
) -> std::io::Result<()> {
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
    }
    let mut read = UnixStream::from(read);
    async_std::task::spawn(async move {
        let mut byte = [0u8];
        if read.read(&mut byte).await.is_ok() {
            let _ = tx.send("received a termination signal").await;
        }
    });
    let (hup_read, hup_write) = std::os::unix::net::UnixStream::pair()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, hup_write)?;
    let mut hup_read = UnixStream::from(hup_read);
    async_std::task::spawn(async move {
        let mut byte = [0u8];
        while matches!(hup_read.read(&mut byte).await, Ok(1)) {
            match &persister {
                Some(p) => {
                    log::info!("received SIGHUP, writing the persistence file");
                    p.write_now();
                }
                None => log::info!("received SIGHUP; no persistence file to write"),
            }
        }
    });
    Ok(())
}
