//! The gateway's config file: TOML, read once at startup.
//!
//! ```toml
//! [[interface]]
//! name = "lan"                 # the name routes, NAT and firewall rules use
//! device = "veth-lan"          # the OS interface ringstack takes over
//! address = "198.51.100.1/24"  # or addresses = ["…/24", "…/24"]
//! # mtu = 1500                 # 68..=65535, may be smaller than the device's
//! # driver = "auto"            # auto | xdp | packet | tap
//! # vlan = 100                 # 1..=4094
//! # proxy_arp = false
//! # rp_filter = "loose"        # strict | loose | off
//! # mac = "02:00:00:00:00:01"  # unicast; default: the device's
//! # forward = true             # packets arriving here may be forwarded
//!
//! [[interface]]
//! name = "wan"
//! device = "veth-wan"
//! address = "203.0.113.1/24"
//!
//! [[route]]
//! to = "0.0.0.0/0"
//! via = "203.0.113.254"        # on-link of some interface
//! # interface = "wan"          # at least one of via / interface
//! # metric = 0
//!
//! [gateway]                    # optional, these are the defaults
//! # ttl = 64                   # 1..=255, for packets the router originates
//! # icmp_error_rate = 100      # per second
//! # icmp_error_burst = 50
//! # icmp_redirects = false     # true is refused: not implemented
//! # rx_batch = 64              # 1..=4096
//! ```
//!
//! Everything that can be checked without the system is checked here, and
//! every error names its line and key, so a typo is found by `--check`
//! rather than at the first packet. Whether a device exists, and its MTU, are
//! the runtime's to check; [`InterfaceConfig::error`] and
//! [`RouteConfig::error`] word those errors the same way.
//!
//! Parsing runs in two passes. Serde, with every leaf wrapped in
//! [`Spanned`], checks the shape: unknown keys, wrong types. The semantic
//! pass then works on plain values but still holds each one's span, so its
//! errors point at the offending value rather than at its table.

use crate::eth::MacAddr;
use crate::ip::cidr::Ipv4Cidr;
use core::fmt;
use core::net::Ipv4Addr;
use core::ops::{Range, RangeInclusive};
use serde::Deserialize;
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The whole file, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// In file order; at least one, at most [`MAX_INTERFACES`].
    pub interfaces: Vec<InterfaceConfig>,
    /// In file order.
    pub routes: Vec<RouteConfig>,
    pub options: GatewayOptions,
    /// In file order; at most one per interface.
    pub dhcp_servers: Vec<DhcpServerConfig>,
}

/// One `[[interface]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Unique, 1 to 15 of `[A-Za-z0-9_-]`.
    pub name: String,
    /// The OS interface, unique across interfaces. A valid Linux interface
    /// name; whether it exists is not checked here.
    pub device: String,
    /// At least one; each a host address (not the network or broadcast
    /// address of its subnet, except on /31 and /32), prefix 1..=32. No
    /// address appears twice in the file, and no two interfaces' subnets
    /// overlap; one interface may hold several addresses on one subnet.
    pub addresses: Vec<Ipv4Cidr>,
    /// IP MTU, 68..=65535. `None`: the device's.
    pub mtu: Option<u16>,
    pub driver: DriverKind,
    /// 802.1Q VLAN ID, 1..=4094.
    pub vlan: Option<u16>,
    pub proxy_arp: bool,
    pub rp_filter: RpFilter,
    /// Unicast and non-zero. `None`: the device's.
    pub mac: Option<MacAddr>,
    /// Packets arriving on this interface may be forwarded.
    pub forward: bool,
    /// The address, mask and default route come from a DHCP server
    /// (`addresses` is then empty).
    pub dhcp: bool,
    /// 1-based line of the `[[interface]]` header.
    pub line: usize,
}

/// Which driver takes over the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverKind {
    /// The runtime picks.
    #[default]
    Auto,
    Xdp,
    Packet,
    Tap,
}

/// Reverse-path filtering (RFC 3704) of packets arriving on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RpFilter {
    /// The route back to the source must leave by the arrival interface.
    Strict,
    /// Some route back to the source must exist: the default, because strict
    /// drops legitimate traffic on asymmetric paths.
    #[default]
    Loose,
    Off,
}

/// One `[[dhcp_server]]`: DHCP served on an interface with a fixed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpServerConfig {
    /// The `[[interface]]` it answers on.
    pub interface: String,
    /// The dynamic pool, inside the interface's first subnet.
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    /// Seconds, at least 60; 3600 by default.
    pub lease_time: u32,
    pub lease_file: std::path::PathBuf,
    /// Option 3; the interface's address by default.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// How long an ARP probe of an address waits before it is offered, in
    /// milliseconds (500 by default); 0 offers without probing.
    pub probe_ms: u32,
    /// `[[dhcp_server.reservation]]`: fixed addresses by MAC.
    pub reservations: Vec<(MacAddr, Ipv4Addr)>,
    pub line: usize,
}

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The destination network: host bits are zero (`addr() == network()`).
    /// Prefix 0 is the default route.
    pub to: Ipv4Cidr,
    /// Next hop: on-link of an interface's subnet (of `interface` if given),
    /// neither that subnet's network or broadcast address nor one of ours.
    pub via: Option<Ipv4Addr>,
    /// As written; names a configured interface. `None` with `via` set: the
    /// interface whose subnet holds `via`, see
    /// [`GatewayConfig::route_interface`].
    pub interface: Option<String>,
    /// Lower wins. No two routes share both `to` and `metric`.
    pub metric: u32,
    /// 1-based line of the `[[route]]` header.
    pub line: usize,
}

/// The `[gateway]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayOptions {
    /// TTL of packets the router originates (ICMP errors and replies), not
    /// of those it forwards.
    pub ttl: u8,
    /// ICMP errors per second, the refill of a
    /// [`TokenBucket`](crate::icmp::ratelimit::TokenBucket).
    pub icmp_error_rate: u32,
    /// That bucket's depth. 0 is accepted only with a rate of 0, which
    /// turns ICMP errors off.
    pub icmp_error_burst: u32,
    /// Frames taken from a device per poll, 1..=4096.
    pub rx_batch: usize,
}

impl Default for GatewayOptions {
    fn default() -> GatewayOptions {
        GatewayOptions {
            ttl: 64,
            icmp_error_rate: 100,
            icmp_error_burst: 50,
            rx_batch: 64,
        }
    }
}

/// More would be a typo or a generated file gone wrong; the runtime keeps
/// per-interface state in small fixed tables.
pub const MAX_INTERFACES: usize = 64;

/// Linux's IFNAMSIZ less the terminating NUL.
const IFNAMSIZ: usize = 15;

/// Why a config file was refused.
///
/// `Display` gives `line 7: key "address" in [[interface]] "lan": …`: the
/// line and key when there are some, then `message`. When `key` is set,
/// `message` starts with the table it is in (`in [[interface]] "lan": `),
/// which is what makes that sentence read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based. `None` for errors about the file as a whole (unreadable, no
    /// interface at all).
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key \"{key}\" ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn keyed(line: usize, key: &str, table: &str, what: impl fmt::Display) -> ConfigError {
        ConfigError {
            line: Some(line),
            key: Some(key.to_owned()),
            message: format!("in {table}: {what}"),
        }
    }

    fn bare(line: Option<usize>, what: impl fmt::Display) -> ConfigError {
        ConfigError {
            line,
            key: None,
            message: what.to_string(),
        }
    }
}

impl DriverKind {
    pub const ALL: [DriverKind; 4] = [
        DriverKind::Auto,
        DriverKind::Xdp,
        DriverKind::Packet,
        DriverKind::Tap,
    ];

    /// The spelling in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Auto => "auto",
            DriverKind::Xdp => "xdp",
            DriverKind::Packet => "packet",
            DriverKind::Tap => "tap",
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RpFilter {
    pub const ALL: [RpFilter; 3] = [RpFilter::Strict, RpFilter::Loose, RpFilter::Off];

    /// The spelling in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            RpFilter::Strict => "strict",
            RpFilter::Loose => "loose",
            RpFilter::Off => "off",
        }
    }
}

impl fmt::Display for RpFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl InterfaceConfig {
    /// An error about this interface found after parsing (a missing device,
    /// say), worded like the parser's own, at the `[[interface]]` header.
    pub fn error(&self, key: Option<&str>, what: impl fmt::Display) -> ConfigError {
        let table = interface_table(0, Some(&self.name));
        match key {
            Some(key) => ConfigError::keyed(self.line, key, &table, what),
            None => ConfigError::bare(Some(self.line), format!("in {table}: {what}")),
        }
    }
}

impl RouteConfig {
    /// An error about this route found after parsing, worded like the
    /// parser's own, at the `[[route]]` header.
    pub fn error(&self, key: Option<&str>, what: impl fmt::Display) -> ConfigError {
        let table = route_table(0, Some(self.to));
        match key {
            Some(key) => ConfigError::keyed(self.line, key, &table, what),
            None => ConfigError::bare(Some(self.line), format!("in {table}: {what}")),
        }
    }
}

