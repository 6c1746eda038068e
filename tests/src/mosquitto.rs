//! A real MQTT broker for the tests: Debian's `mosquitto` on a free 127.0.0.1 port with its own
//! config and data directory, killed when the guard drops, plus `mosquitto_pub` to play a sensor.
//! A missing program fails the test with a hint to install the package (the README's test
//! command does, through `scripts/install-test-deps.sh`).

use crate::{Daemon, free_port, require_program};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A running mosquitto; killed on drop.
pub struct Mosquitto {
    daemon: Daemon,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    config: PathBuf,
    dir: PathBuf,
}

/// Who may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (`allow_anonymous true`).
    Anonymous,
    /// Only `user` with `password` (a password file made with `mosquitto_passwd`).
    Password {
        /// The user.
        user: &'static str,
        /// Its password.
        password: &'static str,
    },
}

impl Mosquitto {
    /// Starts a broker in `dir` (its own subdirectory `mosquitto-<port>`), persistent so that a
    /// restart keeps sessions and queued QoS 1 messages; waits until it accepts connections.
    pub fn start(dir: &Path, access: Access) -> anyhow::Result<Self> {
        let port = free_port();
        let dir = dir.join(format!("mosquitto-{port}"));
        std::fs::create_dir_all(&dir)?;
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nmax_queued_messages 100000\nuser root\n",
            dir.display()
        );
        match access {
            Access::Anonymous => conf.push_str("allow_anonymous true\n"),
            Access::Password { user, password } => {
                let file = dir.join("passwd");
                let status =
                    std::process::Command::new(require_program("mosquitto_passwd", "mosquitto"))
                        .args(["-b", "-c"])
                        .arg(&file)
                        .args([user, password])
                        .status()?;
                if !status.success() {
                    bail!("mosquitto_passwd failed");
                }
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
        }
        let config = dir.join("mosquitto.conf");
        std::fs::write(&config, conf)?;
        let daemon = Self::spawn(&config, &dir)?;
        let broker = Self {
            daemon,
            port,
            config,
            dir,
        };
        broker.wait_listening()?;
        Ok(broker)
    }

    fn spawn(config: &Path, dir: &Path) -> anyhow::Result<Daemon> {
        let config_arg = config.to_string_lossy().to_string();
        Daemon::spawn(
            &require_program("mosquitto", "mosquitto"),
            &["-c", &config_arg],
            &dir.join("mosquitto.log"),
            &[],
        )
    }

    fn wait_listening(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("mosquitto not listening; log:\n{}", self.daemon.log())
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (SIGTERM, so it saves sessions and queued messages) and leaves it stopped
    /// until [`Mosquitto::start_again`].
    pub fn stop(&mut self) -> bool {
        self.daemon.terminate()
    }

    /// Starts a stopped broker again with the same config and state.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.daemon = Self::spawn(&self.config, &self.dir)?;
        self.wait_listening()
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// Publishes one message with `mosquitto_pub` (QoS 0, anonymous).
    pub fn publish(&self, topic: &str, payload: &str) -> anyhow::Result<()> {
        let status =
            std::process::Command::new(require_program("mosquitto_pub", "mosquitto-clients"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-t",
                    topic,
                    "-m",
                    payload,
                ])
                .status()
                .context("running mosquitto_pub")?;
        if !status.success() {
            bail!("mosquitto_pub to {topic} failed");
        }
        Ok(())
    }
}
