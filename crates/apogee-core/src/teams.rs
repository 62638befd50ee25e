//! Teams: a team is a record plus its main room (`teamMain`), with its own membership list and
//! the rooms moved into it (`teamId`). Team permissions are checked in the scope of the main room.

use crate::Core;
use crate::error::{CoreError, CoreResult, ErrorKind};
use crate::rooms::RoomRef;
use crate::store::{Change, Page};
use apogee_domain::room::is_valid_room_name;
use apogee_domain::{Message, Room, RoomType, Subscription, Timestamp, User, UserRef, random_id};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Rocket.Chat's `TEAM_TYPE`: 0 public (main room is a channel), 1 private (a group).
pub const TEAM_PUBLIC: i64 = 0;
pub const TEAM_PRIVATE: i64 = 1;

/// Rocket.Chat's `ITeam`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: i64,
    pub room_id: String,
    pub created_by: UserRef,
    pub created_at: Timestamp,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
}

/// Rocket.Chat's `ITeamMember`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamMember {
    #[serde(rename = "_id")]
    pub id: String,
    pub team_id: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    pub created_by: UserRef,
    pub created_at: Timestamp,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
}

impl TeamMember {
    fn new(team_id: &str, user_id: &str, roles: Option<Vec<String>>, by: &User) -> Self {
        let now = Timestamp::now();
        Self {
            id: random_id(),
            team_id: team_id.to_string(),
            user_id: user_id.to_string(),
            roles,
            created_by: short_ref(by),
            created_at: now,
            updated_at: now,
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().flatten().any(|r| r == role)
    }
}

/// `{_id, username}`, as Rocket.Chat's `createdBy`.
fn short_ref(u: &User) -> UserRef {
    UserRef {
        id: u.id.clone(),
        username: u.username.clone(),
        name: None,
    }
}

/// How a request names a team.
#[derive(Debug, Clone)]
pub enum TeamRef {
    Id(String),
    Name(String),
}

/// `teams.create` input.
#[derive(Debug, Clone, Default)]
pub struct NewTeam {
    pub name: String,
    pub kind: i64,
    /// User ids or usernames.
    pub members: Vec<String>,
    /// Owner user id (defaults to the caller).
    pub owner: Option<String>,
    pub read_only: bool,
    pub extra: serde_json::Map<String, Value>,
}

/// A team with its room and member counts (`ITeamInfo`).
#[derive(Debug, Clone)]
pub struct TeamInfo {
    pub team: Team,
    pub rooms: i64,
    pub number_of_users: i64,
}

/// One entry of `teams.members`.
#[derive(Debug, Clone)]
pub struct TeamMemberInfo {
    pub member: TeamMember,
    pub user: User,
}

/// Filters for `teams.members`.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub username: Option<String>,
    pub name: Option<String>,
    pub status: Vec<String>,
}

/// A team room as listed for one user, with whether that user is its last owner.
#[derive(Debug, Clone)]
pub struct UserTeamRoom {
    pub room: Room,
    pub is_last_owner: bool,
}

/// Rocket.Chat answers most team failures with a bare `API.v1.failure('<code>')`.
fn failure(code: &str) -> CoreError {
    CoreError::new(ErrorKind::BadRequest, "", code)
}

fn paged<T>(items: Vec<T>, page: Page) -> (Vec<T>, i64) {
    let total = items.len() as i64;
    let items = items
        .into_iter()
        .skip(page.offset.max(0) as usize)
        .take(page.count.max(0) as usize)
        .collect();
    (items, total)
}

fn contains_ci(haystack: Option<&str>, needle: &str) -> bool {
    haystack.is_some_and(|h| h.to_lowercase().contains(&needle.to_lowercase()))
}

impl Core {
    /// Finds a team by id or name (`team-does-not-exist` otherwise).
    pub async fn find_team(&self, team: &TeamRef) -> CoreResult<Team> {
        let found = match team {
            TeamRef::Id(id) => self.store.team_by_id(id).await?,
            TeamRef::Name(name) => self.store.team_by_name(name).await?,
        };
        found.ok_or_else(|| failure("team-does-not-exist"))
    }

    /// The actor's subscription to the team's main room: team permissions are scoped to it.
    async fn team_scope(&self, actor: &User, team: &Team) -> CoreResult<Option<Subscription>> {
        Ok(self.store.subscription(&team.room_id, &actor.id).await?)
    }

