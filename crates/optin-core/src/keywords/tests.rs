use proptest::prelude::*;

use super::*;

fn category(name: &str) -> CategoryName {
    CategoryName::parse(name).unwrap()
}

/// A shop with three categories: `offers` (aliases in several languages), `order_updates` and `news`.
struct Shop {
    offers: CategoryName,
    order_updates: CategoryName,
    news: CategoryName,
    offer_aliases: Vec<String>,
    news_aliases: Vec<String>,
}

impl Shop {
    fn new() -> Shop {
        let offer_aliases = ["promotions", "promociones", "promoções", "deals", "Werbung", "العروض", "ऑफ़र"];
        Shop {
            offers: category("offers"),
            order_updates: category("order_updates"),
            news: category("news"),
            offer_aliases: offer_aliases.map(str::to_owned).to_vec(),
            news_aliases: vec!["newsletter".to_owned(), "noticias".to_owned()],
        }
    }

    fn categories(&self) -> [CategoryAliases<'_>; 3] {
        [
            CategoryAliases { category: &self.offers, aliases: &self.offer_aliases },
            CategoryAliases { category: &self.order_updates, aliases: &[] },
            CategoryAliases { category: &self.news, aliases: &self.news_aliases },
        ]
    }
}

/// The outcome of a classification, without the details that tests rarely care about.
#[derive(Debug, PartialEq, Eq)]
enum Kind<'a> {
    OptOutAll,
    OptOut(Vec<&'a str>),
    OptInAll,
    OptIn(Vec<&'a str>),
    Unclear,
    None,
}

fn kind_of(intent: &Intent) -> Kind<'_> {
    fn names(categories: &[CategoryName]) -> Vec<&str> {
        categories.iter().map(CategoryName::as_str).collect()
    }
    match intent {
        Intent::OptOut { scope: Scope::All, .. } => Kind::OptOutAll,
        Intent::OptOut { scope: Scope::Categories(categories), .. } => Kind::OptOut(names(categories)),
        Intent::OptIn { scope: Scope::All, .. } => Kind::OptInAll,
        Intent::OptIn { scope: Scope::Categories(categories), .. } => Kind::OptIn(names(categories)),
        Intent::Unclear { .. } => Kind::Unclear,
        Intent::None => Kind::None,
    }
}

