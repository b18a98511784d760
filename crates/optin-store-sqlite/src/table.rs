//! The per-business contact table of the consent index: phone key → consent bits.
//!
//! Open addressing with linear probing, at most three quarters full, each slot one `u64`: the
//! phone key in the low 50 bits (E.164 keys are below 10^15 < 2^50) and, in the high 14 bits,
//! the index of the contact's bits in the table's *palette*, the distinct `ConsentBits` values
//! seen. A business has few distinct consent states (combinations of its categories' statuses),
//! so the palette stays small and hot in the cache while the slots are 8 bytes instead of 40:
//! 10 million contacts fit 2^24 slots in 128 MiB (was 640 MiB), a cache line holds eight slots,
//! and a lookup costs one cache miss. Should a business reach `PALETTE_LIMIT` distinct values,
//! contacts with further new values are marked `OVERFLOW` and their bits kept in a side map
//! (correct, only slower).
//!
//! Three quarters full rather than half: about one more probe per lookup of an unknown number, in
//! the same cache line. Key 0 marks an empty slot: phone keys are at least 10^7.

use std::collections::HashMap;
use std::hash::BuildHasher;

use optin_core::consent::ConsentBits;

/// The low bits of a slot: the phone key.
const KEY_BITS: u32 = 50;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;
/// The palette index that sends a lookup to the overflow map.
const OVERFLOW: u64 = (1 << (64 - KEY_BITS)) - 1;
/// Distinct bits values a table's palette holds at most (indexes `0..OVERFLOW`).
const PALETTE_LIMIT: usize = OVERFLOW as usize;
/// Lookups whose first slot is loaded together before any is probed (see `get_each`).
const GROUP: usize = 16;

type FoldMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(crate) struct ContactTable {
    /// `key | palette_index << KEY_BITS`; 0 when empty. The length is a power of two.
    slots: Vec<u64>,
    len: usize,
    palette: Palette,
    /// The bits of the contacts whose slot says `OVERFLOW`.
    overflow: FoldMap<u64, ConsentBits>,
    /// Seeded, so that business-supplied numbers cannot be chosen to collide.
    hasher: foldhash::fast::RandomState,
}

/// The distinct bits values of a table, each stored once. Values are never removed (at most
/// `PALETTE_LIMIT` of 32 bytes, 512 KiB).
#[derive(Default)]
struct Palette {
    values: Vec<ConsentBits>,
    indexes: FoldMap<ConsentBits, u64>,
}

impl Palette {
    /// The index of `bits`, added if new; `OVERFLOW` once the palette is full.
    fn index_of(&mut self, bits: ConsentBits) -> u64 {
        if let Some(index) = self.indexes.get(&bits) {
            return *index;
        }
        if self.values.len() >= PALETTE_LIMIT {
            return OVERFLOW;
        }
        let index = self.values.len() as u64;
        self.values.push(bits);
        self.indexes.insert(bits, index);
        index
    }
}

impl Default for ContactTable {
    fn default() -> ContactTable {
        ContactTable::with_capacity(0)
    }
}

