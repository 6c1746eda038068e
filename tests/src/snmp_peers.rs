//! Real SNMP peers on 127.0.0.1 for the tests of every crate: net-snmp `snmpd` and `snmpsim`
//! with recordings of real devices, on free ports, killed when the guard drops. Recorded values
//! can be served as [`Writable`], so a test changes a device's state with an SNMP SET. A missing
//! peer fails the test with a hint to run `scripts/snmp-peers.sh` (the README's test command does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::Daemon;
use std::path::{Path, PathBuf};
use std::process::Command;
/// The v3 user snmpd is configured with.
pub const V3_USER: &str = "faultline";
/// Its authentication passphrase (SHA-256).
pub const V3_AUTH: &str = "authpass-256";
/// Its privacy passphrase (AES).
pub const V3_PRIV: &str = "privpass-aes";

const HINT: &str = "run scripts/snmp-peers.sh to install the SNMP test peers";

/// The snmpsim venv: `$FAULTLINE_VENV` or `~/.cache/faultline/venv`.
pub fn venv() -> PathBuf {
    std::env::var_os("FAULTLINE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/faultline/venv")
        })
}

/// A UDP port nobody listens on right now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A running SNMP peer; killed on drop.
pub struct Peer {
    _child: Daemon,
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
    /// The peer's own log file.
    pub log: PathBuf,
}

