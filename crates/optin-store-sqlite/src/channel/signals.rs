//! Quality signals: stored once per (business, dedupe key), listed oldest first with filters.

use std::fmt::Write as _;

use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::ids::BusinessId;
use optin_store::StoreError;
use optin_store::channel::{NewSignal, Signal, SignalFilter, SignalKind};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use crate::error::{corrupt, db_error};
use crate::rows::{self, category_name, id, stored_phone, time, timestamp};
use crate::writer::Batch;

const SIGNAL_COLUMNS: &str = "id, business_id, received_at, dedupe_key, kind, occurred_at, phone_number_id, phone, \
                              user_id, message_id, template_name, template_language, status, error_codes, detail, \
                              category";

/// How many signals a page holds when the filter asks for none, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// Inserts the signals whose key the business does not have yet; returns how many were new.
/// `NotFound` for an unknown business (the foreign key).
pub(crate) fn record_signals(
    batch: &mut Batch<'_>,
    business: BusinessId,
    signals: &[NewSignal],
    received_at: Timestamp,
) -> Result<usize, StoreError> {
    let business = business.to_string();
    let received_at = time(received_at)?;
    let mut stmt = batch
        .conn
        .prepare_cached(
            "INSERT INTO signals (business_id, received_at, dedupe_key, kind, occurred_at, phone_number_id, phone,
                                  user_id, message_id, template_name, template_language, status, error_codes, detail,
                                  category)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (business_id, dedupe_key) DO NOTHING",
        )
        .map_err(db_error)?;
    let mut new = 0;
    for signal in signals {
        let error_codes = serde_json::to_string(&signal.error_codes).expect("a list of integers always serializes");
        new += stmt
            .execute(params![
                business,
                received_at,
                signal.dedupe_key,
                signal.kind.as_str(),
                time(signal.occurred_at)?,
                signal.phone_number_id,
                signal.phone.map(rows::phone_key),
                signal.user_id,
                signal.message_id,
                signal.template_name,
                signal.template_language,
                signal.status,
                error_codes,
                signal.detail.to_string(),
                signal.category.as_ref().map(CategoryName::as_str)
            ])
            .map_err(db_error)?;
    }
    Ok(new)
}

/// The business's signals matching every given filter, oldest first (by id). A `limit` of 0
/// means 100; at most 1,000.
///
/// The query names only the filters given (rather than `?n IS NULL OR ...` for each), so that
/// SQLite can choose the index that fits; each shape is prepared once and cached.
pub(crate) fn signals(
    conn: &Connection,
    business: BusinessId,
    filter: &SignalFilter,
) -> Result<Vec<Signal>, StoreError> {
    let mut sql = format!("SELECT {SIGNAL_COLUMNS} FROM signals WHERE business_id = ?1");
    let mut values = vec![Value::Text(business.to_string())];
    let mut and = |condition: &str, value: Value| {
        values.push(value);
        // `?` in the condition stands for this value's parameter.
        let _ = write!(sql, " AND {}", condition.replace('?', &format!("?{}", values.len())));
    };
    if let Some(kind) = filter.kind {
        and("kind = ?", Value::Text(kind.as_str().to_owned()));
    }
    if let Some(phone) = filter.phone {
        and("phone = ?", Value::Integer(rows::phone_key(phone)));
    }
    if let Some(user_id) = &filter.user_id {
        and("user_id = ?", Value::Text(user_id.clone()));
    }
    if let Some(message_id) = &filter.message_id {
        and("message_id = ?", Value::Text(message_id.clone()));
    }
    if let Some(template_name) = &filter.template_name {
        and("template_name = ?", Value::Text(template_name.clone()));
    }
    if let Some(status) = &filter.status {
        and("status = ?", Value::Text(status.clone()));
    }
    if let Some(error_code) = filter.error_code {
        and(
            "EXISTS (SELECT 1 FROM json_each(signals.error_codes) WHERE json_each.value = ?)",
            Value::Integer(error_code),
        );
    }
    if let Some(since) = filter.since {
        and("occurred_at >= ?", Value::Integer(time(since)?));
    }
    if let Some(until) = filter.until {
        and("occurred_at < ?", Value::Integer(time(until)?));
    }
    if let Some(after) = filter.after {
        and("id > ?", Value::Integer(after));
    }
    let limit = match filter.limit {
        0 => DEFAULT_LIMIT,
        limit => limit.min(MAX_LIMIT),
    };
    let _ = write!(sql, " ORDER BY id LIMIT {limit}");
    let rows: Vec<SignalRow> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_map(rusqlite::params_from_iter(values), SignalRow::read)?.collect())
        .map_err(db_error)?;
    rows.into_iter().map(Signal::try_from).collect()
}

struct SignalRow {
    id: i64,
    business_id: String,
    received_at: i64,
    dedupe_key: String,
    kind: String,
    occurred_at: i64,
    phone_number_id: Option<String>,
    phone: Option<i64>,
    user_id: Option<String>,
    message_id: Option<String>,
    template_name: Option<String>,
    template_language: Option<String>,
    status: Option<String>,
    error_codes: String,
    detail: String,
    category: Option<String>,
}

impl SignalRow {
    /// Reads the columns of [`SIGNAL_COLUMNS`], in order.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<SignalRow> {
        Ok(SignalRow {
            id: row.get(0)?,
            business_id: row.get(1)?,
            received_at: row.get(2)?,
            dedupe_key: row.get(3)?,
            kind: row.get(4)?,
            occurred_at: row.get(5)?,
            phone_number_id: row.get(6)?,
            phone: row.get(7)?,
            user_id: row.get(8)?,
            message_id: row.get(9)?,
            template_name: row.get(10)?,
            template_language: row.get(11)?,
            status: row.get(12)?,
            error_codes: row.get(13)?,
            detail: row.get(14)?,
            category: row.get(15)?,
        })
    }
}

impl TryFrom<SignalRow> for Signal {
    type Error = StoreError;
    fn try_from(row: SignalRow) -> Result<Signal, StoreError> {
        let phone = row.phone.map(|key| stored_phone(key, "signals.phone")).transpose()?;
        let signal = NewSignal {
            dedupe_key: row.dedupe_key,
            kind: SignalKind::parse(&row.kind).ok_or_else(|| corrupt("signals.kind is unknown"))?,
            occurred_at: timestamp(row.occurred_at, "signals.occurred_at")?,
            phone_number_id: row.phone_number_id,
            phone,
            user_id: row.user_id,
            message_id: row.message_id,
            template_name: row.template_name,
            template_language: row.template_language,
            category: row.category.as_deref().map(category_name).transpose()?,
            status: row.status,
            error_codes: serde_json::from_str(&row.error_codes)
                .map_err(|_| corrupt("signals.error_codes is not a list of integers"))?,
            detail: serde_json::from_str(&row.detail).map_err(|_| corrupt("signals.detail is not JSON"))?,
        };
        Ok(Signal {
            id: row.id,
            business_id: id(&row.business_id, "signals.business_id")?,
            received_at: timestamp(row.received_at, "signals.received_at")?,
            signal,
        })
    }
}
