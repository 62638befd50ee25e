//! Outgoing webhooks (Rocket.Chat's `triggerHandler`, event `sendMessage`): a message posted
//! where an enabled outgoing integration listens (`#room` by id or name, `@user` for their
//! DMs, `all_public_channels`, `all_private_groups`, `all_direct_messages`), matching one of
//! its trigger words if it has any (at the start, or anywhere with `triggerWordAnywhere`),
//! queues one outbox item per URL in the batch that stores the message. The deliverer POSTs
//! Rocket.Chat's payload (with the integration's `token`) through the outbound client, records
//! the attempt in `integrations.history`, posts the answer's `text`/`attachments` as a reply
//! as the integration's user, and retries failures per `retryFailedCalls`/`retryCount`/
//! `retryDelay` by queueing the next attempt for later. A 410 answer disables the integration.
//!
//! Differences from Rocket.Chat: network failures are retried like failed answers (Rocket.Chat
//! only logs them); the history omits the token; scripts are not run.

use crate::Core;
use crate::error::CoreResult;
use crate::events::Event;
use crate::integrations::{Integration, IntegrationQuery, OUTGOING, webhook_message};
use crate::messages::NewMessage;
use crate::outbound::{OutboundError, OutboundRequest, Overflow, redact_url};
use crate::outbox::{Deliverer, Delivery};
use crate::store::{Change, OutboxItem, Page};
use apogee_domain::{Message, Room, RoomType, Timestamp, random_id};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const KIND: &str = "outgoing_webhook";
/// Answers Rocket.Chat takes as success.
const SUCCESS: [u16; 3] = [200, 201, 202];
/// An answer is read up to this much.
const MAX_ANSWER: usize = 1024 * 1024;

/// The cached list is read again after this long even without news of a change (a node that
/// missed an event is wrong for at most this long).
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Integrations read per page when filling the cache.
const CACHE_PAGE: i64 = 500;

/// The enabled outgoing integrations of event `sendMessage`, which every sent or edited message
/// is matched against: read from the store once, then kept until an integration changes on any
/// node (`Event::Integrations`) or [`CACHE_TTL`] passes. A fill that raced with a change is not
/// kept (the generation moved).
#[derive(Default)]
pub(crate) struct Cache {
    inner: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    listeners: Option<(Arc<Vec<Integration>>, Instant)>,
    generation: u64,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached list, or the generation to fill it at.
    fn get(&self) -> Result<Arc<Vec<Integration>>, u64> {
        let state = self.lock();
        match &state.listeners {
            Some((list, at)) if at.elapsed() < CACHE_TTL => Ok(list.clone()),
            _ => Err(state.generation),
        }
    }

    fn fill(&self, generation: u64, list: Arc<Vec<Integration>>) {
        let mut state = self.lock();
        if state.generation == generation {
            state.listeners = Some((list, Instant::now()));
        }
    }

    pub(crate) fn apply(&self, event: &Event) {
        if matches!(event, Event::Integrations) {
            self.clear();
        }
    }

    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.listeners = None;
    }
}

/// One delivery to one URL of one integration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Call {
    integration: String,
    url: String,
    mid: String,
    #[serde(default)]
    word: Option<String>,
    /// Attempts before this one.
    #[serde(default)]
    tries: u32,
}

impl Core {
    /// The enabled outgoing integrations of event `sendMessage`, newest first, from the cache.
    async fn outgoing_webhook_listeners(&self) -> CoreResult<Arc<Vec<Integration>>> {
        let generation = match self.outgoing_webhooks.get() {
            Ok(list) => return Ok(list),
            Err(generation) => generation,
        };
        let query = IntegrationQuery {
            kinds: vec![OUTGOING.into()],
            ..Default::default()
        };
        let mut listeners = Vec::new();
        let mut offset = 0;
        loop {
            let page = Page {
                offset,
                count: CACHE_PAGE,
            };
            let (found, _) = self.store.integrations(&query, page).await?;
            let last = (found.len() as i64) < CACHE_PAGE;
            offset += found.len() as i64;
            listeners.extend(found.into_iter().filter(|i| {
                i.enabled && i.extra.get("event").and_then(Value::as_str) == Some("sendMessage")
            }));
            if last {
                break;
            }
        }
        let listeners = Arc::new(listeners);
        self.outgoing_webhooks.fill(generation, listeners.clone());
        Ok(listeners)
    }

