//! Audit log reads: filtered windows of the chain, its head, export positions.

use crate::{Arg, Database, SqlStore, args};
use apogee_core::store::{AuditQuery, AuditRecord, AuditStore, StoreResult};
use async_trait::async_trait;

/// The WHERE clause and arguments for `q` (placeholders numbered from 1).
fn filters(q: &AuditQuery) -> (String, Vec<Arg>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let mut add = |clause: &str, values: Vec<Arg>| {
        let mut clause = clause.to_string();
        for v in values {
            args.push(v);
            clause = clause.replacen('?', &format!("${}", args.len()), 1);
        }
        clauses.push(clause);
    };
    if let Some(event) = &q.event {
        add(
            "(event = ? OR event LIKE ? ESCAPE '\\')",
            vec![event.clone().into(), format!("{}.%", escape(event)).into()],
        );
    }
    if let Some(actor) = &q.actor_id {
        add("actor_id = ?", vec![actor.clone().into()]);
    }
    if let Some(since) = q.since {
        add("ts >= ?", vec![since.millis().into()]);
    }
    if let Some(until) = q.until {
        add("ts <= ?", vec![until.millis().into()]);
    }
    if let Some(before) = q.before_seq {
        add("seq < ?", vec![before.into()]);
    }
    if let Some(after) = q.after_seq {
        add("seq > ?", vec![after.into()]);
    }
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (clause, args)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[async_trait]
impl<D: Database> AuditStore for SqlStore<D> {
    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let (clause, mut args) = filters(query);
        let order = if query.ascending { "ASC" } else { "DESC" };
        args.push(query.limit.into());
        let sql = format!(
            "SELECT seq, doc, prev_hash, hash FROM audit_log {clause} ORDER BY seq {order} LIMIT ${}",
            args.len()
        );
        let rows = self.db.query(&sql, args).await?;
        Ok(rows
            .iter()
            .map(|r| AuditRecord {
                seq: r[0].int(),
                doc: r[1].text().unwrap_or_default().to_string(),
                prev_hash: r[2].text().unwrap_or_default().to_string(),
                hash: r[3].text().unwrap_or_default().to_string(),
            })
            .collect())
    }

    async fn audit_head(&self) -> StoreResult<(i64, String)> {
        let rows = self
            .db
            .query("SELECT seq, hash FROM audit_head WHERE id = 1", args![])
            .await?;
        Ok(rows.first().map_or((0, String::new()), |r| {
            (r[0].int(), r[1].text().unwrap_or_default().to_string())
        }))
    }

    async fn audit_exported(&self, sink: &str) -> StoreResult<i64> {
        let rows = self
            .db
            .query("SELECT seq FROM audit_exports WHERE sink = $1", args![sink])
            .await?;
        Ok(rows.first().map_or(0, |r| r[0].int()))
    }
}
