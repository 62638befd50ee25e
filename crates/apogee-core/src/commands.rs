//! Built-in slash commands (`commands.run`, DDP `slashCommand`). Each command parses its text
//! the way Rocket.Chat's does and runs the use-case of the REST call it mirrors, so permissions
//! and transactions are those use-cases' own. Answers meant only for the caller ("user not
//! found", the help text) are ephemeral: published as [`Event::Ephemeral`], never stored.
//!
//! Where Rocket.Chat answers a failure with an ephemeral message the command does too; where it
//! lets the method's error escape (`/join`, `/kick`, `/mute`, `/create`, …) so does this.

use crate::Core;
use crate::error::{CoreError, CoreResult, ErrorKind};
use crate::events::Event;
use crate::messages::NewMessage;
use crate::rooms::{NewRoom, RoomRef, RoomSettings};
use crate::store::Page;
use apogee_domain::commands;
use apogee_domain::{Room, RoomType, Timestamp, User, dm_room_id};
use serde_json::json;

/// One command as a client sends it.
#[derive(Debug, Clone, Default)]
pub struct CommandCall {
    /// The command without its slash (`join`).
    pub command: String,
    /// Everything after the command (`#general`).
    pub params: String,
    /// The room the command was typed in.
    pub rid: String,
    /// The thread it was typed in, if any.
    pub tmid: Option<String>,
}

/// Rocket.Chat's English texts (`packages/i18n` `en`), `%s` filled with one argument.
mod text {
    pub const CHANNEL_DOESNT_EXIST: &str = "The channel `#%s` does not exist.";
    pub const CHANNEL_ALREADY_EXIST: &str = "The channel `#%s` already exists.";
    pub const CHANNEL_ARCHIVED: &str = "Channel with name `#%s` has been archived successfully";
    pub const CHANNEL_UNARCHIVED: &str = "Channel with name `#%s` has been Unarchived successfully";
    pub const CHANNEL_ALREADY_UNARCHIVED: &str =
        "Channel with name `#%s` is already in Unarchived state";
    pub const DUPLICATE_ARCHIVED: &str = "An archived Channel with name `#%s` exists";
    pub const CHANNEL_CREATED: &str = "Channel `#%s` created.";
    pub const USERS_ADDED: &str = "The users have been added";
    pub const USER_DOESNT_EXIST: &str = "No user exists by the name of `@%s`.";
    pub const USERNAME_DOESNT_EXIST: &str = "The username `%s` doesn't exist.";
    pub const USERNAME_ALREADY_HERE: &str = "`@%s` is already in here.";
    pub const NO_DIRECT_INVITES: &str = "Cannot invite users to direct rooms";
    pub const USERNAME_AND_MESSAGE: &str = "Username and message must not be empty.";
    pub const NOT_IN_ROOM: &str = "You are not in the room `%s`";
    pub const STATUS_CHANGED: &str = "Status message changed successfully.";
    pub const STATUS_DISABLED: &str =
        "Your Rocket.Chat administrator has disabled the changing of status messages";
    pub const USER_LIMIT: &str = "User Limit Exceeded";
    /// `/help`: Rocket.Chat's keyboard shortcuts, one line each.
    pub const HELP: &[(&str, &str)] = &[
        (
            "`%s` - Open Channel / User search",
            "Command (or Ctrl) + p OR Command (or Ctrl) + k",
        ),
        (
            "`%s` - Mark all messages (in all channels) as read",
            "Shift (or Ctrl) + ESC",
        ),
        ("`%s` - Edit previous message", "Up Arrow"),
        (
            "`%s` - Move to the beginning of the message",
            "Command (or Alt) + Left Arrow",
        ),
        (
            "`%s` - Move to the beginning of the message",
            "Command (or Alt) + Up Arrow",
        ),
        (
            "`%s` - Move to the end of the message",
            "Command (or Alt) + Right Arrow",
        ),
        (
            "`%s` - Move to the end of the message",
            "Command (or Alt) + Down Arrow",
        ),
        ("`%s` - New line in message compose input", "Shift + Enter"),
    ];

    pub fn fill(template: &str, arg: &str) -> String {
        template.replacen("%s", arg, 1)
    }
}

/// What an error says to the person who typed the command.
fn said(e: &CoreError) -> String {
    if e.message.is_empty() {
        e.code.clone()
    } else {
        e.message.clone()
    }
}

