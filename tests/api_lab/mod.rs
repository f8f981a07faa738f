//! Harness of the admin API's end-to-end tests: the real keepserver with an `api` section in a
//! network namespace of its own (MASTER while the VIP is on `ksv0`), driving the real HAProxy;
//! HTTP backends (tests/libra/lab.py) on the namespace's loopback; requests with curl. The
//! namespace, workspace and daemon guards of tests/common clean up, also on failure.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::common::*;

/// The VIP the labs watch on `ksv0`.
pub const VIP: &str = "203.0.113.10";
/// Where the API listens inside the namespace.
pub const API_PORT: u16 = 9180;

/// How the lab's API is protected.
#[derive(Debug, Clone)]
pub enum LabAuth {
    /// No `api.auth`.
    Open,
    /// `token-file` holding this token.
    Token(String),
    /// `username` and a `password-file` holding the password.
    Basic(String, String),
}

/// What goes into the lab's config.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// `api.serve`.
    pub serve: &'static str,
    /// `api.auth`.
    pub auth: LabAuth,
    /// `api.tls` with a test CA's server certificate; with `client-ca` when true.
    pub tls: Option<bool>,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            serve: "always",
            auth: LabAuth::Token("s3cret-token".into()),
            tls: None,
        }
    }
}

/// An answer: status, headers (lower-case names), body (JSON, `Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status (0: no answer, see `error`).
    pub status: u16,
    /// The response headers of the final response.
    pub headers: String,
    /// The body as JSON.
    pub body: Value,
    /// curl's complaint when it got no answer.
    pub error: String,
}

impl Answer {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// The running lab.
pub struct ApiLab {
    pub spec: LabSpec,
    pub ns: Netns,
    pub ws: Workspace,
    daemon: Option<Daemon>,
    /// Daemons killed by the test, their guards kept for the end.
    killed: Vec<Daemon>,
    /// The backends (the namespace guard kills them; they are reaped here).
    helpers: Mutex<Vec<Child>>,
    counter: AtomicUsize,
}

impl Drop for ApiLab {
    fn drop(&mut self) {
        for mut child in self
            .helpers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The HAProxy binary keepserver is told to use (Debian's is in /usr/sbin).
fn haproxy_binary() -> &'static str {
    if Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    }
}

/// lab.py of the Libra tests: backends and GETs.
pub fn lab_py() -> String {
    format!("{}/tests/libra/lab.py", env!("CARGO_MANIFEST_DIR"))
}

impl ApiLab {
    /// Starts the lab (namespace, config, daemon answering `status`), or `None` where e2e tests
    /// cannot run here.
    pub fn start(test: &str, spec: LabSpec) -> Option<ApiLab> {
        let has_haproxy = std::process::Command::new(haproxy_binary())
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success());
        let ns = Netns::new(test)?;
        let check = if has_haproxy {
            Ok(())
        } else {
            Err("haproxy is not installed".to_string())
        };
        if !prerequisite(test, check.as_ref().map_err(String::clone)) {
            return None;
        }
        let ws = Workspace::with_config_text(|_| String::new(), false, "server.pid");
        let lab = ApiLab {
            spec,
            ns,
            ws,
            daemon: None,
            killed: Vec::new(),
            helpers: Mutex::new(Vec::new()),
            counter: AtomicUsize::new(0),
        };
        lab.write_secrets(0o600);
        if lab.spec.tls.is_some() {
            lab.make_certificates();
        }
        lab.write_config(API_PORT);
        let mut lab = lab;
        lab.start_daemon();
        Some(lab)
    }

    /// Writes the auth secret file with `mode`.
    pub fn write_secrets(&self, mode: u32) {
        let secret = match &self.spec.auth {
            LabAuth::Open => return,
            LabAuth::Token(t) => t.clone(),
            LabAuth::Basic(_, p) => p.clone(),
        };
        let path = self.ws.path("secret");
        std::fs::write(&path, format!("{secret}\n")).expect("write the secret");
        let mut perms = std::fs::metadata(&path).expect("secret").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, mode);
        std::fs::set_permissions(&path, perms).expect("chmod the secret");
    }

    /// A test CA, a server certificate for 127.0.0.1 and a client certificate, made with
    /// openssl in the workspace.
    fn make_certificates(&self) {
        let dir = self.ws.dir().display().to_string();
        let script = format!(
            r#"set -e
cd '{dir}'
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=keepserver-test-ca 2>/dev/null
openssl req $ec -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
openssl req $ec -keyout client.key -out client.pem.csr -subj /CN=client 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.pem.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null
"#
        );
        let out = run(
            std::process::Command::new("sh").args(["-c", &script]),
            Duration::from_secs(30),
        );
        assert!(
            out.ok(),
            "openssl could not make the test certificates:\n{out}"
        );
    }

