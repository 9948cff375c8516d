//! Where the server keeps its leases across restarts.
//!
//! [`LeaseStore`] is what the server needs: a lease is durable when
//! [`LeaseStore::put`] returns, and the server sends a DHCPACK only after
//! that. [`MemoryStore`] is for tests and benchmarks; [`FileStore`] is an
//! append-only log on disk, fsynced per record and compacted by write +
//! fsync + rename. This module is the only part of DHCP that does I/O.
//!
//! The log is text, one record per line, each ending in its CRC-32:
//!
//! ```text
//! ringstack-dhcp-leases 1
//! L 192.168.1.57 52:54:00:12:34:56 1767225600 id:ff00123456000300015254... 6c6170746f70 1c291ca3
//! R 192.168.1.57 8a3e5f0d
//! ```
//!
//! `L` puts a lease (address, chaddr, expiry in Unix seconds, client key,
//! hostname in hex or `-`), `R` removes the lease of an address; the last
//! record for an address wins.
//!
//! Recovery: a `kill -9` or power cut can only leave the record being
//! written incomplete, and that record's DHCPACK was never sent. So bad
//! records at the end of the file are dropped, the file is cut back to the
//! last good one and the drop is reported ([`LoadReport::dropped_tail`]).
//! A bad record with good ones after it is not a crash: that is corruption,
//! and [`FileStore::open`] refuses with [`StoreError::Corrupt`] naming the
//! line rather than guess. The operator (or the binary, on request) moves
//! the file aside with [`FileStore::set_aside`] and starts empty; the
//! server's probe before every offer then keeps it from handing out an
//! address that a forgotten client still uses.

use core::fmt;
use core::net::Ipv4Addr;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::eth::MacAddr;
use crate::time::Instant;

/// What identifies a client (RFC 2131 §4.2): option 61 when it sends one,
/// else its hardware address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    Id(Vec<u8>),
    Mac(MacAddr),
}

/// One bound lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLease {
    pub addr: Ipv4Addr,
    pub client: ClientKey,
    /// `chaddr`, where replies go.
    pub mac: MacAddr,
    pub expires: Instant,
    /// Option 12 as the client sent it, for the operator.
    pub hostname: Option<String>,
}

#[derive(Debug)]
pub enum StoreError {
    Io(io::Error),
    /// The first line is not this format's header.
    BadHeader,
    /// A bad record with good ones after it (1-based line number).
    Corrupt {
        line: usize,
        reason: &'static str,
    },
    /// Over [`MAX_FILE_BYTES`]: not a lease file this server wrote.
    TooLarge,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "lease store: {e}"),
            StoreError::BadHeader => f.write_str("lease store: not a ringstack lease file (bad header)"),
            StoreError::Corrupt { line, reason } => write!(
                f,
                "lease store: corrupt record at line {line} ({reason}) with valid records after it; \
                 move the file aside to start empty"
            ),
            StoreError::TooLarge => f.write_str("lease store: file too large to be a lease log"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

pub trait LeaseStore {
    /// Every lease held: what was loaded plus what was put since.
    fn leases(&self) -> Vec<StoredLease>;
    /// Records `lease`, replacing any for its address. Durable on `Ok`: a
    /// crash at any later instant keeps it.
    fn put(&mut self, lease: &StoredLease) -> Result<(), StoreError>;
    /// Forgets the lease of `addr`, durably on `Ok`.
    fn remove(&mut self, addr: Ipv4Addr) -> Result<(), StoreError>;
}

/// Leases in a map, for tests and benchmarks. `fail` makes every write
/// fail, as a full disk would.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    pub leases: HashMap<Ipv4Addr, StoredLease>,
    pub fail: bool,
    /// Writes accepted, puts and removes.
    pub writes: u64,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn check(&mut self) -> Result<(), StoreError> {
        if self.fail {
            return Err(StoreError::Io(io::Error::other("store failure injected")));
        }
        self.writes += 1;
        Ok(())
    }
}

impl LeaseStore for MemoryStore {
    fn leases(&self) -> Vec<StoredLease> {
        self.leases.values().cloned().collect()
    }

    fn put(&mut self, lease: &StoredLease) -> Result<(), StoreError> {
        self.check()?;
        self.leases.insert(lease.addr, lease.clone());
        Ok(())
    }

    fn remove(&mut self, addr: Ipv4Addr) -> Result<(), StoreError> {
        self.check()?;
        self.leases.remove(&addr);
        Ok(())
    }
}

