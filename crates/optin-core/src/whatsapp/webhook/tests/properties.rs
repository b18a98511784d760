//! `parse_delivery` reads untrusted bytes (after the signature check, but a leaked app secret or a
//! buggy forwarder makes them arbitrary), so it must never panic on any input.

use proptest::prelude::*;

use super::*;

/// A fixture body with some bytes overwritten and then possibly cut short.
fn mutated_fixture() -> impl Strategy<Value = Vec<u8>> {
    let flips = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8);
    (prop::sample::select(FIXTURES), flips, any::<prop::sample::Index>(), any::<bool>()).prop_map(
        |(fixture, flips, cut, truncate)| {
            let mut body = fixture.to_vec();
            for (position, byte) in flips {
                let index = position.index(body.len());
                body[index] = byte;
            }
            if truncate {
                body.truncate(cut.index(body.len() + 1));
            }
            body
        },
    )
}

/// A fixture body with one JSON-significant character swapped for another, so mutations reach past the
/// JSON syntax check into the item-level rules more often than random bytes do.
fn retyped_fixture() -> impl Strategy<Value = Vec<u8>> {
    let swaps =
        proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(&b"\"0{}[]-,:n"[..])), 1..4);
    (prop::sample::select(FIXTURES), swaps).prop_map(|(fixture, swaps)| {
        let mut body = fixture.to_vec();
        for (position, byte) in swaps {
            let index = position.index(body.len());
            body[index] = byte;
        }
        body
    })
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_delivery(&body);
    }

    #[test]
    fn never_panics_on_mutated_fixtures(body in mutated_fixture()) {
        let _ = parse_delivery(&body);
    }

    #[test]
    fn never_panics_on_retyped_fixtures(body in retyped_fixture()) {
        let _ = parse_delivery(&body);
    }

}