    /// The outbox items the `sendMessage` event of `message` (stored in `room`) fires. `edited`:
    /// only integrations with `runOnEdits` fire on edits.
    pub(crate) async fn outgoing_webhook_calls(
        &self,
        room: &Room,
        message: &Message,
        edited: bool,
    ) -> CoreResult<Vec<Change>> {
        if message.t.is_some() {
            return Ok(Vec::new());
        }
        let mut targets = Vec::new();
        match room.t {
            RoomType::Direct => {
                targets.push("all_direct_messages".to_string());
                for uid in &room.uids {
                    targets.push(format!("@{uid}"));
                }
                for name in room.usernames.iter().filter(|n| **n != message.u.username) {
                    targets.push(format!("@{name}"));
                }
            }
            RoomType::Channel | RoomType::Group => {
                targets.push(
                    if room.t == RoomType::Channel {
                        "all_public_channels"
                    } else {
                        "all_private_groups"
                    }
                    .to_string(),
                );
                targets.push(format!("#{}", room.id));
                if let Some(name) = &room.name {
                    targets.push(format!("#{name}"));
                }
            }
        }
        let listeners = self.outgoing_webhook_listeners().await?;
        let bot_of = message
            .extra
            .get("bot")
            .and_then(|b| b.get("i"))
            .and_then(Value::as_str);
        let mut changes = Vec::new();
        let found = listeners
            .iter()
            .filter(|i| i.channel.iter().any(|c| targets.contains(c)));
        for integration in found {
            let flag = |k: &str| integration.extra.get(k) == Some(&Value::Bool(true));
            if bot_of == Some(integration.id.as_str()) || (edited && !flag("runOnEdits")) {
                continue;
            }
            let words: Vec<&str> = integration
                .extra
                .get("triggerWords")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let word = words.iter().find(|w| {
                if flag("triggerWordAnywhere") {
                    message.msg.contains(**w)
                } else {
                    message.msg.starts_with(**w)
                }
            });
            if !words.is_empty() && word.is_none() {
                continue;
            }
            for url in integration
                .extra
                .get("urls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let call = Call {
                    integration: integration.id.clone(),
                    url: url.to_string(),
                    mid: message.id.clone(),
                    word: word.map(|w| w.to_string()),
                    tries: 0,
                };
                changes.push(self.enqueue(KIND, json!(call)));
            }
        }
        Ok(changes)
    }

    /// Rocket.Chat's `sendMessage` payload.
    fn outgoing_payload(
        &self,
        integration: &Integration,
        call: &Call,
        room: &Room,
        m: &Message,
    ) -> Value {
        let mut data = Map::new();
        data.insert("token".into(), json!(integration.token));
        data.insert(
            "bot".into(),
            json!(m.extra.get("bot").is_some_and(|b| !b.is_null())),
        );
        if let Some(word) = &call.word {
            data.insert("trigger_word".into(), json!(word));
        }
        data.insert("channel_id".into(), json!(room.id));
        data.insert("channel_name".into(), json!(room.name));
        data.insert("message_id".into(), json!(m.id));
        data.insert("timestamp".into(), json!(m.ts));
        data.insert("user_id".into(), json!(m.u.id));
        data.insert("user_name".into(), json!(m.u.username));
        data.insert("text".into(), json!(m.msg));
        data.insert("siteUrl".into(), json!(self.settings.string("Site_Url")));
        if let Some(alias) = m
            .extra
            .get("alias")
            .filter(|a| a.as_str().is_some_and(|s| !s.is_empty()))
        {
            data.insert("alias".into(), alias.clone());
        }
        if m.edited_at.is_some() {
            data.insert("isEdited".into(), json!(true));
        }
        if let Some(tmid) = &m.tmid {
            data.insert("tmid".into(), json!(tmid));
        }
        Value::Object(data)
    }

    /// Posts an answer's message as the integration's user (or the message's author with
    /// `impersonateUser`) into the answer's `channel`, the integration's `targetRoom`, or the
    /// room the message was in.
    async fn post_answer(
        &self,
        integration: &Integration,
        room: &Room,
        author: &str,
        answer: &Map<String, Value>,
    ) -> CoreResult<Vec<Message>> {
        let mut user = None;
        if integration.extra.get("impersonateUser") == Some(&Value::Bool(true)) {
            user = self.store.user_by_username(author).await?;
        }
        if user.is_none() {
            user = self.store.user_by_username(&integration.username).await?;
        }
        let Some(user) = user.filter(|u| u.active) else {
            return Ok(Vec::new());
        };
        let target = answer
            .get("channel")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .or_else(|| {
                integration
                    .extra
                    .get("targetRoom")
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
            })
            .unwrap_or(&room.id)
            .to_string();
        let (msg, tmid, extra) = webhook_message(integration, answer);
        let room = self.webhook_room(&user, &target).await?;
        let sent = self
            .send_integration_message(
                &user,
                NewMessage {
                    id: None,
                    rid: room.id,
                    msg,
                    tmid,
                    tshow: false,
                    extra,
                },
            )
            .await?;
        Ok(vec![sent])
    }
}