/// Rocket.Chat's `String.replace('@', '')`: the first `@` only.
fn without_first(s: &str, c: char) -> String {
    s.replacen(c, "", 1)
}

/// The first run of characters a room name may hold (Rocket.Chat matches its
/// `UTF8_Channel_Names_Validation` pattern, `[0-9a-zA-Z-_.]+`, against the text).
fn first_room_name(s: &str) -> Option<&str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let start = s.find(ok)?;
    let rest = &s[start..];
    let end = rest.find(|c: char| !ok(c)).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// `--flag` words anywhere in the text (`/create name --private`).
fn has_flag(s: &str, flag: &str) -> bool {
    s.split("--").skip(1).any(|w| {
        let word: String = w
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        word == flag
    })
}

/// How `commands.list` orders the catalogue: by one of a command's text fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandSort {
    Command,
    Description,
    Params,
}

/// The catalogue filtered (`command` equal to the query's), sorted (Rocket.Chat's default sort
/// key, `name`, is no field of a command, so the default keeps registration order) and paged;
/// with the number of matches before paging.
pub fn list_commands(
    command: Option<&str>,
    sort: Option<(CommandSort, bool)>,
    page: Page,
) -> (Vec<&'static commands::SlashCommand>, i64) {
    let mut found: Vec<&commands::SlashCommand> = commands::COMMANDS
        .iter()
        .filter(|c| command.is_none_or(|q| c.command == q))
        .collect();
    let total = found.len() as i64;
    if let Some((field, descending)) = sort {
        let key = |c: &commands::SlashCommand| match field {
            CommandSort::Command => Some(c.command),
            CommandSort::Description => Some(c.description),
            CommandSort::Params => c.params,
        };
        found.sort_by(|a, b| {
            let order = key(a).cmp(&key(b));
            if descending { order.reverse() } else { order }
        });
    }
    let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let take = usize::try_from(page.count).unwrap_or(usize::MAX);
    (found.into_iter().skip(skip).take(take).collect(), total)
}

impl Core {
    /// Runs a built-in slash command typed by `actor` in room `call.rid`.
    pub async fn run_command(&self, actor: &User, call: CommandCall) -> CoreResult<()> {
        let Some(cmd) = commands::find(&call.command).filter(|c| c.command == call.command) else {
            return Err(CoreError::bad(
                "error-invalid-command",
                "Invalid Command Provided",
            ));
        };
        self.command_room(actor, &call).await?;
        let p = call.params.as_str();
        let rid = call.rid.as_str();
        match cmd.command {
            "join" => self.cmd_join(actor, rid, p).await,
            "leave" | "part" => {
                if let Err(e) = self.leave_room(actor, &RoomRef::Id(rid.into())).await {
                    self.ephemeral(actor, rid, said(&e));
                }
                Ok(())
            }
            "topic" => self.cmd_topic(actor, rid, p).await,
            "invite" => self.cmd_invite(actor, rid, p).await,
            "invite-all-to" | "invite-all-from" => {
                self.cmd_invite_all(actor, rid, p, cmd.command == "invite-all-to")
                    .await
            }
            "kick" => self.cmd_kick(actor, rid, p).await,
            "federation" => self.cmd_federation(actor, rid, p).await,
            "mute" | "unmute" => self.cmd_mute(actor, rid, p, cmd.command == "mute").await,
            "me" if !p.trim().is_empty() => self.say(actor, &call, format!("_{p}_")).await,
            "me" => Ok(()),
            "msg" => self.cmd_msg(actor, rid, p).await,
            "create" => self.cmd_create(actor, rid, p).await,
            "archive" => self.cmd_set_archived(actor, rid, p, true).await,
            "unarchive" => self.cmd_set_archived(actor, rid, p, false).await,
            "status" => self.cmd_status(actor, rid, p).await,
            "hide" => self.cmd_hide(actor, rid, p).await,
            "help" => {
                let lines: Vec<String> = text::HELP
                    .iter()
                    .map(|(t, keys)| format!("\n{}", text::fill(t, keys)))
                    .collect();
                self.ephemeral(actor, rid, lines.concat());
                Ok(())
            }
            "gimme" => self.say(actor, &call, format!("༼ つ ◕_◕ ༽つ {p}")).await,
            "lennyface" => self.say(actor, &call, format!("{p} ( ͡° ͜ʖ ͡°)")).await,
            "shrug" => self.say(actor, &call, format!("{p} ¯\\_(ツ)_/¯")).await,
            "tableflip" => self.say(actor, &call, format!("{p} (╯°□°）╯︵ ┻━┻")).await,
            "unflip" => {
                self.say(actor, &call, format!("{p} ┬─┬ ノ( ゜-゜ノ)"))
                    .await
            }
            other => Err(CoreError::internal(&format!("command {other} not wired"))),
        }
    }

