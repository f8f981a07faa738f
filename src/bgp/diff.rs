//! The `vtysh` commands that turn bgpd's running configuration into the rendered one: pure
//! functions over configuration text.
//!
//! Only the difference is sent, never the whole file. Re-entering an unchanged prefix-list or
//! route-map line is not a no-op in bgpd: it counts as a policy change and makes bgpd rebuild
//! what it advertises, and FRR 8.4 then loses a withdrawal that follows within about a second
//! (seen in the end-to-end tests: the peer kept the route for good). So an announcement sends one
//! `network` line and a withdrawal one `no network` line.
//!
//! Both texts are read into [`Line`]s: each line with its context (the `router bgp`, `route-map`
//! or `address-family` blocks it is in). FRR prints IPv4 unicast settings inside
//! `address-family ipv4 unicast`; keepserver renders them directly under `router bgp`, as the
//! KINX seed and Quagga do; both read as the `router bgp` context. Lines the rendering has and
//! the running configuration lacks are added, in the rendering's order. Of the lines the running
//! configuration has and the rendering lacks, those keepserver can stop rendering are removed:
//! `network`, neighbors, `redistribute static`, and the whole `router bgp` when the AS changes.
//! `hostname` is never sent: FRR keeps one hostname for the router (zebra's), and bgpd told
//! another goes on showing it, so sending it would make every comparison differ.
//! (A route-map or prefix-list entry dropped from the rendering stays in bgpd until it restarts
//! from the file; `bgp.apply: frr-reload` removes those too.)

use std::collections::BTreeSet;

/// One configuration line in its context.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    /// The enclosing block headers, outermost first (empty at top level).
    pub context: Vec<String>,
    /// The line itself, trimmed.
    pub text: String,
}

/// Top-level lines that open a block.
const BLOCKS: [&str; 4] = ["router ", "route-map ", "line ", "interface "];

/// The lines of `text` (a rendered file or `show running-config` output), in order. Comments,
/// `exit`s and vtysh's banner lines are left out.
pub fn lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    let mut family: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('!') || is_banner(line) {
            continue;
        }
        if !raw.starts_with(' ') {
            family = None;
            block = BLOCKS
                .iter()
                .any(|b| line.starts_with(b))
                .then(|| line.to_string());
            if block.is_none() && !["exit", "end"].contains(&line) {
                out.push(Line {
                    context: Vec::new(),
                    text: line.to_string(),
                });
            }
            continue;
        }
        let Some(header) = &block else {
            continue;
        };
        match line {
            "exit-address-family" | "exit" => family = None,
            l if l.starts_with("address-family ") => family = normal_family(l),
            l => {
                let mut context = vec![header.clone()];
                context.extend(family.clone());
                out.push(Line {
                    context,
                    text: l.to_string(),
                });
            }
        }
    }
    out
}

/// `address-family` as a context: IPv4 unicast is the `router bgp` context itself; IPv6 unicast
/// is spelt one way.
fn normal_family(line: &str) -> Option<String> {
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["address-family", "ipv4"] | ["address-family", "ipv4", "unicast"] => None,
        ["address-family", "ipv6"] | ["address-family", "ipv6", "unicast"] => {
            Some("address-family ipv6 unicast".to_string())
        }
        _ => Some(line.to_string()),
    }
}

/// Lines `show running-config` prints that are not configuration.
fn is_banner(line: &str) -> bool {
    line == "Building configuration..."
        || line == "Current configuration:"
        || line.starts_with("frr version ")
        || line.starts_with("frr defaults ")
}

/// The configuration-mode commands (to follow `configure terminal`) that make `running` what
/// `desired` says; empty when bgpd already runs it.
pub fn commands(running: &str, desired: &str) -> Vec<String> {
    let running = lines(running);
    let desired = lines(desired);
    let mut steps: Vec<(Vec<String>, String)> = Vec::new();
    let old_router = router_header(&running);
    let new_router = router_header(&desired);
    let in_router = |l: &Line| old_router.is_some() && l.context.first() == old_router.as_ref();
    let replaced = old_router.is_some() && old_router != new_router;
    if let (true, Some(old)) = (replaced, &old_router) {
        steps.push((Vec::new(), format!("no {old}")));
    }
    let have: BTreeSet<&Line> = running
        .iter()
        .filter(|l| !(replaced && in_router(l)))
        .collect();
    let want: BTreeSet<&Line> = desired.iter().collect();
    for line in running.iter().filter(|l| !replaced && in_router(l)) {
        if !want.contains(line)
            && let Some(undo) = removal(line, &desired)
        {
            steps.push((line.context.clone(), undo));
        }
    }
    for line in &desired {
        // The hostname is the whole router's (FRR keeps zebra's; bgpd told another one goes on
        // showing zebra's): it is in the file for a bgpd that starts from it, never sent.
        if !have.contains(line) && !is_hostname(line) {
            steps.push((line.context.clone(), line.text.clone()));
        }
    }
    in_context(steps)
}

