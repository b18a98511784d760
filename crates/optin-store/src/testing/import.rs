//! Contract stories for bulk imports: many events in one call, each once per dedupe key, the
//! chain kept whole; and the import use case on top of it.

use optin_core::consent::{CategoryOutcome, ConsentBits, ConsentChange, ConsentEvent, ConsentStatus, NoticeRef, OptIn};
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::EventId;
use optin_core::ledger::SealedEvent;
use serde_json::json;
use uuid::Uuid;

use super::{NOTICE, new_business, now, opt_out, phone};
use crate::Store;
use crate::import::{CsvRows, ImportHeader, ImportOptions, ImportSummary, Importer, NextRow, RawRow, RowRejection};
use crate::intake::{record_opt_out, register_notice};
use crate::ledger::verify_ledger;

pub(super) async fn run_import_stories(store: &dyn Store) {
    batches_record_each_key_once_in_one_chain(store).await;
    imports_record_rows_once_by_content(store).await;
    imports_are_written_in_number_order(store).await;
}

fn imported_event(
    business: &optin_core::business::Business,
    notice: NoticeRef,
    number: &str,
    collected: &str,
) -> SealedEvent {
    let evidence =
        json!({"batch_id": "b1", "original_method": "web_form", "page_url": "https://a.example", "ip": "192.0.2.1"});
    SealedEvent::new(ConsentEvent {
        id: EventId::from_uuid(Uuid::new_v4()),
        business_id: business.id,
        phone: phone(number),
        change: ConsentChange::OptIn(OptIn {
            categories: vec![optin_core::business::CategoryName::parse("offers").unwrap()],
            method: Method::Import,
            notice,
            evidence: Evidence::recorded(evidence.as_object().cloned().unwrap()),
            collected_at: collected.parse().unwrap(),
            basis: Default::default(),
            basis_at: None,
            needs_confirmation: false,
        }),
        recorded_at: now(),
    })
}

async fn batches_record_each_key_once_in_one_chain(store: &dyn Store) {
    let business = new_business(store, "Acme Shoes").await;
    let rival = new_business(store, "Acme Shoes").await;
    let notice = register_notice(store, &business, NOTICE, "en", now()).await.unwrap();
    let reference =
        NoticeRef { id: notice.id, version: 1, language: "en".into(), text_sha256: notice.text_sha256.clone() };
    // Opted out in 2025: an opt-in collected in 2024 and imported now cannot undo it.
    record_opt_out(store, &business, opt_out("+14155550301", Some(&["offers"])), now()).await.unwrap();
    let event = |number, collected| imported_event(&business, reference.clone(), number, collected);
    let batch = vec![
        ("import:a".to_owned(), event("+14155550301", "2024-01-01T00:00:00Z")),
        ("import:b".to_owned(), event("+14155550302", "2024-01-01T00:00:00Z")),
        ("import:a".to_owned(), event("+14155550303", "2024-01-01T00:00:00Z")),
        ("import:c".to_owned(), event("+14155550302", "2024-02-01T00:00:00Z")),
    ];
    let recorded = store.record_consent_batch_once(&business, batch.clone()).await.unwrap();
    let indexes: Vec<Option<u64>> = recorded.iter().map(|r| r.as_ref().map(|r| r.chain_index)).collect();
    assert_eq!(indexes, [Some(2), Some(3), None, Some(4)], "a key repeated in the batch records once");
    let outcomes: Vec<CategoryOutcome> = recorded.iter().flatten().map(|r| r.outcomes[0].1).collect();
    assert_eq!(
        outcomes,
        [CategoryOutcome::SupersededByOptOut, CategoryOutcome::Applied, CategoryOutcome::AlreadyOptedIn],
        "the second event of a contact in the batch sees the first"
    );
    let offers = ConsentBits { opted_in: 0b10, ..ConsentBits::default() };
    assert_eq!(store.consent_bits(&business, phone("+14155550302")).await.unwrap(), offers);
    let opted_out = store.contact_consent(business.id, phone("+14155550301")).await.unwrap();
    assert!(opted_out.values().all(|c| c.status == ConsentStatus::OptedOut), "{opted_out:?}");

    let again = store.record_consent_batch_once(&business, batch).await.unwrap();
    assert!(again.iter().all(Option::is_none), "a rerun records nothing");
    assert_eq!(store.chain_head(business.id).await.unwrap().map(|h| h.index), Some(4));
    let report = verify_ledger(store, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 4, "{report:?}");

    let keys = ["import:a", "import:zzz", "import:c"].map(str::to_owned);
    assert_eq!(store.dedupe_keys_used(business.id, &keys).await.unwrap(), [true, false, true]);
    assert_eq!(store.dedupe_keys_used(rival.id, &keys).await.unwrap(), [false, false, false], "keys are per business");
    assert_eq!(store.record_consent_batch_once(&business, Vec::new()).await.unwrap(), []);
}

