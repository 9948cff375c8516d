//! Capture: [`PcapDevice`] wraps any [`Device`] and writes every frame it
//! receives or transmits to a classic libpcap file that Wireshark, tshark and
//! tcpdump open.
//!
//! Format: global header with magic `0xa1b2c3d4` (microsecond timestamps),
//! version 2.4, snaplen 65535, link type 1 (Ethernet); then one record per
//! frame. Everything is written little-endian; readers detect the byte order
//! from the magic.
//!
//! Timestamps: the stack's [`Instant`] has an arbitrary epoch, so the writer
//! maps it to wall-clock time with an offset fixed when it is created (see
//! [`PcapWriter::new`]). RX frames are stamped with the `now` of the
//! `receive` call; TX frames with the `now` of the current `receive` call, or
//! of the last `receive`/`flush` for frames sent outside one.
//!
//! Capture never fails the datapath: the first write error is counted
//! (`pcap_write_errors` in [`Device::stats`]) and the writer stops.

use super::{Device, DeviceCaps, DeviceStats, Transmit, TxError};
use crate::time::{Duration, Instant};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// `0xa1b2c3d4`: classic pcap with microsecond timestamps.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// Bytes of each frame kept in the file; longer frames are cut.
pub const SNAPLEN: u32 = 65535;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Writes pcap records to `W`.
pub struct PcapWriter<W: Write> {
    out: W,
    /// Unix time in microseconds of `Instant::ZERO`.
    epoch_micros: i64,
    frames: u64,
    errors: u64,
    failed: bool,
    error: Option<io::Error>,
}

impl<W: Write> PcapWriter<W> {
    /// A writer whose timestamps are wall-clock time: the `Instant` returned
    /// by [`super::monotonic_now`] at this moment is mapped to the system
    /// clock at this moment. (With a hand-driven clock that starts at zero,
    /// that is close to "creation time + now".) Writes the global header.
    pub fn new(out: W) -> PcapWriter<W> {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mono = super::monotonic_now().total_micros();
        PcapWriter::with_epoch(out, wall.saturating_sub(mono))
    }

    /// A writer that stamps a frame sent at `now` with Unix time
    /// `epoch_micros + now` (microseconds). Writes the global header.
    pub fn with_epoch(out: W, epoch_micros: i64) -> PcapWriter<W> {
        let mut writer = PcapWriter {
            out,
            epoch_micros,
            frames: 0,
            errors: 0,
            failed: false,
            error: None,
        };
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&PCAP_MAGIC.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay zero.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        writer.put(&header);
        writer
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if let Err(err) = self.out.write_all(bytes) {
            self.fail(err);
        }
    }

    /// Append one frame seen at `now`. Never fails; see [`Self::errors`].
    pub fn write_frame(&mut self, now: Instant, frame: &[u8]) {
        if self.failed {
            return;
        }
        let micros = self.epoch_micros.saturating_add(now.total_micros()).max(0);
        let incl = frame.len().min(SNAPLEN as usize);
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        record[4..8].copy_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        record[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        record[12..16]
            .copy_from_slice(&(u32::try_from(frame.len()).unwrap_or(u32::MAX)).to_le_bytes());
        self.put(&record);
        self.put(&frame[..incl]);
        if !self.failed {
            self.frames += 1;
        }
    }

    /// Push buffered records to the underlying writer. A failure is counted
    /// and stops the capture.
    pub fn flush(&mut self) {
        if self.failed {
            return;
        }
        if let Err(err) = self.out.flush() {
            self.fail(err);
        }
    }

    fn fail(&mut self, err: io::Error) {
        self.errors += 1;
        self.failed = true;
        self.error = Some(err);
    }

    /// The error that stopped the capture, if any.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Write errors seen (at most one: the writer stops after it).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer, without flushing it.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Any device, with every RX and TX frame also written to a pcap file.
///
/// Buffered records reach the file at each [`Device::flush`]; on drop, the
/// `BufWriter` of [`PcapDevice::new`] flushes what is left by itself.
pub struct PcapDevice<D: Device, W: Write = BufWriter<File>> {
    inner: D,
    writer: PcapWriter<W>,
    /// `now` of the last `receive` or `flush`, for frames sent outside one.
    last_now: Instant,
}

impl<D: Device> PcapDevice<D> {
    /// Capture `inner`'s traffic into a new file at `path` (truncated if it
    /// exists), buffered, flushed at each device flush and on drop.
    pub fn new(inner: D, path: &Path) -> io::Result<Self> {
        let file = File::create(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("creating pcap file {}: {e}", path.display()),
            )
        })?;
        let mut writer = PcapWriter::new(BufWriter::with_capacity(64 * 1024, file));
        writer.flush();
        if let Some(err) = writer.error() {
            return Err(io::Error::new(
                err.kind(),
                format!("writing pcap header to {}: {err}", path.display()),
            ));
        }
        Ok(PcapDevice::with_writer(inner, writer))
    }
}

