//! The engines' per-flow state, kept beside each flow of the worker's table as its extension
//! ([`crate::flow::FlowExt`]): the flow table knows flows, this module knows the engines that
//! keep state per flow (STYLE 24).

use crate::attack::state::NO_SLOT;
use crate::flow::{Flow, FlowExt};
use crate::scanner::FlowScan;
use crate::webscan::WebFlow;

/// What the worker's engines keep per flow.
#[derive(Debug)]
pub struct FlowEngines {
    /// Activity scanner state (stream, app layer, rule state); created on the first packet
    /// inspected with a rule set loaded, `None` otherwise.
    pub(crate) scan: Option<Box<FlowScan>>,
    /// Web address scan: the client's first bytes, read once ([`WebFlow`]).
    pub(crate) web: WebFlow,
    /// Where the attack blocker found the MAC binding of the key's `a` / `b` endpoint's address
    /// last time ([`NO_SLOT`] at first): a hint it checks, so an established flow's packets
    /// reach their binding without a hash lookup.
    mac_slot: [u32; 2],
}

impl Default for FlowEngines {
    fn default() -> Self {
        FlowEngines {
            scan: None,
            web: WebFlow::default(),
            mac_slot: [NO_SLOT; 2],
        }
    }
}

impl FlowEngines {
    /// Remember where the attack blocker found the MAC binding of the source of the flow's
    /// `a_to_b` direction.
    pub(crate) fn set_mac_slot(&mut self, a_to_b: bool, slot: u32) {
        if let Some(s) = self.mac_slot.get_mut(usize::from(!a_to_b)) {
            *s = slot;
        }
    }
}

/// What a packet reads of its flow's [`FlowEngines`] on every packet, with the flow update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnginePeek {
    /// The attack blocker's MAC-binding slot hint for this packet's source.
    pub mac_slot: u32,
    /// The web address scan has read this flow's client bytes ([`WebFlow::done`]): the packet
    /// needs no second look-up for it.
    pub web_done: bool,
}

impl FlowExt for FlowEngines {
    type Peek = EnginePeek;

    #[inline(always)]
    fn peek(&self, a_to_b: bool) -> EnginePeek {
        let [a, b] = self.mac_slot;
        EnginePeek {
            mac_slot: if a_to_b { a } else { b },
            web_done: self.web.done(),
        }
    }

    /// A TCP flow with scanner state: with IDS timing its data the peer never acknowledged is
    /// inspected when it leaves ([`crate::worker::Worker::flush_retired`]).
    fn keep_on_leave(flow: &Flow<Self>) -> bool {
        flow.ext.scan.is_some() && flow.tcp.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_slot_hint_is_kept_per_direction() {
        let mut e = FlowEngines::default();
        assert_eq!(e.peek(true).mac_slot, NO_SLOT);
        assert_eq!(e.peek(false).mac_slot, NO_SLOT);
        e.set_mac_slot(true, 3);
        e.set_mac_slot(false, 5);
        assert_eq!((e.peek(true).mac_slot, e.peek(false).mac_slot), (3, 5));
        assert!(!e.peek(true).web_done);
    }
}