    /// `commands.preview`: built-in commands offer no previews, so this only checks what
    /// running the command would (the command, the room, the thread).
    pub async fn command_preview(&self, actor: &User, call: CommandCall) -> CoreResult<()> {
        if commands::find(&call.command).is_none() {
            return Err(CoreError::bad(
                "error-invalid-command",
                "Invalid Command Provided",
            ));
        }
        self.command_room(actor, &call).await.map(|_| ())
    }

    /// The room a command runs in: the caller must be able to read it (Rocket.Chat's
    /// `canAccessRoomId`, 403), and a thread must be one of its messages.
    async fn command_room(&self, actor: &User, call: &CommandCall) -> CoreResult<Room> {
        let room = self.store.room_by_id(&call.rid).await?;
        let room = match room {
            Some(room) => {
                let sub = self.store.subscription(&room.id, &actor.id).await?;
                self.authz
                    .can_read_room(actor, &room, sub.as_ref())
                    .then_some(room)
            }
            None => None,
        };
        let room = room.ok_or_else(|| {
            CoreError::new(
                ErrorKind::Forbidden,
                "",
                "User does not have access to this room",
            )
        })?;
        if let Some(tmid) = &call.tmid {
            let thread = self.store.message_by_id(tmid).await?;
            if thread.is_none_or(|m| m.rid != room.id) {
                return Err(CoreError::bad("", "Invalid thread."));
            }
        }
        Ok(room)
    }

    /// Tells only `to` something in room `rid`, as Rocket.Chat's ephemeral messages do.
    pub(crate) fn ephemeral(&self, to: &User, rid: &str, msg: String) {
        let now = Timestamp::now();
        let md = apogee_domain::markdown::parse(&msg);
        self.publish(Event::Ephemeral {
            user_id: to.id.clone(),
            message: json!({
                "groupable": false,
                "msg": msg,
                "md": md,
                "_id": now.millis().to_string(),
                "rid": rid,
                "ts": now,
                "_updatedAt": now,
                "u": {"_id": "rocket.cat", "username": "rocket.cat"},
                "private": true,
            }),
        });
    }

    /// Sends `msg` as the caller in the command's room and thread.
    async fn say(&self, actor: &User, call: &CommandCall, msg: String) -> CoreResult<()> {
        let new = NewMessage {
            rid: call.rid.clone(),
            msg,
            tmid: call.tmid.clone(),
            ..Default::default()
        };
        self.send_message(actor, new).await.map(|_| ())
    }

    /// A `#name` (or bare name) parameter, else the current room.
    async fn named_or_current(&self, rid: &str, p: &str) -> CoreResult<(String, Option<Room>)> {
        let name = p.trim();
        if name.is_empty() {
            let room = self.store.room_by_id(rid).await?;
            let name = room
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default();
            return Ok((name, room));
        }
        let name = without_first(name, '#');
        let room = self.store.room_by_name(&name).await?;
        Ok((name, room))
    }

    async fn cmd_join(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        let channel = p.trim();
        if channel.is_empty() {
            return Ok(());
        }
        let channel = without_first(channel, '#');
        let room = self
            .store
            .room_by_name(&channel)
            .await?
            .filter(|r| r.t == RoomType::Channel);
        let Some(room) = room else {
            let msg = text::fill(text::CHANNEL_DOESNT_EXIST, &channel);
            self.ephemeral(actor, rid, msg);
            return Ok(());
        };
        if self
            .store
            .subscription(&room.id, &actor.id)
            .await?
            .is_some()
        {
            return Err(CoreError::bad(
                "error-user-already-in-room",
                "You are already in the channel",
            ));
        }
        self.join_room(actor, &RoomRef::Id(room.id), None)
            .await
            .map(|_| ())
    }

