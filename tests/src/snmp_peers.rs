//! Real SNMP peers on 127.0.0.1 for the tests of every crate: net-snmp `snmpd` and `snmpsim`
//! with recordings of real devices, on free ports, killed when the guard drops. A missing peer
//! fails the test with a hint to run `scripts/snmp-peers.sh` (the README's test command does).

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

/// Starts snmpsim serving `recordings` (copied into a private data dir).
pub fn snmpsim(dir: &Path, recordings: &[Recording]) -> Peer {
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
    let port = free_udp_port();
    let log = dir.join("snmpsim.log");
    let mut cmd = Command::new(&responder);
    cmd.arg(format!("--data-dir={}", data.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
        .arg(format!("--logging-method=file:{}", log.display()));
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
