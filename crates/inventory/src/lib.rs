//! The site's inventory: which addresses are which hosts and networks, and the roles the guide's
//! sender and listener columns give them (IM and Presence publisher, CUCM, directory, XMPP
//! clients, ...).
//!
//! With an inventory, flows get names instead of bare addresses, and each documented flow can
//! be checked against the roles of the rows that document it ([`Inventory::roles_agree`]):
//! a client network opening 5269, or a host that is not IM and Presence opening 389 to the
//! directory, is then a `role-mismatch`. Without one, nothing changes.
//!
//! ```
//! use flowdoc_inventory::{Inventory, Role};
//! let inv = Inventory::from_toml_str(r#"
//! [[host]]
//! name = "imp-pub"
//! address = "10.0.0.10"
//! roles = ["imp-publisher"]
//!
//! [[network]]
//! name = "clients"
//! cidr = "10.20.0.0/16"
//! roles = ["xmpp-client", "browser"]
//! "#, "site.toml").expect("valid");
//! let who = inv.lookup("10.20.3.4".parse().expect("ip")).expect("known");
//! assert_eq!(who.name, "clients");
//! assert!(who.roles.contains(&Role::XmppClient));
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use flowdoc_catalogue::Row;
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

/// A role from the guide's sender and listener columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    ImpPublisher,
    ImpSubscriber,
    Cucm,
    SipGateway,
    Directory,
    DnsServer,
    NtpServer,
    SnmpManager,
    TrapMonitor,
    Exchange,
    Rtmt,
    ExternalDatabase,
    XmppClient,
    Browser,
    ThirdPartyClient,
    FederatedPeer,
    Endpoint,
}

impl Role {
    pub const ALL: [Role; 17] = [
        Role::ImpPublisher,
        Role::ImpSubscriber,
        Role::Cucm,
        Role::SipGateway,
        Role::Directory,
        Role::DnsServer,
        Role::NtpServer,
        Role::SnmpManager,
        Role::TrapMonitor,
        Role::Exchange,
        Role::Rtmt,
        Role::ExternalDatabase,
        Role::XmppClient,
        Role::Browser,
        Role::ThirdPartyClient,
        Role::FederatedPeer,
        Role::Endpoint,
    ];

    /// The name used in inventory files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ImpPublisher => "imp-publisher",
            Role::ImpSubscriber => "imp-subscriber",
            Role::Cucm => "cucm",
            Role::SipGateway => "sip-gateway",
            Role::Directory => "directory",
            Role::DnsServer => "dns-server",
            Role::NtpServer => "ntp-server",
            Role::SnmpManager => "snmp-manager",
            Role::TrapMonitor => "trap-monitor",
            Role::Exchange => "exchange",
            Role::Rtmt => "rtmt",
            Role::ExternalDatabase => "external-database",
            Role::XmppClient => "xmpp-client",
            Role::Browser => "browser",
            Role::ThirdPartyClient => "third-party-client",
            Role::FederatedPeer => "federated-peer",
            Role::Endpoint => "endpoint",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

const IMP: &[Role] = &[Role::ImpPublisher, Role::ImpSubscriber];

/// The roles that may stand in one of a row's sender or listener cells, read from the cell's
/// text; `None` when the text names no role flowdoc knows (a site's own row): not checked.
pub fn cell_roles(text: &str) -> Option<Vec<Role>> {
    let t = text.trim();
    let roles: Vec<Role> = match t {
        "IM and Presence publisher" => vec![Role::ImpPublisher],
        "IM and Presence subscriber" => vec![Role::ImpSubscriber],
        // Services of the IM and Presence nodes, e.g. "IM and Presence (XCP router)".
        _ if t == "IM and Presence" || t.starts_with("IM and Presence (") => IMP.to_vec(),
        "Certificate Manager" => IMP.to_vec(),
        "endpoint or IM and Presence" => [IMP, &[Role::Endpoint]].concat(),
        "Cisco Unified Communications Manager" => vec![Role::Cucm],
        "SIP gateway" | "gateway" => vec![Role::SipGateway],
        "external corporate directory" => vec![Role::Directory],
        "DNS server" => vec![Role::DnsServer],
        "NTP server" => vec![Role::NtpServer],
        "SNMP server" => vec![Role::SnmpManager],
        "SNMP trap monitor" => vec![Role::TrapMonitor],
        "Microsoft Exchange" => vec![Role::Exchange],
        "RTMT" => vec![Role::Rtmt],
        "PostgreSQL database" | "Oracle database" | "MSSQL database" => {
            vec![Role::ExternalDatabase]
        }
        "XMPP client" => vec![Role::XmppClient],
        "browser" => vec![Role::Browser],
        "third-party client" | "third-party BOSH client" => vec![Role::ThirdPartyClient],
        "endpoint" => vec![Role::Endpoint],
        _ => return None,
    };
    Some(roles)
}

/// The roles each side of a row admits: (sender, listener). XCP server-to-server also admits
/// federated peers, which the guide's IM and Presence-only table leaves out.
pub fn row_roles(row: &Row) -> (Option<Vec<Role>>, Option<Vec<Role>>) {
    let s2s = row.label.contains("server-to-server");
    let with_peers = |v: Option<Vec<Role>>| {
        v.map(|mut v| {
            if s2s && v.iter().any(|r| IMP.contains(r)) {
                v.push(Role::FederatedPeer);
            }
            v
        })
    };
    (
        with_peers(cell_roles(&row.from)),
        with_peers(cell_roles(&row.to)),
    )
}

/// What the inventory says about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who<'a> {
    pub name: &'a str,
    pub roles: &'a [Role],
    /// A network's entry (the address is one of many), not a host's.
    pub network: bool,
    /// The host's addresses, or the network's one CIDR.
    pub nets: Nets<'a>,
}

