//! Shared by the dashboard benches: `vigil-node serve` as a real process,
//! HTTP/1.1 over loopback (logging in, GET), quantiles, the same-run
//! loopback TCP reference, and the machine and CPU time every figure is
//! printed with (as `vigil-bench`'s reports do).
#![allow(dead_code)] // each bench uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The staff password the benches log in with.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// How long a step may take before the bench gives up (a bound, not a
/// timing: debug builds under `cargo test --benches` are slow).
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// The `vigil-node` program this package builds.
pub(crate) fn vigil_node() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil-node"));
    c.env_remove("RUST_LOG");
    c
}

/// `vigil-node staff add NAME` with [`PASSWORD`] on stdin.
pub(crate) fn staff_add(data: &Path, name: &str) {
    let mut child = vigil_node()
        .args(["staff", "add", name, "--password-stdin", "--data"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run vigil-node staff add");
    writeln!(child.stdin.take().expect("piped"), "{PASSWORD}").expect("write the password");
    assert!(child.wait().expect("staff add").success());
}

/// `vigil-node serve` on loopback (QUIC on a free UDP port, the dashboard
/// on a free TCP port), its log in `log`.
pub(crate) struct Serve {
    child: Child,
    /// The dashboard's address.
    pub(crate) http: String,
}

impl Serve {
    /// Starts it with `extra` arguments and waits for its ready lines.
    pub(crate) fn start(data: &Path, extra: &[&str], log: &Path) -> Serve {
        let mut child = vigil_node()
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("the serve log"))
            .spawn()
            .expect("run vigil-node serve");
        let out = BufReader::new(child.stdout.take().expect("piped"));
        // The dashboard's line is the last of the ready lines.
        let http = out.lines().map_while(Result::ok).find_map(|l| {
            l.strip_prefix("staff dashboard on http://")
                .map(|a| a.trim_end_matches('/').to_owned())
        });
        match http {
            Some(http) => Serve { child, http },
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the node did not start: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }

    /// Its process id (for its CPU time).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it as an operator does (SIGTERM) and waits.
    pub(crate) fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()));
        assert!(self.child.wait().expect("wait for the node").success());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Only when the bench failed before stopping it: our child, by handle.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request on a new connection: (status, head, body).
pub(crate) fn http(addr: &str, req: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the dashboard");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(req.as_bytes()).expect("send the request");
    let mut all = String::new();
    s.read_to_string(&mut all).expect("read the response");
    let (head, body) = all.split_once("\r\n\r\n").expect("a response head");
    let status = head[9..12].parse().expect("a status");
    (status, head.to_owned(), body.to_owned())
}

/// GET `path` with the session cookie: (status, body).
pub(crate) fn get(addr: &str, path: &str, cookie: &str) -> (u16, String) {
    let (status, _, body) = http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    );
    (status, body)
}

/// The `name=value` of the cookie `name` a response sets.
fn set_cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|l| l.starts_with(&format!("{name}=")))
        .and_then(|l| l.split(';').next())
        .expect("the cookie is set")
        .to_owned()
}

/// Logs `name` in with [`PASSWORD`]: the session cookie.
pub(crate) fn log_in(addr: &str, name: &str) -> String {
    let (_, head, page) = http(
        addr,
        "GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let pre = set_cookie(&head, "vigil_login");
    let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    let form = format!(
        "csrf={}&name={name}&password={}",
        &page[at..at + 64],
        PASSWORD.replace(' ', "+")
    );
    let (status, head, _) = http(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nCookie: {pre}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 303, "{head}");
    set_cookie(&head, "vigil_session")
}

/// p50, p90 and max of `d`, in ms.
pub(crate) fn p50_p90_max(d: &[Duration]) -> (f64, f64, f64) {
    let mut s = d.to_vec();
    s.sort();
    let q = |p: f64| s[((s.len() as f64 * p) as usize).min(s.len() - 1)].as_secs_f64() * 1e3;
    let max = s.last().map_or(0.0, |m| m.as_secs_f64() * 1e3);
    (q(0.5), q(0.9), max)
}

/// The reference figure: `n` one-byte round trips over a loopback TCP
/// connection (to a thread echoing them), each timed.
pub(crate) fn tcp_round_trips(n: usize) -> Vec<Duration> {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("address");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let mut b = [7u8; 1];
    let out = (0..n)
        .map(|_| {
            let t = Instant::now();
            c.write_all(&b).expect("ping");
            c.read_exact(&mut b).expect("pong");
            t.elapsed()
        })
        .collect();
    drop(c);
    let _ = echo.join();
    out
}

/// CPU model and core count (the header of every figure).
pub(crate) fn machine() -> String {
    let cpu = vigil_bench::report::cpu_model();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// User CPU seconds of process `pid` (this one if `None`) so far, from
/// `/proc/PID/stat` (10 ms ticks).
pub(crate) fn user_s(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(|| "/proc/self/stat".into(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name: utime is field 14.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(11))
        .and_then(|t| t.parse::<f64>().ok())
        .map_or(0.0, |t| t / 100.0)
}

/// RFC 3339 (UTC) of a time in ms, as the commands take it.
pub(crate) fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .expect("a time in range")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
