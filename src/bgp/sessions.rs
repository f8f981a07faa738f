//! bgpd's BGP sessions as FRR reports them, for `status`: `vtysh -d bgpd -c 'show bgp summary
//! json'` run through [`crate::tool`] with a short time limit ([`QUERY_TIMEOUT`]), and the pure
//! parser of its answer ([`parse`]). A peer active in several address families is one session:
//! its prefix counts are summed over them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Bgp;
use crate::tool::{self, ToolError};

/// How long the query may take: `status` waits for it, the runtime loop does not.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// One BGP session, as bgpd reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSession {
    /// The neighbor's address.
    pub address: String,
    /// Its AS, when bgpd gave it.
    pub remote_as: Option<u32>,
    /// FRR's word for the session's state: `Established`, `Active`, `Connect`, `Idle`, ...
    pub state: String,
    /// Milliseconds since the session was established, while it is.
    pub up_ms: Option<u64>,
    /// Prefixes sent to the peer, over every address family.
    pub prefixes_sent: u64,
    /// Prefixes received from the peer, over every address family.
    pub prefixes_received: u64,
}

/// One address family of `show bgp summary json`; everything else in it is ignored.
#[derive(Debug, Deserialize)]
struct Family {
    #[serde(default)]
    peers: BTreeMap<String, Peer>,
}

/// One peer of a family.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Peer {
    remote_as: Option<u32>,
    state: String,
    peer_uptime_msec: Option<u64>,
    #[serde(default)]
    pfx_snt: u64,
    #[serde(default)]
    pfx_rcd: u64,
}

/// The sessions in FRR's `show bgp summary json` answer `json`, by address. An empty object
/// (bgpd has no BGP instance or no neighbor) is no session.
pub fn parse(json: &str) -> Result<Vec<PeerSession>, String> {
    let families: BTreeMap<String, Family> = serde_json::from_str(json).map_err(|e| {
        let first = json.lines().next().unwrap_or("").trim();
        format!("bgpd's answer is not its summary ({e}): {first:?}")
    })?;
    let mut sessions: BTreeMap<String, PeerSession> = BTreeMap::new();
    for peer in families.into_values().flat_map(|f| f.peers) {
        let (address, p) = peer;
        let session = sessions
            .entry(address.clone())
            .or_insert_with(|| PeerSession {
                address,
                remote_as: p.remote_as,
                state: p.state.clone(),
                up_ms: (p.state == "Established")
                    .then_some(p.peer_uptime_msec)
                    .flatten(),
                prefixes_sent: 0,
                prefixes_received: 0,
            });
        session.prefixes_sent += p.pfx_snt;
        session.prefixes_received += p.pfx_rcd;
    }
    Ok(sessions.into_values().collect())
}

/// Asks the bgpd that `bgp` drives for its sessions; the error says why they are not known.
pub async fn query(bgp: &Bgp) -> Result<Vec<PeerSession>, String> {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(ps) = &bgp.pathspace {
        args.extend([OsString::from("-N"), OsString::from(ps.to_string())]);
    }
    args.extend(["-d", "bgpd", "-c", "show bgp summary json"].map(OsString::from));
    let output = tool::output(&bgp.vtysh, &args, QUERY_TIMEOUT)
        .await
        .map_err(|e| match e {
            ToolError::Spawn(e) => format!("cannot run {}: {e}", bgp.vtysh.display()),
            ToolError::Timeout => format!(
                "vtysh did not answer within {}s",
                QUERY_TIMEOUT.as_secs_f64()
            ),
            ToolError::Read(e) => format!("cannot read vtysh's answer: {e}"),
        })?;
    if !output.status.success() {
        let mut said = one_line(&output.stderr);
        if said.is_empty() {
            said = one_line(&output.stdout);
        }
        return Err(format!("vtysh failed ({}): {said}", output.status));
    }
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// What a tool printed, on one line: its lines trimmed and joined.
fn one_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FRR 8.4's answer on the e2e BGP lab's node, one eBGP peer established, one prefix sent.
    const ESTABLISHED: &str = r#"{
"ipv4Unicast":{
  "routerId":"198.51.100.1",
  "as":65001,
  "vrfId":0,
  "vrfName":"default",
  "tableVersion":1,
  "ribCount":1,
  "ribMemory":192,
  "peerCount":1,
  "peerMemory":741464,
  "peers":{
    "198.51.100.2":{
      "hostname":"router",
      "remoteAs":65000,
      "localAs":65001,
      "version":4,
      "msgRcvd":4,
      "msgSent":4,
      "tableVersion":0,
      "outq":0,
      "inq":0,
      "peerUptime":"00:00:01",
      "peerUptimeMsec":1000,
      "peerUptimeEstablishedEpoch":1796606565,
      "pfxRcd":0,
      "pfxSnt":1,
      "state":"Established",
      "peerState":"Policy",
      "connectionsEstablished":1,
      "connectionsDropped":0,
      "idType":"ipv4"
    }
  },
  "failedPeers":0,
  "displayedPeers":1,
  "totalPeers":1,
  "dynamicPeers":0,
  "bestPath":{
    "multiPathRelax":"false"
  }
}
}
"#;

    #[test]
    fn an_established_peer_is_read_from_frrs_own_answer() {
        assert_eq!(
            parse(ESTABLISHED),
            Ok(vec![PeerSession {
                address: "198.51.100.2".into(),
                remote_as: Some(65000),
                state: "Established".into(),
                up_ms: Some(1000),
                prefixes_sent: 1,
                prefixes_received: 0,
            }])
        );
    }

    #[test]
    fn a_peer_in_two_families_is_one_session_and_a_down_one_has_no_uptime() {
        let json = r#"{
            "ipv4Unicast": {"peers": {
                "198.51.100.2": {"remoteAs": 65000, "state": "Established",
                                 "peerUptimeMsec": 5000, "pfxSnt": 2, "pfxRcd": 1},
                "198.51.100.3": {"remoteAs": 65000, "state": "Active",
                                 "peerUptime": "never", "peerUptimeMsec": 0}}},
            "ipv6Unicast": {"peers": {
                "198.51.100.2": {"remoteAs": 65000, "state": "Established",
                                 "peerUptimeMsec": 5000, "pfxSnt": 1, "pfxRcd": 3}}}
        }"#;
        let sessions = parse(json).expect("parses");
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        assert_eq!(
            (sessions[0].prefixes_sent, sessions[0].prefixes_received),
            (3, 4)
        );
        assert_eq!(sessions[1].state, "Active");
        assert_eq!(sessions[1].up_ms, None);
    }

    #[test]
    fn no_instance_is_no_session_and_text_is_an_error_that_quotes_it() {
        assert_eq!(parse("{}\n"), Ok(Vec::new()));
        let error = parse("% BGP instance not found\n").expect_err("not JSON");
        assert!(error.contains("\"% BGP instance not found\""), "{error}");
        assert_eq!(
            one_line(b"% Can't open vtysh.conf\n\nExiting: failed to connect to any daemons.\n"),
            "% Can't open vtysh.conf Exiting: failed to connect to any daemons."
        );
    }
}