fn is_hostname(line: &Line) -> bool {
    line.context.is_empty() && line.text.starts_with("hostname ")
}

/// The default VRF's `router bgp AS` header, if there is one.
fn router_header(lines: &[Line]) -> Option<String> {
    lines
        .iter()
        .filter_map(|l| l.context.first())
        .find(|h| h.starts_with("router bgp ") && h.split_whitespace().count() == 3)
        .cloned()
}

/// The command removing `line` from a running `router bgp`, for the kinds of line keepserver
/// stops rendering; a neighbor goes as a whole (which takes its other lines with it).
fn removal(line: &Line, desired: &[Line]) -> Option<String> {
    let words: Vec<&str> = line.text.split_whitespace().collect();
    match words.as_slice() {
        ["network", prefix, ..] => Some(format!("no network {prefix}")),
        ["neighbor", name, "remote-as", ..] => {
            let kept = desired
                .iter()
                .any(|d| d.text.starts_with(&format!("neighbor {name} remote-as ")));
            (!kept).then(|| format!("no neighbor {name}"))
        }
        ["redistribute", "static", ..] => Some("no redistribute static".to_string()),
        _ => None,
    }
}

/// The steps as commands, entering each step's context (from the one shared with the step
/// before) and leaving it again.
fn in_context(steps: Vec<(Vec<String>, String)>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for (context, command) in steps {
        let shared = current
            .iter()
            .zip(&context)
            .take_while(|(a, b)| a == b)
            .count();
        for header in current[shared..].iter().rev() {
            out.push(leave(header).to_string());
        }
        out.extend(context[shared..].iter().cloned());
        current = context;
        out.push(command);
    }
    for header in current.iter().rev() {
        out.push(leave(header).to_string());
    }
    out
}

