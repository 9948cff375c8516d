//! TapDevice against the Linux kernel: a TAP created in a namespace of our
//! own, the kernel side addressed 198.18.1.1/24, our side answering as
//! 198.18.1.2 with a MAC of its own. Needs root and `ip`; skips otherwise.

mod dev_util;

use dev_util::{arp_request, env, is_inner, parse_arp, skip_reason, src_mac, Netns};
use ringstack::dev::tap::TapDevice;
use ringstack::dev::{monotonic_now, Device};
use ringstack::time::Duration;

const KERNEL_IP: [u8; 4] = [198, 18, 1, 1];
const OUR_IP: [u8; 4] = [198, 18, 1, 2];
/// Locally administered, and so different from the TAP's random MAC.
const OUR_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x02];

#[test]
fn tap_device_gets_the_kernels_arp_reply_and_not_its_own_request() {
    if let Some(why) = skip_reason(&["ip"]) {
        println!("skipped: {why}");
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        println!("skipped: /dev/net/tun missing");
        return;
    }
    let ns = match Netns::create("t", &[""]) {
        Ok(ns) => ns,
        Err(e) => {
            println!("skipped: cannot create namespaces: {e}");
            return;
        }
    };
    let tap = ns.name(0).to_string();
    ns.run_test(0, "inner_tap_arp", &[("RSD_TAP", &tap)]);
    // The TAP was not persistent: it went away with the inner process.
    assert!(ns.ip(0, &["link", "show", "dev", &tap]).is_err());
}

#[test]
#[ignore = "run inside a namespace by tap_device_gets_the_kernels_arp_reply_and_not_its_own_request"]
fn inner_tap_arp() {
    if !is_inner() {
        return;
    }
    let name = env("RSD_TAP");
    let mut dev = TapDevice::open(&name).unwrap();
    assert_eq!(dev.name(), name);
    let caps = dev.caps();
    assert_eq!(caps.kind, "tap");
    assert_eq!(caps.mac, None, "the TAP's MAC is the kernel's");
    assert_eq!(caps.mtu, 1500);
    assert_ne!(dev.kernel_mac().unwrap(), OUR_MAC);
    // open() brought the link up; give the kernel side its address.
    dev_util::run("ip", &["addr", "add", "198.18.1.1/24", "dev", &name]).unwrap();

    let req = arp_request(OUR_MAC, OUR_IP, KERNEL_IP);
    dev.transmitter()
        .transmit(req.len(), &mut |buf| buf.copy_from_slice(&req))
        .unwrap();
    dev.flush(monotonic_now()).unwrap();

    let (mut reply, mut own) = (false, 0);
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(3) {
        dev.wait(Some(Duration::from_millis(20))).unwrap();
        dev.receive(monotonic_now(), 64, &mut |frame, _tx| {
            own += u32::from(src_mac(frame) == Some(OUR_MAC));
            if let Some((2, _, KERNEL_IP, tha, OUR_IP)) = parse_arp(frame) {
                reply |= tha == OUR_MAC && frame[0..6] == OUR_MAC;
            }
        })
        .unwrap();
        if reply && start.elapsed() > std::time::Duration::from_millis(50) {
            break;
        }
    }
    let stats = dev.stats();
    println!("stats: {stats:?}");
    assert!(reply, "no ARP reply from the kernel");
    assert_eq!(own, 0, "our own frame came back");
    assert_eq!((stats.tx_frames, stats.tx_bytes), (1, 42));
    assert!(stats.rx_frames >= 1);

    // Too long for the MTU: refused before `fill` runs.
    let r = dev
        .transmitter()
        .transmit(1500 + 19, &mut |_| unreachable!());
    assert_eq!(r, Err(ringstack::dev::TxError::TooLong));
}
