//! An in-memory capture and its pcap serialisation (Ethernet link type, microsecond timestamps,
//! little-endian header so the file bytes do not depend on the host).

use std::io;
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// Snap length written in the pcap header: the largest frame we ever build is a 1500-byte IP
/// packet behind two tags, far below this.
const SNAPLEN: u32 = 65_535;

/// One captured frame: a timestamp in microseconds since the Unix epoch and the Ethernet frame
/// (without FCS).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Frame {
    /// Capture time, microseconds since 1970-01-01T00:00:00Z.
    pub ts_us: u64,
    /// The Ethernet frame, destination MAC first, no FCS.
    pub data: Vec<u8>,
}

/// An ordered list of frames.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Capture {
    /// The frames in capture order.
    pub frames: Vec<Frame>,
}

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a frame.
    pub fn push(&mut self, ts_us: u64, data: Vec<u8>) {
        self.frames.push(Frame { ts_us, data });
    }

    /// Append all frames of `other`, keeping their order (call [`Capture::sort_by_time`] to
    /// interleave).
    pub fn extend(&mut self, other: Capture) {
        self.frames.extend(other.frames);
    }

    /// Sort by timestamp. Stable: frames with equal timestamps keep their relative order.
    pub fn sort_by_time(&mut self) {
        self.frames.sort_by_key(|f| f.ts_us);
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the capture holds no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Timestamp of the last frame (the latest one once sorted).
    pub fn last_ts(&self) -> Option<u64> {
        self.frames.last().map(|f| f.ts_us)
    }

    /// Timestamp of the first frame.
    pub fn first_ts(&self) -> Option<u64> {
        self.frames.first().map(|f| f.ts_us)
    }

    /// Write the capture as a classic pcap file.
    pub fn write_pcap(&self, path: &Path) -> io::Result<()> {
        let file = io::BufWriter::new(std::fs::File::create(path)?);
        let mut file = self.write_to(file)?;
        io::Write::flush(&mut file)
    }

    /// The pcap file as bytes.
    pub fn to_pcap_bytes(&self) -> Vec<u8> {
        // Writing into a Vec cannot fail with an I/O error and every frame fits the snap length,
        // so the error branch is unreachable; an empty vector would make any test fail loudly.
        self.write_to(Vec::new()).unwrap_or_default()
    }

    fn write_to<W: io::Write>(&self, sink: W) -> io::Result<W> {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
        };
        let mut writer = PcapWriter::with_header(sink, header).map_err(io::Error::other)?;
        for frame in &self.frames {
            let orig_len = u32::try_from(frame.data.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 4 GiB")
            })?;
            let packet = PcapPacket::new(Duration::from_micros(frame.ts_us), orig_len, &frame.data);
            writer.write_packet(&packet).map_err(io::Error::other)?;
        }
        Ok(writer.into_writer())
    }
}