impl<D: Device, W: Write> PcapDevice<D, W> {
    /// Capture `inner`'s traffic with a writer of your own (a `Vec<u8>` in
    /// tests).
    pub fn with_writer(inner: D, writer: PcapWriter<W>) -> Self {
        PcapDevice {
            inner,
            writer,
            last_now: Instant::ZERO,
        }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    pub fn writer(&self) -> &PcapWriter<W> {
        &self.writer
    }

    /// The device and the writer, the writer flushed.
    pub fn into_parts(mut self) -> (D, PcapWriter<W>) {
        self.writer.flush();
        (self.inner, self.writer)
    }
}

/// The inner transmitter, with each frame copied to the capture after `fill`.
struct CaptureTx<'a, W: Write> {
    inner: &'a mut dyn Transmit,
    writer: &'a mut PcapWriter<W>,
    now: Instant,
}

impl<W: Write> Transmit for CaptureTx<'_, W> {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        let writer = &mut *self.writer;
        let now = self.now;
        self.inner.transmit(len, &mut |buf| {
            fill(buf);
            writer.write_frame(now, buf);
        })
    }
}

/// Frames sent outside `receive` (via [`Device::transmitter`]).
impl<D: Device, W: Write> Transmit for PcapDevice<D, W> {
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxError> {
        CaptureTx {
            inner: self.inner.transmitter(),
            writer: &mut self.writer,
            now: self.last_now,
        }
        .transmit(len, fill)
    }
}

impl<D: Device, W: Write> Device for PcapDevice<D, W> {
    fn caps(&self) -> DeviceCaps {
        self.inner.caps()
    }

    fn receive(
        &mut self,
        now: Instant,
        budget: usize,
        on_frame: &mut dyn FnMut(&[u8], &mut dyn Transmit),
    ) -> io::Result<usize> {
        self.last_now = now;
        let writer = &mut self.writer;
        self.inner.receive(now, budget, &mut |frame, tx| {
            writer.write_frame(now, frame);
            let mut tx = CaptureTx {
                inner: tx,
                writer: &mut *writer,
                now,
            };
            on_frame(frame, &mut tx);
        })
    }

    fn transmitter(&mut self) -> &mut dyn Transmit {
        self
    }

    fn flush(&mut self, now: Instant) -> io::Result<()> {
        self.last_now = now;
        let result = self.inner.flush(now);
        self.writer.flush();
        result
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.wait(timeout)
    }

    fn wait_fds(&self, fds: &mut Vec<i32>) -> bool {
        self.inner.wait_fds(fds)
    }