impl<S: LeaseStore + ?Sized> LeaseStore for Box<S> {
    fn leases(&self) -> Vec<StoredLease> {
        (**self).leases()
    }
    fn put(&mut self, lease: &StoredLease) -> Result<(), StoreError> {
        (**self).put(lease)
    }
    fn remove(&mut self, addr: Ipv4Addr) -> Result<(), StoreError> {
        (**self).remove(addr)
    }
}

/// Ties the caller's [`Instant`]s to the wall clock, so that expiry times
/// survive a restart whose monotonic clock starts elsewhere: `now` and
/// `unix_secs` name the same moment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WallClock {
    pub now: Instant,
    pub unix_secs: u64,
}

impl WallClock {
    fn to_unix(self, t: Instant) -> i64 {
        let delta = t.total_micros().saturating_sub(self.now.total_micros()) / 1_000_000;
        (self.unix_secs as i64).saturating_add(delta)
    }

    fn to_instant(self, unix: i64) -> Instant {
        let delta = unix.saturating_sub(self.unix_secs as i64);
        Instant::from_micros(
            self.now
                .total_micros()
                .saturating_add(delta.saturating_mul(1_000_000)),
        )
    }
}

/// What [`FileStore::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Leases held after replaying the log.
    pub leases: usize,
    /// Good records read.
    pub records: usize,
    /// Bytes of incomplete or bad records cut off the end: what a crash
    /// while writing leaves.
    pub dropped_tail: usize,
}

/// Refused at open: far beyond any lease table's log.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
const HEADER: &str = "ringstack-dhcp-leases 1\n";

/// An append-only lease log; see the module docs.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    file: File,
    clock: WallClock,
    leases: HashMap<Ipv4Addr, StoredLease>,
    /// Records in the file now, header excluded.
    records: usize,
    /// Compact when `records` passes this.
    compact_at: usize,
}

/// Logs shorter than this are never compacted.
const COMPACT_MIN: usize = 1024;

impl FileStore {
    /// Opens (or creates) the log at `path` and replays it. See the module
    /// docs for what is recovered and what is refused.
    pub fn open(
        path: impl AsRef<Path>,
        clock: WallClock,
    ) -> Result<(FileStore, LoadReport), StoreError> {
        let path = path.as_ref().to_path_buf();
        // A compaction that died before its rename leaves only this.
        let _ = fs::remove_file(tmp_path(&path));
        let bytes = match fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => return Err(StoreError::TooLarge),
            Ok(_) => fs::read(&path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut report = LoadReport::default();
        let mut leases = HashMap::new();
        let good_len = replay(&bytes, clock, &mut leases, &mut report)?;
        report.leases = leases.len();
        if good_len == 0 {
            // New, empty, or cut inside the header: start a fresh log.
            write_atomically(&path, HEADER.as_bytes())?;
        } else if good_len < bytes.len() {
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(good_len as u64)?;
            f.sync_all()?;
        }
        let file = OpenOptions::new().append(true).open(&path)?;
        let records = report.records;
        let store = FileStore {
            path,
            file,
            clock,
            leases,
            records,
            compact_at: COMPACT_MIN.max(2 * records),
        };
        Ok((store, report))
    }

    /// Renames the file at `path` to `path.corrupt-N` (the first free N)
    /// so that the next open starts empty; returns the new name.
    pub fn set_aside(path: impl AsRef<Path>) -> io::Result<PathBuf> {
        let path = path.as_ref();
        for n in 0..1000 {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".corrupt-{n}"));
            let to = PathBuf::from(name);
            if !to.exists() {
                fs::rename(path, &to)?;
                sync_dir(path)?;
                return Ok(to);
            }
        }
        Err(io::Error::other("too many set-aside lease files"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records in the log now (header excluded).
    pub fn records(&self) -> usize {
        self.records
    }

    /// Rewrites the log as one record per lease: write a temporary file,
    /// fsync it, rename it over the log, fsync the directory. A crash at
    /// any point leaves the old log or the new one, both complete.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        let mut text = String::from(HEADER);
        let mut leases: Vec<&StoredLease> = self.leases.values().collect();
        leases.sort_by_key(|l| u32::from(l.addr));
        for l in &leases {
            text.push_str(&lease_line(l, self.clock));
        }
        write_atomically(&self.path, text.as_bytes())?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.records = leases.len();
        self.compact_at = COMPACT_MIN.max(2 * self.records);
        Ok(())
    }

    fn append(&mut self, line: &str) -> Result<(), StoreError> {
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.records += 1;
        if self.records > self.compact_at {
            if let Err(e) = self.compact() {
                // The record is durable already; a failed compaction only
                // postpones the next one.
                tracing::warn!(error = %e, "lease log compaction failed");
                self.compact_at = self.records.saturating_mul(2);
            }
        }
        Ok(())
    }
}

impl LeaseStore for FileStore {
    fn leases(&self) -> Vec<StoredLease> {
        self.leases.values().cloned().collect()
    }

