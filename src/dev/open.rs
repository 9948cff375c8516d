//! Open an interface by name with a driver chosen at run time: what the
//! binary's `--driver auto|xdp|packet|tap` does, for library users.

use super::packet::{PacketConfig, PacketDevice};
use super::tap::TapDevice;
use super::xdp::{XdpConfig, XdpDevice};
use super::{sys, Device};
use std::io;

/// Which driver [`open`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// AF_XDP, falling back to AF_PACKET (with a logged reason) where
    /// AF_XDP cannot start.
    #[default]
    Auto,
    /// AF_XDP only.
    Xdp,
    /// AF_PACKET.
    Packet,
    /// A TAP device, created if it does not exist.
    Tap,
}

impl Driver {
    /// "auto", "xdp", "packet" or "tap".
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::Xdp => "xdp",
            Driver::Packet => "packet",
            Driver::Tap => "tap",
        }
    }
}

impl core::fmt::Display for Driver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Driver {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Driver, &'static str> {
        match s {
            "auto" => Ok(Driver::Auto),
            "xdp" => Ok(Driver::Xdp),
            "packet" => Ok(Driver::Packet),
            "tap" => Ok(Driver::Tap),
            _ => Err("unknown driver (expected auto, xdp, packet or tap)"),
        }
    }
}

/// The drivers' tunables. AF_PACKET's V2 slots are enlarged to hold a
/// frame of the interface's MTU whatever `packet` says.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub xdp: XdpConfig,
    pub packet: PacketConfig,
}

/// Open `iface` with `driver`.
pub fn open(iface: &str, driver: Driver, opts: &OpenOptions) -> io::Result<Box<dyn Device>> {
    Ok(match driver {
        Driver::Packet => Box::new(open_packet(iface, opts)?),
        Driver::Tap => Box::new(TapDevice::open(iface)?),
        Driver::Xdp => Box::new(XdpDevice::open(iface, opts.xdp.clone())?),
        Driver::Auto => match XdpDevice::open(iface, opts.xdp.clone()) {
            Ok(d) => Box::new(d),
            Err(e) => {
                tracing::warn!("{iface}: AF_XDP unavailable, falling back to AF_PACKET: {e}");
                Box::new(open_packet(iface, opts)?)
            }
        },
    })
}

fn open_packet(iface: &str, opts: &OpenOptions) -> io::Result<PacketDevice> {
    let mut config = opts.packet.clone();
    if let Ok(mtu) = sys::if_mtu(iface) {
        config = config.fit_mtu(mtu);
    }
    PacketDevice::open(iface, config)
}
