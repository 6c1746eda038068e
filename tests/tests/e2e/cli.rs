//! The command-line edge: `--version`, `check-config` on the shipped examples and on broken files.

use faultline_tests::binary;
use std::path::Path;
use std::process::Command;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"))
}

#[test]
fn version_flags() {
    for name in ["faultline-agent", "faultline-collector"] {
        let out = Command::new(binary(name))
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with(name) && text.contains(env!("CARGO_PKG_VERSION")),
            "{text}"
        );
    }
}

#[test]
fn shipped_examples_pass_check_config() {
    for (name, file) in [
        ("faultline-agent", "agent.toml"),
        ("faultline-collector", "collector.toml"),
    ] {
        let out = Command::new(binary(name))
            .args(["check-config"])
            .arg(examples().join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn weak_snmp_crypto_is_flagged_but_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weak.toml");
    std::fs::write(
        &file,
        "[agent]\nid = \"a\"\n[push]\nurl = \"http://x\"\ntoken = \"t\"\n[outbox]\ndir = \"/tmp\"\n[[snmp.devices]]\nid = \"old-switch\"\naddress = \"127.0.0.1\"\nversion = \"v3\"\n[snmp.devices.v3]\nuser = \"u\"\nlevel = \"auth_priv\"\nauth_protocol = \"md5\"\nauth_password = \"password1\"\npriv_protocol = \"des\"\npriv_password = \"password2\"\n",
    )
    .unwrap();
    let out = Command::new(binary("faultline-agent"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning:") && err.contains("snmp.devices[0].v3.auth_protocol"),
        "{err}"
    );
    assert!(err.contains("snmp.devices[0].v3.priv_protocol"), "{err}");
    assert!(!err.contains("password1"), "secret printed: {err}");
}

#[test]
fn broken_configs_fail_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "faultline-agent",
            "[agent]\nid = \"a\"\n[push]\nurl = \"http://x\"\ntoken = \"t\"\n[outbox]\ndir = \"/tmp\"\nmax_bytes = \"lots\"\n",
            ":8:",
            "outbox.max_bytes",
        ),
        (
            "faultline-agent",
            "[agent]\nid = \"a\"\n[push]\nurl = \"http://x\"\ntoken = \"t\"\ntimout = \"1s\"\n[outbox]\ndir = \"/tmp\"\n",
            ":6:",
            "timout",
        ),
        (
            "faultline-agent",
            "[agent]\nid = \"a\"\n[push]\nurl = \"http://x\"\ntoken = \"t\"\n[outbox]\ndir = \"/tmp\"\n[[snmp.devices]]\nid = \"ups\"\naddress = \"127.0.0.1\"\nprofiles = [\"no-such-profile\"]\n",
            ":11:",
            "snmp.devices[0].profiles",
        ),
        (
            "faultline-collector",
            "[listen]\naddress = \"127.0.0.1:1\"\n[storage]\npath = \"/tmp/x.db\"\n[[agents]]\nid = \"a\"\ntoken = \"short\"\n",
            ":7:",
            "agents[0].token",
        ),
    ];
    for (i, (program, text, line, field)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = Command::new(binary(program))
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success(), "case {i} passed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("bad{i}.toml{line}")),
            "case {i}: {err}"
        );
        assert!(err.contains(field), "case {i}: {err}");
    }
}
