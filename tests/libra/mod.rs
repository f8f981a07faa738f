//! Harness for the Libra worker end-to-end tests: a [`Lab`] is one test namespace holding a real
//! `gearmand`, the real `keepserver` (which starts the real HAProxy), HTTP backends and a fake
//! Swift store (tests/libra/lab.py), and a real Gearman client (the `gear` library, through
//! tests/libra/gear_client.py). Everything runs inside the namespace on its 127.0.0.1, on ports
//! chosen there at run time; the namespace guard kills every process in it on Drop (also on
//! panic), and the workspace guard removes every file.
#![allow(dead_code)] // every test file uses a different part of the harness

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::common::*;

/// The VIP on `ksv0` that makes the node MASTER.
pub const VIP: &str = "192.0.2.10";
/// The VIP with its prefix, as added to the NIC.
pub const VIP_CIDR: &str = "192.0.2.10/24";
/// The Gearman function (`libra.queue`) keepserver registers.
pub const QUEUE: &str = "lbaas-e2e";
/// The test helpers' directory.
const HELPERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/libra");
/// How long the Gearman client waits for one job by default.
const JOB_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a helper command may run before it is killed and reported.
const HELPER_TIMEOUT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------------------------
// Prerequisites

/// Whether the Libra e2e tests can run here: root and `ip netns` (as every e2e test), plus
/// `haproxy`, `gearmand` (Debian gearman-job-server) and Python's `gear`, which are installed
/// (apt-get, pip) when missing. Where tests must run (`CI`, `KEEPSERVER_E2E_REQUIRED`) a missing
/// prerequisite fails the test; elsewhere it prints a SKIP line.
pub fn libra_available(test: &str) -> bool {
    if !e2e_available(test) {
        return false;
    }
    static TOOLS: OnceLock<Result<(), String>> = OnceLock::new();
    prerequisite(
        test,
        TOOLS
            .get_or_init(ensure_tools)
            .as_ref()
            .map_err(Clone::clone),
    )
}

fn has_command(name: &str) -> bool {
    run(
        Command::new("sh").args(["-c", &format!("command -v {name}")]),
        HELPER_TIMEOUT,
    )
    .ok()
}

fn has_gear() -> bool {
    run(
        Command::new("python3").args(["-c", "import gear"]),
        HELPER_TIMEOUT,
    )
    .ok()
}

/// Installs what is missing; an error names what could not be had.
fn ensure_tools() -> Result<(), String> {
    let install = Duration::from_secs(600);
    let mut packages = Vec::new();
    // Debian puts both in /usr/sbin, which a test's PATH may lack.
    if !Path::new("/usr/sbin/haproxy").exists() && !has_command("haproxy") {
        packages.push("haproxy");
    }
    if !Path::new("/usr/sbin/gearmand").exists() && !has_command("gearmand") {
        packages.push("gearman-job-server");
    }
    if !packages.is_empty() {
        apt_install(&packages)?;
    }
    if !has_command("python3") {
        return Err("python3 is not installed".to_string());
    }
    if !has_gear() {
        let mut out = run(
            Command::new("python3").args(["-m", "pip", "install", "-q", "gear"]),
            install,
        );
        if !out.ok() && out.text().contains("externally-managed") {
            out = run(
                Command::new("python3").args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--break-system-packages",
                    "gear",
                ]),
                install,
            );
        }
        if !has_gear() {
            return Err(format!(
                "the Python Gearman library `gear` is missing and pip could not install it:\n{out}"
            ));
        }
    }
    Ok(())
}

/// The HAProxy binary keepserver is told to use.
fn haproxy_binary() -> String {
    if Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy".to_string()
    } else {
        "haproxy".to_string()
    }
}