fn check(matcher: &KeywordMatcher, cases: &[(&str, Kind<'static>)]) {
    let shop = Shop::new();
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let intent = matcher.classify(text, &shop.categories());
        if kind_of(&intent) != *expected {
            failures.push(format!("{text:?}: expected {expected:?}, got {intent:?}"));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_fcc_and_ctia_words_opt_out_of_everything_in_any_case() {
    let words = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "OPTOUT", "opt-out"];
    for word in words {
        for text in [word.to_owned(), word.to_lowercase(), format!("  {word}!!! 🙏")] {
            let intent = KeywordMatcher::builtin().classify(&text, &[]);
            assert!(
                matches!(&intent, Intent::OptOut { scope: Scope::All, language: "en", .. }),
                "{text:?}: {intent:?}"
            );
        }
    }
}

#[test]
fn keyword_is_reported_as_in_the_data_with_its_language() {
    let classify = |text| KeywordMatcher::builtin().classify(text, &[]);
    assert_eq!(
        classify("arret svp"),
        Intent::OptOut { scope: Scope::All, keyword: "ARRÊT".to_owned(), language: "fr" }
    );
    assert_eq!(
        classify("opt-out"),
        Intent::OptOut { scope: Scope::All, keyword: "OPT OUT".to_owned(), language: "en" }
    );
    assert_eq!(classify("unstop"), Intent::OptIn { scope: Scope::All, keyword: "UNSTOP".to_owned(), language: "en" });
    assert_eq!(classify("how do I unsubscribe?"), Intent::Unclear { keyword: "UNSUBSCRIBE".to_owned() });
    assert_eq!(classify("Hello"), Intent::None);
}

#[test]
fn english_commands_with_polite_words_and_punctuation() {
    use Kind::*;
    check(
        KeywordMatcher::builtin(),
        &[
            ("  Stop!!! 🙏", OptOutAll),
            ("Stop. Thank you", OptOutAll),
            ("stop please", OptOutAll),
            ("STOP 🙏", OptOutAll),
            ("Unsubscribe me please", OptOutAll),
            ("stop stop stop", OptOutAll),
            ("Stop, unsubscribe!", OptOutAll),
            ("remove me", OptOutAll),
            ("STOP ALL", OptOutAll),
            ("stop\n\n  now   please", OptOutAll),
            ("START", OptInAll),
            ("unstop please", OptInAll),
            ("Join", OptInAll),
            ("opt-in", OptInAll),
            ("yes", None),
            ("YES please", None),
            ("Hello", None),
            ("", None),
            ("🙏🙏", None),
            ("stopping by later", None),
            ("unstoppable", None),
            ("the weekend", None),
        ],
    );
}

#[test]
fn anything_else_after_the_keyword_or_a_keyword_later_is_unclear() {
    use Kind::*;
    check(
        KeywordMatcher::builtin(),
        &[
            ("stop my order", Unclear),
            ("stop sending the wrong size", Unclear),
            ("don't stop my order", Unclear),
            ("please cancel my order", Unclear),
            ("how do I unsubscribe?", Unclear),
            ("Can I opt out of texts?", Unclear),
            ("stop and", Unclear),
            ("stop offers and", Unclear),
            ("stop offers please and news", Unclear),
            ("stop start", Unclear),
            ("quiero darme de baja de todo esto", Unclear),
            ("start my order", None),
            ("join the club", None),
            ("start the return please", None),
        ],
    );
}

#[test]
fn categories_and_aliases_narrow_the_scope() {
    use Kind::*;
    check(
        KeywordMatcher::builtin(),
        &[
            ("STOP OFFERS", OptOut(vec!["offers"])),
            ("BAJA PROMOCIONES", OptOut(vec!["offers"])),
            ("stop order updates and offers please", OptOut(vec!["order_updates", "offers"])),
            ("stop order_updates", OptOut(vec!["order_updates"])),
            ("Stop offers, news & order updates!", OptOut(vec!["offers", "news", "order_updates"])),
            ("stop offers deals promotions", OptOut(vec!["offers"])),
            ("stop news and news", OptOut(vec!["news"])),
            ("Parar promoções, obrigado", OptOut(vec!["offers"])),
            ("Stop promotions", OptOut(vec!["offers"])),
            ("baja noticias y promociones por favor", OptOut(vec!["news", "offers"])),
            ("Werbung stoppen", Unclear),
            ("STOPP Werbung und newsletter bitte", OptOut(vec!["offers", "news"])),
            ("توقف العروض", OptOut(vec!["offers"])),
            ("توقف العروض والنشرة", Unclear),
            ("توقف newsletter والعروض", OptOut(vec!["news", "offers"])),
            ("बंद करो ऑफर", OptOut(vec!["offers"])),
            ("START offers", OptIn(vec!["offers"])),
            ("join news please", OptIn(vec!["news"])),
            ("start offers and my order", None),
        ],
    );
}

#[test]
fn a_stop_promotions_label_without_a_matching_category_is_unclear() {
    for (_, words) in data::languages() {
        for label in &words.stop_promotions {
            let intent = KeywordMatcher::builtin().classify(label, &[]);
            assert!(matches!(intent, Intent::Unclear { .. }), "{label:?}: {intent:?}");
        }
    }
}

#[test]
fn every_language_opts_out_and_in() {
    use Kind::*;
    check(
        KeywordMatcher::builtin(),
        &[
            // Spanish
            ("BAJA", OptOutAll),
            ("Alto", OptOutAll),
            ("parar por favor", OptOutAll),
            ("Cancelar, gracias", OptOutAll),
            ("DETENER", OptOutAll),
            ("Quiero darme de baja", OptOutAll),
            ("cancelar suscripción", OptOutAll),
            ("alta", OptInAll),
            ("no me interesa la baja calidad", Unclear),
            ("hola, ¿cuánto cuesta?", None),
            // Portuguese
            ("PARAR", OptOutAll),
            ("Sair", OptOutAll),
            ("descadastrar por favor", OptOutAll),
            ("quero sair, obrigado", OptOutAll),
            ("reativar", OptInAll),
            ("meu pedido não chegou", None),
            ("vou sair de casa", Unclear),
            // German
            ("STOPP", OptOutAll),
            ("abmelden bitte", OptOutAll),
            ("Kündigen", OptOutAll),
            ("anmelden", OptInAll),
            ("wo ist mein Paket?", None),
            // French
            ("ARRÊT", OptOutAll),
            ("arret", OptOutAll),
            ("Désabonner s'il vous plaît", OptOutAll),
            ("me désinscrire svp merci", OptOutAll),
            ("m'abonner", OptInAll),
            ("je veux annuler ma commande", Unclear),
            ("bonjour", None),
            // Italian
            ("BASTA", OptOutAll),
            ("disiscrivimi per favore", OptOutAll),
            ("annulla grazie", OptOutAll),
            ("iscrivimi", OptInAll),
            ("ciao, dov'è il mio ordine?", None),
            // Indonesian
            ("BERHENTI", OptOutAll),
            ("stop kak", OptOutAll),
            ("unreg", OptOutAll),
            ("hentikan saja, terima kasih", OptOutAll),
            ("mulai", OptInAll),
            ("pesanan saya belum sampai", None),
            // Hindi, Latin script and Devanagari
            ("band karo", OptOutAll),
            ("Band kar do please", OptOutAll),
            ("BAND KRO ji", OptOutAll),
            ("रोकें", OptOutAll),
            ("बंद करो", OptOutAll),
            ("बंद करें, धन्यवाद।", OptOutAll),
            ("कृपया बंद करें", Unclear),
            ("सदस्यता रद्द करें", OptOutAll),
            ("shuru karo", OptInAll),
            ("शुरू करें", OptInAll),
            ("दुकान बंद है", None),
            ("band is playing", None),
            ("रोक", None),
            // Arabic
            ("توقف", OptOutAll),
            ("إلغاء الاشتراك", OptOutAll),
            ("الغاء الاشتراك من فضلك", OptOutAll),
            ("إيقاف، شكراً", OptOutAll),
            ("اشترك", OptInAll),
            ("أين طلبي؟", None),
            // Turkish
            ("DUR", OptOutAll),
            ("İPTAL", OptOutAll),
            ("iptal", OptOutAll),
            ("IPTAL", OptOutAll),
            ("İptal et lütfen", OptOutAll),
            ("durdur teşekkürler", OptOutAll),
            ("RET", OptOutAll),
            ("abonelikten çık", OptOutAll),
            ("başla", OptInAll),
            ("siparişimi iptal et", Unclear),
            ("merhaba", None),
        ],
    );
}

#[test]
fn custom_keywords_add_to_the_builtin_ones() {
    use Kind::*;
    let custom = [
        CustomKeyword { text: "Hold my texts".to_owned(), intent: KeywordIntent::OptOut },
        CustomKeyword { text: "  PAUSA ".to_owned(), intent: KeywordIntent::OptOut },
        CustomKeyword { text: "back on".to_owned(), intent: KeywordIntent::OptIn },
        CustomKeyword { text: "stop".to_owned(), intent: KeywordIntent::OptOut },
    ];
    let matcher = KeywordMatcher::new(&custom).unwrap();
    check(
        &matcher,
        &[
            ("hold my texts!", OptOutAll),
            ("pausa offers por favor", OptOut(vec!["offers"])),
            ("Back on, thanks", OptInAll),
            ("STOP", OptOutAll),
            ("UNSUBSCRIBE", OptOutAll),
            ("can you pausa the order?", Unclear),
            ("hold my order", None),
        ],
    );
    assert_eq!(
        matcher.classify("pausa", &[]),
        Intent::OptOut { scope: Scope::All, keyword: "PAUSA".to_owned(), language: CUSTOM_LANGUAGE }
    );
    // The built-in matcher is unchanged.
    assert_eq!(KeywordMatcher::builtin().classify("pausa", &[]), Intent::None);
}

#[test]
fn custom_keywords_are_validated() {
    let keyword = |text: &str, intent| CustomKeyword { text: text.to_owned(), intent };
    let new = |keywords: &[CustomKeyword]| KeywordMatcher::new(keywords).map(|_| ());
    assert_eq!(new(&[keyword("   ", KeywordIntent::OptOut)]), Err(KeywordError::Empty));
    assert_eq!(new(&[keyword("!!🙏", KeywordIntent::OptIn)]), Err(KeywordError::Empty));
    let long = "x".repeat(MAX_CUSTOM_KEYWORD_CHARS + 1);
    assert_eq!(new(&[keyword(&long, KeywordIntent::OptOut)]).unwrap_err().code(), "keyword_too_long");
    assert!(new(&[keyword(&"é".repeat(MAX_CUSTOM_KEYWORD_CHARS), KeywordIntent::OptOut)]).is_ok());
    assert_eq!(
        new(&[keyword("Stop", KeywordIntent::OptIn)]),
        Err(KeywordError::Conflict { keyword: "Stop".to_owned(), existing: "STOP".to_owned() })
    );
    assert_eq!(
        new(&[keyword("hold", KeywordIntent::OptOut), keyword("HOLD!", KeywordIntent::OptIn)]).unwrap_err().code(),
        "keyword_conflict"
    );
    let many: Vec<_> = (0..=MAX_CUSTOM_KEYWORDS).map(|n| keyword(&format!("word{n}"), KeywordIntent::OptOut)).collect();
    assert_eq!(new(&many), Err(KeywordError::TooMany { max: MAX_CUSTOM_KEYWORDS }));
    assert!(new(&many[..MAX_CUSTOM_KEYWORDS]).is_ok());
}

#[test]
fn custom_keywords_deserialize_from_business_config() {
    let keywords: Vec<CustomKeyword> =
        serde_json::from_str(r#"[{"text": "pausa", "intent": "opt_out"}, {"text": "volver", "intent": "opt_in"}]"#)
            .unwrap();
    assert_eq!(keywords[0].intent, KeywordIntent::OptOut);
    assert_eq!(keywords[1].intent, KeywordIntent::OptIn);
    assert_eq!(serde_json::to_string(&KeywordIntent::OptIn).unwrap(), r#""opt_in""#);
}

#[test]
fn stop_promotions_labels_are_recognized_whole_in_every_language() {
    let labels = [
        "Stop promotions",
        "STOP PROMOTIONS",
        "stop_promotions",
        "Parar promoções",
        "parar promocoes",
        "Detener promociones",
        "Werbung stoppen",
        "Stopp Werbung",
        "Arrêter les promotions",
        "Interrompi promozioni",
        "Hentikan promosi",
        "प्रमोशन बंद करें",
        "إيقاف العروض الترويجية",
        "Tanıtımları durdur",
    ];
    for label in labels {
        assert!(is_stop_promotions_label(label), "{label:?}");
    }
    for text in ["Stop", "Stop promotions now", "promotions", "", "Learn more", "Parar"] {
        assert!(!is_stop_promotions_label(text), "{text:?}");
    }
}

#[test]
fn opt_out_instructions_are_found_in_footers() {
    let footers = [
        "Reply STOP to unsubscribe",
        "Not interested? Tap Stop promotions",
        "Envía BAJA para no recibir más mensajes",
        "Responda SAIR para cancelar",
        "Antworte STOPP zum Abmelden",
        "Répondez ARRÊT pour vous désabonner",
        "Rispondi BASTA per non ricevere più messaggi",
        "Balas BERHENTI untuk berhenti",
        "संदेश रोकने के लिए बंद करो लिखें",
        "أرسل توقف لإلغاء الاشتراك",
        "Mesaj almamak için RET yazın",
        "Sem interesse? Clique em Parar promoções",
        "To opt-out, text QUIT",
    ];
    for footer in footers {
        assert!(mentions_opt_out(footer), "{footer:?}");
    }
    for text in ["Thanks for shopping with Acme!", "Unstoppable deals this weekend", "", "Hola 👋", "धन्यवाद"]
    {
        assert!(!mentions_opt_out(text), "{text:?}");
    }
}

#[test]
fn builtin_data_is_complete_and_consistent() {
    let languages: Vec<_> = supported_languages().collect();
    for code in ["en", "es", "pt", "de", "fr", "it", "id", "hi", "ar", "tr"] {
        assert!(languages.contains(&code), "missing language {code}");
    }
    assert_eq!(languages[0], "en");
    let mut seen: std::collections::HashMap<String, (KeywordIntent, &str)> = std::collections::HashMap::new();
    for (code, words) in data::languages() {
        assert!(!words.opt_out.is_empty() && !words.opt_in.is_empty(), "{code}");
        assert!(!words.polite.is_empty() && !words.stop_promotions.is_empty(), "{code}");
        for (list, intent) in [(&words.opt_out, KeywordIntent::OptOut), (&words.opt_in, KeywordIntent::OptIn)] {
            for word in list {
                let normalized = normalize(word);
                assert!(!normalized.is_empty(), "{code}: {word:?}");
                if let Some((other, other_code)) = seen.insert(normalized, (intent, code)) {
                    assert_eq!(other, intent, "{word:?} ({code}) has the opposite meaning in {other_code}");
                }
            }
        }
        for word in words.polite.iter().chain(&words.and) {
            assert!(!normalize(word).is_empty(), "{code}: {word:?}");
        }
        for word in &words.opt_in {
            assert!(KeywordMatcher::builtin().followers.get(&normalize(word)).is_none(), "{word:?}");
        }
    }
}

#[test]
fn every_builtin_keyword_is_recognized_from_its_data_spelling() {
    for (_, words) in data::languages() {
        for word in &words.opt_out {
            let intent = KeywordMatcher::builtin().classify(word, &[]);
            assert!(matches!(intent, Intent::OptOut { scope: Scope::All, .. }), "{word:?}: {intent:?}");
            let intent = KeywordMatcher::builtin().classify(&format!("{word} please"), &[]);
            assert!(matches!(intent, Intent::OptOut { scope: Scope::All, .. }), "{word:?} please: {intent:?}");
        }
        for word in &words.opt_in {
            let intent = KeywordMatcher::builtin().classify(word, &[]);
            assert!(matches!(intent, Intent::OptIn { scope: Scope::All, .. }), "{word:?}: {intent:?}");
        }
    }
}

proptest! {
    #[test]
    fn classify_never_panics(text in any::<String>()) {
        let shop = Shop::new();
        let _ = KeywordMatcher::builtin().classify(&text, &shop.categories());
        let _ = mentions_opt_out(&text);
        let _ = is_stop_promotions_label(&text);
    }

    #[test]
    fn classify_never_panics_on_keyword_like_text(text in "(stop|baja|بند|و|वि|ऑफ़र|offers|and|please|[ \\PC]){0,12}") {
        let shop = Shop::new();
        let _ = KeywordMatcher::builtin().classify(&text, &shop.categories());
    }

    #[test]
    fn classify_ignores_ascii_case(text in "[a-zA-Z ]{0,40}") {
        let shop = Shop::new();
        let matcher = KeywordMatcher::builtin();
        prop_assert_eq!(matcher.classify(&text, &shop.categories()), matcher.classify(&text.to_uppercase(), &shop.categories()));
    }

    #[test]
    fn classify_ignores_ascii_case_of_commands(
        keyword in "(stop|unsubscribe|opt out|baja|start|join)",
        tail in "( (please|offers|order updates|and|news|my order|thanks))*",
    ) {
        let text = format!("{keyword}{tail}");
        let shop = Shop::new();
        let matcher = KeywordMatcher::builtin();
        prop_assert_eq!(matcher.classify(&text, &shop.categories()), matcher.classify(&text.to_uppercase(), &shop.categories()));
    }
}

#[test]
fn stop_promotions_labels_know_their_language() {
    assert_eq!(stop_promotions_language("Stop promotions"), Some("en"));
    assert_eq!(stop_promotions_language("PARAR PROMOÇÕES"), Some("pt"));
    assert_eq!(stop_promotions_language("Stop"), None);
}