    async fn cmd_topic(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        let sub = self.store.subscription(rid, &actor.id).await?;
        // As Rocket.Chat: without `edit-room` the command does nothing.
        if !self.authz.has_in(actor, "edit-room", sub.as_ref()) {
            return Ok(());
        }
        let settings = RoomSettings {
            topic: Some(p.to_string()),
            ..Default::default()
        };
        self.update_room(actor, &RoomRef::Id(rid.into()), settings)
            .await
            .map(|_| ())
    }

    /// `/federation invite @user:server…` (into this room) or `/federation dm @user:server…`
    /// (a federated DM with them); what fails is told to the caller alone.
    async fn cmd_federation(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        let mut words = p.split_whitespace();
        let sub = words.next().unwrap_or("");
        let users: Vec<String> = words.map(str::to_string).collect();
        if users.is_empty() || !matches!(sub, "invite" | "dm") {
            self.ephemeral(
                actor,
                rid,
                "Usage: /federation invite @user:server, /federation dm @user:server".into(),
            );
            return Ok(());
        }
        let outcome = if sub == "dm" {
            self.create_direct(actor, &users).await.map(|_| ())
        } else {
            let mut result = Ok(());
            for mxid in &users {
                result = self.invite_remote_user(actor, rid, mxid).await.map(|_| ());
                if result.is_err() {
                    break;
                }
            }
            result
        };
        if let Err(e) = outcome {
            self.ephemeral(actor, rid, said(&e));
        }
        Ok(())
    }

    async fn cmd_invite(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        let usernames: Vec<String> = p
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(|u| without_first(u, '@'))
            .filter(|u| !u.is_empty())
            .collect();
        if usernames.is_empty() {
            return Ok(());
        }
        let mut users = Vec::new();
        for name in &usernames {
            if let Some(user) = self.store.user_by_username(name).await? {
                users.push(user);
            }
        }
        if users.is_empty() {
            let msg = text::fill(text::USER_DOESNT_EXIST, &usernames.join(" @"));
            self.ephemeral(actor, rid, msg);
            return Ok(());
        }
        let (members, _) = self.store.subscriptions_of_room(rid, Page::ALL).await?;
        let (present, joining): (Vec<User>, Vec<User>) = users
            .into_iter()
            .partition(|u| members.iter().any(|m| m.u.id == u.id));
        for user in present {
            let msg = text::fill(text::USERNAME_ALREADY_HERE, &user.username);
            self.ephemeral(actor, rid, msg);
        }
        if joining.is_empty() {
            return Ok(());
        }
        let room = self.find_room(&RoomRef::Id(rid.into())).await?;
        let refused = if room.is_direct() {
            Some(text::NO_DIRECT_INVITES.to_string())
        } else {
            let here = RoomRef::Id(rid.into());
            let added = self.add_users(actor, &here, &joining).await;
            added.err().map(|e| said(&e))
        };
        if let Some(msg) = refused {
            self.ephemeral(actor, rid, msg);
        }
        Ok(())
    }

