//! The EVE `quic` object of an alert: a client Initial's server name, which the web address
//! scan reads ([`crate::app::quic::initial_server_name`]); the rule engine parses no QUIC flow.

use serde::Serialize;

/// EVE `quic` of an alert (the field we know).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QuicEve {
    /// `quic.sni`: the ClientHello's server name.
    pub sni: String,
}

impl QuicEve {
    /// The object of a server name.
    pub fn new(sni: String) -> QuicEve {
        QuicEve { sni }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_of_a_server_name() {
        let e = QuicEve::new("q.example".into());
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"sni":"q.example"}"#);
    }
}
