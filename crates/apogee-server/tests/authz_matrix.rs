//! The authorization matrix: every REST endpoint the router registers × eight kinds of caller,
//! with the expected allow/deny, generated from one table (`ROWS`) and run on SQLite and
//! PostgreSQL against the real binary.
//!
//! - The table must cover the router: an endpoint of `apogee_rc::endpoints()` without a row, or a
//!   row naming an endpoint that no longer exists, fails the test.
//! - "Deny" is Rocket.Chat's refusal for authorization: 401/403, or a 4xx whose error is one of
//!   `DENIALS` (e.g. `error-not-allowed`, or a private room that "does not exist" for a non-member).
//!   "Allow" is anything else below 500: the call may still fail validation, but not for who
//!   made it. A 5xx is always a failure.
//! - Fixtures are built once per backend: a public channel `C` and a private group `G` owned by
//!   `owner`, where `moderator` is moderator and `member` a plain member; a DM `D` between
//!   `member` and `owner`; a private team `T` with the same roles; messages by `member`. `user`
//!   and `nonmember` are plain users in none of them; `guest` holds only the `guest` role.
//! - Rows that change or destroy what they touch ask for a `Fresh` object, made anew for each
//!   caller just before the call, so rows never interfere.

mod common;

use common::{Auth, Backend, PASSWORD, Server, backends};
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// The callers, in report order.
const ACTORS: [&str; 8] = [
    "anon",
    "user",
    "nonmember",
    "member",
    "moderator",
    "owner",
    "admin",
    "guest",
];

/// Error codes that mean "not for you" (besides any 401/403).
const DENIALS: &[&str] = &[
    "error-not-allowed",
    "error-action-not-allowed",
    "unauthorized",
    "error-unauthorized",
    "not-authorized",
    "error-not-authorized",
    "error-room-not-found",
    "error-permission-denied",
    "not_authorized",
    "not-allowed",
    // Not being in the room (or team) the call is about.
    "error-user-not-in-room",
    "error-invalid-subscription",
    "error-subscription-not-found",
    "error-invalid-room",
    "member-does-not-exist",
    "user-not-on-private-team",
    // Someone else's upload does not exist for the caller.
    "invalid-file",
];

/// An object made for one call only, so destructive rows do not interfere.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fresh {
    No,
    /// `$F`/`$FN`: a public channel owned by `owner`, `moderator` moderator, `member` member.
    Channel,
    /// The same channel, archived.
    Archived,
    /// The same group, archived.
    ArchivedGroup,
    /// `$F`/`$FN`: a private group set up like `Channel`.
    Group,
    /// `$FM`: a message by `member` in `C`.
    Message,
    /// `$FM`: a message by `owner` in `C`.
    OwnersMessage,
    /// `$FU`/`$FUN`: a plain user made by the admin.
    User,
    /// `$FT`/`$FTN`: a public team owned by `owner` (`moderator` moderator, `member` member),
    /// `$FTC` a channel in it, `$FC` a channel outside it with the same roles.
    Team,
    /// `$FR`: a custom role.
    Role,
    /// `$FS`: a custom user status.
    Status,
    /// `$FI`: an invite (by `owner`) to a fresh channel.
    Invite,
    /// `$FD`: a DM between `member` and a fresh user.
    Dm,
    /// `$FILE`: a file `member` uploaded to `G`, not yet confirmed.
    Upload,
    /// `$FW`/`$FWT`: an incoming webhook (by the admin, posting as the admin to a fresh
    /// channel) and its token.
    Webhook,
    /// `$FMR`: a message by `member` in `C`, reported by `owner` (open report).
    Reported,
    /// `$FE`: a custom emoji (by the admin).
    Emoji,
    /// The caller's credentials are a fresh login (for `logout`).
    Session,
    /// Nothing made, but the call ends all the caller's sessions: run after every other row.
    Last,
}

use Fresh::*;

type Row = (
    &'static str,
    &'static str,
    &'static str,
    Fresh,
    &'static str,
);

