//! Signals: what the platform reported that is worth a look, deduplicated by key per business.

use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::ids::BusinessId;
use optin_store::StoreError;
use optin_store::channel::{NewSignal, Signal, SignalFilter, SignalKind};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::PostgresStore;
use crate::error::{corrupt, db};
use crate::rows::{get, nanos, optional_phone, page_limit, phone_key, timestamp};

const SIGNAL_COLUMNS: &str = "id, business_id, received_at, dedupe_key, kind, occurred_at, phone_number_id, phone, \
                              user_id, message_id, template_name, template_language, status, error_codes, detail, \
                              category";

/// Every signal in one statement (arrays, one element per signal, in the order given, so ids
/// follow it). Error codes travel as array literals (`{131047,131026}`): PostgreSQL arrays are
/// not jagged. A key the business already has, or one repeated in the batch, is skipped.
const INSERT: &str = "\
INSERT INTO signals
    (business_id, received_at, dedupe_key, kind, occurred_at, phone_number_id, phone, user_id, message_id,
     template_name, template_language, status, error_codes, detail, category)
SELECT $1::uuid, $2::bigint, s.dedupe_key, s.kind, s.occurred_at, s.phone_number_id, s.phone, s.user_id,
       s.message_id, s.template_name, s.template_language, s.status, s.error_codes::bigint[], s.detail, s.category
FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[],
            $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
     WITH ORDINALITY AS s (dedupe_key, kind, occurred_at, phone_number_id, phone, user_id, message_id,
                           template_name, template_language, status, error_codes, detail, category, position)
ORDER BY s.position
ON CONFLICT (business_id, dedupe_key) DO NOTHING";

impl PostgresStore {
    /// One statement (so one transaction); returns how many signals were new.
    pub(crate) async fn insert_signals(
        &self,
        business: BusinessId,
        signals: &[NewSignal],
        received_at: Timestamp,
    ) -> Result<usize, StoreError> {
        if signals.is_empty() {
            return Ok(0);
        }
        let columns = SignalColumns::new(signals)?;
        let (business, received_at) = (business.as_uuid(), nanos(received_at)?);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&business, &received_at];
        params.extend(columns.params());
        let client = self.client().await?;
        let inserted = client.execute(INSERT, &params).await.map_err(db)?;
        Ok(usize::try_from(inserted).expect("the count of signals fits"))
    }

    /// Oldest first (by id), only the filter's predicates in the statement so that each can use
    /// its index.
    pub(crate) async fn load_signals(
        &self,
        business: BusinessId,
        filter: &SignalFilter,
    ) -> Result<Vec<Signal>, StoreError> {
        let business = business.as_uuid();
        let kind = filter.kind.map(|kind| kind.as_str());
        let phone = filter.phone.map(phone_key);
        let since = filter.since.map(nanos).transpose()?;
        let until = filter.until.map(nanos).transpose()?;
        let limit = page_limit(filter.limit);
        let mut query = Query::new(format!("SELECT {SIGNAL_COLUMNS} FROM signals WHERE business_id = $1"), &business);
        query.and_if("kind = {}", kind.as_ref());
        query.and_if("phone = {}", phone.as_ref());
        query.and_if("user_id = {}", filter.user_id.as_ref());
        query.and_if("message_id = {}", filter.message_id.as_ref());
        query.and_if("template_name = {}", filter.template_name.as_ref());
        query.and_if("status = {}", filter.status.as_ref());
        query.and_if("error_codes @> ARRAY[{}::bigint]", filter.error_code.as_ref());
        query.and_if("occurred_at >= {}", since.as_ref());
        query.and_if("occurred_at < {}", until.as_ref());
        query.and_if("id > {}", filter.after.as_ref());
        query.then(" ORDER BY id LIMIT {}", &limit);
        let client = self.client().await?;
        client.query(&query.sql, &query.params).await.map_err(db)?.iter().map(signal).collect()
    }
}

/// A statement with the predicates of the filter's given fields only.
struct Query<'a> {
    sql: String,
    params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Query<'a> {
    fn new(sql: String, first: &'a (dyn ToSql + Sync)) -> Query<'a> {
        Query { sql, params: vec![first] }
    }

    /// Appends `AND predicate` when there is a value; `{}` in the predicate stands for it.
    fn and_if<T: ToSql + Sync>(&mut self, predicate: &str, value: Option<&'a T>) {
        if let Some(value) = value {
            self.sql.push_str(" AND ");
            self.then(predicate, value);
        }
    }

    /// Appends `text`, whose `{}` stands for `value`.
    fn then(&mut self, text: &str, value: &'a (dyn ToSql + Sync)) {
        self.params.push(value);
        self.sql.push_str(&text.replace("{}", &format!("${}", self.params.len())));
    }
}

