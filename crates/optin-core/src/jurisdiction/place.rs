//! Where a recipient is, as far as the phone number tells: the country from the calling code, and for the
//! North American numbering plan (+1) the state or province and zone from the area code.
//!
//! Data: `data/countries.toml` (each country's zones; prefixes that pick a country sharing a calling code) and
//! `data/area_codes.toml` (NPA -> state/province and zones), both documented in their headers. The calling code
//! -> main country map comes from the libphonenumber metadata that `PhoneNumber::parse` validates against.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use phonenumber::metadata::DATABASE;
use serde::Deserialize;

use crate::phone::{PhoneNumber, Region};

/// The recipient's place, from their number. Only `locate` makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    country: Region,
    country_code: &'static str,
    region: Option<&'static str>,
    time_zone: ZoneChoice,
}

/// The recipient's time zone, or the zones they may be in when the number does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneChoice {
    /// The number tells the zone (a one-zone country, or an area code inside one zone).
    Known(&'static TimeZone),
    /// The country (or area code) spans these zones, most populous first, and the number does not say which.
    /// Quiet hours then use the business's default zone if it is one of them, else all of them.
    Ambiguous(&'static [TimeZone]),
}

impl ZoneChoice {
    pub fn zones(&self) -> &'static [TimeZone] {
        match *self {
            ZoneChoice::Known(zone) => std::slice::from_ref(zone),
            ZoneChoice::Ambiguous(zones) => zones,
        }
    }
}

impl Place {
    pub fn country(&self) -> Region {
        self.country
    }

    /// The ISO 3166-1 alpha-2 code, as `country().as_str()` without allocating.
    pub fn country_code(&self) -> &'static str {
        self.country_code
    }

    /// The ISO 3166-2 code of the US state (or DC) or Canadian province, such as `US-FL` or `CA-ON`; only for
    /// +1 numbers whose area code serves one of them.
    pub fn region(&self) -> Option<&'static str> {
        self.region
    }

    pub fn time_zone(&self) -> ZoneChoice {
        self.time_zone
    }
}

/// Where `phone` is. `None` for numbers of no country: the international services (+800, +882, ...) and
/// calling codes that are not assigned.
pub fn locate(phone: &PhoneNumber) -> Option<Place> {
    let places = places();
    let digits = Digits::of(phone.key());
    let (calling_code, main_country) =
        (1..=3).map(|length| digits.prefix(length)).find_map(|code| Some((code, places.main_country(code)?)))?;
    if calling_code == 1 {
        return Some(places.locate_nanp(digits.prefix(4) % 1000));
    }
    let country = places
        .prefixes
        .iter()
        .find(|(prefix, length, _)| digits.prefix(*length) == *prefix)
        .map_or(main_country, |(_, _, country)| *country);
    Some(places.countries[country].place(None, None))
}

/// The leading digits of a number that decide its place: numbers with the same `PlaceDigits` have the same
/// place (both `None` under [`locate`], or equal), so a shell can remember what it worked out for a place under
/// them instead of locating every number. Only [`place_digits`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaceDigits {
    /// The first `count` digits.
    digits: u64,
    count: u32,
}

/// The digits that decide where `phone` is: for a +1 number its area code too (one division, no table read;
/// this is the common case for a large audience), elsewhere the calling code, or the longest prefix any
/// country sharing that calling code is told by.
pub fn place_digits(phone: &PhoneNumber) -> PlaceDigits {
    const NANP_FIRST: u64 = 10_000_000_000;
    let key = phone.key();
    if (NANP_FIRST..2 * NANP_FIRST).contains(&key) {
        // Eleven digits starting with 1: `locate` reads the calling code 1 and the area code after it.
        return PlaceDigits { digits: key / 10_000_000, count: 4 };
    }
    let places = places();
    let digits = Digits::of(key);
    let calling_code = (1..=3).find(|length| places.main_country(digits.prefix(*length)).is_some());
    let Some(length) = calling_code else { return PlaceDigits { digits: 0, count: 0 } };
    let count = if length == 1 && digits.prefix(1) == 1 {
        4
    } else {
        let code = digits.prefix(length);
        places
            .prefixes
            .iter()
            .filter(|(prefix, prefix_length, _)| {
                *prefix_length > length && prefix / 10u64.pow(prefix_length - length) == code
            })
            .map(|(_, prefix_length, _)| *prefix_length)
            .max()
            .unwrap_or(length)
    };
    PlaceDigits { digits: digits.prefix(count), count }
}

/// Whether `code` is a region `locate` can return (the keys allowed under `[region]` in a policy).
pub(super) fn is_locatable_region(code: &str) -> bool {
    places().regions.iter().any(|region| region == code)
}

/// The bundled IANA database (jiff's `tzdb-bundle-always`): no file is read, and every machine answers alike.
pub(super) fn bundled_zone(name: &str) -> Option<TimeZone> {
    static DATABASE: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);
    DATABASE.get(name).ok()
}

/// A number's E.164 digits, with prefixes taken arithmetically.
struct Digits {
    key: u64,
    count: u32,
}

