use proptest::prelude::*;

use super::*;

fn assess(text: &str, language: &str, names: &[&str]) -> NoticeAssessment {
    check_notice(&NoticeText::parse(text).unwrap(), &Language::parse(language).unwrap(), names.iter().copied())
}

fn failure_codes(assessment: &NoticeAssessment) -> Vec<&'static str> {
    assessment.failures.iter().map(NoticeFailure::code).collect()
}

#[test]
fn the_phrase_data_loads_with_every_required_language() {
    let languages: Vec<_> = supported_languages().collect();
    for required in ["en", "es", "pt", "de", "fr", "it", "id", "hi"] {
        assert!(languages.contains(&required), "{required} missing");
    }
}

#[test]
fn compliant_notices_pass_in_every_supported_language() {
    let notices = [
        ("en", "I agree to receive order updates and offers from Acme Shoes on WhatsApp. Reply STOP to opt out."),
        ("es", "Acepto recibir ofertas de Acme Shoes por WhatsApp. Responde BAJA para darte de baja."),
        ("pt-BR", "Aceito receber mensagens da Acme Shoes pelo WhatsApp. Responda SAIR para cancelar."),
        ("de", "Ich willige ein, Angebote von Acme Shoes per WhatsApp zu erhalten. Mit STOP abmelden."),
        ("fr", "J'accepte de recevoir des offres d'Acme Shoes sur WhatsApp. Répondez STOP pour arrêter."),
        ("it", "Accetto di ricevere offerte da Acme Shoes su WhatsApp. Rispondi STOP per annullare."),
        ("id", "Saya setuju menerima penawaran dari Acme Shoes melalui WhatsApp. Balas STOP untuk berhenti."),
        ("hi", "मैं WhatsApp पर Acme Shoes से संदेश प्राप्त करने के लिए सहमत हूं। रोकने के लिए STOP भेजें।"),
        ("hi", "Main Acme Shoes se WhatsApp par message prapt karne ke liye sahmat hoon. STOP bhejein."),
    ];
    for (language, text) in notices {
        let assessment = assess(text, language, &["Acme Shoes"]);
        assert!(assessment.is_accepted(), "{language}: {assessment:?}");
        assert!(assessment.warnings.is_empty(), "{language}: {:?}", assessment.warnings);
    }
}

#[test]
fn the_business_name_is_matched_without_case_accents_or_punctuation() {
    let text = "I agree to receive offers from CAFÉ-DU-MONDE on WhatsApp.";
    assert!(assess(text, "en", &["Café du Monde"]).is_accepted());
    assert_eq!(failure_codes(&assess(text, "en", &["Café du Mondial"])), ["notice_missing_business_name"]);
}

#[test]
fn a_brand_name_counts_as_naming_the_business() {
    let text = "I agree to receive offers from Acme on WhatsApp.";
    assert!(!assess(text, "en", &["Acme Shoes Holdings Inc"]).is_accepted());
    assert!(assess(text, "en", &["Acme Shoes Holdings Inc", "Acme"]).is_accepted());
}

#[test]
fn a_name_inside_another_word_does_not_count() {
    let text = "I agree to receive offers from Acmeshoes on WhatsApp.";
    assert_eq!(failure_codes(&assess(text, "en", &["Acme"])), ["notice_missing_business_name"]);
}

#[test]
fn every_failing_rule_is_reported() {
    let assessment = assess("Thanks for shopping with us!", "en", &["Acme Shoes"]);
    assert_eq!(failure_codes(&assessment), ["notice_missing_business_name", "notice_missing_opt_in_statement"]);
}

#[test]
fn a_notice_that_only_mentions_the_business_is_not_an_opt_in() {
    let assessment = assess("Acme Shoes: terms and conditions apply. WhatsApp us!", "en", &["Acme Shoes"]);
    assert_eq!(failure_codes(&assessment), ["notice_missing_opt_in_statement"]);
}

#[test]
fn missing_whatsapp_and_opt_out_are_warnings_only() {
    let assessment = assess("I agree to receive offers from Acme Shoes.", "en", &["Acme Shoes"]);
    assert!(assessment.is_accepted());
    assert_eq!(
        assessment.warnings,
        [NoticeWarning::NoticeMissingWhatsapp, NoticeWarning::NoticeMissingOptOutInstructions]
    );
}

#[test]
fn an_unsupported_language_is_checked_against_all_phrases_with_a_warning() {
    let assessment =
        assess("I agree to receive offers from Acme Shoes on WhatsApp. STOP to end.", "nl", &["Acme Shoes"]);
    assert!(assessment.is_accepted());
    assert_eq!(assessment.warnings, [NoticeWarning::NoticeLanguageNotSupported]);
}

#[test]
fn the_language_selects_the_phrase_list() {
    // An English statement in a notice declared as German does not pass as a German opt-in.
    let assessment = assess("I agree to receive offers from Acme Shoes on WhatsApp.", "de", &["Acme Shoes"]);
    assert_eq!(failure_codes(&assessment), ["notice_missing_opt_in_statement"]);
}

#[test]
fn notice_inputs_are_parsed() {
    assert_eq!(NoticeText::parse("  ").map_err(|e| e.code()), Err("invalid_notice_text"));
    assert!(NoticeText::parse(&"x".repeat(MAX_NOTICE_CHARS + 1)).is_err());
    assert_eq!(Language::parse("pt_br").unwrap().as_str(), "pt-br");
    assert_eq!(Language::parse("EN").unwrap().primary(), "en");
    for bad in ["", "e", "english-language-tag-that-is-too-long-really", "e1", "en--x", "日本"] {
        assert_eq!(Language::parse(bad).map_err(|e| e.code()), Err("invalid_language"), "{bad:?}");
    }
}

proptest! {
    #[test]
    fn checking_never_panics(text in "\\PC{1,300}", name in "\\PC{0,40}", language in "[a-z]{2}") {
        if let (Ok(text), Ok(language)) = (NoticeText::parse(&text), Language::parse(&language)) {
            let _ = check_notice(&text, &language, [name.as_str()]);
        }
    }

    #[test]
    fn appending_a_compliant_sentence_makes_any_text_pass(prefix in "\\PC{0,200}") {
        let text = format!("{prefix}. I agree to receive messages from Acme Shoes.");
        let assessment = check_notice(&NoticeText::parse(&text).unwrap(), &Language::parse("en").unwrap(), ["Acme Shoes"]);
        prop_assert!(assessment.is_accepted());
    }
}
