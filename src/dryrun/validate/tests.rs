//! Judging the checkers' answers, their command lines, and running them in the scratch
//! directory (with stand-in scripts; the real tools are run by tests/e2e_check.rs).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::*;

fn artefact(kept: bool, checks: Vec<Check>) -> Artefact {
    Artefact {
        name: "haproxy.cfg",
        live: PathBuf::from("/srv/ks/haproxy.cfg"),
        origin: "rendered from the admin API store /srv/ks/api-store.json".into(),
        kept,
        text: "global\n".into(),
        checks,
    }
}

fn haproxy() -> Check {
    Check::Haproxy {
        binary: PathBuf::from("haproxy"),
    }
}

fn ran(success: bool, stderr: &str) -> Result<Ran, NotRun> {
    Ok(Ran {
        success,
        status: if success {
            "exit status: 0"
        } else {
            "exit status: 1"
        }
        .into(),
        stdout: String::new(),
        stderr: stderr.into(),
    })
}

const COPY: &str = "/tmp/keepserver-check-x/0/haproxy.cfg";

#[test]
fn a_refusal_quotes_the_checker_with_the_file_it_is_about() {
    let a = artefact(false, vec![haproxy()]);
    let out = "[NOTICE]   (1) : haproxy version is 2.6.12\n\
               [ALERT]    (1) : config : parsing [/tmp/keepserver-check-x/0/haproxy.cfg:13] : \
               'bind 192.0.2.77:443' in section 'frontend' : unable to load certificate from \
               file '/srv/ks/certificates/c1.pem'.\n\
               [ALERT]    (1) : config : Fatal errors found in configuration.\n";
    let [f] = &judge(&haproxy(), &a, Path::new(COPY), ran(false, out))[..] else {
        panic!()
    };
    assert_eq!(f.severity, Severity::Failed);
    assert_eq!(
        f.subject,
        "/srv/ks/haproxy.cfg (rendered from the admin API store /srv/ks/api-store.json)"
    );
    assert!(f.message.starts_with("`haproxy -c` refused it"), "{f}");
    assert!(
        f.message
            .contains("parsing [/srv/ks/haproxy.cfg (rendered):13]"),
        "{f}"
    );
    assert!(f.message.contains("unable to load certificate"), "{f}");
    assert!(!f.message.contains("NOTICE"), "{f}");
    assert!(!f.message.contains("keepserver-check"), "{f}");
}

#[test]
fn a_kept_file_is_named_by_its_own_path() {
    let a = artefact(true, vec![haproxy()]);
    let out = format!("[ALERT] (1) : parsing [{COPY}:2] : unknown keyword 'bogus'\n");
    let f = &judge(&haproxy(), &a, Path::new(COPY), ran(false, &out))[0];
    assert!(f.message.contains("[/srv/ks/haproxy.cfg:2]"), "{f}");
}

#[test]
fn a_pass_is_a_note_and_warnings_are_said() {
    let a = artefact(false, vec![haproxy()]);
    let ok = judge(&haproxy(), &a, Path::new(COPY), ran(true, ""));
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].severity, Severity::Note);
    assert_eq!(ok[0].message, "valid (`haproxy -c`)");
    let warned = judge(
        &haproxy(),
        &a,
        Path::new(COPY),
        ran(
            true,
            "[WARNING]  (1) : config : missing timeouts for backend 'b'.\n",
        ),
    );
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert_eq!(warned[1].severity, Severity::Warning);
    assert!(warned[1].message.contains("missing timeouts"), "{warned:?}");
}

#[test]
fn a_missing_tool_is_a_skipped_check_and_a_broken_one_a_failure() {
    let a = artefact(false, vec![haproxy()]);
    let [skipped] = &judge(&haproxy(), &a, Path::new(COPY), Err(NotRun::Missing))[..] else {
        panic!()
    };
    assert_eq!(skipped.severity, Severity::Warning);
    assert!(
        skipped.message.contains("`haproxy -c` skipped"),
        "{skipped}"
    );
    assert!(skipped.message.contains("not installed"), "{skipped}");
    for why in [
        NotRun::Timeout(Duration::from_secs(30)),
        NotRun::Broken("cannot be started: permission denied".into()),
    ] {
        let f = &judge(&haproxy(), &a, Path::new(COPY), Err(why))[0];
        assert_eq!(f.severity, Severity::Failed, "{f}");
    }
}

