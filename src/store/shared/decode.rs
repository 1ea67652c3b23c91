//! Rows into records, the same on every engine: every value that does not
//! decode or parse becomes [`StoreError::Corrupt`] naming its table and
//! column, never a panic. A person's zone is the one value read leniently
//! (see [`Fields::zone`]).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::{ColumnIndex, Database, Decode, Row, Type};

use super::{Engine, corrupt};
use crate::domain::{Answer, IsoWeek, NudgeResponse, OptionKey, PersonId, QuestionId};
use crate::store::{
    AnswerRow, AnswerSource, AssessmentRow, CheckinRow, NudgeRow, OutboxRow, OutboxStatus,
    PersonRow, StoreResult,
};

/// A row of engine `DB` being read from `table`.
pub(in crate::store) struct Fields<'r, DB: Database> {
    row: &'r DB::Row,
    table: &'static str,
}

impl<'r, DB> Fields<'r, DB>
where
    DB: Engine,
    for<'c> &'c str: ColumnIndex<DB::Row>,
    &'r str: Decode<'r, DB> + Type<DB>,
    String: Decode<'r, DB> + Type<DB>,
    i64: Decode<'r, DB> + Type<DB>,
    i32: Decode<'r, DB> + Type<DB>,
    f64: Decode<'r, DB> + Type<DB>,
    bool: Decode<'r, DB> + Type<DB>,
{
    pub(in crate::store) fn of(table: &'static str, row: &'r DB::Row) -> Self {
        Self { row, table }
    }

    pub(in crate::store) fn get<T>(&self, column: &str) -> StoreResult<T>
    where
        T: Decode<'r, DB> + Type<DB>,
    {
        self.row.try_get(column).map_err(|e| match e {
            // A SQLite column holds any type, and a hand-altered table on
            // either engine may hold a NULL where a value belongs, or
            // another type.
            sqlx::Error::ColumnDecode { .. } => corrupt(self.table, e),
            e => e.into(),
        })
    }

    pub(in crate::store) fn parsed<T, E: std::fmt::Display>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<T> {
        let text: &str = self.get(column)?;
        parse(text).map_err(|e| corrupt(self.table, format!("{column} {text:?}: {e}")))
    }

    fn opt_parsed<T, E: std::fmt::Display>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<Option<T>> {
        let text: Option<&str> = self.get(column)?;
        text.map(|text| {
            parse(text).map_err(|e| corrupt(self.table, format!("{column} {text:?}: {e}")))
        })
        .transpose()
    }

    pub(in crate::store) fn person(&self, column: &str) -> StoreResult<PersonId> {
        self.parsed(column, PersonId::parse)
    }

    fn week(&self, column: &str) -> StoreResult<IsoWeek> {
        self.parsed(column, IsoWeek::from_str)
    }

    pub(in crate::store) fn time(&self, column: &str) -> StoreResult<DateTime<Utc>> {
        let ms: i64 = self.get(column)?;
        self.to_time(column, ms)
    }

    pub(in crate::store) fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let ms: Option<i64> = self.get(column)?;
        ms.map(|ms| self.to_time(column, ms)).transpose()
    }

    fn to_time(&self, column: &str, ms: i64) -> StoreResult<DateTime<Utc>> {
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| corrupt(self.table, format!("{column} {ms}: not a timestamp")))
    }

    /// A yes/no column: `BOOLEAN`, or on SQLite an `INTEGER` that must be
    /// 0 or 1 (sqlx would read any other number as true).
    fn flag(&self, column: &str) -> StoreResult<bool> {
        if !DB::INTEGER_FLAGS {
            return self.get(column);
        }
        match self.get::<i64>(column)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(corrupt(self.table, format!("{column} {n}: not 0 or 1"))),
        }
    }

    /// An `INTEGER` column holding a count (never negative).
    fn count(&self, column: &str) -> StoreResult<u32> {
        let n: i32 = self.get(column)?;
        u32::try_from(n).map_err(|_| corrupt(self.table, format!("{column} {n}: not a count")))
    }

    /// A `BIGINT` aggregate such as `COUNT(*)`.
    pub(in crate::store) fn big_count(&self, column: &str) -> StoreResult<u64> {
        let n: i64 = self.get(column)?;
        u64::try_from(n).map_err(|_| corrupt(self.table, format!("{column} {n}: not a count")))
    }

    /// The person's IANA zone, parsed here once for every reader. A stored
    /// name this build does not know (a hand-edited row, or a zone
    /// chrono-tz has since dropped) is no reason to stop reading people:
    /// it is taken as no zone, as if never learned, and logged once per
    /// person and name rather than at every read.
    fn zone(&self, person: &PersonId, column: &str) -> StoreResult<Option<Tz>> {
        let Some(name) = self.get::<Option<&str>>(column)? else {
            return Ok(None);
        };
        match Tz::from_str(name) {
            Ok(tz) => Ok(Some(tz)),
            Err(e) => {
                static WARNED: LazyLock<Mutex<HashSet<(PersonId, String)>>> =
                    LazyLock::new(Mutex::default);
                let first = WARNED
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert((person.clone(), name.to_owned()));
                if first {
                    tracing::warn!(%person, zone = %name, error = %e, "stored time zone is unknown; treated as none");
                }
                Ok(None)
            }
        }
    }

    pub(in crate::store) fn person_row(row: &'r DB::Row) -> StoreResult<PersonRow> {
        let f = Self::of("people", row);
        let id = f.person("id")?;
        Ok(PersonRow {
            tz: f.zone(&id, "tz")?,
            name: f.get("name")?,
            enrolled: f.flag("enrolled")?,
            paused_until: f.opt_time("paused_until")?,
            nudges_off_since: f.opt_time("nudges_off_since")?,
            created_at: f.time("created_at")?,
            id,
        })
    }

    pub(in crate::store) fn answer_row(row: &'r DB::Row) -> StoreResult<AnswerRow> {
        let f = Self::of("answers", row);
        Ok(AnswerRow {
            answer: Answer {
                person: f.person("person")?,
                week: f.week("week")?,
                question: f.parsed("question", QuestionId::parse)?,
                option: f.parsed("option", OptionKey::parse)?,
            },
            source: f.parsed("source", AnswerSource::from_str)?,
            recorded_at: f.time("recorded_at")?,
        })
    }

    pub(in crate::store) fn checkin_row(row: &'r DB::Row) -> StoreResult<CheckinRow> {
        let f = Self::of("checkins", row);
        Ok(CheckinRow {
            id: f.get("id")?,
            person: f.person("person")?,
            schedule: f.get("schedule")?,
            period: f.time("period")?,
            week: f.week("week")?,
            channel: f.get("channel")?,
            message_ts: f.get("message_ts")?,
            created_at: f.time("created_at")?,
        })
    }

    pub(in crate::store) fn assessment_row(row: &'r DB::Row) -> StoreResult<AssessmentRow> {
        let f = Self::of("assessments", row);
        Ok(AssessmentRow {
            person: f.person("person")?,
            week: f.week("week")?,
            state: f.get("state")?,
            ewma: f.get("ewma")?,
            detail: f.get("detail")?,
            assessed_at: f.time("assessed_at")?,
        })
    }

    pub(in crate::store) fn nudge_row(row: &'r DB::Row) -> StoreResult<NudgeRow> {
        let f = Self::of("nudges", row);
        Ok(NudgeRow {
            person: f.person("person")?,
            week: f.week("week")?,
            sent_at: f.time("sent_at")?,
            reasons: f.get("reasons")?,
            message: f.get("message")?,
            response: f.opt_parsed("response", NudgeResponse::from_str)?,
            answered_at: f.opt_time("answered_at")?,
        })
    }

    pub(in crate::store) fn outbox_row(row: &'r DB::Row) -> StoreResult<OutboxRow> {
        let f = Self::of("outbox", row);
        Ok(OutboxRow {
            id: f.get("id")?,
            dedupe_key: f.get("dedupe_key")?,
            person: f.opt_parsed("person", PersonId::parse)?,
            kind: f.get("kind")?,
            channel: f.get("channel")?,
            payload: f.get("payload")?,
            status: f.parsed("status", OutboxStatus::from_str)?,
            attempts: f.count("attempts")?,
            not_before: f.time("not_before")?,
            lease_until: f.opt_time("lease_until")?,
            last_error: f.get("last_error")?,
            response: f.get("response")?,
            created_at: f.time("created_at")?,
            sent_at: f.opt_time("sent_at")?,
        })
    }
}
