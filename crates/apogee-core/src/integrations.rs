//! Integrations (`integrations.*`, `channels.getIntegrations`, `groups.getIntegrations`):
//! incoming webhooks, which post Slack-style payloads into rooms as a chosen user
//! (`POST /hooks/<id>/<token>`), and outgoing webhooks, stored here and delivered later.
//!
//! Who may manage them: `manage-incoming-integrations` / `manage-outgoing-integrations` (all of
//! that type), or the `manage-own-*` variants (only those one created).
//!
//! Tokens: an incoming webhook's token is part of its URL, which Rocket.Chat shows with the
//! integration every time it is opened (`integrations.get`/`list` carry `token`), and an outgoing
//! webhook's token is *sent* to the remote service with each call. Both must be readable again,
//! so neither can be stored as a one-way hash; they are kept out of logs and `Debug` instead, and
//! an incoming token is compared in constant time.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::messages::NewMessage;
use crate::rooms::RoomRef;
use crate::store::{Change, Page};
use apogee_domain::ids::random_string;
use apogee_domain::{Room, RoomType, Timestamp, User, UserRef, random_id};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const INCOMING: &str = "webhook-incoming";
pub const OUTGOING: &str = "webhook-outgoing";

/// Events an outgoing webhook may fire on (Rocket.Chat's `outgoingEvents`).
const OUTGOING_EVENTS: &[&str] = &[
    "sendMessage",
    "fileUploaded",
    "roomArchived",
    "roomCreated",
    "roomJoined",
    "roomLeft",
    "userCreated",
];

/// Channel targets an outgoing webhook may use besides `#room` and `@user`.
const OUTGOING_CHANNEL_KEYWORDS: &[&str] = &[
    "all_public_channels",
    "all_private_groups",
    "all_direct_messages",
];

/// Optional fields kept as sent (type-checked), per type.
const INCOMING_FIELDS: &[&str] = &[
    "alias",
    "avatar",
    "emoji",
    "script",
    "overrideDestinationChannelEnabled",
];
const OUTGOING_FIELDS: &[&str] = &[
    "alias",
    "avatar",
    "emoji",
    "script",
    "retryFailedCalls",
    "retryCount",
    "retryDelay",
    "impersonateUser",
    "runOnEdits",
    "targetRoom",
    "triggerWordAnywhere",
];

/// Rocket.Chat's `IIncomingIntegration` / `IOutgoingIntegration`: the common fields, the rest
/// (`alias`, `event`, `urls`, `triggerWords`, …) in `extra`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    /// The user messages are posted as.
    pub username: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    pub channel: Vec<String>,
    pub token: String,
    #[serde(rename = "scriptEnabled")]
    pub script_enabled: bool,
    #[serde(rename = "_createdAt")]
    pub created_at: Timestamp,
    #[serde(rename = "_createdBy")]
    pub created_by: Option<UserRef>,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("user_id", &self.user_id)
            .field("channel", &self.channel)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Integration {
    fn created_by_id(&self) -> Option<&str> {
        self.created_by.as_ref().map(|u| u.id.as_str())
    }

    fn extra_str(&self, key: &str) -> &str {
        self.extra.get(key).and_then(Value::as_str).unwrap_or("")
    }
}

/// What `integrations.create` / `.update` carry (Rocket.Chat's body, as JSON).
pub type IntegrationInput = Map<String, Value>;

/// Filter for listing integrations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntegrationQuery {
    /// Only these types.
    pub kinds: Vec<String>,
    /// Types of which only the caller's own are listed.
    pub own_only_kinds: Vec<String>,
    /// The caller (for `own_only_kinds`).
    pub actor_id: String,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Only integrations targeting any of these (`#name`, `all_public_channels`, …).
    pub channels_any: Vec<String>,
}

