//! Read receipts (`chat.getMessageReadReceipts`, DDP `getReadReceipts`), derived rather than
//! stored: Rocket.Chat writes one receipt row per reader and message, which would break the
//! O(1)-writes-per-message invariant. Here a member has read a message when their
//! subscription's last-seen time (`ls`) has reached the message's `ts`; the author has read it
//! when it was sent. Members who joined after the message only count from their join on, as in
//! Rocket.Chat (receipts are recorded for messages after the reader's previous `ls`).
//!
//! The same derivation settles Rocket.Chat's per-message `unread` flag: a message sent while
//! receipts are on is stored with `unread: true` (in its one insert), and whoever reads it gets
//! the flag only while some member who was there when it was sent has not seen it yet.
//!
//! What this cannot know: the exact moment of each reading (a receipt's `ts` is the reader's
//! current last-seen time, or the message's for its author) and readers who have since left the
//! room (their subscription is gone).

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::rooms::RoomRef;
use crate::store::Page;
use apogee_domain::{Message, Subscription, Timestamp, User, UserRef};
use serde::Serialize;
use serde_json::Value;

/// Rocket.Chat's `IReadReceiptWithUser`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    /// Rocket.Chat's id: message id followed by user id.
    #[serde(rename = "_id")]
    pub id: String,
    pub room_id: String,
    pub user_id: String,
    pub message_id: String,
    pub ts: Timestamp,
    pub user: UserRef,
}

/// Whether every member who was in the room when `m` was sent (its author aside) has seen it.
fn read_by_everyone(m: &Message, members: &[Subscription]) -> bool {
    members
        .iter()
        .filter(|s| s.u.id != m.u.id && s.ts <= m.ts)
        .all(|s| s.ls.is_some_and(|ls| ls >= m.ts))
}

impl Core {
    /// Drops `unread: true` from messages of room `rid` everyone has read by now. One read of
    /// the room's subscriptions, and only when a message carries the flag.
    pub(crate) async fn settle_read_flags(
        &self,
        rid: &str,
        messages: &mut [Message],
    ) -> CoreResult<()> {
        let flagged = |m: &Message| m.extra.get("unread") == Some(&Value::Bool(true));
        if !messages.iter().any(flagged) {
            return Ok(());
        }
        let members = self.every_subscription(rid).await?;
        for m in messages.iter_mut().filter(|m| flagged(m)) {
            if read_by_everyone(m, &members) {
                m.extra.remove("unread");
            }
        }
        Ok(())
    }

    /// Who has read a message the actor can read, oldest reading first. Empty unless
    /// `Message_Read_Receipt_Enabled` and `Message_Read_Receipt_Store_Users` are on (without the
    /// second, Rocket.Chat keeps no per-user receipts either).
    pub async fn message_read_receipts(
        &self,
        actor: &User,
        message_id: &str,
        page: Option<Page>,
    ) -> CoreResult<Vec<ReadReceipt>> {
        let message = self
            .store
            .message_by_id(message_id)
            .await?
            .ok_or_else(|| CoreError::bad("error-invalid-message", "Invalid message"))?;
        self.readable_room(actor, &RoomRef::Id(message.rid.clone()))
            .await
            .map_err(|_| CoreError::bad("error-invalid-room", "Invalid room"))?;
        if !self.settings.bool("Message_Read_Receipt_Enabled")
            || !self.settings.bool("Message_Read_Receipt_Store_Users")
        {
            return Ok(Vec::new());
        }
        let members = self.every_subscription(&message.rid).await?;
        let mut readers: Vec<(String, Timestamp)> = members
            .iter()
            .filter(|s| s.u.id != message.u.id && s.ts <= message.ts)
            .filter_map(|s| {
                s.ls.filter(|ls| *ls >= message.ts)
                    .map(|ls| (s.u.id.clone(), ls))
            })
            .collect();
        // Only real authors read what they sent (not system messages about someone).
        if message.t.is_none() {
            readers.push((message.u.id.clone(), message.ts));
        }
        readers.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        if let Some(page) = page {
            let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
            let take = usize::try_from(page.count).unwrap_or(usize::MAX);
            readers = readers.into_iter().skip(skip).take(take).collect();
        }
        let ids: Vec<String> = readers.iter().map(|(id, _)| id.clone()).collect();
        let users = self.store.users_by_ids(&ids).await?;
        Ok(readers
            .into_iter()
            .filter_map(|(user_id, ts)| {
                let user = users.iter().find(|u| u.id == user_id)?;
                Some(ReadReceipt {
                    id: format!("{}{}", message.id, user_id),
                    room_id: message.rid.clone(),
                    user_id,
                    message_id: message.id.clone(),
                    ts,
                    user: UserRef {
                        id: user.id.clone(),
                        username: user.username.clone(),
                        name: user.name.clone(),
                    },
                })
            })
            .collect())
    }
}
