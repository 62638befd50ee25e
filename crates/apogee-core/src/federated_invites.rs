//! Remote invites of our users, taken up durably. Rocket.Chat's bridge-era receiver (and
//! Apogee) accept an invite by joining the invitee through the inviting server. The inviting
//! server stores the invite only once we have answered it, so the join cannot happen while we
//! answer: serving `v2/invite` commits an outbox item (`federation.invite`) before answering,
//! due a moment later, and its deliverer joins. A join that fails (the inviting server down or
//! not ready) is retried with the outbox's backoff (10 s doubling, at most an hour, given up
//! after 12 attempts), across restarts and on whichever node leases it.

use crate::Core;
use crate::error::CoreResult;
use crate::outbox::{Deliverer, Delivery};
use crate::store::{Change, OutboxItem};
use apogee_domain::{Timestamp, User, random_id};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::time::Duration;

/// The outbox kind of an invite to take up.
pub const FEDERATION_INVITE: &str = "federation.invite";
/// The first attempt waits this long (the inviting server stores the invite after our answer).
const FIRST_ATTEMPT_AFTER: Duration = Duration::from_secs(1);

impl Core {
    /// Serving `v2/invite` of `user` into `matrix_room_id` (checked by the adapter): queues
    /// the take-up, committed before the invite is answered.
    pub async fn queue_invite_take_up(
        &self,
        user: &User,
        matrix_room_id: &str,
        via: &str,
        is_direct: bool,
    ) -> CoreResult<()> {
        let due = Timestamp::from_millis(
            Timestamp::now().millis() + FIRST_ATTEMPT_AFTER.as_millis() as i64,
        );
        // An item is first due at its `created_at`: here, a moment after the answer.
        self.commit(vec![Change::Enqueue(OutboxItem {
            id: random_id(),
            kind: FEDERATION_INVITE.into(),
            queue: None,
            payload: json!({"user_id": user.id, "room_id": matrix_room_id, "via": via,
                "is_direct": is_direct}),
            created_at: due,
            attempts: 0,
            last_error: None,
        })])
        .await?;
        // The worker polls every few seconds; wake it when the item comes due.
        let wake = self.outbox_wake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FIRST_ATTEMPT_AFTER + Duration::from_millis(50)).await;
            wake.notify_one();
        });
        Ok(())
    }
}

/// Delivers `federation.invite` items: the invitee joins the room.
pub(crate) struct InviteTakeUp;

#[async_trait]
impl Deliverer for InviteTakeUp {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery {
        let text = |k: &str| payload.get(k).and_then(Value::as_str);
        let (Some(user_id), Some(room_id), Some(via)) =
            (text("user_id"), text("room_id"), text("via"))
        else {
            return Delivery::GiveUp("malformed invite item".into());
        };
        let is_direct = payload.get("is_direct").and_then(Value::as_bool) == Some(true);
        let user = match core.store.user_by_id(user_id).await {
            Ok(Some(user)) if user.active => user,
            Ok(_) => return Delivery::GiveUp("the invitee is no longer an active user".into()),
            Err(e) => return Delivery::Retry(e.to_string()),
        };
        // Joining again is answered with the room: a repeat after a lost outcome is harmless.
        match core
            .accept_federated_invite(&user, room_id, via, is_direct)
            .await
        {
            Ok(_) => Delivery::Done,
            Err(e) if e.code == "error-federation-server-not-allowed" => {
                Delivery::GiveUp(e.message)
            }
            Err(e) => {
                tracing::info!(room = room_id, error = %e.message, "joining after an invite failed");
                Delivery::Retry(e.message)
            }
        }
    }
}