/// `(endpoint "METHOD /path" as registered, request path or "" for the same, body (query for
/// GET; `multipart` for a form with one small file), fresh object, who is allowed)`.
///
/// Placeholders: `$C $CN $G $GN $D` (rooms), `$MC $MG $MD` (messages by `member`), `$T $TN`
/// (team), `$INV` (an invite to `G`), `$GFILE` (a file in `G`), `$ME $MEN` (the caller),
/// `$MEMBER $MODERATOR $OWNER $TARGET $TARGETN` (user ids/names), `$X` (unique per call) and the
/// fresh ones above. Allowed: actor names, `all`, `auth` (all but anon), `in` (member,
/// moderator, owner), `mods` (moderator, owner), `none`; `-name` removes one.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Server and public information.
    ("GET /api/info", "", "", No, "all"),
    ("GET /api/v1/info", "", "", No, "all"),
    ("GET /api/v1/settings.public", "", "", No, "all"),
    ("GET /api/v1/settings.oauth", "", "", No, "all"),
    ("GET /api/v1/service.configurations", "", "", No, "all"),
    ("GET /api/v1/licenses.info", "", "", No, "auth"),
    ("GET /api/v1/licenses.maxActiveUsers", "", "", No, "auth"),
    ("GET /api/v1/statistics", "", "", No, "admin"),
    ("GET /api/v1/statistics.list", "", "", No, "admin"),
    ("GET /api/v1/directory", "", r#"{"type":"users","text":"a"}"#, No, "auth"),
    ("GET /api/v1/spotlight", "", r#"{"query":"a"}"#, No, "auth"),
    ("GET /api/v1/settings", "", "", No, "auth"),
    ("GET /api/v1/settings/{id}", "/api/v1/settings/Site_Name", "", No, "admin"),
    ("POST /api/v1/settings/{id}", "/api/v1/settings/Site_Name", r#"{"value":"Matrix"}"#, No, "admin"),
    ("GET /api/v1/permissions.listAll", "", "", No, "auth"),
    ("POST /api/v1/permissions.update", "", r#"{"permissions":[{"_id":"view-logs","roles":["admin"]}]}"#, No, "admin"),
    ("GET /api/v1/audit.events", "", "", No, "admin"),
    ("GET /api/v1/audit.verify", "", "", No, "admin"),
    ("GET /api/v1/custom-sounds.list", "", "", No, "auth"),
    ("GET /api/v1/custom-sounds.getOne", "", r#"{"_id":"nope"}"#, No, "auth"),
    ("POST /api/v1/method.call/{method}", "/api/v1/method.call/getUserRoles", r#"{"message":"{\"msg\":\"method\",\"id\":\"1\",\"method\":\"getUserRoles\",\"params\":[]}"}"#, No, "auth"),
    ("POST /api/v1/method.callAnon/{method}", "/api/v1/method.callAnon/getUserRoles", r#"{"message":"{\"msg\":\"method\",\"id\":\"1\",\"method\":\"getUserRoles\",\"params\":[]}"}"#, No, "all"),
    // Roles and permissions.
    ("GET /api/v1/roles.list", "", "", No, "auth"),
    ("GET /api/v1/roles.sync", "", r#"{"updatedSince":"2020-01-01T00:00:00.000Z"}"#, No, "auth"),
    ("GET /api/v1/roles.getUsersInPublicRoles", "", "", No, "auth"),
    ("GET /api/v1/roles.getUsersInRole", "", r#"{"role":"admin"}"#, No, "admin"),
    ("POST /api/v1/roles.create", "", r#"{"name":"role$X"}"#, No, "admin"),
    ("POST /api/v1/roles.update", "", r#"{"roleId":"$FR","name":"role$X"}"#, Role, "admin"),
    ("POST /api/v1/roles.delete", "", r#"{"roleId":"$FR"}"#, Role, "admin"),
    ("POST /api/v1/roles.addUserToRole", "", r#"{"roleId":"admin","username":"$FUN"}"#, User, "admin"),
    // A room owner or moderator cannot make someone owner through roles.*.
    ("POST /api/v1/roles.addUserToRole", "", r#"{"roleId":"owner","username":"member","roomId":"$F"}"#, Channel, "admin"),
    ("POST /api/v1/roles.removeUserFromRole", "", r#"{"roleId":"user","username":"$FUN"}"#, User, "admin"),
    ("POST /api/v1/roles.removeUserFromRole", "", r#"{"roleId":"moderator","username":"moderator","scope":"$F"}"#, Channel, "admin"),
    // Accounts.
    ("POST /api/v1/login", "", r#"{"user":"target","password":"correct horse battery staple"}"#, No, "all"),
    ("POST /api/v1/logout", "", "", Session, "auth"),
    ("GET /api/v1/logout", "", "", Session, "auth"),
    ("GET /api/v1/me", "", "", No, "auth"),
    ("POST /api/v1/users.register", "", r#"{"username":"reg$X","email":"reg$X@example.com","pass":"correct horse battery staple","name":"R"}"#, No, "all"),
    ("POST /api/v1/users.create", "", r#"{"username":"new$X","email":"new$X@example.com","password":"correct horse battery staple","name":"N"}"#, No, "admin"),
    ("POST /api/v1/users.update", "", r#"{"userId":"$FU","data":{"name":"Renamed"}}"#, User, "admin"),
    // Nobody but an admin grants themselves a role.
    ("POST /api/v1/users.update", "", r#"{"userId":"$ME","data":{"roles":["user","admin"]}}"#, No, "admin -anon"),
    ("POST /api/v1/users.delete", "", r#"{"userId":"$FU"}"#, User, "admin"),
    ("GET /api/v1/users.info", "", r#"{"userId":"$TARGET"}"#, No, "auth"),
    ("GET /api/v1/users.list", "", "", No, "auth"),
    ("POST /api/v1/users.setStatus", "", r#"{"status":"online","message":"here"}"#, No, "auth"),
    ("POST /api/v1/users.setStatus", "", r#"{"userId":"$TARGET","status":"away"}"#, No, "admin"),
    ("GET /api/v1/users.getStatus", "", "", No, "auth"),
    ("GET /api/v1/users.presence", "", "", No, "auth"),
    ("GET /api/v1/users.getPresence", "", r#"{"userId":"$TARGET"}"#, No, "auth"),
    ("POST /api/v1/users.setActiveStatus", "", r#"{"userId":"$FU","activeStatus":false}"#, User, "admin"),
    ("GET /api/v1/users.getPreferences", "", "", No, "auth"),
    ("POST /api/v1/users.setPreferences", "", r#"{"data":{"language":"en"}}"#, No, "auth"),
    ("POST /api/v1/users.setPreferences", "", r#"{"userId":"$TARGET","data":{"language":"en"}}"#, No, "admin"),
    ("POST /api/v1/users.createToken", "", r#"{"userId":"$TARGET"}"#, No, "admin"),
    ("POST /api/v1/users.forgotPassword", "", r#"{"email":"target@example.com"}"#, No, "all"),
    ("POST /api/v1/users.enableTotp", "", "", No, "auth"),
    ("POST /api/v1/users.validateTotp", "", r#"{"code":"000000"}"#, No, "auth"),
    ("POST /api/v1/users.disableTotp", "", r#"{"code":"000000"}"#, No, "auth"),
    ("POST /api/v1/users.regenerateTotpCodes", "", r#"{"code":"000000"}"#, No, "auth"),
    ("GET /api/v1/users.totpCodesRemaining", "", "", No, "auth"),
    ("POST /api/v1/users.resetTOTP", "", r#"{"userId":"$FU"}"#, User, "admin"),
    ("POST /api/v1/users.2fa.enableEmail", "", "", No, "auth"),
    ("POST /api/v1/users.2fa.disableEmail", "", "", No, "auth"),
    ("POST /api/v1/users.2fa.sendEmailCode", "", r#"{"emailOrUsername":"target"}"#, No, "all"),
    // Credentials: personal access tokens, device sessions, password policy.
    ("GET /api/v1/pw.getPolicy", "", "", No, "all"),
    ("GET /api/v1/pw.getPolicyReset", "", r#"{"token":"not-a-reset-token"}"#, No, "none"),
    ("POST /api/v1/users.updateOwnBasicInfo", "", r#"{"data":{"name":"Own $X"}}"#, No, "auth"),
    ("POST /api/v1/users.generatePersonalAccessToken", "", r#"{"tokenName":"t$X"}"#, No, "auth -guest"),
    ("POST /api/v1/users.regeneratePersonalAccessToken", "", r#"{"tokenName":"none-such"}"#, No, "auth -guest"),
    ("POST /api/v1/users.removePersonalAccessToken", "", r#"{"tokenName":"none-such"}"#, No, "auth -guest"),
    ("GET /api/v1/users.getPersonalAccessTokens", "", "", No, "auth -guest"),
    ("GET /api/v1/sessions/list", "", "", No, "auth"),
    ("GET /api/v1/sessions/info", "", r#"{"sessionId":"none-such"}"#, No, "auth"),
    ("POST /api/v1/sessions/logout.me", "", r#"{"sessionId":"none-such"}"#, No, "auth"),
    ("GET /api/v1/sessions/list.all", "", "", No, "admin"),
    ("GET /api/v1/sessions/info.admin", "", r#"{"sessionId":"none-such"}"#, No, "admin"),
    ("POST /api/v1/sessions/logout", "", r#"{"sessionId":"none-such"}"#, No, "admin"),
    ("POST /api/v1/users.setAvatar", "", "multipart", No, "auth"),
    ("POST /api/v1/users.resetAvatar", "", "", No, "auth"),
    ("POST /api/v1/users.resetAvatar", "", r#"{"userId":"$TARGET"}"#, No, "admin"),
    ("GET /api/v1/users.getAvatar", "", r#"{"username":"target"}"#, No, "auth"),
    ("GET /avatar/{username}", "/avatar/target", "", No, "all"),
    ("GET /avatar/room/{rid}", "/avatar/room/$G", "", No, "all"),
    ("POST /api/v1/users.resetE2EKey", "", "", Last, "auth"),
    ("POST /api/v1/users.resetE2EKey", "", r#"{"userId":"$TARGET"}"#, No, "admin"),
    // Custom user statuses.
    // Integrations (admin: manage-incoming/outgoing-integrations); webhooks take their token.
    ("POST /api/v1/integrations.create", "", r##"{"type":"webhook-incoming","name":"i$X","enabled":true,"username":"$MEN","channel":"#$CN","scriptEnabled":false}"##, No, "admin"),
    ("PUT /api/v1/integrations.update", "", r##"{"type":"webhook-incoming","integrationId":"$FW","name":"i$X","enabled":true,"username":"admin","channel":"#$CN","scriptEnabled":false}"##, Webhook, "admin"),
    ("POST /api/v1/integrations.remove", "", r#"{"type":"webhook-incoming","integrationId":"$FW"}"#, Webhook, "admin"),
    ("GET /api/v1/integrations.get", "", r#"{"integrationId":"$FW"}"#, Webhook, "admin"),
    ("GET /api/v1/integrations.list", "", "", No, "admin"),
    ("GET /api/v1/integrations.history", "", r#"{"id":"$FW"}"#, Webhook, "admin"),
    ("GET /api/v1/channels.getIntegrations", "", r#"{"roomId":"$C"}"#, No, "admin"),
    ("GET /api/v1/groups.getIntegrations", "", r#"{"roomId":"$G"}"#, No, "admin"),
    ("POST /hooks/{integration_id}/{token}", "/hooks/$FW/$FWT", r#"{"text":"hook"}"#, Webhook, "all"),
    ("POST /hooks/{integration_id}/{token}", "/hooks/$FW/wrong$X", r#"{"text":"hook"}"#, Webhook, "none"),
    ("GET /hooks/{integration_id}/{token}", "/hooks/$FW/$FWT", r#"{"text":"hook"}"#, Webhook, "all"),
    ("POST /hooks/{integration_id}/{user_id}/{token}", "/hooks/$FW/$ME/$FWT", r#"{"text":"hook"}"#, Webhook, "all"),
    ("GET /hooks/{integration_id}/{user_id}/{token}", "/hooks/$FW/$ME/wrong$X", r#"{"text":"hook"}"#, Webhook, "none"),
    // Moderation: anyone reports what they can read; the console and its actions are admin's.
    ("POST /api/v1/chat.reportMessage", "", r#"{"messageId":"$FM","description":"spam"}"#, Message, "auth -guest"),
    ("POST /api/v1/moderation.reportUser", "", r#"{"userId":"$MEMBER","description":"rude"}"#, No, "auth"),
    ("GET /api/v1/moderation.reportsByUsers", "", "", No, "admin"),
    ("GET /api/v1/moderation.userReports", "", "", No, "admin"),
    ("GET /api/v1/moderation.reports", "", r#"{"msgId":"$FMR"}"#, Reported, "admin"),
    ("GET /api/v1/moderation.reportInfo", "", r#"{"reportId":"nope"}"#, No, "admin"),
    ("GET /api/v1/moderation.user.reportedMessages", "", r#"{"userId":"$MEMBER"}"#, No, "admin"),
    ("GET /api/v1/moderation.user.reportsByUserId", "", r#"{"userId":"$MEMBER"}"#, No, "admin"),
    ("POST /api/v1/moderation.dismissReports", "", r#"{"msgId":"$FMR"}"#, Reported, "admin"),
    ("POST /api/v1/moderation.dismissUserReports", "", r#"{"userId":"$MEMBER"}"#, No, "admin"),
    ("POST /api/v1/moderation.user.deleteReportedMessages", "", r#"{"userId":"$MEMBER"}"#, Reported, "admin"),
    // Assets: `manage-assets`; the images are public.
    ("POST /api/v1/assets.setAsset", "", "multipart", No, "admin"),
    ("POST /api/v1/assets.unsetAsset", "", r#"{"assetName":"tile_70"}"#, No, "admin"),
    ("GET /assets/{file}", "/assets/logo.png", "", No, "all"),
    // Custom emoji: `manage-emoji` changes the catalogue; anyone logged in reads it.
    ("POST /api/v1/emoji-custom.create", "", "multipart", No, "admin"),
    ("POST /api/v1/emoji-custom.update", "", r#"{"_id":"$FE","name":"e$X"}"#, Emoji, "admin"),
    ("POST /api/v1/emoji-custom.delete", "", r#"{"emojiId":"$FE"}"#, Emoji, "admin"),
    ("GET /api/v1/emoji-custom.list", "", "", No, "auth"),
    ("GET /api/v1/emoji-custom.all", "", "", No, "auth"),
    ("GET /emoji-custom/{file}", "/emoji-custom/none.png", "", No, "all"),
    ("GET /api/v1/custom-user-status.list", "", "", No, "auth"),
    ("POST /api/v1/custom-user-status.create", "", r#"{"name":"st$X","statusType":"busy"}"#, No, "admin"),
    ("POST /api/v1/custom-user-status.update", "", r#"{"_id":"$FS","name":"st$X","statusType":"away"}"#, Status, "admin"),
    ("POST /api/v1/custom-user-status.delete", "", r#"{"customUserStatusId":"$FS"}"#, Status, "admin"),
    // Public channels.
    ("POST /api/v1/channels.create", "", r#"{"name":"c$X"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.info", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.list", "", "", No, "auth -guest"),
    ("GET /api/v1/channels.list.joined", "", "", No, "auth"),
    ("GET /api/v1/channels.members", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.history", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.messages", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("POST /api/v1/channels.join", "", r#"{"roomId":"$F"}"#, Channel, "auth -guest"),
    ("POST /api/v1/channels.leave", "", r#"{"roomId":"$F"}"#, Channel, "in"),
    ("POST /api/v1/channels.invite", "", r#"{"roomId":"$F","userId":"$TARGET"}"#, Channel, "mods admin"),
    ("POST /api/v1/channels.kick", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Channel, "mods admin"),
    ("POST /api/v1/channels.open", "", r#"{"roomId":"$C"}"#, No, "in"),
    ("POST /api/v1/channels.close", "", r#"{"roomId":"$C"}"#, No, "in"),
    ("POST /api/v1/channels.rename", "", r#"{"roomId":"$F","name":"r$X"}"#, Channel, "mods admin"),
    ("POST /api/v1/channels.setTopic", "", r#"{"roomId":"$C","topic":"t"}"#, No, "mods admin"),
    ("POST /api/v1/channels.setDescription", "", r#"{"roomId":"$C","description":"d"}"#, No, "mods admin"),
    ("POST /api/v1/channels.setAnnouncement", "", r#"{"roomId":"$C","announcement":"a"}"#, No, "mods admin"),
    ("POST /api/v1/channels.setReadOnly", "", r#"{"roomId":"$F","readOnly":true}"#, Channel, "owner admin"),
    ("POST /api/v1/channels.setType", "", r#"{"roomId":"$F","type":"p"}"#, Channel, "mods admin"),
    ("POST /api/v1/channels.setJoinCode", "", r#"{"roomId":"$F","joinCode":"sesame"}"#, Channel, "mods admin"),
    ("POST /api/v1/channels.setDefault", "", r#"{"roomId":"$F","default":true}"#, Channel, "admin"),
    ("POST /api/v1/channels.setCustomFields", "", r#"{"roomId":"$C","customFields":{"a":"b"}}"#, No, "mods admin"),
    ("POST /api/v1/channels.archive", "", r#"{"roomId":"$F"}"#, Channel, "owner admin"),
    ("POST /api/v1/channels.unarchive", "", r#"{"roomId":"$F"}"#, Archived, "admin"),
    ("POST /api/v1/channels.delete", "", r#"{"roomId":"$F"}"#, Channel, "owner admin"),
    // Room roles: a moderator cannot grant owner or moderator.
    ("POST /api/v1/channels.addOwner", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Channel, "owner admin"),
    ("POST /api/v1/channels.removeOwner", "", r#"{"roomId":"$F","userId":"$OWNER"}"#, Channel, "owner admin"),
    ("POST /api/v1/channels.addModerator", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Channel, "owner admin"),
    ("POST /api/v1/channels.removeModerator", "", r#"{"roomId":"$F","userId":"$MODERATOR"}"#, Channel, "owner admin"),
    ("POST /api/v1/channels.addLeader", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Channel, "owner admin"),
    ("POST /api/v1/channels.removeLeader", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Channel, "owner admin"),
    ("GET /api/v1/channels.roles", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.counters", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.moderators", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.files", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.online", "", r#"{"_id":"$C"}"#, No, "auth -guest"),
    ("GET /api/v1/channels.getAllUserMentionsByChannel", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("POST /api/v1/channels.addAll", "", r#"{"roomId":"$F"}"#, Channel, "admin"),
    // `create-team` and `edit-room` in the room, as Rocket.Chat.
    ("POST /api/v1/channels.convertToTeam", "", r#"{"channelId":"$F"}"#, Channel, "mods admin"),
    // Private groups: reading takes membership, whatever the caller's global roles; managing
    // takes the room role or the global permission (an admin manages rooms it is not in, as
    // through Rocket.Chat's room administration).
    ("POST /api/v1/groups.create", "", r#"{"name":"g$X"}"#, No, "auth -guest"),
    ("GET /api/v1/groups.info", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/groups.list", "", "", No, "auth"),
    ("GET /api/v1/groups.listAll", "", "", No, "admin"),
    ("GET /api/v1/groups.members", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/groups.history", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/groups.messages", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("POST /api/v1/groups.leave", "", r#"{"roomId":"$F"}"#, Group, "in"),
    ("POST /api/v1/groups.invite", "", r#"{"roomId":"$F","userId":"$TARGET"}"#, Group, "mods"),
    ("POST /api/v1/groups.kick", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Group, "mods admin"),
    ("POST /api/v1/groups.open", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("POST /api/v1/groups.close", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("POST /api/v1/groups.rename", "", r#"{"roomId":"$F","name":"r$X"}"#, Group, "mods admin"),
    ("POST /api/v1/groups.setTopic", "", r#"{"roomId":"$G","topic":"t"}"#, No, "mods admin"),
    ("POST /api/v1/groups.setDescription", "", r#"{"roomId":"$G","description":"d"}"#, No, "mods admin"),
    ("POST /api/v1/groups.setAnnouncement", "", r#"{"roomId":"$G","announcement":"a"}"#, No, "mods admin"),
    ("POST /api/v1/groups.setReadOnly", "", r#"{"roomId":"$F","readOnly":true}"#, Group, "owner admin"),
    ("POST /api/v1/groups.setType", "", r#"{"roomId":"$F","type":"c"}"#, Group, "mods admin"),
    ("POST /api/v1/groups.setCustomFields", "", r#"{"roomId":"$G","customFields":{"a":"b"}}"#, No, "mods admin"),
    ("POST /api/v1/groups.setEncrypted", "", r#"{"roomId":"$F","encrypted":true}"#, Group, "owner admin"),
    ("POST /api/v1/groups.archive", "", r#"{"roomId":"$F"}"#, Group, "owner admin"),
    ("POST /api/v1/groups.unarchive", "", r#"{"roomId":"$F"}"#, ArchivedGroup, "admin"),
    ("POST /api/v1/groups.delete", "", r#"{"roomId":"$F"}"#, Group, "owner admin"),
    ("POST /api/v1/groups.addOwner", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Group, "owner admin"),
    ("POST /api/v1/groups.removeOwner", "", r#"{"roomId":"$F","userId":"$OWNER"}"#, Group, "owner admin"),
    ("POST /api/v1/groups.addModerator", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Group, "owner admin"),
    ("POST /api/v1/groups.removeModerator", "", r#"{"roomId":"$F","userId":"$MODERATOR"}"#, Group, "owner admin"),
    ("POST /api/v1/groups.addLeader", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Group, "owner admin"),
    ("POST /api/v1/groups.removeLeader", "", r#"{"roomId":"$F","userId":"$MEMBER"}"#, Group, "owner admin"),
    ("GET /api/v1/groups.roles", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/groups.counters", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/groups.moderators", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/groups.files", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/groups.online", "", r#"{"_id":"$G"}"#, No, "in"),
    ("POST /api/v1/groups.convertToTeam", "", r#"{"roomId":"$F"}"#, Group, "mods"),
    // Direct messages (`D` is between `member` and `owner`).
    ("POST /api/v1/im.create", "", r#"{"username":"target"}"#, No, "auth -guest"),
    ("POST /api/v1/dm.create", "", r#"{"username":"target"}"#, No, "auth -guest"),
    ("POST /api/v1/im.open", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("POST /api/v1/dm.open", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("POST /api/v1/im.close", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("POST /api/v1/dm.close", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/im.list", "", "", No, "auth"),
    ("GET /api/v1/dm.list", "", "", No, "auth"),
    ("GET /api/v1/im.list.everyone", "", "", No, "admin"),
    ("GET /api/v1/dm.list.everyone", "", "", No, "admin"),
    ("GET /api/v1/im.history", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/dm.history", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/im.messages", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/dm.messages", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/im.members", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/dm.members", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/im.counters", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/dm.counters", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/im.files", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("GET /api/v1/dm.files", "", r#"{"roomId":"$D"}"#, No, "member owner"),
    ("POST /api/v1/im.delete", "", r#"{"roomId":"$FD"}"#, Dm, "admin"),
    ("POST /api/v1/dm.delete", "", r#"{"roomId":"$FD"}"#, Dm, "admin"),
    // `edit-room`, which DM members do not hold by default (as in Rocket.Chat).
    ("POST /api/v1/im.setTopic", "", r#"{"roomId":"$D","topic":"t"}"#, No, "admin"),
    ("POST /api/v1/dm.setTopic", "", r#"{"roomId":"$D","topic":"t"}"#, No, "admin"),
    // rooms.*
    ("GET /api/v1/rooms.get", "", "", No, "auth"),
    ("GET /api/v1/rooms.info", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/rooms.info", "", r#"{"roomId":"$C"}"#, No, "auth -guest"),
    ("POST /api/v1/rooms.leave", "", r#"{"roomId":"$F"}"#, Group, "in"),
    ("POST /api/v1/rooms.favorite", "", r#"{"roomId":"$G","favorite":true}"#, No, "in"),
    ("POST /api/v1/rooms.muteUser", "", r#"{"roomId":"$F","username":"member"}"#, Channel, "mods admin"),
    ("POST /api/v1/rooms.unmuteUser", "", r#"{"roomId":"$F","username":"member"}"#, Channel, "mods admin"),
    // Slash commands: the room must be readable; what a command does is the use-case's call.
    ("GET /api/v1/commands.list", "", "", No, "auth"),
    ("GET /api/v1/commands.get", "", r#"{"command":"join"}"#, No, "auth"),
    ("POST /api/v1/commands.run", "", r#"{"command":"shrug","params":"$X","roomId":"$G"}"#, No, "in"),
    ("POST /api/v1/commands.run", "", r#"{"command":"kick","params":"@member","roomId":"$F"}"#, Group, "mods"),
    ("GET /api/v1/commands.preview", "", r#"{"command":"shrug","roomId":"$G"}"#, No, "in"),
    ("POST /api/v1/commands.preview", "", r#"{"command":"shrug","roomId":"$G","previewItem":{"id":"1","type":"text","value":"v"}}"#, No, "in"),
    ("GET /api/v1/chat.getMessageReadReceipts", "", r#"{"messageId":"$MG"}"#, No, "in"),
    ("POST /api/v1/rooms.saveRoomSettings", "", r#"{"rid":"$C","roomAvatar":null}"#, No, "mods admin"),
    ("POST /api/v1/rooms.cleanHistory", "", r#"{"roomId":"$F","latest":"2100-01-01T00:00:00.000Z","oldest":"2000-01-01T00:00:00.000Z"}"#, Channel, "admin"),
    ("GET /api/v1/rooms.adminRooms", "", "", No, "admin"),
    ("POST /api/v1/rooms.createDiscussion", "", r#"{"prid":"$G","t_name":"disc$X"}"#, No, "in"),
    ("GET /api/v1/rooms.getDiscussions", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/chat.getDiscussions", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("POST /api/v1/rooms.media/{rid}", "/api/v1/rooms.media/$G", "multipart", No, "in"),
    ("POST /api/v1/rooms.upload/{rid}", "/api/v1/rooms.upload/$G", "multipart", No, "in"),
    ("POST /api/v1/rooms.mediaConfirm/{rid}/{file_id}", "/api/v1/rooms.mediaConfirm/$G/$FILE", r#"{"msg":"here"}"#, Upload, "member"),
    ("GET /file-upload/{file_id}/{name}", "/file-upload/$GFILE/matrix.txt", "", No, "in"),
    // Subscriptions.
    ("GET /api/v1/subscriptions.get", "", "", No, "auth"),
    ("GET /api/v1/subscriptions.getOne", "", r#"{"roomId":"$G"}"#, No, "auth"),
    ("POST /api/v1/subscriptions.read", "", r#"{"rid":"$G"}"#, No, "in"),
    ("POST /api/v1/subscriptions.unread", "", r#"{"roomId":"$G"}"#, No, "in"),
    // Messages.
    ("POST /api/v1/chat.postMessage", "", r#"{"roomId":"$G","text":"hi"}"#, No, "in"),
    // Posting to a public channel by name joins it first, as Rocket.Chat; guests may not join.
    ("POST /api/v1/chat.postMessage", "", r##"{"channel":"#$FN","text":"hi"}"##, Channel, "auth -guest"),
    ("POST /api/v1/chat.sendMessage", "", r#"{"message":{"rid":"$G","msg":"hi"}}"#, No, "in"),
    // Editing or deleting someone else's message takes a room or global role.
    ("POST /api/v1/chat.update", "", r#"{"roomId":"$C","msgId":"$FM","text":"edited"}"#, Message, "in admin"),
    ("POST /api/v1/chat.delete", "", r#"{"roomId":"$C","msgId":"$FM"}"#, Message, "in admin"),
    // A plain member cannot edit or delete the owner's message.
    ("POST /api/v1/chat.update", "", r#"{"roomId":"$C","msgId":"$FM","text":"edited"}"#, OwnersMessage, "mods admin"),
    ("POST /api/v1/chat.delete", "", r#"{"roomId":"$C","msgId":"$FM"}"#, OwnersMessage, "mods admin"),
    ("GET /api/v1/chat.getMessage", "", r#"{"msgId":"$MG"}"#, No, "in"),
    // An ignored host (API_EmbedIgnoredHosts): nothing is fetched, readers get an empty preview.
    ("GET /api/v1/chat.getURLPreview", "", r#"{"roomId":"$G","url":"http://127.0.0.1/"}"#, No, "in"),
    ("POST /api/v1/chat.react", "", r#"{"messageId":"$MG","emoji":":smile:"}"#, No, "in"),
    ("POST /api/v1/chat.pinMessage", "", r#"{"messageId":"$FM"}"#, Message, "mods admin"),
    ("POST /api/v1/chat.unPinMessage", "", r#"{"messageId":"$FM"}"#, Message, "mods admin"),
    ("POST /api/v1/chat.starMessage", "", r#"{"messageId":"$MG"}"#, No, "in"),
    ("POST /api/v1/chat.unStarMessage", "", r#"{"messageId":"$MG"}"#, No, "in"),
    ("POST /api/v1/chat.followMessage", "", r#"{"mid":"$MG"}"#, No, "in"),
    ("POST /api/v1/chat.unfollowMessage", "", r#"{"mid":"$MG"}"#, No, "in"),
    ("GET /api/v1/chat.syncMessages", "", r#"{"roomId":"$G","lastUpdate":"2000-01-01T00:00:00.000Z"}"#, No, "in"),
    ("GET /api/v1/chat.search", "", r#"{"roomId":"$G","searchText":"hello"}"#, No, "in"),
    ("GET /api/v1/chat.getThreadMessages", "", r#"{"tmid":"$MG"}"#, No, "in"),
    ("GET /api/v1/chat.getThreadsList", "", r#"{"rid":"$G"}"#, No, "in"),
    ("GET /api/v1/chat.getPinnedMessages", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/chat.getStarredMessages", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/chat.getMentionedMessages", "", r#"{"roomId":"$G"}"#, No, "in"),
    ("GET /api/v1/chat.getDeletedMessages", "", r#"{"roomId":"$G","since":"2000-01-01T00:00:00.000Z"}"#, No, "in"),
    ("GET /api/v1/chat.syncThreadsList", "", r#"{"rid":"$G","updatedSince":"2000-01-01T00:00:00.000Z"}"#, No, "in"),
    ("GET /api/v1/chat.syncThreadMessages", "", r#"{"tmid":"$MG","updatedSince":"2000-01-01T00:00:00.000Z"}"#, No, "in"),
    ("GET /api/v1/chat.ignoreUser", "", r#"{"rid":"$G","userId":"$TARGET","ignore":"true"}"#, No, "in"),
    // Teams (`T` is private).
    ("POST /api/v1/teams.create", "", r#"{"name":"team$X","type":0}"#, No, "auth -guest"),
    ("POST /api/v1/teams.delete", "", r#"{"teamName":"$FTN"}"#, Team, "owner admin"),
    ("GET /api/v1/teams.info", "", r#"{"teamId":"$T"}"#, No, "in admin"),
    ("GET /api/v1/teams.list", "", "", No, "auth"),
    ("GET /api/v1/teams.listAll", "", "", No, "admin"),
    // Non-members get an empty list, as in Rocket.Chat.
    ("GET /api/v1/teams.members", "", r#"{"teamId":"$T"}"#, No, "auth"),
    ("POST /api/v1/teams.addMembers", "", r#"{"teamId":"$FT","members":[{"userId":"$TARGET","roles":["member"]}]}"#, Team, "mods admin"),
    ("POST /api/v1/teams.updateMember", "", r#"{"teamId":"$FT","member":{"userId":"$MEMBER","roles":["member","owner"]}}"#, Team, "mods admin"),
    ("POST /api/v1/teams.removeMember", "", r#"{"teamId":"$FT","userId":"$MEMBER"}"#, Team, "mods admin"),
    ("GET /api/v1/teams.listRooms", "", r#"{"teamId":"$T"}"#, No, "in admin"),
    // Another member's rooms need `view-all-team-channels` (team owner, admin).
    ("GET /api/v1/teams.listRoomsOfUser", "", r#"{"teamId":"$T","userId":"$MEMBER"}"#, No, "member owner admin"),
    ("POST /api/v1/teams.addRooms", "", r#"{"teamId":"$FT","rooms":["$FC"]}"#, Team, "mods admin"),
    ("POST /api/v1/teams.removeRoom", "", r#"{"teamId":"$FT","roomId":"$FTC"}"#, Team, "mods admin"),
    ("POST /api/v1/teams.updateRoom", "", r#"{"roomId":"$FTC","isDefault":true}"#, Team, "mods admin"),
    ("GET /api/v1/teams.autocomplete", "", r#"{"name":"t"}"#, No, "auth"),
    ("POST /api/v1/teams.leave", "", r#"{"teamId":"$FT"}"#, Team, "in"),
    ("POST /api/v1/teams.update", "", r#"{"teamId":"$FT","data":{"type":1}}"#, Team, "owner admin"),
    // End-to-end encryption key relay.
    ("GET /api/v1/e2e.fetchMyKeys", "", "", No, "auth"),
    ("POST /api/v1/e2e.setUserPublicAndPrivateKeys", "", r#"{"public_key":"{}","private_key":"{}"}"#, No, "auth"),
    ("GET /api/v1/e2e.getUsersOfRoomWithoutKey", "", r#"{"rid":"$G"}"#, No, "in"),
    ("GET /api/v1/e2e.fetchUsersWaitingForGroupKey", "", r#"{"roomIds":["$G"]}"#, No, "auth"),
    ("POST /api/v1/e2e.setRoomKeyID", "", r#"{"rid":"$G","keyID":"abcdefghijkl"}"#, No, "in"),
    // A non-member's key suggestions are dropped unwritten with a success answer, as in
    // Rocket.Chat (`Core::e2e_update_group_key`, `e2e_provide_suggested_keys`).
    ("POST /api/v1/e2e.updateGroupKey", "", r#"{"rid":"$G","uid":"$MEMBER","key":"$RK"}"#, No, "auth"),
    ("POST /api/v1/e2e.acceptSuggestedGroupKey", "", r#"{"rid":"$G"}"#, No, "in"),
    ("POST /api/v1/e2e.rejectSuggestedGroupKey", "", r#"{"rid":"$G"}"#, No, "in"),
    ("POST /api/v1/e2e.provideUsersSuggestedGroupKeys", "", r#"{"usersSuggestedGroupKeys":{"$G":[{"_id":"$MEMBER","key":"$RK"}]}}"#, No, "auth"),
    ("POST /api/v1/e2e.resetRoomKey", "", r#"{"rid":"$F","e2eKey":"$RK","e2eKeyId":"abcdefghijkl"}"#, Group, "owner"),
    // Encrypted participants: `manage-e2e-bots` (admin) authorises and revokes (the fixtures have
    // no bot user, so admin's calls end in `error-not-a-bot` / `error-not-an-e2e-bot`); a user
    // may ask about itself; the bot routes refuse everyone who is not an authorised bot.
    // Federation is off in these servers: permitted callers get error-federation-disabled.
    ("POST /api/v1/federation/joinExternalPublicRoom", "", r#"{"externalRoomId":"!abc:synapse.test"}"#, No, "auth -guest"),
    ("POST /api/v1/e2e.bots.authorize", "", r#"{"userId":"$MEMBER","roomIds":["$G"]}"#, No, "admin"),
    ("POST /api/v1/e2e.bots.revoke", "", r#"{"userId":"$MEMBER"}"#, No, "admin"),
    ("GET /api/v1/e2e.bots.info", "", r#"{"userId":"$MEMBER"}"#, No, "admin member"),
    ("POST /api/v1/e2e.bot.sendMessage", "", r#"{"rid":"$G","msg":"hi"}"#, No, "none"),
    ("POST /api/v1/e2e.bot.encrypt", "", r#"{"rid":"$G","payload":{"msg":"hi"}}"#, No, "none"),
    ("GET /api/v1/e2e.bot.messages", "", r#"{"rid":"$G"}"#, No, "none"),
    ("GET /api/v1/e2e.bot.decrypt", "", r#"{"msgId":"$MG"}"#, No, "none"),
    ("POST /api/v1/e2e.bot.createRoomKey", "", r#"{"rid":"$G"}"#, No, "none"),
    ("GET /api/v1/e2e.bot.file", "", r#"{"msgId":"$MG","fileId":"x"}"#, No, "none"),
    // Key recovery (docs/E2EE-RECOVERY.md): `manage-e2e-recovery` (admin) sets the officers — the
    // threshold here is refused as invalid, so the fixtures keep no policy —; with no policy
    // nobody is an officer, and a user's own calls fail validation (not enrolled), not authz.
    ("GET /api/v1/e2e.recovery.policy", "", "", No, "auth"),
    ("POST /api/v1/e2e.recovery.officers.set", "", r#"{"officers":["$MEMBER","$OWNER"],"threshold":5,"consentText":"x"}"#, No, "admin"),
    ("POST /api/v1/e2e.recovery.officer.setKey", "", r#"{"publicKey":"x"}"#, No, "none"),
    ("POST /api/v1/e2e.recovery.enrol", "", r#"{"version":1}"#, No, "auth"),
    ("POST /api/v1/e2e.recovery.withdraw", "", "{}", No, "auth"),
    ("POST /api/v1/e2e.recovery.request", "", r#"{"restorePublicKey":"x"}"#, No, "auth"),
    ("GET /api/v1/e2e.recovery.requests", "", "", No, "none"),
    ("POST /api/v1/e2e.recovery.approve", "", r#"{"requestId":"x","resealedShare":"x"}"#, No, "none"),
    ("POST /api/v1/e2e.recovery.deny", "", r#"{"requestId":"x"}"#, No, "none"),
    ("POST /api/v1/e2e.recovery.material", "", "{}", No, "auth"),
    // Invites (`$FI` opens a fresh channel).
    // `create-invite-links` in a room the caller is in.
    ("POST /api/v1/findOrCreateInvite", "", r#"{"rid":"$F","days":1,"maxUses":0}"#, Channel, "mods"),
    ("GET /api/v1/listInvites", "", "", No, "admin"),
    ("DELETE /api/v1/removeInvite/{id}", "/api/v1/removeInvite/$FI", "", Invite, "admin"),
    ("POST /api/v1/validateInviteToken", "", r#"{"token":"$INV"}"#, No, "all"),
    ("POST /api/v1/useInviteToken", "", r#"{"token":"$FI"}"#, Invite, "auth"),
    ("POST /api/v1/sendInvitationEmail", "", r#"{"emails":["m$X@example.com"]}"#, No, "admin"),
];

/// The fixture: ids and names the placeholders stand for, and everyone's credentials.
struct Fixture {
    vars: HashMap<&'static str, String>,
    auth: HashMap<&'static str, Auth>,
}

fn allowed(spec: &str) -> BTreeSet<&'static str> {
    let mut set = BTreeSet::new();
    for token in spec.split_whitespace() {
        let (remove, name) = match token.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, token),
        };
        let names: Vec<&'static str> = match name {
            "all" => ACTORS.to_vec(),
            "auth" => ACTORS[1..].to_vec(),
            "in" => vec!["member", "moderator", "owner"],
            "mods" => vec!["moderator", "owner"],
            "none" => vec![],
            one => vec![
                *ACTORS
                    .iter()
                    .find(|a| **a == one)
                    .unwrap_or_else(|| panic!("unknown actor {one} in {spec:?}")),
            ],
        };
        for n in names {
            if remove {
                set.remove(n);
            } else {
                set.insert(n);
            }
        }
    }
    set
}

fn denied(status: u16, body: &Value) -> bool {
    if status == 401 || status == 403 {
        return true;
    }
    let code = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    (400..500).contains(&status)
        && (DENIALS.contains(&code("errorType").as_str())
            || DENIALS.contains(&code("error").as_str()))
}

fn substitute(text: &str, vars: &HashMap<&'static str, String>) -> String {
    // Longest names first, so `$FTN` is not read as `$FT` + "N".
    let mut names: Vec<&&str> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut out = text.to_string();
    for name in names {
        out = out.replace(&format!("${name}"), &vars[*name]);
    }
    assert!(!out.contains('$'), "unreplaced placeholder in {out}");
    out
}

fn unique() -> String {
    apogee_domain::random_id()[..10].to_lowercase()
}

async fn ok(s: &Server, method: Method, path: &str, a: &Auth, body: Value) -> Value {
    let (status, v) = s.call(method, path, Some(a), Some(body.clone())).await;
    assert_eq!(status, 200, "fixture {path} {body}: {v}");
    v
}

async fn post(s: &Server, path: &str, a: &Auth, body: Value) -> Value {
    ok(s, Method::POST, path, a, body).await
}

fn text_file() -> Form {
    Form::new().part(
        "file",
        Part::bytes(b"matrix file".to_vec())
            .file_name("matrix.txt")
            .mime_str("text/plain")
            .expect("mime"),
    )
}

const SVG: &[u8] = br#"<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>"#;

fn svg_file() -> Form {
    Form::new().part(
        "image",
        Part::bytes(SVG.to_vec())
            .file_name("a.svg")
            .mime_str("image/svg+xml")
            .expect("mime"),
    )
}

async fn upload(s: &Server, rid: &str, a: &Auth) -> String {
    let req = s
        .client
        .post(format!("{}/api/v1/rooms.media/{rid}", s.base))
        .header("X-User-Id", &a.user_id)
        .header("X-Auth-Token", &a.token)
        .multipart(text_file());
    let v: Value = req
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    v["file"]["_id"].as_str().expect("file id").to_string()
}

impl Fixture {
    async fn build(s: &Server) -> Fixture {
        let mut auth = HashMap::new();
        for name in [
            "admin",
            "owner",
            "moderator",
            "member",
            "nonmember",
            "user",
            "guest",
            "target",
        ] {
            auth.insert(name, s.user(name).await);
        }
        let admin = auth["admin"].clone();
        post(
            s,
            "/api/v1/users.update",
            &admin,
            json!({"userId": auth["guest"].user_id, "data": {"roles": ["guest"]}}),
        )
        .await;
        let mut vars: HashMap<&'static str, String> = HashMap::new();
        for (var, who) in [
            ("MEMBER", "member"),
            ("MODERATOR", "moderator"),
            ("OWNER", "owner"),
            ("TARGET", "target"),
        ] {
            vars.insert(var, auth[who].user_id.clone());
        }
        vars.insert("TARGETN", "target".into());
        // A room key as clients send it: a 12-character key id and 256 bytes of base64.
        vars.insert("RK", format!("abcdefghijkl{}==", "A".repeat(342)));
        let mut fx = Fixture { vars, auth };
        let (c, cn) = fx.room(s, "channels").await;
        let (g, gn) = fx.room(s, "groups").await;
        // `target` in `G` too: someone members can ignore (`chat.ignoreUser`).
        post(
            s,
            "/api/v1/groups.invite",
            &fx.auth["owner"],
            json!({"roomId": g, "userId": fx.vars["TARGET"]}),
        )
        .await;
        let member = fx.auth["member"].clone();
        let d = post(
            s,
            "/api/v1/im.create",
            &member,
            json!({"username": "owner"}),
        )
        .await;
        let d = d["room"]["_id"].as_str().expect("dm").to_string();
        let mut said = Vec::new();
        for rid in [&c, &g, &d] {
            let m = post(
                s,
                "/api/v1/chat.postMessage",
                &member,
                json!({"roomId": rid, "text": "hello matrix"}),
            )
            .await;
            said.push(m["message"]["_id"].as_str().expect("msg").to_string());
        }
        let (t, tn, _) = fx.team(s, 1).await;
        let owner = fx.auth["owner"].clone();
        let inv = post(
            s,
            "/api/v1/findOrCreateInvite",
            &owner,
            json!({"rid": g, "days": 1, "maxUses": 0}),
        )
        .await;
        let file = upload(s, &g, &member).await;
        post(
            s,
            &format!("/api/v1/rooms.mediaConfirm/{g}/{file}"),
            &member,
            json!({}),
        )
        .await;
        for (k, v) in [
            ("C", c),
            ("CN", cn),
            ("G", g),
            ("GN", gn),
            ("D", d),
            ("MC", said[0].clone()),
            ("MG", said[1].clone()),
            ("MD", said[2].clone()),
            ("T", t),
            ("TN", tn),
            ("INV", inv["_id"].as_str().expect("invite").to_string()),
            ("GFILE", file),
        ] {
            fx.vars.insert(k, v);
        }
        fx
    }

    /// A room (`channels` or `groups`) owned by `owner` with `moderator` and `member`.
    async fn room(&self, s: &Server, family: &str) -> (String, String) {
        let owner = &self.auth["owner"];
        let name = format!("m{}", unique());
        let v = post(
            s,
            &format!("/api/v1/{family}.create"),
            owner,
            json!({"name": name, "members": ["moderator", "member"]}),
        )
        .await;
        let key = if family == "channels" {
            "channel"
        } else {
            "group"
        };
        let rid = v[key]["_id"].as_str().expect("room id").to_string();
        post(
            s,
            &format!("/api/v1/{family}.addModerator"),
            owner,
            json!({"roomId": rid, "userId": self.vars["MODERATOR"]}),
        )
        .await;
        (rid, name)
    }

    /// A team of the given type with `moderator` and `member`: (team id, name, main room id).
    async fn team(&self, s: &Server, kind: i64) -> (String, String, String) {
        let owner = &self.auth["owner"];
        let name = format!("t{}", unique());
        let v = post(
            s,
            "/api/v1/teams.create",
            owner,
            json!({"name": name, "type": kind, "members": [self.vars["MODERATOR"], self.vars["MEMBER"]]}),
        )
        .await;
        let team = v["team"]["_id"].as_str().expect("team id").to_string();
        let main = v["team"]["roomId"].as_str().expect("team room").to_string();
        post(
            s,
            "/api/v1/teams.updateMember",
            owner,
            json!({"teamId": team, "member": {"userId": self.vars["MODERATOR"], "roles": ["member", "moderator"]}}),
        )
        .await;
        (team, name, main)
    }

    /// Makes `fresh` and returns the placeholders it defines.
    async fn make(&self, s: &Server, fresh: Fresh, actor: &str) -> Vec<(&'static str, String)> {
        let admin = &self.auth["admin"];
        let owner = &self.auth["owner"];
        match fresh {
            No | Session | Last => vec![],
            Channel | Group | Archived | ArchivedGroup => {
                let family = if matches!(fresh, Group | ArchivedGroup) {
                    "groups"
                } else {
                    "channels"
                };
                let (rid, name) = self.room(s, family).await;
                if matches!(fresh, Archived | ArchivedGroup) {
                    post(
                        s,
                        &format!("/api/v1/{family}.archive"),
                        owner,
                        json!({"roomId": rid}),
                    )
                    .await;
                }
                vec![("F", rid), ("FN", name)]
            }
            Message | OwnersMessage => {
                let author = if fresh == Message { "member" } else { "owner" };
                let v = post(
                    s,
                    "/api/v1/chat.postMessage",
                    &self.auth[author],
                    json!({"roomId": self.vars["C"], "text": format!("fresh for {actor}")}),
                )
                .await;
                vec![("FM", v["message"]["_id"].as_str().expect("msg").to_string())]
            }
            User => {
                let name = format!("u{}", unique());
                let v = post(
                    s,
                    "/api/v1/users.create",
                    admin,
                    json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD, "name": name}),
                )
                .await;
                vec![
                    ("FU", v["user"]["_id"].as_str().expect("user").to_string()),
                    ("FUN", name),
                ]
            }
            Team => {
                let (team, name, _) = self.team(s, 0).await;
                let (inside, _) = self.room(s, "channels").await;
                post(
                    s,
                    "/api/v1/teams.addRooms",
                    owner,
                    json!({"teamId": team, "rooms": [inside]}),
                )
                .await;
                let (outside, _) = self.room(s, "channels").await;
                vec![
                    ("FT", team),
                    ("FTN", name),
                    ("FTC", inside),
                    ("FC", outside),
                ]
            }
            Role => {
                let v = post(
                    s,
                    "/api/v1/roles.create",
                    admin,
                    json!({"name": format!("r{}", unique())}),
                )
                .await;
                vec![("FR", v["role"]["_id"].as_str().expect("role").to_string())]
            }
            Status => {
                let v = post(
                    s,
                    "/api/v1/custom-user-status.create",
                    admin,
                    json!({"name": format!("s{}", unique()), "statusType": "busy"}),
                )
                .await;
                let id = v["customUserStatus"]["_id"].as_str().expect("status");
                vec![("FS", id.to_string())]
            }
            Invite => {
                let (rid, _) = self.room(s, "channels").await;
                let v = post(
                    s,
                    "/api/v1/findOrCreateInvite",
                    owner,
                    json!({"rid": rid, "days": 1, "maxUses": 0}),
                )
                .await;
                vec![("FI", v["_id"].as_str().expect("invite").to_string())]
            }
            Dm => {
                let name = format!("u{}", unique());
                post(
                    s,
                    "/api/v1/users.create",
                    admin,
                    json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD, "name": name}),
                )
                .await;
                let v = post(
                    s,
                    "/api/v1/im.create",
                    &self.auth["member"],
                    json!({"username": name}),
                )
                .await;
                vec![("FD", v["room"]["_id"].as_str().expect("dm").to_string())]
            }
            Webhook => {
                // Its own channel: posting makes the admin a member of the target.
                let (_, target) = self.room(s, "channels").await;
                let v = post(
                    s,
                    "/api/v1/integrations.create",
                    admin,
                    json!({"type": "webhook-incoming", "name": format!("w{}", unique()), "enabled": true,
                        "username": "admin", "channel": format!("#{target}"), "scriptEnabled": false}),
                )
                .await;
                let i = &v["integration"];
                vec![
                    ("FW", i["_id"].as_str().expect("integration").to_string()),
                    ("FWT", i["token"].as_str().expect("token").to_string()),
                ]
            }
            Reported => {
                let v = post(
                    s,
                    "/api/v1/chat.postMessage",
                    &self.auth["member"],
                    json!({"roomId": self.vars["C"], "text": format!("reported for {actor}")}),
                )
                .await;
                let id = v["message"]["_id"].as_str().expect("msg").to_string();
                post(
                    s,
                    "/api/v1/chat.reportMessage",
                    owner,
                    json!({"messageId": id, "description": "spam"}),
                )
                .await;
                vec![("FMR", id)]
            }
            Emoji => {
                let name = format!("e{}", unique());
                // Text fields first, as HTTP libraries send them.
                let form = Form::new().text("name", name.clone()).part(
                    "emoji",
                    Part::bytes(SVG.to_vec())
                        .file_name("e.svg")
                        .mime_str("image/svg+xml")
                        .expect("mime"),
                );
                let v: Value = s
                    .client
                    .post(format!("{}/api/v1/emoji-custom.create", s.base))
                    .header("X-User-Id", &admin.user_id)
                    .header("X-Auth-Token", &admin.token)
                    .multipart(form)
                    .send()
                    .await
                    .expect("emoji")
                    .json()
                    .await
                    .expect("json");
                assert_eq!(v["success"], true, "fixture emoji: {v}");
                let (_, list) = s
                    .call(
                        Method::GET,
                        "/api/v1/emoji-custom.all",
                        Some(admin),
                        Some(json!({"name": name})),
                    )
                    .await;
                vec![(
                    "FE",
                    list["emojis"][0]["_id"]
                        .as_str()
                        .expect("emoji id")
                        .to_string(),
                )]
            }
            Upload => vec![(
                "FILE",
                upload(s, &self.vars["G"], &self.auth["member"]).await,
            )],
        }
    }
}

/// One call of one row by one actor; `Err` describes a mismatch.
async fn check(s: &Server, fx: &Fixture, row: &Row, actor: &'static str) -> Result<(), String> {
    let (endpoint, url, body, fresh, allow) = *row;
    let (method, path) = endpoint.split_once(' ').expect("METHOD /path");
    let mut vars = fx.vars.clone();
    vars.extend(fx.make(s, fresh, actor).await);
    vars.insert("X", unique());
    let mut auth = fx.auth.get(actor).cloned();
    if fresh == Session && actor != "anon" {
        auth = Some(s.login(actor).await);
    }
    if let Some(a) = &auth {
        vars.insert("ME", a.user_id.clone());
        vars.insert("MEN", actor.to_string());
    } else {
        vars.insert("ME", "nobody".into());
        vars.insert("MEN", "nobody".into());
    }
    let url = substitute(if url.is_empty() { path } else { url }, &vars);
    let method: Method = method.parse().expect("method");
    let mut req = s.client.request(method.clone(), format!("{}{url}", s.base));
    if let Some(a) = &auth {
        req = req
            .header("X-User-Id", &a.user_id)
            .header("X-Auth-Token", &a.token);
    }
    if body == "multipart" {
        let form = if path.contains("setAvatar") {
            svg_file()
        } else {
            text_file()
        };
        req = req.multipart(form);
    } else if !body.is_empty() {
        let value: Value = serde_json::from_str(&substitute(body, &vars)).expect("row body");
        if method == Method::GET {
            let query: Vec<(String, String)> = value
                .as_object()
                .expect("query object")
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect();
            req = req.query(&query);
        } else {
            req = req.json(&value);
        }
    }
    let resp = req.send().await.map_err(|e| format!("{endpoint}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let expected = allowed(allow).contains(actor);
    let got = !denied(status, &value);
    if status >= 500 {
        return Err(format!("{endpoint} {body} as {actor}: {status} {value}"));
    }
    if expected != got {
        let want = if expected { "allow" } else { "deny" };
        let short: String = value.to_string().chars().take(160).collect();
        return Err(format!(
            "{endpoint} {body} as {actor}: expected {want}, got {status} {short}"
        ));
    }
    Ok(())
}

/// `X-User-Id` naming someone else (the admin) with the caller's own valid token is not a
/// login as either: 401, and a privileged call made that way changes nothing.
async fn forged_credentials(s: &Server, fx: &Fixture) -> Vec<String> {
    // A fresh login: the matrix's last rows ended everyone's earlier sessions.
    let member = s.login("member").await;
    let forged = Auth {
        user_id: fx.auth["admin"].user_id.clone(),
        token: member.token.clone(),
    };
    let mut failures = Vec::new();
    let (status, v) = s.get("/api/v1/me", &forged).await;
    if status != 401 {
        failures.push(format!("forged X-User-Id on me: {status} {v}"));
    }
    let grant = json!({"userId": fx.auth["member"].user_id, "data": {"roles": ["user", "admin"]}});
    let (status, v) = s.post("/api/v1/users.update", &forged, grant).await;
    if status != 401 {
        failures.push(format!("forged X-User-Id on users.update: {status} {v}"));
    }
    let (_, me) = s.get("/api/v1/me", &member).await;
    if me["roles"] != json!(["user"]) {
        failures.push(format!("forged call changed member's roles: {me}"));
    }
    failures
}

#[test]
fn every_endpoint_has_a_row() {
    let rows: BTreeSet<&str> = ROWS.iter().map(|r| r.0).collect();
    let routes: BTreeSet<String> = apogee_rc::endpoints()
        .into_iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !rows.contains(r.as_str()))
        .collect();
    let stale: Vec<&&str> = rows.iter().filter(|r| !routes.contains(**r)).collect();
    assert!(
        missing.is_empty(),
        "endpoints without a row in the authorization matrix: {missing:#?}"
    );
    assert!(
        stale.is_empty(),
        "rows for endpoints that do not exist: {stale:#?}"
    );
    for row in ROWS {
        allowed(row.4);
    }
}

async fn run(backend: Backend) {
    let s = Server::start(backend).await;
    let fx = Fixture::build(&s).await;
    let mut failures = Vec::new();
    let mut total = 0;
    for last in [false, true] {
        let calls: Vec<(&Row, &'static str)> = ROWS
            .iter()
            .filter(|row| (row.3 == Last) == last)
            .flat_map(|row| ACTORS.iter().map(move |a| (row, *a)))
            .collect();
        total += calls.len();
        let phase: Vec<String> = futures_util::stream::iter(calls)
            .map(|(row, actor)| check(&s, &fx, row, actor))
            .buffer_unordered(8)
            .filter_map(|r| async move { r.err() })
            .collect()
            .await;
        failures.extend(phase);
    }
    failures.sort();
    failures.extend(forged_credentials(&s, &fx).await);
    assert!(
        failures.is_empty(),
        "{backend:?}: {} of {total} calls disagree with the matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    for backend in backends() {
        run(backend).await;
    }
}

/// A custom room-scoped role from creation to deletion: it is granted a permission, given to a
/// member in one room (where it then lets them act, and nowhere else), renamed, refused deletion
/// while held, and deleted once not. Built-in roles keep their names and cannot be deleted.
async fn custom_role_lifecycle(backend: Backend) {
    let s = Server::start(backend).await;
    let admin = s.user("admin").await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let mut rooms = Vec::new();
    for name in ["one", "two"] {
        let v = post(
            &s,
            "/api/v1/channels.create",
            &admin,
            json!({"name": name, "members": ["alice", "bob"]}),
        )
        .await;
        rooms.push(v["channel"]["_id"].as_str().unwrap().to_string());
    }
    let v = post(
        &s,
        "/api/v1/roles.create",
        &admin,
        json!({"name": "helper", "scope": "Subscriptions"}),
    )
    .await;
    let role = v["role"]["_id"].as_str().unwrap().to_string();
    post(
        &s,
        "/api/v1/permissions.update",
        &admin,
        json!({"permissions": [{"_id": "set-moderator", "roles": ["admin", "owner", role]}]}),
    )
    .await;
    let make_bob_moderator = |rid: &str| json!({"roomId": rid, "userId": bob.user_id});
    // Without the role alice may not; with it in room one she may there, not in room two.
    let (status, _) = s
        .post(
            "/api/v1/channels.addModerator",
            &alice,
            make_bob_moderator(&rooms[0]),
        )
        .await;
    assert_eq!(status, 403);
    post(
        &s,
        "/api/v1/roles.addUserToRole",
        &admin,
        json!({"roleId": role, "username": "alice", "roomId": rooms[0]}),
    )
    .await;
    post(
        &s,
        "/api/v1/channels.addModerator",
        &alice,
        make_bob_moderator(&rooms[0]),
    )
    .await;
    let (status, _) = s
        .post(
            "/api/v1/channels.addModerator",
            &alice,
            make_bob_moderator(&rooms[1]),
        )
        .await;
    assert_eq!(status, 403);

    let refused = |got: (reqwest::StatusCode, Value), code: &str| {
        assert_eq!(got.0, 400, "{}", got.1);
        assert_eq!(got.1["errorType"], code, "{}", got.1);
    };
    refused(
        s.post("/api/v1/roles.delete", &admin, json!({"roleId": role}))
            .await,
        "error-role-in-use",
    );
    refused(
        s.post(
            "/api/v1/roles.update",
            &admin,
            json!({"roleId": "admin", "name": "boss"}),
        )
        .await,
        "error-role-protected",
    );
    refused(
        s.post(
            "/api/v1/roles.update",
            &admin,
            json!({"roleId": "user", "scope": "Subscriptions"}),
        )
        .await,
        "error-role-protected",
    );
    refused(
        s.post(
            "/api/v1/roles.update",
            &admin,
            json!({"roleId": role, "name": "moderator"}),
        )
        .await,
        "error-duplicate-role-names-not-allowed",
    );
    refused(
        s.post("/api/v1/roles.delete", &admin, json!({"roleId": "admin"}))
            .await,
        "error-role-protected",
    );
    let v = post(
        &s,
        "/api/v1/roles.update",
        &admin,
        json!({"roleId": role, "name": "helpers", "description": "Helps"}),
    )
    .await;
    assert_eq!(
        (v["role"]["name"].clone(), v["role"]["scope"].clone()),
        (json!("helpers"), json!("Subscriptions"))
    );
    post(
        &s,
        "/api/v1/roles.removeUserFromRole",
        &admin,
        json!({"roleId": role, "username": "alice", "scope": rooms[0]}),
    )
    .await;
    let (status, _) = s
        .post(
            "/api/v1/channels.removeModerator",
            &alice,
            make_bob_moderator(&rooms[0]),
        )
        .await;
    assert_eq!(status, 403, "the role is gone, and with it the permission");
    post(&s, "/api/v1/roles.delete", &admin, json!({"roleId": role})).await;
    let (_, roles) = s.get("/api/v1/roles.list", &admin).await;
    let ids: Vec<&str> = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["_id"].as_str())
        .collect();
    assert!(
        !ids.contains(&role.as_str()) && ids.contains(&"admin"),
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_roles() {
    for backend in backends() {
        custom_role_lifecycle(backend).await;
    }
}