    async fn team_can(&self, actor: &User, team: &Team, permission: &str) -> CoreResult<bool> {
        let sub = self.team_scope(actor, team).await?;
        Ok(self.authz.has_in(actor, permission, sub.as_ref()))
    }

    /// `teams.create`: the team, its main room and the memberships. Needs `create-team` and the
    /// right to create the main room's kind.
    pub async fn create_team(&self, actor: &User, new: NewTeam) -> CoreResult<Team> {
        self.authz.require(actor, "create-team", None)?;
        if new.kind != TEAM_PUBLIC && new.kind != TEAM_PRIVATE {
            return Err(CoreError::invalid_params(
                "must be equal to one of the allowed values",
            ));
        }
        let t = if new.kind == TEAM_PRIVATE {
            RoomType::Group
        } else {
            RoomType::Channel
        };
        let owner = match &new.owner {
            Some(id) => self
                .store
                .user_by_id(id)
                .await?
                .filter(|u| u.active)
                .ok_or_else(|| failure("invalid-user"))?,
            None => actor.clone(),
        };
        let room_perm = if t == RoomType::Channel {
            "create-c"
        } else {
            "create-p"
        };
        self.authz.require(&owner, room_perm, None)?;
        let name = new.name.trim().to_string();
        if !is_valid_room_name(&name) {
            return Err(CoreError::bad(
                "error-invalid-room-name",
                format!("{name} is not a valid room name"),
            )
            .with_details(serde_json::json!({"channel_name": name})));
        }
        self.check_team_name_free(&name, None).await?;
        let mut members = vec![owner.clone()];
        for m in &new.members {
            let user = match self.store.user_by_id(m).await? {
                Some(u) => Some(u),
                None => self.store.user_by_username(m).await?,
            };
            if let Some(u) = user.filter(|u| u.active)
                && !members.iter().any(|x| x.id == u.id)
            {
                members.push(u);
            }
        }
        let team_id = random_id();
        let mut room = Room::new(random_id(), t, Some(name.clone()), Some(owner.as_ref()));
        room.ro = new.read_only;
        room.extra = new.extra;
        room.team_id = Some(team_id.clone());
        room.team_main = Some(true);
        room.users_count = members.len() as i64;
        let now = Timestamp::now();
        let team = Team {
            id: team_id.clone(),
            name,
            kind: new.kind,
            room_id: room.id.clone(),
            created_by: short_ref(actor),
            created_at: now,
            updated_at: now,
        };
        let mut changes = vec![
            Change::InsertRoom(room.clone()),
            Change::InsertTeam(team.clone()),
        ];
        for m in &members {
            let mut sub = Subscription::new(
                &room.id,
                room.t,
                team.name.clone(),
                room.fname.clone(),
                m.as_ref(),
                room.seq,
            );
            let roles = (m.id == owner.id).then(|| vec!["owner".to_string()]);
            if let Some(r) = &roles {
                sub.roles = r.clone();
            }
            changes.push(Change::InsertSubscription(sub));
            changes.push(Change::UpsertTeamMember(TeamMember::new(
                &team_id, &m.id, roles, actor,
            )));
        }
        self.commit(changes).await?;
        Ok(team)
    }

    async fn check_team_name_free(&self, name: &str, own_room: Option<&str>) -> CoreResult<()> {
        if self.store.team_by_name(name).await?.is_some()
            || self.store.user_by_username(name).await?.is_some()
        {
            return Err(failure("team-name-already-exists"));
        }
        if let Some(room) = self.store.room_by_name(name).await?
            && Some(room.id.as_str()) != own_room
        {
            return Err(failure("room-name-already-exists"));
        }
        Ok(())
    }