impl Digits {
    fn of(key: u64) -> Digits {
        Digits { key, count: key.checked_ilog10().unwrap_or(0) + 1 }
    }

    /// The first `length` digits as a number (0 if the number is shorter).
    fn prefix(&self, length: u32) -> u64 {
        self.count.checked_sub(length).map_or(0, |rest| self.key / 10u64.pow(rest))
    }
}

struct Places {
    countries: Vec<Country>,
    /// Indexed by calling code: its main country.
    by_calling_code: Vec<Option<usize>>,
    /// (prefix, its digit count, country), longest first.
    prefixes: Vec<(u64, u32, usize)>,
    /// Indexed by NPA.
    npas: Vec<Option<Npa>>,
    us: usize,
    regions: Vec<String>,
}

struct Country {
    code: String,
    region: Region,
    zones: Vec<TimeZone>,
}

struct Npa {
    country: usize,
    region: Option<usize>,
    zones: Vec<TimeZone>,
}

impl Country {
    fn place(&'static self, region: Option<&'static str>, zones: Option<&'static [TimeZone]>) -> Place {
        let zones = zones.unwrap_or(&self.zones);
        let time_zone = match zones {
            [zone] => ZoneChoice::Known(zone),
            _ => ZoneChoice::Ambiguous(zones),
        };
        Place { country: self.region, country_code: &self.code, region, time_zone }
    }
}

impl Places {
    fn main_country(&self, calling_code: u64) -> Option<usize> {
        usize::try_from(calling_code).ok().and_then(|code| self.by_calling_code.get(code).copied().flatten())
    }

    fn locate_nanp(&'static self, npa: u64) -> Place {
        let entry = usize::try_from(npa).ok().and_then(|npa| self.npas.get(npa)).and_then(Option::as_ref);
        match entry {
            Some(npa) => {
                let region = npa.region.map(|index| self.regions[index].as_str());
                self.countries[npa.country].place(region, Some(&npa.zones))
            }
            None => self.countries[self.us].place(None, None),
        }
    }
}

fn places() -> &'static Places {
    static PLACES: LazyLock<Places> = LazyLock::new(load_places);
    &PLACES
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountriesFile {
    zones: BTreeMap<String, Vec<String>>,
    prefixes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AreaCodesFile {
    npa: BTreeMap<String, NpaRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpaRow {
    region: Option<String>,
    country: Option<String>,
    zones: Vec<String>,
}

const CHECKED: &str = "is valid (checked by a unit test)";

fn load_places() -> Places {
    let countries_file: CountriesFile =
        toml::from_str(include_str!("../../data/countries.toml")).expect("data/countries.toml is valid TOML");
    let countries: Vec<Country> = countries_file
        .zones
        .into_iter()
        .filter_map(|(code, zones)| {
            Some(Country { region: Region::parse(&code).ok()?, zones: load_zones(&zones), code })
        })
        .collect();
    let index: HashMap<&str, usize> = countries.iter().enumerate().map(|(i, c)| (c.code.as_str(), i)).collect();
    let country_index = |code: &str| *index.get(code).unwrap_or_else(|| panic!("country {code} {CHECKED}"));
    let by_calling_code =
        (0..=999u16).map(|code| DATABASE.region(&code)?.first().and_then(|id| index.get(id).copied())).collect();
    let mut prefixes: Vec<(u64, u32, usize)> = countries_file
        .prefixes
        .iter()
        .map(|(prefix, code)| (prefix.parse().expect(CHECKED), prefix.len() as u32, country_index(code)))
        .collect();
    prefixes.sort_by_key(|(_, length, _)| std::cmp::Reverse(*length));
    let (npas, regions) = load_npas(&country_index);
    Places { us: country_index("US"), countries, by_calling_code, prefixes, npas, regions }
}

fn load_npas(country_index: &dyn Fn(&str) -> usize) -> (Vec<Option<Npa>>, Vec<String>) {
    let file: AreaCodesFile =
        toml::from_str(include_str!("../../data/area_codes.toml")).expect("data/area_codes.toml is valid TOML");
    let mut regions: Vec<String> = file.npa.values().filter_map(|row| row.region.clone()).collect();
    regions.sort_unstable();
    regions.dedup();
    let mut npas: Vec<Option<Npa>> = (0..1000).map(|_| None).collect();
    for (npa, row) in file.npa {
        let country = match (&row.region, &row.country) {
            (Some(region), None) => country_index(region.split('-').next().unwrap_or_default()),
            (None, Some(country)) => country_index(country),
            _ => panic!("NPA {npa} needs exactly one of `region` and `country`"),
        };
        let region = row.region.map(|code| regions.binary_search(&code).expect(CHECKED));
        let slot: usize = npa.parse().ok().filter(|n| (200..1000).contains(n)).expect(CHECKED);
        npas[slot] = Some(Npa { country, region, zones: load_zones(&row.zones) });
    }
    (npas, regions)
}

fn load_zones(names: &[String]) -> Vec<TimeZone> {
    names.iter().map(|name| bundled_zone(name).unwrap_or_else(|| panic!("zone {name} {CHECKED}"))).collect()
}
