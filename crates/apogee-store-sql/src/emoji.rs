//! Custom emoji: reads, and how their changes become rows (a deletion leaves a tombstone).

use crate::{
    Database, SqlStore, SqlTx, args, contains_pattern, delimited, from_json, member_pattern,
    to_json,
};
use apogee_core::store::{CustomEmoji, EmojiStore, Page, StoreResult, Tombstone};
use apogee_domain::Timestamp;
use async_trait::async_trait;

pub(crate) async fn upsert(tx: &mut dyn SqlTx, e: &CustomEmoji) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO custom_emoji (id, name, name_lower, names, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_lower = excluded.name_lower,
         names = excluded.names, updated_at = excluded.updated_at, doc = excluded.doc",
        args![
            &e.id,
            &e.name,
            e.name.to_lowercase(),
            delimited(&e.names()),
            e.updated_at.millis(),
            to_json(e)?
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn delete(tx: &mut dyn SqlTx, e: &CustomEmoji, now: i64) -> StoreResult<()> {
    tx.exec("DELETE FROM custom_emoji WHERE id = $1", args![&e.id])
        .await?;
    tx.exec(
        "INSERT INTO tombstones (kind, id, scope, deleted_at) VALUES ('emoji', $1, '', $2)",
        args![&e.id, now],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<D: Database> EmojiStore for SqlStore<D> {
    async fn custom_emoji_by_id(&self, id: &str) -> StoreResult<Option<CustomEmoji>> {
        self.doc("SELECT doc FROM custom_emoji WHERE id = $1", args![id])
            .await
    }

    async fn custom_emoji_by_name_or_alias(&self, name: &str) -> StoreResult<Option<CustomEmoji>> {
        self.doc(
            "SELECT doc FROM custom_emoji WHERE names LIKE $1 ESCAPE '\\' ORDER BY name LIMIT 1",
            args![member_pattern(name)],
        )
        .await
    }

    async fn custom_emoji(
        &self,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<CustomEmoji>, i64)> {
        let pattern = name_contains.map(contains_pattern);
        let filter = "WHERE ($1 IS NULL OR name_lower LIKE $1 ESCAPE '\\')";
        let total = self
            .db
            .query(
                &format!("SELECT COUNT(*) FROM custom_emoji {filter}"),
                args![pattern.clone()],
            )
            .await?
            .first()
            .map_or(0, |r| r[0].int());
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT doc FROM custom_emoji {filter} ORDER BY name, id LIMIT $2 OFFSET $3"
                ),
                args![pattern, page.count, page.offset],
            )
            .await?;
        let items = rows
            .iter()
            .map(|r| from_json(&r[0]))
            .collect::<StoreResult<Vec<CustomEmoji>>>()?;
        Ok((items, total))
    }

    async fn custom_emoji_changed_since(
        &self,
        since: Option<Timestamp>,
    ) -> StoreResult<(Vec<CustomEmoji>, Vec<Tombstone>)> {
        let after = since.map_or(i64::MIN, |t| t.millis());
        let rows = self
            .db
            .query(
                "SELECT doc FROM custom_emoji WHERE updated_at > $1 ORDER BY name, id",
                args![after],
            )
            .await?;
        let updated = rows
            .iter()
            .map(|r| from_json(&r[0]))
            .collect::<StoreResult<Vec<CustomEmoji>>>()?;
        let removed = match since {
            None => Vec::new(),
            Some(t) => self
                .db
                .query(
                    "SELECT id, deleted_at FROM tombstones WHERE kind = 'emoji' AND deleted_at > $1 ORDER BY deleted_at",
                    args![t.millis()],
                )
                .await?
                .iter()
                .map(|r| Tombstone {
                    id: r[0].text().unwrap_or_default().to_string(),
                    deleted_at: Timestamp::from_millis(r[1].int()),
                })
                .collect(),
        };
        Ok((updated, removed))
    }
}
