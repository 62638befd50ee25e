//! `chat.*`: sending, editing, deleting, reactions, pins, stars, threads, search and sync.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok, ok_field};
use crate::params::Params;
use apogee_core::domain::{Message, User};
use apogee_core::error::CoreError;
use apogee_core::messages::NewMessage;
use apogee_core::rooms::RoomRef;
use apogee_core::store::HistoryQuery;
use axum::extract::State;
use serde_json::{Map, Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/chat.postMessage", post(post_message))
        .route("/api/v1/chat.sendMessage", post(send_message))
        .route("/api/v1/chat.update", post(update))
        .route("/api/v1/chat.delete", post(delete))
        .route("/api/v1/chat.getMessage", get(get_message))
        .route("/api/v1/chat.getURLPreview", get(url_preview))
        .route("/api/v1/chat.react", post(react))
        .route("/api/v1/chat.pinMessage", post(pin))
        .route("/api/v1/chat.unPinMessage", post(unpin))
        .route("/api/v1/chat.starMessage", post(star))
        .route("/api/v1/chat.unStarMessage", post(unstar))
        .route("/api/v1/chat.followMessage", post(follow))
        .route("/api/v1/chat.unfollowMessage", post(unfollow))
        .route("/api/v1/chat.syncMessages", get(sync))
        .route("/api/v1/chat.search", get(search))
        .route("/api/v1/chat.getThreadMessages", get(thread_messages))
        .route("/api/v1/chat.getThreadsList", get(threads_list))
        .route("/api/v1/chat.getPinnedMessages", get(pinned))
        .route("/api/v1/chat.getStarredMessages", get(starred))
        .route("/api/v1/chat.getMentionedMessages", get(mentioned))
        .route("/api/v1/chat.getMessageReadReceipts", get(read_receipts))
}

/// Message fields clients may set besides the text.
const EXTRA_FIELDS: &[&str] = &[
    "alias",
    "emoji",
    "avatar",
    "attachments",
    "blocks",
    "customFields",
    "groupable",
    "parseUrls",
];

pub(crate) fn extras(source: &Map<String, Value>) -> Map<String, Value> {
    EXTRA_FIELDS
        .iter()
        .filter_map(|k| {
            source
                .get(*k)
                .filter(|v| !v.is_null())
                .map(|v| (k.to_string(), v.clone()))
        })
        .collect()
}

/// [`extras`] plus the end-to-end encryption fields a sent message may carry (`t: 'e2e'`,
/// `content`, `e2e`, `e2eMentions`); core checks them.
pub(crate) fn send_extras(source: &Map<String, Value>) -> Map<String, Value> {
    let mut extra = extras(source);
    for k in ["t", "content", "e2e", "e2eMentions"] {
        if let Some(v) = source.get(k).filter(|v| !v.is_null()) {
            extra.insert(k.to_string(), v.clone());
        }
    }
    extra
}

/// [`extras`] plus what an edit of an encrypted message carries (DDP `updateMessage`): the new
/// `content` envelope and its `e2eMentions`; core checks them.
pub(crate) fn update_extras(source: &Map<String, Value>) -> Map<String, Value> {
    let mut extra = extras(source);
    for k in ["content", "e2eMentions"] {
        if let Some(v) = source.get(k).filter(|v| !v.is_null()) {
            extra.insert(k.to_string(), v.clone());
        }
    }
    extra
}

/// Resolves `chat.postMessage`'s `channel` (`#name`, `@username` or a room id) or `roomId`.
async fn post_target(s: &AppState, actor: &User, target: &str) -> Result<String, ApiError> {
    if let Some(username) = target.strip_prefix('@') {
        return Ok(s
            .core
            .create_direct(actor, &[username.to_string()])
            .await?
            .id);
    }
    let room = match target.strip_prefix('#') {
        Some(name) => s.core.find_room(&RoomRef::Name(name.to_string())).await,
        None => match s.core.find_room(&RoomRef::Id(target.to_string())).await {
            Ok(r) => Ok(r),
            Err(_) => s.core.find_room(&RoomRef::Name(target.to_string())).await,
        },
    };
    Ok(room
        .map_err(|_| ApiError(CoreError::bad("error-invalid-channel", "Invalid channel")))?
        .id)
}

async fn post_message(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let target = p
        .str("roomId")
        .or_else(|| p.str("channel"))
        .ok_or_else(|| ApiError(CoreError::bad("invalid-channel", "")))?;
    let rid = post_target(&s, &a.user, target).await?;
    let new = NewMessage {
        rid,
        msg: p
            .get("text")
            .or_else(|| p.get("msg"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        tmid: p.str("tmid").map(str::to_string),
        extra: extras(&p.0),
        ..Default::default()
    };
    let message = s.core.send_message(&a.user, new).await?;
    ok(json!({"ts": message.ts.millis(), "channel": target, "message": message}))
}

async fn send_message(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    // Taken out of the body, not copied.
    let Params(mut body) = p;
    let Some(Value::Object(m)) = body.remove("message") else {
        return Err(ApiError(CoreError::bad(
            "error-invalid-params",
            "The \"message\" parameter must be provided.",
        )));
    };
    let m = Params(m);
    let new = NewMessage {
        id: m.str("_id").map(str::to_string),
        rid: m.required("rid")?.to_string(),
        msg: m
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        tmid: m.str("tmid").map(str::to_string),
        tshow: m.bool("tshow").unwrap_or(false),
        extra: send_extras(&m.0),
    };
    let message = s.core.send_message(&a.user, new).await?;
    ok_field("message", &message)
}

async fn update(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    let msg_id = p.required("msgId")?;
    // An encrypted message is edited with a new `content` envelope instead of `text`.
    let encrypted = p.get("content").is_some();
    let text = match p.get("text").and_then(Value::as_str) {
        Some(text) => text,
        None if encrypted => "",
        None => {
            return Err(ApiError::invalid_params(
                "must have required property 'text'",
            ));
        }
    };
    let extra: Map<String, Value> = ["customFields", "content", "e2eMentions"]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), p.get(k)?.clone())))
        .collect();
    let message = s
        .core
        .update_message(&a.user, rid, msg_id, text.to_string(), extra)
        .await?;
    ok(json!({"message": message}))
}

