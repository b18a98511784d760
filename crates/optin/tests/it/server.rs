//! `optin serve` as a process: operator token bootstrap, demo business, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// A running `optin serve`; what it printed on stdout is collected until it exits.
struct Server {
    child: Child,
    address: String,
    stdout: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Server {
    /// Starts `optin serve` on a free port; returns once it logged its address.
    fn start(data_dir: &std::path::Path, extra: &[&str], admin_token: Option<&str>) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_optin"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env_remove("OPTIN_DATABASE_URL")
            .env_remove("OPTIN_ADMIN_TOKEN")
            .env("RUST_LOG", "info")
            .env("OPTIN_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = admin_token {
            command.env("OPTIN_ADMIN_TOKEN", token);
        }
        let mut child = command.spawn().expect("optin serve starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stdout = std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect());
        let (sender, receiver) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains("optin is serving") {
                    let log: serde_json::Value = serde_json::from_str(&line).expect("JSON logs");
                    let _ = sender.send(format!("http://{}", log["fields"]["listen"].as_str().unwrap()));
                }
            }
        });
        let address = receiver.recv_timeout(Duration::from_secs(30)).expect("the server logs its address");
        Server { child, address, stdout: Some(stdout) }
    }

    /// Sends SIGTERM, waits for a graceful exit, and returns what it printed.
    fn stop(mut self) -> Vec<String> {
        let status = terminate(&mut self.child);
        assert!(status.success(), "graceful shutdown exits 0, not {status}");
        self.stdout.take().unwrap().join().unwrap()
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("optin serve did not stop on SIGTERM");
}

#[tokio::test]
async fn first_start_generates_an_operator_token_once_and_a_demo_business() {
    let directory = TempDir::new().unwrap();
    let server = Server::start(directory.path(), &["--demo"], None);
    let address = server.address.clone();
    let token_file = directory.path().join("operator-token");
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    assert!(token.starts_with("optin_op_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let client = reqwest::Client::new();
    let businesses: serde_json::Value =
        client.get(format!("{address}/v1/businesses")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(businesses["businesses"][0]["name"], "Demo Shoes");
    let demo = std::fs::read_to_string(directory.path().join("demo-business")).unwrap();
    let key = demo.lines().find_map(|l| l.strip_prefix("OPTIN_API_KEY=")).unwrap();
    let decision = client
        .post(format!("{address}/v1/decisions"))
        .bearer_auth(key)
        .json(&serde_json::json!({"phone": "+14155552671", "category": "offers"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decision.status(), 200);
    let printed = server.stop();
    assert!(printed.iter().any(|l| l.contains(&token)), "printed once at first start: {printed:?}");
    assert!(printed.iter().any(|l| l.contains(key)), "the demo key is printed once: {printed:?}");

    let printed_again = Server::start(directory.path(), &["--demo"], None).stop();
    assert!(printed_again.iter().all(|l| !l.contains("optin_")), "secrets are never printed twice: {printed_again:?}");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token, "the file is not rewritten");
}

#[tokio::test]
async fn an_admin_token_from_the_environment_replaces_the_stored_one() {
    let directory = TempDir::new().unwrap();
    let token = "optin_op_from-the-environment-123";
    let server = Server::start(directory.path(), &[], Some(token));
    let address = server.address.clone();
    assert!(!directory.path().join("operator-token").exists());
    let client = reqwest::Client::new();
    let ok = client.get(format!("{address}/v1/businesses")).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let wrong =
        client.get(format!("{address}/v1/businesses")).bearer_auth("optin_op_wrong-token-000000").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let printed = server.stop();
    assert!(printed.iter().all(|l| !l.contains(token)), "an environment token is never printed");
}