impl Peer {
    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the peer logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs a net-snmp client tool (`snmpget`, `snmpset`) against this peer with v2c
    /// `community`, one try with a 1 s timeout; returns whether it succeeded and what it printed.
    fn client(&self, tool: &str, community: &str, args: &[&str]) -> (bool, String) {
        let program = crate::require_program(tool, "snmp");
        let state = self.log.with_file_name("snmp-client");
        let out = Command::new(program)
            .args([
                "-v2c",
                "-c",
                community,
                "-t",
                "1",
                "-r",
                "0",
                &self.address(),
            ])
            .args(args)
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", &state)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// SNMP SET of `oid` to `value` with `snmpset`'s type letter `kind` (`i` integer, `s`
    /// string) as `community`; panics when the peer refuses. Only [`Writable`] OIDs of an
    /// snmpsim peer take a SET.
    pub fn set(&self, community: &str, oid: &str, kind: &str, value: &str) {
        let (ok, text) = self.client("snmpset", community, &[oid, kind, value]);
        assert!(ok, "snmpset {oid} {kind} {value} as {community}: {text}");
    }

    /// Blocks until the peer answers a GET of sysUpTime as `community` (snmpsim indexes its
    /// recordings first), at most `within`; panics with the peer's log otherwise.
    pub fn wait_answering(&self, community: &str, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (ok, text) = self.client("snmpget", community, &["1.3.6.1.2.1.1.3.0"]);
            if ok {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} does not answer as {community} after {within:?}: {text}\nlog:\n{}",
                self.address(),
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// Starts snmpd with a v2c community `public` and a v3 authPriv SHA-256/AES user, state kept in
/// `dir` (so a restart keeps its engine id, as real devices do).
pub fn snmpd(dir: &Path, port: u16) -> Peer {
    let snmpd = Path::new("/usr/sbin/snmpd");
    assert!(snmpd.exists(), "/usr/sbin/snmpd is missing: {HINT}");
    let persist = dir.join("persist");
    std::fs::create_dir_all(&persist).unwrap();
    std::fs::write(
        dir.join("snmpd.conf"),
        format!(
            "agentAddress udp:127.0.0.1:{port}\nmaster no\nrocommunity public 127.0.0.1\n\
             createUser {V3_USER} SHA-256 \"{V3_AUTH}\" AES \"{V3_PRIV}\"\nrouser {V3_USER} priv\n"
        ),
    )
    .unwrap();
    let log = dir.join("snmpd.log");
    let mut command = Command::new(snmpd);
    command
        .args(["-f", "-Lf"])
        .arg(&log)
        .env("MIBS", "")
        .env(
            "SNMPCONFPATH",
            format!("{}:{}", dir.display(), persist.display()),
        )
        .env("SNMP_PERSISTENT_DIR", &persist);
    let child = Daemon::from_command(command, &dir.join("snmpd.out"))
        .unwrap_or_else(|e| panic!("cannot start snmpd: {e}; {HINT}"));
    Peer {
        _child: child,
        port,
        log,
    }
}

/// A recording to serve: its path inside `snmpsim_data/data` and the community to serve it as.
/// `drop_prefixes` leaves subtrees out (for recordings too big for a test).
pub struct Recording {
    /// Path inside `snmpsim_data/data`.
    pub source: &'static str,
    /// Community to serve it as.
    pub community: &'static str,
    /// OID subtrees left out.
    pub drop_prefixes: &'static [&'static str],
}

/// A recorded value served as writable, through snmpsim's `writecache` variation module: it
/// starts at `value` instead of what the recording holds (a drifting `numeric` value becomes a
/// fixed one), and an SNMP SET ([`Peer::set`]) changes what later GETs and walks return. That is
/// how a test makes a recorded device change state: a probe heats up, a firewall fails over.
/// Every community gets its own cache, so setting one copy of a recording leaves the others alone.
#[derive(Debug, Clone, Copy)]
pub struct Writable {
    /// Community of the [`Recording`] the OID belongs to.
    pub community: &'static str,
    /// OID whose recorded line is replaced; the recording must hold it.
    pub oid: &'static str,
    /// Initial value in the recorded type: an integer, or plain text (no commas) for strings.
    pub value: &'static str,
}

/// Starts snmpsim serving `recordings` (copied into a private data dir).
pub fn snmpsim(dir: &Path, recordings: &[Recording]) -> Peer {
    snmpsim_with_writable(dir, recordings, &[])
}

/// Rewrites the lines of `writable` in the recording file `path` (served as `community`) into
/// `writecache` lines of the module alias `alias`.
fn make_writable(path: &Path, community: &str, alias: &str, writable: &[Writable]) {
    let text = std::fs::read(path).unwrap();
    let mut out = Vec::with_capacity(text.len());
    let mut found = Vec::new();
    for line in text.split_inclusive(|b| *b == b'\n') {
        let oid = line.split(|b| *b == b'|').next().unwrap_or_default();
        let hit = writable
            .iter()
            .find(|w| w.community == community && w.oid.as_bytes() == oid);
        let Some(w) = hit else {
            out.extend_from_slice(line);
            continue;
        };
        // `oid|tag[:module]|value`; `4x` (hex) becomes `4` as the new value is plain text.
        let tag = line.split(|b| *b == b'|').nth(1).unwrap_or_default();
        let tag = String::from_utf8_lossy(tag);
        let base = tag
            .split(':')
            .next()
            .unwrap_or_default()
            .trim_end_matches('x');
        out.extend_from_slice(format!("{}|{base}:{alias}|value={}\n", w.oid, w.value).as_bytes());
        found.push(w.oid);
    }
    for w in writable.iter().filter(|w| w.community == community) {
        assert!(
            found.contains(&w.oid),
            "writable OID {} is not in the recording served as {community}",
            w.oid
        );
    }
    std::fs::write(path, out).unwrap();
}

/// Starts snmpsim serving `recordings` (copied into a private data dir), the OIDs of `writable`
/// settable with [`Peer::set`].
pub fn snmpsim_with_writable(dir: &Path, recordings: &[Recording], writable: &[Writable]) -> Peer {
    let venv = venv();
    let python = venv.join("bin/python");
    let responder = venv.join("bin/snmpsim-command-responder");
    assert!(
        responder.exists(),
        "{} is missing: {HINT}",
        responder.display()
    );
    let data = dir.join("data");
    let cache = dir.join("cache");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    for rec in recordings {
        // Copy (and filter) with the venv's Python, which reads .bz2 natively.
        let script = r#"
import bz2, glob, sys
src, dst, drops = sys.argv[1], sys.argv[2], [p + "." for p in sys.argv[3:]]
path = glob.glob(sys.prefix + "/lib/python3*/site-packages/snmpsim_data/data/" + src)[0]
opener = bz2.open if path.endswith(".bz2") else open
with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as f, open(dst, "w", encoding="utf-8", errors="surrogateescape") as out:
    for line in f:
        oid = line.split("|", 1)[0] + "."
        if not any(oid.startswith(p) for p in drops):
            out.write(line)
"#;
        let status = Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(rec.source)
            .arg(data.join(format!("{}.snmprec", rec.community)))
            .args(rec.drop_prefixes)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {HINT}", python.display()));
        assert!(
            status.success(),
            "recording {} not found in snmpsim-data: {HINT}",
            rec.source
        );
    }
    // One writecache alias per community: the module keeps its cache per alias, keyed by OID only.
    let mut aliases = Vec::new();
    for (i, rec) in recordings.iter().enumerate() {
        if writable.iter().any(|w| w.community == rec.community) {
            let alias = format!("writecache{i}");
            let file = data.join(format!("{}.snmprec", rec.community));
            make_writable(&file, rec.community, &alias, writable);
            aliases.push(alias);
        }
    }
    for w in writable {
        assert!(
            recordings.iter().any(|r| r.community == w.community),
            "writable OID {} names community {}, which no recording is served as",
            w.oid,
            w.community
        );
    }
    let port = free_udp_port();
    let log = dir.join("snmpsim.log");
    let mut cmd = Command::new(&responder);
    cmd.arg(format!("--data-dir={}", data.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
        .arg(format!("--logging-method=file:{}", log.display()));
    for alias in &aliases {
        cmd.arg(format!("--variation-module-options=writecache={alias}:"));
    }
    if is_root() {
        // snmpsim refuses to run as root; nobody must be able to read data and write the cache.
        cmd.args(["--process-user=nobody", "--process-group=nogroup"]);
        for path in [dir, &data, &cache] {
            Command::new("chmod")
                .arg("a+rwx")
                .arg(path)
                .status()
                .unwrap();
        }
        Command::new("chmod")
            .arg("-R")
            .arg("a+rw")
            .arg(&data)
            .status()
            .unwrap();
        std::fs::write(&log, "").unwrap();
        Command::new("chmod")
            .arg("a+rw")
            .arg(&log)
            .status()
            .unwrap();
    }
    let child = Daemon::from_command(cmd, &dir.join("snmpsim.out"))
        .unwrap_or_else(|e| panic!("cannot start snmpsim: {e}; {HINT}"));
    Peer {
        _child: child,
        port,
        log,
    }
}
