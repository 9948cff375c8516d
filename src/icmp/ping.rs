//! Ping sockets: send ICMP echo requests, match replies, measure RTT.

use crate::time::{Duration, Instant};
use core::net::Ipv4Addr;
use std::collections::VecDeque;

/// Requests remembered while waiting for their replies; older ones are
/// forgotten (counted lost by the caller) so a long run cannot grow memory.
const MAX_OUTSTANDING: usize = 4096;
const MAX_QUEUED: usize = 1024;

/// What a ping socket reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingEvent {
    Reply {
        from: Ipv4Addr,
        seq: u16,
        /// ICMP payload bytes in the reply.
        len: usize,
        ttl: u8,
        rtt: Duration,
        /// The payload differs from what was sent.
        corrupt: bool,
    },
    /// A reply for a sequence number not outstanding: a duplicate or one so
    /// late it was forgotten.
    Duplicate { from: Ipv4Addr, seq: u16 },
    /// An ICMP error quoting one of our requests (unreachable, time exceeded).
    Error {
        from: Ipv4Addr,
        seq: u16,
        msg_type: u8,
        code: u8,
    },
    /// The stack could not send the request (no route, ARP failed, too big).
    SendFailed {
        seq: u16,
        error: crate::stack::Error,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PingRequest {
    pub dst: Ipv4Addr,
    pub seq: u16,
    pub size: usize,
    pub dont_frag: bool,
}

#[derive(Debug)]
pub struct PingSocket {
    pub(crate) ident: u16,
    pub(crate) to_send: VecDeque<PingRequest>,
    outstanding: VecDeque<(u16, Instant)>,
    events: VecDeque<PingEvent>,
}

/// The payload a ping socket sends: byte `i` is `i mod 256`, so replies can
/// be checked without keeping a copy.
pub fn pattern_byte(i: usize) -> u8 {
    i as u8
}

impl PingSocket {
    pub(crate) fn new(ident: u16) -> PingSocket {
        PingSocket {
            ident,
            to_send: VecDeque::new(),
            outstanding: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn ident(&self) -> u16 {
        self.ident
    }

    pub(crate) fn queue(&mut self, req: PingRequest) -> bool {
        if self.to_send.len() >= MAX_QUEUED {
            return false;
        }
        self.to_send.push_back(req);
        true
    }

    /// The request left the stack at `now`.
    pub(crate) fn sent(&mut self, seq: u16, now: Instant) {
        if self.outstanding.len() >= MAX_OUTSTANDING {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back((seq, now));
    }

    pub(crate) fn on_reply(
        &mut self,
        now: Instant,
        from: Ipv4Addr,
        seq: u16,
        ttl: u8,
        data: &[u8],
    ) {
        let ev = match self.outstanding.iter().position(|&(s, _)| s == seq) {
            Some(i) => {
                let (_, sent) = self.outstanding.remove(i).unwrap_or((seq, now));
                let corrupt = data.iter().enumerate().any(|(i, &b)| b != pattern_byte(i));
                PingEvent::Reply {
                    from,
                    seq,
                    len: data.len(),
                    ttl,
                    rtt: now.saturating_since(sent),
                    corrupt,
                }
            }
            None => PingEvent::Duplicate { from, seq },
        };
        self.push_event(ev);
    }

    pub(crate) fn on_error(&mut self, from: Ipv4Addr, seq: u16, msg_type: u8, code: u8) {
        if let Some(i) = self.outstanding.iter().position(|&(s, _)| s == seq) {
            self.outstanding.remove(i);
        }
        self.push_event(PingEvent::Error {
            from,
            seq,
            msg_type,
            code,
        });
    }

    pub(crate) fn on_send_failed(&mut self, seq: u16, error: crate::stack::Error) {
        self.push_event(PingEvent::SendFailed { seq, error });
    }

    fn push_event(&mut self, ev: PingEvent) {
        if self.events.len() >= MAX_QUEUED {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    pub(crate) fn next_event(&mut self) -> Option<PingEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    #[test]
    fn reply_reports_rtt_from_send_time_and_checks_payload() {
        let mut s = PingSocket::new(7);
        s.sent(1, Instant::from_millis(10));
        let good: Vec<u8> = (0..300).map(pattern_byte).collect();
        s.on_reply(Instant::from_millis(13), PEER, 1, 64, &good);
        assert_eq!(
            s.next_event(),
            Some(PingEvent::Reply {
                from: PEER,
                seq: 1,
                len: 300,
                ttl: 64,
                rtt: Duration::from_millis(3),
                corrupt: false
            })
        );
        // The same sequence again is a duplicate.
        s.on_reply(Instant::from_millis(14), PEER, 1, 64, &good);
        assert_eq!(
            s.next_event(),
            Some(PingEvent::Duplicate { from: PEER, seq: 1 })
        );
    }

    #[test]
    fn corrupted_payload_is_flagged() {
        let mut s = PingSocket::new(7);
        s.sent(2, Instant::ZERO);
        let mut bad: Vec<u8> = (0..64).map(pattern_byte).collect();
        bad[40] ^= 1;
        s.on_reply(Instant::ZERO, PEER, 2, 64, &bad);
        assert!(matches!(
            s.next_event(),
            Some(PingEvent::Reply { corrupt: true, .. })
        ));
    }

    #[test]
    fn outstanding_and_events_are_bounded() {
        let mut s = PingSocket::new(7);
        for i in 0..10_000u32 {
            s.sent(i as u16, Instant::ZERO);
            s.on_reply(Instant::ZERO, PEER, 60_000, 64, &[]);
        }
        assert!(s.outstanding.len() <= MAX_OUTSTANDING);
        assert!(s.events.len() <= MAX_QUEUED);
    }
}