    /// `/invite-all-to #room` adds the current room's members to `#room` (created, of the
    /// current room's type, when it does not exist); `/invite-all-from #room` adds `#room`'s
    /// members to the current room. The caller must be able to read the room copied from.
    async fn cmd_invite_all(&self, actor: &User, rid: &str, p: &str, to: bool) -> CoreResult<()> {
        let channel = without_first(p.trim(), '#');
        if channel.is_empty() {
            return Ok(());
        }
        let current = self.store.room_by_id(rid).await?;
        let named = match self.store.room_by_name(&channel).await? {
            // A room the caller cannot read is one they may not copy members from or to.
            Some(room) => {
                let sub = self.store.subscription(&room.id, &actor.id).await?;
                self.authz
                    .can_read_room(actor, &room, sub.as_ref())
                    .then_some(room)
            }
            None => None,
        };
        let (base, target) = if to {
            (current, named)
        } else {
            (named, current)
        };
        let Some(base) = base else {
            let msg = text::fill(text::CHANNEL_DOESNT_EXIST, &channel);
            self.ephemeral(actor, rid, msg);
            return Ok(());
        };
        let (members, total) = self
            .store
            .subscriptions_of_room(&base.id, Page::ALL)
            .await?;
        if total > self.settings.int("API_User_Limit") {
            self.ephemeral(actor, rid, text::USER_LIMIT.to_string());
            return Ok(());
        }
        let outcome = match target {
            None if base.t != RoomType::Direct => {
                let new = NewRoom {
                    name: channel.clone(),
                    members: members.iter().map(|m| m.u.username.clone()).collect(),
                    ..Default::default()
                };
                let created = self.create_room(actor, base.t, new).await;
                created.map(|_| Some(text::fill(text::CHANNEL_CREATED, &channel)))
            }
            None => Err(CoreError::room_not_found()),
            Some(target) if target.is_direct() => Err(CoreError::bad("", text::NO_DIRECT_INVITES)),
            Some(target) => {
                let ids: Vec<String> = members.iter().map(|m| m.u.id.clone()).collect();
                let users = self.store.users_by_ids(&ids).await?;
                let target = RoomRef::Id(target.id);
                let added = self.add_users(actor, &target, &users).await;
                added.map(|_| None)
            }
        };
        match outcome {
            Ok(created) => {
                if let Some(msg) = created {
                    self.ephemeral(actor, rid, msg);
                }
                self.ephemeral(actor, rid, text::USERS_ADDED.to_string());
            }
            Err(e) => self.ephemeral(actor, rid, said(&e)),
        }
        Ok(())
    }

    async fn cmd_kick(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        let username = without_first(p.trim(), '@');
        if username.is_empty() {
            return Ok(());
        }
        let Some(target) = self.store.user_by_username(&username).await? else {
            let msg = text::fill(text::USERNAME_DOESNT_EXIST, &username);
            self.ephemeral(actor, rid, msg);
            return Ok(());
        };
        self.kick(actor, &RoomRef::Id(rid.into()), &target)
            .await
            .map(|_| ())
    }

    async fn cmd_mute(&self, actor: &User, rid: &str, p: &str, muted: bool) -> CoreResult<()> {
        let username = without_first(p.trim(), '@');
        if username.is_empty() {
            return Ok(());
        }
        if self.store.user_by_username(&username).await?.is_none() {
            let msg = text::fill(text::USERNAME_DOESNT_EXIST, &username);
            self.ephemeral(actor, rid, msg);
            return Ok(());
        }
        self.set_muted(actor, rid, None, Some(&username), muted)
            .await
            .map(|_| ())
    }

    async fn cmd_msg(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        let trimmed = p.trim();
        let Some((to, msg)) = trimmed.split_once(' ') else {
            self.ephemeral(actor, rid, text::USERNAME_AND_MESSAGE.to_string());
            return Ok(());
        };
        let username = without_first(to, '@');
        if self.store.user_by_username(&username).await?.is_none() {
            let msg = text::fill(text::USERNAME_DOESNT_EXIST, to);
            self.ephemeral(actor, rid, msg);
            return Ok(());
        }
        let dm = self.create_direct(actor, &[username]).await?;
        let new = NewMessage {
            rid: dm.id,
            msg: msg.to_string(),
            ..Default::default()
        };
        self.send_message(actor, new).await.map(|_| ())
    }

    async fn cmd_create(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        let Some(name) = first_room_name(p.trim()) else {
            return Ok(());
        };
        if self.store.room_by_name(name).await?.is_some() {
            let msg = text::fill(text::CHANNEL_ALREADY_EXIST, name);
            self.ephemeral(actor, rid, msg);
            return Ok(());
        }
        let t = if has_flag(p, "private") {
            RoomType::Group
        } else {
            RoomType::Channel
        };
        let new = NewRoom {
            name: name.to_string(),
            ..Default::default()
        };
        self.create_room(actor, t, new).await.map(|_| ())
    }

