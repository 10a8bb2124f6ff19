//! The offline backend: a capture file read as a stream of frames ([`CaptureReader`]), so memory
//! stays flat however long the capture; [`Capture`] collects the frames in memory (replay's
//! `--loop`, which measures processing, not disk reads); plus a writer for the forwarded and
//! injected captures.
//!
//! pcap (microsecond and nanosecond, either byte order) and pcapng (every section and interface;
//! timestamps in each interface's `if_tsresol`, a power of 10 or of 2, microseconds when absent,
//! shifted by its `if_tsoffset`) are read by hand: the framing is a few fixed headers, and
//! reading it here lets a corrupt file be reported as what it is (a record longer than any
//! capture holds, a record over the file's snaplen, too many interfaces) instead of as a capture
//! cut short.
//!
//! Frames of other link types are given an Ethernet header so one decoder serves all: raw IP
//! (101, 228, 229, 12, 14), BSD loopback (0), Linux cooked capture (113) and PPP (9). The
//! synthesized header has zero MAC addresses. Frames of other link types in a pcapng are counted
//! per link type ([`ReadStats::unsupported`]); a pcap of one is an error.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

use super::{FrameHandler, Injection, PacketIo, PortStats, RxMeta};
use crate::output::{Toward, Verdict};
use crate::time::Timestamp;

/// The longest record read or written: libpcap's and Wireshark's maximum snapshot length
/// (262,144 bytes), above any jumbo frame. A longer record is a corrupt file, and refusing it
/// bounds the one buffer a reader holds.
pub const MAX_RECORD: u32 = 262_144;

/// The longest pcapng block read: a packet of [`MAX_RECORD`] bytes with room for options, or a
/// name-resolution or decryption-secrets block. Larger is a corrupt file.
const MAX_BLOCK: u32 = 16 << 20;

/// Interfaces one pcapng section may declare. Real captures have a handful; each one costs the
/// reader a few bytes, and a file of interface blocks alone is not a capture.
pub const MAX_INTERFACES: usize = 65_536;

/// Room kept in front of a record for the Ethernet header synthesized for other link types.
const HEADROOM: usize = 14;

/// Most bytes reserved up front for a capture loaded into memory (its file's size, up to this);
/// a larger capture's buffer grows as it is read.
const MAX_RESERVE: u64 = 1 << 30;

/// Errors of the pcap backend.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a pcap/pcapng capture, or is corrupt before its first packet.
    #[error("{path}: not a readable capture: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A link type we cannot turn into Ethernet.
    #[error("{path}: unsupported link type {linktype}")]
    LinkType {
        /// The file.
        path: PathBuf,
        /// The link type number.
        linktype: u32,
    },
    /// A record or block that no capture tool writes: the file is corrupt at `offset`.
    #[error("{path}: corrupt capture at byte {offset}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the record or block starts.
        offset: u64,
        /// What is wrong with it.
        message: String,
    },
}

/// Why a capture could not be read, before the file's name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Not a capture.
    Format(String),
    /// Unsupported link type.
    LinkType(u32),
    /// A corrupt record or block at a byte offset.
    Corrupt(u64, String),
    /// Reading failed (not the end of the file).
    Io(ErrorKind, String),
}

impl LoadError {
    /// This error about the file `path`.
    pub fn at(self, path: &Path) -> PcapError {
        let path = path.to_owned();
        match self {
            LoadError::Format(message) => PcapError::Format { path, message },
            LoadError::LinkType(linktype) => PcapError::LinkType { path, linktype },
            LoadError::Corrupt(offset, message) => PcapError::Corrupt {
                path,
                offset,
                message,
            },
            LoadError::Io(kind, message) => PcapError::Io {
                path,
                source: std::io::Error::new(kind, message),
            },
        }
    }
}

/// What a reader met besides frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Frames returned.
    pub frames: u64,
    /// Bytes of the frames returned.
    pub bytes: u64,
    /// Records of a supported link type dropped: too short for their link header, or carrying
    /// neither IPv4 nor IPv6.
    pub skipped: u64,
    /// Records of link types we cannot read, by link type (pcapng; an interface id no interface
    /// block declared counts under `u32::MAX`).
    pub unsupported: BTreeMap<u32, u64>,
    /// The file ended inside a record (a capture cut short); the frames before it were read.
    pub truncated: bool,
    /// Time of the first frame and the latest frame time seen.
    pub span: Option<(Timestamp, Timestamp)>,
}

/// How to turn one record of a link type into an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Ethernet,
    RawIp,
    RawV4,
    RawV6,
    Null,
    Sll,
    Ppp,
    Chdlc,
}

const ETH_IPV4: [u8; 2] = [0x08, 0x00];
const ETH_IPV6: [u8; 2] = [0x86, 0xdd];

fn link_of(linktype: u32) -> Option<Link> {
    match linktype {
        1 => Some(Link::Ethernet),
        101 | 12 | 14 => Some(Link::RawIp),
        228 => Some(Link::RawV4),
        229 => Some(Link::RawV6),
        0 | 108 => Some(Link::Null),
        113 => Some(Link::Sll),
        9 | 50 => Some(Link::Ppp),
        104 => Some(Link::Chdlc),
        _ => None,
    }
}

/// The EtherType and the offset of the network packet in a record, or `None` to skip it.
fn network_of(link: Link, rec: &[u8]) -> Option<([u8; 2], usize)> {
    let by_version = |b: &[u8], off: usize| match b.get(off).map(|v| v >> 4) {
        Some(4) => Some((ETH_IPV4, off)),
        Some(6) => Some((ETH_IPV6, off)),
        _ => None,
    };
    match link {
        Link::Ethernet => None,
        Link::RawIp => by_version(rec, 0),
        Link::RawV4 => Some((ETH_IPV4, 0)),
        Link::RawV6 => Some((ETH_IPV6, 0)),
        // Address family in the capturing host's byte order; either order is tried.
        Link::Null => {
            let fam: [u8; 4] = rec.get(..4)?.try_into().ok()?;
            let le = u32::from_le_bytes(fam);
            let be = u32::from_be_bytes(fam);
            match (le, be) {
                (2, _) | (_, 2) => Some((ETH_IPV4, 4)),
                (24 | 28 | 30, _) | (_, 24 | 28 | 30) => Some((ETH_IPV6, 4)),
                _ => None,
            }
        }
        Link::Sll => {
            let proto: [u8; 2] = rec.get(14..16)?.try_into().ok()?;
            Some((proto, 16))
        }
        // Cisco HDLC: address (0x0f unicast, 0x8f broadcast), control, then an EtherType.
        Link::Chdlc => {
            let proto: [u8; 2] = rec.get(2..4)?.try_into().ok()?;
            Some((proto, 4))
        }
        Link::Ppp => {
            // Optional HDLC address/control bytes ff 03, then the protocol: two bytes, or one
            // when the peers negotiated protocol-field compression (RFC 1661 6.5: a first byte
            // with its low bit set is the whole field).
            let off = if rec.get(..2) == Some(&[0xff, 0x03]) {
                2
            } else {
                0
            };
            match rec.get(off..)? {
                [0x00, 0x21, ..] => Some((ETH_IPV4, off + 2)),
                [0x00, 0x57, ..] => Some((ETH_IPV6, off + 2)),
                [0x21, ..] => Some((ETH_IPV4, off + 1)),
                [0x57, ..] => Some((ETH_IPV6, off + 1)),
                _ => None,
            }
        }
    }
}

/// The record at `buf[start..start + len]` as an Ethernet frame, in place: for other link types
/// the synthesized header is written over the bytes in front of the network packet (the link
/// header, or the headroom). `None` when the record carries no IP packet.
fn ethernet_in(buf: &mut [u8], start: usize, len: usize, link: Link) -> Option<(usize, usize)> {
    let rec = buf.get(start..start.checked_add(len)?)?;
    if link == Link::Ethernet {
        return Some((start, len));
    }
    let (ethertype, off) = network_of(link, rec)?;
    let payload = start.checked_add(off)?;
    let header = payload.checked_sub(HEADROOM)?;
    let h = buf.get_mut(header..payload)?;
    h.fill(0);
    h.get_mut(12..14)?.copy_from_slice(&ethertype);
    Some((header, len.checked_sub(off)? + HEADROOM))
}

