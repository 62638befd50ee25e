//! Moderation reports: reads (lists, per-user summaries) and how a report becomes a row.

use crate::{Arg, Database, SqlStore, SqlTx, args, contains_pattern, from_json, to_json};
use apogee_core::store::{
    ModerationReport, ModerationStore, Page, ReportKind, ReportQuery, ReportSummary, StoreResult,
};
use async_trait::async_trait;

pub(crate) async fn upsert(tx: &mut dyn SqlTx, r: &ModerationReport) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO moderation_reports (id, kind, message_id, rid, target_user_id, reporter_id, ts, hidden, text_lower, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET hidden = excluded.hidden, text_lower = excluded.text_lower, doc = excluded.doc",
        args![
            &r.id,
            r.kind().as_str(),
            r.message_id(),
            r.rid(),
            r.target_user_id(),
            r.reported_by["_id"].as_str().unwrap_or_default(),
            r.ts.millis(),
            r.hidden,
            r.search_text(),
            to_json(r)?
        ],
    )
    .await?;
    Ok(())
}

/// The WHERE clause for open reports matching `q`, placeholders from `$1`.
fn filter(q: &ReportQuery) -> (String, Vec<Arg>) {
    let sql = "WHERE kind = $1 AND hidden = 0 AND ($2 IS NULL OR message_id = $2)
         AND ($3 IS NULL OR target_user_id = $3) AND ($4 IS NULL OR text_lower LIKE $4 ESCAPE '\\')";
    let args = args![
        q.kind.as_str(),
        q.message_id.clone(),
        q.target_user_id.clone(),
        q.text.as_deref().map(contains_pattern)
    ];
    (sql.to_string(), args)
}

#[async_trait]
impl<D: Database> ModerationStore for SqlStore<D> {
    async fn moderation_report_by_id(&self, id: &str) -> StoreResult<Option<ModerationReport>> {
        self.doc(
            "SELECT doc FROM moderation_reports WHERE id = $1",
            args![id],
        )
        .await
    }

    async fn moderation_reports(
        &self,
        query: &ReportQuery,
        page: Page,
    ) -> StoreResult<(Vec<ModerationReport>, i64)> {
        let (clause, mut args) = filter(query);
        let total = self
            .db
            .query(
                &format!("SELECT COUNT(*) FROM moderation_reports {clause}"),
                args.clone(),
            )
            .await?
            .first()
            .map_or(0, |r| r[0].int());
        args.extend(args![page.count, page.offset]);
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT doc FROM moderation_reports {clause} ORDER BY ts DESC, id LIMIT $5 OFFSET $6"
                ),
                args,
            )
            .await?;
        let reports = rows
            .iter()
            .map(|r| from_json(&r[0]))
            .collect::<StoreResult<Vec<ModerationReport>>>()?;
        Ok((reports, total))
    }

    async fn moderation_report_summaries(
        &self,
        kind: ReportKind,
        text: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<ReportSummary>, i64)> {
        let pattern = text.map(contains_pattern);
        let open = "kind = $1 AND hidden = 0 AND ($2 IS NULL OR text_lower LIKE $2 ESCAPE '\\')";
        let total = self
            .db
            .query(
                &format!(
                    "SELECT COUNT(DISTINCT target_user_id) FROM moderation_reports WHERE {open}"
                ),
                args![kind.as_str(), pattern.clone()],
            )
            .await?
            .first()
            .map_or(0, |r| r[0].int());
        let groups = self
            .db
            .query(
                &format!(
                    "SELECT target_user_id, COUNT(*), MAX(ts) FROM moderation_reports WHERE {open}
                     GROUP BY target_user_id ORDER BY MAX(ts) DESC, target_user_id LIMIT $3 OFFSET $4"
                ),
                args![kind.as_str(), pattern.clone(), page.count, page.offset],
            )
            .await?;
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let target = g[0].text().unwrap_or_default().to_string();
            let latest = self
                .db
                .query(
                    &format!(
                        "SELECT doc FROM moderation_reports WHERE {open} AND target_user_id = $3
                         ORDER BY ts DESC, id LIMIT 1"
                    ),
                    args![kind.as_str(), pattern.clone(), &target],
                )
                .await?;
            let Some(latest) = latest.first() else {
                continue;
            };
            let rids = self
                .db
                .query(
                    &format!(
                        "SELECT DISTINCT rid FROM moderation_reports WHERE {open} AND target_user_id = $3
                         AND rid IS NOT NULL ORDER BY rid"
                    ),
                    args![kind.as_str(), pattern.clone(), &target],
                )
                .await?
                .iter()
                .filter_map(|r| r[0].text().map(str::to_string))
                .collect();
            out.push(ReportSummary {
                target_user_id: target,
                count: g[1].int(),
                latest: from_json(&latest[0])?,
                rids,
            });
        }
        Ok((out, total))
    }
}
