//! `sd_notify`: tells systemd when ramlet is ready and what it is doing (`Type=notify` units).

use std::os::unix::net::UnixDatagram;

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