async fn delete(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    let msg_id = p.required("msgId")?;
    let m = s.core.delete_message(&a.user, rid, msg_id).await?;
    ok(
        json!({"_id": m.id, "ts": apogee_core::domain::Timestamp::now().millis(), "message": {"_id": m.id, "rid": m.rid, "u": m.u}}),
    )
}

async fn get_message(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = p.required("msgId")?;
    let (message, _) = s.core.readable_message(&a.user, id).await?;
    ok(json!({"message": message}))
}

/// `GET chat.getURLPreview`: `{urlPreview: {url, meta, headers?, ignoreParse}}`; a page that
/// cannot be fetched still answers, with empty `meta`.
async fn url_preview(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let room_id = p.required("roomId")?;
    let url = p.required("url")?;
    let preview = s.core.get_url_preview(&a.user, room_id, url).await?;
    ok(json!({ "urlPreview": preview }))
}

async fn react(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = p.required("messageId")?;
    let emoji = p
        .str("emoji")
        .or_else(|| p.str("reaction"))
        .ok_or_else(|| ApiError::invalid_params("must have required property 'emoji'"))?;
    s.core
        .react(&a.user, id, emoji, p.bool("shouldReact"))
        .await?;
    ok(json!({}))
}

async fn pin(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = p.required("messageId")?;
    let notice = s.core.set_pinned(&a.user, id, true).await?;
    ok(json!({"message": notice}))
}

async fn unpin(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .set_pinned(&a.user, p.required("messageId")?, false)
        .await?;
    ok(json!({}))
}

async fn star(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .set_starred(&a.user, p.required("messageId")?, true)
        .await?;
    ok(json!({}))
}

async fn unstar(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .set_starred(&a.user, p.required("messageId")?, false)
        .await?;
    ok(json!({}))
}

async fn follow(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .set_following(&a.user, p.required("mid")?, true)
        .await?;
    ok(json!({}))
}

async fn unfollow(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .set_following(&a.user, p.required("mid")?, false)
        .await?;
    ok(json!({}))
}

async fn sync(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    let since = p.date("lastUpdate")?.ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-lastUpdate-param-not-provided",
            "The required \"lastUpdate\" query param is missing.",
        ))
    })?;
    let (updated, deleted) = s.core.sync_messages(&a.user, rid, since).await?;
    let deleted: Vec<Value> = deleted
        .iter()
        .map(|t| json!({"_id": t.id, "_deletedAt": t.deleted_at}))
        .collect();
    ok(json!({"result": {"updated": updated, "deleted": deleted}}))
}

/// Runs a message query in a readable room and answers with `messages` and paging fields.
async fn listing(
    s: &AppState,
    a: &User,
    rid: &str,
    p: &Params,
    query: HistoryQuery,
    key: &str,
) -> ApiResult {
    let view = s
        .core
        .readable_room(a, &RoomRef::Id(rid.to_string()))
        .await?;
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let query = HistoryQuery {
        count: page.count,
        offset: page.offset,
        with_total: true,
        ..query
    };
    let (messages, total): (Vec<Message>, i64) = s.core.history(a, &view.room, &query).await?;
    ok(json!({key: messages, "count": messages.len(), "offset": page.offset, "total": total}))
}

async fn search(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    let text = p.required("searchText")?.to_string();
    let q = HistoryQuery {
        text: Some(text),
        include_thread_replies: true,
        ..Default::default()
    };
    listing(&s, &a.user, rid, &p, q, "messages").await
}

async fn thread_messages(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let tmid = p.required("tmid")?;
    let (parent, _) = s.core.readable_message(&a.user, tmid).await?;
    let q = HistoryQuery {
        tmid: Some(parent.id.clone()),
        ascending: true,
        ..Default::default()
    };
    listing(&s, &a.user, &parent.rid, &p, q, "messages").await
}

async fn threads_list(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    let q = HistoryQuery {
        threads_only: true,
        ..Default::default()
    };
    listing(&s, &a.user, rid, &p, q, "threads").await
}

async fn pinned(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    listing(
        &s,
        &a.user,
        rid,
        &p,
        HistoryQuery {
            pinned_only: true,
            include_thread_replies: true,
            ..Default::default()
        },
        "messages",
    )
    .await
}

async fn starred(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    let q = HistoryQuery {
        starred_by: Some(a.user.id.clone()),
        include_thread_replies: true,
        ..Default::default()
    };
    listing(&s, &a.user, rid, &p, q, "messages").await
}

async fn mentioned(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    let q = HistoryQuery {
        mentioning: Some(a.user.id.clone()),
        include_thread_replies: true,
        ..Default::default()
    };
    listing(&s, &a.user, rid, &p, q, "messages").await
}

/// Who has read a message (derived from members' last-seen times; see core's `read_receipts`).
async fn read_receipts(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = p.required("messageId")?;
    let receipts = s.core.message_read_receipts(&a.user, id, None).await?;
    ok(json!({"receipts": receipts}))
}
