//! From a checked [`GatewayConfig`] to a running [`Stack`], and from one
//! config to the next on reload, without touching a device: the binary
//! opens the devices and hands over what they are ([`Link`]); everything
//! here is testable in memory.

use super::config::{self, GatewayConfig};
use crate::eth::MacAddr;
use crate::stack::{Config, IfaceId, InterfaceConfig, RpFilter, Stack};

/// What an opened device says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The device's MAC, used when the config names none.
    pub mac: Option<MacAddr>,
    /// The device's L3 MTU.
    pub mtu: usize,
}

fn rp_filter(r: config::RpFilter) -> RpFilter {
    match r {
        config::RpFilter::Strict => RpFilter::Strict,
        config::RpFilter::Loose => RpFilter::Loose,
        config::RpFilter::Off => RpFilter::Off,
    }
}

/// The stack's view of `[[interface]]` `c` on a device `link`.
pub fn interface_config(
    c: &config::InterfaceConfig,
    link: &Link,
) -> Result<InterfaceConfig, String> {
    let mac = c.mac.or(link.mac).ok_or_else(|| {
        format!(
            "interface {:?} (line {}): device {} has no MAC address; set mac = \"…\"",
            c.name, c.line, c.device
        )
    })?;
    let mtu = match c.mtu {
        Some(m) if usize::from(m) > link.mtu => {
            return Err(format!(
                "interface {:?} (line {}): mtu {m} is larger than the MTU of device {}, {}",
                c.name, c.line, c.device, link.mtu
            ))
        }
        Some(m) => usize::from(m),
        None => link.mtu,
    };
    Ok(InterfaceConfig {
        name: c.name.clone(),
        mac,
        addrs: c.addresses.clone(),
        mtu,
        vlan: c.vlan,
        proxy_arp: c.proxy_arp,
        rp_filter: rp_filter(c.rp_filter),
        forward: c.forward,
    })
}

/// A stack with `cfg`'s interfaces (interface *i* on `links[i]`), addresses
/// and routes, forwarding if `forwarding`. `base` supplies what the file
/// does not (seed, TCP configuration, neighbour cache limits).
pub fn build(
    cfg: &GatewayConfig,
    links: &[Link],
    mut base: Config,
    forwarding: bool,
) -> Result<Stack, String> {
    if links.len() != cfg.interfaces.len() {
        return Err(format!(
            "{} devices for {} interfaces",
            links.len(),
            cfg.interfaces.len()
        ));
    }
    let ifs: Vec<InterfaceConfig> = cfg
        .interfaces
        .iter()
        .zip(links)
        .map(|(c, l)| interface_config(c, l))
        .collect::<Result<_, _>>()?;
    let first = &ifs[0];
    base.mac = first.mac;
    base.addrs = first.addrs.clone();
    base.gateway = None;
    base.mtu = first.mtu;
    base.vlan = first.vlan;
    base.ttl = cfg.options.ttl;
    base.icmp_error_rate = cfg.options.icmp_error_rate;
    base.icmp_error_burst = cfg.options.icmp_error_burst;
    base.rx_batch = cfg.options.rx_batch;
    let mut stack = Stack::new(base).map_err(|e| format!("interface {:?}: {e}", first.name))?;
    stack
        .configure_interface(IfaceId(0), first)
        .map_err(|e| format!("interface {:?}: {e}", first.name))?;
    for c in &ifs[1..] {
        stack
            .add_interface(c.clone())
            .map_err(|e| format!("interface {:?}: {e}", c.name))?;
    }
    for (i, c) in cfg.interfaces.iter().enumerate() {
        if c.dhcp {
            let client = crate::dhcp::ClientConfig {
                // One router, its own links: nothing to desynchronise from
                // (RFC 2131 §4.4.1's 1-10 s wait is for fleets booting at
                // once).
                init_delay: (crate::time::Duration::ZERO, crate::time::Duration::ZERO),
                ..Default::default()
            };
            stack
                .enable_dhcp(IfaceId(i as u16), client)
                .map_err(|e| format!("interface {:?}: {e}", c.name))?;
        }
    }
    add_routes(&mut stack, cfg)?;
    stack.set_forwarding(forwarding);
    Ok(stack)
}

fn add_routes(stack: &mut Stack, cfg: &GatewayConfig) -> Result<(), String> {
    for r in &cfg.routes {
        let iface = match &r.interface {
            Some(name) => Some(
                stack
                    .interface_by_name(name)
                    .ok_or_else(|| format!("route on line {}: no interface {name:?}", r.line))?,
            ),
            None => None,
        };
        stack
            .add_route(r.to, r.via, iface, r.metric)
            .map_err(|e| format!("route on line {}: {e}", r.line))?;
    }
    Ok(())
}