/// The addresses an inventory entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nets<'a> {
    Host(&'a [IpAddr]),
    Network(IpNet),
}

impl Who<'_> {
    /// Its addresses as networks (a host's as /32 or /128): what a firewall rule matches.
    pub fn cidrs(&self) -> Vec<IpNet> {
        match self.nets {
            Nets::Host(a) => a.iter().map(|&a| IpNet::from(a)).collect(),
            Nets::Network(n) => vec![n],
        }
    }
}

/// A named host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    pub roles: Vec<Role>,
}

/// A named network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub cidr: IpNet,
    pub roles: Vec<Role>,
}

/// A loaded, validated inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The file it came from.
    pub source: String,
    /// The site's own name for it, if given.
    pub name: Option<String>,
    pub hosts: Vec<Host>,
    /// Most specific first.
    pub networks: Vec<Network>,
    by_address: HashMap<IpAddr, usize>,
}

/// An inventory that cannot be used, with the place that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    name: Option<String>,
    #[serde(default, rename = "host")]
    hosts: Vec<Spanned<RawHost>>,
    #[serde(default, rename = "network")]
    networks: Vec<Spanned<RawNetwork>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    address: Option<Spanned<String>>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    roles: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    name: Spanned<String>,
    cidr: Spanned<String>,
    roles: Spanned<Vec<Spanned<String>>>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> InventoryError {
        let (line, column) = flowdoc_catalogue::line_column(self.text, span.start);
        InventoryError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    fn roles(&self, raw: &Spanned<Vec<Spanned<String>>>) -> Result<Vec<Role>, InventoryError> {
        if raw.get_ref().is_empty() {
            return Err(self.err(raw.span(), "roles is empty: give at least one role"));
        }
        let mut out = Vec::new();
        for r in raw.get_ref() {
            let role = Role::parse(r.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                self.err(
                    r.span(),
                    format!(
                        "unknown role {:?}; roles are: {}",
                        r.get_ref(),
                        known.join(", ")
                    ),
                )
            })?;
            if !out.contains(&role) {
                out.push(role);
            }
        }
        Ok(out)
    }

    fn name(
        &self,
        raw: &Spanned<String>,
        seen: &mut HashMap<String, ()>,
    ) -> Result<String, InventoryError> {
        let name = raw.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(self.err(raw.span(), "name is empty"));
        }
        if seen.insert(name.clone(), ()).is_some() {
            return Err(self.err(raw.span(), format!("name {name:?} is used twice")));
        }
        Ok(name)
    }
}

