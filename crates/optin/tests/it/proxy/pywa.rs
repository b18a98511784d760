//! An unmodified WhatsApp client library, pywa from PyPI, sending through the proxy: its base URL
//! is optin's and its token the business's optin API key (`crates/optin/tests/pywa/send.py`).
//!
//! The test installs the pinned pywa itself, once, in a virtualenv under the target directory
//! (`python3 -m venv`, then `pip install`), so `cargo test` needs only `python3` and PyPI.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use super::channel_with_templates;
use crate::helpers::{TestApp, on_both_backends, text};
use crate::whatsapp::{Channel, PHONE_NUMBER_ID, WA_ID, recent, text_message};

/// The pywa the test runs, pinned.
const PYWA: &str = "pywa==4.5.0";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pywa/send.py");

on_both_backends!(pywa_sends_through_the_proxy_as_through_the_cloud_api);

async fn pywa_sends_through_the_proxy_as_through_the_cloud_api(app: TestApp) {
    let channel = channel_with_templates(app).await;

    // No opt-in to `offers` and no open window: pywa raises its own errors, with our reasons.
    let refused = run_send_script(&channel).await;
    let (template, free_form) = (&refused[0], &refused[1]);
    assert_eq!((template["ok"].as_bool(), template["status_code"].as_u64()), (Some(false), Some(400)), "{template}");
    assert_eq!(template["code"], 100);
    assert!(text(&template["details"]).contains("not_opted_in_to_template_category"), "{template}");
    assert_eq!(template["optin_reasons"][0]["code"], "not_opted_in_to_template_category");
    assert_eq!(free_form["code"], 131_047, "{free_form}");
    assert_eq!(free_form["error_class"], "ReEngagementMessage", "pywa's class for the platform's code");
    assert!(text(&free_form["details"]).contains("outside_service_window"), "{free_form}");
    assert!(!text(&free_form["fbtrace_id"]).is_empty());
    assert!(channel.upstream.sent().is_empty(), "refused messages reach nobody");

    // Opted in, and the contact wrote a minute ago: both are forwarded, exactly as pywa wrote them.
    channel.opt_in(&["offers"]).await;
    channel.deliver(&text_message("wamid.pywa-in", "Hi, is my order on its way?", recent())).await;
    let allowed = run_send_script(&channel).await;
    let sent = channel.upstream.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (result, upstream) in allowed.iter().zip(&sent) {
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["id"], upstream.wamid.as_str(), "pywa got the upstream's message id");
        assert_eq!(result["sent_body"], upstream.body, "the upstream got pywa's body unchanged");
        assert_eq!(upstream.phone_number_id.as_deref(), Some(PHONE_NUMBER_ID));
        let expected_url =
            format!("{}/proxy/{}/v23.0/{PHONE_NUMBER_ID}/messages", channel.app.address, channel.business.id);
        assert_eq!(result["url"], expected_url.as_str());
    }
    assert_eq!(sent[0].body["template"]["name"], "spring_sale");
    assert_eq!(sent[1].body["text"]["body"], "Your order shipped.");
    assert_eq!(sent[0].body["to"], WA_ID);
}

/// Runs `send.py` against the channel's business and returns what it printed, one value per send.
async fn run_send_script(channel: &Channel) -> Vec<Value> {
    let args = [
        SCRIPT.to_owned(),
        channel.app.address.clone(),
        channel.business.id.clone(),
        channel.business.key.clone(),
        PHONE_NUMBER_ID.to_owned(),
        WA_ID.to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || Command::new(pywa_python()).args(&args).output())
        .await
        .unwrap()
        .expect("run send.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "send.py failed: {}\nstdout: {stdout}\nstderr: {stderr}", output.status);
    let results: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(results.len(), 2, "stdout: {stdout}\nstderr: {stderr}");
    results
}

/// The interpreter of a virtualenv with the pinned pywa, made the first time any test asks
/// (guarded by a lock file, so concurrent tests and test processes make it once).
fn pywa_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install_pywa).clone()
}

fn install_pywa() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(tmp).expect("create the target's tmp directory");
    let venv = tmp.join("pywa-venv");
    let lock = File::create(tmp.join("pywa-venv.lock")).expect("create the virtualenv's lock file");
    lock.lock().expect("lock the virtualenv");
    let python = venv.join("bin").join("python");
    let marker = venv.join("optin-installed");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(PYWA) {
        let _ = std::fs::remove_dir_all(&venv);
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv (needs python3 with venv: apt-get install python3-venv)",
        );
        let pip = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", PYWA];
        run(Command::new(&python).args(pip), "pip install pywa");
        std::fs::write(&marker, PYWA).expect("mark the virtualenv as installed");
    }
    python
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
