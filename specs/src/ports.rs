//! Published ports, in Podman's `--publish` syntax: `[[ip:][hostPort]:]containerPort[/protocol]`.

use std::net::IpAddr;

use crate::error::{Check, ErrorKind};

/// Checks one `publishPorts` entry and returns it unchanged.
pub(crate) fn publish_port(text: &str) -> Check<String> {
    let bad = |why: &str| {
        Err((
            ErrorKind::InvalidValue,
            format!("{text:?} {why}; write [[ip:][hostPort]:]containerPort[/tcp|udp|sctp]"),
        ))
    };
    let (addresses, protocol) = match text.rsplit_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    if protocol.is_some_and(|p| !["tcp", "udp", "sctp"].contains(&p)) {
        return bad("has an unknown protocol");
    }
    // An IPv6 address is written in brackets: [::1]:8443:443.
    let (ip, ports) = if let Some(rest) = addresses.strip_prefix('[') {
        let Some((ip, ports)) = rest.split_once("]:") else {
            return bad("has an unclosed `[`");
        };
        (Some(ip), ports)
    } else {
        match addresses.matches(':').count() {
            0 | 1 => (None, addresses),
            2 => {
                let (ip, ports) = addresses.split_once(':').unwrap_or_default();
                (Some(ip), ports)
            }
            _ => return bad("has too many `:`"),
        }
    };
    if ip.is_some_and(|ip| !ip.is_empty() && ip.parse::<IpAddr>().is_err()) {
        return bad("has an invalid IP address");
    }
    let (host, container) = match ports.split_once(':') {
        Some((host, container)) => (Some(host), container),
        None => (None, ports),
    };
    let Some(container_len) = port_range(container) else {
        return bad("has an invalid container port");
    };
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        match port_range(host) {
            Some(len) if len == container_len => {}
            Some(_) => return bad("maps port ranges of different lengths"),
            None => return bad("has an invalid host port"),
        }
    }
    Ok(text.to_owned())
}

/// Parses `N` or `N-M` (1..=65535) and returns how many ports it spans.
fn port_range(text: &str) -> Option<u32> {
    let port = |p: &str| {
        let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| p.parse::<u16>().ok())
            .flatten()
            .filter(|&p| p > 0)
    };
    match text.split_once('-') {
        None => port(text).map(|_| 1),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            (a <= b).then(|| u32::from(b - a) + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_podman_publish_syntax() {
        for good in [
            "443",
            "8443:443",
            "127.0.0.1:8443:443",
            "127.0.0.1::443",
            "[::1]:8443:443",
            "53:53/udp",
            "8000-8001:9000-9001/tcp",
        ] {
            assert!(publish_port(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn refuses_malformed_ports() {
        for bad in [
            "",
            "0",
            "65536",
            "x:443",
            "443/icmp",
            "1.2.3:80:80",
            "8000-8002:9000-9001",
            "a:b:c:d",
            "[::1:80:80",
            "80-70",
        ] {
            assert_eq!(
                publish_port(bad).unwrap_err().0,
                ErrorKind::InvalidValue,
                "{bad}"
            );
        }
    }
}