impl Inventory {
    /// Reads and validates an inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Io {
            file: file.clone(),
            source,
        })?;
        Inventory::from_toml_str(&text, &file)
    }

    /// Parses and validates inventory text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Inventory, InventoryError> {
        let cx = Ctx { file, text };
        let raw: RawInventory = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            cx.err(span, e.message().trim().to_string())
        })?;
        let mut names = HashMap::new();
        let mut inv = Inventory {
            source: file.to_string(),
            name: raw.name,
            ..Inventory::default()
        };
        for h in &raw.hosts {
            let span = h.span();
            let h = h.get_ref();
            let name = cx.name(&h.name, &mut names)?;
            let mut addresses = Vec::new();
            for a in h.address.iter().chain(&h.addresses) {
                let ip: IpAddr = a.get_ref().trim().parse().map_err(|_| {
                    cx.err(
                        a.span(),
                        format!("{:?} is not an IPv4 or IPv6 address", a.get_ref()),
                    )
                })?;
                if let Some(&other) = inv.by_address.get(&ip) {
                    return Err(cx.err(
                        a.span(),
                        format!("address {ip} is already host {:?}", inv.hosts[other].name),
                    ));
                }
                inv.by_address.insert(ip, inv.hosts.len());
                addresses.push(ip);
            }
            if addresses.is_empty() {
                return Err(cx.err(span, format!("host {name:?} has no address or addresses")));
            }
            let roles = cx.roles(&h.roles)?;
            inv.hosts.push(Host {
                name,
                addresses,
                roles,
            });
        }
        for n in &raw.networks {
            let n = n.get_ref();
            let name = cx.name(&n.name, &mut names)?;
            let cidr: IpNet = n.cidr.get_ref().trim().parse().map_err(|_| {
                cx.err(
                    n.cidr.span(),
                    format!(
                        "{:?} is not a network such as 10.20.0.0/16",
                        n.cidr.get_ref()
                    ),
                )
            })?;
            if cidr.trunc() != cidr {
                return Err(cx.err(
                    n.cidr.span(),
                    format!("{cidr} has host bits set; the network is {}", cidr.trunc()),
                ));
            }
            if let Some(other) = inv.networks.iter().find(|o| o.cidr == cidr) {
                return Err(cx.err(
                    n.cidr.span(),
                    format!("network {cidr} is already {:?}", other.name),
                ));
            }
            let roles = cx.roles(&n.roles)?;
            inv.networks.push(Network { name, cidr, roles });
        }
        // Most specific first: the longest prefix answers.
        inv.networks
            .sort_by_key(|n| std::cmp::Reverse(n.cidr.prefix_len()));
        Ok(inv)
    }

    /// The host with this address, else the most specific network holding it.
    pub fn lookup(&self, ip: IpAddr) -> Option<Who<'_>> {
        if let Some(&i) = self.by_address.get(&ip) {
            let h = &self.hosts[i];
            return Some(Who {
                name: &h.name,
                roles: &h.roles,
                network: false,
                nets: Nets::Host(&h.addresses),
            });
        }
        self.networks
            .iter()
            .find(|n| n.cidr.contains(&ip))
            .map(|n| Who {
                name: &n.name,
                roles: &n.roles,
                network: true,
                nets: Nets::Network(n.cidr),
            })
    }

    /// Whether the initiator and responder hold roles the row gives its sender and listener
    /// (either way round when the guide draws the row both ways). A side the inventory does not
    /// know, or a cell that names no known role, is not held against the flow.
    pub fn roles_agree(&self, row: &Row, initiator: IpAddr, responder: IpAddr) -> bool {
        let (from, to) = row_roles(row);
        let (i, r) = (self.lookup(initiator), self.lookup(responder));
        let holds = |who: Option<Who<'_>>, cell: &Option<Vec<Role>>| match (who, cell) {
            (Some(w), Some(allowed)) => w.roles.iter().any(|x| allowed.contains(x)),
            _ => true,
        };
        (holds(i, &from) && holds(r, &to))
            || (row.both_directions && holds(i, &to) && holds(r, &from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowdoc_catalogue::Catalogue;

    fn invalid(text: &str) -> String {
        match Inventory::from_toml_str(text, "site.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_cell_of_the_guide_names_known_roles() {
        let cat = Catalogue::embedded();
        for row in cat.rows() {
            let (from, to) = row_roles(row);
            assert!(
                from.is_some(),
                "{}: sender {:?} has no roles",
                row.id,
                row.from
            );
            assert!(
                to.is_some(),
                "{}: listener {:?} has no roles",
                row.id,
                row.to
            );
        }
    }

    #[test]
    fn bad_files_say_where() {
        assert_eq!(
            invalid("[[host]]\nname = \"a\"\naddress = \"10.0.0.300\"\nroles = [\"cucm\"]\n"),
            "site.toml:3:11: \"10.0.0.300\" is not an IPv4 or IPv6 address"
        );
        assert!(
            invalid("[[host]]\nname = \"a\"\naddress = \"10.0.0.1\"\nroles = [\"cumc\"]\n")
                .starts_with("site.toml:4:10: unknown role \"cumc\"; roles are: imp-publisher,")
        );
        assert_eq!(
            invalid("[[network]]\nname = \"n\"\ncidr = \"10.1.2.3/16\"\nroles = [\"browser\"]\n"),
            "site.toml:3:8: 10.1.2.3/16 has host bits set; the network is 10.1.0.0/16"
        );
        assert_eq!(
            invalid("[[host]]\nname = \"a\"\naddress = \"10.0.0.1\"\nroles = [\"cucm\"]\n[[host]]\nname = \"a\"\naddress = \"10.0.0.2\"\nroles = [\"cucm\"]\n"),
            "site.toml:6:8: name \"a\" is used twice"
        );
        assert_eq!(
            invalid("[[host]]\nname = \"a\"\naddress = \"10.0.0.1\"\nroles = []\n"),
            "site.toml:4:9: roles is empty: give at least one role"
        );
        let e = invalid("[[hots]]\nname = \"a\"\n");
        assert!(
            e.starts_with("site.toml:1:") && e.contains("unknown field `hots`"),
            "{e}"
        );
    }

    #[test]
    fn hosts_win_over_networks_and_longer_prefixes_over_shorter() {
        let inv = Inventory::from_toml_str(
            "[[network]]\nname = \"dc\"\ncidr = \"10.0.0.0/8\"\nroles = [\"endpoint\"]\n\
             [[network]]\nname = \"voice\"\ncidr = \"10.1.0.0/16\"\nroles = [\"sip-gateway\"]\n\
             [[host]]\nname = \"cucm1\"\naddresses = [\"10.1.0.5\", \"fd00::5\"]\nroles = [\"cucm\"]\n",
            "t",
        )
        .expect("valid");
        let name = |ip: &str| inv.lookup(ip.parse().expect("address")).map(|w| w.name);
        assert_eq!(name("10.1.0.5"), Some("cucm1"));
        assert_eq!(name("fd00::5"), Some("cucm1"));
        assert_eq!(name("10.1.9.9"), Some("voice"));
        assert_eq!(name("10.9.9.9"), Some("dc"));
        assert_eq!(name("192.168.0.1"), None);
    }

    #[test]
    fn role_checks_follow_the_rows() {
        let cat = Catalogue::embedded();
        let row = |id: &str| cat.rows().iter().find(|r| r.id == id).expect("row");
        let inv = Inventory::from_toml_str(
            "[[host]]\nname = \"imp1\"\naddress = \"10.0.0.1\"\nroles = [\"imp-publisher\"]\n\
             [[host]]\nname = \"imp2\"\naddress = \"10.0.0.2\"\nroles = [\"imp-subscriber\"]\n\
             [[host]]\nname = \"ldap\"\naddress = \"10.0.0.3\"\nroles = [\"directory\"]\n\
             [[host]]\nname = \"peer\"\naddress = \"192.0.2.1\"\nroles = [\"federated-peer\"]\n\
             [[network]]\nname = \"clients\"\ncidr = \"10.20.0.0/16\"\nroles = [\"xmpp-client\"]\n",
            "t",
        )
        .expect("valid");
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        // XCP S2S (T22.2): node to node, node to federated peer; not from a client network.
        assert!(inv.roles_agree(row("T22.2"), ip("10.0.0.1"), ip("10.0.0.2")));
        assert!(inv.roles_agree(row("T22.2"), ip("10.0.0.1"), ip("192.0.2.1")));
        assert!(!inv.roles_agree(row("T22.2"), ip("10.20.1.1"), ip("10.0.0.1")));
        // XCP client access (T22.1): clients to nodes.
        assert!(inv.roles_agree(row("T22.1"), ip("10.20.1.1"), ip("10.0.0.1")));
        // LDAP (T5.1): only IM and Presence opens it to the directory.
        assert!(inv.roles_agree(row("T5.1"), ip("10.0.0.2"), ip("10.0.0.3")));
        assert!(!inv.roles_agree(row("T5.1"), ip("10.20.1.1"), ip("10.0.0.3")));
        // A host the inventory does not know is not held against the flow.
        assert!(inv.roles_agree(row("T5.1"), ip("172.16.0.1"), ip("10.0.0.3")));
    }
}
