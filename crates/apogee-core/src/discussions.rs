//! Discussions: a room with `prid` (its parent room), announced in the parent by a
//! `discussion-created` message carrying `drid`. Starting one needs `start-discussion` or
//! `start-discussion-other-user` in the parent.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::messages::NewMessage;
use crate::rooms::{RoomRef, RoomView};
use crate::store::{Change, Page};
use apogee_domain::{Message, Room, RoomType, Subscription, User, random_id};
use serde_json::Value;

/// `rooms.createDiscussion` input.
#[derive(Debug, Clone, Default)]
pub struct NewDiscussion {
    pub prid: String,
    pub pmid: Option<String>,
    pub name: String,
    pub reply: Option<String>,
    pub users: Vec<String>,
    pub encrypted: Option<bool>,
    pub topic: Option<String>,
}

fn not_allowed() -> CoreError {
    CoreError::bad(
        "error-action-not-allowed",
        "You are not allowed to create a discussion",
    )
}

impl Core {
    /// `rooms.createDiscussion`.
    pub async fn create_discussion(&self, actor: &User, new: NewDiscussion) -> CoreResult<Room> {
        if !self.settings.bool("Discussion_enabled") {
            return Err(not_allowed());
        }
        let parent_sub = self.store.subscription(&new.prid, &actor.id).await?;
        if !self
            .authz
            .has_in(actor, "start-discussion", parent_sub.as_ref())
            && !self
                .authz
                .has_in(actor, "start-discussion-other-user", parent_sub.as_ref())
        {
            return Err(not_allowed());
        }
        let mut quoted = None;
        if let Some(pmid) = &new.pmid {
            let message = self
                .store
                .message_by_id(pmid)
                .await?
                .ok_or_else(|| CoreError::bad("error-invalid-message", "Invalid message"))?;
            let root = match self.store.room_by_id(&message.rid).await? {
                Some(r) => Some(r.prid.clone().unwrap_or(r.id)),
                None => None,
            };
            if root.as_deref() != Some(new.prid.as_str()) {
                return Err(CoreError::bad(
                    "error-invalid-arguments",
                    "Root message room ID does not match parent room ID ",
                ));
            }
            quoted = Some(message);
        }
        let view = self
            .readable_room(actor, &RoomRef::Id(new.prid.clone()))
            .await
            .map_err(|e| {
                if e.code == "error-room-not-found" {
                    CoreError::bad("error-invalid-room", "")
                } else {
                    CoreError::bad("error-not-allowed", "")
                }
            })?;
        if view.sub.is_none() && view.room.t != RoomType::Channel {
            return Err(CoreError::bad("error-not-allowed", ""));
        }
        self.check_can_post(actor, &view.room, view.sub.as_ref())
            .map_err(|e| CoreError::bad(&e.code, ""))?;
        let RoomView { room: parent, .. } = view;
        if parent.prid.is_some() {
            return Err(CoreError::bad(
                "error-nested-discussion",
                "Cannot create nested discussions",
            ));
        }
        let encrypted = new.encrypted.unwrap_or(parent.is_encrypted());
        if encrypted && new.reply.as_deref().is_some_and(|r| !r.is_empty()) {
            return Err(CoreError::bad(
                "error-invalid-arguments",
                "Encrypted discussions must not receive an initial reply.",
            ));
        }
        if let Some(pmid) = &new.pmid
            && let Some(existing) = self.discussion_of_message(&new.prid, pmid).await?
        {
            if self
                .store
                .subscription(&existing.id, &actor.id)
                .await?
                .is_none()
            {
                let rid = existing.id.clone();
                self.commit(self.join_changes(existing, actor, None, true))
                    .await?;
                return self.find_room(&RoomRef::Id(rid)).await;
            }
            return Ok(existing);
        }
        let t = if parent.t == RoomType::Channel {
            RoomType::Channel
        } else {
            RoomType::Group
        };
        let mut members = vec![actor.clone()];
        let mut invited: Vec<String> = quoted.iter().map(|m| m.u.username.clone()).collect();
        invited.extend(new.users.iter().cloned());
        for username in invited.iter().filter(|u| !u.is_empty()) {
            if let Some(u) = self.store.user_by_username(username).await?
                && u.active
                && !members.iter().any(|m| m.id == u.id)
            {
                members.push(u);
            }
        }
        let mut room = Room::new(random_id(), t, Some(random_id()), Some(actor.as_ref()));
        room.fname = Some(new.name.clone());
        room.prid = Some(parent.id.clone());
        room.topic = Some(
            new.topic
                .clone()
                .filter(|t| !t.is_empty())
                .or_else(|| parent.name.clone())
                .unwrap_or_default(),
        );
        if let Some(m) = &quoted
            && !parent.is_encrypted()
        {
            room.description = Some(m.msg.clone());
        }
        if encrypted {
            room.extra.insert("encrypted".into(), Value::Bool(true));
        }
        if let Some(pmid) = &new.pmid {
            room.extra
                .insert("pmid".into(), Value::String(pmid.clone()));
        }
        room.users_count = members.len() as i64;
        let mut changes = vec![Change::InsertRoom(room.clone())];
        for m in &members {
            let mut sub = Subscription::new(
                &room.id,
                room.t,
                room.name.clone().unwrap_or_default(),
                room.fname.clone(),
                m.as_ref(),
                room.seq,
            );
            sub.prid = room.prid.clone();
            if m.id == actor.id {
                sub.roles = vec!["owner".into()];
            }
            changes.push(Change::InsertSubscription(sub));
        }
        let announce_in = quoted.as_ref().map_or(parent.id.clone(), |m| m.rid.clone());
        let mut announcement = Message::system(
            &announce_in,
            "discussion-created",
            new.name.clone(),
            actor.as_ref(),
        );
        announcement
            .extra
            .insert("drid".into(), Value::String(room.id.clone()));
        changes.push(Change::AppendMessage {
            message: announcement,
            mentioned_user_ids: vec![],
            mentions_all: false,
        });
        self.commit(changes).await?;
        if let Some(reply) = new.reply.filter(|r| !r.is_empty()) {
            self.send_message(
                actor,
                NewMessage {
                    rid: room.id.clone(),
                    msg: reply,
                    ..Default::default()
                },
            )
            .await?;
        }
        self.find_room(&RoomRef::Id(room.id)).await
    }

