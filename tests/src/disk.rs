//! Disk trouble for tests: a small tmpfs mounted for a test's lifetime (root only) and a filler
//! that takes a filesystem's free space.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on `dir` for the guard's lifetime.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it (panics, naming the cause, when mounting fails).
    pub fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("running mount: {e}"));
        assert!(
            out.status.success(),
            "mount -t tmpfs on {} failed although running as root (a container without \
             CAP_SYS_ADMIN?): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a process still holding a file cannot keep the mount around.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Whether the tests run as root (mounting needs it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Fills the filesystem of `path` until a write fails (no space left), leaving `leave` bytes free
/// by shrinking the filler again.
pub fn fill(path: &Path, leave: u64) {
    let mut file =
        std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let chunk = vec![0xa5u8; 4096];
    let mut written = 0u64;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = file.flush();
    file.set_len(written.saturating_sub(leave))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Bounds the outbox of the agent config at `config` (written by `crate::agent_config`) to
/// `max_bytes`, so a small disk can hold it and fill up.
pub fn bound_outbox(config: &Path, max_bytes: u64) {
    let text =
        std::fs::read_to_string(config).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    std::fs::write(
        config,
        text.replace(
            "fsync = true\n",
            &format!("fsync = true\nmax_bytes = {max_bytes}\n"),
        ),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
}