    /// `channels.convertToTeam` / `groups.convertToTeam`: makes an existing room a team's main
    /// room; its members become team members and the caller the team owner. Needs `create-team`
    /// and `edit-room` in the room.
    pub async fn convert_to_team(
        &self,
        actor: &User,
        room: &RoomRef,
        t: RoomType,
    ) -> CoreResult<Team> {
        let mut room = self.readable_room_of(actor, room, t).await?.room;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        if !self.authz.has_in(actor, "create-team", sub.as_ref())
            || !self.authz.has_in(actor, "edit-room", sub.as_ref())
        {
            return Err(CoreError::unauthorized());
        }
        if room.team_id.is_some() {
            return Err(failure("room-already-on-team"));
        }
        let name = room.name.clone().unwrap_or_default();
        self.check_team_name_free(&name, Some(&room.id)).await?;
        let now = Timestamp::now();
        let team = Team {
            id: random_id(),
            name: name.clone(),
            kind: if t == RoomType::Group {
                TEAM_PRIVATE
            } else {
                TEAM_PUBLIC
            },
            room_id: room.id.clone(),
            created_by: short_ref(actor),
            created_at: now,
            updated_at: now,
        };
        room.team_id = Some(team.id.clone());
        room.team_main = Some(true);
        room.updated_at = now;
        let mut changes = vec![
            Change::InsertTeam(team.clone()),
            Change::UpdateRoom(room.clone()),
        ];
        let (subs, _) = self
            .store
            .subscriptions_of_room(&room.id, Page::ALL)
            .await?;
        for s in subs {
            let roles = (s.u.id == actor.id).then(|| vec!["owner".to_string()]);
            changes.push(Change::UpsertTeamMember(TeamMember::new(
                &team.id, &s.u.id, roles, actor,
            )));
        }
        changes.push(Change::AppendMessage {
            message: Message::system(&room.id, "user-converted-to-team", name, actor.as_ref()),
            mentioned_user_ids: vec![],
            mentions_all: false,
        });
        self.commit(changes).await?;
        Ok(team)
    }

    /// `teams.delete`: erases the main room and the listed team rooms, moves the other rooms
    /// back to the workspace and drops the memberships. Needs `delete-team`.
    pub async fn delete_team(
        &self,
        actor: &User,
        team: &TeamRef,
        rooms_to_remove: &[String],
    ) -> CoreResult<()> {
        let team = self.find_team(team).await?;
        if !self.team_can(actor, &team, "delete-team").await? {
            return Err(CoreError::unauthorized());
        }
        let mut changes = Vec::new();
        for mut room in self.store.team_rooms(&team.id).await? {
            if rooms_to_remove.contains(&room.id) {
                changes.extend(self.room_file_removals(&room.id).await?);
                changes.push(Change::DeleteRoom(room.id));
            } else {
                room.team_id = None;
                room.extra.remove("teamDefault");
                room.updated_at = Timestamp::now();
                changes.push(Change::UpdateRoom(room));
            }
        }
        changes.push(Change::DeleteTeam(team.id.clone()));
        changes.extend(self.room_file_removals(&team.room_id).await?);
        changes.push(Change::DeleteRoom(team.room_id.clone()));
        self.commit(changes).await
    }

    /// `teams.leave`: the actor leaves the team (and its main room), optionally also the listed
    /// team rooms. The last owner cannot leave.
    pub async fn leave_team(
        &self,
        actor: &User,
        team: &TeamRef,
        rooms: &[String],
    ) -> CoreResult<()> {
        let team = self.find_team(team).await?;
        let changes = self
            .remove_member_changes(&team, actor, None, rooms)
            .await?;
        self.commit(changes).await
    }