    fn put(&mut self, lease: &StoredLease) -> Result<(), StoreError> {
        let line = lease_line(lease, self.clock);
        self.append(&line)?;
        self.leases.insert(lease.addr, lease.clone());
        Ok(())
    }

    fn remove(&mut self, addr: Ipv4Addr) -> Result<(), StoreError> {
        if !self.leases.contains_key(&addr) {
            return Ok(());
        }
        let line = with_crc(format!("R {addr}"));
        self.append(&line)?;
        self.leases.remove(&addr);
        Ok(())
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Replays the log into `leases`; returns the length of the good prefix
/// (0 if there is no complete header).
fn replay(
    bytes: &[u8],
    clock: WallClock,
    leases: &mut HashMap<Ipv4Addr, StoredLease>,
    report: &mut LoadReport,
) -> Result<usize, StoreError> {
    if bytes.len() < HEADER.len() {
        if HEADER.as_bytes().starts_with(bytes) {
            report.dropped_tail = bytes.len();
            return Ok(0);
        }
        return Err(StoreError::BadHeader);
    }
    if !bytes.starts_with(HEADER.as_bytes()) {
        return Err(StoreError::BadHeader);
    }
    let mut at = HEADER.len();
    let mut good = at;
    // The first bad record, if any, as (line, reason).
    let mut bad: Option<(usize, &'static str)> = None;
    let mut line_no = 1;
    while at < bytes.len() {
        line_no += 1;
        let (line, next, complete) = match bytes[at..].iter().position(|&b| b == b'\n') {
            Some(n) => (&bytes[at..at + n], at + n + 1, true),
            None => (&bytes[at..], bytes.len(), false),
        };
        let record = if complete {
            parse_record(line, clock)
        } else {
            Err("incomplete")
        };
        match record {
            Ok(r) => {
                if let Some((line, reason)) = bad {
                    return Err(StoreError::Corrupt { line, reason });
                }
                match r {
                    Record::Put(l) => {
                        leases.insert(l.addr, l);
                    }
                    Record::Remove(a) => {
                        leases.remove(&a);
                    }
                }
                report.records += 1;
                good = next;
            }
            Err(reason) => {
                bad.get_or_insert((line_no, reason));
            }
        }
        at = next;
    }
    report.dropped_tail = bytes.len() - good;
    Ok(good)
}

enum Record {
    Put(StoredLease),
    Remove(Ipv4Addr),
}

fn parse_record(line: &[u8], clock: WallClock) -> Result<Record, &'static str> {
    let line = core::str::from_utf8(line).map_err(|_| "not UTF-8")?;
    let (body, crc) = line.rsplit_once(' ').ok_or("no checksum")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum field")?;
    if crc32(body.as_bytes()) != crc {
        return Err("checksum mismatch");
    }
    let mut f = body.split(' ');
    let kind = f.next().ok_or("empty")?;
    let addr: Ipv4Addr = f
        .next()
        .ok_or("no address")?
        .parse()
        .map_err(|_| "bad address")?;
    let rec = match kind {
        "R" => Record::Remove(addr),
        "L" => {
            let mac = f.next().ok_or("no MAC")?.parse().map_err(|_| "bad MAC")?;
            let exp: i64 = f
                .next()
                .ok_or("no expiry")?
                .parse()
                .map_err(|_| "bad expiry")?;
            let client = match f.next().ok_or("no client")?.split_once(':') {
                Some(("id", hex)) => ClientKey::Id(unhex(hex).ok_or("bad client id")?),
                Some(("mac", m)) => ClientKey::Mac(m.parse().map_err(|_| "bad client MAC")?),
                _ => return Err("bad client"),
            };
            let hostname = match f.next().ok_or("no hostname")? {
                "-" => None,
                hex => Some(
                    String::from_utf8(unhex(hex).ok_or("bad hostname")?)
                        .map_err(|_| "bad hostname")?,
                ),
            };
            Record::Put(StoredLease {
                addr,
                client,
                mac,
                expires: clock.to_instant(exp),
                hostname,
            })
        }
        _ => return Err("unknown record"),
    };
    if f.next().is_some() {
        return Err("trailing fields");
    }
    Ok(rec)
}

fn lease_line(l: &StoredLease, clock: WallClock) -> String {
    let client = match &l.client {
        ClientKey::Id(id) => format!("id:{}", hex(id)),
        ClientKey::Mac(m) => format!("mac:{m}"),
    };
    let host = l
        .hostname
        .as_deref()
        .map_or_else(|| "-".to_owned(), |h| hex(h.as_bytes()));
    with_crc(format!(
        "L {} {} {} {} {}",
        l.addr,
        l.mac,
        clock.to_unix(l.expires),
        client,
        host
    ))
}

fn with_crc(mut body: String) -> String {
    let crc = crc32(body.as_bytes());
    body.push_str(&format!(" {crc:08x}\n"));
    body
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// CRC-32 (IEEE 802.3, reflected): catches the torn and zero-filled tails
/// a crash leaves.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    const CLOCK: WallClock = WallClock {
        now: Instant::from_secs(5),
        unix_secs: 1_767_225_600,
    };

    /// A scratch path, removed (with its siblings) when dropped.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "ringstack-dhcp-store-{}-{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn lease(i: u8) -> StoredLease {
        StoredLease {
            addr: Ipv4Addr::new(10, 0, 0, i),
            client: if i.is_multiple_of(2) {
                ClientKey::Mac(MacAddr([2, 0, 0, 0, 0, i]))
            } else {
                ClientKey::Id(vec![0xff, i, 0, 1, 2])
            },
            mac: MacAddr([2, 0, 0, 0, 0, i]),
            expires: CLOCK.now + Duration::from_secs(3600 + u64::from(i)),
            hostname: i.is_multiple_of(3).then(|| format!("host {i}")),
        }
    }

