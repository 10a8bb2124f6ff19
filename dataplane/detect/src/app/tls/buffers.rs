//! TLS detection buffers read from the hello's fields (the scanner's `ScanBuffers::get` asks
//! here).

use crate::rules::BufferKind;

/// `tls.random` (all 32 bytes), `tls.random_time` (the first 4) or `tls.random_bytes` (the
/// other 28) of one hello's random.
pub(crate) fn random_part(kind: BufferKind, random: Option<&[u8]>) -> Option<&[u8]> {
    let r = random?;
    match kind {
        BufferKind::TlsRandomTime => r.get(..4),
        BufferKind::TlsRandomBytes => r.get(4..),
        _ => Some(r),
    }
}