impl GatewayConfig {
    /// The interface a route leaves by: the one it names, else the one whose
    /// subnet holds its `via`. Always `Some` for a route of this config,
    /// since subnets do not overlap and `via` is on-link.
    pub fn route_interface(&self, route: &RouteConfig) -> Option<&InterfaceConfig> {
        match (&route.interface, route.via) {
            (Some(name), _) => self.interfaces.iter().find(|i| i.name == *name),
            (None, Some(via)) => self
                .interfaces
                .iter()
                .find(|i| i.addresses.iter().any(|a| a.contains(via))),
            (None, None) => None,
        }
    }

    /// What `ringstack gateway --check` prints: one line per interface and
    /// per route (defaults left out), then the options.
    pub fn summary(&self) -> String {
        use fmt::Write as _;
        let mut s = String::new();
        for i in &self.interfaces {
            let addrs: Vec<String> = i.addresses.iter().map(|a| a.to_string()).collect();
            let _ = write!(
                s,
                "interface {}: device {}, {}",
                i.name,
                i.device,
                addrs.join(" ")
            );
            if let Some(mtu) = i.mtu {
                let _ = write!(s, ", mtu {mtu}");
            }
            if i.driver != DriverKind::Auto {
                let _ = write!(s, ", driver {}", i.driver);
            }
            if let Some(vlan) = i.vlan {
                let _ = write!(s, ", vlan {vlan}");
            }
            if let Some(mac) = i.mac {
                let _ = write!(s, ", mac {mac}");
            }
            if i.proxy_arp {
                s.push_str(", proxy_arp");
            }
            if i.rp_filter != RpFilter::Loose {
                let _ = write!(s, ", rp_filter {}", i.rp_filter);
            }
            if !i.forward {
                s.push_str(", no forwarding");
            }
            s.push('\n');
        }
        for r in &self.routes {
            let _ = write!(s, "route {}", r.to);
            if let Some(via) = r.via {
                let _ = write!(s, " via {via}");
            }
            if let Some(i) = self.route_interface(r) {
                let _ = write!(s, " dev {}", i.name);
            }
            let _ = writeln!(s, " metric {}", r.metric);
        }
        let o = &self.options;
        let _ = writeln!(
            s,
            "options: ttl {}, icmp errors {}/s burst {}, rx batch {}",
            o.ttl, o.icmp_error_rate, o.icmp_error_burst, o.rx_batch
        );
        s
    }
}

/// Reads and parses `path`. The error does not name the file: the caller
/// knows it and adds it.
pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::bare(None, format!("cannot read {}: {e}", path.display())))?;
    parse(&text)
}

/// Parses and validates a config file's text.
pub fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| syntax_error(text, &e))?;
    let raw = RawFile::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| shape_error(text, &e))?;
    Check { text }.file(raw)
}

// ---- the shape, for serde ------------------------------------------------

type Field<T> = Option<Spanned<T>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    interface: Vec<Spanned<RawInterface>>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    gateway: Field<RawGateway>,
    #[serde(default)]
    dhcp_server: Vec<Spanned<RawDhcpServer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDhcpServer {
    interface: Field<String>,
    range: Field<String>,
    lease_time: Field<Int>,
    lease_file: Field<String>,
    router: Field<String>,
    dns: Field<Vec<Spanned<String>>>,
    probe_ms: Field<Int>,
    #[serde(default)]
    reservation: Vec<Spanned<RawReservation>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReservation {
    mac: Field<String>,
    address: Field<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: Field<String>,
    device: Field<String>,
    address: Field<String>,
    addresses: Field<Vec<Spanned<String>>>,
    mtu: Field<Int>,
    driver: Field<String>,
    vlan: Field<Int>,
    proxy_arp: Field<bool>,
    rp_filter: Field<String>,
    mac: Field<String>,
    forward: Field<bool>,
    dhcp: Field<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    to: Field<String>,
    via: Field<String>,
    interface: Field<String>,
    metric: Field<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    ttl: Field<Int>,
    icmp_error_rate: Field<Int>,
    icmp_error_burst: Field<Int>,
    icmp_redirects: Field<bool>,
    rx_batch: Field<Int>,
}

// Listed in unknown-key errors; a test holds them to the structs above.
const TOP_KEYS: &[&str] = &["interface", "route", "gateway", "dhcp_server"];
const DHCP_SERVER_KEYS: &[&str] = &[
    "interface",
    "range",
    "lease_time",
    "lease_file",
    "router",
    "dns",
    "probe_ms",
    "reservation",
];
const RESERVATION_KEYS: &[&str] = &["mac", "address"];
const INTERFACE_KEYS: &[&str] = &[
    "name",
    "device",
    "address",
    "addresses",
    "mtu",
    "driver",
    "vlan",
    "proxy_arp",
    "rp_filter",
    "mac",
    "forward",
    "dhcp",
];
const ROUTE_KEYS: &[&str] = &["to", "via", "interface", "metric"];
const GATEWAY_KEYS: &[&str] = &[
    "ttl",
    "icmp_error_rate",
    "icmp_error_burst",
    "icmp_redirects",
    "rx_batch",
];

/// Any integer the TOML parser gives, beyond 64 bits included. Ranges are
/// checked by the semantic pass, so the error says "68..=65535" rather than
/// serde's "expected u16".
struct Int(i128);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Int, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Int, E> {
                i128::try_from(v).map(Int).map_err(|_| {
                    E::invalid_value(serde::de::Unexpected::Other("a 128-bit integer"), &self)
                })
            }
        }
        d.deserialize_i64(Visitor)
    }
}

// ---- positions -----------------------------------------------------------

/// 1-based line of byte `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// 1-based column, in characters, of byte `offset`.
fn column_at(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |nl| nl + 1);
    // Counting UTF-8 lead bytes counts characters without needing `offset`
    // to fall on a character boundary.
    before[line_start..]
        .iter()
        .filter(|&&b| b & 0xc0 != 0x80)
        .count()
        + 1
}

fn interface_table(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("[[interface]] \"{name}\""),
        None => format!("[[interface]] #{}", index + 1),
    }
}

fn route_table(index: usize, to: Option<Ipv4Cidr>) -> String {
    match to {
        Some(to) => format!("[[route]] to {to}"),
        None => format!("[[route]] #{}", index + 1),
    }
}

const GATEWAY_TABLE: &str = "[gateway]";
const TOP_TABLE: &str = "the top-level table";

/// A TOML syntax error, with the key on its line when the line has one.
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map_or(text.len(), |s| s.start);
    let line = line_at(text, at);
    let line_text = text.lines().nth(line - 1).unwrap_or("").trim();
    let is_header = line_text.starts_with('[');
    let (key, what) = if e.message() == "duplicate key" {
        // The span is the repeated key (or table name) itself.
        let key = e
            .span()
            .and_then(|s| text.get(s))
            .map(|k| k.trim_matches(|c| c == '"' || c == '\''));
        (key, "is given twice".to_owned())
    } else {
        let key = line_text
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| !k.is_empty() && k.bytes().all(is_bare_key_byte));
        let what = format!(
            "TOML syntax error at column {}: {}",
            column_at(text, at),
            e.message()
        );
        (key, what)
    };
    match key {
        Some(key) => {
            let table = if is_header {
                TOP_TABLE.to_owned()
            } else {
                enclosing_header(text, line)
            };
            ConfigError::keyed(line, key, &table, what)
        }
        None => ConfigError::bare(Some(line), what),
    }
}

fn is_bare_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The last table header above `line`, as written ("[[interface]]"). Only
/// for syntax errors, where there is no parsed document to ask.
fn enclosing_header(text: &str, line: usize) -> String {
    text.lines()
        .take(line.saturating_sub(1))
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .last()
        .and_then(|l| {
            let close = if l.starts_with("[[") { "]]" } else { "]" };
            l.find(close).map(|end| l[..end + close.len()].to_owned())
        })
        .unwrap_or_else(|| TOP_TABLE.to_owned())
}

/// An error from the serde pass: an unknown key or a wrong type. Its span
/// points into the document; the document, parsed again, says which key
/// holds that span and in which table.
fn shape_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let Some(span) = e.span() else {
        return ConfigError::bare(None, plain(e.message()));
    };
    let line = line_at(text, span.start);
    let located = DeTable::parse(text).ok().and_then(|doc| {
        let path = locate_in_table(doc.get_ref(), span.start)?;
        let (key, table, keys) = match path.as_slice() {
            [Seg::Key("interface"), Seg::Index(i), Seg::Key(k), ..] => {
                let name = interface_name(doc.get_ref(), *i);
                (*k, interface_table(*i, name), INTERFACE_KEYS)
            }
            [Seg::Key("route"), Seg::Index(i), Seg::Key(k), ..] => {
                (*k, route_table(*i, None), ROUTE_KEYS)
            }
            [Seg::Key("gateway"), Seg::Key(k), ..] => (*k, GATEWAY_TABLE.to_owned(), GATEWAY_KEYS),
            [Seg::Key("dhcp_server"), Seg::Index(i), Seg::Key("reservation"), Seg::Index(_), Seg::Key(k), ..] => {
                (*k, format!("[[dhcp_server.reservation]] of [[dhcp_server]] #{}", i + 1), RESERVATION_KEYS)
            }
            [Seg::Key("dhcp_server"), Seg::Index(i), Seg::Key(k), ..] => {
                (*k, format!("[[dhcp_server]] #{}", i + 1), DHCP_SERVER_KEYS)
            }
            [Seg::Key(k), ..] => (*k, TOP_TABLE.to_owned(), TOP_KEYS),
            _ => return None,
        };
        let what = if e.message().starts_with("unknown field") {
            format!("unknown key; allowed here: {}", keys.join(", "))
        } else {
            plain(e.message())
        };
        Some(ConfigError::keyed(line, key, &table, what))
    });
    located.unwrap_or_else(|| ConfigError::bare(Some(line), plain(e.message())))
}