fn leave(header: &str) -> &'static str {
    if header.starts_with("address-family ") {
        "exit-address-family"
    } else {
        "exit"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FRR 8.4's `show running-config` of a bgpd announcing two prefixes, one per family.
    const RUNNING: &str = "Building configuration...

Current configuration:
!
frr version 8.4.4
frr defaults traditional
hostname node
log file /var/log/frr/bgpd.log
!
password pass
!
router bgp 65001
 bgp router-id 198.51.100.1
 neighbor 198.51.100.2 remote-as 65000
 neighbor 198.51.100.2 advertisement-interval 0
 neighbor 2001:db8:1::2 remote-as 65000
 neighbor 2001:db8:1::2 advertisement-interval 0
 !
 address-family ipv4 unicast
  redistribute static route-map bgp-access
  network 192.0.2.10/32
  neighbor 198.51.100.2 route-map bgp-access out
  neighbor 2001:db8:1::2 route-map bgp-access out
 exit-address-family
 !
 address-family ipv6 unicast
  network 2001:db8::10/128
  neighbor 2001:db8:1::2 activate
  neighbor 2001:db8:1::2 route-map bgp-access out
 exit-address-family
exit
!
router bgp 65001 vrf blue
 neighbor 203.0.113.1 remote-as 65002
 network 203.0.113.0/24
exit
!
ip prefix-list pl-route seq 10 permit 0.0.0.0/0 ge 31
ipv6 prefix-list pl-route seq 10 permit ::/0 ge 127
!
route-map bgp-access permit 10
 match ip address prefix-list pl-route
exit
!
route-map bgp-access permit 20
 match ipv6 address prefix-list pl-route
exit
!
end
";

    /// The same configuration as keepserver renders it, announcing both prefixes.
    const ANNOUNCED: &str = "! written by keepserver
hostname node
password pass
log file /var/log/frr/bgpd.log
!
ip prefix-list pl-route seq 10 permit 0.0.0.0/0 ge 31
ipv6 prefix-list pl-route seq 10 permit ::/0 ge 127
!
route-map bgp-access permit 10
 match ip address prefix-list pl-route
!
route-map bgp-access permit 20
 match ipv6 address prefix-list pl-route
!
router bgp 65001
 bgp router-id 198.51.100.1
 redistribute static route-map bgp-access
 neighbor 198.51.100.2 remote-as 65000
 neighbor 198.51.100.2 advertisement-interval 0
 neighbor 198.51.100.2 route-map bgp-access out
 neighbor 2001:db8:1::2 remote-as 65000
 neighbor 2001:db8:1::2 advertisement-interval 0
 neighbor 2001:db8:1::2 route-map bgp-access out
 network 192.0.2.10/32
 address-family ipv6 unicast
  network 2001:db8::10/128
  neighbor 2001:db8:1::2 activate
  neighbor 2001:db8:1::2 route-map bgp-access out
 exit-address-family
!
line vty
!
";

    fn withdrawn() -> String {
        ANNOUNCED
            .replace(" network 192.0.2.10/32\n", "")
            .replace("  network 2001:db8::10/128\n", "")
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn frr_and_rendered_forms_read_alike() {
        let running: BTreeSet<Line> = lines(RUNNING)
            .into_iter()
            .filter(|l| !l.context.iter().any(|c| c.contains("vrf")))
            .collect();
        let rendered: BTreeSet<Line> = lines(ANNOUNCED).into_iter().collect();
        assert_eq!(rendered.difference(&running).count(), 0);
        assert_eq!(running.difference(&rendered).count(), 0);
        assert!(rendered.contains(&Line {
            context: vec![
                "router bgp 65001".to_string(),
                "address-family ipv6 unicast".to_string()
            ],
            text: "network 2001:db8::10/128".to_string()
        }));
    }

    #[test]
    fn nothing_is_sent_when_bgpd_runs_the_rendering() {
        assert_eq!(commands(RUNNING, ANNOUNCED), Vec::<String>::new());
    }

    #[test]
    fn withdrawing_sends_only_no_network() {
        assert_eq!(
            commands(RUNNING, &withdrawn()),
            strings(&[
                "router bgp 65001",
                "no network 192.0.2.10/32",
                "address-family ipv6 unicast",
                "no network 2001:db8::10/128",
                "exit-address-family",
                "exit",
            ])
        );
    }

    #[test]
    fn announcing_sends_only_network() {
        let running = RUNNING
            .replace("  network 192.0.2.10/32\n", "")
            .replace("  network 2001:db8::10/128\n", "");
        assert_eq!(
            commands(&running, ANNOUNCED),
            strings(&[
                "router bgp 65001",
                "network 192.0.2.10/32",
                "address-family ipv6 unicast",
                "network 2001:db8::10/128",
                "exit-address-family",
                "exit",
            ])
        );
    }

    #[test]
    fn an_empty_bgpd_gets_everything_in_file_order() {
        let sent = commands("Building configuration...\n!\nend\n", ANNOUNCED);
        let policy = sent
            .iter()
            .position(|c| c.starts_with("route-map"))
            .unwrap();
        let router = sent.iter().position(|c| c == "router bgp 65001").unwrap();
        assert!(policy < router, "{sent:?}");
        assert!(
            !sent.iter().any(|c| c.starts_with("hostname")),
            "the hostname is not bgpd's to take: {sent:?}"
        );
        assert!(sent.contains(&"neighbor 2001:db8:1::2 activate".to_string()));
        assert!(!sent.iter().any(|c| c.starts_with("no ")), "{sent:?}");
    }

    #[test]
    fn the_hostname_is_never_sent() {
        for running in [
            RUNNING.replace("hostname node", "hostname zebras-name"),
            RUNNING.replace("hostname node\n", ""),
        ] {
            assert_eq!(commands(&running, ANNOUNCED), Vec::<String>::new());
        }
    }

    #[test]
    fn dropped_neighbors_and_redistribution_are_removed() {
        let desired = "router bgp 65001\n bgp router-id 198.51.100.1\n \
                       neighbor 198.51.100.2 remote-as 65000\n \
                       neighbor 198.51.100.2 advertisement-interval 0\n \
                       neighbor 198.51.100.2 route-map bgp-access out\n!\n";
        let sent = commands(RUNNING, desired);
        for expected in [
            "no neighbor 2001:db8:1::2",
            "no redistribute static",
            "no network 192.0.2.10/32",
            "no network 2001:db8::10/128",
        ] {
            assert!(sent.contains(&expected.to_string()), "{expected}: {sent:?}");
        }
        assert!(!sent.iter().any(|c| c.contains("198.51.100.2")), "{sent:?}");
    }

    #[test]
    fn a_new_as_replaces_the_whole_router() {
        let desired = withdrawn().replace("router bgp 65001", "router bgp 65009");
        let sent = commands(RUNNING, &desired);
        assert_eq!(sent[0], "no router bgp 65001");
        assert_eq!(sent[1], "router bgp 65009");
        assert!(sent.contains(&"neighbor 198.51.100.2 remote-as 65000".to_string()));
        assert!(!sent.iter().any(|c| c.starts_with("route-map")), "{sent:?}");
    }
}