/// Runs an import of `text` the way the CLI does: rows in chunks of `chunk`.
pub async fn import_text(
    store: &dyn Store,
    business: &optin_core::business::Business,
    text: &[u8],
    options: ImportOptions,
    chunk: usize,
) -> Result<(ImportSummary, Vec<RowRejection>), crate::UseCaseError> {
    let mut rows = CsvRows::new();
    rows.feed(text);
    rows.finish();
    let mut header = RawRow::default();
    assert_eq!(rows.next_row(&mut header), NextRow::Row, "a header");
    let header = ImportHeader::parse(&header)?;
    let mut importer = Importer::new(store, business.clone(), header, options, now());
    let mut rejections = Vec::new();
    let mut done = false;
    while !done {
        let mut chunk_rows = Vec::new();
        while chunk_rows.len() < chunk {
            let mut row = RawRow::default();
            if rows.next_row(&mut row) != NextRow::Row {
                done = true;
                break;
            }
            chunk_rows.push(row);
        }
        rejections.extend(importer.import_chunk(&chunk_rows).await?);
    }
    Ok((importer.finish().await?, rejections))
}

async fn imports_record_rows_once_by_content(store: &dyn Store) {
    let business = new_business(store, "Acme Shoes").await;
    let file = format!(
        "phone,country,categories,method,collected_at,notice_text,notice_language,page_url,ip\n\
         (415) 555-0401,US,offers;order_updates,web_form,2024-03-01T10:00:00Z,\"{NOTICE}\",en,https://a.example,192.0.2.1\n\
         +14155550402,,offers|order_updates,web_form,2024-03-01T10:00:00Z,\"{NOTICE}\",en,https://a.example,192.0.2.1\n\
         +14155550403,,offers,web_form,2024-03-01T10:00:00Z,\"{NOTICE}\",en,https://a.example,\n\
         +14155550401,,order_updates ; offers,web_form,2024-03-01T10:00:00Z,\"{NOTICE}\",en,https://a.example,192.0.2.1\n"
    );
    let options = |dry_run| ImportOptions { batch_id: "first".into(), dry_run };
    let (dry, _) = import_text(store, &business, file.as_bytes(), options(true), 2).await.unwrap();
    // Rows 1 and 4 say the same (in different chunks): the dry run predicts what the import does.
    assert_eq!((dry.imported, dry.already_imported, dry.rejected, dry.notices_registered), (2, 1, 1, 1), "{dry:?}");
    assert!(store.list_notices(business.id).await.unwrap().is_empty(), "a dry run registers nothing");
    assert!(store.chain_head(business.id).await.unwrap().is_none(), "a dry run records nothing");

    let (first, rejections) = import_text(store, &business, file.as_bytes(), options(false), 2).await.unwrap();
    assert_eq!((first.rows, first.imported, first.already_imported, first.rejected), (4, 2, 1, 1), "{first:?}");
    assert_eq!(rejections.len(), 1);
    assert_eq!((rejections[0].row, rejections[0].problems[0].code), (3, "evidence_missing"));
    assert_eq!(first.reasons.get("evidence_missing"), Some(&1));
    let events = store.contact_events(business.id, phone("+14155550401")).await.unwrap();
    assert_eq!(events.len(), 1, "the same content twice in a file is one opt-in");
    let content: serde_json::Value = serde_json::from_str(&events[0].content).unwrap();
    assert_eq!(content["method"], "import");
    assert_eq!(content["collected_at"], "2024-03-01T10:00:00Z");
    assert_eq!(content["evidence"]["original_method"], "web_form");
    assert_eq!(content["evidence"]["batch_id"], "first");

    let rerun = ImportOptions { batch_id: "second".into(), dry_run: false };
    let (second, _) = import_text(store, &business, file.as_bytes(), rerun, 3).await.unwrap();
    assert_eq!((second.imported, second.already_imported, second.notices_registered), (0, 3, 0), "{second:?}");
    assert_eq!(store.chain_head(business.id).await.unwrap().map(|h| h.index), Some(2));
    assert_eq!(store.list_notices(business.id).await.unwrap().len(), 1, "the notice text is registered once");
    // A file that adds a row to the imported ones records only that row, in any chunking.
    let grown = format!(
        "{file}+14155550404,,offers,web_form,2024-03-02T10:00:00Z,\"{NOTICE}\",en,https://a.example,192.0.2.1\n"
    );
    let third = ImportOptions { batch_id: "third".into(), dry_run: false };
    let (third, _) = import_text(store, &business, grown.as_bytes(), third, 2).await.unwrap();
    assert_eq!((third.imported, third.already_imported, third.rejected), (1, 3, 1), "{third:?}");
    assert_eq!(store.chain_head(business.id).await.unwrap().map(|h| h.index), Some(3));
    assert_eq!(store.contact_events(business.id, phone("+14155550404")).await.unwrap().len(), 1);
    let (dry_again, _) = import_text(store, &business, file.as_bytes(), options(true), 10).await.unwrap();
    assert_eq!((dry_again.imported, dry_again.already_imported), (0, 3));
    assert!(verify_ledger(store, business.id).await.unwrap().is_intact());
}