/// Serde's wording, in TOML's terms.
fn plain(message: &str) -> String {
    let mut m = message.to_owned();
    for raw in [
        "struct RawFile",
        "struct RawInterface",
        "struct RawRoute",
        "struct RawGateway",
        "struct RawDhcpServer",
        "struct RawReservation",
    ] {
        m = m.replace(raw, "a table");
    }
    m.replace("a sequence", "an array")
        .replace("invalid type: map", "invalid type: table")
}

#[derive(Debug, PartialEq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The path to the innermost key whose name or value covers byte `at`.
/// Children are searched before a value's own span, since a table's span
/// is only its header.
fn locate_in_table<'a>(table: &'a DeTable<'_>, at: usize) -> Option<Vec<Seg<'a>>> {
    for (key, value) in table.iter() {
        if let Some(mut path) = locate_in_value(value, at) {
            path.insert(0, Seg::Key(key.get_ref()));
            return Some(path);
        }
        if covers(key.span(), at) {
            return Some(vec![Seg::Key(key.get_ref())]);
        }
    }
    None
}

fn locate_in_value<'a>(value: &'a Spanned<DeValue<'_>>, at: usize) -> Option<Vec<Seg<'a>>> {
    match value.get_ref() {
        DeValue::Table(t) => {
            if let Some(path) = locate_in_table(t, at) {
                return Some(path);
            }
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                if let Some(mut path) = locate_in_value(v, at) {
                    path.insert(0, Seg::Index(i));
                    return Some(path);
                }
            }
        }
        _ => {}
    }
    covers(value.span(), at).then(Vec::new)
}

fn covers(span: Range<usize>, at: usize) -> bool {
    span.start <= at && (at < span.end || span.start == span.end)
}

fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a DeValue<'i>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v.get_ref())
}

/// The valid name of the `index`th interface, to say which one an error is in.
fn interface_name<'a>(doc: &'a DeTable<'_>, index: usize) -> Option<&'a str> {
    let DeValue::Array(list) = get(doc, "interface")? else {
        return None;
    };
    let DeValue::Table(t) = list.get(index)?.get_ref() else {
        return None;
    };
    get(t, "name")?.as_str().filter(|n| valid_name(n))
}

// ---- the meaning ---------------------------------------------------------

fn valid_name(name: &str) -> bool {
    (1..=IFNAMSIZ).contains(&name.len()) && name.bytes().all(is_bare_key_byte)
}

/// Linux's `dev_valid_name`: what `ip link` would accept.
fn device_problem(device: &str) -> Option<&'static str> {
    if device.is_empty() {
        Some("is empty")
    } else if device.len() > IFNAMSIZ {
        Some("is longer than 15 bytes, Linux's limit (IFNAMSIZ)")
    } else if device == "." || device == ".." {
        Some("is not a usable interface name")
    } else if device
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("cannot contain '/', ':' or white space in Linux")
    } else {
        None
    }
}

/// Subnets that share an address: one holds the other's network address.
fn overlap(a: &Ipv4Cidr, b: &Ipv4Cidr) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

struct Check<'t> {
    text: &'t str,
}

