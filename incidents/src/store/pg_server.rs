//! A private PostgreSQL server for tests (test support, feature `pg-test-server`): the store
//! suite, the collector's tests and the end-to-end tests run [`PgStore`](super::PgStore) against
//! a real server, started on 127.0.0.1 at a free port in a temporary directory and stopped when
//! the [`PgServer`] is dropped.
//!
//! Debian's `postgresql` package (binaries found with `pg_config --bindir`, else under
//! `/usr/lib/postgresql/*/bin`). `initdb` and `postgres` refuse to run as root: as root the
//! directory is given to `nobody` and both run as `nobody` through `setpriv`, which also sets a
//! parent-death signal, so a test process killed before its drops ran takes its server with it.
//! That signal is sent when the *thread* that started the server ends: start it on the thread
//! that holds it. Durability is off (`fsync=off`): the data are a test's.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections, or to stop.
const PATIENCE: Duration = Duration::from_secs(30);
/// The superuser `initdb` creates (trust authentication on loopback).
pub const USER: &str = "faultline";

/// A running private PostgreSQL server.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// `nobody` when the test runs as root.
    run_as: Option<&'static str>,
    process: Option<Child>,
}

impl PgServer {
    /// Initialises a cluster in a new temporary directory and starts it on a free port; panics
    /// (a test's failure) when PostgreSQL is not installed or does not start in time.
    pub fn start() -> Self {
        let bin = bindir();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let root = std::fs::metadata(dir.path()).is_ok_and(|m| m.uid() == 0);
        let run_as = root.then_some("nobody");
        if root {
            let (uid, gid) = nobody();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {} to nobody: {e}", dir.path().display()));
        }
        let data = dir.path().join("data");
        let out = as_user(run_as, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "-N", "-E", "UTF8", "--locale=C"])
            .output()
            .unwrap_or_else(|e| panic!("initdb in {}: {e}", bin.display()));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut server = Self {
            dir,
            bin,
            port,
            run_as,
            process: None,
        };
        server.resume();
        server
    }

    /// The URL a client connects with (database `postgres`, no password).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server again on the same data and port after [`stop`](Self::stop) (a no-op
    /// while it runs); returns once it accepts connections.
    pub fn resume(&mut self) {
        if self.process.is_some() {
            return;
        }
        let log = std::fs::File::create(self.log_path())
            .unwrap_or_else(|e| panic!("server log {}: {e}", self.log_path().display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("server log: {e}"));
        let child = as_user(self.run_as, &self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "shared_buffers=16MB"])
            .args(["-c", "max_connections=40"])
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("postgres in {}: {e}", self.bin.display()));
        self.process = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", USER, "-d", "postgres"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            let exited = self
                .process
                .as_mut()
                .and_then(|p| p.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                self.stop();
                panic!("PostgreSQL did not start on port {}: {log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: sessions are cut), keeping its data.
    pub fn stop(&mut self) {
        let Some(mut child) = self.process.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `program` run as `user` (when given), dying with the thread that started it.
fn as_user(user: Option<&str>, program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    if let Some(user) = user {
        command.args(["--reuid", user, "--regid", "nogroup", "--clear-groups"]);
    }
    command.args(["--pdeathsig", "KILL"]).arg(program);
    // The server's working directory must be readable by the user it runs as.
    command.current_dir("/");
    command
}

/// The PostgreSQL server binaries' directory.
fn bindir() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .max();
    from_pg_config
        .into_iter()
        .chain(installed)
        .find(|dir| dir.join("postgres").exists() && dir.join("initdb").exists())
        .unwrap_or_else(|| {
            panic!("PostgreSQL server binaries not found: install Debian's `postgresql`")
        })
}

/// The uid and gid of `nobody`, from /etc/passwd.
fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"nobody") && f.len() > 3)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .unwrap_or((65534, 65534))
}

/// A port free on 127.0.0.1 just now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}
