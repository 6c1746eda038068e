//! Headless Chromium for the e2e tests (Debian `chromium` + `chromium-driver`, driven over
//! WebDriver with fantoccini): chromedriver on a free loopback port, a browser session, and
//! screenshots kept under `target/test-artifacts/<area>/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{Daemon, binary, free_port};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where an area's screenshots go: `target/test-artifacts/<area>/` (created).
pub fn artifacts(area: &str) -> PathBuf {
    let dir = binary("faultline-collector")
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("test-artifacts").join(area))
        .unwrap_or_default();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver on a free loopback port, killed when dropped.
pub fn chromedriver(dir: &Path) -> (Daemon, u16) {
    let driver = Path::new("/usr/bin/chromedriver");
    assert!(
        driver.exists(),
        "chromedriver missing: run scripts/install-test-deps.sh (Debian chromium, chromium-driver)"
    );
    let port = free_port();
    let port_arg = format!("--port={port}");
    let daemon = Daemon::spawn(
        driver,
        &[port_arg.as_str()],
        &dir.join("chromedriver.log"),
        &[],
    )
    .unwrap();
    (daemon, port)
}

/// A headless Chromium session through the chromedriver on `port`, its profile in `profile`.
pub async fn browser(port: u16, profile: &Path) -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let profile_arg = format!("--user-data-dir={}", profile.display());
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--lang=en-US",
        profile_arg.as_str(),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connected = ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        match connected {
            Ok(client) => return client,
            // chromedriver may still be starting.
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no WebDriver session within 20 s: {e}"),
        }
    }
}

/// Saves a screenshot of `client` as `dir/name`.
pub async fn shot(client: &Client, dir: &Path, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(name), png).unwrap();
}