impl Check<'_> {
    fn line<T>(&self, value: &Spanned<T>) -> usize {
        line_at(self.text, value.span().start)
    }

    fn file(&self, raw: RawFile) -> Result<GatewayConfig, ConfigError> {
        if raw.interface.is_empty() {
            return Err(ConfigError::bare(
                None,
                "no [[interface]]: a gateway needs at least one",
            ));
        }
        if let Some(extra) = raw.interface.get(MAX_INTERFACES) {
            return Err(ConfigError::bare(
                Some(self.line(extra)),
                format!("more than {MAX_INTERFACES} [[interface]] tables"),
            ));
        }
        let mut interfaces = Vec::with_capacity(raw.interface.len());
        for (index, iface) in raw.interface.into_iter().enumerate() {
            let iface = self.interface(index, iface, &interfaces)?;
            interfaces.push(iface);
        }
        let mut routes = Vec::with_capacity(raw.route.len());
        for (index, route) in raw.route.into_iter().enumerate() {
            let route = self.route(index, route, &interfaces, &routes)?;
            routes.push(route);
        }
        let options = match raw.gateway {
            Some(g) => self.options(g.into_inner())?,
            None => GatewayOptions::default(),
        };
        let mut dhcp_servers: Vec<DhcpServerConfig> = Vec::new();
        for (index, d) in raw.dhcp_server.into_iter().enumerate() {
            let d = self.dhcp_server(index, d, &interfaces)?;
            if let Some(o) = dhcp_servers.iter().find(|o| o.interface == d.interface) {
                return Err(ConfigError::keyed(
                    d.line,
                    "interface",
                    &format!("[[dhcp_server]] #{}", index + 1),
                    format!(
                        "\"{}\" has a DHCP server already (line {})",
                        d.interface, o.line
                    ),
                ));
            }
            dhcp_servers.push(d);
        }
        Ok(GatewayConfig {
            interfaces,
            routes,
            options,
            dhcp_servers,
        })
    }

    fn dhcp_server(
        &self,
        index: usize,
        raw: Spanned<RawDhcpServer>,
        interfaces: &[InterfaceConfig],
    ) -> Result<DhcpServerConfig, ConfigError> {
        let line = self.line(&raw);
        let raw = raw.into_inner();
        let table = format!("[[dhcp_server]] #{}", index + 1);
        let t = table.as_str();
        let need = |v: Option<Spanned<String>>, key: &str, example: &str| {
            v.ok_or_else(|| {
                ConfigError::keyed(line, key, t, format!("is missing, e.g. {key} = {example}"))
            })
        };
        let name = need(raw.interface, "interface", "\"lan\"")?;
        let Some(iface) = interfaces.iter().find(|i| i.name == *name.get_ref()) else {
            return Err(ConfigError::keyed(
                self.line(&name),
                "interface",
                t,
                format!("no [[interface]] is named \"{}\"", name.get_ref()),
            ));
        };
        let Some(subnet) = iface.addresses.first().copied() else {
            return Err(ConfigError::keyed(
                self.line(&name),
                "interface",
                t,
                format!(
                    "\"{}\" takes its address from DHCP; a server needs a fixed one",
                    iface.name
                ),
            ));
        };
        let range_text = need(raw.range, "range", "\"198.18.0.100-198.18.0.199\"")?;
        let bad_range = |what: String| ConfigError::keyed(self.line(&range_text), "range", t, what);
        let (a, b) = range_text
            .get_ref()
            .split_once('-')
            .ok_or_else(|| bad_range(format!("{} is not FIRST-LAST", range_text.get_ref())))?;
        let first: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| bad_range(format!("{a} is not an IPv4 address")))?;
        let last: Ipv4Addr = b
            .trim()
            .parse()
            .map_err(|_| bad_range(format!("{b} is not an IPv4 address")))?;
        if u32::from(first) > u32::from(last) {
            return Err(bad_range(format!("{first} is above {last}")));
        }
        if !subnet.contains(first) || !subnet.contains(last) {
            return Err(bad_range(format!(
                "{first}-{last} is not inside {subnet}, the subnet of \"{}\"",
                iface.name
            )));
        }
        let lease_time = match &raw.lease_time {
            Some(v) => self.int::<u32>(v, "lease_time", t, 60..=(u32::MAX as i128))?,
            None => 3600,
        };
        let file = need(raw.lease_file, "lease_file", "\"lan.leases\"")?;
        let addr = |v: &Spanned<String>, key: &str| -> Result<Ipv4Addr, ConfigError> {
            v.get_ref().parse().map_err(|_| {
                ConfigError::keyed(
                    self.line(v),
                    key,
                    t,
                    format!("\"{}\" is not an IPv4 address", v.get_ref()),
                )
            })
        };
        let router = raw.router.as_ref().map(|r| addr(r, "router")).transpose()?;
        let dns = match &raw.dns {
            Some(list) => list
                .get_ref()
                .iter()
                .map(|d| addr(d, "dns"))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let probe_ms = match &raw.probe_ms {
            Some(v) => self.int::<u32>(v, "probe_ms", t, 0..=10_000)?,
            None => 500,
        };
        let mut reservations = Vec::new();
        for r in raw.reservation {
            let rl = self.line(&r);
            let r = r.into_inner();
            let rt = format!("[[dhcp_server.reservation]] of {table}");
            let mac_text = r
                .mac
                .ok_or_else(|| ConfigError::keyed(rl, "mac", &rt, "is missing"))?;
            let mac: MacAddr = mac_text.get_ref().parse().map_err(|_| {
                ConfigError::keyed(
                    self.line(&mac_text),
                    "mac",
                    &rt,
                    format!("\"{}\" is not a MAC address", mac_text.get_ref()),
                )
            })?;
            let at = r
                .address
                .ok_or_else(|| ConfigError::keyed(rl, "address", &rt, "is missing"))?;
            let ip = addr(&at, "address")?;
            if !subnet.contains(ip) {
                return Err(ConfigError::keyed(
                    self.line(&at),
                    "address",
                    &rt,
                    format!("{ip} is not inside {subnet}"),
                ));
            }
            reservations.push((mac, ip));
        }
        Ok(DhcpServerConfig {
            interface: iface.name.clone(),
            first,
            last,
            lease_time,
            lease_file: std::path::PathBuf::from(file.into_inner()),
            router,
            dns,
            probe_ms,
            reservations,
            line,
        })
    }

    fn int<T: TryFrom<i128>>(
        &self,
        value: &Spanned<Int>,
        key: &str,
        table: &str,
        range: RangeInclusive<i128>,
    ) -> Result<T, ConfigError> {
        let v = value.get_ref().0;
        let err = || {
            let (lo, hi) = (range.start(), range.end());
            ConfigError::keyed(
                self.line(value),
                key,
                table,
                format!("{v} is out of range {lo}..={hi}"),
            )
        };
        if !range.contains(&v) {
            return Err(err());
        }
        T::try_from(v).map_err(|_| err())
    }

    fn choice<T: Copy>(
        &self,
        value: &Spanned<String>,
        key: &str,
        table: &str,
        all: &[T],
        as_str: fn(T) -> &'static str,
    ) -> Result<T, ConfigError> {
        all.iter()
            .copied()
            .find(|&c| as_str(c) == value.get_ref())
            .ok_or_else(|| {
                let allowed: Vec<&str> = all.iter().map(|&c| as_str(c)).collect();
                ConfigError::keyed(
                    self.line(value),
                    key,
                    table,
                    format!(
                        "\"{}\" is not one of: {}",
                        value.get_ref(),
                        allowed.join(", ")
                    ),
                )
            })
    }

    fn interface(
        &self,
        index: usize,
        raw: Spanned<RawInterface>,
        earlier: &[InterfaceConfig],
    ) -> Result<InterfaceConfig, ConfigError> {
        let line = self.line(&raw);
        let raw = raw.into_inner();

        let table = interface_table(index, None);
        let name = raw.name.ok_or_else(|| {
            ConfigError::keyed(
                line,
                "name",
                &table,
                "is missing; routes and rules refer to an interface by it",
            )
        })?;
        let name_line = self.line(&name);
        let name = name.into_inner();
        if !valid_name(&name) {
            return Err(ConfigError::keyed(
                name_line,
                "name",
                &table,
                format!("\"{name}\" is not 1 to 15 of A-Z a-z 0-9 _ -"),
            ));
        }
        if let Some(first) = earlier.iter().find(|i| i.name == name) {
            return Err(ConfigError::keyed(
                name_line,
                "name",
                &table,
                format!(
                    "\"{name}\" is already the name of the [[interface]] at line {}",
                    first.line
                ),
            ));
        }
        let table = interface_table(index, Some(&name));
        let t = table.as_str();

        let device = raw.device.ok_or_else(|| {
            ConfigError::keyed(
                line,
                "device",
                t,
                "is missing: the OS interface to take over",
            )
        })?;
        if let Some(problem) = device_problem(device.get_ref()) {
            return Err(ConfigError::keyed(
                self.line(&device),
                "device",
                t,
                format!("\"{}\" {problem}", device.get_ref()),
            ));
        }
        if let Some(first) = earlier.iter().find(|i| i.device == *device.get_ref()) {
            return Err(ConfigError::keyed(
                self.line(&device),
                "device",
                t,
                format!(
                    "\"{}\" is already taken by [[interface]] \"{}\" (line {})",
                    device.get_ref(),
                    first.name,
                    first.line
                ),
            ));
        }

        let dhcp = raw.dhcp.as_ref().is_some_and(|d| *d.get_ref());
        let written: Vec<(&'static str, Spanned<String>)> =
            match (raw.address, raw.addresses) {
                (Some(a), _) if dhcp => {
                    return Err(ConfigError::keyed(
                        self.line(&a),
                        "address",
                        t,
                        "is given with dhcp = true; the lease brings the address",
                    ))
                }
                (_, Some(list)) if dhcp => {
                    return Err(ConfigError::keyed(
                        self.line(&list),
                        "addresses",
                        t,
                        "is given with dhcp = true; the lease brings the address",
                    ))
                }
                (None, None) if dhcp => Vec::new(),
                (Some(_), Some(list)) => {
                    return Err(ConfigError::keyed(
                        self.line(&list),
                        "addresses",
                        t,
                        "is given with address; use one or the other",
                    ))
                }
                (None, None) => return Err(ConfigError::keyed(
                    line,
                    "address",
                    t,
                    "is missing: give address = \"a.b.c.d/len\", addresses = [...] or dhcp = true",
                )),
                (Some(one), None) => vec![("address", one)],
                (None, Some(list)) => {
                    if list.get_ref().is_empty() {
                        return Err(ConfigError::keyed(
                            self.line(&list),
                            "addresses",
                            t,
                            "is empty; an interface needs an address",
                        ));
                    }
                    list.into_inner()
                        .into_iter()
                        .map(|a| ("addresses", a))
                        .collect()
                }
            };
        let mut addresses: Vec<Ipv4Cidr> = Vec::with_capacity(written.len());
        for (key, text) in &written {
            let err = |what: String| ConfigError::keyed(self.line(text), key, t, what);
            let s = text.get_ref();
            let cidr: Ipv4Cidr = s
                .parse()
                .map_err(|e| err(format!("{s} is not an IPv4 address/prefix ({e})")))?;
            if let Some(what) = host_address_problem(&cidr) {
                return Err(err(format!("{cidr} {what}")));
            }
            if addresses.iter().any(|a| a.addr() == cidr.addr()) {
                return Err(err(format!("{} is listed twice", cidr.addr())));
            }
            for other in earlier {
                for a in &other.addresses {
                    let clash = if a.addr() == cidr.addr() {
                        format!("{} is already an address of", cidr.addr())
                    } else if overlap(a, &cidr) {
                        format!("{cidr} overlaps {a}, the subnet of")
                    } else {
                        continue;
                    };
                    return Err(err(format!(
                        "{clash} [[interface]] \"{}\" (line {}); two interfaces cannot share a subnet",
                        other.name, other.line
                    )));
                }
            }
            addresses.push(cidr);
        }

        let mtu = match &raw.mtu {
            Some(v) => Some(self.int(v, "mtu", t, 68..=65535)?),
            None => None,
        };
        let vlan = match &raw.vlan {
            Some(v) => Some(self.int(v, "vlan", t, 1..=4094)?),
            None => None,
        };
        let driver = match &raw.driver {
            Some(v) => self.choice(v, "driver", t, &DriverKind::ALL, DriverKind::as_str)?,
            None => DriverKind::default(),
        };
        let rp_filter = match &raw.rp_filter {
            Some(v) => self.choice(v, "rp_filter", t, &RpFilter::ALL, RpFilter::as_str)?,
            None => RpFilter::default(),
        };
        let mac = match &raw.mac {
            Some(v) => {
                let err = |what: String| ConfigError::keyed(self.line(v), "mac", t, what);
                let mac: MacAddr = v
                    .get_ref()
                    .parse()
                    .map_err(|e| err(format!("\"{}\": {e}", v.get_ref())))?;
                if mac.is_multicast() {
                    return Err(err(format!(
                        "{mac} is a multicast address (low bit of the first octet set); an interface's must be unicast"
                    )));
                }
                if mac == MacAddr::ZERO {
                    return Err(err(format!("{mac} is not a usable interface address")));
                }
                Some(mac)
            }
            None => None,
        };

        Ok(InterfaceConfig {
            name,
            device: device.into_inner(),
            addresses,
            mtu,
            driver,
            vlan,
            proxy_arp: raw.proxy_arp.is_some_and(Spanned::into_inner),
            rp_filter,
            mac,
            forward: raw.forward.is_none_or(Spanned::into_inner),
            dhcp,
            line,
        })
    }

    fn route(
        &self,
        index: usize,
        raw: Spanned<RawRoute>,
        interfaces: &[InterfaceConfig],
        earlier: &[RouteConfig],
    ) -> Result<RouteConfig, ConfigError> {
        let line = self.line(&raw);
        let raw = raw.into_inner();
        let table = route_table(index, None);

        let to_text = raw.to.ok_or_else(|| {
            ConfigError::keyed(
                line,
                "to",
                &table,
                "is missing: the destination, e.g. to = \"0.0.0.0/0\"",
            )
        })?;
        let to_line = self.line(&to_text);
        let s = to_text.get_ref();
        let to: Ipv4Cidr = s.parse().map_err(|e| {
            ConfigError::keyed(
                to_line,
                "to",
                &table,
                format!("{s} is not an IPv4 network/prefix ({e})"),
            )
        })?;
        if to.addr() != to.network() {
            return Err(ConfigError::keyed(
                to_line,
                "to",
                &table,
                format!(
                    "{to} has host bits set; did you mean {}/{}?",
                    to.network(),
                    to.prefix_len()
                ),
            ));
        }
        let table = route_table(index, Some(to));
        let t = table.as_str();

        let interface = match &raw.interface {
            Some(v) => {
                let name = v.get_ref();
                let Some(iface) = interfaces.iter().find(|i| i.name == *name) else {
                    let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
                    return Err(ConfigError::keyed(
                        self.line(v),
                        "interface",
                        t,
                        format!(
                            "no [[interface]] is named \"{name}\"; there are: {}",
                            names.join(", ")
                        ),
                    ));
                };
                Some(iface)
            }
            None => None,
        };

        let via = match &raw.via {
            Some(v) => Some(self.next_hop(v, t, interface, interfaces)?),
            None => None,
        };
        if via.is_none() && interface.is_none() {
            return Err(ConfigError::keyed(
                line,
                "via",
                t,
                "is missing, and so is interface: a route needs a next hop, an interface, or both",
            ));
        }

        let metric = match &raw.metric {
            Some(v) => self.int(v, "metric", t, 0..=i128::from(u32::MAX))?,
            None => 0,
        };
        if let Some(first) = earlier.iter().find(|r| r.to == to && r.metric == metric) {
            return Err(ConfigError::keyed(
                to_line,
                "to",
                t,
                format!(
                    "{to} with metric {metric} is already routed by the [[route]] at line {}; give one of them another metric",
                    first.line
                ),
            ));
        }

        Ok(RouteConfig {
            to,
            via,
            interface: raw.interface.map(Spanned::into_inner),
            metric,
            line,
        })
    }

    fn next_hop(
        &self,
        v: &Spanned<String>,
        t: &str,
        named: Option<&InterfaceConfig>,
        interfaces: &[InterfaceConfig],
    ) -> Result<Ipv4Addr, ConfigError> {
        let err = |what: String| ConfigError::keyed(self.line(v), "via", t, what);
        let s = v.get_ref();
        let via: Ipv4Addr = s
            .parse()
            .map_err(|_| err(format!("\"{s}\" is not an IPv4 address")))?;
        for i in interfaces {
            if i.addresses.iter().any(|a| a.addr() == via) {
                return Err(err(format!(
                    "{via} is our own address, on [[interface]] \"{}\"; a next hop is another router",
                    i.name
                )));
            }
        }
        let candidates = match named {
            Some(i) => core::slice::from_ref(i),
            None => interfaces,
        };
        let subnet = candidates
            .iter()
            .flat_map(|i| i.addresses.iter())
            .find(|a| a.contains(via));
        let Some(subnet) = subnet else {
            let list = |i: &InterfaceConfig| {
                let a: Vec<String> = i.addresses.iter().map(|a| a.to_string()).collect();
                format!("{} {}", i.name, a.join(" "))
            };
            let listed: Vec<String> = candidates.iter().map(list).collect();
            let whose = match named {
                Some(i) => format!("the subnet of [[interface]] \"{}\"", i.name),
                None => "any interface's subnet".to_owned(),
            };
            return Err(err(format!(
                "{via} is not on {whose} ({}); a next hop must be on-link",
                listed.join("; ")
            )));
        };
        if subnet.prefix_len() <= 30 && via == subnet.network() {
            return Err(err(format!("{via} is the network address of {subnet}")));
        }
        if subnet.broadcast() == Some(via) {
            return Err(err(format!("{via} is the broadcast address of {subnet}")));
        }
        Ok(via)
    }

    fn options(&self, raw: RawGateway) -> Result<GatewayOptions, ConfigError> {
        let t = GATEWAY_TABLE;
        let mut o = GatewayOptions::default();
        if let Some(v) = &raw.ttl {
            o.ttl = self.int(v, "ttl", t, 1..=255)?;
        }
        let u32_range = 0..=i128::from(u32::MAX);
        if let Some(v) = &raw.icmp_error_rate {
            o.icmp_error_rate = self.int(v, "icmp_error_rate", t, u32_range.clone())?;
        }
        if let Some(v) = &raw.icmp_error_burst {
            o.icmp_error_burst = self.int(v, "icmp_error_burst", t, u32_range)?;
            if o.icmp_error_burst == 0 && o.icmp_error_rate > 0 {
                return Err(ConfigError::keyed(
                    self.line(v),
                    "icmp_error_burst",
                    t,
                    "is 0, which lets no ICMP error out at any rate; to send none, set icmp_error_rate = 0 as well",
                ));
            }
        }
        if let Some(v) = &raw.icmp_redirects {
            if *v.get_ref() {
                return Err(ConfigError::keyed(
                    self.line(v),
                    "icmp_redirects",
                    t,
                    "is true, but ICMP redirects are not implemented; remove the key or set it to false",
                ));
            }
        }
        if let Some(v) = &raw.rx_batch {
            o.rx_batch = self.int(v, "rx_batch", t, 1..=4096)?;
        }
        Ok(o)
    }
}

