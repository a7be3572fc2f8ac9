//! Per-error counters, cumulative since boot, sent with every batch.

use crate::wire::Counter;

/// The counters, indexed by [`Counter`]. Wrapping: a server computes rates
/// from differences, and a u32 at one event per second wraps after 136 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    values: [u32; Counter::COUNT],
}

impl Counters {
    /// All zero.
    pub const fn new() -> Self {
        Counters {
            values: [0; Counter::COUNT],
        }
    }

    /// Adds one.
    pub fn bump(&mut self, counter: Counter) {
        self.add(counter, 1);
    }

    /// Adds `n`.
    pub fn add(&mut self, counter: Counter, n: u32) {
        let slot = &mut self.values[counter as usize];
        *slot = slot.wrapping_add(n);
    }

    /// One value.
    pub fn get(&self, counter: Counter) -> u32 {
        self.values[counter as usize]
    }

    /// Sum of two sets (line side + uplink side), for the wire.
    pub fn merged(&self, other: &Counters) -> Counters {
        let mut out = *self;
        for c in Counter::ALL {
            out.add(c, other.get(c));
        }
        out
    }

    /// The wire array.
    pub fn to_array(&self) -> [u32; Counter::COUNT] {
        self.values
    }
}
