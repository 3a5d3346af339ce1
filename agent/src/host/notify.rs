//! `sd_notify`: tells systemd when ramlet is ready, reloading and what it is doing
//! (`Type=notify` and `Type=notify-reload` units), and keeps its watchdog fed (`WatchdogSec=`).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `message` (such as `READY=1\nSTATUS=...`) to `$NOTIFY_SOCKET`, if systemd set one.
/// Failures are ignored: ramlet works the same without a supervisor.
pub fn notify(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let _ = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
    } else {
        socket.send_to(message.as_bytes(), &path)
    };
}

/// What ramlet says when a reload (SIGHUP: `systemctl reload`, `ramlet sync`) begins:
/// `RELOADING=1` with the monotonic clock's time, as `Type=notify-reload` (systemd 253 and
/// later) wants it; `READY=1` follows once the reconcile it asked for is done.
#[must_use]
pub fn reloading() -> String {
    let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
            + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1000
    });
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// How often to send `WATCHDOG=1`, when systemd asks for it: half of `$WATCHDOG_USEC`, if
/// `$WATCHDOG_PID` (when set) is this process.
#[must_use]
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok()? != me
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_fed_twice_per_period_and_only_by_the_process_it_names() {
        assert_eq!(
            watchdog_interval_from(Some("60000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval_from(Some("60000000"), Some("7"), 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(watchdog_interval_from(Some("60000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("x"), None, 7), None);
    }
}
