//! Helpers shared by the programs' tests: the clocks, the `vigil` command
//! and its result, and `vigil-node serve` as a real process; the clocks and
//! the disk scan come from vigil-testkit.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) mod in_process;

#[allow(unused_imports)] // each test file uses its own subset
pub(crate) use vigil_testkit::{
    DAY, FOREIGN_FILES, HOUR, MIN, assert_foreign_files_intact, files, now_ms, now_ms as real_now,
    period_start, put_foreign_files,
};

/// How long a debug build may take to start or stop on a busy machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// `serve` as a real process.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) addr: String,
    pub(crate) code: String,
    pub(crate) stderr: PathBuf,
}

impl Node {
    pub(crate) fn start(args: &[&str], stderr: &Path) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil-node"))
            .arg("serve")
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addr = None;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("vigil-node listening on ") {
                        addr = Some(a.to_owned());
                    }
                    if let Some(c) = line.strip_prefix("enrolment code: ") {
                        return Node {
                            child,
                            addr: addr.expect("the address comes first"),
                            code: c.to_owned(),
                            stderr: stderr.to_owned(),
                        };
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the node did not start: {}",
                        std::fs::read_to_string(stderr).unwrap_or_default()
                    );
                }
            }
        }
    }

    /// SIGTERM, then its exit status.
    pub(crate) fn terminate(self) -> std::process::ExitStatus {
        self.signal("-TERM")
    }

    /// Sends our child `signal` (e.g. `-INT`), then its exit status.
    pub(crate) fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the node did not stop: {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Only if a test failed before stopping it: our own child, by handle.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `vigil` command on the vault `dir`, with Vigil's variables cleared.
pub(crate) fn vigil(dir: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("vigil"));
    for v in [
        "VIGIL_VAULT",
        "VIGIL_KEY_FILE",
        "VIGIL_NOW",
        "VIGIL_LOG",
        "RUST_BACKTRACE",
    ] {
        c.env_remove(v);
    }
    // Times are shown in the local zone: the tests' expectations are in
    // UTC whatever the machine's zone (a test sets TZ itself to try others).
    c.env("TZ", "UTC");
    c.arg("--vault").arg(dir);
    c
}

#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) out: String,
    pub(crate) err: String,
}

impl Run {
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.out
    }

    /// Failure with `code` and one line `error: ...` mentioning `needle`.
    #[track_caller]
    pub(crate) fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "exit code: {self:#?}");
        let lines: Vec<&str> = self.err.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:#?}");
        assert!(lines[0].starts_with("error: "), "{self:#?}");
        assert!(
            self.err.contains(needle),
            "stderr should mention {needle:?}: {self:#?}"
        );
        assert!(!self.err.contains("panicked") && !self.err.contains("RUST_BACKTRACE"));
    }

    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }
}

pub(crate) fn run_in(cmd: &mut Command, input: &str) -> Run {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigil runs");
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        out: String::from_utf8(stdout).unwrap(),
        err: String::from_utf8(stderr).unwrap(),
    }
}

pub(crate) fn run<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
    mut cmd: Command,
    args: I,
) -> Run {
    cmd.args(args);
    run_in(&mut cmd, "")
}

/// RFC 3339 (UTC, whole seconds), computed here with jiff directly rather
/// than through the CLI's own formatting.
pub(crate) fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
