//! The service driven in-process, as the daemon would drive it: requests in, answers out, no server.

use pushgateway::http::route::RouteConfig;
use pushgateway::http::service::{Body, Head, PushLimits, Request, Response, Service, Settings};
use pushgateway::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn service_with(admin: bool, lifecycle: bool, check: bool) -> (Arc<Service>, Arc<AtomicUsize>) {
    service_over(Arc::new(Store::new()), admin, lifecycle, check)
}

/// A service over `store`; also counts the calls of its quit hook.
pub fn service_over(
    store: Arc<Store>,
    admin: bool,
    lifecycle: bool,
    check: bool,
) -> (Arc<Service>, Arc<AtomicUsize>) {
    let quits = Arc::new(AtomicUsize::new(0));
    let q = quits.clone();
    let settings = Settings {
        routes: RouteConfig {
            prefix: String::new(),
            telemetry_path: "/metrics".into(),
            enable_admin: admin,
            enable_lifecycle: lifecycle,
        },
        disable_consistency_check: !check,
        utf8_names: false,
        flags: Vec::new(),
        limits: PushLimits {
            max_decompressed: 1 << 16,
            ..PushLimits::default()
        },
    };
    let quit = Box::new(move || {
        q.fetch_add(1, Ordering::Relaxed);
    });
    (Arc::new(Service::new(store, settings, quit)), quits)
}

pub fn service() -> Arc<Service> {
    service_with(true, true, true).0
}

pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    Request {
        head: Head {
            method: method.into(),
            path,
            query,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_lowercase(), v.to_string()))
                .collect(),
            remote: None,
        },
        body: body.to_vec(),
    }
}

/// Status, headers and body text, as the client gets them.
pub fn call(
    s: &Arc<Service>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(&'static str, String)>, String) {
    let r = s.handle_deferred(request(method, target, headers, body));
    let r: Response = async_std::task::block_on(s.settle(r));
    let text = match r.body {
        Body::Empty => String::new(),
        Body::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        Body::Pieces(p) => p.iter().map(|s| s.lines().to_string()).collect(),
    };
    (r.status, r.headers, text)
}
