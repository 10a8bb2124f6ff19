//! The EVE `dns` object of an alert: the message's first query name, read from its buffers
//! ([`DnsEve::of`]) or given by the web address scan ([`DnsEve::query`]).

use super::buffers::DnsBuffers;
use serde::Serialize;

/// EVE `dns` of an alert: `{"query":[{"rrname":..}]}`, the first name only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsEve {
    /// `dns.query`: one entry.
    pub query: [DnsQueryEve; 1],
}

/// One entry of EVE `dns.query`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsQueryEve {
    /// `rrname`.
    pub rrname: String,
    /// `rrname_truncated`: the name was cut at Suricata's 1025 bytes; written only when so.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rrname_truncated: bool,
}

impl DnsEve {
    /// The object of a message; `None` when it has no query.
    pub fn of(b: &DnsBuffers<'_>) -> Option<DnsEve> {
        let name = b.query()?;
        Some(DnsEve::query(
            String::from_utf8_lossy(name).into_owned(),
            b.message().queries_cut & 1 != 0,
        ))
    }

    /// The object of one query name, `truncated` when it was cut.
    pub fn query(rrname: String, truncated: bool) -> DnsEve {
        DnsEve {
            query: [DnsQueryEve {
                rrname,
                rrname_truncated: truncated,
            }],
        }
    }

    /// The query name.
    pub fn rrname(&self) -> &str {
        let [q] = &self.query;
        &q.rrname
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::dns::parser::parse_message;

    fn query(labels: &[&[u8]]) -> Vec<u8> {
        let mut m = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        for l in labels {
            m.push(u8::try_from(l.len()).unwrap());
            m.extend_from_slice(l);
        }
        m.extend_from_slice(b"\x00\x00\x01\x00\x01");
        m
    }

    // The first name, `rrname_truncated` only when it was cut at 1025 bytes.
    #[test]
    fn the_object_of_a_message() {
        let m = parse_message(&query(&[b"a", b"io"])).unwrap();
        let e = DnsEve::of(&DnsBuffers::new(&m)).unwrap();
        assert_eq!(e.rrname(), "a.io");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"query":[{"rrname":"a.io"}]}"#
        );
        let long = [[b'a'; 63].as_slice(); 20];
        let m = parse_message(&query(&long)).unwrap();
        let e = DnsEve::of(&DnsBuffers::new(&m)).unwrap();
        let v = serde_json::to_string(&e).unwrap();
        assert!(v.ends_with(r#"","rrname_truncated":true}]}"#), "{v}");
        let mut m = parse_message(&query(&[b"a"])).unwrap();
        m.queries.clear();
        assert_eq!(DnsEve::of(&DnsBuffers::new(&m)), None);
    }
}