/// The gearmand binary.
fn gearmand_binary() -> String {
    if Path::new("/usr/sbin/gearmand").exists() {
        "/usr/sbin/gearmand".to_string()
    } else {
        "gearmand".to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Replies

/// One job's end as the Gearman client saw it.
#[derive(Debug, Clone)]
pub struct JobEnd {
    /// complete, fail, exception or timeout.
    pub outcome: String,
    /// The WORK_COMPLETE (or WORK_EXCEPTION) data.
    pub data: String,
    /// Seconds from submission to the end.
    pub seconds: f64,
}

impl JobEnd {
    fn from_json(v: &Value) -> JobEnd {
        JobEnd {
            outcome: v["outcome"].as_str().unwrap_or_default().to_string(),
            data: v["data"].as_str().unwrap_or_default().to_string(),
            seconds: v["seconds"].as_f64().unwrap_or(-1.0),
        }
    }

    /// The reply as JSON, if it is JSON.
    pub fn reply(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// `reply["hpcs_response"]`.
pub fn response(reply: &Value) -> &str {
    reply["hpcs_response"].as_str().unwrap_or("")
}

/// `reply["hpcs_error"]` (empty when absent).
pub fn error_of(reply: &Value) -> &str {
    reply["hpcs_error"].as_str().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// gearmand

/// A real gearmand inside the lab's namespace, in the foreground with its own files.
pub struct Gearmand {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Drop for Gearmand {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Gearmand {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

// ---------------------------------------------------------------------------------------------
// The lab

/// How a lab is set up.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Add the VIP before keepserver starts (MASTER at once).
    pub master: bool,
    /// `libra.haproxy.follow-role`.
    pub follow_role: bool,
    /// Extra `libra.servers` entries after the lab's gearmand, as ports on 127.0.0.1.
    pub extra_servers: Vec<u16>,
    /// `libra.diagnostics.targets` as ports on 127.0.0.1 (default: the lab's gearmand port).
    pub targets: Option<Vec<u16>>,
    /// Root logger at DEBUG instead of the default INFO.
    pub debug_log: bool,
    /// `libra.haproxy.config` (default: haproxy.cfg in the workspace).
    pub haproxy_config: Option<PathBuf>,
    /// Config text appended after the lab's own sections (top-level sections of its own).
    pub extra_config: String,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            master: true,
            follow_role: false,
            extra_servers: Vec::new(),
            targets: None,
            debug_log: false,
            haproxy_config: None,
            extra_config: String::new(),
        }
    }
}

/// Helper processes started in the background; reaped (killed if need be, and waited for) on
/// Drop, so none is left behind as a zombie.
struct Reaper(Mutex<Vec<Child>>);

impl Reaper {
    fn keep(&self, child: Child) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(child);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for mut child in self.0.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One test's world. Field order is drop order: keepserver, then every process in the namespace
/// and the namespace itself, then the files.
pub struct Lab {
    daemon: Option<Daemon>,
    /// keepservers killed by [`Lab::restart_keepserver`] (dropping a guard clears the namespace).
    killed: Vec<Daemon>,
    gearmands: Vec<Gearmand>,
    /// The namespace everything runs in.
    pub ns: Netns,
    helpers: Reaper,
    /// The workspace: config.yaml, haproxy.cfg, run/, logs, helper files.
    pub ws: Workspace,
    spare_ports: Vec<u16>,
    seq: AtomicUsize,
    /// The haproxy.cfg keepserver owns.
    haproxy_config: PathBuf,
}

impl Lab {
    /// Namespace, workspace, gearmand, config and keepserver; with `spec.master` it waits until
    /// keepserver is MASTER and its worker is registered on the queue. `None` where the tests
    /// cannot run (after a SKIP line).
    pub fn start(test: &str, spec: LabSpec) -> Option<Lab> {
        Self::start_with(test, spec, |_, _| {})
    }

    /// As [`Lab::start`], with `prepare` run on the lab before keepserver starts (its config is
    /// written afterwards, so `prepare` may start backends whose ports go into the spec).
    pub fn start_with(
        test: &str,
        mut spec: LabSpec,
        prepare: impl FnOnce(&mut Lab, &mut LabSpec),
    ) -> Option<Lab> {
        if !libra_available(test) {
            return None;
        }
        let ns = Netns::new(test)?;
        let ws = Workspace::new(&ConfigSpec::new(VIP));
        let haproxy_config = ws.path("haproxy.cfg");
        let mut lab = Lab {
            daemon: None,
            killed: Vec::new(),
            gearmands: Vec::new(),
            ns,
            helpers: Reaper(Mutex::new(Vec::new())),
            ws,
            spare_ports: Vec::new(),
            seq: AtomicUsize::new(0),
            haproxy_config,
        };
        lab.spare_ports = lab.free_ports(8);
        let port = lab.port();
        lab.start_gearmand(port);
        prepare(&mut lab, &mut spec);
        if let Some(config) = &spec.haproxy_config {
            lab.haproxy_config = config.clone();
        }
        lab.write_config(&spec);
        if spec.master {
            lab.ns.add_addr(VIP_CIDR);
        }
        lab.daemon = Some(Daemon::start(&lab.ns, &lab.ws));
        if spec.master {
            lab.wait_role("MASTER");
            lab.wait_workers(|w| w >= 1, "keepserver's worker registered on the queue");
        }
        Some(lab)
    }

    /// `n` free ports on the namespace's 127.0.0.1, chosen by the kernel now.
    pub fn free_ports(&self, n: usize) -> Vec<u16> {
        let out = self.helper(&["lab.py", "ports", &n.to_string()]);
        assert!(out.ok(), "cannot pick ports:\n{out}");
        out.stdout
            .split_whitespace()
            .map(|p| p.parse().expect("a port number"))
            .collect()
    }

    /// A port nothing listens on (yet), from those picked at the start.
    pub fn port(&mut self) -> u16 {
        self.spare_ports.pop().expect("spare ports left")
    }

    /// The lab's first gearmand.
    pub fn gearmand(&self) -> &Gearmand {
        &self.gearmands[0]
    }

    /// Runs a helper script (`lab.py` or `gear_client.py` with arguments) inside the namespace.
    fn helper(&self, args: &[&str]) -> CmdOutput {
        let script = format!("{HELPERS}/{}", args[0]);
        let mut full = vec!["python3", script.as_str()];
        full.extend_from_slice(&args[1..]);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns.name()]).args(&full);
        run(&mut cmd, HELPER_TIMEOUT)
    }

    /// Spawns a helper script in the background, reaped with the lab.
    fn spawn_kept(&self, args: &[&str], log: &str) {
        let child = self.spawn_helper(args, log);
        self.helpers.keep(child);
    }

    /// Spawns a helper script in the namespace (killed with the namespace), output to `log`.
    fn spawn_helper(&self, args: &[&str], log: &str) -> Child {
        let script = format!("{HELPERS}/{}", args[0]);
        let mut full = vec!["python3", script.as_str()];
        full.extend_from_slice(&args[1..]);
        self.ns.spawn(&full, &self.ws.path(log))
    }

    /// A unique name for a helper file in the workspace.
    pub fn unique(&self, stem: &str) -> String {
        format!("{stem}-{}", self.seq.fetch_add(1, Ordering::SeqCst))
    }

    // -- gearmand -----------------------------------------------------------------------------

    /// Starts a gearmand on `port` and waits until it answers the admin `status` command.
    pub fn start_gearmand(&mut self, port: u16) -> usize {
        let name = self.unique(&format!("gearmand-{port}"));
        let empty = self.ws.path(&format!("{name}.conf"));
        fs::write(&empty, "").expect("write empty gearmand config");
        let log = self.ws.path(&format!("{name}.log"));
        let pid = self.ws.path(&format!("{name}.pid"));
        let port_s = port.to_string();
        let args = [
            gearmand_binary(),
            "--port".into(),
            port_s,
            "--listen".into(),
            "127.0.0.1".into(),
            "--log-file".into(),
            log.display().to_string(),
            "--pid-file".into(),
            pid.display().to_string(),
            "--config-file".into(),
            empty.display().to_string(),
            "--threads".into(),
            "1".into(),
            "--verbose".into(),
            "INFO".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let end = Instant::now() + DEADLINE;
        // A port just released may still be busy for a moment: retry while gearmand exits early.
        loop {
            let mut child = self.ns.spawn(&args, &self.ws.path(&format!("{name}.out")));
            let ready = wait_for(
                || self.gearman_status(port).is_ok() || child.try_wait().ok().flatten().is_some(),
                end.saturating_duration_since(Instant::now()),
            );
            if ready && child.try_wait().ok().flatten().is_none() {
                self.gearmands.push(Gearmand {
                    port,
                    child: Some(child),
                    log,
                });
                return self.gearmands.len() - 1;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < end,
                "gearmand did not come up on port {port}:\n{}\n{}",
                tail(&fs::read_to_string(&log).unwrap_or_default(), 20),
                self.ws.read(&format!("{name}.out"))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs gearmand number `i` and waits until it is gone.
    pub fn kill_gearmand(&mut self, i: usize) {
        let g = &mut self.gearmands[i];
        if let Some(mut child) = g.child.take() {
            signal(child.id() as i32, Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// The admin `status` of the gearmand on `port`: function → (total, running, workers).
    pub fn gearman_status(&self, port: u16) -> Result<Value, String> {
        let out = self.helper(&["gear_client.py", "status", &format!("127.0.0.1:{port}")]);
        if !out.ok() {
            return Err(out.to_string());
        }
        serde_json::from_str(out.stdout.trim()).map_err(|e| format!("{e}: {out}"))
    }

    /// The queue's (total, running, workers) on the lab's gearmand; zeros when it is not listed.
    pub fn queue_status(&self) -> (u64, u64, u64) {
        let status = self
            .gearman_status(self.gearmand().port)
            .unwrap_or(Value::Null);
        let q = &status[QUEUE];
        let n = |k: &str| q[k].as_u64().unwrap_or(0);
        (n("total"), n("running"), n("workers"))
    }

    /// Waits until the queue's registered worker count satisfies `ok`.
    pub fn wait_workers(&self, ok: impl Fn(u64) -> bool, what: &str) {
        self.wait_until(what, DEADLINE, || ok(self.queue_status().2));
    }

    // -- keepserver ---------------------------------------------------------------------------

    fn write_config(&self, spec: &LabSpec) {
        let ws = self.ws.dir().display().to_string();
        let mut y = ConfigSpec::new(VIP)
            .start("true")
            .stop("true")
            .sleep(0.5)
            .render(self.ws.dir());
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut servers = vec![self.gearmand().addr()];
        servers.extend(spec.extra_servers.iter().map(|p| format!("127.0.0.1:{p}")));
        let targets: Vec<String> = spec
            .targets
            .clone()
            .unwrap_or_else(|| vec![self.gearmand().port])
            .iter()
            .map(|p| q(&format!("127.0.0.1:{p}")))
            .collect();
        let servers: Vec<String> = servers.iter().map(|s| q(s)).collect();
        let _ = writeln!(y, "libra:");
        let _ = writeln!(y, "  enabled: true");
        let _ = writeln!(y, "  servers: [{}]", servers.join(", "));
        let _ = writeln!(y, "  queue: {}", q(QUEUE));
        let _ = writeln!(y, "  concurrency: 2");
        let _ = writeln!(y, "  haproxy:");
        let config = self.haproxy_config.display().to_string();
        let _ = writeln!(y, "    config: {}", q(&config));
        let _ = writeln!(y, "    binary: {}", q(&haproxy_binary()));
        let _ = writeln!(y, "    bind: '127.0.0.1'");
        let _ = writeln!(y, "    runtime-dir: {}", q(&format!("{ws}/run")));
        let _ = writeln!(y, "    follow-role: {}", spec.follow_role);
        let _ = writeln!(y, "  diagnostics:");
        let _ = writeln!(y, "    targets: [{}]", targets.join(", "));
        let _ = writeln!(y, "  archive:");
        let _ = writeln!(y, "    log: {}", q(&format!("{ws}/haproxy.log")));
        y.push_str(&spec.extra_config);
        if spec.debug_log {
            y.push_str(
                "logging:\n  version: 1\n  handlers:\n    console:\n      class: logging.StreamHandler\n      level: DEBUG\n      stream: ext://sys.stderr\n  root:\n    level: DEBUG\n    handlers: [console]\n",
            );
        }
        self.ws.write("config.yaml", &y);
    }

    /// keepserver's own log (its stderr in the foreground).
    pub fn daemon_log(&self) -> String {
        self.ws.read("daemon.out")
    }

    /// keepserver's process.
    pub fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("keepserver was started")
    }

    /// SIGKILLs keepserver and starts a new one, which answers `status` when this returns.
    pub fn restart_keepserver(&mut self) {
        let mut old = self.daemon.take().expect("keepserver was started");
        old.signal(Signal::SIGKILL);
        assert!(
            old.wait_exit(DEADLINE).is_some(),
            "keepserver survived SIGKILL\n{}",
            self.report()
        );
        self.killed.push(old);
        self.daemon = Some(Daemon::start(&self.ns, &self.ws));
    }

    /// Waits until `status --json` says `role`.
    pub fn wait_role(&self, role: &str) {
        self.wait_until(&format!("keepserver role {role}"), DEADLINE, || {
            self.ws.status_json().is_ok_and(|s| s["role"] == role)
        });
    }

    // -- jobs ---------------------------------------------------------------------------------

    /// Submits raw payloads one after another to the queue and returns how each ended.
    pub fn submit_raw(&self, payloads: &[String], timeout: Duration) -> Vec<JobEnd> {
        let file = self.ws.path(&format!("{}.json", self.unique("payloads")));
        fs::write(&file, serde_json::to_string(payloads).unwrap()).expect("write payloads");
        let out = self.helper(&[
            "gear_client.py",
            "submit",
            &self.gearmand().addr(),
            QUEUE,
            &file.display().to_string(),
            "--timeout",
            &format!("{}", timeout.as_secs_f64()),
        ]);
        let ends: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "the Gearman client gave no results ({e}):\n{out}\n{}",
                self.report()
            )
        });
        ends.iter().map(JobEnd::from_json).collect()
    }

    /// Submits one request and returns the reply, asserting that the job completed with a JSON
    /// reply that echoes every field of the request.
    pub fn job(&self, request: &Value) -> Value {
        let payload = request.to_string();
        let reply = self.job_raw(&payload);
        assert_echo(request, &reply, &self.report());
        reply
    }

    /// Submits one raw payload and returns its JSON reply (the job must complete).
    pub fn job_raw(&self, payload: &str) -> Value {
        let ends = self.submit_raw(&[payload.to_string()], JOB_TIMEOUT);
        let end = ends.first().cloned().unwrap_or_else(|| JobEnd {
            outcome: "none".into(),
            data: String::new(),
            seconds: 0.0,
        });
        assert_eq!(
            end.outcome,
            "complete",
            "job {payload} should complete (WORK_COMPLETE), got {end:?}\n{}",
            self.report()
        );
        end.reply().unwrap_or_else(|| {
            panic!(
                "job {payload}: the reply is not JSON: {:?}\n{}",
                end.data,
                self.report()
            )
        })
    }

    /// Submits a request that must PASS; returns the reply.
    pub fn pass(&self, request: &Value) -> Value {
        let reply = self.job(request);
        assert_eq!(
            response(&reply),
            "PASS",
            "{request} should PASS, reply: {reply}\n{}",
            self.report()
        );
        reply
    }

    /// Submits a request that must FAIL with an `hpcs_error`; returns the error.
    pub fn fail(&self, request: &Value) -> String {
        let reply = self.job(request);
        assert_eq!(
            response(&reply),
            "FAIL",
            "{request} should FAIL, reply: {reply}\n{}",
            self.report()
        );
        let error = error_of(&reply).to_string();
        assert!(
            !error.trim().is_empty(),
            "a FAIL needs an hpcs_error: {reply}"
        );
        error
    }

    /// Starts the Gearman client on one request in the background; its results appear in the
    /// returned file (see [`Lab::background_result`]).
    pub fn submit_background(&self, request: &Value, timeout: Duration) -> PathBuf {
        self.submit_background_all(std::slice::from_ref(request), timeout)
    }

    /// Starts the Gearman client on `requests`, submitted one after another, in the
    /// background; their results appear in the returned file together once the last has ended
    /// (see [`Lab::background_results`]).
    pub fn submit_background_all(&self, requests: &[Value], timeout: Duration) -> PathBuf {
        let name = self.unique("background");
        let payloads = self.ws.path(&format!("{name}.payloads.json"));
        let out = self.ws.path(&format!("{name}.out.json"));
        let texts: Vec<String> = requests.iter().map(Value::to_string).collect();
        fs::write(&payloads, serde_json::to_string(&texts).unwrap()).expect("write payloads");
        self.spawn_kept(
            &[
                "gear_client.py",
                "submit",
                &self.gearmand().addr(),
                QUEUE,
                &payloads.display().to_string(),
                "--timeout",
                &format!("{}", timeout.as_secs_f64()),
                "--out",
                &out.display().to_string(),
            ],
            &format!("{name}.log"),
        );
        out
    }

    /// The result of a background submission, once it has ended.
    pub fn background_result(&self, out: &Path) -> Option<JobEnd> {
        self.background_results(out)?.into_iter().next()
    }

    /// The results of a background submission, once its last job has ended.
    pub fn background_results(&self, out: &Path) -> Option<Vec<JobEnd>> {
        let text = fs::read_to_string(out).ok()?;
        let ends: Vec<Value> = serde_json::from_str(&text).ok()?;
        Some(ends.iter().map(JobEnd::from_json).collect())
    }

    // -- backends and traffic -----------------------------------------------------------------

    /// Starts an HTTP backend answering `backend=NAME`; returns its port.
    pub fn backend(&self, name: &str) -> u16 {
        self.backend_on(name, 0)
    }

    /// Starts an HTTP backend on `port` (0: any); returns its port.
    pub fn backend_on(&self, name: &str, port: u16) -> u16 {
        let (port, child) = self.backend_proc(name, port);
        self.helpers.keep(child);
        port
    }

    /// Starts an HTTP backend on `port` (0: any); returns its port and its process (the
    /// namespace guard kills it in any case).
    pub fn backend_proc(&self, name: &str, port: u16) -> (u16, Child) {
        let file = self.unique(&format!("backend-{name}.port"));
        let path = self.ws.path(&file);
        let child = self.spawn_helper(
            &[
                "lab.py",
                "backend",
                name,
                &path.display().to_string(),
                "--port",
                &port.to_string(),
            ],
            &format!("{file}.log"),
        );
        let mut port = 0;
        self.wait_until(&format!("backend {name} listens"), DEADLINE, || {
            port = self.ws.read(&file).trim().parse().unwrap_or(0);
            port != 0
        });
        (port, child)
    }

    /// `count` GETs of `http://127.0.0.1:PORT/PATH`, each on a new connection: per request the
    /// body (`Ok`) or what went wrong (`Err`, "refused" for a refused connection).
    pub fn get(&self, port: u16, count: usize) -> Vec<Result<String, String>> {
        self.get_path(port, "/", count)
    }

    /// As [`Lab::get`] for a path.
    pub fn get_path(&self, port: u16, path: &str, count: usize) -> Vec<Result<String, String>> {
        let url = format!("http://127.0.0.1:{port}{path}");
        let out = self.helper(&["lab.py", "get", &url, &count.to_string()]);
        let v: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("lab.py get gave no JSON ({e}):\n{out}"));
        v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| match (r["status"].as_u64(), r["body"].as_str()) {
                (Some(200), Some(body)) => Ok(body.to_string()),
                (Some(status), body) => Err(format!("HTTP {status}: {}", body.unwrap_or(""))),
                _ => Err(r["error"].as_str().unwrap_or("?").to_string()),
            })
            .collect()
    }

    /// The backend names that answered `count` GETs; panics (with the lab report) if any
    /// request failed.
    pub fn backends_seen(&self, port: u16, count: usize) -> Vec<String> {
        self.backends_answering(port, count)
            .unwrap_or_else(|failed| {
                panic!(
                    "GET http://127.0.0.1:{port}/ failed: {failed}\n{}",
                    self.report()
                )
            })
    }

    /// The backend names, sorted, that answered `count` GETs, or what went wrong when any
    /// request failed.
    pub fn backends_answering(&self, port: u16, count: usize) -> Result<Vec<String>, String> {
        let results = self.get(port, count);
        let mut names: Vec<String> = Vec::new();
        for r in &results {
            let body = r
                .as_ref()
                .map_err(|e| format!("{e} (all results: {results:?})"))?;
            let name = body
                .split_whitespace()
                .next()
                .and_then(|w| w.strip_prefix("backend="))
                .unwrap_or(body)
                .to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// True when a connection to 127.0.0.1:PORT is refused.
    pub fn refused(&self, port: u16) -> bool {
        self.get(port, 1)
            .first()
            .is_some_and(|r| r.as_ref().err().is_some_and(|e| e == "refused"))
    }

    /// Starts the load generator on `port`; returns its output file (see [`Lab::hammer_stop`]).
    pub fn hammer_start(&self, port: u16) -> PathBuf {
        let name = self.unique("hammer");
        let out = self.ws.path(&format!("{name}.json"));
        let stop = self.ws.path(&format!("{name}.stop"));
        self.spawn_kept(
            &[
                "lab.py",
                "hammer",
                &format!("http://127.0.0.1:{port}/"),
                &stop.display().to_string(),
                &out.display().to_string(),
                "--max",
                "40",
            ],
            &format!("{name}.log"),
        );
        let started = PathBuf::from(format!("{}.started", out.display()));
        self.wait_until("the load generator got its first answer", DEADLINE, || {
            started.exists()
        });
        out
    }

    /// Stops the load generator (after 20 more requests) and returns its summary.
    pub fn hammer_stop(&self, out: &Path) -> Value {
        let stop = out.with_extension("stop");
        fs::write(&stop, "").expect("write stop file");
        let mut summary = Value::Null;
        self.wait_until("the load generator finishes", DEADLINE * 2, || {
            summary = fs::read_to_string(out)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null);
            !summary.is_null()
        });
        summary
    }

    /// Starts the fake Swift store recording into `dir` (created); returns its port.
    pub fn swift(&self, dir: &Path) -> u16 {
        fs::create_dir_all(dir).expect("create swift dir");
        self.spawn_kept(
            &["lab.py", "swift", &dir.display().to_string()],
            &format!("{}.log", self.unique("swift")),
        );
        let mut port = 0;
        self.wait_until("the fake Swift store listens", DEADLINE, || {
            port = fs::read_to_string(dir.join("port"))
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0);
            port != 0
        });
        port
    }

    // -- HAProxy ------------------------------------------------------------------------------

    /// The haproxy.cfg keepserver owns.
    pub fn haproxy_cfg(&self) -> PathBuf {
        self.haproxy_config.clone()
    }

    /// Its bytes, `None` when it does not exist.
    pub fn haproxy_cfg_bytes(&self) -> Option<Vec<u8>> {
        fs::read(self.haproxy_cfg()).ok()
    }

    /// HAProxy processes in the namespace.
    pub fn haproxy_pids(&self) -> Vec<i32> {
        let out = run(
            Command::new("ip").args(["netns", "pids", self.ns.name()]),
            HELPER_TIMEOUT,
        );
        out.stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|pid| pid_alive(*pid) && cmdline(*pid).contains("haproxy"))
            .collect()
    }

    /// The HAProxy master named by its pidfile in the runtime directory, while it is alive.
    pub fn haproxy_master(&self) -> Option<i32> {
        read_pid(&self.ws.path("run/haproxy.pid")).filter(|pid| pid_alive(*pid))
    }

    // -- waiting and reporting ----------------------------------------------------------------

    /// Polls `cond` until `deadline`; panics with `what` and the lab report.
    pub fn wait_until(&self, what: &str, deadline: Duration, cond: impl FnMut() -> bool) {
        wait_or_report(what, deadline, cond, || self.report());
    }

    /// Everything useful to understand a failure.
    pub fn report(&self) -> String {
        let mut r = self.ws.report();
        let cfg = fs::read_to_string(self.haproxy_cfg()).unwrap_or_default();
        let _ = writeln!(r, "=== haproxy.cfg ===\n{cfg}");
        let failed = fs::read_to_string(format!("{}-failed", self.haproxy_cfg().display()))
            .unwrap_or_default();
        if !failed.is_empty() {
            let _ = writeln!(r, "=== haproxy.cfg-failed ===\n{failed}");
        }
        let run_dir: Vec<String> = fs::read_dir(self.ws.path("run"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(r, "=== run/ === {run_dir:?}");
        for g in &self.gearmands {
            let log = fs::read_to_string(&g.log).unwrap_or_default();
            let _ = writeln!(r, "=== gearmand {} log ===\n{}", g.port, tail(&log, 15));
        }
        let status = self
            .gearman_status(self.gearmand().port)
            .map_or_else(|e| e, |v| v.to_string());
        let _ = writeln!(r, "=== gearmand status ===\n{status}");
        let pids = run(
            Command::new("ip").args(["netns", "pids", self.ns.name()]),
            HELPER_TIMEOUT,
        );
        let _ = writeln!(r, "=== processes in the namespace ===");
        for pid in pids.stdout.split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = writeln!(r, "{pid} {}", cmdline(pid));
            }
        }
        r
    }
}

/// Asserts that `reply` holds every top-level field of `request` unchanged.
pub fn assert_echo(request: &Value, reply: &Value, report: &str) {
    let Some(fields) = request.as_object() else {
        return;
    };
    for (k, v) in fields {
        assert_eq!(
            &reply[k], v,
            "the reply must echo field `{k}` of the request\nrequest: {request}\nreply: {reply}\n{report}"
        );
    }
}

/// An UPDATE of one HTTP load balancer on `port` to 127.0.0.1 nodes on `nodes` (ports).
pub fn update_http(port: u16, nodes: &[u16]) -> Value {
    json!({
        "hpcs_action": "UPDATE",
        "loadbalancers": [http_lb(port, nodes)],
    })
}

/// One HTTP load balancer on `port` with 127.0.0.1 nodes on `nodes`.
pub fn http_lb(port: u16, nodes: &[u16]) -> Value {
    json!({
        "name": "e2e-http",
        "protocol": "HTTP",
        "port": port.to_string(),
        "nodes": nodes.iter().map(|p| node(*p)).collect::<Vec<_>>(),
    })
}

/// A node on 127.0.0.1:`port`, weight 1.
pub fn node(port: u16) -> Value {
    json!({"address": "127.0.0.1", "port": port.to_string(), "weight": "1"})
}

/// `{"hpcs_action": ACTION}`.
pub fn action(name: &str) -> Value {
    json!({ "hpcs_action": name })
}

/// The names in `names`, sorted, as owned strings (for comparisons with [`Lab::backends_seen`]).
pub fn names(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
