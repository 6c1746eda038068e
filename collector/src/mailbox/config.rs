//! `[mailbox]`: where the repair mailbox is and how mail is handled (config → **mailbox**).
//! [`MailboxConfig::validate`] is pure; [`MailboxConfig::password`] reads the password file.

use super::intake::AttachmentCaps;
use faultline_incidents::Owner;
use faultline_wire::config_file::{ConfigError, ConfigSource, Secret};
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// `[mailbox]`: the collector watches an IMAP mailbox (the service desk's repair address);
/// each new mail becomes a ticket (channel `mailbox`) or a timeline entry of the ticket it
/// answers. A mail is marked done on the server only after its ticket is committed; automatic
/// mail (bounces, auto-replies, our own mails) is marked done without a ticket; mail that cannot
/// be read (malformed, oversized, unknown charset) is moved to `quarantine_folder`. Needs
/// `[incidents]`.
///
/// ```toml
/// [mailbox]
/// host = "imap.gov.example"
/// port = 993                        # default: 993 for imaps, 143 otherwise
/// security = "imaps"                # imaps | starttls | plain (plain: 127.0.0.0/8 only)
/// user = "repair@gov.example"
/// password_file = "/etc/faultline/mailbox.pass"
/// folder = "INBOX"                  # the default
/// quarantine_folder = "Quarantine"  # the default; created when missing
/// done = "seen"                     # flag \Seen (the default), or "move" to processed_folder
/// processed_folder = "Processed"    # the default, used with done = "move"
/// poll_interval = "1m"              # the default; with IDLE, the longest wait between checks
/// idle = true                       # the default: IDLE when the server offers it
/// max_mail_bytes = 26214400         # the default (25 MiB); larger mail is quarantined
/// max_attachment_bytes = 10485760   # the default (10 MiB): larger attachments are listed only
/// max_attachments_bytes = 20971520  # the default (20 MiB) kept per mail
/// tag = "platform"                  # the default: tag of tickets from known departments
/// reconnect_max = "1m"              # the default: longest wait before reconnecting
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The IMAP server's host name (also the name its certificate must carry).
    pub host: String,
    /// Its port; default 993 for `imaps`, 143 otherwise.
    #[serde(default)]
    pub port: Option<u16>,
    /// `imaps` (TLS from the start), `starttls` (upgraded before login) or `plain` (no TLS;
    /// only for a server on 127.0.0.0/8).
    #[serde(default)]
    pub security: Security,
    /// CA certificates (PEM) the server's certificate is checked against; default: the system
    /// bundle.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The login name.
    pub user: String,
    /// File whose first line is the password.
    pub password_file: PathBuf,
    /// The folder watched.
    #[serde(default = "default_folder")]
    pub folder: String,
    /// Where mail that cannot be taken in is moved (created when missing).
    #[serde(default = "default_quarantine")]
    pub quarantine_folder: String,
    /// What marks a mail done: `seen` (flag `\Seen`; unseen mail is new) or `move` (to
    /// `processed_folder`; every mail left in `folder` is new).
    #[serde(default)]
    pub done: Done,
    /// Where `done = "move"` puts mail (created when missing).
    #[serde(default = "default_processed")]
    pub processed_folder: String,
    /// How often the folder is checked without IDLE; with IDLE, the longest wait between checks.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Wait with IDLE when the server offers it (else poll).
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Largest mail taken in; a larger one is quarantined without being downloaded.
    #[serde(default = "default_max_mail")]
    pub max_mail_bytes: u64,
    /// Largest attachment kept with its ticket; larger ones are listed by name and size.
    #[serde(default = "default_max_attachment")]
    pub max_attachment_bytes: u64,
    /// Most attachment bytes kept per mail.
    #[serde(default = "default_max_attachments")]
    pub max_attachments_bytes: u64,
    /// The tag of tickets opened by a known department's mail; unknown senders' tickets are
    /// untagged (triage).
    #[serde(default = "default_tag")]
    pub tag: Owner,
    /// Longest wait before reconnecting to a server that is down (from 1 s, doubling).
    #[serde(default = "default_reconnect", with = "humantime_serde")]
    pub reconnect_max: Duration,
}

/// How the connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (port 993).
    #[default]
    Imaps,
    /// Plain, upgraded with STARTTLS before login (port 143).
    Starttls,
    /// No TLS: only for a server on the loopback network.
    Plain,
}

/// What marks a mail done on the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Done {
    /// Flag it `\Seen`.
    #[default]
    Seen,
    /// Move it to `processed_folder`.
    Move,
}

fn default_folder() -> String {
    "INBOX".into()
}
fn default_quarantine() -> String {
    "Quarantine".into()
}
fn default_processed() -> String {
    "Processed".into()
}
fn default_poll() -> Duration {
    Duration::from_secs(60)
}
fn default_true() -> bool {
    true
}
fn default_max_mail() -> u64 {
    25 << 20
}
fn default_max_attachment() -> u64 {
    10 << 20
}
fn default_max_attachments() -> u64 {
    20 << 20
}
fn default_tag() -> Owner {
    Owner::Platform
}
fn default_reconnect() -> Duration {
    Duration::from_secs(60)
}

