//! Finding people and rooms: the directory, spotlight search and look-up by e-mail.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::store::{Page, RoomQuery, UserQuery};
use apogee_domain::{Room, RoomType, User};

/// What `directory` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryKind {
    Channels,
    Users,
}

/// One page of directory results.
#[derive(Debug, Clone)]
pub enum DirectoryPage {
    Rooms(Vec<Room>, i64),
    Users(Vec<User>, i64),
}

/// Spotlight answers are short lists.
const SPOTLIGHT_LIMIT: i64 = 10;

impl Core {
    /// `directory`: public channels (with `view-c-room`) or active people (with
    /// `view-outside-room`) whose name contains `text`.
    pub async fn directory(
        &self,
        actor: &User,
        kind: DirectoryKind,
        text: Option<String>,
        page: Page,
    ) -> CoreResult<DirectoryPage> {
        let text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        match kind {
            DirectoryKind::Channels => {
                if !self.authz.has(actor, "view-c-room") {
                    return Ok(DirectoryPage::Rooms(Vec::new(), 0));
                }
                let query = RoomQuery {
                    types: vec![RoomType::Channel],
                    name_contains: text,
                    member: None,
                };
                let (rooms, total) = self.store.list_rooms(&query, page).await?;
                Ok(DirectoryPage::Rooms(rooms, total))
            }
            DirectoryKind::Users => {
                if !self.authz.has(actor, "view-outside-room") {
                    return Err(CoreError::bad("", "Please verify the parameters"));
                }
                let query = UserQuery {
                    text,
                    active: Some(true),
                    ..Default::default()
                };
                let (users, total) = self.store.list_users(&query, page).await?;
                Ok(DirectoryPage::Users(users, total))
            }
        }
    }

    /// `spotlight`: people and rooms matching `text` (`@name` only people, `#name` only rooms).
    /// Rooms are the public channels the actor may view plus the rooms they belong to.
    pub async fn spotlight(&self, actor: &User, text: &str) -> CoreResult<(Vec<User>, Vec<Room>)> {
        let text = text.trim();
        let (want_users, want_rooms, needle) = match text.chars().next() {
            Some('@') => (true, false, &text[1..]),
            Some('#') => (false, true, &text[1..]),
            _ => (true, true, text),
        };
        let needle = Some(needle.to_string()).filter(|n| !n.is_empty());
        let page = Page {
            offset: 0,
            count: SPOTLIGHT_LIMIT,
        };
        let mut users = Vec::new();
        if want_users && self.authz.has(actor, "view-outside-room") {
            let query = UserQuery {
                text: needle.clone(),
                active: Some(true),
                ..Default::default()
            };
            users = self.store.list_users(&query, page).await?.0;
        }
        let mut rooms: Vec<Room> = Vec::new();
        if want_rooms {
            let mine = RoomQuery {
                types: vec![RoomType::Channel, RoomType::Group],
                name_contains: needle.clone(),
                member: Some(actor.id.clone()),
            };
            rooms = self.store.list_rooms(&mine, page).await?.0;
            if self.authz.has(actor, "view-c-room") {
                let public = RoomQuery {
                    types: vec![RoomType::Channel],
                    name_contains: needle,
                    member: None,
                };
                for room in self.store.list_rooms(&public, page).await?.0 {
                    if !rooms.iter().any(|r| r.id == room.id) {
                        rooms.push(room);
                    }
                }
            }
            rooms.sort_by(|a, b| a.name.cmp(&b.name));
            rooms.truncate(SPOTLIGHT_LIMIT as usize);
        }
        Ok((users, rooms))
    }

    /// `users.info?email=`: the user with that address. Other people's addresses are only looked
    /// up for holders of `view-full-other-user-info`; everyone else gets "not found".
    pub async fn find_user_by_email(&self, actor: &User, email: &str) -> CoreResult<User> {
        let not_found = || CoreError::bad("", "User not found.");
        let user = self
            .store
            .user_by_email(email.trim())
            .await?
            .ok_or_else(not_found)?;
        if user.id != actor.id && !self.authz.has(actor, "view-full-other-user-info") {
            return Err(not_found());
        }
        Ok(user)
    }
}
