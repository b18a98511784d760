//! SMS keywords: the inbound message as a provider posts it (Twilio's form fields), the provider's
//! request signature, what a message asks for, and the reply in the provider's XML (TwiML).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::business::CategoryName;
use crate::keywords::{CategoryAliases, Intent, KeywordMatcher, Scope};

/// The request signature header of the common provider format.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Words that ask for help (CTIA: HELP and INFO), compared after trimming and ignoring case.
const HELP_WORDS: [&str; 2] = ["HELP", "INFO"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SmsSignatureError {
    #[error("the X-Twilio-Signature header is missing")]
    Missing,
    #[error("the X-Twilio-Signature header does not match the request")]
    Mismatch,
}

impl SmsSignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            SmsSignatureError::Missing => "signature_missing",
            SmsSignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// The signature the provider sends for a form POST to `url`: base64 of the HMAC-SHA1, keyed with
/// the account's auth token, of the URL followed by every parameter's name and value, sorted by
/// name.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Checks the provider's signature in constant time.
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SmsSignatureError> {
    let header = header.ok_or(SmsSignatureError::Missing)?;
    let claimed = STANDARD.decode(header.trim()).map_err(|_| SmsSignatureError::Mismatch)?;
    mac(auth_token, url, params).verify_slice(&claimed).map_err(|_| SmsSignatureError::Mismatch)
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// What an inbound SMS asks of the business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsRequest {
    /// A join keyword the business configured for the number: opt in to these categories.
    Join {
        keyword: String,
        categories: Vec<CategoryName>,
    },
    /// The STOP family: opt out (of everything, or of the categories named).
    Stop {
        scope: Scope,
        keyword: String,
    },
    /// The START family: resubscribe to what the person stopped.
    Start {
        keyword: String,
    },
    Help,
    /// Anything else: no action, no reply.
    Other,
}

/// A business's join keyword on one number and the categories it opts in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinKeyword {
    pub keyword: String,
    pub categories: Vec<CategoryName>,
}

/// Reads an inbound message: HELP first, then the business's join keywords (the whole message,
/// ignoring case and surrounding spaces and punctuation), then the STOP and START families of
/// every supported language (`matcher`).
pub fn classify(
    body: &str,
    joins: &[JoinKeyword],
    matcher: &KeywordMatcher,
    categories: &[CategoryAliases<'_>],
) -> SmsRequest {
    let word = body.trim().trim_matches(|c: char| c.is_ascii_punctuation()).trim();
    if HELP_WORDS.iter().any(|help| help.eq_ignore_ascii_case(word)) {
        return SmsRequest::Help;
    }
    if let Some(join) = joins.iter().find(|join| join.keyword.eq_ignore_ascii_case(word)) {
        return SmsRequest::Join { keyword: join.keyword.clone(), categories: join.categories.clone() };
    }
    match matcher.classify(body, categories) {
        Intent::OptOut { scope, keyword, .. } => SmsRequest::Stop { scope, keyword },
        Intent::OptIn { keyword, .. } => SmsRequest::Start { keyword },
        Intent::None | Intent::Unclear { .. } => SmsRequest::Other,
    }
}

/// The replies, naming the business (CTIA: HELP names the program and a contact and says how to
/// stop; STOP confirms that no more messages will be sent).
pub mod replies {
    use crate::business::CategoryName;

    pub fn help(business: &str, contact: &str) -> String {
        format!("{business}: messages about your orders and offers. Help: {contact}. Reply STOP to opt out.")
    }

    pub fn joined(business: &str, categories: &[CategoryName]) -> String {
        let names: Vec<String> = categories.iter().map(|c| c.as_str().replace('_', " ")).collect();
        format!(
            "{business}: you're subscribed to {} on WhatsApp. Msg & data rates may apply. Reply HELP for help, STOP to opt out.",
            names.join(", ")
        )
    }

    pub fn stopped(business: &str) -> String {
        format!("{business}: you're unsubscribed and will get no more messages. Reply START to resubscribe.")
    }

    pub fn restarted(business: &str) -> String {
        format!("{business}: you're subscribed again. Reply STOP to opt out.")
    }
}

/// The reply document: `<Response>` with one `<Message>` (none: no reply), its text escaped.
pub fn twiml(message: Option<&str>) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
    if let Some(text) = message {
        xml.push_str("<Message>");
        for c in text.chars() {
            match c {
                '&' => xml.push_str("&amp;"),
                '<' => xml.push_str("&lt;"),
                '>' => xml.push_str("&gt;"),
                '"' => xml.push_str("&quot;"),
                '\'' => xml.push_str("&apos;"),
                // Characters XML 1.0 cannot carry at all.
                c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
                c => xml.push(c),
            }
        }
        xml.push_str("</Message>");
    }
    xml.push_str("</Response>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_signature_matches_twilios_documented_example() {
        // Twilio's own signature validation example (TwilioDevEd/api-snippets).
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(sign("12345", url, &form), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert_eq!(verify("12345", url, &form, Some("GvWf1cFY/Q7PnoempGyD5oXAezc=")), Ok(()));
        let mut tampered = form.clone();
        tampered[2].1 = "9999".into();
        assert_eq!(
            verify("12345", url, &tampered, Some("GvWf1cFY/Q7PnoempGyD5oXAezc=")),
            Err(SmsSignatureError::Mismatch)
        );
        assert_eq!(verify("12345", url, &form, None), Err(SmsSignatureError::Missing));
        assert_eq!(verify("12345", url, &form, Some("not base64 !")), Err(SmsSignatureError::Mismatch));
        assert_eq!(verify("other", url, &form, Some("GvWf1cFY/Q7PnoempGyD5oXAezc=")), Err(SmsSignatureError::Mismatch));
    }

    #[test]
    fn messages_are_read_help_first_then_join_keywords_then_stop_and_start() {
        let offers = CategoryName::parse("offers").unwrap();
        let joins = [JoinKeyword { keyword: "DEALS".into(), categories: vec![offers.clone()] }];
        let aliases = [CategoryAliases { category: &offers, aliases: &[] }];
        let matcher = KeywordMatcher::builtin();
        let read = |body: &str| classify(body, &joins, matcher, &aliases);
        assert_eq!(read(" help "), SmsRequest::Help);
        assert_eq!(read("Info."), SmsRequest::Help);
        assert_eq!(read("deals!"), SmsRequest::Join { keyword: "DEALS".into(), categories: vec![offers.clone()] });
        assert!(matches!(read("STOP"), SmsRequest::Stop { scope: Scope::All, .. }));
        assert!(matches!(read("stop offers"), SmsRequest::Stop { scope: Scope::Categories(_), .. }));
        assert!(matches!(read("Parar"), SmsRequest::Stop { .. }), "Spanish");
        assert!(matches!(read("START"), SmsRequest::Start { .. }));
        assert_eq!(read("where is my order? deals are great"), SmsRequest::Other);
        assert_eq!(read(""), SmsRequest::Other);
    }

    #[test]
    fn the_reply_is_escaped_xml() {
        assert_eq!(twiml(None), "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>");
        let reply = twiml(Some("Tom & Jerry's <shop>\u{0}"));
        assert!(reply.contains("<Message>Tom &amp; Jerry&apos;s &lt;shop&gt;</Message>"), "{reply}");
        let help = replies::help("Acme Shoes", "help@acme.example");
        assert!(help.contains("Acme Shoes") && help.contains("help@acme.example") && help.contains("STOP"));
    }
}
