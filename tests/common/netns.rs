//! A door on its own network: a namespace with two veth pairs to the test's (root)
//! namespace. The *site link* carries MQTT to the broker and is the one the bad-link tests
//! break; the *harness link* carries the test's HTTP calls, which must keep working while
//! the site link is down (as the kiosk's own screen does).
//!
//! This machine's kernel has no `sch_netem` (nor any qdisc module to load), so faults are
//! made with what it does have: nftables rules in the door's namespace (`numgen random`
//! for loss, `drop` for a half-open link), the site interface set down for a cut, and a
//! delaying TCP relay (`common::relay`) for latency.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Why a namespace could not be made (not root, no `ip`, a kernel without netns).
#[derive(Debug)]
pub struct Unavailable(pub String);

/// One door's namespace; deleted (with its veths) on drop.
pub struct Netns {
    pub name: String,
    index: u8,
    site_if: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Namespace number `index` (1..=250) of this test process.
    pub fn new(index: u8) -> Result<Netns, Unavailable> {
        let pid = std::process::id();
        let name = format!("door{pid}-{index}");
        run(&["ip", "netns", "add", &name]).map_err(Unavailable)?;
        let ns = Netns {
            site_if: format!("s{pid}n{index}"),
            name,
            index,
        };
        ns.wire(10, 213).map_err(Unavailable)?;
        ns.wire(10, 214).map_err(Unavailable)?;
        run(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]).map_err(Unavailable)?;
        Ok(ns)
    }

    /// A veth pair for 10.`b`.index.0/30: .1 at the root side, .2 in the namespace.
    fn wire(&self, a: u8, b: u8) -> Result<(), String> {
        let pid = std::process::id();
        let kind = if b == 213 { 's' } else { 'h' };
        let (root_if, ns_if) = (
            format!("{kind}{pid}r{}", self.index),
            format!("{kind}{pid}n{}", self.index),
        );
        run(&[
            "ip", "link", "add", &root_if, "type", "veth", "peer", "name", &ns_if, "netns",
            &self.name,
        ])?;
        let net = format!("{a}.{b}.{}", self.index);
        run(&["ip", "addr", "add", &format!("{net}.1/30"), "dev", &root_if])?;
        run(&["ip", "link", "set", &root_if, "up"])?;
        let n = &self.name;
        run(&[
            "ip",
            "-n",
            n,
            "addr",
            "add",
            &format!("{net}.2/30"),
            "dev",
            &ns_if,
        ])?;
        run(&["ip", "-n", n, "link", "set", &ns_if, "up"])
    }

    /// The broker's address as the door sees it (the root side of the site link).
    pub fn broker_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.index, 1)
    }

    /// The door's address on the harness link, where the test calls its API.
    pub fn door_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.index, 2)
    }

    /// Loads nftables `rules` into the namespace (replacing this module's table).
    fn nft(&self, rules: &str) {
        let _ = self.nft_raw("delete table inet badlink\n");
        self.nft_raw(rules)
            .unwrap_or_else(|e| panic!("nft in {}: {e}", self.name));
    }

    fn nft_raw(&self, script: &str) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ip netns exec nft: {e}"))?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(script.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Drops `percent` % of the packets to and from the broker's `port`, each way.
    pub fn lose(&self, port: u16, percent: u8) {
        let verdict = format!("numgen random mod 100 < {percent} drop");
        self.filter(port, &verdict);
    }

    /// Drops every packet to and from the broker's `port`, silently: no RST, no ICMP,
    /// both ends keep their half of the connection.
    pub fn black_hole(&self, port: u16) {
        self.filter(port, "drop");
    }

    fn filter(&self, port: u16, verdict: &str) {
        self.nft(&format!(
            "table inet badlink {{\n\
             chain output {{ type filter hook output priority 0; tcp dport {port} {verdict}; }}\n\
             chain input {{ type filter hook input priority 0; tcp sport {port} {verdict}; }}\n\
             }}\n"
        ));
    }

    /// Removes the rules: a healthy link again.
    pub fn heal(&self) {
        self.nft_raw("delete table inet badlink\n")
            .unwrap_or_else(|e| panic!("nft in {}: {e}", self.name));
    }

    /// Sets the door's site interface down (a cut cable: sends fail at once) or up.
    pub fn site_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        run(&["ip", "-n", &self.name, "link", "set", &self.site_if, state])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Fails with how to install nftables when `nft` is missing.
    pub fn require_nft() {
        assert!(
            Command::new("nft").arg("--version").output().is_ok(),
            "nft not found: install it with `sudo apt-get install nftables` (scripts/setup does)"
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys its veths and with them their root-side peers.
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