/// Apply `new` to a stack built from `old`: interface features, MTUs,
/// addresses and static routes change in place, so established
/// connections, sockets and neighbour caches stay. The set of interfaces
/// (names, devices, drivers, order) cannot change without a restart: that
/// is an error and nothing is applied. Returns a line per change.
pub fn reload(
    stack: &mut Stack,
    old: &GatewayConfig,
    new: &GatewayConfig,
    links: &[Link],
) -> Result<Vec<String>, String> {
    let same_set = old.interfaces.len() == new.interfaces.len()
        && old.interfaces.iter().zip(&new.interfaces).all(|(a, b)| {
            a.name == b.name
                && a.device == b.device
                && a.driver == b.driver
                && a.mac == b.mac
                && a.dhcp == b.dhcp
        });
    if !same_set {
        return Err(
            "the interfaces (names, devices, drivers, MACs, dhcp or their order) changed: restart to apply".into(),
        );
    }
    let ifs: Vec<InterfaceConfig> = new
        .interfaces
        .iter()
        .zip(links)
        .map(|(c, l)| interface_config(c, l))
        .collect::<Result<_, _>>()?;
    let mut changes = Vec::new();
    for (i, (c, o)) in ifs.iter().zip(&old.interfaces).enumerate() {
        let id = IfaceId(i as u16);
        if c.vlan != o.vlan {
            return Err(format!(
                "interface {:?}: the VLAN changed: restart to apply",
                c.name
            ));
        }
        stack
            .configure_interface(id, c)
            .map_err(|e| format!("interface {:?}: {e}", c.name))?;
        if o.dhcp {
            // The lease owns the addresses.
            continue;
        }
        let have: Vec<_> = stack.interface_addresses(id).to_vec();
        for a in have.iter().filter(|a| !c.addrs.contains(a)) {
            stack
                .remove_address_on(id, a.addr())
                .map_err(|e| e.to_string())?;
            changes.push(format!("{}: removed {a}", c.name));
        }
        for a in c.addrs.iter().filter(|a| !have.contains(a)) {
            stack.add_address_on(id, *a).map_err(|e| e.to_string())?;
            changes.push(format!("{}: added {a}", c.name));
        }
    }
    stack.clear_static_routes();
    if let Err(e) = add_routes(stack, new) {
        // Put the old routes back: a half-applied table is worse than the
        // old one.
        stack.clear_static_routes();
        let _ = add_routes(stack, old);
        return Err(e);
    }
    if old.routes != new.routes {
        changes.push(format!("{} static routes", new.routes.len()));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::fib::NextHop;
    use core::net::Ipv4Addr;

    const FILE: &str = r#"
[[interface]]
name = "lan"
device = "veth-lan"
address = "198.18.7.1/24"

[[interface]]
name = "wan"
device = "veth-wan"
addresses = ["203.0.113.1/24", "203.0.113.2/24"]
rp_filter = "strict"

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.254"
"#;

    fn links() -> Vec<Link> {
        vec![
            Link {
                mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
                mtu: 1500,
            },
            Link {
                mac: Some(MacAddr([2, 0, 0, 0, 0, 2])),
                mtu: 1500,
            },
        ]
    }

    fn base() -> Config {
        Config::new(MacAddr([2, 0, 0, 0, 0, 9]), "192.0.2.1/24".parse().unwrap())
    }

    #[test]
    fn a_config_file_becomes_interfaces_addresses_and_routes() {
        let cfg = config::parse(FILE).unwrap();
        let s = build(&cfg, &links(), base(), true).unwrap();
        assert_eq!(s.interface_count(), 2);
        assert_eq!(s.interface_by_name("wan"), Some(IfaceId(1)));
        assert_eq!(s.interface_addresses(IfaceId(1)).len(), 2);
        assert_eq!(s.addresses(), &["198.18.7.1/24".parse().unwrap()]);
        assert_eq!(
            s.route_lookup(Ipv4Addr::new(192, 0, 2, 9)),
            Some(NextHop::Gateway(
                IfaceId(1),
                Ipv4Addr::new(203, 0, 113, 254)
            ))
        );
        assert!(s.forwarding());
    }

    #[test]
    fn an_mtu_above_the_devices_is_refused() {
        let text = FILE.replace("name = \"lan\"", "name = \"lan\"\nmtu = 9000");
        let cfg = config::parse(&text).unwrap();
        let e = build(&cfg, &links(), base(), true).unwrap_err();
        assert!(e.contains("mtu 9000") && e.contains("1500"), "{e}");
    }

    #[test]
    fn reload_changes_addresses_and_routes_in_place_and_refuses_new_interfaces() {
        let old = config::parse(FILE).unwrap();
        let mut s = build(&old, &links(), base(), true).unwrap();
        let h = s.udp_bind("198.18.7.1:53".parse().unwrap()).unwrap();
        let text = FILE
            .replace("\"203.0.113.2/24\"", "\"203.0.113.3/24\"")
            .replace("0.0.0.0/0", "192.0.2.0/24");
        let new = config::parse(&text).unwrap();
        let changes = reload(&mut s, &old, &new, &links()).unwrap();
        assert!(changes.iter().any(|c| c.contains("removed 203.0.113.2/24")));
        assert!(changes.iter().any(|c| c.contains("added 203.0.113.3/24")));
        assert_eq!(s.route_lookup(Ipv4Addr::new(198, 51, 100, 1)), None);
        assert!(s.route_lookup(Ipv4Addr::new(192, 0, 2, 1)).is_some());
        assert!(s.udp_local_addr(h).is_ok(), "sockets survive a reload");
        let more = format!("{text}\n[[interface]]\nname = \"dmz\"\ndevice = \"veth-dmz\"\naddress = \"198.51.100.1/24\"\n");
        let three = config::parse(&more).unwrap();
        let e = reload(&mut s, &new, &three, &links()).unwrap_err();
        assert!(e.contains("restart"), "{e}");
        assert!(s.route_lookup(Ipv4Addr::new(192, 0, 2, 1)).is_some());
    }
}
