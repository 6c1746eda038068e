//! The command-line edge: `--version`, `check-config` on the shipped examples and on broken files.

use faultline_tests::{binary, check_config};
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

/// The shipped examples pass once the files they name exist (under a temporary `/etc/faultline`).
#[test]
fn shipped_examples_pass_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let etc = format!("{}/", dir.path().display());
    for (name, file) in [
        ("faultline-agent", "agent.toml"),
        ("faultline-collector", "collector.toml"),
    ] {
        let text = std::fs::read_to_string(examples().join(file))
            .unwrap()
            .replace("/etc/faultline/", &etc);
        for line in text.lines().filter(|l| l.starts_with("token_file = ")) {
            let path = Path::new(line.split('"').nth(1).unwrap());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "example-token-0123456789abcdef\n").unwrap();
        }
        let (passed, err) = check_config(name, &dir.path().join(file), &text);
        assert!(passed, "{file}: {err}");
    }
}

/// A config that passes `check-config` starts: every file it names is read, and a missing or
/// unusable one fails the check naming the setting and the file (a rule file: the config line).
#[test]
fn check_config_reads_every_file_the_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let cases = [
        (
            "faultline-agent",
            format!(
                "[agent]\nid = \"a\"\n[push]\nurl = \"http://x\"\ntoken_file = \"{d}/missing-token\"\n"
            ),
            ["push.token_file", "missing-token"],
        ),
        (
            "faultline-agent",
            format!(
                "[agent]\nid = \"a\"\n[push]\nurl = \"https://x\"\ntoken = \"t\"\nca_file = \"{d}/missing-ca.crt\"\n"
            ),
            ["push.ca_file", "missing-ca.crt"],
        ),
        (
            "faultline-agent",
            format!(
                "[agent]\nid = \"a\"\n[push]\nurl = \"https://x\"\ntoken = \"t\"\nclient_cert_file = \"{d}/empty\"\nclient_key_file = \"{d}/empty\"\n"
            ),
            ["push.client_cert_file", "not a PEM"],
        ),
        (
            "faultline-collector",
            format!(
                "[listen]\naddress = \"127.0.0.1:1\"\n[storage]\npath = \"{d}/x.db\"\n[[agents]]\nid = \"a\"\ntoken_file = \"{d}/missing-token\"\n"
            ),
            ["agents[0].token_file", "missing-token"],
        ),
        (
            "faultline-collector",
            format!(
                "[listen]\naddress = \"127.0.0.1:1\"\n[storage]\npath = \"{d}/x.db\"\n[[api.tokens]]\nname = \"noc\"\nrole = \"viewer\"\ntoken_file = \"{d}/empty\"\n"
            ),
            ["api.tokens[0].token_file", "empty"],
        ),
        (
            "faultline-collector",
            format!(
                "[listen]\naddress = \"127.0.0.1:1\"\ncert_file = \"{d}/missing.crt\"\nkey_file = \"{d}/missing.key\"\n[storage]\npath = \"{d}/x.db\"\n"
            ),
            ["listen.cert_file", "missing.crt"],
        ),
        (
            "faultline-collector",
            format!(
                "[listen]\naddress = \"127.0.0.1:1\"\n[storage]\npath = \"{d}/x.db\"\n[incidents]\nrule_files = [\"{d}/missing-rules.toml\"]\n"
            ),
            ["c6.toml:6:", "incidents.rule_files[0]"],
        ),
    ];
    for (i, (program, text, wanted)) in cases.iter().enumerate() {
        let (passed, err) = check_config(program, &dir.path().join(format!("c{i}.toml")), text);
        assert!(!passed, "case {i} passed");
        for want in wanted {
            assert!(err.contains(want), "case {i}: `{want}` missing from: {err}");
        }
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
        .args(["check-config", "--config"])
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
            .args(["check-config", "--config"])
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

/// A broken profile in `snmp.profiles_dir` fails `check-config`, which names the profile's file,
/// line and field: an unknown kind, a metric defined twice, an OID that is not numeric, a scale
/// that is not a number.
#[test]
fn check_config_names_the_broken_profile_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let config = format!(
        "[agent]\nid = \"a\"\n[push]\nurl = \"http://127.0.0.1:9\"\ntoken = \"t\"\n[snmp]\nprofiles_dir = \"{}\"\n",
        profiles.display()
    );
    let good = "name = \"acme\"\nsys_object_id = [\"1.3.6.1.4.1.99999\"]\n\n[[scalars]]\n\
                metric = \"faultline_snmp_acme_a\"\noid = \"1.3.6.1.4.1.99999.1.0\"\nkind = \"gauge\"\n\
                scale = 0.1\n\n[[scalars]]\nmetric = \"faultline_snmp_acme_b\"\n\
                oid = \"1.3.6.1.4.1.99999.2.0\"\nkind = \"gauge\"\n";
    let file = profiles.join("acme.toml");
    std::fs::write(&file, good).unwrap();
    let (passed, err) = check_config("faultline-agent", &dir.path().join("agent.toml"), &config);
    assert!(passed, "the good profile passes: {err}");
    let cases = [
        (
            "kind = \"gauge\"",
            "kind = \"gauges\"",
            7,
            "scalars[0].kind",
        ),
        (
            "faultline_snmp_acme_b",
            "faultline_snmp_acme_a",
            11,
            "scalars[1].metric",
        ),
        (
            "\"1.3.6.1.4.1.99999.1.0\"",
            "\"enterprises.99999.1.0\"",
            6,
            "scalars[0].oid",
        ),
        ("scale = 0.1", "scale = \"0.1\"", 8, "scalars[0].scale"),
    ];
    for (from, to, line, field) in cases {
        std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
        let (passed, err) =
            check_config("faultline-agent", &dir.path().join("agent.toml"), &config);
        assert!(!passed, "{to} passed");
        assert!(
            err.contains(&format!("{}:{line}:", file.display())) && err.contains(field),
            "{to}: want {}:{line}: and {field} in: {err}",
            file.display()
        );
    }
}
