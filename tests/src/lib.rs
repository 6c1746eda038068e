//! Test harness: runs the real `faultline-agent` and `faultline-collector` binaries (and real
//! peers such as Prometheus) on 127.0.0.1, each bounded in time and killed when its guard drops.
//!
//! Build the binaries first (`cargo build --workspace --bins`); the README's test command does.

pub mod browser;
pub mod certs;
pub mod disk;
pub mod dovecot;
pub mod incidents;
pub mod ledger;
pub mod modbus_peer;
pub mod mosquitto;
pub mod postgres;
pub mod prometheus;
pub mod receivers;
pub mod report_fixture;
pub mod snmp_peers;

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Token the harness gives its agents.
pub const TOKEN: &str = "harness-token-0123456789abcdef";

/// Path of a workspace binary next to the test executable (`target/<profile>/<name>`), or next
/// to a harness binary run from `target/<profile>/` (a bench such as `mailbox_bench`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .map(|dir| match dir.file_name() {
            Some(deps) if deps == "deps" => dir.parent().unwrap_or(dir),
            _ => dir,
        })
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` first (the README's test command does)",
        path.display()
    );
    path
}

/// `<program> check-config --config <file>` on `text`, written to `file`: (passed, stderr).
pub fn check_config(program: &str, file: &Path, text: &str) -> (bool, String) {
    std::fs::write(file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let out = Command::new(binary(program))
        .args(["check-config", "--config"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A child process killed (SIGKILL) when dropped; its stderr and stdout go to a log file.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `program` with `args`, logging to `log`.
    pub fn spawn(
        program: &Path,
        args: &[&str],
        log: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(program);
        command.args(args);
        for (k, v) in env {
            command.env(k, v);
        }
        Self::from_command(command, log)
    }

    /// Starts a prepared command, its stdout and stderr going to `log`.
    pub fn from_command(mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let err = out.try_clone()?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command
            .spawn()
            .with_context(|| format!("spawning {:?}", command.get_program()))?;
        Ok(Self {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `name` (`TERM`, `STOP`, `CONT`...) with kill(1); true when it was delivered.
    pub fn signal(&self, name: &str) -> bool {
        Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .is_ok_and(|status| status.success())
    }

    /// SIGTERM, then waits up to 10 s (SIGKILL after that). Returns true on a clean exit.
    pub fn terminate(&mut self) -> bool {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        false
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs `url` and returns the body, or an empty string on any error.
pub async fn get_text(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Value of the first exposition line of `name` whose labels include all of `labels`.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_values(text, name, labels).into_iter().next()
}

/// Values of every exposition line of `name` whose labels include all of `labels`.
pub fn metric_values(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.find('{') {
                Some(at) => (&series[..at], &series[at..]),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            if !all {
                return None;
            }
            value.parse().ok()
        })
        .collect()
}

/// A collector run by the harness on a free loopback port, with its state in `dir`.
pub struct CollectorProcess {
    /// The process.
    pub daemon: Daemon,
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its config file.
    pub config: PathBuf,
}

impl CollectorProcess {
    /// Writes a config (`extra` is appended TOML) and starts the collector with debug JSON logs.
    pub async fn start(dir: &Path, port: u16, extra: &str) -> anyhow::Result<Self> {
        let config = dir.join("collector.toml");
        let text = format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n\n[storage]\npath = \"{}\"\n\n[[agents]]\nid = \"a1\"\ntoken = \"{TOKEN}\"\n\n{extra}\n",
            dir.join("state.db").display()
        );
        std::fs::write(&config, text)?;
        Self::start_with(dir, port, &config).await
    }

    /// Starts the collector with an existing config file.
    pub async fn start_with(dir: &Path, port: u16, config: &Path) -> anyhow::Result<Self> {
        let config_arg = config.to_string_lossy().to_string();
        let daemon = Daemon::spawn(
            &binary("faultline-collector"),
            &["--log-format", "json", "run", "--config", &config_arg],
            &dir.join("collector.log"),
            &[("RUST_LOG", "info,faultline_collector=debug")],
        )?;
        let url = format!("http://127.0.0.1:{port}");
        let mut process = Self {
            daemon,
            url,
            config: config.to_path_buf(),
        };
        let health = format!("{}/healthz", process.url);
        if !wait_until(Duration::from_secs(15), || async {
            get_text(&health).await == "ok\n"
        })
        .await
        {
            let running = process.daemon.running();
            bail!(
                "collector not healthy (running: {running}); log:\n{}",
                process.daemon.log()
            );
        }
        Ok(process)
    }

    /// Starts the collector again on the same port, config and state after its process ended;
    /// the previous run's log is kept as `dir/collector-1.log`.
    pub async fn restart(self, dir: &Path, port: u16) -> anyhow::Result<Self> {
        std::fs::rename(dir.join("collector.log"), dir.join("collector-1.log"))?;
        Self::start_with(dir, port, &self.config).await
    }

    /// The current `/metrics` text.
    pub async fn scrape(&self) -> String {
        get_text(&format!("{}/metrics", self.url)).await
    }
}

/// Writes an agent config pushing to `collector_url`, collecting host metrics every `interval`.
pub fn agent_config(
    dir: &Path,
    collector_url: &str,
    interval: &str,
    extra: &str,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("agent.toml");
    let text = format!(
        "[agent]\nid = \"a1\"\nsite = \"test-site\"\nroom = \"test-room\"\n\n[push]\nurl = \"{collector_url}\"\ntoken = \"{TOKEN}\"\nmin_backoff = \"50ms\"\nmax_backoff = \"500ms\"\ntimeout = \"2s\"\n\n[batch]\nflush_interval = \"200ms\"\n\n[outbox]\ndir = \"{}\"\nfsync = true\n\n[host]\ninterval = \"{interval}\"\n\n{extra}\n",
        dir.join("outbox").display()
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Starts an agent with a config file, logging debug JSON to `dir/agent.log`.
pub fn start_agent(dir: &Path, config: &Path) -> anyhow::Result<Daemon> {
    let config_arg = config.to_string_lossy().to_string();
    Daemon::spawn(
        &binary("faultline-agent"),
        &["--log-format", "json", "run", "--config", &config_arg],
        &dir.join("agent.log"),
        &[("RUST_LOG", "info,faultline_agent=debug")],
    )
}

/// Parses JSON log lines, keeping those whose `fields.message` equals `message`.
pub fn log_events(log: &str, message: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["fields"]["message"] == message)
        .collect()
}

/// Finds a program on PATH (or in /usr/sbin, /usr/bin), failing with a hint to install it.
pub fn require_program(name: &str, package: &str) -> PathBuf {
    let from_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.exists())
        })
        .unwrap_or_default();
    let found = from_path.or_else(|| {
        ["/usr/sbin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
    });
    match found {
        Some(path) => path,
        None => panic!(
            "`{name}` is missing: install Debian's `{package}` (the README's test command does)"
        ),
    }
}

/// The file names of `dashboards/*.json`, sorted.
pub fn dashboard_files() -> Vec<String> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards"));
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// (file name, expr) of every panel query in `dashboards/*.json`.
pub fn dashboard_queries() -> Vec<(String, String)> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards"));
    let mut out = Vec::new();
    for name in dashboard_files() {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        let dash: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for panel in dash["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((name.clone(), expr.to_string()));
                }
            }
        }
    }
    out
}

/// Series that exist only where the hardware has them (no temperature sensors on CI's VMs); the
/// agent's unit tests cover their production with an injected sensor reader.
const HARDWARE_DEPENDENT: [&str; 1] = ["faultline_host_temperature_celsius"];

/// The `faultline_*` and `process_*` series that dashboard `file` queries but `exposition` does
/// not contain.
pub fn missing_dashboard_series(file: &str, exposition: &str) -> Vec<String> {
    let queries: Vec<String> = dashboard_queries()
        .into_iter()
        .filter(|(f, _)| f == file)
        .map(|(_, expr)| expr)
        .collect();
    assert!(
        queries.len() >= 5,
        "{file} holds too few queries: {}",
        queries.len()
    );
    let mut missing: Vec<String> = queries
        .iter()
        .flat_map(|expr| {
            expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| w.starts_with("faultline_") || w.starts_with("process_"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|name| !HARDWARE_DEPENDENT.contains(&name.as_str()))
        .filter(|name| {
            !exposition
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        })
        .collect();
    missing.sort();
    missing.dedup();
    missing
}
