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
//!
//! A table can be taken apart and rebuilt from its parts ([`ContactTable::parts`],
//! [`ContactTable::from_parts`]), slots in place, for the index's snapshot file: its hash seed is
//! therefore one of the parts, and a rebuilt table is checked so that every key it holds is found.

use std::collections::HashMap;
use std::hash::BuildHasher;

use foldhash::SharedSeed;
use foldhash::fast::SeedableRandomState;
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
    /// Random, so that business-supplied numbers cannot be chosen to collide; kept to build
    /// `hasher` again from a snapshot.
    seed: u64,
    hasher: SeedableRandomState,
}

/// A table taken apart: what the snapshot file stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableParts {
    pub seed: u64,
    /// The distinct bits values, by palette index.
    pub palette: Vec<ConsentBits>,
    pub overflow: Vec<(u64, ConsentBits)>,
    pub slots: Vec<u64>,
}

/// Why parts do not make a table (a damaged snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidParts(pub &'static str);

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
        // 64 bits from the system's random source (uuid's v4 draws them with getrandom).
        let seed = uuid::Uuid::new_v4().as_u64_pair().0;
        ContactTable {
            // A zeroed `Vec<u64>` comes from `calloc`: fresh pages, not written twice.
            slots: vec![0; slots],
            len: 0,
            palette: Palette::default(),
            overflow: FoldMap::default(),
            seed,
            hasher: hasher(seed),
        }
    }

    /// A copy of the table's parts (the slots are copied as they are).
    pub(crate) fn parts(&self) -> TableParts {
        TableParts {
            seed: self.seed,
            palette: self.palette.values.clone(),
            overflow: self.overflow.iter().map(|(key, bits)| (*key, *bits)).collect(),
            slots: self.slots.clone(),
        }
    }

    /// The table `parts` describe, if they describe one whose every key is found: slots a power
    /// of two in number with at most three quarters used, each key in range and reachable from
    /// its home slot without crossing an empty one, each palette index valid, the overflow map
    /// holding exactly the overflow slots' keys. One pass over the slots.
    pub(crate) fn from_parts(parts: TableParts) -> Result<ContactTable, InvalidParts> {
        let TableParts { seed, palette, overflow, slots } = parts;
        if slots.len() < 16 || !slots.len().is_power_of_two() {
            return Err(InvalidParts("the slot count is not a power of two of at least 16"));
        }
        if palette.len() > PALETTE_LIMIT {
            return Err(InvalidParts("the palette is too long"));
        }
        let indexes: FoldMap<ConsentBits, u64> =
            palette.iter().enumerate().map(|(index, bits)| (*bits, index as u64)).collect();
        if indexes.len() != palette.len() {
            return Err(InvalidParts("the palette repeats a value"));
        }
        let overflow: FoldMap<u64, ConsentBits> = overflow.into_iter().collect();
        let table = ContactTable {
            len: 0,
            palette: Palette { values: palette, indexes },
            overflow,
            seed,
            hasher: hasher(seed),
            slots,
        };
        let (len, overflowing) = table.check_slots()?;
        if overflowing != table.overflow.len() {
            return Err(InvalidParts("the overflow map does not match the overflow slots"));
        }
        if len * 4 > table.slots.len() * 3 {
            return Err(InvalidParts("the table is more than three quarters full"));
        }
        Ok(ContactTable { len, ..table })
    }

    /// Checks every used slot (see `from_parts`) and counts them, and those that overflow.
    fn check_slots(&self) -> Result<(usize, usize), InvalidParts> {
        let mask = self.slots.len() - 1;
        // Start after an empty slot, so that no run of used slots wraps around the start.
        let empty = self.slots.iter().position(|slot| *slot == 0).ok_or(InvalidParts("the table has no empty slot"))?;
        let (mut len, mut overflowing, mut run_start) = (0, 0, empty + 1);
        for step in 1..=self.slots.len() {
            let index = (empty + step) & mask;
            let slot = self.slots[index];
            if slot == 0 {
                run_start = index + 1;
                continue;
            }
            let key = slot & KEY_MASK;
            let reachable = index.wrapping_sub(self.home(key)) & mask <= index.wrapping_sub(run_start) & mask;
            if key == 0 || !reachable {
                return Err(InvalidParts("a key is not where a lookup would find it"));
            }
            match slot >> KEY_BITS {
                OVERFLOW if self.overflow.contains_key(&key) => overflowing += 1,
                OVERFLOW => return Err(InvalidParts("an overflow slot's key is not in the overflow map")),
                palette_index if palette_index as usize >= self.palette.values.len() => {
                    return Err(InvalidParts("a palette index is out of range"));
                }
                _ => {}
            }
            len += 1;
        }
        Ok((len, overflowing))
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

fn hasher(seed: u64) -> SeedableRandomState {
    SeedableRandomState::with_seed(seed, SharedSeed::global_fixed())
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

    /// A table of `count` contacts over `values` distinct bits values.
    fn filled(count: u64, values: u64) -> ContactTable {
        let mut table = ContactTable::default();
        for n in 0..count {
            table.insert(10_000_000 + n * 7_919, bits(n % values));
        }
        table
    }

    #[test]
    fn a_table_rebuilt_from_its_parts_answers_the_same() {
        // More values than the palette holds, so the overflow map is carried too.
        let table = filled(40_000, PALETTE_LIMIT as u64 + 5_000);
        let rebuilt = ContactTable::from_parts(table.parts()).unwrap();
        assert_eq!(rebuilt.len(), table.len());
        assert!(!rebuilt.overflow.is_empty());
        let probes: Vec<u64> = (0..50_000).map(|n| 10_000_000 + n * 7_919).chain([1, 10_000_001]).collect();
        assert_eq!(rebuilt.get_each(probes.iter().copied()), table.get_each(probes.iter().copied()));
        // The rebuilt table keeps working as a table.
        let mut rebuilt = rebuilt;
        rebuilt.insert(99_999_999, bits(3));
        assert_eq!(rebuilt.get(99_999_999), Some(bits(3)));
    }

    #[test]
    fn damaged_parts_are_refused() {
        let table = filled(100, 3);
        let parts = table.parts();
        let used = parts.slots.iter().position(|slot| *slot != 0).unwrap();
        let refuse = |change: &dyn Fn(&mut TableParts), why: &str| {
            let mut damaged = parts.clone();
            change(&mut damaged);
            let refused = ContactTable::from_parts(damaged).err().map(|invalid| invalid.0);
            assert!(refused.is_some_and(|reason| reason.contains(why)), "{why}: {refused:?}");
        };
        refuse(&|p| p.slots.truncate(100), "power of two");
        refuse(&|p| p.seed ^= 1, "where a lookup would find it");
        refuse(&|p| p.slots[used] = (p.slots[used] & KEY_MASK) | 3 << KEY_BITS, "palette index");
        refuse(&|p| p.slots[used] = (p.slots[used] & KEY_MASK) | OVERFLOW << KEY_BITS, "overflow map");
        refuse(&|p| p.overflow.push((5, bits(1))), "overflow map");
        refuse(&|p| p.palette.push(bits(0)), "repeats");
        // Tables with too little room: 13 keys in 16 slots, then 16.
        let mut crowded = ContactTable::default();
        crowded.palette.index_of(bits(0));
        for key in 20_000_000..20_000_016 {
            let index = crowded.position(key);
            crowded.slots[index] = key;
            let expected = match key - 20_000_000 + 1 {
                13..=15 => Some(InvalidParts("the table is more than three quarters full")),
                16 => Some(InvalidParts("the table has no empty slot")),
                _ => None,
            };
            assert_eq!(ContactTable::from_parts(crowded.parts()).err(), expected, "{key}");
        }
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
