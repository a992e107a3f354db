//! systemd's readiness and watchdog protocol (sd_notify), for `Type=notify` with `WatchdogSec=`.
//!
//! The protocol is one datagram per message (`READY=1`, `WATCHDOG=1`, …) to the Unix socket
//! named in `$NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`). That is a
//! few lines with std, so no crate. Outside systemd (`NOTIFY_SOCKET` unset) nothing is sent.
//!
//! The watchdog interval is `$WATCHDOG_USEC`; systemd expects a ping well inside it and
//! sd_watchdog_enabled(3) recommends half, which leaves a whole half for a slow moment on a busy
//! board. `$WATCHDOG_PID`, when set, names the process the watchdog is for: another process (a
//! child that inherited the environment) must not ping on its behalf.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

/// Where to send notifications. Sending never fails loudly: a lost notification is systemd's to
/// notice (a missed READY=1 times the start out, a missed WATCHDOG=1 restarts rtcam), and rtcam
/// must not stop streaming because its supervisor went away.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Arc<UnixDatagram>,
    addr: SocketAddr,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; None when it is unset or unusable (logged).
    pub fn from_env() -> Option<Notifier> {
        Notifier::from_var(std::env::var_os("NOTIFY_SOCKET").as_deref())
    }

    /// The pure part of `from_env`: the variable's value, if set.
    pub fn from_var(path: Option<&OsStr>) -> Option<Notifier> {
        let path = path?;
        match Notifier::new(path) {
            Ok(n) => Some(n),
            Err(e) => {
                log::warn!("NOTIFY_SOCKET={}: {e}", path.to_string_lossy());
                None
            }
        }
    }

    /// A notifier for the socket `path` (`/run/…` or `@abstract`).
    pub fn new(path: &OsStr) -> io::Result<Notifier> {
        let bytes = path.as_bytes();
        let addr = match bytes.split_first() {
            None => return Err(io::Error::other("empty socket name")),
            Some((b'@', name)) => abstract_addr(name)?,
            Some((b'/', _)) => SocketAddr::from_pathname(path)?,
            Some(_) => return Err(io::Error::other("not an absolute path or @name")),
        };
        Ok(Notifier {
            socket: Arc::new(UnixDatagram::unbound()?),
            addr,
        })
    }

    /// Sends one message, e.g. `"READY=1\nSTATUS=…"`.
    pub fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            log::debug!("sd_notify {message:?}: {e}");
        }
    }

    /// The service is up: sockets bound and serving. `status` is what `systemctl status` shows.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::other("abstract sockets exist only on Linux"))
}

/// STATUS= ends at a newline: keep the message to one line.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// How often to send WATCHDOG=1, from `$WATCHDOG_USEC` and `$WATCHDOG_PID`: half the interval,
/// or None when there is no watchdog for this process.
pub fn watchdog_period_from_env() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_period(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The pure part of `watchdog_period_from_env`.
pub fn watchdog_period(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

/// The watchdog, for the event loop to run: pings now and then every `period`, for as long as
/// the executor that runs it keeps running (which is what makes the pings mean "the loop is
/// alive": a blocked or dead loop thread stops them, and systemd restarts rtcam).
pub async fn watchdog(notifier: Notifier, period: Duration) {
    loop {
        notifier.watchdog();
        smol::Timer::after(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(name: &str) -> (UnixDatagram, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("rtcam-notify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        (UnixDatagram::bind(&path).unwrap(), path)
    }

    fn recv(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let (socket, path) = receiver("path");
        let n = Notifier::new(path.as_os_str()).unwrap();
        n.ready("streaming on http://x/\nsecond line");
        assert_eq!(
            recv(&socket),
            "READY=1\nSTATUS=streaming on http://x/ second line"
        );
        n.watchdog();
        assert_eq!(recv(&socket), "WATCHDOG=1");
        n.stopping();
        assert_eq!(recv(&socket), "STOPPING=1");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("rtcam-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(OsStr::new(&format!("@{name}"))).unwrap();
        n.watchdog();
        assert_eq!(recv(&socket), "WATCHDOG=1");
    }

    #[test]
    fn nothing_is_sent_without_notify_socket() {
        assert!(Notifier::from_var(None).is_none());
    }

    #[test]
    fn unusable_socket_names_are_refused() {
        for bad in ["", "relative/path", "notify.sock"] {
            assert!(Notifier::new(OsStr::new(bad)).is_err(), "{bad:?}");
            assert!(
                Notifier::from_var(Some(OsStr::new(bad))).is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_vanished_supervisor_is_not_an_error() {
        let n = Notifier::new(OsStr::new("/nonexistent/rtcam/notify.sock")).unwrap();
        n.ready("x");
        n.watchdog();
    }

    #[test]
    fn watchdog_pings_at_half_the_interval_for_this_process_only() {
        assert_eq!(
            watchdog_period(Some("20000000"), None, 7),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            watchdog_period(Some("20000000"), Some("7"), 7),
            Some(Duration::from_secs(10))
        );
        assert_eq!(watchdog_period(Some("20000000"), Some("8"), 7), None);
        assert_eq!(watchdog_period(Some("20000000"), Some("x"), 7), None);
        assert_eq!(watchdog_period(None, Some("7"), 7), None);
        assert_eq!(watchdog_period(Some("0"), None, 7), None);
        assert_eq!(watchdog_period(Some("soon"), None, 7), None);
    }
}