    /// Writes config.yaml with the API on `port`.
    pub fn write_config(&self, port: u16) {
        let spec = ConfigSpec::new(VIP).sleep(0.2);
        let mut y = spec.render(self.ws.dir());
        let _ = writeln!(y, "api:");
        let _ = writeln!(y, "  listen: 127.0.0.1:{port}");
        let _ = writeln!(y, "  serve: {}", self.spec.serve);
        let _ = writeln!(y, "  peer-name: node1");
        match &self.spec.auth {
            LabAuth::Open => {}
            LabAuth::Token(_) => {
                let _ = writeln!(y, "  auth:\n    token-file: secret");
            }
            LabAuth::Basic(user, _) => {
                let _ = writeln!(
                    y,
                    "  auth:\n    username: {user}\n    password-file: secret"
                );
            }
        }
        if let Some(client_ca) = self.spec.tls {
            let _ = writeln!(
                y,
                "  tls:\n    certificate: server.pem\n    key: server.key"
            );
            if client_ca {
                let _ = writeln!(y, "    client-ca: ca.pem");
            }
        }
        let _ = writeln!(y, "  haproxy:\n    binary: {}", haproxy_binary());
        self.ws.write("config.yaml", &y);
    }

    /// Starts keepserver and waits until its API answers.
    pub fn start_daemon(&mut self) {
        self.daemon = Some(Daemon::start(&self.ns, &self.ws));
        self.wait_until("the API answers", || {
            self.call("GET", "/api/haproxy/loadbalancers", None).status == 200
        });
    }

