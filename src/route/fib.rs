//! The forwarding information base: every route the stack knows (the RIB,
//! kept per prefix) and, for each prefix, the best one in a
//! longest-prefix-match table that the per-packet paths consult.
//!
//! Local delivery, on-link destinations and gateways all come out of the one
//! lookup as a [`NextHop`]: an address of ours is a `/32` [`RouteKind::Local`]
//! route, an interface's subnet a [`RouteKind::Connected`] one, and
//! configuration adds [`RouteKind::Static`] ones (the default route among
//! them). Every change bumps [`Fib::generation`], so a cache of a lookup
//! (the TCP output's last destination) knows when it went stale.

use super::lpm::PrefixTable;
use crate::ip::cidr::Ipv4Cidr;
use crate::stack::IfaceId;
use core::net::Ipv4Addr;
use std::collections::BTreeMap;

/// Where a route came from. At one prefix a local route beats a connected
/// one, which beats a static one; then the lower metric wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// One of our own addresses.
    Local,
    /// An interface's subnet.
    Connected,
    /// Configured.
    Static,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Local => "local",
            RouteKind::Connected => "connected",
            RouteKind::Static => "static",
        }
    }
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// The destination prefix; host bits are always clear.
    pub to: Ipv4Cidr,
    /// The gateway, `None` for destinations on the link itself.
    pub via: Option<Ipv4Addr>,
    pub iface: IfaceId,
    pub metric: u32,
    pub kind: RouteKind,
}

/// What one lookup answers: deliver here, or send out an interface to the
/// destination itself or to a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    Local,
    Attached(IfaceId),
    Gateway(IfaceId, Ipv4Addr),
}

impl NextHop {
    /// The interface a packet leaves by and the address whose MAC it needs.
    #[inline]
    pub fn egress(self, dst: Ipv4Addr) -> Option<(IfaceId, Ipv4Addr)> {
        // Local addresses have no egress.
        match self {
            NextHop::Local => None,
            NextHop::Attached(i) => Some((i, dst)),
            NextHop::Gateway(i, gw) => Some((i, gw)),
        }
    }
}

/// Why a route could not be added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FibError {
    /// The same prefix, kind and metric are there already.
    Exists,
    /// No such route.
    NotFound,
}

impl core::fmt::Display for FibError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FibError::Exists => "a route to that prefix with that metric exists already",
            FibError::NotFound => "no such route",
        })
    }
}
impl std::error::Error for FibError {}

#[derive(Debug, Default)]
pub struct Fib {
    rib: BTreeMap<(u32, u8), Vec<Route>>,
    table: PrefixTable<NextHop>,
    generation: u64,
    has_default: bool,
}

fn key(c: Ipv4Cidr) -> (u32, u8) {
    (u32::from(c.network()), c.prefix_len())
}

impl Fib {
    pub fn new() -> Fib {
        Fib::default()
    }

    /// Longest-prefix match.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<NextHop> {
        self.table.lookup(dst)
    }

    /// Whether a default route (0.0.0.0/0) is installed: then every
    /// address has a route, and a loose reverse-path check needs no lookup.
    #[inline]
    pub fn has_default(&self) -> bool {
        self.has_default
    }

    /// Bumped by every change of the table.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Add a route. Its prefix's host bits are cleared.
    pub fn add(&mut self, mut route: Route) -> Result<(), FibError> {
        route.to = Ipv4Cidr::new(route.to.network(), route.to.prefix_len()).expect("len ≤ 32");
        let k = key(route.to);
        let list = self.rib.entry(k).or_default();
        if list.iter().any(|r| {
            r.kind == route.kind
                && r.metric == route.metric
                && (r.kind == RouteKind::Static || r.iface == route.iface)
        }) {
            return Err(FibError::Exists);
        }
        list.push(route);
        self.refresh(k);
        Ok(())
    }

    /// Remove every route that `matches` keeps; returns how many went.
    pub fn remove_where(&mut self, mut matches: impl FnMut(&Route) -> bool) -> usize {
        let mut touched = Vec::new();
        let mut n = 0;
        for (k, list) in self.rib.iter_mut() {
            let before = list.len();
            list.retain(|r| !matches(r));
            if list.len() != before {
                n += before - list.len();
                touched.push(*k);
            }
        }
        for k in touched {
            self.refresh(k);
        }
        n
    }

    /// Every route, by prefix then preference.
    pub fn routes(&self) -> Vec<Route> {
        self.rib.values().flatten().copied().collect()
    }

    /// The routes the lookup uses: the best at each prefix.
    pub fn selected(&self) -> Vec<Route> {
        self.rib.values().filter_map(|l| best(l)).collect()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn refresh(&mut self, k: (u32, u8)) {
        self.generation += 1;
        if k == (0, 0) {
            self.has_default = self
                .rib
                .get(&k)
                .is_some_and(|l| l.iter().any(|r| r.kind != RouteKind::Local));
        }
        let addr = Ipv4Addr::from(k.0);
        match self.rib.get(&k).and_then(|l| best(l)) {
            Some(r) => {
                let hop = match (r.kind, r.via) {
                    (RouteKind::Local, _) => NextHop::Local,
                    (_, Some(gw)) => NextHop::Gateway(r.iface, gw),
                    (_, None) => NextHop::Attached(r.iface),
                };
                let _ = self
                    .table
                    .insert(addr, k.1, hop)
                    .expect("a RIB key is at most /32");
            }
            None => {
                self.rib.remove(&k);
                self.table.remove(addr, k.1);
            }
        }
    }
}

