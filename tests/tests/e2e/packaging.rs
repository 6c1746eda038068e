//! Packaging: the systemd units in `packaging/` pass `systemd-analyze verify` (pointed at the
//! built binaries), and a broken unit does not — `systemd-analyze` exits 0 on parse errors, so any
//! output counts as failure. The packages are built with `scripts/package.sh` (as the README's
//! install section says), the `.deb`s are installed on this machine with `dpkg -i` and checked
//! (files, conffiles, the `faultline` user and its state directory, the installed binaries'
//! `--version` and `check-config` on the shipped configs) and purged; the `.rpm`s' file lists,
//! config files and scriptlets are inspected with `rpm -qp`.

use faultline_tests::{binary, require_program};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

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
    let units = workspace().join("packaging/systemd");
    for name in ["faultline-agent", "faultline-collector"] {
        let text = std::fs::read_to_string(units.join(format!("{name}.service"))).unwrap();
        assert!(
            text.contains("ExecReload=/bin/kill -HUP $MAINPID"),
            "{name}: reload"
        );
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

fn workspace() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

/// Runs `program args`, panicking with its output unless it succeeds; returns stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = output(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// `dpkg args`, waiting (at most 2 min) while another dpkg or apt holds the lock.
fn dpkg(args: &[&str]) -> String {
    for _ in 0..120 {
        let out = output("dpkg", args);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if !err.contains("lock") {
            panic!(
                "dpkg {args:?} failed:\n{}{err}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("dpkg {args:?}: the dpkg lock stayed held for 2 minutes");
}

/// The one `.deb` or `.rpm` of `package` in `dir`.
fn package_file(dir: &Path, package: &str, ext: &str) -> String {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&format!(
                "{package}{}",
                if ext == "deb" { "_" } else { "-" }
            )) && name.ends_with(&format!(".{ext}"))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{package} .{ext} in {}: {found:?}",
        dir.display()
    );
    found[0].to_string_lossy().into_owned()
}

fn is_root() -> bool {
    run("id", &["-u"]).trim() == "0"
}

const PACKAGES: [&str; 2] = ["faultline-agent", "faultline-collector"];

/// Builds the packages as the README says and checks them: the `.deb`s installed on this machine
/// (root, Debian; no systemd needs to run) and purged again, the `.rpm`s inspected. One test, as
/// building is the slow part: from the debug binaries `cargo build` made (`--profile dev`), so CI
/// does not pay for a release build.
#[test]
fn packages_build_install_run_and_purge() {
    if !is_root() || Command::new("dpkg").arg("--version").output().is_err() {
        eprintln!(
            "\n\n*** SKIPPED packages_build_install_run_and_purge: needs root and dpkg (CI has both) ***\n"
        );
        return;
    }
    for name in PACKAGES {
        binary(name);
    }
    let root = workspace();
    let script = root.join("scripts/package.sh");
    run("bash", &[&script.to_string_lossy(), "--profile", "dev"]);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out = target.join("packages");

    // Start from a machine without them, so the install itself must create the user.
    dpkg(&["--purge", PACKAGES[0], PACKAGES[1]]);
    if output("getent", &["passwd", "faultline"]).status.success() {
        run("userdel", &["faultline"]);
    }
    let debs: Vec<String> = PACKAGES
        .iter()
        .map(|p| package_file(&out, p, "deb"))
        .collect();
    dpkg(&["-i", &debs[0], &debs[1]]);
    let units = tempfile::tempdir().unwrap();

    for (name, config) in [
        ("faultline-agent", "/etc/faultline/agent.toml"),
        ("faultline-collector", "/etc/faultline/collector.toml"),
    ] {
        let daemon = name.trim_start_matches("faultline-");
        for file in [
            format!("/usr/bin/{name}"),
            format!("/usr/lib/systemd/system/{name}.service"),
            format!("/usr/lib/sysusers.d/{name}.conf"),
            format!("/usr/lib/tmpfiles.d/{name}.conf"),
            format!("/usr/share/doc/{name}/README.md"),
            format!("/usr/share/doc/{name}/CHANGELOG.md"),
            format!("/usr/share/doc/{name}/examples/{daemon}.toml"),
            config.to_string(),
        ] {
            assert!(Path::new(&file).is_file(), "{name}: {file} not installed");
        }
        let conffiles = run("dpkg-query", &["--control-show", name, "conffiles"]);
        assert!(conffiles.contains(config), "{name} conffiles: {conffiles}");
        let version = run(&format!("/usr/bin/{name}"), &["--version"]);
        assert!(
            version.starts_with(name) && version.contains(env!("CARGO_PKG_VERSION")),
            "{version}"
        );
        let checked = run(
            &format!("/usr/bin/{name}"),
            &["check-config", "--config", config],
        );
        assert!(checked.contains(": OK"), "{name}: {checked}");
        // The installed unit verifies where it lies, with the installed binary.
        let said = verify(
            &std::fs::read_to_string(format!("/usr/lib/systemd/system/{name}.service")).unwrap(),
            units.path(),
            &format!("{name}.service"),
        );
        assert!(said.trim().is_empty(), "installed {name}.service:\n{said}");
        let state = std::fs::metadata(format!("/var/lib/faultline/{daemon}")).unwrap();
        assert!(state.is_dir());
    }

    let user = run("getent", &["passwd", "faultline"]);
    let fields: Vec<&str> = user.trim().split(':').collect();
    assert_eq!(fields[0], "faultline", "{user}");
    assert!(
        fields[2].parse::<u32>().unwrap() < 1000,
        "a system user: {user}"
    );
    assert_eq!(fields[5], "/var/lib/faultline", "{user}");
    assert!(fields[6].ends_with("nologin"), "{user}");
    let uid: u32 = fields[2].parse().unwrap();
    let home = std::fs::metadata("/var/lib/faultline").unwrap();
    assert_eq!(
        (home.uid(), home.permissions().mode() & 0o777),
        (uid, 0o750)
    );
    let token = std::fs::metadata("/etc/faultline/tokens/local").unwrap();
    assert_eq!(
        (token.uid(), token.permissions().mode() & 0o777),
        (0, 0o640),
        "the shared token: root's, readable by the group"
    );

    dpkg(&["--purge", PACKAGES[0], PACKAGES[1]]);
    for gone in [
        "/usr/bin/faultline-agent",
        "/usr/bin/faultline-collector",
        "/etc/faultline",
        "/var/lib/faultline",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }

    let rpm = require_program("rpm", "rpm");
    let rpm = rpm.to_string_lossy();
    for name in PACKAGES {
        let file = package_file(&out, name, "rpm");
        let daemon = name.trim_start_matches("faultline-");
        let listed = run(&rpm, &["-qlp", &file]);
        for path in [
            format!("/usr/bin/{name}"),
            format!("/usr/lib/systemd/system/{name}.service"),
            format!("/usr/lib/sysusers.d/{name}.conf"),
            format!("/usr/lib/tmpfiles.d/{name}.conf"),
            format!("/etc/faultline/{daemon}.toml"),
            format!("/usr/share/doc/{name}/README.md"),
        ] {
            assert!(
                listed.lines().any(|l| l == path),
                "{name}.rpm lacks {path}:\n{listed}"
            );
        }
        let config = run(&rpm, &["-qp", "--configfiles", &file]);
        assert_eq!(
            config.trim(),
            format!("/etc/faultline/{daemon}.toml"),
            "{name}"
        );
        let scripts = run(&rpm, &["-qp", "--scripts", &file]);
        for needed in [
            "postinstall scriptlet",
            "systemd-sysusers",
            "useradd --system",
            "preuninstall scriptlet",
        ] {
            assert!(
                scripts.contains(needed),
                "{name}.rpm scripts lack {needed}:\n{scripts}"
            );
        }
    }
}