/// Microseconds of `ticks` at the pcapng resolution byte `if_tsresol` (high bit clear: 10^-n s;
/// set: 2^-n s), saturating.
fn ticks_to_micros(ticks: u64, tsresol: u8) -> u64 {
    let n = u32::from(tsresol & 0x7f);
    let us = if tsresol & 0x80 == 0 {
        if n >= 6 {
            10u128
                .checked_pow(n - 6)
                .map_or(0, |d| u128::from(ticks) / d)
        } else {
            u128::from(ticks) * 10u128.pow(6 - n)
        }
    } else {
        (u128::from(ticks) * 1_000_000) >> n
    };
    u64::try_from(us).unwrap_or(u64::MAX)
}

#[derive(Clone, Copy, Debug)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let a: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(match self {
            Order::Little => u16::from_le_bytes(a),
            Order::Big => u16::from_be_bytes(a),
        })
    }

    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(match self {
            Order::Little => u32::from_le_bytes(a),
            Order::Big => u32::from_be_bytes(a),
        })
    }
}

/// One pcapng interface: how to read its packets.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    tsoffset: i64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        order: Order,
        nanos: bool,
        snaplen: u32,
        link: Link,
    },
    PcapNg {
        order: Order,
        interfaces: Vec<Interface>,
    },
}

const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_OPB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;

/// A capture read as a stream: one record in memory at a time.
#[derive(Debug)]
pub struct CaptureReader<R> {
    input: R,
    format: Format,
    /// Bytes consumed from `input`.
    offset: u64,
    /// The current record, after [`HEADROOM`] bytes.
    buf: Vec<u8>,
    /// What was met besides frames.
    pub stats: ReadStats,
    done: bool,
}

/// `read_exact` that tells a clean end (nothing read: `Ok(false)`) from a cut (`truncated`).
fn fill<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<bool, LoadError> {
    let mut got = 0;
    while got < buf.len() {
        let Some(rest) = buf.get_mut(got..) else {
            break;
        };
        match input.read(rest) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(LoadError::Io(ErrorKind::UnexpectedEof, String::new())),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(LoadError::Io(e.kind(), e.to_string())),
        }
    }
    Ok(true)
}

fn is_cut(e: &LoadError) -> bool {
    matches!(e, LoadError::Io(ErrorKind::UnexpectedEof, _))
}

impl CaptureReader<BufReader<std::fs::File>> {
    /// Open a pcap or pcapng file and read its header.
    pub fn open(path: &Path) -> Result<Self, PcapError> {
        let file = std::fs::File::open(path).map_err(|source| PcapError::Io {
            path: path.to_owned(),
            source,
        })?;
        CaptureReader::new(BufReader::with_capacity(1 << 20, file)).map_err(|e| e.at(path))
    }
}

impl CaptureReader<BufReader<std::fs::File>> {
    /// Bytes read so far and the file's size (0, 0 when the file cannot say).
    fn position(&mut self) -> (u64, u64) {
        use std::io::Seek;
        let total = self.input.get_ref().metadata().map_or(0, |m| m.len());
        let done = self.input.stream_position().unwrap_or(0);
        (done.min(total), total)
    }
}