    /// `teams.update`: renames the team (and its main room) and/or switches it between public and
    /// private. Needs `edit-team`.
    pub async fn update_team(
        &self,
        actor: &User,
        team: &TeamRef,
        name: Option<String>,
        kind: Option<i64>,
        update_room: bool,
    ) -> CoreResult<()> {
        let mut team = self.find_team(team).await?;
        if !self.team_can(actor, &team, "edit-team").await? {
            return Err(CoreError::unauthorized());
        }
        if let Some(k) = kind
            && k != TEAM_PUBLIC
            && k != TEAM_PRIVATE
        {
            return Err(CoreError::invalid_params(
                "must be equal to one of the allowed values",
            ));
        }
        let name = name
            .map(|n| n.trim().to_string())
            .filter(|n| *n != team.name);
        if let Some(n) = &name {
            if !is_valid_room_name(n) {
                return Err(CoreError::bad(
                    "error-invalid-room-name",
                    format!("{n} is not a valid room name"),
                ));
            }
            self.check_team_name_free(n, Some(&team.room_id)).await?;
        }
        if update_room && (name.is_some() || kind.is_some_and(|k| k != team.kind)) {
            let settings = crate::rooms::RoomSettings {
                name: name.clone(),
                room_type: kind.map(|k| {
                    if k == TEAM_PRIVATE {
                        RoomType::Group
                    } else {
                        RoomType::Channel
                    }
                }),
                ..Default::default()
            };
            self.update_room(actor, &RoomRef::Id(team.room_id.clone()), settings)
                .await?;
        }
        if let Some(n) = name {
            team.name = n;
        }
        if let Some(k) = kind {
            team.kind = k;
        }
        team.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateTeam(team)]).await
    }

    /// `teams.info`: for whoever can read the main room, or holds `view-all-teams`.
    pub async fn team_info(&self, actor: &User, team: &TeamRef) -> CoreResult<Team> {
        let team = self
            .find_team(team)
            .await
            .map_err(|_| failure("Team not found"))?;
        let room = self
            .store
            .room_by_id(&team.room_id)
            .await?
            .ok_or_else(|| failure("Room not found"))?;
        let sub = self.team_scope(actor, &team).await?;
        if !self.authz.can_read_room(actor, &room, sub.as_ref())
            && !self.authz.has(actor, "view-all-teams")
        {
            return Err(CoreError::unauthorized());
        }
        Ok(team)
    }

    /// `teams.list`: the actor's teams. `teams.listAll` (`all`): every team, with `view-all-teams`.
    pub async fn list_teams(
        &self,
        actor: &User,
        all_teams: bool,
        page: Page,
    ) -> CoreResult<(Vec<TeamInfo>, i64)> {
        if all_teams {
            self.authz.require(actor, "view-all-teams", None)?;
        }
        let member = (!all_teams).then_some(actor.id.as_str());
        let (teams, total) = self.store.list_teams(member, page).await?;
        let mut out = Vec::with_capacity(teams.len());
        for team in teams {
            let rooms = self.store.team_rooms(&team.id).await?.len() as i64 + 1;
            let number_of_users = self.store.team_members(&team.id).await?.len() as i64;
            out.push(TeamInfo {
                team,
                rooms,
                number_of_users,
            });
        }
        Ok((out, total))
    }

    /// `teams.members`: empty for outsiders without `view-all-teams`.
    pub async fn team_members(
        &self,
        actor: &User,
        team: &TeamRef,
        filter: &MemberFilter,
        page: Page,
    ) -> CoreResult<(Vec<TeamMemberInfo>, i64)> {
        let team = self.find_team(team).await?;
        let can_see_all = self.team_can(actor, &team, "view-all-teams").await?;
        if !can_see_all && self.store.team_member(&team.id, &actor.id).await?.is_none() {
            return Ok((Vec::new(), 0));
        }
        let members = self.store.team_members(&team.id).await?;
        let ids: Vec<String> = members.iter().map(|m| m.user_id.clone()).collect();
        let users = self.store.users_by_ids(&ids).await?;
        let list: Vec<TeamMemberInfo> = members
            .into_iter()
            .filter_map(|member| {
                let user = users
                    .iter()
                    .find(|u| u.id == member.user_id && u.active)?
                    .clone();
                Some(TeamMemberInfo { member, user })
            })
            .filter(|m| {
                filter
                    .username
                    .as_deref()
                    .is_none_or(|n| contains_ci(Some(&m.user.username), n))
                    && filter
                        .name
                        .as_deref()
                        .is_none_or(|n| contains_ci(m.user.name.as_deref(), n))
                    && (filter.status.is_empty() || filter.status.contains(&m.user.status))
            })
            .collect();
        Ok(paged(list, page))
    }

    /// `teams.addMembers`: joins each user to the main room and records the membership with its
    /// roles. Needs `add-team-member` or `edit-team-member`.
    pub async fn add_team_members(
        &self,
        actor: &User,
        team: &TeamRef,
        members: &[(String, Option<Vec<String>>)],
    ) -> CoreResult<()> {
        let team = self.find_team(team).await?;
        if !self.team_can(actor, &team, "add-team-member").await?
            && !self.team_can(actor, &team, "edit-team-member").await?
        {
            return Err(CoreError::unauthorized());
        }
        let room = self
            .store
            .room_by_id(&team.room_id)
            .await?
            .ok_or_else(|| failure("team-does-not-exist"))?;
        // (subscription, is new) per user, in request order.
        let mut subs: Vec<(Subscription, bool)> = Vec::new();
        let mut joiners: Vec<User> = Vec::new();
        let mut team_members: Vec<TeamMember> = Vec::new();
        for (user_id, roles) in members {
            let user = self
                .store
                .user_by_id(user_id)
                .await?
                .ok_or_else(CoreError::invalid_user)?;
            if !subs.iter().any(|(s, _)| s.u.id == user.id) {
                match self.store.subscription(&room.id, &user.id).await? {
                    Some(s) => subs.push((s, false)),
                    None => joiners.push(user.clone()),
                }
            }
            let mut member = match team_members.iter().position(|m| m.user_id == user.id) {
                Some(i) => team_members.remove(i),
                None => match self.store.team_member(&team.id, &user.id).await? {
                    Some(m) => m,
                    None => TeamMember::new(&team.id, &user.id, None, actor),
                },
            };
            if let Some(roles) = roles {
                let mine = member.roles.get_or_insert_with(Vec::new);
                for r in roles {
                    if !mine.contains(r) {
                        mine.push(r.clone());
                    }
                }
                member.updated_at = Timestamp::now();
            }
            team_members.push(member);
        }
        let (new_subs, tail) = self.bulk_join(room, &joiners, actor);
        subs.extend(new_subs.into_iter().map(|s| (s, true)));
        let mut changes = Vec::new();
        for (mut sub, is_new) in subs {
            if let Some(member) = team_members.iter().find(|m| m.user_id == sub.u.id) {
                for r in member.roles.iter().flatten() {
                    if !sub.roles.contains(r) {
                        sub.roles.push(r.clone());
                    }
                }
            }
            sub.updated_at = Timestamp::now();
            changes.push(if is_new {
                Change::InsertSubscription(sub)
            } else {
                Change::UpdateSubscription(sub)
            });
        }
        changes.extend(tail);
        changes.extend(team_members.into_iter().map(Change::UpsertTeamMember));
        self.commit(changes).await
    }

    /// `teams.updateMember`: replaces a member's team roles (and their roles in the main room).
    /// Needs `edit-team-member`.
    pub async fn update_team_member(
        &self,
        actor: &User,
        team: &TeamRef,
        user_id: &str,
        roles: Option<Vec<String>>,
    ) -> CoreResult<()> {
        let team = self.find_team(team).await?;
        if !self.team_can(actor, &team, "edit-team-member").await? {
            return Err(CoreError::unauthorized());
        }
        let roles = roles.unwrap_or_default();
        let mut changes = Vec::new();
        let now = Timestamp::now();
        if let Some(mut member) = self.store.team_member(&team.id, user_id).await? {
            member.roles = Some(roles.clone());
            member.updated_at = now;
            changes.push(Change::UpsertTeamMember(member));
        }
        if let Some(mut sub) = self.store.subscription(&team.room_id, user_id).await? {
            sub.roles = roles;
            sub.updated_at = now;
            changes.push(Change::UpdateSubscription(sub));
        }
        self.commit(changes).await
    }

    /// `teams.removeMember`: drops the membership and removes the user from the main room and,
    /// optionally, from listed team rooms. Needs `edit-team-member`; the last owner stays.
    pub async fn remove_team_member(
        &self,
        actor: &User,
        team: &TeamRef,
        user_id: &str,
        rooms: &[String],
    ) -> CoreResult<()> {
        let team = self.find_team(team).await?;
        if !self.team_can(actor, &team, "edit-team-member").await? {
            return Err(CoreError::unauthorized());
        }
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .filter(|u| u.active)
            .ok_or_else(|| failure("invalid-user"))?;
        let by = (actor.id != user.id).then_some(actor);
        let changes = self.remove_member_changes(&team, &user, by, rooms).await?;
        self.commit(changes).await
    }

    /// The changes that take `user` out of the team, its main room and the listed team rooms.
    async fn remove_member_changes(
        &self,
        team: &Team,
        user: &User,
        by: Option<&User>,
        rooms: &[String],
    ) -> CoreResult<Vec<Change>> {
        let member = self.store.team_member(&team.id, &user.id).await?;
        let sub = self.store.subscription(&team.room_id, &user.id).await?;
        if member.is_none() && sub.is_none() {
            return Err(failure("member-does-not-exist"));
        }
        let mut changes = Vec::new();
        if let Some(member) = member {
            if member.has_role("owner") {
                let owners = self
                    .store
                    .team_members(&team.id)
                    .await?
                    .iter()
                    .filter(|m| m.has_role("owner"))
                    .count();
                if owners == 1 {
                    return Err(failure("last-owner-can-not-be-removed"));
                }
            }
            changes.push(Change::DeleteTeamMember {
                team_id: team.id.clone(),
                user_id: user.id.clone(),
            });
        }
        let mut rids = vec![team.room_id.clone()];
        let team_rooms = self.store.team_rooms(&team.id).await?;
        rids.extend(
            team_rooms
                .iter()
                .filter(|r| rooms.contains(&r.id))
                .map(|r| r.id.clone()),
        );
        for rid in rids {
            if self.store.subscription(&rid, &user.id).await?.is_none() {
                continue;
            }
            if let Some(room) = self.store.room_by_id(&rid).await? {
                changes.extend(leave_changes(room, user, by));
            }
        }
        Ok(changes)
    }

    /// `teams.listRooms`: the team's rooms the actor may see (all of them with
    /// `view-all-team-channels`, else public ones and those they joined).
    pub async fn list_team_rooms(
        &self,
        actor: &User,
        team: &TeamRef,
        name: Option<&str>,
        auto_join_only: bool,
        page: Page,
    ) -> CoreResult<(Vec<Room>, i64)> {
        let team = self.find_team(team).await?;
        self.check_team_visible(actor, &team).await?;
        let get_all = self
            .team_can(actor, &team, "view-all-team-channels")
            .await?;
        let mine: Vec<String> = if get_all {
            Vec::new()
        } else {
            self.store
                .subscriptions_of_user(&actor.id)
                .await?
                .into_iter()
                .map(|s| s.rid)
                .collect()
        };
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        let rooms: Vec<Room> = self
            .store
            .team_rooms(&team.id)
            .await?
            .into_iter()
            .filter(|r| get_all || r.t == RoomType::Channel || mine.contains(&r.id))
            .filter(|r| name.is_none_or(|n| contains_ci(r.name.as_deref(), n)))
            .filter(|r| !auto_join_only || is_team_default(r))
            .collect();
        Ok(paged(rooms, page))
    }

    async fn check_team_visible(&self, actor: &User, team: &Team) -> CoreResult<()> {
        if team.kind == TEAM_PRIVATE
            && !self.team_can(actor, team, "view-all-teams").await?
            && self.store.team_member(&team.id, &actor.id).await?.is_none()
        {
            return Err(failure("user-not-on-private-team"));
        }
        Ok(())
    }

    /// `teams.listRoomsOfUser`: the team rooms `user_id` joined. The actor must be that user or
    /// hold `view-all-team-channels`.
    pub async fn list_team_rooms_of_user(
        &self,
        actor: &User,
        team: &TeamRef,
        user_id: &str,
        can_delete_only: bool,
        page: Page,
    ) -> CoreResult<(Vec<UserTeamRoom>, i64)> {
        let team = self.find_team(team).await?;
        if actor.id != user_id
            && !self
                .team_can(actor, &team, "view-all-team-channels")
                .await?
        {
            return Err(CoreError::unauthorized());
        }
        self.check_team_visible(actor, &team).await?;
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| failure("invalid-user"))?;
        let main_sub = self.store.subscription(&team.room_id, &user.id).await?;
        let mut out = Vec::new();
        for room in self.store.team_rooms(&team.id).await? {
            if room.is_direct() {
                continue;
            }
            let Some(sub) = self.store.subscription(&room.id, &user.id).await? else {
                continue;
            };
            if can_delete_only {
                let (team_perm, room_perm) = if room.t == RoomType::Channel {
                    ("delete-team-channel", "delete-c")
                } else {
                    ("delete-team-group", "delete-p")
                };
                if !self.authz.has_in(&user, team_perm, main_sub.as_ref())
                    || !self.authz.has_in(&user, room_perm, Some(&sub))
                {
                    continue;
                }
            }
            let is_last_owner = sub.has_role("owner") && {
                let (members, _) = self
                    .store
                    .subscriptions_of_room(&room.id, Page::ALL)
                    .await?;
                members.iter().filter(|m| m.has_role("owner")).count() == 1
            };
            out.push(UserTeamRoom {
                room,
                is_last_owner,
            });
        }
        Ok(paged(out, page))
    }

    /// `teams.addRooms`: moves rooms the actor owns into the team. Needs `add-team-channel`.
    pub async fn add_team_rooms(
        &self,
        actor: &User,
        team: &TeamRef,
        rids: &[String],
    ) -> CoreResult<Vec<Room>> {
        let team = self.find_team(team).await?;
        if !self.team_can(actor, &team, "add-team-channel").await? {
            return Err(CoreError::new(
                ErrorKind::Forbidden,
                "error-no-permission-team-channel",
                "User does not have the permissions required for this action",
            ));
        }
        let mut rooms = Vec::new();
        for rid in rids.iter().filter(|r| !r.is_empty()) {
            if rooms
                .iter()
                .any(|r: &(Room, Option<Subscription>)| r.0.id == *rid)
            {
                continue;
            }
            let room = self
                .store
                .room_by_id(rid)
                .await?
                .ok_or_else(|| failure("invalid-room"))?;
            let sub = self.store.subscription(rid, &actor.id).await?;
            if !self.authz.can_read_room(actor, &room, sub.as_ref()) {
                return Err(failure("invalid-room"));
            }
            rooms.push((room, sub));
        }
        let mut changes = Vec::new();
        let mut out = Vec::new();
        for (mut room, sub) in rooms {
            if room.team_id.is_some() {
                return Err(failure("room-already-on-team"));
            }
            if !sub.as_ref().is_some_and(|s| s.has_role("owner")) {
                return Err(failure("error-no-owner-channel"));
            }
            room.team_id = Some(team.id.clone());
            room.updated_at = Timestamp::now();
            changes.push(Change::UpdateRoom(room.clone()));
            if room.t == RoomType::Channel {
                changes.push(Change::AppendMessage {
                    message: Message::system(
                        &team.room_id,
                        "user-added-room-to-team",
                        room.name.clone().unwrap_or_default(),
                        actor.as_ref(),
                    ),
                    mentioned_user_ids: vec![],
                    mentions_all: false,
                });
            }
            out.push(room);
        }
        self.commit(changes).await?;
        Ok(out)
    }

    /// `teams.removeRoom`: moves a room back to the workspace. Needs `remove-team-channel`.
    pub async fn remove_team_room(
        &self,
        actor: &User,
        team: &TeamRef,
        rid: &str,
    ) -> CoreResult<Room> {
        let team = self.find_team(team).await?;
        if !self.team_can(actor, &team, "remove-team-channel").await? {
            return Err(CoreError::unauthorized());
        }
        let any = self
            .team_can(actor, &team, "view-all-team-channels")
            .await?;
        let mut room = self
            .store
            .room_by_id(rid)
            .await?
            .ok_or_else(|| failure("invalid-room"))?;
        if !any {
            let sub = self.store.subscription(rid, &actor.id).await?;
            if !self.authz.can_read_room(actor, &room, sub.as_ref()) {
                return Err(failure("invalid-room"));
            }
        }
        if room.team_id.as_deref() != Some(team.id.as_str()) || room.team_main == Some(true) {
            return Err(failure("room-not-on-that-team"));
        }
        room.team_id = None;
        room.extra.remove("teamDefault");
        room.updated_at = Timestamp::now();
        let mut changes = vec![Change::UpdateRoom(room.clone())];
        if room.t == RoomType::Channel {
            changes.push(Change::AppendMessage {
                message: Message::system(
                    &team.room_id,
                    "user-removed-room-from-team",
                    room.name.clone().unwrap_or_default(),
                    actor.as_ref(),
                ),
                mentioned_user_ids: vec![],
                mentions_all: false,
            });
        }
        self.commit(changes).await?;
        Ok(room)
    }

    /// `teams.updateRoom`: marks a team room auto-join (`teamDefault`), joining every team
    /// member to it. Needs `edit-team-channel`.
    pub async fn update_team_room(
        &self,
        actor: &User,
        rid: &str,
        is_default: bool,
    ) -> CoreResult<Room> {
        let mut room = self
            .store
            .room_by_id(rid)
            .await?
            .ok_or_else(|| failure("invalid-room"))?;
        let team_id = room
            .team_id
            .clone()
            .ok_or_else(|| failure("room-not-on-team"))?;
        let team = self.find_team(&TeamRef::Id(team_id)).await?;
        if !self.team_can(actor, &team, "edit-team-channel").await? {
            return Err(CoreError::unauthorized());
        }
        if !self
            .team_can(actor, &team, "view-all-team-channels")
            .await?
        {
            let sub = self.store.subscription(rid, &actor.id).await?;
            if !self.authz.can_read_room(actor, &room, sub.as_ref()) {
                return Err(failure("invalid-room"));
            }
        }
        room.extra
            .insert("teamDefault".into(), Value::Bool(is_default));
        room.updated_at = Timestamp::now();
        let mut changes = vec![Change::UpdateRoom(room.clone())];
        if is_default {
            let limit = self.settings.int("API_User_Limit").max(0) as usize;
            let members = self.store.team_members(&team.id).await?;
            let ids: Vec<String> = members
                .iter()
                .take(limit)
                .map(|m| m.user_id.clone())
                .filter(|id| room.u.as_ref().is_none_or(|u| u.id != *id))
                .collect();
            let mut joiners = Vec::new();
            for user in self.store.users_by_ids(&ids).await? {
                if user.active && self.store.subscription(rid, &user.id).await?.is_none() {
                    joiners.push(user);
                }
            }
            if !joiners.is_empty() {
                changes.clear();
                let (subs, tail) = self.bulk_join(room.clone(), &joiners, actor);
                changes.extend(subs.into_iter().map(Change::InsertSubscription));
                changes.extend(tail);
            }
        }
        self.commit(changes).await?;
        Ok(self.store.room_by_id(rid).await?.unwrap_or(room))
    }

    /// Joins several users to a room in one batch: their new subscriptions, then the trailing
    /// changes (one room update with the new member count, then the `au` announcements).
    fn bulk_join(
        &self,
        mut room: Room,
        users: &[User],
        inviter: &User,
    ) -> (Vec<Subscription>, Vec<Change>) {
        let mut subs = Vec::new();
        let mut messages = Vec::new();
        for user in users {
            for c in self.join_changes(room.clone(), user, Some(inviter), true) {
                match c {
                    Change::InsertSubscription(s) => subs.push(s),
                    Change::AppendMessage { .. } => messages.push(c),
                    _ => {}
                }
            }
        }
        if subs.is_empty() {
            return (subs, Vec::new());
        }
        room.users_count += subs.len() as i64;
        room.updated_at = Timestamp::now();
        let mut tail = vec![Change::UpdateRoom(room)];
        tail.extend(messages);
        (subs, tail)
    }

    /// The team membership a join to `room` brings, when `room` is a team's main room (Rocket.Chat's
    /// `addUserToRoom` makes joiners of a main room team members).
    pub(crate) fn team_join_change(room: &Room, user: &User, by: &User) -> Option<Change> {
        let team_id = room
            .team_id
            .as_deref()
            .filter(|_| room.team_main == Some(true))?;
        Some(Change::UpsertTeamMember(TeamMember::new(
            team_id, &user.id, None, by,
        )))
    }

    /// `teams.autocomplete`: up to ten main rooms whose name starts with `name`, public ones and
    /// those the actor joined.
    pub async fn autocomplete_teams(&self, actor: &User, name: &str) -> CoreResult<Vec<Room>> {
        let prefix = name.trim().to_lowercase();
        let mine: Vec<String> = self
            .store
            .subscriptions_of_user(&actor.id)
            .await?
            .into_iter()
            .map(|s| s.rid)
            .collect();
        let (teams, _) = self.store.list_teams(None, Page::ALL).await?;
        let ids: Vec<String> = teams.into_iter().map(|t| t.room_id).collect();
        let mut rooms: Vec<Room> = self
            .store
            .rooms_by_ids(&ids)
            .await?
            .into_iter()
            .filter(|r| r.team_main == Some(true))
            .filter(|r| {
                [r.name.as_deref(), r.fname.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|n| n.to_lowercase().starts_with(&prefix))
            })
            .filter(|r| r.t == RoomType::Channel || mine.contains(&r.id))
            .collect();
        rooms.sort_by(|a, b| (&a.name, &a.fname).cmp(&(&b.name, &b.fname)));
        rooms.truncate(10);
        Ok(rooms)
    }
}

fn is_team_default(r: &Room) -> bool {
    r.extra
        .get("teamDefault")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The changes that take `user` out of `room`, announced as a removal by `by` or a leave.
fn leave_changes(mut room: Room, user: &User, by: Option<&User>) -> Vec<Change> {
    room.users_count = (room.users_count - 1).max(0);
    room.updated_at = Timestamp::now();
    let msg = match by {
        Some(by) => Message::system(&room.id, "ru", user.username.clone(), by.as_ref()),
        None => Message::system(&room.id, "ul", user.username.clone(), user.as_ref()),
    };
    vec![
        Change::DeleteSubscription {
            rid: room.id.clone(),
            user_id: user.id.clone(),
        },
        Change::UpdateRoom(room),
        Change::AppendMessage {
            message: msg,
            mentioned_user_ids: vec![],
            mentions_all: false,
        },
    ]
}