/// Why `cidr` cannot be an interface's address, if it cannot.
fn host_address_problem(cidr: &Ipv4Cidr) -> Option<&'static str> {
    let addr = cidr.addr();
    if cidr.prefix_len() == 0 {
        Some("has prefix length 0, which would put every address on this link; use 1..=32")
    } else if addr.octets()[0] == 0 {
        // RFC 1122 §3.2.1.3: 0.0.0.0/8 is "this network", a source only
        // while a host learns its address.
        Some("is in 0.0.0.0/8, which no interface may hold")
    } else if addr.is_loopback() {
        Some("is a loopback address")
    } else if addr.is_multicast() || addr.is_broadcast() {
        Some("is not a unicast address")
    } else if cidr.prefix_len() <= 30 && addr == cidr.network() {
        // RFC 3021 allows all-zeros and all-ones host parts only on a /31.
        Some("is the network address of its subnet; give a host address")
    } else if cidr.broadcast() == Some(addr) {
        Some("is the broadcast address of its subnet; give a host address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"[[interface]]
name = "lan"                 # the name routes, NAT and firewall rules use
device = "veth-lan"          # the OS interface ringstack takes over
address = "198.51.100.1/24"  # or addresses = ["…/24", "…/24"]
# mtu = 1500                 # may be smaller than the device's
# driver = "auto"            # auto | xdp | packet | tap
# vlan = 100
# proxy_arp = false
# rp_filter = "loose"        # strict | loose | off

[[interface]]
name = "wan"
device = "veth-wan"
address = "203.0.113.1/24"

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.254"
# interface = "wan"
# metric = 0
"#;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    fn iface(name: &str, device: &str, addrs: &[&str], line: usize) -> InterfaceConfig {
        InterfaceConfig {
            name: name.into(),
            device: device.into(),
            addresses: addrs.iter().map(|a| cidr(a)).collect(),
            mtu: None,
            driver: DriverKind::Auto,
            vlan: None,
            proxy_arp: false,
            rp_filter: RpFilter::Loose,
            mac: None,
            forward: true,
            dhcp: false,
            line,
        }
    }

    #[test]
    fn a_dhcp_server_table_parses_and_its_errors_name_line_and_key() {
        let base =
            "[[interface]]\nname = \"lan\"\ndevice = \"eth1\"\naddress = \"198.18.0.1/24\"\n\n";
        let ok = format!("{base}[[dhcp_server]]\ninterface = \"lan\"\nrange = \"198.18.0.100-198.18.0.199\"\nlease_time = 600\nlease_file = \"lan.leases\"\ndns = [\"198.18.0.1\"]\n[[dhcp_server.reservation]]\nmac = \"02:00:00:00:00:10\"\naddress = \"198.18.0.10\"\n");
        let c = parse(&ok).unwrap();
        let d = &c.dhcp_servers[0];
        assert_eq!(
            (d.first, d.last, d.lease_time),
            (
                Ipv4Addr::new(198, 18, 0, 100),
                Ipv4Addr::new(198, 18, 0, 199),
                600
            )
        );
        assert_eq!(
            d.reservations,
            vec![(
                MacAddr([2, 0, 0, 0, 0, 0x10]),
                Ipv4Addr::new(198, 18, 0, 10)
            )]
        );
        assert_eq!(d.dns, vec![Ipv4Addr::new(198, 18, 0, 1)]);
        let outside = ok.replace("198.18.0.100-198.18.0.199", "198.18.1.100-198.18.1.199");
        let e = parse(&outside).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(8), Some("range")), "{e}");
        let no_iface = ok.replace("interface = \"lan\"", "interface = \"dmz\"");
        let e = parse(&no_iface).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(7), Some("interface")),
            "{e}"
        );
        let unknown = ok.replace("lease_time = 600", "lease_tme = 600");
        let e = parse(&unknown).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("lease_tme"), "{e}");
        assert!(e.to_string().contains("lease_time"), "{e}");
    }

    #[test]
    fn an_interface_may_take_its_address_from_dhcp_but_not_both() {
        let ok = "[[interface]]\nname = \"wan\"\ndevice = \"eth0\"\ndhcp = true\n";
        let c = parse(ok).unwrap();
        assert!(c.interfaces[0].dhcp);
        assert!(c.interfaces[0].addresses.is_empty());
        let both = "[[interface]]\nname = \"wan\"\ndevice = \"eth0\"\ndhcp = true\naddress = \"198.51.100.1/24\"\n";
        let e = parse(both).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("address")),
            "{e}"
        );
        let neither = "[[interface]]\nname = \"wan\"\ndevice = \"eth0\"\n";
        let e = parse(neither).unwrap_err();
        assert!(e.to_string().contains("dhcp = true"), "{e}");
    }

    /// Two interfaces and nothing else, for tests to append to.
    const TWO: &str = "\
[[interface]]
name = \"lan\"
device = \"veth-lan\"
address = \"198.51.100.1/24\"

