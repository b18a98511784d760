use proptest::prelude::*;

use super::*;

fn us() -> Option<Region> {
    Some(Region::parse("US").unwrap())
}

fn check(input: &str, region: Option<Region>, expected: Result<&str, &str>) {
    let actual = PhoneNumber::parse(input, region).map(|p| p.e164()).map_err(|e| e.code());
    assert_eq!(actual.as_deref().map_err(|e| *e), expected, "input {input:?}");
}

#[test]
fn common_formats_parse_to_e164() {
    for input in [
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "+1 415 555 2671",
        "+14155552671",
        "1 (415) 555-2671",
        "tel:+1-415-555-2671",
        "001 415 555 2671",
        "  +1\u{a0}415\u{a0}555\u{a0}2671  ",
        "＋1 415 555 2671",
    ] {
        check(input, us(), Ok("+14155552671"));
    }
}

#[test]
fn international_numbers_ignore_the_region_hint() {
    // The crate's issue #30: with a US hint, +33 1 42... used to lose a digit.
    check("+33 6 12 34 56 78", us(), Ok("+33612345678"));
    check("+49 1512 3456789", us(), Ok("+4915123456789"));
    check("+91 98765 43210", None, Ok("+919876543210"));
    check("+55 11 91234-5678", None, Ok("+5511912345678"));
}

#[test]
fn non_ascii_digits_are_read_as_digits() {
    check("+١ ٤١٥ ٥٥٥ ٢٦٧١", None, Ok("+14155552671"));
    check("+९१ ९८७६५ ४३२१०", None, Ok("+919876543210"));
}

#[test]
fn garbage_is_refused_with_invalid_phone() {
    let long = "9".repeat(10_000);
    for input in [
        "",
        "   ",
        "abc",
        "415-555-CALL",
        "+",
        "12",
        "+1 415",
        "+1 415 555 26711111",
        "+999 123456789",
        "(415) 555-2671 ext 3",
        "+3367a829916",
        "++14155552671",
        "1+4155552671",
        "\u{0}",
        "💩",
        long.as_str(),
    ] {
        let result = PhoneNumber::parse(input, us());
        assert_eq!(result.map_err(|e| e.code()), Err("invalid_phone"), "input {input:?}");
    }
}

#[test]
fn an_overlong_israeli_number_is_refused() {
    // The crate's issue #31 calls this valid; it is refused here either way (as a fixed line).
    assert!(PhoneNumber::parse("+97233142764978", None).is_err());
}

#[test]
fn a_national_number_needs_a_country() {
    assert_eq!(PhoneNumber::parse("(415) 555-2671", None), Err(PhoneNumberError::MissingCountry));
}

#[test]
fn a_number_of_the_wrong_country_is_invalid() {
    // A valid US number read as a German national number is not a valid German number.
    let germany = Some(Region::parse("de").unwrap());
    assert!(PhoneNumber::parse("(415) 555-2671", germany).is_err());
}

#[test]
fn fixed_lines_cannot_receive_messages() {
    // Paris fixed line; German fixed line (Berlin).
    check("+33 1 42 68 53 00", None, Err("not_a_mobile_number"));
    check("+49 30 901820", None, Err("not_a_mobile_number"));
    // US numbers are "fixed line or mobile" in the metadata, so they are accepted.
    check("+1 212 555 2368", None, Ok("+12125552368"));
}

#[test]
fn regions_are_two_letter_codes() {
    assert_eq!(Region::parse("us").unwrap().as_str(), "US");
    for bad in ["", "USA", "U1", "ZZ", "💩x"] {
        assert_eq!(Region::parse(bad).map_err(|e| e.code()), Err("invalid_country"), "{bad:?}");
    }
}

#[test]
fn redaction_hides_the_middle_digits() {
    let phone = PhoneNumber::from_e164("+14155552671").unwrap();
    assert_eq!(phone.redacted(), "+141******71");
    assert!(!format!("{phone:?}").contains("5552671"));
}

#[test]
fn strict_e164_is_the_only_fast_path_input() {
    assert!(PhoneNumber::from_e164("+14155552671").is_some());
    for bad in ["14155552671", "+1415555", "+0123456789", "+1234567890123456", "+1 415"] {
        assert!(PhoneNumber::from_e164(bad).is_none(), "{bad:?}");
    }
    assert_eq!(PhoneNumber::from_key(14155552671).unwrap().e164(), "+14155552671");
    assert!(PhoneNumber::from_key(12).is_none());
}

proptest! {
    #[test]
    fn parsing_never_panics(input in "\\PC{0,80}", region in proptest::option::of("[A-Z]{2}")) {
        let region = region.and_then(|r| Region::parse(&r).ok());
        let _ = PhoneNumber::parse(&input, region);
    }

    #[test]
    fn digit_soup_never_panics(input in "[+0-9 ()\\-.]{0,40}") {
        let _ = PhoneNumber::parse(&input, Some(Region::parse("US").unwrap()));
    }

    #[test]
    fn e164_output_parses_back_to_itself(national in 2_000_000u64..9_999_999u64, area in 201u64..989u64) {
        let input = format!("+1{area}{national}");
        if let Ok(phone) = PhoneNumber::parse(&input, None) {
            let again = PhoneNumber::parse(&phone.e164(), None).unwrap();
            prop_assert_eq!(again, phone);
            prop_assert_eq!(PhoneNumber::from_e164(&phone.e164()), Some(phone));
        }
    }
}

#[test]
fn the_global_benchmark_mix_is_valid_mobile_numbers() {
    let seeds: Vec<&str> =
        include_str!("../../benches/global_mobile_numbers.txt").lines().filter(|l| l.starts_with('+')).collect();
    assert!(seeds.len() >= 60);
    let failures: Vec<_> =
        seeds.iter().filter(|seed| PhoneNumber::parse(seed, None).map(|p| p.e164()).as_deref() != Ok(**seed)).collect();
    assert!(failures.is_empty(), "not valid mobile numbers: {failures:?}");
}

#[test]
fn the_country_list_has_calling_codes() {
    let list = countries_with_calling_codes();
    assert!(list.len() > 200, "{}", list.len());
    assert!(list.contains(&("DE".to_owned(), 49)));
    assert!(list.contains(&("US".to_owned(), 1)) && list.contains(&("CA".to_owned(), 1)));
    assert!(list.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn numbers_parse_the_same_on_several_threads_as_on_one() {
    // Each thread matches with its own clone of libphonenumber's regexes (`vendor/regex-cache`);
    // a clone answering for the wrong pattern would change these results.
    let inputs: Vec<String> = include_str!("../../benches/global_mobile_numbers.txt")
        .lines()
        .filter(|line| line.starts_with('+'))
        .flat_map(|line| [line.to_owned(), format!("{line}9"), line[..line.len() - 1].to_owned()])
        .collect();
    let parse_all = |inputs: &[String]| -> Vec<Result<u64, &'static str>> {
        inputs.iter().map(|input| PhoneNumber::parse(input, None).map(|p| p.key()).map_err(|e| e.code())).collect()
    };
    let on_one_thread = parse_all(&inputs);
    // Every listed number is valid; with a digit more or less, some are not.
    assert!(on_one_thread.iter().step_by(3).all(Result::is_ok));
    assert!(on_one_thread.iter().any(Result::is_err));
    let on_four_threads: Vec<Vec<Result<u64, &'static str>>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4).map(|_| scope.spawn(|| parse_all(&inputs))).collect();
        threads.into_iter().map(|thread| thread.join().expect("no panic")).collect()
    });
    for results in on_four_threads {
        assert_eq!(results, on_one_thread);
    }
}