    fn stats(&self) -> DeviceStats {
        let mut stats = self.inner.stats();
        stats.extra.push(("pcap_frames", self.writer.frames()));
        stats
            .extra
            .push(("pcap_write_errors", self.writer.errors()));
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::pipe;

    const EPOCH: i64 = 1_700_000_000_000_000; // 2023-11-14T22:13:20Z

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn global_header_is_classic_pcap_ethernet() {
        let w = PcapWriter::with_epoch(Vec::new(), EPOCH);
        let bytes = w.into_inner();
        assert_eq!(
            bytes,
            [
                0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian
                2, 0, 4, 0, // version 2.4
                0, 0, 0, 0, // thiszone
                0, 0, 0, 0, // sigfigs
                0xff, 0xff, 0, 0, // snaplen 65535
                1, 0, 0, 0, // LINKTYPE_ETHERNET
            ]
        );
    }

    #[test]
    fn records_carry_time_lengths_and_bytes() {
        let mut w = PcapWriter::with_epoch(Vec::new(), EPOCH);
        w.write_frame(Instant::from_micros(1_234_567), &[0xaa, 0xbb, 0xcc]);
        w.write_frame(Instant::from_micros(2_000_001), &[]);
        let big = vec![7u8; 70_000];
        w.write_frame(Instant::from_secs(3), &big);
        assert_eq!(w.frames(), 3);
        assert_eq!(w.errors(), 0);
        let b = w.into_inner();
        let r1 = &b[24..];
        assert_eq!(
            r1[..19],
            [
                0x01, 0xf1, 0x53, 0x65, // ts_sec 1_700_000_001 = 0x6553f101
                0x47, 0x94, 0x03, 0x00, // ts_usec 234_567 = 0x00039447
                3, 0, 0, 0, // incl_len
                3, 0, 0, 0, // orig_len
                0xaa, 0xbb, 0xcc,
            ]
        );
        let r2 = &r1[19..];
        assert_eq!(le32(r2, 0), 1_700_000_002);
        assert_eq!(le32(r2, 4), 1);
        assert_eq!((le32(r2, 8), le32(r2, 12)), (0, 0));
        let r3 = &r2[16..];
        assert_eq!(le32(r3, 0), 1_700_000_003);
        assert_eq!(le32(r3, 4), 0);
        assert_eq!(le32(r3, 8), 65535, "cut at snaplen");
        assert_eq!(le32(r3, 12), 70_000, "original length kept");
        assert_eq!(r3.len(), 16 + 65535);
    }

    /// Fails after `ok` bytes.
    struct Failing {
        ok: usize,
        written: usize,
    }
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written + buf.len() > self.ok {
                return Err(io::Error::other("disk full"));
            }
            self.written += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_is_counted_once_and_stops_the_capture() {
        let mut w = PcapWriter::with_epoch(
            Failing {
                ok: 24 + 16,
                written: 0,
            },
            0,
        );
        w.write_frame(Instant::ZERO, &[1; 10]);
        w.write_frame(Instant::ZERO, &[1; 10]);
        w.flush();
        assert_eq!(w.errors(), 1);
        assert_eq!(w.frames(), 0);
        assert_eq!(w.get_ref().written, 40);
        assert_eq!(w.error().unwrap().to_string(), "disk full");
    }

    fn ping(now: Instant, a: &mut impl Device, b: &mut impl Device) {
        a.transmitter()
            .transmit(4, &mut |buf| buf.copy_from_slice(b"ping"))
            .unwrap();
        a.flush(now).unwrap();
        b.receive(now, 8, &mut |frame, tx| {
            assert_eq!(frame, b"ping");
            tx.transmit(4, &mut |buf| buf.copy_from_slice(b"pong"))
                .unwrap();
        })
        .unwrap();
        b.flush(now).unwrap();
    }

    #[test]
    fn device_captures_rx_then_the_reply_written_in_the_callback() {
        let (a, mut b) = pipe::pair(1500);
        let mut a = PcapDevice::with_writer(a, PcapWriter::with_epoch(Vec::new(), EPOCH));
        // B sends to the captured A, which answers in place.
        ping(Instant::from_secs(5), &mut b, &mut a);
        // A sends outside a receive call: stamped with the last flush's now.
        a.flush(Instant::from_secs(6)).unwrap();
        a.transmitter()
            .transmit(3, &mut |buf| buf.copy_from_slice(b"bye"))
            .unwrap();
        let stats = a.stats();
        assert!(stats.extra.contains(&("pcap_frames", 3)));
        assert!(stats.extra.contains(&("pcap_write_errors", 0)));
        let (_, w) = a.into_parts();
        let b = w.into_inner();
        let mut at = 24;
        let mut seen = Vec::new();
        while at < b.len() {
            let len = le32(&b, at + 8) as usize;
            seen.push((le32(&b, at), b[at + 16..at + 16 + len].to_vec()));
            at += 16 + len;
        }
        assert_eq!(
            seen,
            vec![
                (1_700_000_005, b"ping".to_vec()),
                (1_700_000_005, b"pong".to_vec()),
                (1_700_000_006, b"bye".to_vec()),
            ]
        );
    }

    #[test]
    fn wraps_a_boxed_device_chosen_at_run_time() {
        let (a, mut b) = pipe::pair(1500);
        let a: Box<dyn Device> = Box::new(a);
        let mut a = PcapDevice::with_writer(a, PcapWriter::with_epoch(Vec::new(), EPOCH));
        ping(Instant::from_secs(1), &mut a, &mut b);
        assert_eq!(a.caps().kind, "pipe");
        assert_eq!(a.writer().frames(), 1);
        assert_eq!(a.stats().tx_frames, 1);
    }

    #[test]
    fn refused_transmits_are_not_captured() {
        let (a, _b) = pipe::pair(100);
        let mut a = PcapDevice::with_writer(a, PcapWriter::with_epoch(Vec::new(), 0));
        let r = a.transmitter().transmit(500, &mut |_| panic!("not called"));
        assert_eq!(r, Err(TxError::TooLong));
        assert_eq!(a.writer().frames(), 0);
    }

    /// A broadcast ARP request, 42 bytes.
    const ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 2, 0x08, 0x06, // Ethernet
        0, 1, 0x08, 0, 6, 4, 0, 1, // htype, ptype, hlen, plen, op=request
        0x02, 0, 0, 0, 0, 2, 198, 18, 0, 2, // sender
        0, 0, 0, 0, 0, 0, 198, 18, 0, 1, // target
    ];