impl ContactTable {
    /// A table that holds `contacts` without growing.
    pub(crate) fn with_capacity(contacts: usize) -> ContactTable {
        let slots = (contacts.saturating_mul(4) / 3 + 1).next_power_of_two().max(16);
        ContactTable {
            // A zeroed `Vec<u64>` comes from `calloc`: fresh pages, not written twice.
            slots: vec![0; slots],
            len: 0,
            palette: Palette::default(),
            overflow: FoldMap::default(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
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
            if slot & KEY_MASK == key || slot == 0 {
                return index;
            }
            index = (index + 1) & mask;
        }
    }

    pub(crate) fn get(&self, key: u64) -> Option<ConsentBits> {
        self.bits_in(self.slots[self.position(key)], key)
    }

    /// The bits `slot` holds for `key`, if it holds `key`.
    fn bits_in(&self, slot: u64, key: u64) -> Option<ConsentBits> {
        if slot & KEY_MASK != key || slot == 0 {
            return None;
        }
        match slot >> KEY_BITS {
            OVERFLOW => self.overflow.get(&key).copied(),
            index => Some(self.palette.values[index as usize]),
        }
    }

    /// The bits of each key (default when absent), in order. The home slots of a group of keys
    /// are loaded before any is probed, so that their cache misses overlap instead of queueing
    /// behind each probe's compare and branch (a table of millions of contacts misses on almost
    /// every lookup).
    pub(crate) fn get_each(&self, keys: impl ExactSizeIterator<Item = u64>) -> Vec<ConsentBits> {
        let mut found = Vec::with_capacity(keys.len());
        let mut group = [(0_u64, 0_usize); GROUP];
        let mut keys = keys.peekable();
        while keys.peek().is_some() {
            let mut count = 0;
            let mut touched = 0_u64;
            for (entry, key) in group.iter_mut().zip(keys.by_ref()) {
                let home = self.home(key);
                touched ^= self.slots[home];
                *entry = (key, home);
                count += 1;
            }
            // Keeps the loads: without a use the compiler could drop them.
            std::hint::black_box(touched);
            for (key, _) in &group[..count] {
                found.push(self.get(*key).unwrap_or_default());
            }
        }
        found
    }

    pub(crate) fn insert(&mut self, key: u64, bits: ConsentBits) {
        assert!(key != 0 && key <= KEY_MASK, "phone keys are in 1..2^50");
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let index = self.position(key);
        let old = self.slots[index];
        if old == 0 {
            self.len += 1;
        }
        let palette_index = self.palette.index_of(bits);
        if palette_index == OVERFLOW {
            self.overflow.insert(key, bits);
        } else if old >> KEY_BITS == OVERFLOW && old != 0 {
            self.overflow.remove(&key);
        }
        self.slots[index] = key | palette_index << KEY_BITS;
    }

    pub(crate) fn remove(&mut self, key: u64) {
        let mask = self.slots.len() - 1;
        let mut hole = self.position(key);
        let old = self.slots[hole];
        if old & KEY_MASK != key || old == 0 {
            return;
        }
        if old >> KEY_BITS == OVERFLOW {
            self.overflow.remove(&key);
        }
        self.slots[hole] = 0;
        self.len -= 1;
        // Backward-shift deletion: move up entries whose probe sequence crosses the hole.
        let mut next = (hole + 1) & mask;
        while self.slots[next] != 0 {
            let home = self.home(self.slots[next] & KEY_MASK);
            let distance_to_next = next.wrapping_sub(home) & mask;
            let distance_to_hole = hole.wrapping_sub(home) & mask;
            if distance_to_hole < distance_to_next {
                self.slots[hole] = self.slots[next];
                self.slots[next] = 0;
                hole = next;
            }
            next = (next + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        for slot in old.into_iter().filter(|slot| *slot != 0) {
            let index = self.position(slot & KEY_MASK);
            self.slots[index] = slot;
        }
    }
}

/// Builds a table from contacts read in a row (the index's load): each contact is kept as its
/// 8-byte slot until the count is known, then placed in a table of the right size at once (no
/// doubling, no rehashing).
#[derive(Default)]
pub(crate) struct ContactTableBuilder {
    slots: Vec<u64>,
    palette: Palette,
    overflow: FoldMap<u64, ConsentBits>,
}

impl ContactTableBuilder {
    /// Adds a contact; each key once.
    pub(crate) fn push(&mut self, key: u64, bits: ConsentBits) {
        assert!(key != 0 && key <= KEY_MASK, "phone keys are in 1..2^50");
        let palette_index = self.palette.index_of(bits);
        if palette_index == OVERFLOW {
            self.overflow.insert(key, bits);
        }
        self.slots.push(key | palette_index << KEY_BITS);
    }

    pub(crate) fn finish(self) -> ContactTable {
        let mut table = ContactTable::with_capacity(self.slots.len());
        table.palette = self.palette;
        table.overflow = self.overflow;
        for slot in self.slots {
            let index = table.position(slot & KEY_MASK);
            if table.slots[index] == 0 {
                table.len += 1;
            }
            table.slots[index] = slot;
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bits(n: u64) -> ConsentBits {
        ConsentBits { opted_in: n, opted_out: !n, ..ConsentBits::default() }
    }

    /// Runs inserts, updates and removals on a table and a model map (a small key space, so that
    /// updates and removals hit present keys; `values` distinct bits values).
    fn check_against_a_map(values: u64, steps: u64) {
        let mut table = ContactTable::default();
        let mut model: HashMap<u64, ConsentBits> = HashMap::new();
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        for step in 0..steps {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let key = 10_000_000 + state % 5_000;
            if step % 3 == 0 {
                table.remove(key);
                model.remove(&key);
            } else {
                table.insert(key, bits(step % values));
                model.insert(key, bits(step % values));
            }
            if step % 1_000 == 0 {
                assert_eq!(table.len(), model.len());
                for probe in 10_000_000..10_005_000 {
                    assert_eq!(table.get(probe), model.get(&probe).copied(), "key {probe} at step {step}");
                }
                let probes = (9_999_990..10_005_010).collect::<Vec<u64>>();
                let expected: Vec<ConsentBits> =
                    probes.iter().map(|p| model.get(p).copied().unwrap_or_default()).collect();
                assert_eq!(table.get_each(probes.iter().copied()), expected);
            }
        }
        assert_eq!(table.get(0), None);
        assert_eq!(table.get(KEY_MASK + 1 + 10_000_000), None, "a key past 50 bits is never found");
    }

    #[test]
    fn behaves_like_a_map_through_inserts_updates_and_removals() {
        check_against_a_map(7, 200_000);
    }

    #[test]
    fn behaves_like_a_map_when_the_palette_overflows() {
        // Every step a new value: the palette fills, then contacts move in and out of the
        // overflow map as they are updated and removed.
        check_against_a_map(u64::MAX, 200_000);
    }

    proptest! {
        #[test]
        fn a_built_table_answers_like_one_filled_by_inserts(
            contacts in proptest::collection::btree_map(10_000_000_u64..10_000_000_000, 0_u64..20, 0..2_000),
            probes in proptest::collection::vec(10_000_000_u64..10_000_000_000, 0..200),
        ) {
            let mut builder = ContactTableBuilder::default();
            let mut inserted = ContactTable::default();
            for (key, value) in &contacts {
                builder.push(*key, bits(*value));
                inserted.insert(*key, bits(*value));
            }
            let built = builder.finish();
            prop_assert_eq!(built.len(), contacts.len());
            let keys: Vec<u64> = contacts.keys().copied().chain(probes).collect();
            for key in &keys {
                prop_assert_eq!(built.get(*key), inserted.get(*key));
                prop_assert_eq!(built.get(*key), contacts.get(key).map(|value| bits(*value)));
            }
            prop_assert_eq!(built.get_each(keys.iter().copied()), inserted.get_each(keys.iter().copied()));
        }
    }
}