/// A Slack-style payload (an incoming webhook's body, an outgoing webhook's answer) as a
/// message: text, thread, and the fields kept (`alias`, `avatar`/`emoji`, `attachments` with
/// `msg` → `text`, `parseUrls`, `bot`, `groupable`, `customFields`), with the integration's
/// defaults where the payload says nothing.
pub(crate) fn webhook_message(
    integration: &Integration,
    payload: &Map<String, Value>,
) -> (String, Option<String>, Map<String, Value>) {
    let text = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut extra = Map::new();
    let alias = text("username")
        .or_else(|| text("alias"))
        .or(Some(integration.extra_str("alias")).filter(|s| !s.is_empty()));
    if let Some(alias) = alias {
        extra.insert("alias".into(), json!(alias));
    }
    if let Some(avatar) = text("icon_url").or_else(|| text("avatar")) {
        extra.insert("avatar".into(), json!(avatar));
    } else if let Some(emoji) = text("icon_emoji").or_else(|| text("emoji")) {
        extra.insert("emoji".into(), json!(emoji));
    } else if !integration.extra_str("avatar").is_empty() {
        extra.insert("avatar".into(), json!(integration.extra_str("avatar")));
    } else if !integration.extra_str("emoji").is_empty() {
        extra.insert("emoji".into(), json!(integration.extra_str("emoji")));
    }
    let attachments = match payload.get("attachments") {
        Some(Value::Array(a)) => Some(a.clone()),
        _ => None,
    };
    let parse_urls = payload
        .get("parseUrls")
        .and_then(Value::as_bool)
        .unwrap_or(attachments.is_none());
    let attachments: Vec<Value> = attachments
        .unwrap_or_default()
        .into_iter()
        .map(|mut a| {
            // Slack's `msg` in an attachment is Rocket.Chat's `text`.
            if let Some(obj) = a.as_object_mut()
                && let Some(Value::String(m)) = obj.remove("msg")
                && !m.is_empty()
            {
                obj.insert("text".into(), json!(m.trim()));
            }
            a
        })
        .collect();
    extra.insert("attachments".into(), Value::Array(attachments));
    extra.insert("parseUrls".into(), json!(parse_urls));
    extra.insert("bot".into(), json!({"i": integration.id}));
    extra.insert(
        "groupable".into(),
        payload
            .get("groupable")
            .and_then(Value::as_bool)
            .map_or(json!(false), Value::Bool),
    );
    if let Some(cf) = payload.get("customFields").filter(|v| v.is_object()) {
        extra.insert("customFields".into(), cf.clone());
    }
    let msg = text("text")
        .or_else(|| text("msg"))
        .unwrap_or("")
        .trim()
        .to_string();
    let tmid = text("tmid").map(str::to_string);
    (msg, tmid, extra)
}

fn unauthorized() -> CoreError {
    CoreError::bad("not_authorized", "Unauthorized")
}

fn invalid_channel() -> CoreError {
    CoreError::bad("error-invalid-channel", "Invalid Channel")
}

/// `channel` as a list: a comma-separated string or an array of strings, trimmed, empty dropped.
fn channel_list(v: Option<&Value>) -> CoreResult<Vec<String>> {
    let items: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(|c| c.trim().to_string()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|c| {
                c.as_str()
                    .map(|c| c.trim().to_string())
                    .ok_or_else(invalid_channel)
            })
            .collect::<CoreResult<_>>()?,
        Some(_) => return Err(invalid_channel()),
    };
    let mut out: Vec<String> = Vec::new();
    for c in items.into_iter().filter(|c| !c.is_empty()) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

fn required_str<'a>(input: &'a IntegrationInput, key: &str, code: &str) -> CoreResult<&'a str> {
    input
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CoreError::bad(code, format!("Invalid {key}")))
}

/// Copies the optional `fields` present in `input` into `extra`, checking their JSON types.
fn copy_fields(
    input: &IntegrationInput,
    fields: &[&str],
    extra: &mut Map<String, Value>,
) -> CoreResult<()> {
    for key in fields {
        let Some(v) = input.get(*key) else { continue };
        let ok = match *key {
            "overrideDestinationChannelEnabled"
            | "retryFailedCalls"
            | "impersonateUser"
            | "runOnEdits"
            | "triggerWordAnywhere" => v.is_boolean(),
            "retryCount" | "retryDelay" => v.is_number() || v.is_string(),
            _ => v.is_string(),
        };
        if !ok && !v.is_null() {
            return Err(CoreError::invalid_params(format!("Invalid {key}")));
        }
        if v.is_null() {
            extra.remove(*key);
        } else {
            extra.insert(key.to_string(), v.clone());
        }
    }
    Ok(())
}