    #[test]
    fn file_reads_back_with_tshark_or_tcpdump() {
        let dir = std::env::temp_dir().join(format!("ringstack-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("arp.pcap");
        {
            let (a, mut b) = pipe::pair(1500);
            let mut a = PcapDevice::new(a, &path).unwrap();
            for i in 0..3 {
                a.transmitter()
                    .transmit(ARP_REQUEST.len(), &mut |buf| {
                        buf.copy_from_slice(&ARP_REQUEST)
                    })
                    .unwrap();
                a.flush(Instant::from_millis(i)).unwrap();
            }
            assert_eq!(b.take_received().len(), 3);
        }
        let reader = [("tshark", vec!["-r"]), ("tcpdump", vec!["-n", "-r"])]
            .into_iter()
            .find_map(|(tool, args)| {
                std::process::Command::new(tool)
                    .args(&args)
                    .arg(&path)
                    .output()
                    .ok()
                    .map(|out| (tool, out))
            });
        let _ = std::fs::remove_dir_all(&dir);
        let Some((tool, out)) = reader else {
            println!("skipped: tshark not installed (nor tcpdump)");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text.lines().count(), 3, "{tool} output:\n{text}");
        assert!(
            text.contains("198.18.0.1") && text.contains("198.18.0.2"),
            "{tool} output:\n{text}"
        );
    }

    #[test]
    fn creating_a_capture_in_a_missing_directory_names_the_path() {
        let (a, _b) = pipe::pair(1500);
        let err = PcapDevice::new(a, Path::new("/nonexistent-dir/x.pcap"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent-dir/x.pcap"), "{err}");
    }
}