    /// `/archive` and `/unarchive`: the current or named room, answered to the caller alone.
    async fn cmd_set_archived(
        &self,
        actor: &User,
        rid: &str,
        p: &str,
        archive: bool,
    ) -> CoreResult<()> {
        let (channel, room) = self.named_or_current(rid, p).await?;
        let Some(room) = room else {
            let msg = text::fill(text::CHANNEL_DOESNT_EXIST, &channel);
            self.ephemeral(actor, rid, msg);
            return Ok(());
        };
        // Direct messages cannot be archived: Rocket.Chat ignores `/archive` there and refuses
        // `/unarchive` with an error.
        if room.is_direct() {
            if archive {
                return Ok(());
            }
            return Err(CoreError::bad(
                "error-room-type-not-unarchivable",
                format!("Room type: {} can not be unarchived", room.t.code()),
            ));
        }
        let (unchanged, done) = if archive {
            (text::DUPLICATE_ARCHIVED, text::CHANNEL_ARCHIVED)
        } else {
            (text::CHANNEL_ALREADY_UNARCHIVED, text::CHANNEL_UNARCHIVED)
        };
        if room.archived == archive {
            self.ephemeral(actor, rid, text::fill(unchanged, &channel));
            return Ok(());
        }
        self.set_archived(actor, &RoomRef::Id(room.id), archive)
            .await?;
        self.ephemeral(actor, rid, text::fill(done, &channel));
        Ok(())
    }

    async fn cmd_status(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        match self.set_status(actor, None, Some(p)).await {
            Ok(_) => {
                self.ephemeral(actor, rid, text::STATUS_CHANGED.to_string());
                Ok(())
            }
            Err(e) => {
                if e.code == "error-not-allowed" {
                    self.ephemeral(actor, rid, text::STATUS_DISABLED.to_string());
                }
                Err(e)
            }
        }
    }

    /// `/hide [#room|@user]`: hides the room (or the DM with that user) from the caller's list.
    async fn cmd_hide(&self, actor: &User, rid: &str, p: &str) -> CoreResult<()> {
        let param = p.trim();
        let mut target = rid.to_string();
        if !param.is_empty() {
            let stripped = param
                .replacen(['#', '@'], "", 1)
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string();
            let room = if param.starts_with('#') {
                self.store.room_by_name(&stripped).await?
            } else {
                match self.store.user_by_username(&stripped).await? {
                    Some(other) => {
                        let id = dm_room_id(&[actor.id.as_str(), other.id.as_str()]);
                        self.store.room_by_id(&id).await?
                    }
                    None => None,
                }
            };
            let Some(room) = room else {
                let msg = text::fill(text::CHANNEL_DOESNT_EXIST, param);
                self.ephemeral(actor, rid, msg);
                return Ok(());
            };
            if self
                .store
                .subscription(&room.id, &actor.id)
                .await?
                .is_none()
            {
                let msg = text::fill(text::NOT_IN_ROOM, param);
                self.ephemeral(actor, rid, msg);
                return Ok(());
            }
            target = room.id;
        }
        if let Err(e) = self
            .update_own_subscription(actor, &target, Some(false), None)
            .await
        {
            self.ephemeral(actor, rid, said(&e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_rocket_chat() {
        assert_eq!(first_room_name("#my-room --private"), Some("my-room"));
        assert_eq!(first_room_name("  "), None);
        assert!(has_flag("name --private", "private"));
        assert!(!has_flag("name --privately", "private"));
        assert!(!has_flag("private", "private"));
        assert_eq!(without_first("@@ann", '@'), "@ann");
        assert_eq!(
            text::fill(text::CHANNEL_DOESNT_EXIST, "x"),
            "The channel `#x` does not exist."
        );
    }

    #[test]
    fn lists_filter_sort_and_page() {
        let all = Page {
            offset: 0,
            count: 100,
        };
        let (every, total) = list_commands(None, None, all);
        assert_eq!(every.len() as i64, total);
        assert_eq!(total, commands::COMMANDS.len() as i64);
        assert_eq!(every[0].command, commands::COMMANDS[0].command);
        let (one, total) = list_commands(Some("kick"), None, all);
        assert_eq!((one.len(), total), (1, 1));
        let (none, total) = list_commands(Some("Kick"), None, all);
        assert_eq!(
            (none.len(), total),
            (0, 0),
            "the filter is exact, as Rocket.Chat's"
        );
        let page = Page {
            offset: 1,
            count: 2,
        };
        let (sorted, total) = list_commands(None, Some((CommandSort::Command, false)), page);
        assert_eq!(total, commands::COMMANDS.len() as i64);
        let names: Vec<&str> = sorted.iter().map(|c| c.command).collect();
        assert_eq!(names, ["create", "federation"]);
        // Commands without a parameter hint sort first.
        let (by_params, _) = list_commands(None, Some((CommandSort::Params, false)), all);
        assert!(by_params[0].params.is_none());
    }
}
