//! A real Modbus server for the tests: pymodbus' server (PyPI, in the test venv that
//! `scripts/install-test-deps.sh` makes) serving the fixed registers of
//! `tests/peers/modbus_server.py` on a free 127.0.0.1 port (TCP), or as RTU on one end of a
//! socat pty pair (a serial line), killed when the guard drops.

use crate::{Daemon, free_port};
use anyhow::bail;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A running pymodbus server; killed on drop.
pub struct ModbusServer {
    _daemon: Daemon,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

/// The test venv's Python and the server script.
fn server_program() -> anyhow::Result<(PathBuf, PathBuf)> {
    let python = crate::snmp_peers::venv().join("bin/python");
    if !python.exists() {
        bail!(
            "{} missing: run scripts/install-test-deps.sh",
            python.display()
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/modbus_server.py");
    Ok((python, script))
}

/// pymodbus' server speaking Modbus RTU on a serial line: a socat pty pair, the server on one
/// end; the agent opens [`SerialModbusServer::path`]. Both killed on drop.
pub struct SerialModbusServer {
    _server: Daemon,
    _line: Daemon,
    /// The serial device the agent opens (a pty).
    pub path: PathBuf,
}

impl SerialModbusServer {
    /// Makes the line (`socat`, Debian package) in `dir` and starts the server on it, waiting
    /// (at most 15 s) until the server says it serves.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let (python, script) = server_program()?;
        let socat = crate::require_program("socat", "socat");
        let path = dir.join("tty-agent");
        let server_end = dir.join("tty-server");
        let line = Daemon::spawn(
            &socat,
            &[
                &format!("pty,raw,echo=0,link={}", path.display()),
                &format!("pty,raw,echo=0,link={}", server_end.display()),
            ],
            &dir.join("socat.log"),
            &[],
        )?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(path.exists() && server_end.exists()) {
            if Instant::now() > deadline {
                bail!("socat made no pty pair; log:\n{}", line.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let server = Daemon::spawn(
            &python,
            &[
                &script.to_string_lossy(),
                "--serial",
                &server_end.to_string_lossy(),
            ],
            &dir.join("modbus-serial-server.log"),
            &[],
        )?;
        while !server.log().contains("serving RTU") {
            if Instant::now() > deadline {
                bail!("pymodbus serial server not serving; log:\n{}", server.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            _server: server,
            _line: line,
            path,
        })
    }
}

impl ModbusServer {
    /// Starts the server, logging to `dir/modbus-server.log`; waits until it accepts connections.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let (python, script) = server_program()?;
        let port = free_port();
        let daemon = Daemon::spawn(
            &python,
            &[&script.to_string_lossy(), &port.to_string()],
            &dir.join("modbus-server.log"),
            &[],
        )?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self {
                    _daemon: daemon,
                    port,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("pymodbus server not listening; log:\n{}", daemon.log())
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