/// The password file cannot be used (the error names the file).
#[derive(Debug, Error)]
#[error("mailbox.password_file {0}")]
pub struct PasswordError(#[from] faultline_daemon::SecretFileError);

impl MailboxConfig {
    /// The port connected to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Imaps => 993,
            Security::Starttls | Security::Plain => 143,
        })
    }

    /// The attachment caps.
    pub fn caps(&self) -> AttachmentCaps {
        AttachmentCaps {
            each: self.max_attachment_bytes,
            total: self.max_attachments_bytes,
        }
    }

    /// Reads the password: the first line of `password_file`.
    pub fn password(&self) -> Result<Secret, PasswordError> {
        Ok(Secret::new(faultline_daemon::read_secret_file(
            &self.password_file,
        )?))
    }

    /// Checks values that parse but cannot work (pure); `incidents` says whether `[incidents]`
    /// is present.
    pub fn validate(&self, source: &ConfigSource, incidents: bool) -> Result<(), ConfigError> {
        let fail = |field: &str, message: String| Err(source.error(field, message));
        if !incidents {
            return fail(
                "mailbox",
                "mail becomes tickets: add an `[incidents]` section".into(),
            );
        }
        if self.host.trim().is_empty() {
            return fail("mailbox.host", "must not be empty".into());
        }
        if self.security == Security::Plain
            && !self
                .host
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
        {
            return fail(
                "mailbox.security",
                format!(
                    "`plain` sends the password in the clear: only for a 127.0.0.0/8 host, not `{}` (use imaps or starttls)",
                    self.host
                ),
            );
        }
        if self.port == Some(0) {
            return fail("mailbox.port", "must be 1 to 65535".into());
        }
        if self.user.trim().is_empty() {
            return fail("mailbox.user", "must not be empty".into());
        }
        let folders = [
            ("folder", &self.folder),
            ("quarantine_folder", &self.quarantine_folder),
            ("processed_folder", &self.processed_folder),
        ];
        for (field, name) in folders {
            if name.trim().is_empty() || name.contains(['"', '\\', '\r', '\n']) {
                return fail(
                    &format!("mailbox.{field}"),
                    format!("`{name}` is not a usable folder name"),
                );
            }
        }
        if self.quarantine_folder == self.folder
            || (self.done == Done::Move && self.processed_folder == self.folder)
        {
            return fail(
                "mailbox.quarantine_folder",
                "quarantine_folder and processed_folder must differ from folder".into(),
            );
        }
        if self.poll_interval < Duration::from_secs(1) {
            return fail("mailbox.poll_interval", "must be at least 1s".into());
        }
        if self.reconnect_max < Duration::from_secs(1) {
            return fail("mailbox.reconnect_max", "must be at least 1s".into());
        }
        if self.max_mail_bytes == 0 {
            return fail("mailbox.max_mail_bytes", "must be above zero".into());
        }
        if self.max_attachment_bytes > self.max_attachments_bytes {
            return fail(
                "mailbox.max_attachment_bytes",
                "must not be above max_attachments_bytes".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> (ConfigSource, MailboxConfig) {
        let text = format!("[mailbox]\n{body}");
        let source = ConfigSource::from_text(std::path::Path::new("c.toml"), text);
        #[derive(Deserialize)]
        struct File {
            mailbox: MailboxConfig,
        }
        let file: File = source.parse().unwrap();
        (source, file.mailbox)
    }

    const BASE: &str = "host = \"imap.gov.example\"\nuser = \"repair\"\npassword_file = \"/p\"\n";

    #[test]
    fn defaults_and_errors_name_the_field_table() {
        let (source, config) = parse(BASE);
        assert!(config.validate(&source, true).is_ok());
        assert_eq!(
            (config.port(), config.security, config.done),
            (993, Security::Imaps, Done::Seen)
        );
        assert_eq!(
            (config.folder.as_str(), config.tag),
            ("INBOX", Owner::Platform)
        );
        let cases = [
            ("", false, "add an `[incidents]`"),
            ("security = \"plain\"\n", true, "mailbox.security"),
            ("port = 0\n", true, "mailbox.port"),
            (
                "quarantine_folder = \"INBOX\"\n",
                true,
                "mailbox.quarantine_folder",
            ),
            ("folder = \"\"\n", true, "mailbox.folder"),
            ("poll_interval = \"10ms\"\n", true, "mailbox.poll_interval"),
            (
                "max_attachment_bytes = 30000000\n",
                true,
                "max_attachment_bytes",
            ),
        ];
        for (extra, incidents, want) in cases {
            let (source, config) = parse(&format!("{BASE}{extra}"));
            let error = config.validate(&source, incidents).unwrap_err().to_string();
            assert!(error.contains(want), "{extra}: {error}");
        }
        let (source, local) = parse(
            "host = \"127.0.0.1\"\nsecurity = \"plain\"\nuser = \"u\"\npassword_file = \"/p\"\n",
        );
        assert!(local.validate(&source, true).is_ok());
        assert_eq!(local.port(), 143);
    }

    #[test]
    fn an_unusable_password_file_is_named_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pass");
        std::fs::write(&empty, "\n").unwrap();
        for path in [empty, dir.path().join("missing.pass")] {
            let (_, mut config) = parse(BASE);
            config.password_file = path.clone();
            let error = config.password().unwrap_err().to_string();
            assert!(
                error.contains("mailbox.password_file")
                    && error.contains(&path.display().to_string()),
                "{error}"
            );
        }
        let good = dir.path().join("good.pass");
        std::fs::write(&good, "s3cret\n").unwrap();
        let (_, mut config) = parse(BASE);
        config.password_file = good;
        assert_eq!(config.password().unwrap().expose(), "s3cret");
    }
}