/// The signals as column arrays for `INSERT`.
struct SignalColumns<'a> {
    dedupe_keys: Vec<&'a str>,
    kinds: Vec<&'static str>,
    occurred_at: Vec<i64>,
    phone_number_ids: Vec<Option<&'a str>>,
    phones: Vec<Option<i64>>,
    user_ids: Vec<Option<&'a str>>,
    message_ids: Vec<Option<&'a str>>,
    template_names: Vec<Option<&'a str>>,
    template_languages: Vec<Option<&'a str>>,
    statuses: Vec<Option<&'a str>>,
    error_codes: Vec<String>,
    details: Vec<String>,
    categories: Vec<Option<&'a str>>,
}

impl<'a> SignalColumns<'a> {
    fn new(signals: &'a [NewSignal]) -> Result<Self, StoreError> {
        let mut columns = SignalColumns {
            dedupe_keys: Vec::with_capacity(signals.len()),
            kinds: Vec::with_capacity(signals.len()),
            occurred_at: Vec::with_capacity(signals.len()),
            phone_number_ids: Vec::with_capacity(signals.len()),
            phones: Vec::with_capacity(signals.len()),
            user_ids: Vec::with_capacity(signals.len()),
            message_ids: Vec::with_capacity(signals.len()),
            template_names: Vec::with_capacity(signals.len()),
            template_languages: Vec::with_capacity(signals.len()),
            statuses: Vec::with_capacity(signals.len()),
            error_codes: Vec::with_capacity(signals.len()),
            details: Vec::with_capacity(signals.len()),
            categories: Vec::with_capacity(signals.len()),
        };
        for signal in signals {
            columns.dedupe_keys.push(&signal.dedupe_key);
            columns.kinds.push(signal.kind.as_str());
            columns.occurred_at.push(nanos(signal.occurred_at)?);
            columns.phone_number_ids.push(signal.phone_number_id.as_deref());
            columns.phones.push(signal.phone.map(phone_key));
            columns.user_ids.push(signal.user_id.as_deref());
            columns.message_ids.push(signal.message_id.as_deref());
            columns.template_names.push(signal.template_name.as_deref());
            columns.template_languages.push(signal.template_language.as_deref());
            columns.statuses.push(signal.status.as_deref());
            let codes: Vec<String> = signal.error_codes.iter().map(i64::to_string).collect();
            columns.error_codes.push(format!("{{{}}}", codes.join(",")));
            columns.details.push(signal.detail.to_string());
            columns.categories.push(signal.category.as_ref().map(CategoryName::as_str));
        }
        Ok(columns)
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 13] {
        [
            &self.dedupe_keys,
            &self.kinds,
            &self.occurred_at,
            &self.phone_number_ids,
            &self.phones,
            &self.user_ids,
            &self.message_ids,
            &self.template_names,
            &self.template_languages,
            &self.statuses,
            &self.error_codes,
            &self.details,
            &self.categories,
        ]
    }
}

/// Columns: `SIGNAL_COLUMNS`.
fn signal(row: &Row) -> Result<Signal, StoreError> {
    const T: &str = "signals";
    let detail: &str = get(row, T, "detail")?;
    Ok(Signal {
        id: get(row, T, "id")?,
        business_id: BusinessId::from_uuid(get(row, T, "business_id")?),
        received_at: timestamp(get(row, T, "received_at")?, T, "received_at")?,
        signal: NewSignal {
            dedupe_key: get(row, T, "dedupe_key")?,
            kind: SignalKind::parse(get(row, T, "kind")?).ok_or_else(|| corrupt("signals.kind: unknown"))?,
            occurred_at: timestamp(get(row, T, "occurred_at")?, T, "occurred_at")?,
            phone_number_id: get(row, T, "phone_number_id")?,
            phone: optional_phone(get(row, T, "phone")?, T, "phone")?,
            user_id: get(row, T, "user_id")?,
            message_id: get(row, T, "message_id")?,
            template_name: get(row, T, "template_name")?,
            template_language: get(row, T, "template_language")?,
            category: get::<Option<&str>>(row, T, "category")?
                .map(|name| CategoryName::parse(name).map_err(|e| corrupt(format_args!("{T}.category: {e}"))))
                .transpose()?,
            status: get(row, T, "status")?,
            error_codes: get(row, T, "error_codes")?,
            detail: serde_json::from_str(detail).map_err(|e| corrupt(format_args!("{T}.detail: {e}")))?,
        },
    })
}