[[interface]]
name = \"wan\"
device = \"veth-wan\"
address = \"203.0.113.1/24\"
";

    /// The error `text` gives, checked for its line and key.
    #[track_caller]
    fn error(text: &str, line: usize, key: Option<&str>) -> ConfigError {
        let e = parse(text).expect_err("parsed");
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(line), key),
            "{e}\nin:\n{text}"
        );
        e
    }

    #[track_caller]
    fn error_says(text: &str, line: usize, key: Option<&str>, says: &str) {
        let e = error(text, line, key).to_string();
        assert!(e.contains(says), "{e:?} does not say {says:?}");
    }

    #[test]
    fn the_example_parses_to_its_structs() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(
            c,
            GatewayConfig {
                interfaces: vec![
                    iface("lan", "veth-lan", &["198.51.100.1/24"], 1),
                    iface("wan", "veth-wan", &["203.0.113.1/24"], 11),
                ],
                routes: vec![RouteConfig {
                    to: cidr("0.0.0.0/0"),
                    via: Some(Ipv4Addr::new(203, 0, 113, 254)),
                    interface: None,
                    metric: 0,
                    line: 16,
                }],
                options: GatewayOptions::default(),
                dhcp_servers: Vec::new(),
            }
        );
        assert_eq!(c.route_interface(&c.routes[0]).unwrap().name, "wan");
        assert_eq!(
            c.summary(),
            "interface lan: device veth-lan, 198.51.100.1/24\n\
             interface wan: device veth-wan, 203.0.113.1/24\n\
             route 0.0.0.0/0 via 203.0.113.254 dev wan metric 0\n\
             options: ttl 64, icmp errors 100/s burst 50, rx batch 64\n"
        );
    }

    #[test]
    fn every_key_is_read() {
        let text = r#"
[gateway]
ttl = 32
icmp_error_rate = 10
icmp_error_burst = 5
icmp_redirects = false
rx_batch = 256

[[interface]]
name = "lan_1"
device = "veth-lan"
addresses = [
    "198.51.100.1/24",
    "198.51.100.2/24",
    "198.18.0.1/31",
]
mtu = 1400
driver = "packet"
vlan = 100
proxy_arp = true
rp_filter = "strict"
mac = "02:00:00:00:00:01"
forward = false

[[interface]]
name = "wan"
device = "veth-wan"
address = "203.0.113.1/32"
driver = "xdp"
rp_filter = "off"

[[route]]
to = "192.0.2.0/24"
via = "198.51.100.254"
interface = "lan_1"
metric = 10

[[route]]
to = "192.0.2.0/24"
interface = "wan"
metric = 20
"#;
        let c = parse(text).unwrap();
        let mut lan = iface(
            "lan_1",
            "veth-lan",
            &["198.51.100.1/24", "198.51.100.2/24", "198.18.0.1/31"],
            9,
        );
        lan.mtu = Some(1400);
        lan.driver = DriverKind::Packet;
        lan.vlan = Some(100);
        lan.proxy_arp = true;
        lan.rp_filter = RpFilter::Strict;
        lan.mac = Some(MacAddr([2, 0, 0, 0, 0, 1]));
        lan.forward = false;
        let mut wan = iface("wan", "veth-wan", &["203.0.113.1/32"], 25);
        wan.driver = DriverKind::Xdp;
        wan.rp_filter = RpFilter::Off;
        assert_eq!(c.interfaces, vec![lan, wan]);
        assert_eq!(
            c.routes,
            vec![
                RouteConfig {
                    to: cidr("192.0.2.0/24"),
                    via: Some(Ipv4Addr::new(198, 51, 100, 254)),
                    interface: Some("lan_1".into()),
                    metric: 10,
                    line: 32,
                },
                RouteConfig {
                    to: cidr("192.0.2.0/24"),
                    via: None,
                    interface: Some("wan".into()),
                    metric: 20,
                    line: 38,
                },
            ]
        );
        assert_eq!(
            c.options,
            GatewayOptions {
                ttl: 32,
                icmp_error_rate: 10,
                icmp_error_burst: 5,
                rx_batch: 256,
            }
        );
        assert_eq!(
            c.summary(),
            "interface lan_1: device veth-lan, 198.51.100.1/24 198.51.100.2/24 198.18.0.1/31, \
             mtu 1400, driver packet, vlan 100, mac 02:00:00:00:00:01, proxy_arp, \
             rp_filter strict, no forwarding\n\
             interface wan: device veth-wan, 203.0.113.1/32, driver xdp, rp_filter off\n\
             route 192.0.2.0/24 via 198.51.100.254 dev lan_1 metric 10\n\
             route 192.0.2.0/24 dev wan metric 20\n\
             options: ttl 32, icmp errors 10/s burst 5, rx batch 256\n"
        );
    }

    #[test]
    fn inline_tables_are_the_same_file() {
        let text = r#"
interface = [
  { name = "lan", device = "veth-lan", address = "198.51.100.1/24" },
  { name = "wan", device = "veth-wan", address = "203.0.113.1/24" },
]
route = [{ to = "0.0.0.0/0", via = "203.0.113.254" }]
"#;
        let mut expected = parse(EXAMPLE).unwrap();
        expected.interfaces[0].line = 3;
        expected.interfaces[1].line = 4;
        expected.routes[0].line = 6;
        assert_eq!(parse(text).unwrap(), expected);
    }

    #[test]
    fn display_names_line_key_and_table() {
        let text = EXAMPLE.replace("198.51.100.1/24", "198.51.100.300/24");
        let e = error(&text, 4, Some("address"));
        assert_eq!(
            e.to_string(),
            "line 4: key \"address\" in [[interface]] \"lan\": 198.51.100.300/24 is not an \
             IPv4 address/prefix (bad IPv4 address before the '/')"
        );
    }

    #[test]
    fn syntax_error_names_its_line() {
        let text = format!("{TWO}\n[[route]\nto = \"0.0.0.0/0\"\n");
        let e = error(&text, 11, None);
        assert!(
            e.to_string()
                .starts_with("line 11: TOML syntax error at column 9"),
            "{e}"
        );
        // An unterminated string: the key is on the line.
        let text = TWO.replace("\"veth-wan\"", "\"veth-wan");
        error_says(
            &text,
            8,
            Some("device"),
            "in [[interface]]: TOML syntax error",
        );
        // A value that is no TOML value at all.
        let text = format!("{TWO}[gateway]\nttl = sixty\n");
        error_says(&text, 11, Some("ttl"), "in [gateway]: TOML syntax error");
    }

    #[test]
    fn duplicate_keys_and_tables_are_syntax_errors() {
        let text = TWO.replace("name = \"wan\"\n", "name = \"wan\"\nname = \"wan2\"\n");
        error_says(&text, 8, Some("name"), "in [[interface]]: is given twice");
        let text = format!("{TWO}[gateway]\nttl = 1\n[gateway]\n");
        error_says(
            &text,
            12,
            Some("gateway"),
            "in the top-level table: is given twice",
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_allowed_ones() {
        let text = TWO.replace("device = \"veth-wan\"", "devise = \"veth-wan\"");
        error_says(
            &text,
            8,
            Some("devise"),
            "in [[interface]] \"wan\": unknown key; allowed here: name, device, address, \
             addresses, mtu, driver, vlan, proxy_arp, rp_filter, mac, forward",
        );
        let text = format!("{TWO}[[route]]\nto = \"0.0.0.0/0\"\ngateway = \"203.0.113.254\"\n");
        error_says(
            &text,
            12,
            Some("gateway"),
            "in [[route]] #1: unknown key; allowed here: to, via, interface, metric",
        );
        let text = format!("{TWO}[gateway]\nttl = 64\nicmp_ratelimit = 1\n");
        error_says(
            &text,
            12,
            Some("icmp_ratelimit"),
            "in [gateway]: unknown key",
        );
        let text = format!("[gatway]\nttl = 64\n{TWO}");
        error_says(
            &text,
            1,
            Some("gatway"),
            "in the top-level table: unknown key; allowed here: interface, route, gateway",
        );
        // A sub-table of an interface is an unknown key of that interface.
        let text = format!("{TWO}[interface.nat]\nmasquerade = true\n");
        error_says(
            &text,
            10,
            Some("nat"),
            "in [[interface]] \"wan\": unknown key",
        );
    }

    #[test]
    fn allowed_key_lists_match_the_structs() {
        fn serde_keys<T: for<'de> Deserialize<'de>>() -> Vec<String> {
            let Err(e) = toml::from_str::<T>("no_such_key = 1") else {
                panic!("accepted an unknown key");
            };
            e.message()
                .split('`')
                .skip(3)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        }
        assert_eq!(serde_keys::<RawFile>(), TOP_KEYS);
        assert_eq!(serde_keys::<RawInterface>(), INTERFACE_KEYS);
        assert_eq!(serde_keys::<RawRoute>(), ROUTE_KEYS);
        assert_eq!(serde_keys::<RawGateway>(), GATEWAY_KEYS);
        assert_eq!(serde_keys::<RawDhcpServer>(), DHCP_SERVER_KEYS);
        assert_eq!(serde_keys::<RawReservation>(), RESERVATION_KEYS);
    }

    #[test]
    fn wrong_types_name_the_key() {
        let text = TWO.replace("name = \"wan\"", "name = \"wan\"\nmtu = \"1500\"");
        error_says(
            &text,
            8,
            Some("mtu"),
            "in [[interface]] \"wan\": invalid type: string \"1500\", expected an integer",
        );
        let text = TWO.replace("name = \"wan\"", "name = \"wan\"\nforward = \"yes\"");
        error_says(&text, 8, Some("forward"), "expected a boolean");
        let text = TWO.replace(
            "address = \"203.0.113.1/24\"",
            "addresses = \"203.0.113.1/24\"",
        );
        error_says(&text, 9, Some("addresses"), "expected an array");
        // The element of a multi-line array, on its own line.
        let text = TWO.replace(
            "address = \"203.0.113.1/24\"",
            "addresses = [\n  \"203.0.113.1/24\",\n  24,\n]",
        );
        error_says(&text, 11, Some("addresses"), "expected a string");
        let text = format!("{TWO}[gateway]\nttl = 6.4\n");
        error_says(
            &text,
            11,
            Some("ttl"),
            "in [gateway]: invalid type: floating point",
        );
        error_says("interface = 1\n", 1, Some("interface"), "expected an array");
        error_says(
            "[interface]\nname = \"lan\"\n",
            1,
            Some("interface"),
            "invalid type: table",
        );
        error_says(
            "gateway = 1\n",
            1,
            Some("gateway"),
            "in the top-level table: invalid type: integer `1`, expected a table",
        );
    }

    #[test]
    fn interfaces_are_required_and_bounded() {
        let e = parse("").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (None, None));
        assert!(e.message.contains("at least one"), "{e}");
        let e = parse("[gateway]\nttl = 64\n").unwrap_err();
        assert!(e.message.contains("no [[interface]]"), "{e}");

        let mut text = String::new();
        for i in 0..=MAX_INTERFACES {
            text += &format!(
                "[[interface]]\nname = \"if{i}\"\ndevice = \"dev{i}\"\naddress = \"198.18.{i}.1/24\"\n"
            );
        }
        error_says(
            &text,
            4 * MAX_INTERFACES + 1,
            None,
            "more than 64 [[interface]]",
        );
        // Exactly the limit is fine.
        let last = text.rfind("[[interface]]").unwrap();
        assert_eq!(
            parse(&text[..last]).unwrap().interfaces.len(),
            MAX_INTERFACES
        );
    }

    #[test]
    fn interface_names_are_checked() {
        let missing = TWO.replace("name = \"wan\"\n", "");
        error_says(&missing, 6, Some("name"), "in [[interface]] #2: is missing");
        for bad in ["", "wan.0", "sixteen_chars_xx", "wän", "w an"] {
            let text = TWO.replace("name = \"wan\"", &format!("name = \"{bad}\""));
            error_says(&text, 7, Some("name"), "is not 1 to 15 of A-Z a-z 0-9 _ -");
        }
        let text = TWO.replace("name = \"wan\"", "name = \"fifteen_chars-x\"");
        assert!(parse(&text).is_ok());
        let text = TWO.replace("name = \"wan\"", "name = \"lan\"");
        error_says(
            &text,
            7,
            Some("name"),
            "\"lan\" is already the name of the [[interface]] at line 1",
        );
    }

    #[test]
    fn devices_are_checked() {
        let missing = TWO.replace("device = \"veth-wan\"\n", "");
        error_says(
            &missing,
            6,
            Some("device"),
            "in [[interface]] \"wan\": is missing",
        );
        for (bad, says) in [
            ("", "is empty"),
            ("veth-wan-0123456", "longer than 15 bytes"),
            ("eth0:1", "cannot contain"),
            ("a/b", "cannot contain"),
            ("veth wan", "cannot contain"),
            ("..", "not a usable"),
        ] {
            let text = TWO.replace("\"veth-wan\"", &format!("\"{bad}\""));
            error_says(&text, 8, Some("device"), says);
        }
        let text = TWO.replace("\"veth-wan\"", "\"veth-lan\"");
        error_says(
            &text,
            8,
            Some("device"),
            "\"veth-lan\" is already taken by [[interface]] \"lan\" (line 1)",
        );
    }

    #[test]
    fn exactly_one_of_address_and_addresses() {
        let neither = TWO.replace("address = \"203.0.113.1/24\"\n", "");
        error_says(&neither, 6, Some("address"), "is missing: give address");
        let both = TWO.replace(
            "address = \"203.0.113.1/24\"",
            "address = \"203.0.113.1/24\"\naddresses = [\"203.0.113.2/24\"]",
        );
        error_says(&both, 10, Some("addresses"), "is given with address");
        let empty = TWO.replace("address = \"203.0.113.1/24\"", "addresses = []");
        error_says(&empty, 9, Some("addresses"), "is empty");
    }

    #[test]
    fn addresses_must_be_host_addresses() {
        for (bad, says) in [
            ("203.0.113.1", "missing '/'"),
            ("203.0.113.1/33", "greater than 32"),
            ("203.0.113.1/0", "prefix length 0"),
            ("203.0.113.0/24", "is the network address"),
            ("203.0.113.255/24", "is the broadcast address"),
            ("203.0.113.127/25", "is the broadcast address"),
            ("0.0.0.1/8", "0.0.0.0/8"),
            ("127.0.0.2/8", "loopback"),
            ("224.0.0.1/24", "not a unicast"),
            ("255.255.255.255/32", "not a unicast"),
        ] {
            let text = TWO.replace("203.0.113.1/24", bad);
            error_says(&text, 9, Some("address"), says);
        }
        // RFC 3021: both ends of a /31 are hosts; a /32 is one host.
        for good in [
            "203.0.113.0/31",
            "203.0.113.1/31",
            "203.0.113.0/32",
            "203.0.113.255/32",
        ] {
            let text = TWO.replace("203.0.113.1/24", good);
            assert!(parse(&text).is_ok(), "{good}");
        }
        // In an array, the error points at the element's own line.
        let text = TWO.replace(
            "address = \"203.0.113.1/24\"",
            "addresses = [\n  \"203.0.113.1/24\",\n  \"203.0.113.0/24\",\n]",
        );
        error_says(
            &text,
            11,
            Some("addresses"),
            "203.0.113.0/24 is the network address",
        );
    }

    #[test]
    fn addresses_are_unique_and_subnets_disjoint() {
        let twice = TWO.replace(
            "address = \"203.0.113.1/24\"",
            "addresses = [\"203.0.113.1/24\", \"203.0.113.1/25\"]",
        );
        error_says(&twice, 9, Some("addresses"), "203.0.113.1 is listed twice");
        // Secondary addresses on one subnet of one interface are fine.
        let secondary = TWO.replace(
            "address = \"203.0.113.1/24\"",
            "addresses = [\"203.0.113.1/24\", \"203.0.113.2/24\"]",
        );
        assert!(parse(&secondary).is_ok());

        let same = TWO.replace("203.0.113.1/24", "198.51.100.1/25");
        error_says(
            &same,
            9,
            Some("address"),
            "198.51.100.1 is already an address of [[interface]] \"lan\" (line 1)",
        );
        for overlapping in ["198.51.100.129/25", "198.51.100.9/32", "198.51.0.1/16"] {
            let text = TWO.replace("203.0.113.1/24", overlapping);
            error_says(
                &text,
                9,
                Some("address"),
                &format!(
                    "in [[interface]] \"wan\": {overlapping} overlaps 198.51.100.1/24, the subnet of \
                     [[interface]] \"lan\" (line 1)"
                ),
            );
        }
    }

    #[test]
    fn interface_options_are_range_checked() {
        let with = |line: &str| TWO.replace("name = \"wan\"", &format!("name = \"wan\"\n{line}"));
        for (line, key, says) in [
            ("mtu = 67", "mtu", "67 is out of range 68..=65535"),
            ("mtu = 65536", "mtu", "65536 is out of range 68..=65535"),
            ("mtu = -1", "mtu", "out of range"),
            (
                "mtu = 99999999999999999999",
                "mtu",
                "99999999999999999999 is out of range 68..=65535",
            ),
            ("vlan = 0", "vlan", "0 is out of range 1..=4094"),
            ("vlan = 4095", "vlan", "out of range 1..=4094"),
            (
                "driver = \"af_xdp\"",
                "driver",
                "\"af_xdp\" is not one of: auto, xdp, packet, tap",
            ),
            (
                "rp_filter = \"Loose\"",
                "rp_filter",
                "\"Loose\" is not one of: strict, loose, off",
            ),
            ("mac = \"02:00:00:00:00\"", "mac", "invalid MAC address"),
            (
                "mac = \"01:00:5e:00:00:01\"",
                "mac",
                "is a multicast address",
            ),
            (
                "mac = \"ff:ff:ff:ff:ff:ff\"",
                "mac",
                "is a multicast address",
            ),
            ("mac = \"00:00:00:00:00:00\"", "mac", "not a usable"),
        ] {
            error_says(&with(line), 8, Some(key), says);
        }
        for line in ["mtu = 68", "mtu = 65535", "vlan = 1", "vlan = 4094"] {
            assert!(parse(&with(line)).is_ok(), "{line}");
        }
    }

    #[test]
    fn route_destinations_are_networks() {
        let route = |body: &str| format!("{TWO}\n[[route]]\n{body}\n");
        error_says(
            &route("via = \"203.0.113.254\""),
            11,
            Some("to"),
            "in [[route]] #1: is missing",
        );
        error_says(
            &route("to = \"10.0.0.1\"\nvia = \"203.0.113.254\""),
            12,
            Some("to"),
            "missing '/'",
        );
        error_says(
            &route("to = \"10.1.2.3/8\"\nvia = \"203.0.113.254\""),
            12,
            Some("to"),
            "10.1.2.3/8 has host bits set; did you mean 10.0.0.0/8?",
        );
        error_says(
            &route("to = \"0.0.0.1/0\"\nvia = \"203.0.113.254\""),
            12,
            Some("to"),
            "did you mean 0.0.0.0/0?",
        );
    }

    #[test]
    fn routes_need_a_reachable_next_hop_or_an_interface() {
        let route = |body: &str| format!("{TWO}\n[[route]]\nto = \"192.0.2.0/24\"\n{body}\n");
        error_says(
            &route("metric = 1"),
            11,
            Some("via"),
            "in [[route]] to 192.0.2.0/24: is missing, and so is interface",
        );
        error_says(
            &route("interface = \"dmz\""),
            13,
            Some("interface"),
            "no [[interface]] is named \"dmz\"; there are: lan, wan",
        );
        error_says(
            &route("via = \"203.0.113\""),
            13,
            Some("via"),
            "is not an IPv4 address",
        );
        error_says(
            &route("via = \"203.0.113.1\""),
            13,
            Some("via"),
            "203.0.113.1 is our own address, on [[interface]] \"wan\"",
        );
        error_says(
            &route("via = \"198.18.0.1\""),
            13,
            Some("via"),
            "198.18.0.1 is not on any interface's subnet (lan 198.51.100.1/24; wan 203.0.113.1/24)",
        );
        // On-link, but of the other interface than the one named.
        error_says(
            &route("via = \"198.51.100.254\"\ninterface = \"wan\""),
            13,
            Some("via"),
            "198.51.100.254 is not on the subnet of [[interface]] \"wan\" (wan 203.0.113.1/24)",
        );
        error_says(
            &route("via = \"203.0.113.0\""),
            13,
            Some("via"),
            "is the network address",
        );
        error_says(
            &route("via = \"203.0.113.255\""),
            13,
            Some("via"),
            "is the broadcast address",
        );
        for ok in [
            "via = \"198.51.100.254\"",
            "via = \"198.51.100.254\"\ninterface = \"lan\"",
            "interface = \"wan\"",
        ] {
            assert!(parse(&route(ok)).is_ok(), "{ok}");
        }
    }

    #[test]
    fn one_route_per_destination_and_metric() {
        let routes = format!(
            "{TWO}\n[[route]]\nto = \"0.0.0.0/0\"\nvia = \"203.0.113.254\"\n\n\
             [[route]]\nto = \"0.0.0.0/0\"\nvia = \"198.51.100.254\"\n"
        );
        error_says(
            &routes,
            16,
            Some("to"),
            "0.0.0.0/0 with metric 0 is already routed by the [[route]] at line 11",
        );
        let backup = routes.replace(
            "via = \"198.51.100.254\"",
            "via = \"198.51.100.254\"\nmetric = 100",
        );
        let c = parse(&backup).unwrap();
        assert_eq!(c.routes[1].metric, 100);
        let big = backup.replace("metric = 100", "metric = 4294967296");
        error_says(&big, 18, Some("metric"), "out of range 0..=4294967295");
    }

    #[test]
    fn gateway_options_are_checked() {
        let with = |body: &str| format!("{TWO}\n[gateway]\n{body}\n");
        for (body, key, says) in [
            ("ttl = 0", "ttl", "0 is out of range 1..=255"),
            ("ttl = 256", "ttl", "out of range 1..=255"),
            ("icmp_error_rate = -1", "icmp_error_rate", "out of range"),
            (
                "icmp_error_burst = 0",
                "icmp_error_burst",
                "lets no ICMP error out",
            ),
            (
                "icmp_redirects = true",
                "icmp_redirects",
                "ICMP redirects are not implemented",
            ),
            ("rx_batch = 0", "rx_batch", "0 is out of range 1..=4096"),
            ("rx_batch = 4097", "rx_batch", "out of range 1..=4096"),
        ] {
            error_says(&with(body), 12, Some(key), says);
        }
        let off = parse(&with(
            "icmp_error_rate = 0\nicmp_error_burst = 0\nicmp_redirects = false",
        ))
        .unwrap();
        assert_eq!(
            (off.options.icmp_error_rate, off.options.icmp_error_burst),
            (0, 0)
        );
        assert_eq!(
            parse(&with("ttl = 255\nrx_batch = 4096"))
                .unwrap()
                .options
                .rx_batch,
            4096
        );
    }

    #[test]
    fn later_errors_are_worded_alike() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(
            c.interfaces[1]
                .error(Some("device"), "no such device")
                .to_string(),
            "line 11: key \"device\" in [[interface]] \"wan\": no such device"
        );
        assert_eq!(
            c.routes[0].error(None, "unreachable").to_string(),
            "line 16: in [[route]] to 0.0.0.0/0: unreachable"
        );
    }

    #[test]
    fn load_reports_io_errors_without_a_line() {
        let e = load(Path::new("/nonexistent/ringstack-gateway.toml")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (None, None));
        assert!(e.message.starts_with("cannot read /nonexistent/"), "{e}");
    }

    /// What every accepted config holds, whatever the file said.
    fn check_invariants(c: &GatewayConfig) {
        assert!((1..=MAX_INTERFACES).contains(&c.interfaces.len()));
        for (n, i) in c.interfaces.iter().enumerate() {
            assert!(valid_name(&i.name) && device_problem(&i.device).is_none());
            assert!(!i.addresses.is_empty());
            for other in &c.interfaces[..n] {
                assert!(other.name != i.name && other.device != i.device);
                for a in &i.addresses {
                    assert!(other.addresses.iter().all(|b| !overlap(a, b)));
                }
            }
        }
        for r in &c.routes {
            assert_eq!(r.to.addr(), r.to.network());
            assert!(r.via.is_some() || r.interface.is_some());
            let out = c.route_interface(r).expect("a route leaves somewhere");
            if let Some(via) = r.via {
                assert!(out.addresses.iter().any(|a| a.contains(via)));
            }
        }
        let _ = c.summary();
    }

    #[test]
    fn garbled_files_give_errors_not_panics() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let base = r#"[[interface]]
