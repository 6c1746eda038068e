//! TLS and mutual TLS between the real agent and collector, with certificates made by the
//! `openssl` command: a verified agent gets through; a client without a certificate and an agent
//! trusting another CA do not.

use faultline_tests::certs::{make_ca, make_leaf};
use faultline_tests::*;
use std::path::Path;
use std::time::Duration;

fn https_client(dir: &Path, with_identity: bool) -> reqwest::Client {
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
        .timeout(Duration::from_secs(5));
    if with_identity {
        let mut pem = std::fs::read(dir.join("agent.crt")).unwrap();
        pem.extend(std::fs::read(dir.join("agent.key")).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_verified_agents() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d, "ca");
    make_ca(d, "rogue-ca");
    make_leaf(d, "ca", "collector", "serverAuth");
    make_leaf(d, "ca", "agent", "clientAuth");

    let port = free_port();
    let config = d.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\ncert_file = \"{0}/collector.crt\"\nkey_file = \"{0}/collector.key\"\nclient_ca_file = \"{0}/ca.crt\"\n\n[storage]\npath = \"{0}/state.db\"\n\n[[agents]]\nid = \"a1\"\ntoken = \"{TOKEN}\"\n",
            d.display()
        ),
    )
    .unwrap();
    let collector = Daemon::spawn(
        &binary("faultline-collector"),
        &[
            "--log-format",
            "json",
            "run",
            "--config",
            &config.to_string_lossy(),
        ],
        &d.join("collector.log"),
        &[("RUST_LOG", "info,faultline_collector=debug")],
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let verified = https_client(d, true);
    let healthy = wait_until(Duration::from_secs(15), || async {
        verified
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(healthy, "collector not serving TLS:\n{}", collector.log());

    // Without a client certificate the handshake is refused.
    let anonymous = https_client(d, false);
    assert!(
        anonymous
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_err(),
        "anonymous client got in"
    );
    // Plain HTTP to the TLS port gets no answer.
    assert!(
        get_text(&format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_empty()
    );

    // An agent trusting another CA refuses the collector's certificate and pushes nothing.
    let rogue_dir = d.join("rogue");
    std::fs::create_dir(&rogue_dir).unwrap();
    let rogue_config = agent_config(&rogue_dir, &url, "300ms", "").unwrap();
    let text = std::fs::read_to_string(&rogue_config).unwrap().replace(
        "timeout = \"2s\"",
        &format!(
            "timeout = \"2s\"\nca_file = \"{0}/rogue-ca.crt\"\nclient_cert_file = \"{0}/agent.crt\"\nclient_key_file = \"{0}/agent.key\"",
            d.display()
        ),
    );
    std::fs::write(&rogue_config, text).unwrap();
    let rogue = start_agent(&rogue_dir, &rogue_config).unwrap();
    let refused = wait_until(Duration::from_secs(15), || async {
        rogue.log().contains("push failed; will retry")
    })
    .await;
    assert!(refused, "rogue agent log:\n{}", rogue.log());
    // The log says why: the collector's certificate has an issuer the agent does not trust.
    let reasons: Vec<String> = log_events(&rogue.log(), "push failed; will retry")
        .iter()
        .map(|e| {
            e["fields"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("UnknownIssuer")),
        "TLS failure logged without its cause: {reasons:?}"
    );
    drop(rogue);
    assert!(
        log_events(&collector.log(), "batch applied").is_empty(),
        "a batch from an agent that distrusts the collector was applied"
    );

    // The properly configured agent gets through over mutual TLS.
    let agent_config_path = agent_config(d, &url, "300ms", "").unwrap();
    let text = std::fs::read_to_string(&agent_config_path).unwrap().replace(
        "timeout = \"2s\"",
        &format!(
            "timeout = \"2s\"\nca_file = \"{0}/ca.crt\"\nclient_cert_file = \"{0}/agent.crt\"\nclient_key_file = \"{0}/agent.key\"",
            d.display()
        ),
    );
    std::fs::write(&agent_config_path, text).unwrap();
    let agent = start_agent(d, &agent_config_path).unwrap();
    let arrived = wait_until(Duration::from_secs(20), || async {
        let text = match verified.get(format!("{url}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        metric_value(
            &text,
            "faultline_host_memory_total_bytes",
            &[("agent", "a1")],
        )
        .is_some()
    })
    .await;
    assert!(
        arrived,
        "no data over mutual TLS; agent log:\n{}",
        agent.log()
    );
    for log in [agent.log(), collector.log()] {
        assert!(!log.contains(TOKEN), "token leaked");
        assert!(!log.contains("PRIVATE KEY"), "key leaked");
    }
}
