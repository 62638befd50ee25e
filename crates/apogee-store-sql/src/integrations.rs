//! Integrations and their delivery history: reads, and how their changes become rows.

use crate::{
    Arg, Database, SqlStore, SqlTx, args, contains_pattern, delimited, from_json, member_pattern,
    to_json,
};
use apogee_core::store::{Integration, IntegrationQuery, IntegrationStore, Page, StoreResult};
use async_trait::async_trait;
use serde_json::Value;

pub(crate) async fn upsert(tx: &mut dyn SqlTx, i: &Integration) -> StoreResult<()> {
    let urls: Vec<String> = i
        .extra
        .get("urls")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    tx.exec(
        "INSERT INTO integrations (id, type, name_lower, created_by, user_id, channels, urls, created_at, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET name_lower = excluded.name_lower, user_id = excluded.user_id,
         channels = excluded.channels, urls = excluded.urls, doc = excluded.doc",
        args![
            &i.id,
            &i.kind,
            i.name.to_lowercase(),
            i.created_by.as_ref().map(|u| u.id.clone()),
            &i.user_id,
            delimited(&i.channel),
            delimited(&urls),
            i.created_at.millis(),
            to_json(i)?
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn delete(tx: &mut dyn SqlTx, id: &str) -> StoreResult<()> {
    tx.exec(
        "DELETE FROM integration_history WHERE integration_id = $1",
        args![id],
    )
    .await?;
    tx.exec("DELETE FROM integrations WHERE id = $1", args![id])
        .await?;
    Ok(())
}

pub(crate) async fn insert_history(
    tx: &mut dyn SqlTx,
    id: &str,
    integration_id: &str,
    doc: &Value,
) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO integration_history (id, integration_id, updated_at, doc) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc",
        args![
            id,
            integration_id,
            apogee_domain::Timestamp::now().millis(),
            to_json(doc)?
        ],
    )
    .await?;
    Ok(())
}

/// The WHERE clause for `q`, placeholders from `$1`.
fn filter(q: &IntegrationQuery) -> (String, Vec<Arg>) {
    let mut args: Vec<Arg> = Vec::new();
    let next = |a: Arg, args: &mut Vec<Arg>| {
        args.push(a);
        format!("${}", args.len())
    };
    // Each visible type: all of it, or only the caller's own.
    let kinds: Vec<String> = q
        .kinds
        .iter()
        .map(|k| {
            let kp = next(k.clone().into(), &mut args);
            if q.own_only_kinds.contains(k) {
                let ap = next(q.actor_id.clone().into(), &mut args);
                format!("(type = {kp} AND created_by = {ap})")
            } else {
                format!("type = {kp}")
            }
        })
        .collect();
    let mut clauses = vec![format!("({})", kinds.join(" OR "))];
    if let Some(name) = &q.name_contains {
        let p = next(contains_pattern(name).into(), &mut args);
        clauses.push(format!("name_lower LIKE {p} ESCAPE '\\'"));
    }
    if !q.channels_any.is_empty() {
        let any: Vec<String> = q
            .channels_any
            .iter()
            .map(|c| {
                let p = next(member_pattern(c).into(), &mut args);
                format!("channels LIKE {p} ESCAPE '\\'")
            })
            .collect();
        clauses.push(format!("({})", any.join(" OR ")));
    }
    (format!("WHERE {}", clauses.join(" AND ")), args)
}

#[async_trait]
impl<D: Database> IntegrationStore for SqlStore<D> {
    async fn integration_by_id(&self, id: &str) -> StoreResult<Option<Integration>> {
        self.doc("SELECT doc FROM integrations WHERE id = $1", args![id])
            .await
    }

    async fn outgoing_integration_by_url(&self, url: &str) -> StoreResult<Option<Integration>> {
        self.doc("SELECT doc FROM integrations WHERE type = 'webhook-outgoing' AND urls LIKE $1 ESCAPE '\\'
                 ORDER BY created_at LIMIT 1",
                args![member_pattern(url)]).await
    }

    async fn integrations(
        &self,
        query: &IntegrationQuery,
        page: Page,
    ) -> StoreResult<(Vec<Integration>, i64)> {
        if query.kinds.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let (clause, mut args) = filter(query);
        let total = self
            .db
            .query(
                &format!("SELECT COUNT(*) FROM integrations {clause}"),
                args.clone(),
            )
            .await?
            .first()
            .map_or(0, |r| r[0].int());
        let n = args.len();
        args.extend(args![page.count, page.offset]);
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT doc FROM integrations {clause} ORDER BY created_at DESC, id LIMIT ${} OFFSET ${}",
                    n + 1,
                    n + 2
                ),
                args,
            )
            .await?;
        let items = rows
            .iter()
            .map(|r| from_json(&r[0]))
            .collect::<StoreResult<Vec<Integration>>>()?;
        Ok((items, total))
    }

    async fn integration_history(
        &self,
        integration_id: &str,
        page: Page,
    ) -> StoreResult<(Vec<Value>, i64)> {
        let total = self
            .db
            .query(
                "SELECT COUNT(*) FROM integration_history WHERE integration_id = $1",
                args![integration_id],
            )
            .await?
            .first()
            .map_or(0, |r| r[0].int());
        let rows = self
            .db
            .query(
                "SELECT doc FROM integration_history WHERE integration_id = $1
                 ORDER BY updated_at DESC, id LIMIT $2 OFFSET $3",
                args![integration_id, page.count, page.offset],
            )
            .await?;
        let items = rows
            .iter()
            .map(|r| from_json(&r[0]))
            .collect::<StoreResult<Vec<Value>>>()?;
        Ok((items, total))
    }
}
