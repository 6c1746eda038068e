//! The systemd units in `packaging/` pass `systemd-analyze verify` (pointed at the built
//! binaries), and a broken unit does not — `systemd-analyze` exits 0 on parse errors, so any
//! output counts as failure.

use faultline_tests::{binary, require_program};
use std::path::Path;
use std::process::Command;

fn verify(unit_text: &str, dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, unit_text).unwrap();
    let out = Command::new(require_program("systemd-analyze", "systemd"))
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let units = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/systemd"));
    for name in ["faultline-agent", "faultline-collector"] {
        let text = std::fs::read_to_string(units.join(format!("{name}.service"))).unwrap();
        let local = text.replace(&format!("/usr/bin/{name}"), &binary(name).to_string_lossy());
        let said = verify(&local, dir.path(), &format!("{name}.service"));
        assert!(said.trim().is_empty(), "{name}.service:\n{said}");
    }
    let broken = "[Service]\nExecStart=/nonexistent/faultline\nRestart=sometimes\n";
    assert!(
        !verify(broken, dir.path(), "broken.service")
            .trim()
            .is_empty()
    );
}