/// Rocket.Chat's `retryDelay` for the attempt after `tries` failures; `None` for an unknown one.
fn retry_delay(kind: &str, tries: u32) -> Option<Duration> {
    let ms = match kind {
        "powers-of-ten" => 10u64.saturating_pow(tries + 2),
        "powers-of-two" => 2u64.saturating_pow(tries + 1).saturating_mul(1000),
        "increments-of-two" => (u64::from(tries) + 1) * 2000,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// Delivers `outgoing_webhook` items.
pub(crate) struct OutgoingWebhooks;

#[async_trait]
impl Deliverer for OutgoingWebhooks {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery {
        let Ok(call) = serde_json::from_value::<Call>(payload.clone()) else {
            return Delivery::GiveUp("not an outgoing_webhook payload".into());
        };
        match deliver(core, &call).await {
            Ok(()) => Delivery::Done,
            Err(e) => Delivery::Retry(e.message),
        }
    }
}

async fn deliver(core: &Core, call: &Call) -> CoreResult<()> {
    let Some(integration) = core.store.integration_by_id(&call.integration).await? else {
        return Ok(());
    };
    let Some(message) = core.store.message_by_id(&call.mid).await? else {
        return Ok(());
    };
    let Some(room) = core.store.room_by_id(&message.rid).await? else {
        return Ok(());
    };
    let now = Timestamp::now();
    let mut history = Map::new();
    history.insert("_id".into(), json!(random_id()));
    history.insert("type".into(), json!("outgoing-webhook"));
    history.insert("integration".into(), json!({"_id": integration.id}));
    history.insert("event".into(), json!("sendMessage"));
    history.insert("_createdAt".into(), json!(now));
    history.insert("url".into(), json!(redact_url(&call.url)));
    history.insert("ranPrepareScript".into(), json!(false));
    if let Some(word) = &call.word {
        history.insert("triggerWord".into(), json!(word));
    }
    if !integration.enabled {
        // Disabled since the message was sent: Rocket.Chat stops here too.
        return Ok(());
    }
    let mut data = core.outgoing_payload(&integration, call, &room, &message);
    let mut request = OutboundRequest::post_json(&call.url, &data);
    request.max_body = MAX_ANSWER;
    request.overflow = Overflow::Truncate;
    request.timeout = Duration::from_secs(30);
    request.allowlist = core.outbound_allowlist();
    if let Some(d) = data.as_object_mut() {
        d.remove("token");
    }
    history.insert("data".into(), data.clone());
    history.insert("httpCallData".into(), data);
    let mut changes = Vec::new();
    let outcome = match core.http() {
        Ok(http) => http.fetch(request).await,
        Err(e) => Err(e),
    };
    let failed = match outcome {
        Err(e) => {
            tracing::info!(integration = %integration.id, url = %redact_url(&call.url), error = %e, "outgoing webhook failed");
            history.insert("step".into(), json!("after-http-call"));
            history.insert("httpError".into(), json!(e.to_string()));
            history.insert("httpResult".into(), Value::Null);
            history.insert("error".into(), json!(true));
            // A refused address never becomes reachable by waiting.
            !matches!(e, OutboundError::Refused(_))
        }
        Ok(answer) => {
            let content = String::from_utf8_lossy(&answer.body).into_owned();
            history.insert("httpResult".into(), json!(content));
            let kind = answer
                .header("content-type")
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let parsed = [
                "application/json",
                "text/javascript",
                "application/javascript",
                "application/x-javascript",
            ]
            .contains(&kind.as_str())
            .then(|| serde_json::from_str::<Value>(&content).ok())
            .flatten();
            if content.is_empty() || !SUCCESS.contains(&answer.status) {
                if !content.is_empty() && answer.status == 410 {
                    history.insert("step".into(), json!("after-process-http-status-410"));
                    history.insert("error".into(), json!(true));
                    let mut disabled = integration.clone();
                    disabled.enabled = false;
                    changes.push(Change::UpsertIntegration(disabled));
                    false
                } else if !content.is_empty() && answer.status == 500 {
                    history.insert("step".into(), json!("after-process-http-status-500"));
                    history.insert("error".into(), json!(true));
                    false
                } else {
                    true
                }
            } else {
                let reply = parsed.as_ref().and_then(Value::as_object).filter(|o| {
                    o.get("text").is_some_and(|t| !t.is_null())
                        || o.get("attachments").is_some_and(|a| !a.is_null())
                });
                match reply {
                    Some(reply) => {
                        let sent = core
                            .post_answer(&integration, &room, &message.u.username, reply)
                            .await;
                        match sent {
                            Ok(sent) if !sent.is_empty() => {
                                history.insert("step".into(), json!("url-response-sent-message"));
                                history.insert("resultMessage".into(), json!(sent));
                            }
                            Ok(_) => {
                                history.insert(
                                    "step".into(),
                                    json!("after-http-call-send-message-failed"),
                                );
                            }
                            Err(e) => {
                                history.insert(
                                    "step".into(),
                                    json!("after-http-call-send-message-failed"),
                                );
                                history.insert("errorStack".into(), json!(e.message));
                            }
                        }
                    }
                    None => {
                        history.insert("step".into(), json!("after-http-call"));
                    }
                }
                history.insert("finished".into(), json!(true));
                false
            }
        }
    };
    if failed {
        history.insert("error".into(), json!(true));
        let retry = integration.extra.get("retryFailedCalls") == Some(&Value::Bool(true));
        let count = integration
            .extra
            .get("retryCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let delay_kind = integration
            .extra
            .get("retryDelay")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if retry && count > 0 {
            match retry_delay(delay_kind, call.tries) {
                Some(delay) if u64::from(call.tries) < count => {
                    history.insert(
                        "step".into(),
                        json!(format!("going-to-retry-{}", call.tries + 1)),
                    );
                    let next = Call {
                        tries: call.tries + 1,
                        ..call.clone()
                    };
                    // Due when its `created_at` comes: the outbox leases only due items.
                    changes.push(Change::Enqueue(OutboxItem {
                        id: random_id(),
                        kind: KIND.into(),
                        queue: None,
                        payload: json!(next),
                        created_at: Timestamp::from_millis(
                            Timestamp::now().millis() + delay.as_millis() as i64,
                        ),
                        attempts: 0,
                        last_error: None,
                    }));
                }
                Some(_) => {
                    history.insert("step".into(), json!("too-many-retries"));
                }
                None => {
                    history.insert("step".into(), json!("failed-and-retry-delay-is-invalid"));
                }
            }
        } else {
            history.insert("step".into(), json!("failed-and-not-configured-to-retry"));
        }
    }
    history.insert("_updatedAt".into(), json!(Timestamp::now()));
    let id = history["_id"].as_str().unwrap_or_default().to_string();
    changes.push(Change::InsertIntegrationHistory {
        id,
        integration_id: integration.id.clone(),
        doc: Value::Object(history),
    });
    core.commit(changes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_as_rocket_chat() {
        let ms = |k, t| retry_delay(k, t).map(|d| d.as_millis());
        assert_eq!(ms("powers-of-ten", 0), Some(100));
        assert_eq!(ms("powers-of-ten", 2), Some(10_000));
        assert_eq!(ms("powers-of-two", 0), Some(2000));
        assert_eq!(ms("powers-of-two", 2), Some(8000));
        assert_eq!(ms("increments-of-two", 2), Some(6000));
        assert_eq!(ms("sometimes", 0), None);
    }
}
