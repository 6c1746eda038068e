//! A real IMAP server for the repair-mailbox tests: Debian's Dovecot (`dovecot-imapd`) on a free
//! 127.0.0.1 port with its own config, a passwd-file user and Maildir in a private temp dir (no
//! system config), plain IMAP (loopback only), IMAPS or IMAP with STARTTLS required, with a given
//! certificate, killed when the guard drops. Mail is delivered with `doveadm save`, folders are
//! read back with `doveadm fetch`.
//!
//! Running as root, Dovecot needs existing users for its internal and login processes
//! (`dovecot`, `dovenull` from the package) and a mail user above uid 0: the mail files belong to
//! the `dovecot` user.

use crate::{Daemon, free_port, require_program};
use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The mail user.
pub const USER: &str = "repair";
/// Its password.
pub const PASSWORD: &str = "repair-secret";

/// Where Dovecot speaks TLS.
#[derive(Clone, Copy)]
enum Tls {
    /// From the first byte (IMAPS).
    Implicit,
    /// After STARTTLS on the plain IMAP port.
    Starttls,
}

/// A running Dovecot; killed on drop.
pub struct Dovecot {
    daemon: Option<Daemon>,
    /// Its IMAP port on 127.0.0.1.
    pub port: u16,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// Starts Dovecot with an empty mailbox (plain IMAP) and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    /// Starts Dovecot speaking IMAPS only, with the certificate `cert` and key `key` (PEM files).
    pub fn start_imaps(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        Self::start_with(Some((cert, key, Tls::Implicit)))
    }

    /// Starts Dovecot on the plain IMAP port with TLS required: it offers STARTTLS and takes no
    /// login before it, with the certificate `cert` and key `key` (PEM files).
    pub fn start_starttls(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        Self::start_with(Some((cert, key, Tls::Starttls)))
    }

    fn start_with(tls: Option<(&Path, &Path, Tls)>) -> anyhow::Result<Self> {
        require_program("dovecot", "dovecot-imapd");
        let dir = tempfile::Builder::new().prefix("dovecot-").tempdir()?;
        let root = dir.path();
        // Dovecot's mail processes run as the `dovecot` user: the tree must be traversable.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
        let (uid, gid) = ids("dovecot")?;
        let mail = root.join("mail");
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        chown(&mail, false)?;
        std::fs::write(
            root.join("passwd"),
            format!(
                "{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{}\n",
                mail.join(USER).display()
            ),
        )?;
        let port = free_port();
        let r = root.display();
        let (ssl, imap_port, imaps_port) = match tls {
            None => ("ssl = no".to_string(), port, 0),
            Some((cert, key, tls)) => {
                let ssl = format!(
                    "ssl = required\nssl_cert = <{}\nssl_key = <{}",
                    cert.display(),
                    key.display()
                );
                match tls {
                    Tls::Implicit => (ssl, 0, port),
                    Tls::Starttls => (ssl, port, 0),
                }
            }
        };
        let conf = format!(
            "base_dir = {r}/run\nstate_dir = {r}/state\nlog_path = {r}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\n{ssl}\ndisable_plaintext_auth = no\n\
             auth_mechanisms = plain login\nfirst_valid_uid = 1\n\
             default_internal_user = dovecot\ndefault_internal_group = dovecot\n\
             default_login_user = dovenull\nmail_location = maildir:~/Maildir\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {r}/passwd\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps_port}\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        );
        let config = root.join("dovecot.conf");
        std::fs::write(&config, conf)?;
        let mut server = Self {
            daemon: None,
            port,
            config,
            dir,
        };
        server.start_again()?;
        Ok(server)
    }

    /// Where its files are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server until [`Dovecot::start_again`]: SIGKILL to its process group, so the
    /// session processes (which outlive a stopped master) go too — the server is simply gone.
    pub fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", daemon.pid())])
                .status();
            daemon.kill9();
        }
        // Its session processes go with the master; wait until the port is free.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a stopped server again with the same config and mail.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(require_program("dovecot", "dovecot-imapd"));
        // Its own process group: stop() ends the master and every session process at once.
        command
            .arg("-c")
            .arg(&self.config)
            .arg("-F")
            .process_group(0);
        self.daemon = Some(Daemon::from_command(
            command,
            &self.dir.path().join("dovecot-master.log"),
        )?);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("dovecot not listening; log:\n{}", self.log())
    }

    /// Delivers one raw mail into `folder` (`doveadm save`); while the server is stopped
    /// (`doveadm` needs its user database) into the INBOX's Maildir `new/` as an MTA would.
    pub fn deliver(&self, folder: &str, raw: &[u8]) -> anyhow::Result<()> {
        if self.daemon.is_some() {
            return self
                .doveadm(&["save", "-u", USER, "-m", folder], Some(raw))
                .map(drop);
        }
        anyhow::ensure!(folder == "INBOX", "offline delivery is to INBOX only");
        let maildir = self.dir.path().join("mail").join(USER).join("Maildir");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub))?;
        }
        let name = format!("{nanos}.P{}.faultline-test", std::process::id());
        let tmp = maildir.join("tmp").join(&name);
        std::fs::write(&tmp, raw)?;
        chown(&maildir, true)?;
        std::fs::rename(&tmp, maildir.join("new").join(&name))?;
        Ok(())
    }

    /// Clears `\Seen` on every mail of `folder`, as if they had been fetched and never flagged.
    pub fn unflag_seen(&self, folder: &str) -> anyhow::Result<()> {
        self.doveadm(
            &[
                "flags", "remove", "-u", USER, "\\Seen", "mailbox", folder, "ALL",
            ],
            None,
        )
        .map(drop)
    }

    /// The Message-IDs of the mails in `folder` with their flags (`doveadm fetch`).
    pub fn mails(&self, folder: &str) -> anyhow::Result<Vec<(String, String)>> {
        let out = self.doveadm(
            &[
                "-f",
                "tab",
                "fetch",
                "-u",
                USER,
                "hdr.message-id flags",
                "mailbox",
                folder,
                "ALL",
            ],
            None,
        )?;
        Ok(out
            .lines()
            .skip(1) // the column names
            .filter_map(|line| {
                let (id, flags) = line.split_once('\t')?;
                Some((id.trim().to_string(), flags.trim().to_string()))
            })
            .collect())
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("dovecot-master.log"), read("dovecot.log"))
    }

    fn doveadm(&self, args: &[&str], input: Option<&[u8]>) -> anyhow::Result<String> {
        let mut child = Command::new(require_program("doveadm", "dovecot-core"))
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running doveadm")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.unwrap_or_default())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("doveadm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The uid and gid of the system user `name`.
fn ids(name: &str) -> anyhow::Result<(String, String)> {
    let id = |flag: &str| -> anyhow::Result<String> {
        let out = Command::new("id").args([flag, name]).output()?;
        if !out.status.success() {
            bail!("no user `{name}` (install dovecot-imapd)");
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    Ok((id("-u")?, id("-g")?))
}

/// `chown dovecot:dovecot` of `path` (`recursive`: of its whole tree).
fn chown(path: &Path, recursive: bool) -> anyhow::Result<()> {
    let owner = "dovecot:dovecot";
    let mut command = Command::new("chown");
    if recursive {
        command.arg("-R");
    }
    let status = command.arg(owner).arg(path).status()?;
    if !status.success() {
        bail!("chown {owner} {}", path.display());
    }
    Ok(())
}