/// Constant-time equality, so a token cannot be guessed a character at a time.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The result of one incoming webhook call: the messages posted, one per target.
#[derive(Debug, Clone)]
pub struct HookResult {
    pub responses: Vec<(String, apogee_domain::Message)>,
    pub separate_response: bool,
}

/// Why an incoming webhook call was refused before anything was posted.
pub const HOOK_DISABLED: &str = "integration-disabled";

impl Core {
    fn may_manage(&self, actor: &User, kind: &str) -> (bool, bool) {
        let short = if kind == INCOMING {
            "incoming"
        } else {
            "outgoing"
        };
        (
            self.authz
                .has(actor, &format!("manage-{short}-integrations")),
            self.authz
                .has(actor, &format!("manage-own-{short}-integrations")),
        )
    }

    /// Whether `actor` may see or change `integration` (all of its type, or their own).
    fn may_touch(&self, actor: &User, integration: &Integration) -> bool {
        let (all, own) = self.may_manage(actor, &integration.kind);
        all || (own && integration.created_by_id() == Some(actor.id.as_str()))
    }

    fn may_manage_any(&self, actor: &User) -> bool {
        [INCOMING, OUTGOING].iter().any(|k| {
            let (all, own) = self.may_manage(actor, k);
            all || own
        })
    }

    /// Checks the channels of an integration of `kind` and that `actor` may target them.
    async fn check_channels(
        &self,
        actor: &User,
        kind: &str,
        channels: &[String],
    ) -> CoreResult<()> {
        let (all, _) = self.may_manage(actor, kind);
        for channel in channels {
            if kind == OUTGOING && OUTGOING_CHANNEL_KEYWORDS.contains(&channel.as_str()) {
                continue;
            }
            let invalid_room = || CoreError::bad("error-invalid-room", "Invalid room");
            // `Some(rid)` for a room, `None` for a user (a DM made when posting).
            let rid: Option<String> = match (channel.chars().next(), channel.get(1..).unwrap_or(""))
            {
                (Some('#'), name) => {
                    let room = match self.store.room_by_name(name).await? {
                        Some(r) => Some(r),
                        None => self.store.room_by_id(name).await?,
                    };
                    Some(room.ok_or_else(invalid_room)?.id)
                }
                (Some('@'), name) => {
                    self.store
                        .user_by_username(name)
                        .await?
                        .ok_or_else(invalid_room)?;
                    None
                }
                _ => return Err(invalid_channel()),
            };
            // Users allowed only their own integrations may target only rooms they are in.
            if let Some(rid) = rid
                && !all
                && self.store.subscription(&rid, &actor.id).await?.is_none()
            {
                return Err(invalid_channel());
            }
        }
        Ok(())
    }

