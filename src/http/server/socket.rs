//! Listening sockets: addresses from the flags (`:PORT` dual-stack whatever the host's
//! `bindv6only` says, as Go listens), sockets handed over by systemd, descriptor limits.

use rustix::net::{AddressFamily, SocketType, sockopt};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};

/// Binds every address; `:PORT` is one socket on `[::]` that takes IPv4 too, or
/// `0.0.0.0` where the host has no IPv6.
pub fn bind(addresses: &[String]) -> Result<Vec<TcpListener>, String> {
    let mut listeners = Vec::new();
    for a in addresses {
        let listener = match a.strip_prefix(':') {
            Some(port) => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("listen tcp {a}: invalid port"))?;
                match listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
                    // Only a host without IPv6 falls back; any other error is the answer.
                    Err(e) if no_ipv6(&e) => {
                        listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
                    }
                    other => other,
                }
            }
            None => a
                .to_socket_addrs()
                .and_then(|mut addrs| {
                    addrs
                        .next()
                        .ok_or_else(|| std::io::Error::other("no address"))
                })
                .and_then(listen),
        };
        listeners.push(listener.map_err(|e| format!("listen tcp {a}: {e}"))?);
    }
    Ok(listeners)
}

fn no_ipv6(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::AFNOSUPPORT, Errno::ADDRNOTAVAIL]
        .iter()
        .any(|n| e.raw_os_error() == Some(n.raw_os_error()))
}

/// A listening socket on `addr`. On `[::]`, IPV6_V6ONLY is set off on the socket itself,
/// so that the host's `net.ipv6.bindv6only` does not decide whether IPv4 clients can
/// connect. The backlog is the kernel's maximum, as Go's: std's 128 overflows when a few
/// hundred clients connect at once, and a dropped SYN costs its client a second.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let family = if addr.is_ipv6() {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        sockopt::set_ipv6_v6only(&fd, false)?;
    }
    // As Go and std do: a restarted daemon can bind while old connections linger.
    sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, 4096)?;
    Ok(TcpListener::from(fd))
}

/// The TCP sockets systemd passed (`LISTEN_FDS`, `LISTEN_PID`), as upstream's
/// `--web.systemd-socket` takes them. Call before any thread starts: it clears the
/// variables, as sd_listen_fds(3) does, so that children do not take them too.
pub fn systemd_listeners() -> Result<Vec<TcpListener>, String> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i) {
            Ok(Some(l)) => listeners.push(l),
            Ok(None) => {}
            Err(e) => return Err(format!("socket {} from systemd: {e}", i + 3)),
        }
    }
    if listeners.is_empty() {
        return Err("no listening sockets from systemd (LISTEN_FDS is not set)".into());
    }
    Ok(listeners)
}

/// Raises the soft limit on open descriptors to the hard limit (as Go's runtime does at
/// start) and returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (limit.current, limit.maximum)
        && cur < max
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        )
        .is_ok()
    {
        return max;
    }
    limit.current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_takes_ipv4_and_ipv6_clients() {
        let l = bind(&[":0".to_string()]).unwrap();
        let port = l[0].local_addr().unwrap().port();
        // IPv6 clients, and bindv6only, are tried in a network namespace (tests/abuse.rs).
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("IPv4 client");
    }
}
