//! The notices rows refer to, each looked up or checked once per import.
//!
//! A `notice_id` is looked up in the store. A `notice_text` (with its `notice_language`) is
//! checked with the same rules as `POST /v1/notices`; a text that fails rejects every row using it
//! with the notice's failure codes. A text that passes is the business's existing notice with
//! that exact text and language if there is one (so a rerun registers nothing), else it is
//! registered once (a dry run only counts it).

use std::collections::HashMap;

use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::consent::NoticeRef;
use optin_core::ids::NoticeId;
use optin_core::notice::{Language, NoticeText, check_notice};

use crate::intake::register_notice;
use crate::records::Notice;
use crate::rejection::{Problem, UseCaseError, problem};
use crate::store::Store;

/// Distinct notice texts one import may register or refer to.
const MAX_NOTICE_TEXTS: usize = 1_000;
/// Distinct notice ids remembered (further ones are looked up every time).
const MAX_NOTICE_IDS: usize = 10_000;

/// A row's notice, resolved.
#[derive(Debug, Clone)]
pub(super) struct ResolvedNotice {
    /// `None` in a dry run, for a text that would be registered.
    pub(super) reference: Option<NoticeRef>,
    /// What identifies the notice in a row's dedupe key: its text's SHA-256 and its language
    /// (the same whether the row named it by id or by text).
    pub(super) key: String,
}

pub(super) type Resolution = Result<ResolvedNotice, Vec<Problem>>;

#[derive(Default)]
pub(super) struct Notices {
    by_id: HashMap<String, Resolution>,
    /// By language, then text.
    by_text: HashMap<String, HashMap<String, Resolution>>,
    texts: usize,
    /// The business's notices by (text SHA-256, language), read once when a text first comes.
    existing: Option<HashMap<(String, String), Notice>>,
    pub(super) registered: u64,
}

impl Notices {
    pub(super) async fn by_id(
        &mut self,
        store: &dyn Store,
        business: &Business,
        id: &str,
    ) -> Result<Resolution, UseCaseError> {
        if let Some(found) = self.by_id.get(id) {
            return Ok(found.clone());
        }
        let unknown = || vec![problem("unknown_notice", "this business has no notice with this id")];
        let resolution = match id.parse::<NoticeId>() {
            Err(_) => Err(unknown()),
            Ok(id) => store.notice(business.id, id).await?.map(|notice| resolved(&notice)).ok_or_else(unknown),
        };
        if self.by_id.len() < MAX_NOTICE_IDS {
            self.by_id.insert(id.to_owned(), resolution.clone());
        }
        Ok(resolution)
    }

    pub(super) async fn by_text(
        &mut self,
        store: &dyn Store,
        business: &Business,
        (text, language): (&str, &str),
        dry_run: bool,
        now: Timestamp,
    ) -> Result<Resolution, UseCaseError> {
        if let Some(found) = self.by_text.get(language).and_then(|texts| texts.get(text)) {
            return Ok(found.clone());
        }
        if self.texts >= MAX_NOTICE_TEXTS {
            let detail = format!("an import may use at most {MAX_NOTICE_TEXTS} different notice texts");
            return Ok(Err(vec![problem("too_many_notices", detail)]));
        }
        let resolution = self.check_and_register(store, business, text, language, dry_run, now).await?;
        self.texts += 1;
        self.by_text.entry(language.to_owned()).or_default().insert(text.to_owned(), resolution.clone());
        Ok(resolution)
    }

    async fn check_and_register(
        &mut self,
        store: &dyn Store,
        business: &Business,
        text: &str,
        language: &str,
        dry_run: bool,
        now: Timestamp,
    ) -> Result<Resolution, UseCaseError> {
        let parsed_text = NoticeText::parse(text).map_err(|e| problem(e.code(), e));
        let parsed_language = Language::parse(language).map_err(|e| problem(e.code(), e));
        let (notice_text, notice_language) = match (parsed_text, parsed_language) {
            (Ok(text), Ok(language)) => (text, language),
            (text, language) => return Ok(Err([text.err(), language.err()].into_iter().flatten().collect())),
        };
        let assessment = check_notice(&notice_text, &notice_language, business.names());
        if !assessment.is_accepted() {
            let problems =
                assessment.failures.iter().map(|f| Problem { code: f.code(), detail: f.detail().to_owned() });
            return Ok(Err(problems.collect()));
        }
        let sha256 = notice_text.sha256_hex();
        let key = (sha256, notice_language.as_str().to_owned());
        if let Some(notice) = self.existing(store, business).await?.get(&key) {
            return Ok(Ok(resolved(notice)));
        }
        self.registered += 1;
        if dry_run {
            return Ok(Ok(ResolvedNotice { reference: None, key: notice_key(&key.0, &key.1) }));
        }
        let notice = register_notice(store, business, text, language, now).await?;
        self.existing.get_or_insert_default().insert(key, notice.clone());
        Ok(Ok(resolved(&notice)))
    }

    async fn existing(
        &mut self,
        store: &dyn Store,
        business: &Business,
    ) -> Result<&HashMap<(String, String), Notice>, UseCaseError> {
        if self.existing.is_none() {
            let notices = store.list_notices(business.id).await?;
            let by_text = notices
                .into_iter()
                .map(|notice| ((notice.text_sha256.clone(), notice.language.as_str().to_owned()), notice))
                .collect();
            self.existing = Some(by_text);
        }
        Ok(self.existing.get_or_insert_default())
    }
}

fn resolved(notice: &Notice) -> ResolvedNotice {
    ResolvedNotice {
        reference: Some(NoticeRef {
            id: notice.id,
            version: notice.version,
            language: notice.language.as_str().to_owned(),
            text_sha256: notice.text_sha256.clone(),
        }),
        key: notice_key(&notice.text_sha256, notice.language.as_str()),
    }
}

fn notice_key(sha256: &str, language: &str) -> String {
    format!("{sha256}/{language}")
}