    /// The discussion already started from message `pmid` of room `prid`, if any.
    async fn discussion_of_message(&self, prid: &str, pmid: &str) -> CoreResult<Option<Room>> {
        let Some(message) = self.store.message_by_id(pmid).await? else {
            return Ok(None);
        };
        let (announcements, _) = self
            .store
            .discussion_messages(&message.rid, None, Page::ALL)
            .await?;
        for a in announcements {
            let Some(drid) = a.extra.get("drid").and_then(Value::as_str) else {
                continue;
            };
            if let Some(room) = self.store.room_by_id(drid).await?
                && room.prid.as_deref() == Some(prid)
                && room.extra.get("pmid").and_then(Value::as_str) == Some(pmid)
            {
                return Ok(Some(room));
            }
        }
        Ok(None)
    }

    /// `rooms.getDiscussions`: the discussions of a room the actor can read, by name.
    pub async fn discussion_rooms(
        &self,
        actor: &User,
        room: &RoomRef,
        page: Page,
    ) -> CoreResult<(Vec<Room>, i64)> {
        let room = self.find_room(room).await?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        if !self.authz.can_read_room(actor, &room, sub.as_ref()) {
            return Err(CoreError::new(
                crate::error::ErrorKind::BadRequest,
                "",
                "not-allowed",
            ));
        }
        let mut rooms = self.store.discussion_rooms(&room.id).await?;
        rooms.sort_by(|a, b| a.fname.cmp(&b.fname).then_with(|| a.id.cmp(&b.id)));
        let total = rooms.len() as i64;
        let rooms = rooms
            .into_iter()
            .skip(page.offset.max(0) as usize)
            .take(page.count.max(0) as usize)
            .collect();
        Ok((rooms, total))
    }

    /// `chat.getDiscussions`: the `discussion-created` messages of a room the actor can read,
    /// newest first, optionally only those whose name contains `text`.
    pub async fn discussions(
        &self,
        actor: &User,
        rid: &str,
        text: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<Message>, i64)> {
        let room = self
            .store
            .room_by_id(rid)
            .await?
            .ok_or_else(|| CoreError::bad("error-not-allowed", "Not allowed"))?;
        let sub = self.store.subscription(rid, &actor.id).await?;
        if !self.authz.can_read_room(actor, &room, sub.as_ref()) {
            return Err(CoreError::bad("error-not-allowed", "Not allowed"));
        }
        Ok(self
            .store
            .discussion_messages(rid, text.filter(|t| !t.is_empty()), page)
            .await?)
    }
}
