//! TCP segment + options: the option walk on any bytes, parse, and a stable
//! round trip of what parses (less SACK blocks that no longer fit beside the
//! other options in Linux's layout).
#![no_main]
use core::net::Ipv4Addr;
use libfuzzer_sys::fuzz_target;
use ringstack::tcp::wire::{Error, Packet, Repr, TcpOptions, MAX_WINDOW_SCALE};

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes are the pseudo-header's addresses, the rest the segment.
    let Some((addrs, seg)) = data.split_first_chunk::<8>() else { return };
    let src = Ipv4Addr::new(addrs[0], addrs[1], addrs[2], addrs[3]);
    let dst = Ipv4Addr::new(addrs[4], addrs[5], addrs[6], addrs[7]);

    for o in TcpOptions::new(seg) {
        let _ = o;
    }
    // The deferred checksum test (the stack's receive path) accepts exactly
    // what the whole-segment one does, with the same fields.
    let unchecked = Packet::new_unchecked(seg);
    let whole = Repr::parse(&unchecked, src, dst);
    let deferred = Repr::parse_deferring_payload(&unchecked, src, dst)
        .and_then(|(r, c)| if c.verify(r.payload) { Ok(r) } else { Err(Error::BadChecksum) });
    match (&whole, &deferred) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => panic!("one parse accepts, the other says {e:?}"),
        // A corrupt segment with bad options or a zero port is named
        // malformed by the deferred parse; either way it is dropped.
        (Err(_), Err(_)) => {}
    }

    let Ok(p) = Packet::new_checked(seg) else { return };
    let _ = (p.flags(), p.segment_len(), p.payload(), p.verify_checksum(src, dst));

    // Every option that walks re-emits to bytes that walk back to it, and the
    // walk never claims more bytes than the option area holds.
    let mut walked = 0;
    for o in TcpOptions::new(p.options()) {
        let Ok(o) = o else { break };
        walked += o.buffer_len();
        let mut b = [0u8; 40];
        let n = o.emit(&mut b);
        assert_eq!(TcpOptions::new(&b[..n]).next(), Some(Ok(o)));
    }
    assert!(walked <= p.options().len());

    let Ok(r) = Repr::parse(&p, src, dst) else { return };
    assert!(r.window_scale.is_none_or(|s| s <= MAX_WINDOW_SCALE));
    assert_eq!(r.payload, p.payload());
    if r.buffer_len() > usize::from(u16::MAX) {
        return;
    }
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut out[..]), src, dst);
    let q = Packet::new_checked(&out[..]).expect("emitted header is well-formed");
    let back = Repr::parse(&q, src, dst).expect("emitted segment parses");
    let mut expect = r;
    for slot in expect.sack_ranges.iter_mut().skip(r.max_sack_blocks()) {
        *slot = None;
    }
    assert_eq!(back, expect);
});