fn best(list: &[Route]) -> Option<Route> {
    // `min_by_key` keeps the first of equals: the earlier route wins a tie.
    list.iter().min_by_key(|r| (r.kind, r.metric)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn route(to: &str, via: Option<&str>, iface: u16, metric: u32, kind: RouteKind) -> Route {
        Route {
            to: cidr(to),
            via: via.map(ip),
            iface: IfaceId(iface),
            metric,
            kind,
        }
    }

    #[test]
    fn the_longest_prefix_wins_and_local_beats_connected() {
        let mut f = Fib::new();
        f.add(route("198.18.0.0/24", None, 0, 0, RouteKind::Connected))
            .unwrap();
        f.add(route("198.18.0.1/32", None, 0, 0, RouteKind::Local))
            .unwrap();
        f.add(route(
            "0.0.0.0/0",
            Some("198.51.100.254"),
            1,
            0,
            RouteKind::Static,
        ))
        .unwrap();
        assert_eq!(f.lookup(ip("198.18.0.1")), Some(NextHop::Local));
        assert_eq!(
            f.lookup(ip("198.18.0.7")),
            Some(NextHop::Attached(IfaceId(0)))
        );
        assert_eq!(
            f.lookup(ip("192.0.2.1")),
            Some(NextHop::Gateway(IfaceId(1), ip("198.51.100.254")))
        );
    }

    #[test]
    fn the_lower_metric_wins_and_removing_it_restores_the_other() {
        let mut f = Fib::new();
        f.add(route(
            "0.0.0.0/0",
            Some("198.51.100.1"),
            1,
            10,
            RouteKind::Static,
        ))
        .unwrap();
        f.add(route(
            "0.0.0.0/0",
            Some("198.51.100.2"),
            1,
            5,
            RouteKind::Static,
        ))
        .unwrap();
        assert_eq!(
            f.add(route(
                "0.0.0.0/0",
                Some("198.51.100.3"),
                1,
                5,
                RouteKind::Static
            )),
            Err(FibError::Exists)
        );
        let g = f.generation();
        assert_eq!(
            f.lookup(ip("192.0.2.1")),
            Some(NextHop::Gateway(IfaceId(1), ip("198.51.100.2")))
        );
        assert_eq!(f.remove_where(|r| r.metric == 5), 1);
        assert!(f.generation() > g);
        assert_eq!(
            f.lookup(ip("192.0.2.1")),
            Some(NextHop::Gateway(IfaceId(1), ip("198.51.100.1")))
        );
        assert_eq!(f.remove_where(|_| true), 1);
        assert_eq!(f.lookup(ip("192.0.2.1")), None);
        assert!(f.is_empty());
    }

    #[test]
    fn host_bits_of_a_route_are_cleared() {
        let mut f = Fib::new();
        f.add(route("203.0.113.77/24", None, 2, 0, RouteKind::Static))
            .unwrap();
        assert_eq!(f.routes()[0].to, cidr("203.0.113.0/24"));
        assert_eq!(
            f.lookup(ip("203.0.113.1")),
            Some(NextHop::Attached(IfaceId(2)))
        );
    }
}
