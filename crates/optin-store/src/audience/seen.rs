//! The numbers an audience has decided for one message: a set of phone keys.
//!
//! Open addressing with linear probing over one `u64` per slot, at most three quarters full: a
//! lookup costs one cache miss where a general set (control bytes, then the bucket) costs two,
//! and an audience of millions misses on almost every lookup. 10 million numbers take 2^24 slots,
//! 128 MiB (briefly 192 MiB while the set doubles). Key 0 marks an empty slot: phone keys are at
//! least 10^7.

use std::hash::BuildHasher;

#[derive(Debug)]
pub(super) struct SeenNumbers {
    /// The length is a power of two.
    slots: Vec<u64>,
    len: usize,
    /// Seeded, so that a client cannot choose numbers that collide.
    hasher: foldhash::fast::RandomState,
}

impl Default for SeenNumbers {
    fn default() -> SeenNumbers {
        SeenNumbers { slots: vec![0; 1024], len: 0, hasher: foldhash::fast::RandomState::default() }
    }
}

impl SeenNumbers {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn home(&self, key: u64) -> usize {
        (self.hasher.hash_one(key) as usize) & (self.slots.len() - 1)
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn position(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut index = self.home(key);
        loop {
            let slot = self.slots[index];
            if slot == key || slot == 0 {
                return index;
            }
            index = (index + 1) & mask;
        }
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        key != 0 && self.slots[self.position(key)] == key
    }

    /// Whether each key is in the set, in order. The keys' home slots are loaded before any is
    /// probed, so that their cache misses overlap.
    pub(super) fn contains_each(&self, keys: &[Option<u64>]) -> Vec<bool> {
        let touched = keys.iter().flatten().fold(0, |touched, key| touched ^ self.slots[self.home(*key)]);
        // Keeps the loads: without a use the compiler could drop them.
        std::hint::black_box(touched);
        keys.iter().map(|key| key.is_some_and(|key| self.contains(key))).collect()
    }

    /// Adds `key`; false if it was there already.
    pub(super) fn insert(&mut self, key: u64) -> bool {
        assert_ne!(key, 0, "phone keys are never 0");
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let index = self.position(key);
        if self.slots[index] == key {
            return false;
        }
        self.slots[index] = key;
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        for key in old.into_iter().filter(|key| *key != 0) {
            let index = self.position(key);
            self.slots[index] = key;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn behaves_like_a_set(
            keys in proptest::collection::vec(10_000_000_u64..10_000_005_000, 0..5_000),
            probes in proptest::collection::vec(proptest::option::of(9_999_990_u64..10_000_005_010), 0..300),
        ) {
            let mut seen = SeenNumbers::default();
            let mut model = HashSet::new();
            for key in keys {
                prop_assert_eq!(seen.insert(key), model.insert(key));
                prop_assert_eq!(seen.len(), model.len());
            }
            let expected: Vec<bool> = probes.iter().map(|key| key.is_some_and(|key| model.contains(&key))).collect();
            prop_assert_eq!(seen.contains_each(&probes), expected);
            for key in probes.iter().flatten() {
                prop_assert_eq!(seen.contains(*key), model.contains(key));
            }
        }
    }
}
