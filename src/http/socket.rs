//! Listening sockets: addresses from the flags (`:PORT` dual-stack whatever the host's
//! `bindv6only` says, as Go listens), sockets handed over by systemd, descriptor limits.

use rustix::net::{AddressFamily, SocketType, sockopt};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

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
                dual_stack(port)
                    .or_else(|_| TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))))
            }
            None => TcpListener::bind(a.as_str()),
        };
        listeners.push(listener.map_err(|e| format!("listen tcp {a}: {e}"))?);
    }
    Ok(listeners)
}

/// `[::]:port` with IPV6_V6ONLY off, set on the socket itself so that the host's
/// `net.ipv6.bindv6only` does not decide whether IPv4 clients can connect.
fn dual_stack(port: u16) -> std::io::Result<TcpListener> {
    let fd = rustix::net::socket_with(
        AddressFamily::INET6,
        SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_ipv6_v6only(&fd, false)?;
    // As Go and std do: a restarted daemon can bind while old connections linger.
    sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))?;
    rustix::net::listen(&fd, 1024)?;
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
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("IPv4 client");
        if std::net::TcpStream::connect(("::1", port)).is_err() {
            // A host without IPv6 gets the IPv4 fallback; the IPv4 connect above is what counts.
            assert!(l[0].local_addr().unwrap().is_ipv4());
        }
    }
}
