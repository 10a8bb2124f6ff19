//! Packet I/O backends. The offline backend reads a capture into memory ([`pcap`]); the live
//! backends (AF_PACKET, DPDK) come with the live dataplane.

pub mod pcap;