name = "lan"
device = "veth-lan"
addresses = ["198.51.100.1/24", "198.18.0.1/31"]
mtu = 1500
driver = "auto"
vlan = 100
proxy_arp = false
rp_filter = "loose"
mac = "02:00:00:00:00:01"
forward = true

[[interface]]
name = "wan"
device = "veth-wan"
address = "203.0.113.1/24"

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.254"
interface = "wan"
metric = 0

[gateway]
ttl = 64
icmp_error_rate = 100
icmp_error_burst = 50
icmp_redirects = false
rx_batch = 64
"#;
        check_invariants(&parse(base).unwrap());
        // Bytes that mean something to TOML, and some that break UTF-8.
        const NOISE: &[u8] = b"[]{}\"'=#.,\n\\ 019/:-_aZ\t\r\x00\xff\xc3";
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6761_7465);
        let mut accepted = 0;
        for round in 0..3000 {
            let mut bytes = base.as_bytes().to_vec();
            for _ in 0..=rng.next_u32() % 4 {
                let r = rng.next_u32() as usize;
                let at = r % (bytes.len() + 1);
                let lines: Vec<usize> = core::iter::once(0)
                    .chain(
                        bytes
                            .iter()
                            .enumerate()
                            .filter(|(_, &b)| b == b'\n')
                            .map(|(i, _)| i + 1),
                    )
                    .filter(|&i| i < bytes.len())
                    .collect();
                match rng.next_u32() % 7 {
                    0 if !lines.is_empty() => {
                        // Delete a line.
                        let start = lines[r % lines.len()];
                        let end = bytes[start..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(bytes.len(), |n| start + n + 1);
                        bytes.drain(start..end);
                    }
                    1 if !lines.is_empty() => {
                        // Repeat a line somewhere else.
                        let start = lines[r % lines.len()];
                        let end = bytes[start..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(bytes.len(), |n| start + n + 1);
                        let line = bytes[start..end].to_vec();
                        let to = lines[rng.next_u32() as usize % lines.len()];
                        bytes.splice(to..to, line);
                    }
                    2 if at + 1 < bytes.len() => bytes.swap(at, at + 1),
                    3 => bytes.truncate(at),
                    4 => bytes.insert(at, NOISE[rng.next_u32() as usize % NOISE.len()]),
                    5 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => {
                        bytes[at] = NOISE[rng.next_u32() as usize % NOISE.len()]
                    }
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            match parse(&text) {
                Ok(c) => {
                    accepted += 1;
                    check_invariants(&c);
                }
                Err(e) => {
                    let shown = e.to_string();
                    if let Some(line) = e.line {
                        let lines = text.split('\n').count();
                        assert!(
                            (1..=lines).contains(&line),
                            "round {round}: line {line} of {lines}: {shown}\n{text}"
                        );
                    }
                }
            }
        }
        // Some mutations (in comments, in values' digits) keep the file valid:
        // the invariants were checked on more than the base file.
        assert!(accepted > 0);
    }
}
