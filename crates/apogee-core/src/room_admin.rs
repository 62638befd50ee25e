//! Room administration beyond settings: adding every user, who is online, mentions of the actor,
//! pruning history and the administrators' room list.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::rooms::RoomRef;
use crate::store::{Change, HistoryQuery, Page, RoomQuery, UserQuery};
use apogee_domain::{Message, Room, RoomType, Timestamp, User};

/// `rooms.cleanHistory` options.
#[derive(Debug, Clone)]
pub struct CleanHistory {
    pub latest: Timestamp,
    pub oldest: Timestamp,
    pub inclusive: bool,
    pub exclude_pinned: bool,
    pub files_only: bool,
    /// Only messages by these usernames (all when empty).
    pub users: Vec<String>,
    /// Keep thread replies.
    pub ignore_threads: bool,
    /// At most this many (all when `None`).
    pub limit: Option<i64>,
}

impl Core {
    /// `channels.addAll`: subscribes every (or every active) user to the room. Needs
    /// `add-all-to-room`; refused above `API_User_Limit` users.
    pub async fn add_all_users(
        &self,
        actor: &User,
        room: &RoomRef,
        active_only: bool,
    ) -> CoreResult<Room> {
        if !self.authz.has(actor, "add-all-to-room") {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        let query = UserQuery {
            active: active_only.then_some(true),
            ..Default::default()
        };
        let (users, total) = self.store.list_users(&query, Page::ALL).await?;
        if total > self.settings.int("API_User_Limit") {
            return Err(CoreError::bad(
                "error-user-limit-exceeded",
                "User Limit Exceeded",
            ));
        }
        let mut room = self.find_room(room).await?;
        if room.is_direct() {
            return Err(CoreError::invalid_room());
        }
        let (members, _) = self
            .store
            .subscriptions_of_room(&room.id, Page::ALL)
            .await?;
        let joining: Vec<&User> = users
            .iter()
            .filter(|u| !members.iter().any(|m| m.u.id == u.id))
            .collect();
        if joining.is_empty() {
            return Ok(room);
        }
        room.users_count += joining.len() as i64;
        room.updated_at = Timestamp::now();
        // The room is written first: the join messages bump its counters afterwards.
        let mut changes = vec![Change::UpdateRoom(room.clone())];
        for user in joining {
            changes.push(Change::InsertSubscription(
                self.new_subscription(&room, user),
            ));
            changes.push(Change::AppendMessage {
                message: Message::system(&room.id, "uj", user.username.clone(), user.as_ref()),
                mentioned_user_ids: vec![],
                mentions_all: false,
            });
        }
        self.commit(changes).await?;
        self.find_room(&RoomRef::Id(room.id)).await
    }

    /// `channels.online` / `groups.online`: members of a readable room whose status is not
    /// offline.
    pub async fn online_members(
        &self,
        actor: &User,
        room: &RoomRef,
        t: RoomType,
    ) -> CoreResult<Vec<User>> {
        let view = self.readable_room_of(actor, room, t).await?;
        let (members, _) = self
            .store
            .subscriptions_of_room(&view.room.id, Page::ALL)
            .await?;
        let ids: Vec<String> = members.into_iter().map(|s| s.u.id).collect();
        let mut users = self.store.users_by_ids(&ids).await?;
        users.retain(|u| u.status != "offline" && !u.status.is_empty());
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    /// `channels.getAllUserMentionsByChannel`: messages of a readable room mentioning the actor.
    pub async fn mentions_of(
        &self,
        actor: &User,
        room: &RoomRef,
        page: Page,
    ) -> CoreResult<(Vec<Message>, i64)> {
        let view = self.readable_room(actor, room).await?;
        let query = HistoryQuery {
            mentioning: Some(actor.id.clone()),
            include_thread_replies: true,
            count: page.count,
            offset: page.offset,
            with_total: true,
            ..Default::default()
        };
        Ok(self.store.history(&view.room.id, &query).await?)
    }

    /// `rooms.cleanHistory`: deletes the room's messages between `oldest` and `latest`. Needs
    /// `clean-channel-history` (globally or in the room). Answers how many were removed.
    pub async fn clean_history(
        &self,
        actor: &User,
        room: &RoomRef,
        opts: CleanHistory,
    ) -> CoreResult<i64> {
        let room = self.find_room(room).await?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        if !self
            .authz
            .has_in(actor, "clean-channel-history", sub.as_ref())
        {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        let query = HistoryQuery {
            latest: Some(opts.latest),
            oldest: Some(opts.oldest),
            inclusive: opts.inclusive,
            include_thread_replies: !opts.ignore_threads,
            count: i64::MAX,
            ..Default::default()
        };
        let (messages, _) = self.store.history(&room.id, &query).await?;
        let limit = opts.limit.filter(|l| *l > 0).unwrap_or(i64::MAX) as usize;
        let doomed: Vec<Message> = messages
            .into_iter()
            .filter(|m| !(opts.exclude_pinned && m.pinned == Some(true)))
            .filter(|m| {
                !opts.files_only || m.extra.contains_key("file") || m.extra.contains_key("files")
            })
            .filter(|m| opts.users.is_empty() || opts.users.contains(&m.u.username))
            .filter(|m| !(opts.ignore_threads && m.tmid.is_some()))
            .take(limit)
            .collect();
        let count = doomed.len() as i64;
        if count == 0 {
            return Ok(0);
        }
        let mut changes = Vec::new();
        for m in doomed {
            changes.extend(self.message_file_removals(&m).await?);
            changes.push(Change::DeleteMessage {
                id: m.id,
                rid: m.rid,
            });
        }
        self.commit(changes).await?;
        Ok(count)
    }

    /// `rooms.adminRooms`: every room, filtered by name and type. Needs `view-room-administration`.
    pub async fn admin_rooms(
        &self,
        actor: &User,
        filter: Option<String>,
        types: Vec<RoomType>,
        page: Page,
    ) -> CoreResult<(Vec<Room>, i64)> {
        self.authz
            .require(actor, "view-room-administration", None)?;
        let query = RoomQuery {
            types,
            name_contains: filter.filter(|f| !f.is_empty()),
            member: None,
        };
        Ok(self.store.list_rooms(&query, page).await?)
    }
}