#[test]
fn vtysh_and_frr_reload_refusals_keep_frr_s_line() {
    let vtysh = Check::Vtysh {
        binary: PathBuf::from("vtysh"),
    };
    let mut a = artefact(false, vec![vtysh.clone()]);
    a.name = "bgpd.conf";
    let copy = Path::new("/tmp/keepserver-check-x/1/bgpd.conf");
    let out = "line 11: % Unknown command[25]:  neighbor 198.51.100.2 remote-az 65000\n";
    let f = &judge(&vtysh, &a, copy, ran(false, out))[0];
    assert!(
        f.message
            .contains("line 11: % Unknown command[25]:  neighbor 198.51.100.2 remote-az 65000"),
        "{f}"
    );
    let reload = Check::FrrReload {
        script: PathBuf::from("/usr/lib/frr/frr-reload.py"),
        vtysh: PathBuf::from("/usr/bin/vtysh"),
        pathspace: None,
    };
    let out = "2026-12-07 01:21:24,477  INFO: Loading Config object from file x\n\
               2026-12-07 01:21:24,521 \u{1b}[91m  ERROR\u{1b}[0m: vtysh failed to process new \
               configuration: vtysh (mark file) exited with status 2:\n\
               b'line 11: % Unknown command:  neighbor 198.51.100.2 remote-az 65000\\n\\n'\n";
    let f = &judge(&reload, &a, copy, ran(false, out))[0];
    assert!(!f.message.contains("INFO"), "{f}");
    assert!(!f.message.contains('\u{1b}'), "{f}");
    assert!(f.message.contains("ERROR: vtysh failed"), "{f}");
    assert!(f.message.contains("remote-az"), "{f}");
}

#[test]
fn command_lines_are_the_announcer_s_and_frr_reload_needs_no_daemon() {
    let file = Path::new("/tmp/s/0/bgpd.conf");
    let scratch = Path::new("/tmp/s/0");
    let words = |c: &Check| {
        c.args(file, scratch)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(words(&haproxy()), "-c -f /tmp/s/0/bgpd.conf");
    assert_eq!(
        words(&Check::Vtysh {
            binary: "vtysh".into()
        }),
        "--dryrun -f /tmp/s/0/bgpd.conf"
    );
    assert_eq!(
        words(&Check::FrrReload {
            script: "/usr/lib/frr/frr-reload.py".into(),
            vtysh: "/usr/bin/vtysh".into(),
            pathspace: Some("node".into()),
        }),
        "--test --daemon bgpd --stdout --input /tmp/s/0/running-config-empty.conf \
         --rundir /tmp/s/0 --pathspace node --bindir /usr/bin /tmp/s/0/bgpd.conf"
    );
}

#[tokio::test]
async fn each_file_is_checked_in_a_scratch_directory_that_goes_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = dir.path().join("seen");
    let tool = dir.path().join("checker");
    // Records the file it was given and its content, and refuses a file saying `bad`.
    let script = format!(
        "#!/bin/sh\nfor f; do :; done\necho \"$f $(cat \"$f\")\" >> {}\n\
         if grep -q bad \"$f\"; then echo \"[ALERT] (1) : parsing [$f:1] : bad\" >&2; exit 1; fi\n",
        seen.display()
    );
    fs::write(&tool, script).expect("write");
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).expect("chmod");
    let check = Check::Haproxy {
        binary: tool.clone(),
    };
    let good = artefact(false, vec![check.clone()]);
    let mut bad = artefact(true, vec![check, haproxy_nowhere()]);
    bad.text = "bad\n".into();
    let findings = validate(&[good, bad]).await;
    let severities: Vec<Severity> = findings.iter().map(|f| f.severity).collect();
    assert_eq!(
        severities,
        [Severity::Note, Severity::Failed, Severity::Warning],
        "{findings:?}"
    );
    assert!(
        findings[1]
            .message
            .contains("parsing [/srv/ks/haproxy.cfg:1] : bad"),
        "{findings:?}"
    );
    let seen = fs::read_to_string(&seen).expect("seen");
    let files: Vec<&str> = seen.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(files.len(), 2, "{seen}");
    for file in files {
        assert!(file.ends_with("/haproxy.cfg"), "{file}");
        assert!(!Path::new(file).exists(), "{file} is left behind");
    }
}

fn haproxy_nowhere() -> Check {
    Check::Haproxy {
        binary: PathBuf::from("/nonexistent/haproxy"),
    }
}