    fn sorted(mut v: Vec<StoredLease>) -> Vec<StoredLease> {
        v.sort_by_key(|l| u32::from(l.addr));
        v
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn puts_and_removes_survive_a_reopen() {
        let dir = Scratch::new("reopen");
        let path = dir.file("leases");
        let (mut s, report) = FileStore::open(&path, CLOCK).unwrap();
        assert_eq!(report, LoadReport::default());
        for i in 1..=6 {
            s.put(&lease(i)).unwrap();
        }
        s.remove(Ipv4Addr::new(10, 0, 0, 2)).unwrap();
        let mut again = lease(3);
        again.expires += Duration::from_secs(100);
        s.put(&again).unwrap();
        let want = sorted(s.leases());
        assert_eq!(want.len(), 5);
        drop(s);
        // Another run: its monotonic clock starts elsewhere, the wall clock
        // has moved on by 10 s.
        let later = WallClock {
            now: Instant::from_secs(1),
            unix_secs: CLOCK.unix_secs + 10,
        };
        let (s, report) = FileStore::open(&path, later).unwrap();
        assert_eq!(
            (report.leases, report.records, report.dropped_tail),
            (5, 8, 0)
        );
        let got = sorted(s.leases());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.expires, w.expires - Duration::from_secs(14));
            assert_eq!(
                (&g.client, g.mac, &g.hostname),
                (&w.client, w.mac, &w.hostname)
            );
        }
        assert_eq!(got.len(), want.len());
    }

    #[test]
    fn a_crash_at_any_byte_loses_only_the_record_being_written() {
        // Every prefix of the log is what a kill -9 during the write of the
        // next byte leaves. Each must open, with exactly the complete
        // records before the cut.
        let dir = Scratch::new("crash");
        let path = dir.file("leases");
        let (mut s, _) = FileStore::open(&path, CLOCK).unwrap();
        let mut states = vec![(fs::metadata(&path).unwrap().len(), sorted(s.leases()))];
        for i in 1..=5 {
            s.put(&lease(i)).unwrap();
            states.push((fs::metadata(&path).unwrap().len(), sorted(s.leases())));
            if i == 3 {
                s.remove(Ipv4Addr::new(10, 0, 0, 1)).unwrap();
                states.push((fs::metadata(&path).unwrap().len(), sorted(s.leases())));
            }
        }
        states.sort_by_key(|s| s.0);
        let full = fs::read(&path).unwrap();
        let cut = dir.file("cut");
        for n in 0..=full.len() {
            fs::write(&cut, &full[..n]).unwrap();
            let (s, report) =
                FileStore::open(&cut, CLOCK).unwrap_or_else(|e| panic!("cut at {n}: {e}"));
            let (good_len, want) = states
                .iter()
                .rev()
                .find(|(len, _)| *len as usize <= n)
                .cloned()
                .unwrap_or((0, vec![]));
            assert_eq!(sorted(s.leases()), want, "cut at {n}");
            assert_eq!(
                report.dropped_tail,
                n - (good_len as usize).min(n),
                "cut at {n}"
            );
            // The file was cut back to the last good record, so new
            // records append after it.
            let on_disk = fs::read(&cut).unwrap();
            assert_eq!(
                on_disk.len(),
                (good_len as usize).max(HEADER.len()),
                "cut at {n}"
            );
            drop(s);
            let (mut s, report) = FileStore::open(&cut, CLOCK).unwrap();
            assert_eq!(report.dropped_tail, 0);
            s.put(&lease(9)).unwrap();
            drop(s);
            let (s, _) = FileStore::open(&cut, CLOCK).unwrap();
            assert_eq!(s.leases().len(), want.len() + 1);
        }
    }

