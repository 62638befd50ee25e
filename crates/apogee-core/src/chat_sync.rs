//! Delta reads for clients catching up (deleted messages, threads changed since a date) and the
//! per-room ignore list.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::rooms::RoomRef;
use crate::store::{Change, HistoryQuery, Page, Tombstone};
use apogee_domain::{Message, Timestamp, User};
use serde_json::Value;

/// Messages changed after a date, with the removals in the same room.
#[derive(Debug, Clone)]
pub struct Delta {
    pub update: Vec<Message>,
    pub remove: Vec<Tombstone>,
}

impl Core {
    /// `chat.getDeletedMessages`: messages of a readable room deleted after `since`.
    pub async fn deleted_messages(
        &self,
        actor: &User,
        rid: &str,
        since: Timestamp,
        page: Page,
    ) -> CoreResult<(Vec<Tombstone>, i64)> {
        let view = self
            .readable_room(actor, &RoomRef::Id(rid.to_string()))
            .await?;
        let mut all = self
            .store
            .deleted_messages_since(&view.room.id, since)
            .await?;
        all.sort_by(|a, b| a.deleted_at.cmp(&b.deleted_at).then(a.id.cmp(&b.id)));
        let total = all.len() as i64;
        let items = all
            .into_iter()
            .skip(page.offset.max(0) as usize)
            .take(page.count.max(0) as usize)
            .collect();
        Ok((items, total))
    }

    fn require_threads(&self) -> CoreResult<()> {
        if self.settings.bool("Threads_enabled") {
            Ok(())
        } else {
            Err(CoreError::not_allowed("Threads Disabled"))
        }
    }

    /// Messages of a room matching `query`, changed after `since`.
    async fn changed_since(
        &self,
        rid: &str,
        query: HistoryQuery,
        since: Timestamp,
    ) -> CoreResult<Delta> {
        let query = HistoryQuery {
            count: i64::MAX,
            ascending: true,
            ..query
        };
        let (messages, _) = self.store.history(rid, &query).await?;
        let update = messages
            .into_iter()
            .filter(|m| m.updated_at > since)
            .collect();
        // Removals are kept per room, so this is every removal in the room: a superset that
        // clients drop when they do not hold the id.
        let remove = self.store.deleted_messages_since(rid, since).await?;
        Ok(Delta { update, remove })
    }

    /// `chat.syncThreadsList`: thread parents of a readable room changed after `since`.
    pub async fn sync_threads(
        &self,
        actor: &User,
        rid: &str,
        since: Timestamp,
    ) -> CoreResult<Delta> {
        self.require_threads()?;
        let view = self
            .readable_room(actor, &RoomRef::Id(rid.to_string()))
            .await
            .map_err(|_| CoreError::not_allowed("Not Allowed"))?;
        let query = HistoryQuery {
            threads_only: true,
            include_thread_replies: true,
            ..Default::default()
        };
        self.changed_since(&view.room.id, query, since).await
    }

    /// `chat.syncThreadMessages`: replies to a thread changed after `since`.
    pub async fn sync_thread_messages(
        &self,
        actor: &User,
        tmid: &str,
        since: Timestamp,
    ) -> CoreResult<Delta> {
        self.require_threads()?;
        let parent = self
            .store
            .message_by_id(tmid)
            .await?
            .ok_or_else(|| CoreError::bad("error-invalid-message", "Invalid Message"))?;
        let view = self
            .readable_room(actor, &RoomRef::Id(parent.rid.clone()))
            .await
            .map_err(|_| CoreError::not_allowed("Not Allowed"))?;
        let query = HistoryQuery {
            tmid: Some(parent.id),
            ..Default::default()
        };
        self.changed_since(&view.room.id, query, since).await
    }

    /// `chat.ignoreUser`: adds a member of the room to (or removes them from) the actor's ignore
    /// list for that room. Both must be subscribed.
    pub async fn ignore_user(
        &self,
        actor: &User,
        rid: &str,
        user_id: &str,
        ignore: bool,
    ) -> CoreResult<()> {
        let invalid = || CoreError::bad("error-invalid-subscription", "Invalid subscription");
        let mut sub = self
            .store
            .subscription(rid, &actor.id)
            .await?
            .ok_or_else(invalid)?;
        if self.store.subscription(rid, user_id).await?.is_none() {
            return Err(invalid());
        }
        let mut ignored: Vec<String> = sub
            .extra
            .get("ignored")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let had = ignored.iter().any(|u| u == user_id);
        if ignore == had {
            return Ok(());
        }
        if ignore {
            ignored.push(user_id.to_string());
        } else {
            ignored.retain(|u| u != user_id);
        }
        if ignored.is_empty() {
            sub.extra.remove("ignored");
        } else {
            sub.extra
                .insert("ignored".into(), serde_json::json!(ignored));
        }
        sub.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateSubscription(sub)]).await
    }
}