    /// Builds a checked integration from `input`, over `existing` when updating.
    async fn integration_from(
        &self,
        actor: &User,
        kind: &str,
        input: &IntegrationInput,
        existing: Option<Integration>,
    ) -> CoreResult<(Integration, User)> {
        let channels = channel_list(input.get("channel"))?;
        if kind == INCOMING && channels.is_empty() {
            return Err(invalid_channel());
        }
        let username = required_str(input, "username", "error-invalid-username")?;
        let name = input
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("");
        if name.is_empty() {
            return Err(CoreError::bad("error-invalid-name", "Invalid name"));
        }
        let mut extra = existing
            .as_ref()
            .map(|e| e.extra.clone())
            .unwrap_or_default();
        if kind == OUTGOING {
            let event = required_str(input, "event", "error-invalid-event-type")?;
            if !OUTGOING_EVENTS.contains(&event) {
                return Err(CoreError::bad(
                    "error-invalid-event-type",
                    "Invalid event type",
                ));
            }
            let urls: Vec<String> = match input.get("urls") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_string)
                    .collect(),
                Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
                _ => Vec::new(),
            };
            if urls.is_empty()
                || urls
                    .iter()
                    .any(|u| !(u.starts_with("http://") || u.starts_with("https://")))
            {
                return Err(CoreError::bad("error-invalid-urls", "Invalid URLs"));
            }
            let words: Vec<Value> = match input.get("triggerWords") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(|w| Value::String(w.to_string()))
                    .collect(),
                Some(Value::String(s)) => s
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(|w| Value::String(w.to_string()))
                    .collect(),
                _ => Vec::new(),
            };
            extra.insert("event".into(), json!(event));
            extra.insert("urls".into(), json!(urls));
            extra.insert("triggerWords".into(), Value::Array(words));
            copy_fields(input, OUTGOING_FIELDS, &mut extra)?;
        } else {
            copy_fields(input, INCOMING_FIELDS, &mut extra)?;
            extra
                .entry("overrideDestinationChannelEnabled")
                .or_insert(Value::Bool(false));
        }
        self.check_channels(actor, kind, &channels).await?;
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or_else(|| CoreError::bad("error-invalid-user", "Invalid user"))?;
        let now = Timestamp::now();
        // An outgoing token is the caller's to choose (the remote service checks it); an
        // incoming one is ours and never changes.
        let given = input
            .get("token")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty() && kind == OUTGOING);
        let token = match (&existing, given) {
            (_, Some(t)) => t.to_string(),
            (Some(e), None) => e.token.clone(),
            (None, None) if kind == INCOMING => random_string(48),
            (None, None) => random_string(24),
        };
        let integration = Integration {
            id: existing.as_ref().map_or_else(random_id, |e| e.id.clone()),
            kind: kind.to_string(),
            name: name.to_string(),
            enabled: input
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or_else(|| existing.as_ref().is_none_or(|e| e.enabled)),
            username: user.username.clone(),
            user_id: user.id.clone(),
            channel: channels,
            token,
            script_enabled: input
                .get("scriptEnabled")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            created_by: existing
                .as_ref()
                .map_or_else(|| Some(actor.as_ref()), |e| e.created_by.clone()),
            updated_at: now,
            extra,
        };
        Ok((integration, user))
    }

    /// `integrations.create`.
    pub async fn create_integration(
        &self,
        actor: &User,
        input: &IntegrationInput,
    ) -> CoreResult<Integration> {
        let kind = match input.get("type").and_then(Value::as_str) {
            Some(k @ (INCOMING | OUTGOING)) => k,
            _ => return Err(CoreError::bad("", "Invalid integration type.")),
        };
        let (all, own) = self.may_manage(actor, kind);
        if !all && !own {
            return Err(unauthorized());
        }
        let (mut integration, mut user) = self.integration_from(actor, kind, input, None).await?;
        if let Some(by) = integration.created_by.as_mut() {
            by.name = None;
        }
        let mut changes = vec![Change::UpsertIntegration(integration.clone())];
        // As Rocket.Chat: whoever an incoming webhook posts as becomes a bot.
        if kind == INCOMING && !user.has_role("bot") {
            user.roles.push("bot".into());
            changes.push(Change::UpdateUser(user));
        }
        self.commit(changes).await?;
        integration.updated_at = integration.created_at;
        Ok(integration)
    }

    /// `integrations.update` (Rocket.Chat uses PUT): an incoming one by `integrationId`, an
    /// outgoing one by `integrationId` or `target_url`.
    pub async fn update_integration(
        &self,
        actor: &User,
        input: &IntegrationInput,
    ) -> CoreResult<Integration> {
        let kind = match input.get("type").and_then(Value::as_str) {
            Some(k @ (INCOMING | OUTGOING)) => k,
            _ => return Err(CoreError::bad("", "Invalid integration type.")),
        };
        let existing = self.find_integration(kind, input).await?;
        if !self.may_touch(actor, &existing) {
            return Err(unauthorized());
        }
        let (integration, _) = self
            .integration_from(actor, kind, input, Some(existing))
            .await?;
        self.commit(vec![Change::UpsertIntegration(integration.clone())])
            .await?;
        Ok(integration)
    }

    /// The integration of `kind` named by `integrationId` (or, outgoing, `target_url`).
    async fn find_integration(
        &self,
        kind: &str,
        input: &IntegrationInput,
    ) -> CoreResult<Integration> {
        let not_found = || CoreError::bad("", "No integration found.");
        let id = input.get("integrationId").and_then(Value::as_str);
        let url = input.get("target_url").and_then(Value::as_str);
        let found = match (id, url) {
            (Some(id), _) => self.store.integration_by_id(id).await?,
            (None, Some(url)) if kind == OUTGOING => {
                self.store.outgoing_integration_by_url(url).await?
            }
            (None, _) if kind == OUTGOING => {
                return Err(CoreError::bad(
                    "",
                    "An integrationId or target_url needs to be provided.",
                ));
            }
            _ => {
                return Err(CoreError::invalid_params(
                    "must have required property 'integrationId'",
                ));
            }
        };
        found.filter(|i| i.kind == kind).ok_or_else(not_found)
    }

    /// `integrations.remove`: the integration and its history.
    pub async fn remove_integration(
        &self,
        actor: &User,
        input: &IntegrationInput,
    ) -> CoreResult<Integration> {
        if !self.may_manage_any(actor) {
            return Err(CoreError::unauthorized());
        }
        let kind = match input.get("type").and_then(Value::as_str) {
            Some(k @ (INCOMING | OUTGOING)) => k,
            _ => return Err(CoreError::bad("", "Invalid integration type.")),
        };
        let integration = self.find_integration(kind, input).await?;
        if !self.may_touch(actor, &integration) {
            return Err(unauthorized());
        }
        self.commit(vec![Change::DeleteIntegration(integration.id.clone())])
            .await?;
        Ok(integration)
    }

    /// `integrations.get`.
    pub async fn integration(
        &self,
        actor: &User,
        id: &str,
        created_by: Option<&str>,
    ) -> CoreResult<Integration> {
        if !self.may_manage_any(actor) {
            return Err(CoreError::unauthorized());
        }
        let not_found = || CoreError::bad("", "The integration does not exists.");
        let integration = self
            .store
            .integration_by_id(id)
            .await?
            .filter(|i| created_by.is_none_or(|c| i.created_by_id() == Some(c)))
            .ok_or_else(not_found)?;
        if !self.may_touch(actor, &integration) {
            return Err(not_found());
        }
        Ok(integration)
    }

    /// The listing filter for what `actor` may see, or `None` when nothing.
    fn visible_integrations(&self, actor: &User) -> Option<IntegrationQuery> {
        let mut q = IntegrationQuery {
            actor_id: actor.id.clone(),
            ..Default::default()
        };
        for kind in [INCOMING, OUTGOING] {
            match self.may_manage(actor, kind) {
                (true, _) => q.kinds.push(kind.into()),
                (false, true) => {
                    q.kinds.push(kind.into());
                    q.own_only_kinds.push(kind.into());
                }
                _ => {}
            }
        }
        (!q.kinds.is_empty()).then_some(q)
    }

    /// `integrations.list`, newest first; `kind` narrows to one type.
    pub async fn integrations(
        &self,
        actor: &User,
        name: Option<&str>,
        kind: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<Integration>, i64)> {
        let mut q = self
            .visible_integrations(actor)
            .ok_or_else(CoreError::unauthorized)?;
        if let Some(kind) = kind.filter(|k| !k.is_empty()) {
            q.kinds.retain(|k| k == kind);
        }
        q.name_contains = name.filter(|n| !n.is_empty()).map(str::to_string);
        if q.kinds.is_empty() {
            return Ok((Vec::new(), 0));
        }
        Ok(self.store.integrations(&q, page).await?)
    }

    /// `channels.getIntegrations` / `groups.getIntegrations`: integrations targeting the room
    /// (and, when asked, all public channels / all private groups).
    pub async fn room_integrations(
        &self,
        actor: &User,
        room: &RoomRef,
        include_all: bool,
        page: Page,
    ) -> CoreResult<(Vec<Integration>, i64)> {
        let mut q = self
            .visible_integrations(actor)
            .ok_or_else(CoreError::unauthorized)?;
        let room = self.find_room(room).await?;
        let name = room.name.clone().unwrap_or_default();
        q.channels_any = vec![format!("#{name}")];
        if include_all {
            q.channels_any.push(
                match room.t {
                    RoomType::Group => "all_private_groups",
                    _ => "all_public_channels",
                }
                .into(),
            );
        }
        Ok(self.store.integrations(&q, page).await?)
    }

    /// `integrations.history`: delivery records of an outgoing integration, newest first.
    pub async fn integration_history(
        &self,
        actor: &User,
        id: &str,
        page: Page,
    ) -> CoreResult<(Vec<Value>, i64)> {
        let (all, own) = self.may_manage(actor, OUTGOING);
        if !all && !own {
            return Err(CoreError::unauthorized());
        }
        if id.trim().is_empty() {
            return Err(CoreError::bad("", "Invalid integration id."));
        }
        let Some(integration) = self.store.integration_by_id(id).await? else {
            return Ok((Vec::new(), 0));
        };
        if !self.may_touch(actor, &integration) {
            return Ok((Vec::new(), 0));
        }
        Ok(self.store.integration_history(id, page).await?)
    }

    /// An incoming webhook call (`/hooks/<id>/<token>`): posts `payload` (Slack-compatible:
    /// `text`/`msg`, `attachments`, `username`/`alias`, `icon_emoji`/`emoji`,
    /// `icon_url`/`avatar`, `channel`/`roomId` when overriding is enabled, `tmid`) as the
    /// integration's user to each target.
    pub async fn run_incoming_webhook(
        &self,
        id: &str,
        token: &str,
        payload: Map<String, Value>,
    ) -> CoreResult<HookResult> {
        let integration = self
            .store
            .integration_by_id(id)
            .await?
            .filter(|i| i.kind == INCOMING && same_secret(&i.token, token))
            .ok_or_else(|| {
                CoreError::new(
                    crate::error::ErrorKind::Unauthenticated,
                    "",
                    "Invalid integration id or token provided.",
                )
            })?;
        let user = self
            .store
            .user_by_id(&integration.user_id)
            .await?
            .filter(|u| u.active)
            .ok_or_else(CoreError::unauthenticated)?;
        if !integration.enabled {
            return Err(CoreError::bad(HOOK_DISABLED, "Service Unavailable"));
        }
        let separate_response = payload.get("separateResponse") == Some(&Value::Bool(true));
        let mut result = HookResult {
            responses: Vec::new(),
            separate_response,
        };
        if payload.is_empty() {
            return Ok(result);
        }
        let override_target = payload.get("channel").or_else(|| payload.get("roomId"));
        if override_target.is_some_and(|v| !v.is_null())
            && integration.extra.get("overrideDestinationChannelEnabled")
                != Some(&Value::Bool(true))
        {
            return Err(CoreError::bad(
                "",
                "overriding destination channel is disabled for this integration",
            ));
        }
        let targets = match override_target.filter(|v| !v.is_null()) {
            Some(v) => channel_list(Some(v)).map_err(|_| CoreError::bad("", "invalid-channel"))?,
            None => integration.channel.clone(),
        };
        let (msg, tmid, extra) = webhook_message(&integration, &payload);
        for target in targets {
            let room = self.webhook_room(&user, &target).await?;
            let new = NewMessage {
                id: None,
                rid: room.id.clone(),
                msg: msg.clone(),
                tmid: tmid.clone(),
                tshow: false,
                extra: extra.clone(),
            };
            let message = self.send_integration_message(&user, new).await?;
            result.responses.push((target, message));
        }
        Ok(result)
    }

    /// The room a webhook target names: `#room` (joined when public), `@username` (a DM), or a
    /// room id or name, else a DM with that user id.
    pub(crate) async fn webhook_room(&self, user: &User, target: &str) -> CoreResult<Room> {
        let invalid = || CoreError::bad("invalid-channel", "Invalid channel");
        let (prefix, rest) = target.split_at(target.chars().next().map_or(0, char::len_utf8));
        let find = |name: String| async move {
            match self.store.room_by_name(&name).await? {
                Some(r) => Ok::<_, CoreError>(Some(r)),
                None => Ok(self.store.room_by_id(&name).await?),
            }
        };
        let room = match prefix {
            "@" => return self.create_direct_as(user, rest).await,
            "#" => find(rest.to_string()).await?.ok_or_else(invalid)?,
            _ => match find(target.to_string()).await? {
                Some(r) => r,
                None => {
                    let other = self.store.user_by_id(target).await?.ok_or_else(invalid)?;
                    return self.create_direct_as(user, &other.username).await;
                }
            },
        };
        if room.t == RoomType::Channel
            && self.store.subscription(&room.id, &user.id).await?.is_none()
        {
            return self.join_room(user, &RoomRef::Id(room.id), None).await;
        }
        Ok(room)
    }

    async fn create_direct_as(&self, user: &User, username: &str) -> CoreResult<Room> {
        self.create_direct(user, &[username.to_string()])
            .await
            .map_err(|e| {
                if e.code == "error-invalid-user" {
                    CoreError::bad("invalid-channel", "Invalid channel")
                } else {
                    e
                }
            })
    }
}