    /// kill -9 of the daemon (HAProxy keeps running), then a new daemon.
    pub fn kill9_and_restart(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.signal(Signal::SIGKILL);
            self.wait_until("the killed daemon is gone", || !d.alive());
            // Its guard would kill everything in the namespace (HAProxy, the backends): it is
            // kept until the lab ends.
            self.killed.push(d);
        }
        self.start_daemon();
    }

    /// The running daemon.
    pub fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("a daemon runs")
    }

    /// Waits for `cond`, panicking with the report after the deadline.
    pub fn wait_until(&self, what: &str, cond: impl FnMut() -> bool) {
        if !wait_for(cond, DEADLINE) {
            panic!("timed out waiting for {what}\n{}", self.report());
        }
    }

    /// The workspace's report (config, daemon output, status).
    pub fn report(&self) -> String {
        self.ws.report()
    }

    /// The `Authorization` header of the lab's credential.
    pub fn authorization(&self) -> Option<String> {
        match &self.spec.auth {
            LabAuth::Open => None,
            LabAuth::Token(t) => Some(format!("Bearer {t}")),
            LabAuth::Basic(u, p) => {
                let pair = format!("{u}:{p}");
                let out = run(
                    std::process::Command::new("sh")
                        .args(["-c", &format!("printf %s '{pair}' | base64 -w0")]),
                    Duration::from_secs(5),
                );
                Some(format!("Basic {}", out.stdout.trim()))
            }
        }
    }

    /// The API's base URL.
    pub fn base(&self, port: u16) -> String {
        let scheme = if self.spec.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{port}")
    }

    /// curl's TLS options: the test CA, and the client certificate when `client`.
    pub fn tls_args(&self, client: bool) -> Vec<String> {
        if self.spec.tls.is_none() {
            return Vec::new();
        }
        let mut args = vec![
            "--cacert".into(),
            self.ws.path("ca.pem").display().to_string(),
        ];
        if client {
            args.extend([
                "--cert".into(),
                self.ws.path("client.pem").display().to_string(),
                "--key".into(),
                self.ws.path("client.key").display().to_string(),
            ]);
        }
        args
    }

    /// A request with the lab's credential (and client certificate).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let auth = self.authorization();
        let text = body.map(Value::to_string);
        self.request(
            API_PORT,
            method,
            path,
            text.as_deref(),
            auth.as_deref(),
            &self.tls_args(true),
        )
    }

    /// A request as given: `body` sent as application/json, `authorization` as the header.
    pub fn request(
        &self,
        port: u16,
        method: &str,
        path: &str,
        body: Option<&str>,
        authorization: Option<&str>,
        extra: &[String],
    ) -> Answer {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let body_file = self.ws.path(&format!("req-{n}.body"));
        let out_file = self.ws.path(&format!("req-{n}.out"));
        let head_file = self.ws.path(&format!("req-{n}.head"));
        let mut args: Vec<String> = vec![
            "curl".into(),
            "-sS".into(),
            "--max-time".into(),
            "20".into(),
            "-X".into(),
            method.into(),
            "-o".into(),
            path_str(&out_file),
            "-D".into(),
            path_str(&head_file),
            "-w".into(),
            "%{http_code}".into(),
        ];
        if let Some(body) = body {
            std::fs::write(&body_file, body).expect("write the body");
            args.extend([
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                format!("@{}", path_str(&body_file)),
            ]);
        }
        if let Some(auth) = authorization {
            args.extend(["-H".into(), format!("Authorization: {auth}")]);
        }
        args.extend(extra.iter().cloned());
        args.push(format!("{}{path}", self.base(port)));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.ns.exec(&refs);
        let status = out.stdout.trim().parse().unwrap_or(0);
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        let heads = std::fs::read_to_string(&head_file).unwrap_or_default();
        // The final response's headers (after any `100 Continue`).
        let headers = heads
            .split("\r\n\r\n")
            .filter(|h| !h.trim().is_empty())
            .last()
            .unwrap_or("")
            .to_string();
        for f in [&body_file, &out_file, &head_file] {
            let _ = std::fs::remove_file(f);
        }
        Answer {
            status,
            headers,
            body: if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
            error: out.stderr,
        }
    }

    /// A request that must answer `status`; its body.
    pub fn expect(&self, method: &str, path: &str, body: Option<&Value>, status: u16) -> Value {
        let answer = self.call(method, path, body);
        assert_eq!(
            answer.status,
            status,
            "{method} {path} {}: answered {answer:?}\n{}",
            body.map(Value::to_string).unwrap_or_default(),
            self.report()
        );
        answer.body
    }

    /// Starts `args` in the namespace, output to `log` in the workspace; killed and reaped
    /// when the lab ends.
    pub fn spawn_helper(&self, args: &[&str], log: &str) {
        let child = self.ns.spawn(args, &self.ws.path(log));
        self.helpers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
    }

    /// Starts an HTTP backend `backend=NAME` on 127.0.0.1:`port`.
    pub fn backend(&self, name: &str, port: u16) {
        let file = self.ws.path(&format!("backend-{name}.port"));
        self.spawn_helper(
            &[
                "python3",
                &lab_py(),
                "backend",
                name,
                &path_str(&file),
                "--port",
                &port.to_string(),
            ],
            &format!("backend-{name}.log"),
        );
        self.wait_until(&format!("backend {name} listens"), || {
            std::fs::read_to_string(&file).is_ok_and(|t| !t.trim().is_empty())
        });
    }

    /// `count` GETs of http://127.0.0.1:`port`/, each on a new connection: the bodies, or
    /// what went wrong.
    pub fn get(&self, port: u16, count: usize) -> Vec<Result<String, String>> {
        let url = format!("http://127.0.0.1:{port}/");
        let out = self
            .ns
            .exec(&["python3", &lab_py(), "get", &url, &count.to_string()]);
        let v: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("lab.py get gave no JSON ({e}):\n{out}"));
        v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| match (r["status"].as_u64(), r["body"].as_str()) {
                (Some(200), Some(body)) => Ok(body.trim().to_string()),
                (Some(status), body) => Err(format!("HTTP {status}: {}", body.unwrap_or(""))),
                _ => Err(r["error"].as_str().unwrap_or("?").to_string()),
            })
            .collect()
    }

    /// The sorted, distinct backends that answered `count` GETs through `port`, or the first
    /// failure.
    pub fn backends_seen(&self, port: u16, count: usize) -> Result<Vec<String>, String> {
        let mut seen = Vec::new();
        for r in self.get(port, count) {
            let body = r?;
            let name = body
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_start_matches("backend=")
                .to_string();
            seen.push(name);
        }
        seen.sort();
        seen.dedup();
        Ok(seen)
    }

    /// The haproxy.cfg the API owns.
    pub fn haproxy_cfg(&self) -> PathBuf {
        self.ws.path("haproxy.cfg")
    }

    /// Every object the API holds, as listed (for before/after comparisons).
    pub fn everything(&self) -> Value {
        let mut all = serde_json::Map::new();
        for kind in [
            "loadbalancers",
            "listeners",
            "pools",
            "healthmonitors",
            "peers",
        ] {
            all.insert(
                kind.into(),
                self.expect("GET", &format!("/api/haproxy/{kind}"), None, 200),
            );
        }
        Value::Object(all)
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}