    #[test]
    fn zero_filled_tail_is_dropped_not_fatal() {
        // What a file system that extended the file but never wrote the
        // block leaves after a power cut.
        let dir = Scratch::new("zeros");
        let path = dir.file("leases");
        let (mut s, _) = FileStore::open(&path, CLOCK).unwrap();
        s.put(&lease(1)).unwrap();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0u8; 700]).unwrap();
        drop(f);
        let (s, report) = FileStore::open(&path, CLOCK).unwrap();
        assert_eq!(report.dropped_tail, 700);
        assert_eq!(s.leases(), [lease(1)]);
    }

    #[test]
    fn corruption_before_good_records_is_reported_with_its_line() {
        let dir = Scratch::new("corrupt");
        let path = dir.file("leases");
        let (mut s, _) = FileStore::open(&path, CLOCK).unwrap();
        for i in 1..=4 {
            s.put(&lease(i)).unwrap();
        }
        drop(s);
        let mut bytes = fs::read(&path).unwrap();
        let third_line = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(1)
            .unwrap()
            .0
            + 3;
        bytes[third_line] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        match FileStore::open(&path, CLOCK) {
            Err(StoreError::Corrupt { line: 3, reason }) => assert_eq!(reason, "checksum mismatch"),
            other => panic!("{other:?}"),
        }
        // The file is left as it was for the operator...
        assert_eq!(fs::read(&path).unwrap(), bytes);
        // ...who sets it aside and starts empty.
        let aside = FileStore::set_aside(&path).unwrap();
        assert_eq!(fs::read(&aside).unwrap(), bytes);
        let (s, report) = FileStore::open(&path, CLOCK).unwrap();
        assert_eq!((s.leases().len(), report.records), (0, 0));
        let msg = StoreError::Corrupt {
            line: 3,
            reason: "checksum mismatch",
        }
        .to_string();
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn rejects_a_file_that_is_not_a_lease_log() {
        let dir = Scratch::new("header");
        let path = dir.file("leases");
        fs::write(&path, b"[gateway]\nname = x\n").unwrap();
        assert!(matches!(
            FileStore::open(&path, CLOCK),
            Err(StoreError::BadHeader)
        ));
        fs::write(&path, b"ringstack-dhcp-leases 2\n").unwrap();
        assert!(matches!(
            FileStore::open(&path, CLOCK),
            Err(StoreError::BadHeader)
        ));
        fs::write(&path, b"x").unwrap();
        assert!(matches!(
            FileStore::open(&path, CLOCK),
            Err(StoreError::BadHeader)
        ));
    }

    #[test]
    fn compaction_keeps_one_record_per_lease_and_a_stale_temporary_is_ignored() {
        let dir = Scratch::new("compact");
        let path = dir.file("leases");
        let (mut s, _) = FileStore::open(&path, CLOCK).unwrap();
        for round in 0..300u64 {
            for i in 1..=5 {
                let mut l = lease(i);
                l.expires += Duration::from_secs(round);
                s.put(&l).unwrap();
            }
        }
        // 1500 records: compacted once past 1024, then appended again.
        assert!(s.records() < 600, "{}", s.records());
        let want = sorted(s.leases());
        drop(s);
        // A compaction that crashed before its rename left a temporary.
        fs::write(tmp_path(&path), b"half a log").unwrap();
        let (mut s, report) = FileStore::open(&path, CLOCK).unwrap();
        assert!(!tmp_path(&path).exists());
        assert_eq!(sorted(s.leases()), want);
        assert_eq!(report.dropped_tail, 0);
        s.compact().unwrap();
        assert_eq!(s.records(), 5);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 6);
        drop(s);
        let (s, _) = FileStore::open(&path, CLOCK).unwrap();
        assert_eq!(sorted(s.leases()), want);
    }

    #[test]
    fn memory_store_fails_on_request() {
        let mut m = MemoryStore::new();
        m.put(&lease(1)).unwrap();
        m.fail = true;
        assert!(m.put(&lease(2)).is_err());
        assert!(m.remove(lease(1).addr).is_err());
        assert_eq!(m.leases(), [lease(1)]);
        assert_eq!(m.writes, 1);
    }
}