/// The rows are written sorted by number (what makes large imports fast), whatever the file's
/// order and chunks; a number's rows keep the file's order; each event keeps its row number.
async fn imports_are_written_in_number_order(store: &dyn Store) {
    let business = new_business(store, "Acme Shoes").await;
    let notice = register_notice(store, &business, NOTICE, "en", now()).await.unwrap();
    let numbers = ["+14155550409", "+14155550401", "+14155550405", "+14155550401", "+14155550403"];
    let mut file = String::from("phone,categories,method,collected_at,notice_id,page_url,ip\n");
    for (i, number) in numbers.iter().enumerate() {
        file.push_str(&format!(
            "{number},offers,web_form,2024-03-0{}T10:00:00Z,{},https://a.example,192.0.2.1\n",
            i + 1,
            notice.id
        ));
    }
    let options = ImportOptions { batch_id: "sorted".into(), dry_run: false };
    let (summary, rejections) = import_text(store, &business, file.as_bytes(), options, 2).await.unwrap();
    assert!(rejections.is_empty(), "{rejections:?}");
    assert_eq!(summary.imported, 5);
    let mut written = Vec::new();
    for number in ["+14155550401", "+14155550403", "+14155550405", "+14155550409"] {
        for event in store.contact_events(business.id, phone(number)).await.unwrap() {
            let content: serde_json::Value = serde_json::from_str(&event.content).unwrap();
            written.push((event.index, number, content["evidence"]["source_row"].as_u64().unwrap()));
        }
    }
    written.sort();
    let order: Vec<(&str, u64)> = written.iter().map(|(_, number, row)| (*number, *row)).collect();
    assert_eq!(
        order,
        [("+14155550401", 2), ("+14155550401", 4), ("+14155550403", 5), ("+14155550405", 3), ("+14155550409", 1)]
    );
    assert!(verify_ledger(store, business.id).await.unwrap().is_intact());
}
