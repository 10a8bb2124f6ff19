//! The offline backend: a capture file read whole into memory, so replay (and `--loop`) measures
//! processing, not disk reads; plus a writer for the forwarded and injected captures.
//!
//! Frames of other link types are given an Ethernet header so one decoder serves all: raw IP
//! (101, 228, 229, 12, 14), BSD loopback (0), Linux cooked capture (113) and PPP (9). The
//! synthesized header has zero MAC addresses.

use std::borrow::Cow;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};

use crate::time::Timestamp;

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
    /// Frames dropped while loading: truncated records, or payloads of unknown protocols in
    /// non-Ethernet link types.
    pub skipped: u64,
    /// The file ended inside a record (a capture cut short); frames before it were kept.
    pub truncated: bool,
}

const ETH_IPV4: [u8; 2] = [0x08, 0x00];
const ETH_IPV6: [u8; 2] = [0x86, 0xdd];

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
}

fn link_of(linktype: u32) -> Option<Link> {
    match linktype {
        1 => Some(Link::Ethernet),
        101 | 12 | 14 => Some(Link::RawIp),
        228 => Some(Link::RawV4),
        229 => Some(Link::RawV6),
        0 | 108 => Some(Link::Null),
        113 => Some(Link::Sll),
        9 | 50 => Some(Link::Ppp),
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

impl Capture {
    /// Read a pcap or pcapng file.
    pub fn load(path: &Path) -> Result<Capture, PcapError> {
        let bytes = std::fs::read(path).map_err(|source| PcapError::Io {
            path: path.to_owned(),
            source,
        })?;
        Capture::from_bytes(&bytes).map_err(|e| match e {
            LoadError::Format(message) => PcapError::Format {
                path: path.to_owned(),
                message,
            },
            LoadError::LinkType(linktype) => PcapError::LinkType {
                path: path.to_owned(),
                linktype,
            },
        })
    }

    /// Parse a capture held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Capture, LoadError> {
        let mut cap = Capture::default();
        if bytes.get(..4) == Some(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            cap.load_pcapng(bytes)?;
        } else {
            cap.load_pcap(bytes)?;
        }
        Ok(cap)
    }

    fn push(&mut self, ts: Timestamp, link: Link, rec: &[u8]) {
        let start = self.data.len();
        if link == Link::Ethernet {
            self.data.extend_from_slice(rec);
        } else if let Some((ethertype, off)) = network_of(link, rec) {
            let Some(payload) = rec.get(off..) else {
                self.skipped += 1;
                return;
            };
            self.data.extend_from_slice(&[0; 12]);
            self.data.extend_from_slice(&ethertype);
            self.data.extend_from_slice(payload);
        } else {
            self.skipped += 1;
            return;
        }
        self.frames.push(FrameRef {
            ts,
            start,
            len: self.data.len() - start,
        });
    }

    fn load_pcap(&mut self, bytes: &[u8]) -> Result<(), LoadError> {
        let mut reader = PcapReader::new(bytes).map_err(|e| LoadError::Format(e.to_string()))?;
        let linktype = u32::from(reader.header().datalink);
        let link = link_of(linktype).ok_or(LoadError::LinkType(linktype))?;
        self.data.reserve(bytes.len());
        while let Some(pkt) = reader.next_packet() {
            match pkt {
                Ok(p) => self.push(ts_of(p.timestamp), link, &p.data),
                Err(_) => {
                    self.truncated = true;
                    break;
                }
            }
        }
        Ok(())
    }

    fn load_pcapng(&mut self, bytes: &[u8]) -> Result<(), LoadError> {
        let mut reader = PcapNgReader::new(bytes).map_err(|e| LoadError::Format(e.to_string()))?;
        self.data.reserve(bytes.len());
        let mut links: Vec<u32> = Vec::new();
        while let Some(block) = reader.next_block() {
            let block = match block {
                Ok(b) => b,
                Err(_) => {
                    self.truncated = true;
                    break;
                }
            };
            let (iface, ts, data): (u32, Timestamp, Cow<'_, [u8]>) = match block {
                Block::EnhancedPacket(p) => (p.interface_id, ts_of(p.timestamp), p.data),
                Block::SimplePacket(p) => (0, Timestamp(0), p.data),
                Block::InterfaceDescription(i) => {
                    links.push(u32::from(i.linktype));
                    continue;
                }
                _ => continue,
            };
            let linktype = links
                .get(usize::try_from(iface).unwrap_or(usize::MAX))
                .copied();
            match linktype.and_then(link_of) {
                Some(link) => self.push(ts, link, &data),
                None => self.skipped += 1,
            }
        }
        Ok(())
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

    /// Time of the first and last frame.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let first = self.frames.first()?.ts;
        let last = self.frames.iter().map(|f| f.ts).max()?;
        Some((first, last))
    }
}

/// Why a capture held in memory could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Not a capture.
    Format(String),
    /// Unsupported link type.
    LinkType(u32),
}

fn ts_of(d: std::time::Duration) -> Timestamp {
    Timestamp::from_secs_micros(d.as_secs(), d.subsec_micros())
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
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
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

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn pcap_with(linktype: u32, records: &[&[u8]]) -> Vec<u8> {
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
        assert_eq!(cap.skipped, 1);
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
        assert!(cap.truncated);
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
