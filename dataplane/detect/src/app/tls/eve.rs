//! The EVE `tls` object of an alert: the ClientHello's server name, read from a handshake's
//! buffers ([`TlsEve::of`]) or given by the web address scan ([`TlsEve::new`]).

use super::buffers::TlsBuffers;
use serde::Serialize;

/// EVE `tls` of an alert (the field we know).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsEve {
    /// `tls.sni`.
    pub sni: String,
}

impl TlsEve {
    /// The object of a handshake; `None` when its ClientHello named no server.
    pub fn of(b: &TlsBuffers<'_>) -> Option<TlsEve> {
        b.sni()
            .map(|s| TlsEve::new(String::from_utf8_lossy(s).into_owned()))
    }

    /// The object of a server name.
    pub fn new(sni: String) -> TlsEve {
        TlsEve { sni }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tls::parser::client_hello;
    use crate::app::tls::parser::tests::client_hello_msg;
    use crate::app::tls::state::TlsTx;

    // The ClientHello's server name is `tls.sni`; a handshake without a hello has no object.
    #[test]
    fn the_object_of_a_handshake() {
        let mut tx = TlsTx {
            client: None,
            server: None,
            certs: None,
            client_certs: None,
        };
        assert_eq!(TlsEve::of(&TlsBuffers::new(&tx)), None);
        tx.client = Some(client_hello(&client_hello_msg(b"www.example.org")).unwrap());
        let e = TlsEve::of(&TlsBuffers::new(&tx)).unwrap();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"sni":"www.example.org"}"#
        );
    }
}