impl<R: Read> CaptureReader<BufReader<R>> {
    /// The frame of the record `k` records after the next one (0: the next one), if that
    /// record is whole in the read buffer already: a look ahead that reads nothing, moves
    /// nothing and changes no count (for [`crate::io::FrameHandler::prefetch`]). Only in pcap
    /// files of Ethernet frames (other link types are rewritten as they are read); `None` when
    /// the record is not buffered yet, at the end, and for pcapng.
    pub fn peek(&self, k: usize) -> Option<&[u8]> {
        let Format::Pcap {
            order,
            link: Link::Ethernet,
            ..
        } = self.format
        else {
            return None;
        };
        if self.done {
            return None;
        }
        let buf = self.input.buffer();
        let mut at = 0usize;
        for _ in 0..k {
            let incl = usize::try_from(order.u32(buf, at.checked_add(8)?)?).ok()?;
            at = at.checked_add(16)?.checked_add(incl)?;
        }
        let incl = usize::try_from(order.u32(buf, at.checked_add(8)?)?).ok()?;
        let start = at.checked_add(16)?;
        buf.get(start..start.checked_add(incl)?)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Read the file header from `input`.
    pub fn new(mut input: R) -> Result<Self, LoadError> {
        let mut magic = [0u8; 4];
        if !fill(&mut input, &mut magic).map_err(|_| too_short())? {
            return Err(too_short());
        }
        if u32::from_le_bytes(magic) == PCAPNG_SHB {
            let mut r = CaptureReader {
                input,
                format: Format::PcapNg {
                    order: Order::Little,
                    interfaces: Vec::new(),
                },
                offset: 0,
                buf: Vec::new(),
                stats: ReadStats::default(),
                done: false,
            };
            let mut len = [0u8; 4];
            if !fill(&mut r.input, &mut len).map_err(|_| too_short())? {
                return Err(too_short());
            }
            r.section_header(0, len).map_err(|e| match e {
                LoadError::Io(ErrorKind::UnexpectedEof, _) => too_short(),
                LoadError::Corrupt(_, m) => LoadError::Format(m),
                e => e,
            })?;
            return Ok(r);
        }
        let mut rest = [0u8; 20];
        if !fill(&mut input, &mut rest).map_err(|_| too_short())? {
            return Err(too_short());
        }
        let (order, nanos) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (Order::Little, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (Order::Big, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (Order::Little, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (Order::Big, true),
            _ => {
                return Err(LoadError::Format(format!(
                    "unknown magic number {:02x}{:02x}{:02x}{:02x} (neither pcap nor pcapng)",
                    magic[0], magic[1], magic[2], magic[3]
                )));
            }
        };
        let snaplen = order.u32(&rest, 12).unwrap_or(0);
        // The upper 4 bits hold the FCS length (pcap-linktype); the link type is the low 16.
        let linktype = order.u32(&rest, 16).unwrap_or(0) & 0xffff;
        let link = link_of(linktype).ok_or(LoadError::LinkType(linktype))?;
        Ok(CaptureReader {
            input,
            format: Format::Pcap {
                order,
                nanos,
                snaplen,
                link,
            },
            offset: 24,
            buf: Vec::new(),
            stats: ReadStats::default(),
            done: false,
        })
    }

    /// The next frame as Ethernet with its capture time, `Ok(None)` at the end (also when the
    /// file ends inside a record: [`ReadStats::truncated`] says so). A corrupt record or block
    /// is an error; nothing is read after it.
    pub fn next_frame(&mut self) -> Result<Option<(Timestamp, &[u8])>, LoadError> {
        if self.done {
            return Ok(None);
        }
        let found = match &self.format {
            Format::Pcap { .. } => self.next_pcap(),
            Format::PcapNg { .. } => self.next_pcapng(),
        };
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                self.done = true;
                if is_cut(&e) {
                    self.stats.truncated = true;
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let Some((ts, start, len)) = found else {
            self.done = true;
            return Ok(None);
        };
        self.stats.frames += 1;
        self.stats.bytes += len as u64;
        self.stats.span = Some(match self.stats.span {
            None => (ts, ts),
            Some((first, last)) => (first, last.max(ts)),
        });
        let frame = self.buf.get(start..start + len).unwrap_or(&[]);
        Ok(Some((ts, frame)))
    }

    /// Read `len` bytes into the buffer after the headroom.
    fn read_record(&mut self, len: usize) -> Result<(), LoadError> {
        self.buf.resize(HEADROOM + len, 0);
        let body = self.buf.get_mut(HEADROOM..).unwrap_or_default();
        if !fill(&mut self.input, body)? && len > 0 {
            return Err(LoadError::Io(ErrorKind::UnexpectedEof, String::new()));
        }
        self.offset += len as u64;
        Ok(())
    }

    /// The next pcap record that holds a frame: (time, start, length) in `buf`.
    fn next_pcap(&mut self) -> Result<Option<(Timestamp, usize, usize)>, LoadError> {
        let Format::Pcap {
            order,
            nanos,
            snaplen,
            link,
        } = self.format
        else {
            return Ok(None);
        };
        loop {
            let at = self.offset;
            let mut h = [0u8; 16];
            if !fill(&mut self.input, &mut h)? {
                return Ok(None);
            }
            self.offset += 16;
            let field = |i| order.u32(&h, i).unwrap_or(0);
            let (secs, frac, incl) = (field(0), field(4), field(8));
            if incl > MAX_RECORD {
                return Err(LoadError::Corrupt(
                    at,
                    format!(
                        "a record of {incl} bytes, longer than any capture holds ({MAX_RECORD})"
                    ),
                ));
            }
            if snaplen > 0 && incl > snaplen {
                return Err(LoadError::Corrupt(
                    at,
                    format!("a record of {incl} bytes, over the file's snaplen of {snaplen}"),
                ));
            }
            let len = incl as usize;
            self.read_record(len)?;
            let micros = if nanos { frac / 1000 } else { frac };
            let ts = Timestamp::from_secs_micros(u64::from(secs), micros);
            match ethernet_in(&mut self.buf, HEADROOM, len, link) {
                Some((start, len)) => return Ok(Some((ts, start, len))),
                None => self.stats.skipped += 1,
            }
        }
    }

    /// The next pcapng packet that holds a frame: (time, start, length) in `buf`.
    fn next_pcapng(&mut self) -> Result<Option<(Timestamp, usize, usize)>, LoadError> {
        loop {
            let Format::PcapNg { order, .. } = self.format else {
                return Ok(None);
            };
            let at = self.offset;
            let mut h = [0u8; 8];
            if !fill(&mut self.input, &mut h)? {
                return Ok(None);
            }
            let kind = order.u32(&h, 0).unwrap_or(0);
            if kind == PCAPNG_SHB {
                // A new section may change the byte order: its length is read with its magic.
                let len: [u8; 4] = h
                    .get(4..8)
                    .and_then(|l| l.try_into().ok())
                    .unwrap_or_default();
                self.section_header(at, len)?;
                continue;
            }
            self.offset = at + 8;
            let total = order.u32(&h, 4).unwrap_or(0);
            if total < 12 || total % 4 != 0 {
                return Err(LoadError::Corrupt(
                    at,
                    format!("a block of type {kind} with a length of {total} bytes"),
                ));
            }
            if total > MAX_BLOCK {
                return Err(LoadError::Corrupt(
                    at,
                    format!(
                        "a block of type {kind} of {total} bytes, longer than any capture holds ({MAX_BLOCK})"
                    ),
                ));
            }
            let rest = (total - 8) as usize;
            self.read_record(rest)?;
            let body_len = rest - 4;
            let trailer = self
                .buf
                .get(HEADROOM..)
                .and_then(|b| order.u32(b, body_len));
            if trailer != Some(total) {
                return Err(LoadError::Corrupt(
                    at,
                    format!("a block of type {kind} whose trailing length differs"),
                ));
            }
            let found = match kind {
                PCAPNG_IDB => {
                    self.interface(at, body_len)?;
                    None
                }
                PCAPNG_EPB => self.packet(at, body_len, 20, |b| {
                    Some((order.u32(b, 0)?, ts64(order, b, 4)?, order.u32(b, 12)?))
                })?,
                PCAPNG_OPB => self.packet(at, body_len, 20, |b| {
                    Some((
                        u32::from(order.u16(b, 0)?),
                        ts64(order, b, 4)?,
                        order.u32(b, 12)?,
                    ))
                })?,
                PCAPNG_SPB => self.simple_packet(at, body_len, order)?,
                _ => None,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    /// A section header block at `at` whose type and length (`len_bytes`, in the byte order its
    /// magic, read next, tells) were read.
    fn section_header(&mut self, at: u64, len_bytes: [u8; 4]) -> Result<(), LoadError> {
        let mut magic = [0u8; 4];
        if !fill(&mut self.input, &mut magic)? {
            return Err(LoadError::Io(ErrorKind::UnexpectedEof, String::new()));
        }
        let order = if u32::from_le_bytes(magic) == PCAPNG_BOM {
            Order::Little
        } else if u32::from_be_bytes(magic) == PCAPNG_BOM {
            Order::Big
        } else {
            return Err(LoadError::Corrupt(
                at,
                "a section header without its byte-order magic".into(),
            ));
        };
        let total = order.u32(&len_bytes, 0).unwrap_or(0);
        if !(28..=MAX_BLOCK).contains(&total) || total % 4 != 0 {
            return Err(LoadError::Corrupt(
                at,
                format!("a section header block of {total} bytes"),
            ));
        }
        self.offset = at + 12;
        let rest = (total - 12) as usize;
        self.read_record(rest)?;
        let body = self.buf.get(HEADROOM..).unwrap_or_default();
        if order.u32(body, rest - 4) != Some(total) {
            return Err(LoadError::Corrupt(
                at,
                "section header block whose trailing length differs".into(),
            ));
        }
        self.format = Format::PcapNg {
            order,
            interfaces: Vec::new(),
        };
        Ok(())
    }

    /// An interface description block, its body in `buf[HEADROOM..][..body_len]`.
    fn interface(&mut self, at: u64, body_len: usize) -> Result<(), LoadError> {
        let Format::PcapNg { order, interfaces } = &mut self.format else {
            return Ok(());
        };
        let order = *order;
        let body = self
            .buf
            .get(HEADROOM..HEADROOM + body_len)
            .unwrap_or_default();
        let (Some(linktype), Some(snaplen)) = (order.u16(body, 0), order.u32(body, 4)) else {
            return Err(LoadError::Corrupt(
                at,
                "an interface description block shorter than its fields".into(),
            ));
        };
        if interfaces.len() >= MAX_INTERFACES {
            return Err(LoadError::Corrupt(
                at,
                format!("more than {MAX_INTERFACES} interface description blocks in one section"),
            ));
        }
        let mut iface = Interface {
            linktype: u32::from(linktype),
            snaplen,
            tsresol: 6,
            tsoffset: 0,
        };
        let mut opt = 8;
        while let (Some(code), Some(len)) = (order.u16(body, opt), order.u16(body, opt + 2)) {
            let value = opt + 4;
            let len = usize::from(len);
            match code {
                0 => break,
                9 if len == 1 => {
                    if let Some(&r) = body.get(value) {
                        iface.tsresol = r;
                    }
                }
                14 if len == 8 => {
                    if let Some(v) = body.get(value..value + 8) {
                        let a: [u8; 8] = v.try_into().unwrap_or_default();
                        iface.tsoffset = match order {
                            Order::Little => i64::from_le_bytes(a),
                            Order::Big => i64::from_be_bytes(a),
                        };
                    }
                }
                _ => {}
            }
            opt = value + len.next_multiple_of(4);
        }
        interfaces.push(iface);
        Ok(())
    }

    /// An enhanced or obsolete packet block: `fields` reads (interface, ticks, captured length)
    /// from the body; the data starts at `data_at`.
    fn packet(
        &mut self,
        at: u64,
        body_len: usize,
        data_at: usize,
        fields: impl Fn(&[u8]) -> Option<(u32, u64, u32)>,
    ) -> Result<Option<(Timestamp, usize, usize)>, LoadError> {
        let body = self
            .buf
            .get(HEADROOM..HEADROOM + body_len)
            .unwrap_or_default();
        let Some((iface, ticks, caplen)) = fields(body) else {
            return Err(LoadError::Corrupt(
                at,
                "a packet block shorter than its fields".into(),
            ));
        };
        if caplen > MAX_RECORD {
            return Err(LoadError::Corrupt(
                at,
                format!("a packet of {caplen} bytes, longer than any capture holds ({MAX_RECORD})"),
            ));
        }
        if data_at + caplen as usize > body_len {
            return Err(LoadError::Corrupt(
                at,
                format!("a packet of {caplen} bytes in a block that holds fewer"),
            ));
        }
        self.frame_of(at, iface, Some(ticks), data_at, caplen)
    }

    fn simple_packet(
        &mut self,
        at: u64,
        body_len: usize,
        order: Order,
    ) -> Result<Option<(Timestamp, usize, usize)>, LoadError> {
        let body = self
            .buf
            .get(HEADROOM..HEADROOM + body_len)
            .unwrap_or_default();
        let Some(orig) = order.u32(body, 0) else {
            return Err(LoadError::Corrupt(
                at,
                "a simple packet block shorter than its fields".into(),
            ));
        };
        // The captured length is the original length, cut at the interface's snaplen and at
        // what the block holds.
        let snap = match &self.format {
            Format::PcapNg { interfaces, .. } => interfaces.first().map_or(0, |i| i.snaplen),
            Format::Pcap { .. } => 0,
        };
        let mut caplen = orig.min(u32::try_from(body_len - 4).unwrap_or(u32::MAX));
        if snap > 0 {
            caplen = caplen.min(snap);
        }
        self.frame_of(at, 0, None, 4, caplen)
    }

    /// The frame of a packet of interface `iface`, its data at `data_at` in the block body.
    fn frame_of(
        &mut self,
        at: u64,
        iface: u32,
        ticks: Option<u64>,
        data_at: usize,
        caplen: u32,
    ) -> Result<Option<(Timestamp, usize, usize)>, LoadError> {
        let Format::PcapNg { interfaces, .. } = &self.format else {
            return Ok(None);
        };
        let Some(i) = interfaces.get(usize::try_from(iface).unwrap_or(usize::MAX)) else {
            *self.stats.unsupported.entry(u32::MAX).or_default() += 1;
            return Ok(None);
        };
        let i = *i;
        if i.snaplen > 0 && caplen > i.snaplen {
            return Err(LoadError::Corrupt(
                at,
                format!(
                    "a packet of {caplen} bytes, over its interface's snaplen of {}",
                    i.snaplen
                ),
            ));
        }
        let Some(link) = link_of(i.linktype) else {
            *self.stats.unsupported.entry(i.linktype).or_default() += 1;
            return Ok(None);
        };
        let ts = match ticks {
            Some(t) => {
                let us = ticks_to_micros(t, i.tsresol);
                let shift = i.tsoffset.saturating_mul(1_000_000);
                Timestamp(us.saturating_add_signed(shift))
            }
            None => Timestamp(0),
        };
        match ethernet_in(&mut self.buf, HEADROOM + data_at, caplen as usize, link) {
            Some((start, len)) => Ok(Some((ts, start, len))),
            None => {
                self.stats.skipped += 1;
                Ok(None)
            }
        }
    }
}

/// A 64-bit pcapng timestamp (high word first) at `at`.
fn ts64(order: Order, b: &[u8], at: usize) -> Option<u64> {
    Some((u64::from(order.u32(b, at)?) << 32) | u64::from(order.u32(b, at + 4)?))
}

fn too_short() -> LoadError {
    LoadError::Format("shorter than a capture file header".into())
}

#[derive(Clone, Copy, Debug)]
struct FrameRef {
    ts: Timestamp,
    start: usize,
    len: usize,
}

/// A capture in memory, every frame as Ethernet.
#[derive(Debug, Default)]
pub struct Capture {
    data: Vec<u8>,
    frames: Vec<FrameRef>,
    /// What the reader met besides frames.
    pub stats: ReadStats,
}

impl Capture {
    /// Read a pcap or pcapng file into memory.
    pub fn load(path: &Path) -> Result<Capture, PcapError> {
        let mut r = CaptureReader::open(path)?;
        let (_, size) = r.position();
        Capture::collect(&mut r, size).map_err(|e| e.at(path))
    }

    /// Parse a capture held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Capture, LoadError> {
        let size = u64::try_from(bytes.len()).unwrap_or(0);
        Capture::collect(&mut CaptureReader::new(bytes)?, size)
    }

    /// Read every frame; `size`, the file's size, bounds the frames' bytes (they are the file
    /// less its headers), so their buffer is allocated once. Grown by doubling instead, a large
    /// capture was copied a few times while it loaded, and how often depended on what the heap
    /// held before (the replay's figures with and without address lists differed by it).
    fn collect<R: Read>(r: &mut CaptureReader<R>, size: u64) -> Result<Capture, LoadError> {
        let mut cap = Capture::default();
        cap.data
            .reserve_exact(usize::try_from(size.min(MAX_RESERVE)).unwrap_or(0));
        while let Some((ts, frame)) = r.next_frame()? {
            let start = cap.data.len();
            cap.data.extend_from_slice(frame);
            cap.frames.push(FrameRef {
                ts,
                start,
                len: frame.len(),
            });
        }
        cap.stats = r.stats.clone();
        Ok(cap)
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the capture holds no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Total bytes of all frames.
    pub fn bytes(&self) -> u64 {
        self.data.len() as u64
    }

    /// Frames with their capture times, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (Timestamp, &[u8])> + '_ {
        self.frames
            .iter()
            .map(|f| (f.ts, self.data.get(f.start..f.start + f.len).unwrap_or(&[])))
    }

    /// Time of the first and latest frame.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        self.stats.span
    }
}

/// The frames of a capture for replay: streamed from the file, or (to pass over them several
/// times without reading the disk) held in memory.
#[derive(Debug)]
pub enum Frames {
    /// Read from the file as they are used.
    Stream {
        /// The file.
        path: PathBuf,
        /// The reader of the current pass.
        reader: Box<CaptureReader<BufReader<std::fs::File>>>,
    },
    /// Held in memory.
    Memory {
        /// The frames.
        capture: Capture,
        /// The next frame's index.
        next: usize,
    },
}

impl Frames {
    /// Open `path`: streamed, or read whole when `in_memory`.
    pub fn open(path: &Path, in_memory: bool) -> Result<Frames, PcapError> {
        if in_memory {
            return Ok(Frames::Memory {
                capture: Capture::load(path)?,
                next: 0,
            });
        }
        Ok(Frames::Stream {
            path: path.to_owned(),
            reader: Box::new(CaptureReader::open(path)?),
        })
    }

    /// The next frame, `Ok(None)` at the end of the pass.
    pub fn next_frame(&mut self) -> Result<Option<(Timestamp, &[u8])>, PcapError> {
        match self {
            Frames::Stream { path, reader } => reader.next_frame().map_err(|e| e.at(path)),
            Frames::Memory { capture, next } => {
                let f = capture.frames.get(*next).map(|f| {
                    let data = capture.data.get(f.start..f.start + f.len).unwrap_or(&[]);
                    (f.ts, data)
                });
                *next += 1;
                Ok(f)
            }
        }
    }

    /// The frame `k` frames after the next one (0: the next one) if it can be seen without
    /// reading ([`CaptureReader::peek`]; held in memory: always while there is one).
    pub fn peek(&self, k: usize) -> Option<&[u8]> {
        match self {
            Frames::Stream { reader, .. } => reader.peek(k),
            Frames::Memory { capture, next } => {
                let f = capture.frames.get(next.checked_add(k)?)?;
                capture.data.get(f.start..f.start + f.len)
            }
        }
    }

    /// Start the next pass from the first frame.
    pub fn rewind(&mut self) -> Result<(), PcapError> {
        match self {
            Frames::Stream { path, reader } => {
                **reader = CaptureReader::open(path)?;
            }
            Frames::Memory { next, .. } => *next = 0,
        }
        Ok(())
    }

    /// How far the current pass is, and its whole, in the same unit: bytes of the file when
    /// streamed, frames when held in memory. The streamed position asks the file (a system
    /// call): callers poll it now and then, not per frame.
    pub fn progress(&mut self) -> (u64, u64) {
        match self {
            Frames::Stream { reader, .. } => reader.position(),
            Frames::Memory { capture, next } => {
                let total = capture.frames.len() as u64;
                ((*next as u64).min(total), total)
            }
        }
    }

    /// What the reader met besides frames (of the current pass when streamed).
    pub fn stats(&self) -> &ReadStats {
        match self {
            Frames::Stream { reader, .. } => &reader.stats,
            Frames::Memory { capture, .. } => &capture.stats,
        }
    }
}

/// Writes Ethernet frames to a pcap file (microsecond timestamps).
#[derive(Debug)]
pub struct PcapSink {
    path: PathBuf,
    writer: PcapWriter<BufWriter<std::fs::File>>,
    /// Frames written.
    pub frames: u64,
}

impl PcapSink {
    /// Create (truncate) `path`.
    pub fn create(path: &Path) -> Result<PcapSink, PcapError> {
        let file = std::fs::File::create(path).map_err(|source| PcapError::Io {
            path: path.to_owned(),
            source,
        })?;
        // The largest snaplen readers accept: a frame over 65,535 bytes (the default) is written,
        // not refused.
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            snaplen: MAX_RECORD,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header).map_err(|e| {
            PcapError::Format {
                path: path.to_owned(),
                message: e.to_string(),
            }
        })?;
        Ok(PcapSink {
            path: path.to_owned(),
            writer,
            frames: 0,
        })
    }

    /// Append a frame.
    pub fn write(&mut self, ts: Timestamp, frame: &[u8]) -> Result<(), PcapError> {
        let d = std::time::Duration::from_micros(ts.micros());
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.writer
            .write_packet(&PcapPacket::new(d, len, frame))
            .map_err(|e| PcapError::Format {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        self.frames += 1;
        Ok(())
    }

    /// Flush to disk.
    pub fn finish(self) -> Result<(), PcapError> {
        let path = self.path;
        self.writer
            .into_writer()
            .flush()
            .map_err(|source| PcapError::Io { path, source })
    }
}

/// Where [`PcapIo`] writes what leaves the device: forwarded frames, every injected frame, and
/// the injected frames by direction (toward the sender of the frame that caused them, toward
/// its receiver). Each is optional.
#[derive(Debug, Default)]
pub struct PcapOutputs {
    /// Forwarded frames.
    pub forwarded: Option<PcapSink>,
    /// Every injected frame, in order.
    pub injected: Option<PcapSink>,
    /// Injected frames toward the source of the frame that caused them.
    pub toward_source: Option<PcapSink>,
    /// Injected frames toward the destination of the frame that caused them.
    pub toward_destination: Option<PcapSink>,
}

impl PcapOutputs {
    /// Flush every file to disk.
    pub fn finish(self) -> Result<(), PcapError> {
        for sink in [
            self.forwarded,
            self.injected,
            self.toward_source,
            self.toward_destination,
        ]
        .into_iter()
        .flatten()
        {
            sink.finish()?;
        }
        Ok(())
    }
}

/// A capture as a device ([`PacketIo`]): one receive port (0) fed by the capture's frames with
/// their capture time, passed over `loops` times (each pass shifted past the previous one so
/// flows, windows and blocks see time move on); forwarded and injected frames are written to
/// [`PcapOutputs`] with the time of the frame that caused them, injected ones also by
/// direction. At the end of the last pass the device is at its end ([`PacketIo::at_end`]).
#[derive(Debug)]
pub struct PcapIo {
    frames: Frames,
    outputs: PcapOutputs,
    loops: u32,
    pass: u32,
    // Added to every timestamp of the current pass.
    offset: u64,
    ended: bool,
    stats: PortStats,
    injected: [u64; 2],
    first_pass: Option<ReadStats>,
    error: Option<PcapError>,
    injections: Vec<Injection>,
}

impl PcapIo {
    /// Replay `frames` `loops` times (at least once) into `outputs`.
    pub fn new(frames: Frames, loops: u32, outputs: PcapOutputs) -> PcapIo {
        PcapIo {
            frames,
            outputs,
            loops: loops.max(1),
            pass: 0,
            offset: 0,
            ended: false,
            stats: PortStats::default(),
            injected: [0; 2],
            first_pass: None,
            error: None,
            injections: Vec::new(),
        }
    }

    /// The error that made [`PacketIo::poll`] fail, with its file (taken).
    pub fn take_error(&mut self) -> Option<PcapError> {
        self.error.take()
    }

    /// What the reader met besides frames in the first pass, once that pass ended.
    pub fn first_pass(&self) -> Option<&ReadStats> {
        self.first_pass.as_ref()
    }

    /// How far the replay is over all its passes, and its whole, in the unit of
    /// [`Frames::progress`].
    pub fn progress(&mut self) -> (u64, u64) {
        let (done, per_pass) = self.frames.progress();
        let loops = u64::from(self.loops);
        let pass = u64::from(self.pass.min(self.loops.saturating_sub(1)));
        let total = per_pass.saturating_mul(loops);
        let done = if self.ended {
            total
        } else {
            per_pass.saturating_mul(pass).saturating_add(done)
        };
        (done.min(total), total)
    }

    /// Injected frames written toward the source and toward the destination.
    pub fn injected_by_direction(&self) -> (u64, u64) {
        (self.injected[0], self.injected[1])
    }

    /// Close the device and flush its files.
    pub fn finish(self) -> Result<(), PcapError> {
        self.outputs.finish()
    }

    fn fail(&mut self, e: PcapError) -> std::io::Error {
        let io = std::io::Error::other(e.to_string());
        self.error = Some(e);
        io
    }

    // The end of a pass: start the next one, or end. True if there is a next pass.
    fn next_pass(&mut self) -> Result<bool, PcapError> {
        let stats = self.frames.stats();
        if self.pass == 0 {
            self.first_pass = Some(stats.clone());
        }
        self.pass += 1;
        if self.pass >= self.loops {
            self.ended = true;
            return Ok(false);
        }
        let shift = stats
            .span
            .map_or(0, |(a, b)| b.since(a) + Timestamp::SECOND);
        self.offset = shift.saturating_mul(u64::from(self.pass));
        self.frames.rewind()?;
        Ok(true)
    }
}

impl PacketIo for PcapIo {
    fn poll(&mut self, handler: &mut dyn FrameHandler, burst: usize) -> std::io::Result<usize> {
        let mut n = 0;
        // Asked once a burst: while the handler wants them, each frame is preceded by a hint
        // naming the frame `ahead` places after it, read in place from the reader's buffer.
        let ahead = handler.lookahead();
        while n < burst.max(1) && !self.ended {
            let PcapIo {
                frames,
                outputs,
                offset,
                stats,
                injected,
                injections,
                ..
            } = self;
            if ahead > 0
                && let Some(later) = frames.peek(ahead)
            {
                handler.prefetch(later);
            }
            let next = match frames.next_frame() {
                Ok(next) => next,
                Err(e) => return Err(self.fail(e)),
            };
            let Some((ts, frame)) = next else {
                match self.next_pass() {
                    Ok(_) => continue,
                    Err(e) => return Err(self.fail(e)),
                }
            };
            n += 1;
            let ts = ts.plus_micros(*offset);
            stats.rx_packets += 1;
            stats.rx_bytes += frame.len() as u64;
            let verdict = handler.on_frame(frame, RxMeta { port: 0, ts });
            let mut written: Result<(), PcapError> = Ok(());
            if verdict == Verdict::Forward {
                stats.tx_packets += 1;
                if let Some(sink) = outputs.forwarded.as_mut() {
                    written = sink.write(ts, frame);
                }
            }
            handler.take_injections(injections);
            // Most frames cause none: skip the drain's setup.
            if !injections.is_empty() {
                for inj in injections.drain(..) {
                    let (i, by_way) = match inj.toward {
                        Toward::Source => (0, outputs.toward_source.as_mut()),
                        Toward::Destination => (1, outputs.toward_destination.as_mut()),
                    };
                    if let Some(c) = injected.get_mut(i) {
                        *c += 1;
                    }
                    stats.tx_packets += 1;
                    for sink in [outputs.injected.as_mut(), by_way].into_iter().flatten() {
                        if written.is_ok() {
                            written = sink.write(ts, &inj.frame);
                        }
                    }
                }
            }
            if let Err(e) = written {
                return Err(self.fail(e));
            }
        }
        Ok(n)
    }

    fn stats(&self) -> Vec<PortStats> {
        vec![self.stats]
    }

    fn idle(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn at_end(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    pub(super) fn pcap_with(linktype: u32, records: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![];
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&linktype.to_le_bytes());
        for (i, r) in records.iter().enumerate() {
            out.extend_from_slice(&(100 + i as u32).to_le_bytes());
            out.extend_from_slice(&7u32.to_le_bytes());
            out.extend_from_slice(&(r.len() as u32).to_le_bytes());
            out.extend_from_slice(&(r.len() as u32).to_le_bytes());
            out.extend_from_slice(r);
        }
        out
    }

    #[test]
    fn raw_ip_gets_ethernet_header() {
        let v4 = [0x45u8, 0, 0, 20];
        let v6 = [0x60u8, 0, 0, 0];
        let cap = Capture::from_bytes(&pcap_with(101, &[&v4, &v6, &[0x10]])).unwrap();
        assert_eq!(cap.len(), 2);
        assert_eq!(cap.stats.skipped, 1);
        let frames: Vec<_> = cap.iter().collect();
        assert_eq!(frames[0].0, Timestamp(100_000_007));
        assert_eq!(&frames[0].1[12..14], &[0x08, 0x00]);
        assert_eq!(&frames[0].1[14..], &v4);
        assert_eq!(&frames[1].1[12..14], &[0x86, 0xdd]);
    }

    #[test]
    fn sll_null_and_ppp() {
        let mut sll = vec![0u8; 16];
        sll[14] = 0x08;
        sll.extend_from_slice(&[0x45, 1, 2, 3]);
        let cap = Capture::from_bytes(&pcap_with(113, &[&sll])).unwrap();
        assert_eq!(
            &cap.iter().next().unwrap().1[12..],
            &[0x08, 0x00, 0x45, 1, 2, 3]
        );
        let null = [2u8, 0, 0, 0, 0x45];
        let cap = Capture::from_bytes(&pcap_with(0, &[&null])).unwrap();
        assert_eq!(&cap.iter().next().unwrap().1[12..], &[0x08, 0x00, 0x45]);
        let ppp = [0xffu8, 0x03, 0x00, 0x57, 0x60];
        let cap = Capture::from_bytes(&pcap_with(9, &[&ppp])).unwrap();
        assert_eq!(&cap.iter().next().unwrap().1[12..], &[0x86, 0xdd, 0x60]);
        // Protocol-field compression: one byte.
        let compressed = [0x57u8, 0x60, 0x01];
        let cap = Capture::from_bytes(&pcap_with(9, &[&compressed])).unwrap();
        assert_eq!(
            &cap.iter().next().unwrap().1[12..],
            &[0x86, 0xdd, 0x60, 0x01]
        );
        let compressed_v4 = [0x21u8, 0x45];
        let cap = Capture::from_bytes(&pcap_with(9, &[&compressed_v4])).unwrap();
        assert_eq!(&cap.iter().next().unwrap().1[12..], &[0x08, 0x00, 0x45]);
    }

    // Cisco HDLC (link type 104): address, control, EtherType; a record too short for its
    // header is skipped.
    #[test]
    fn chdlc_gets_ethernet_header() {
        let v4 = [0x0fu8, 0x00, 0x08, 0x00, 0x45, 7];
        let v6 = [0x8fu8, 0x00, 0x86, 0xdd, 0x60];
        let cap = Capture::from_bytes(&pcap_with(104, &[&v4, &v6, &[0x0f, 0x00, 0x08]])).unwrap();
        assert_eq!(cap.len(), 2);
        assert_eq!(cap.stats.skipped, 1);
        let frames: Vec<_> = cap.iter().collect();
        assert_eq!(&frames[0].1[12..], &[0x08, 0x00, 0x45, 7]);
        assert_eq!(&frames[1].1[12..], &[0x86, 0xdd, 0x60]);
    }

    #[test]
    fn unknown_linktype_and_garbage_are_errors() {
        assert_eq!(
            Capture::from_bytes(&pcap_with(147, &[])).unwrap_err(),
            LoadError::LinkType(147)
        );
        assert!(matches!(
            Capture::from_bytes(b"not a capture"),
            Err(LoadError::Format(_))
        ));
    }

    #[test]
    fn truncated_record_keeps_earlier_frames() {
        let mut bytes = pcap_with(1, &[&[1u8; 20], &[2u8; 20]]);
        bytes.truncate(bytes.len() - 5);
        let cap = Capture::from_bytes(&bytes).unwrap();
        assert_eq!(cap.len(), 1);
        assert!(cap.stats.truncated);
    }

    /// `peek(k)` names the frame the reader hands over `k` reads later, whenever that record is
    /// whole in the read buffer (records of varying length, a buffer that holds a few, so
    /// records straddle its refills), and the look ahead moves nothing: the frames read with
    /// peeks in between are the frames read without, in order, with the same counts.
    #[test]
    fn peek_names_later_frames_and_moves_nothing() {
        let records: Vec<Vec<u8>> = (0..200u32)
            .map(|i| vec![u8::try_from(i % 251).unwrap(); 14 + (i as usize * 7) % 90])
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let bytes = pcap_with(1, &refs);
        let plain: Vec<Vec<u8>> = {
            let mut r = CaptureReader::new(BufReader::with_capacity(1000, &bytes[..])).unwrap();
            std::iter::from_fn(|| r.next_frame().unwrap().map(|(_, f)| f.to_vec())).collect()
        };
        assert_eq!(plain, records);
        let mut r = CaptureReader::new(BufReader::with_capacity(1000, &bytes[..])).unwrap();
        let (mut named, mut read) = (0, 0);
        loop {
            for k in 0..5 {
                if let Some(f) = r.peek(k) {
                    assert_eq!(
                        Some(f),
                        records.get(read + k).map(Vec::as_slice),
                        "{read} {k}"
                    );
                    named += 1;
                }
            }
            let Some((_, f)) = r.next_frame().unwrap() else {
                break;
            };
            assert_eq!(f, &records[read][..]);
            read += 1;
        }
        assert_eq!(read, records.len());
        assert_eq!(r.stats.frames, 200);
        // Most look-aheads find their record buffered (all but those across a refill).
        assert!(named > 400, "{named}");
        assert_eq!(r.peek(0), None);
        // Other link types are rewritten as they are read: never named ahead.
        let raw = pcap_with(101, &[&[0x45u8, 0, 0, 20][..]; 4]);
        let r = CaptureReader::new(BufReader::new(&raw[..])).unwrap();
        assert_eq!(r.peek(0), None);
    }

    /// A pcapng block of `kind` with `body` (padded to 4 bytes), little-endian.
    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        body.resize(body.len().next_multiple_of(4), 0);
        let total = (body.len() + 12) as u32;
        let mut out = kind.to_le_bytes().to_vec();
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&total.to_le_bytes());
        out
    }

    fn shb() -> Vec<u8> {
        let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        block(PCAPNG_SHB, &body)
    }

    /// An interface block: link type, snaplen, and the options given as (code, value).
    fn idb(linktype: u16, snaplen: u32, options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = linktype.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&snaplen.to_le_bytes());
        for (code, v) in options {
            body.extend_from_slice(&code.to_le_bytes());
            body.extend_from_slice(&(v.len() as u16).to_le_bytes());
            body.extend_from_slice(v);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        if !options.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        block(PCAPNG_IDB, &body)
    }

    fn epb(iface: u32, ticks: u64, data: &[u8]) -> Vec<u8> {
        let mut body = iface.to_le_bytes().to_vec();
        body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ticks as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(PCAPNG_EPB, &body)
    }

    fn times(bytes: &[u8]) -> Vec<u64> {
        Capture::from_bytes(bytes)
            .unwrap()
            .iter()
            .map(|(t, _)| t.micros())
            .collect()
    }

    #[test]
    fn pcapng_timestamps_follow_each_interfaces_resolution() {
        // 2026-12-06 20:00:00.123456 UTC in each resolution.
        let secs = 1_796_587_200u64;
        let us = secs * 1_000_000 + 123_456;
        let frame = [0u8; 60];
        let cases: &[(Option<u8>, u64)] = &[
            (None, us),                                                    // absent: microseconds
            (Some(6), us),                                                 // 10^-6
            (Some(9), us * 1000 + 789),                                    // 10^-9
            (Some(3), secs * 1000 + 123),                                  // 10^-3
            (Some(0), secs),                                               // seconds
            (Some(0x80 | 10), (secs << 10) + (123_456 << 10) / 1_000_000), // 2^-10
            (Some(0x80 | 20), (secs << 20) + (123_456 << 20) / 1_000_000), // 2^-20
        ];
        for &(res, ticks) in cases {
            let resol = res.map(|r| [r]);
            let opts: Vec<(u16, &[u8])> = resol.iter().map(|r| (9, &r[..])).collect();
            let mut f = shb();
            f.extend(idb(1, 0, &opts));
            f.extend(epb(0, ticks, &frame));
            let want = match res {
                Some(3) => secs * 1_000_000 + 123_000,
                Some(0) => secs * 1_000_000,
                Some(r) if r & 0x80 != 0 => {
                    let n = u32::from(r & 0x7f);
                    secs * 1_000_000 + ((((123_456u64 << n) / 1_000_000) * 1_000_000) >> n)
                }
                _ => us,
            };
            assert_eq!(times(&f), vec![want], "if_tsresol {res:?}");
        }
        // Two interfaces, two resolutions, and an offset in seconds on the second.
        let mut f = shb();
        f.extend(idb(1, 0, &[]));
        f.extend(idb(1, 0, &[(9, &[9]), (14, &(-10i64).to_le_bytes())]));
        f.extend(epb(0, us, &frame));
        f.extend(epb(1, us * 1000, &frame));
        assert_eq!(times(&f), vec![us, us - 10_000_000]);
    }

    #[test]
    fn pcap_nanosecond_and_big_endian() {
        let mut f = vec![0xa1, 0xb2, 0x3c, 0x4d];
        f.extend_from_slice(&2u16.to_be_bytes());
        f.extend_from_slice(&4u16.to_be_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_be_bytes());
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(&100u32.to_be_bytes());
        f.extend_from_slice(&7_654_321u32.to_be_bytes());
        f.extend_from_slice(&60u32.to_be_bytes());
        f.extend_from_slice(&60u32.to_be_bytes());
        f.extend_from_slice(&[0; 60]);
        assert_eq!(times(&f), vec![100_007_654]);
    }

    #[test]
    fn a_record_longer_than_any_capture_is_corrupt_not_cut() {
        // A complete 100 MB record: its header is refused before its bytes are read.
        let mut head = pcap_with(1, &[&[1u8; 20]]);
        head.extend_from_slice(&[0; 8]);
        head.extend_from_slice(&(100u32 << 20).to_le_bytes());
        head.extend_from_slice(&(100u32 << 20).to_le_bytes());
        let input = (&head[..]).chain(std::io::repeat(0).take(100 << 20));
        let mut r = CaptureReader::new(input).unwrap();
        assert!(r.next_frame().unwrap().is_some());
        let err = r.next_frame().unwrap_err();
        let LoadError::Corrupt(at, msg) = err else {
            panic!("{err:?}")
        };
        assert_eq!(at, 24 + 16 + 20);
        assert!(msg.contains("104857600 bytes"), "{msg}");
        assert!(!r.stats.truncated);
        assert_eq!(r.next_frame().unwrap(), None);
    }

    #[test]
    fn a_record_over_the_snaplen_is_corrupt() {
        let mut f = pcap_with(1, &[&[1u8; 20]]);
        f[16..20].copy_from_slice(&10u32.to_le_bytes());
        let err = Capture::from_bytes(&f).unwrap_err();
        assert!(
            matches!(&err, LoadError::Corrupt(24, m) if m.contains("snaplen of 10")),
            "{err:?}"
        );
        let mut g = shb();
        g.extend(idb(1, 10, &[]));
        g.extend(epb(0, 1, &[0; 20]));
        let err = Capture::from_bytes(&g).unwrap_err();
        assert!(
            matches!(&err, LoadError::Corrupt(_, m) if m.contains("snaplen of 10")),
            "{err:?}"
        );
    }

    #[test]
    fn too_many_interfaces_are_corrupt() {
        let mut f = shb();
        let one = idb(1, 0, &[]);
        for _ in 0..100_000 {
            f.extend_from_slice(&one);
        }
        let err = Capture::from_bytes(&f).unwrap_err();
        assert!(
            matches!(&err, LoadError::Corrupt(_, m) if m.contains("more than 65536 interface")),
            "{err:?}"
        );
    }

    #[test]
    fn unsupported_link_types_are_counted_per_type() {
        let mut f = shb();
        f.extend(idb(1, 0, &[]));
        f.extend(idb(147, 0, &[]));
        f.extend(epb(0, 1, &[0; 60]));
        f.extend(epb(1, 2, &[0; 60]));
        f.extend(epb(1, 3, &[0; 60]));
        f.extend(epb(7, 4, &[0; 60]));
        let cap = Capture::from_bytes(&f).unwrap();
        assert_eq!(cap.len(), 1);
        assert_eq!(
            cap.stats.unsupported,
            BTreeMap::from([(147, 2), (u32::MAX, 1)])
        );
    }

    #[test]
    fn pcapng_cut_inside_a_block_keeps_earlier_frames() {
        let mut f = shb();
        f.extend(idb(1, 0, &[]));
        f.extend(epb(0, 1, &[1; 60]));
        f.extend(epb(0, 2, &[2; 60]));
        f.truncate(f.len() - 9);
        let cap = Capture::from_bytes(&f).unwrap();
        assert_eq!(cap.len(), 1);
        assert!(cap.stats.truncated);
    }

    #[test]
    fn a_new_section_resets_interfaces() {
        let mut f = shb();
        f.extend(idb(1, 0, &[(9, &[9])]));
        f.extend(epb(0, 5_000, &[0; 60]));
        f.extend(shb());
        f.extend(idb(1, 0, &[]));
        f.extend(epb(0, 5_000, &[0; 60]));
        assert_eq!(times(&f), vec![5, 5_000]);
    }

    #[test]
    fn sink_writes_frames_over_64k() {
        let dir = std::env::temp_dir().join(format!("svm-pcap-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.pcap");
        let mut sink = PcapSink::create(&path).unwrap();
        let frame = vec![0x5a; 70_000];
        let written = sink.write(Timestamp(1), &frame);
        let finished = sink.finish();
        let cap = Capture::load(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        written.unwrap();
        finished.unwrap();
        assert_eq!(cap.unwrap().iter().next().unwrap().1, &frame[..]);
    }

    proptest::proptest! {
        /// Any bytes: no panic, every frame within the cap, and an error or an end.
        #[test]
        fn any_bytes_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512), ng in proptest::bool::ANY) {
            let mut input = if ng { shb() } else { pcap_with(1, &[]) };
            input.extend_from_slice(&bytes);
            if let Ok(mut r) = CaptureReader::new(&input[..]) {
                while let Ok(Some((_, f))) = r.next_frame() {
                    proptest::prop_assert!(f.len() <= MAX_RECORD as usize + HEADROOM);
                }
            }
        }

        /// Frames written at any power-of-ten resolution read back at microseconds.
        #[test]
        fn decimal_resolutions_round_trip(us in 0u64..4_000_000_000_000_000, n in 0u8..=9) {
            let ticks = if n >= 6 { us * 10u64.pow(u32::from(n) - 6) } else { us / 10u64.pow(6 - u32::from(n)) };
            let mut f = shb();
            f.extend(idb(1, 0, &[(9, &[n])]));
            f.extend(epb(0, ticks, &[0; 60]));
            let back = if n >= 6 { us } else { us / 10u64.pow(6 - u32::from(n)) * 10u64.pow(6 - u32::from(n)) };
            proptest::prop_assert_eq!(times(&f), vec![back]);
        }
    }

    #[test]
    fn sink_round_trips() {
        let dir = std::env::temp_dir().join(format!("svm-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.pcap");
        let mut sink = PcapSink::create(&path).unwrap();
        sink.write(Timestamp(1_500_000), &[0xaa; 60]).unwrap();
        sink.finish().unwrap();
        let cap = Capture::load(&path).unwrap();
        assert_eq!(
            cap.iter().next().unwrap(),
            (Timestamp(1_500_000), &[0xaa; 60][..])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod device_tests {
    use super::*;
    use crate::output::DropReason;

    /// Forwards frames whose last byte is even; drops odd ones and answers each with an
    /// injection toward its source and one toward its destination. Records the times it saw.
    #[derive(Default)]
    struct Toy {
        seen: Vec<Timestamp>,
        pending: Vec<Injection>,
    }

    impl FrameHandler for Toy {
        fn on_frame(&mut self, frame: &[u8], meta: RxMeta) -> Verdict {
            self.seen.push(meta.ts);
            if frame.last().is_some_and(|b| b % 2 == 0) {
                return Verdict::Forward;
            }
            for toward in [Toward::Source, Toward::Destination] {
                self.pending.push(Injection {
                    frame: frame.to_vec(),
                    toward,
                    rx_port: meta.port,
                });
            }
            Verdict::Drop(DropReason::Attack)
        }
        fn take_injections(&mut self, out: &mut Vec<Injection>) {
            out.append(&mut self.pending);
        }
    }

    /// Records the order of what it is handed: `(true, frame)` for a hint
    /// ([`FrameHandler::prefetch`]), `(false, frame)` for a frame to decide; asks for hints
    /// `ahead` frames ahead.
    struct Hinted {
        ahead: usize,
        log: Vec<(bool, u8)>,
    }

    impl FrameHandler for Hinted {
        fn on_frame(&mut self, frame: &[u8], _meta: RxMeta) -> Verdict {
            self.log.push((false, frame.last().copied().unwrap_or(0)));
            Verdict::Forward
        }
        fn take_injections(&mut self, _out: &mut Vec<Injection>) {}
        fn lookahead(&self) -> usize {
            self.ahead
        }
        fn prefetch(&mut self, frame: &[u8]) {
            self.log.push((true, frame.last().copied().unwrap_or(0)));
        }
    }

    /// While the handler asks for it, each frame is preceded by a hint naming the frame
    /// `ahead` places after it, streamed (across the read buffer's refills) or in memory; the
    /// frames are handed over once each, in order; without the ask, no hint.
    #[test]
    fn hints_name_the_frame_ahead_and_keep_the_order() {
        let frames: Vec<Vec<u8>> = (0..100u8).map(eth).collect();
        let records: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let bytes = tests::pcap_with(1, &records);
        let none = || PcapOutputs {
            forwarded: None,
            injected: None,
            toward_source: None,
            toward_destination: None,
        };
        let streamed = || {
            let dir = std::env::temp_dir().join(format!("svm-pcapio-hints-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
            let file = dir.join("hundred.pcap");
            std::fs::write(&file, &bytes).unwrap_or_else(|e| panic!("{e}"));
            let f = Frames::open(&file, false).unwrap_or_else(|e| panic!("{e}"));
            let _ = std::fs::remove_dir_all(&dir);
            f
        };
        for ahead in [0, 1, 3] {
            for frames in [capture(&frames), streamed()] {
                let mut io = PcapIo::new(frames, 1, none());
                let mut h = Hinted { ahead, log: vec![] };
                while !io.at_end() {
                    io.poll(&mut h, 7).unwrap_or_else(|e| panic!("{e}"));
                }
                let handed: Vec<u8> = h.log.iter().filter(|e| !e.0).map(|e| e.1).collect();
                assert_eq!(handed, (0..100u8).collect::<Vec<_>>());
                let mut decided = 0u8;
                let mut hints = 0;
                for &(hint, f) in &h.log {
                    if hint {
                        // Named `ahead` frames before it is handed over.
                        assert_eq!(f, decided + u8::try_from(ahead).unwrap(), "{:?}", h.log);
                        hints += 1;
                    } else {
                        decided += 1;
                    }
                }
                let want = if ahead == 0 { 0 } else { 100 - ahead };
                assert_eq!(hints, want, "ahead {ahead}");
            }
        }
    }

    fn eth(last: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        f.extend_from_slice(&[0x45, 0, 0, 20, last]);
        f
    }

    fn capture(frames: &[Vec<u8>]) -> Frames {
        let records: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        // Frame i at 100 + i seconds and 7 us.
        let capture =
            Capture::from_bytes(&tests::pcap_with(1, &records)).unwrap_or_else(|e| panic!("{e:?}"));
        Frames::Memory { capture, next: 0 }
    }

    /// Progress over two passes, streamed (bytes of the file) and in memory (frames): it never
    /// goes back, the second pass continues where the first ended, and it ends at the whole.
    #[test]
    fn progress_runs_over_every_pass_to_the_whole() {
        let frames = [eth(2), eth(3), eth(4)];
        let records: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let bytes = tests::pcap_with(1, &records);
        let dir = std::env::temp_dir().join(format!("svm-pcapio-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("three.pcap");
        std::fs::write(&file, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let streamed = Frames::open(&file, false).unwrap_or_else(|e| panic!("{e}"));
        for (frames, per_pass) in [(capture(&frames), 3), (streamed, bytes.len() as u64)] {
            let outputs = PcapOutputs {
                forwarded: None,
                injected: None,
                toward_source: None,
                toward_destination: None,
            };
            let mut io = PcapIo::new(frames, 2, outputs);
            let mut h = Toy::default();
            let mut seen = vec![io.progress()];
            while !io.at_end() {
                io.poll(&mut h, 1).unwrap_or_else(|e| panic!("{e}"));
                seen.push(io.progress());
            }
            let total = per_pass * 2;
            assert!(seen.iter().all(|&(_, t)| t == total), "{seen:?}");
            assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
            assert_eq!(seen.last().map(|p| p.0), Some(total));
            // Somewhere in the second pass, past the first one's whole.
            assert!(
                seen.iter().any(|&(d, _)| d > per_pass && d < total),
                "{seen:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn passes_shift_time_and_outputs_keep_direction() {
        let dir = std::env::temp_dir().join(format!("svm-pcapio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = |n: &str| dir.join(n);
        let sink = |n: &str| Some(PcapSink::create(&path(n)).unwrap_or_else(|e| panic!("{e}")));
        let outputs = PcapOutputs {
            forwarded: sink("fwd.pcap"),
            injected: sink("inj.pcap"),
            toward_source: sink("src.pcap"),
            toward_destination: sink("dst.pcap"),
        };
        let frames = [eth(2), eth(3), eth(4)];
        let mut io = PcapIo::new(capture(&frames), 2, outputs);
        let mut h = Toy::default();
        let mut polls = vec![];
        while !io.at_end() {
            polls.push(io.poll(&mut h, 2).unwrap_or_else(|e| panic!("{e}")));
        }
        // Two passes of three frames, in polls of at most two; the last poll finds the end.
        assert_eq!(polls.iter().sum::<usize>(), 6);
        // The second pass starts one second after the first one's span (2 s): at 103 s.
        let s = Timestamp::SECOND;
        assert_eq!(
            h.seen,
            [100, 101, 102, 103, 104, 105]
                .map(|t| Timestamp(t * s + 7))
                .to_vec()
        );
        assert_eq!(io.first_pass().map(|st| st.frames), Some(3));
        assert_eq!(io.injected_by_direction(), (2, 2));
        assert_eq!(io.stats()[0].rx_packets, 6);
        // Four forwarded, four injected.
        assert_eq!(io.stats()[0].tx_packets, 8);
        io.finish().unwrap_or_else(|e| panic!("{e}"));
        let read = |n: &str| {
            let cap = Capture::load(&path(n)).unwrap_or_else(|e| panic!("{e}"));
            cap.iter()
                .map(|(ts, f)| (ts.0 / s, f.last().copied()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read("fwd.pcap"),
            vec![
                (100, Some(2)),
                (102, Some(4)),
                (103, Some(2)),
                (105, Some(4))
            ]
        );
        assert_eq!(
            read("inj.pcap"),
            vec![
                (101, Some(3)),
                (101, Some(3)),
                (104, Some(3)),
                (104, Some(3))
            ]
        );
        assert_eq!(read("src.pcap"), vec![(101, Some(3)), (104, Some(3))]);
        assert_eq!(read("dst.pcap"), vec![(101, Some(3)), (104, Some(3))]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
