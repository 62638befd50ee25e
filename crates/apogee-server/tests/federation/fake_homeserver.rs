//! A small Matrix homeserver written for the tests: one room (version 11) created by
//! `@alice:<name>`, every event built and signed here with the server's own key. It serves
//! what Apogee asks of a room's server — its key, `make_join`, `v2/send_join`, `event`,
//! `event_auth`, `get_missing_events`, `backfill` — and takes Apogee's `/send` into its room, so tests can
//! build gaps, forks and forged answers that a real server would never produce. It does not
//! check Apogee's `X-Matrix` signatures (Synapse tests do that).

use crate::support::*;
use apogee_federation::ruma::RoomVersionId;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

pub(crate) const VERSION: &str = "11";

#[derive(Default)]
pub(crate) struct Room {
    pub(crate) events: HashMap<String, Value>,
    /// `(type, state_key)` → event id.
    pub(crate) state: BTreeMap<(String, String), String>,
    /// The forward extremities.
    pub(crate) latest: Vec<String>,
    /// Events served with their body changed after signing (a forged answer).
    pub(crate) tampered: HashSet<String>,
    /// How many `get_missing_events` and `event_auth` requests came in.
    pub(crate) gap_requests: usize,
    pub(crate) state_requests: usize,
    /// The state before each event, as event ids.
    pub(crate) state_before: HashMap<String, Vec<String>>,
    pub(crate) auth_requests: usize,
    /// PDUs added to every `backfill` answer (forged ones), and how many were asked for.
    pub(crate) backfill_extra: Vec<Value>,
    pub(crate) backfill_requests: usize,
}

impl Room {
    fn depth(&self, ids: &[String]) -> i64 {
        ids.iter()
            .filter_map(|id| self.events.get(id))
            .filter_map(|e| e["depth"].as_i64())
            .max()
            .unwrap_or(0)
    }

    fn add(&mut self, id: &str, pdu: Value) {
        if let Some(prevs) = pdu["prev_events"].as_array() {
            self.latest
                .retain(|l| !prevs.iter().any(|p| p == l.as_str()));
        }
        self.latest.push(id.to_string());
        let before = self.state.values().cloned().collect();
        self.state_before.insert(id.to_string(), before);
        if let Some(key) = pdu["state_key"].as_str() {
            self.state.insert(
                (pdu["type"].as_str().unwrap().to_string(), key.to_string()),
                id.to_string(),
            );
        }
        self.events.insert(id.to_string(), pdu);
    }

    /// The copy served: a tampered one has its content changed after signing.
    fn served(&self, id: &str) -> Option<Value> {
        let mut pdu = self.events.get(id)?.clone();
        if self.tampered.contains(id) {
            pdu["content"]["body"] = json!("tampered in transit");
        }
        Some(pdu)
    }
}

pub(crate) struct FakeHomeserver {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) room_id: String,
    pub(crate) alice: String,
    pub(crate) identity: Arc<Identity>,
    pub(crate) room: Arc<Mutex<Room>>,
}

type Shared = (Arc<Mutex<Room>>, Arc<Identity>);

impl FakeHomeserver {
    /// Starts the server and creates its room: create, alice's join, power levels (alice
    /// 100), public join rules, `shared` history.
    pub(crate) async fn start(name: &str) -> Self {
        let der = apogee_federation::ruma::signatures::Ed25519KeyPair::generate();
        let stored = FederationSigningKey {
            key_id: "ed25519:fake1".into(),
            pkcs8: base64_encode(der.as_slice()),
            created_at: Timestamp::now(),
        };
        let identity = Arc::new(Identity::from_stored(name.try_into().unwrap(), &stored).unwrap());
        let room = Arc::new(Mutex::new(Room::default()));
        let shared: Shared = (room.clone(), identity.clone());
        let app = axum::Router::new()
            .route("/_matrix/key/v2/server", axum::routing::get(key))
            .route(
                "/_matrix/federation/v1/make_join/{room}/{user}",
                axum::routing::get(make_join),
            )
            .route(
                "/_matrix/federation/v2/send_join/{room}/{event}",
                axum::routing::put(send_join),
            )
            .route(
                "/_matrix/federation/v1/event/{event}",
                axum::routing::get(event),
            )
            .route(
                "/_matrix/federation/v1/state_ids/{room}",
                axum::routing::get(state_ids),
            )
            .route(
                "/_matrix/federation/v1/event_auth/{room}/{event}",
                axum::routing::get(event_auth),
            )
            .route(
                "/_matrix/federation/v1/get_missing_events/{room}",
                axum::routing::post(missing_events),
            )
            .route(
                "/_matrix/federation/v1/backfill/{room}",
                axum::routing::get(backfill),
            )
            .route(
                "/_matrix/federation/v1/send/{txn}",
                axum::routing::put(send),
            )
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let server = Self {
            name: name.to_string(),
            url,
            room_id: format!("!fake:{name}"),
            alice: format!("@alice:{name}"),
            identity,
            room,
        };
        let alice = server.alice.clone();
        server.build(
            "m.room.create",
            Some(""),
            &alice,
            json!({"room_version": VERSION}),
        );
        server.build(
            "m.room.member",
            Some(&alice),
            &alice,
            json!({"membership": "join"}),
        );
        server.build(
            "m.room.power_levels",
            Some(""),
            &alice,
            json!({"users": {&alice: 100}, "users_default": 0, "events_default": 0,
                "state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0}),
        );
        server.build(
            "m.room.join_rules",
            Some(""),
            &alice,
            json!({"join_rule": "public"}),
        );
        server.build(
            "m.room.history_visibility",
            Some(""),
            &alice,
            json!({"history_visibility": "shared"}),
        );
        server
    }

    /// Builds, signs and adds an event after the room's forward extremities; returns its id
    /// and PDU. Nothing is sent.
    pub(crate) fn build(
        &self,
        kind: &str,
        state_key: Option<&str>,
        sender: &str,
        content: Value,
    ) -> (String, Value) {
        let prevs = self.room.lock().unwrap().latest.clone();
        self.build_after(kind, state_key, sender, content, &prevs)
    }

    /// Like [`Self::build`], after the given events.
    pub(crate) fn build_after(
        &self,
        kind: &str,
        state_key: Option<&str>,
        sender: &str,
        content: Value,
        prevs: &[String],
    ) -> (String, Value) {
        // Distinct timestamps, so messages sort in the order they were written.
        std::thread::sleep(Duration::from_millis(3));
        let mut room = self.room.lock().unwrap();
        let auth = auth_events(&room, kind, state_key, sender, &content);
        let mut event = json!({"type": kind, "room_id": self.room_id, "sender": sender,
            "content": content, "prev_events": prevs, "auth_events": auth,
            "depth": room.depth(prevs) + 1});
        if let Some(k) = state_key {
            event["state_key"] = json!(k);
        }
        let (id, pdu) = sign(&self.identity, event);
        room.add(&id, pdu.clone());
        (id, pdu)
    }

    /// Sends PDUs to Apogee in one signed transaction; returns the per-PDU answers.
    pub(crate) async fn send(&self, port: u16, pdus: Vec<Value>) -> Value {
        let body = json!({"origin": self.name, "origin_server_ts": 1, "pdus": pdus});
        let (status, answer) = self
            .call(
                port,
                Method::PUT,
                &format!("/_matrix/federation/v1/send/{}", apogee_domain::random_id()),
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        answer["pdus"].clone()
    }

    /// A request to Apogee signed as this server.
    pub(crate) async fn call(
        &self,
        port: u16,
        method: Method,
        target: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        signed_call(&self.identity, port, method, target, body).await
    }
}

/// A request to Apogee (`localhost:<port>`) signed by `identity`.
pub(crate) async fn signed_call(
    identity: &Identity,
    port: u16,
    method: Method,
    target: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
    let us = format!("localhost:{port}");
    let authorization = apogee_federation::client::x_matrix_header(
        identity,
        <&ServerName>::try_from(us.as_str()).unwrap(),
        &method,
        target,
        bytes.as_deref(),
    )
    .unwrap();
    let request = Request::builder()
        .method(method)
        .uri(target)
        .header("Authorization", authorization)
        .header("Content-Type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(
            bytes.unwrap_or_default(),
        )))
        .unwrap();
    fed_call(port, request).await
}

pub(crate) fn sign(identity: &Identity, event: Value) -> (String, Value) {
    let rules = RoomVersionId::V11.rules().unwrap();
    let pdu = apogee_federation::pdu::sign_new(
        serde_json::from_value(event).unwrap(),
        &rules,
        identity,
        Timestamp::now(),
    )
    .unwrap();
    (pdu.event_id.to_string(), pdu.to_json())
}

/// The spec's auth events for an event: create, power levels, the sender's membership, and
/// for a membership the target's and the join rules.
fn auth_events(
    room: &Room,
    kind: &str,
    state_key: Option<&str>,
    sender: &str,
    content: &Value,
) -> Vec<String> {
    if kind == "m.room.create" {
        return vec![];
    }
    let get = |t: &str, k: &str| room.state.get(&(t.to_string(), k.to_string())).cloned();
    let mut auth: Vec<String> = [
        get("m.room.create", ""),
        get("m.room.power_levels", ""),
        get("m.room.member", sender),
    ]
    .into_iter()
    .flatten()
    .collect();
    if kind == "m.room.member" {
        let target = state_key.unwrap_or_default();
        auth.extend(get("m.room.member", target));
        if content["membership"] == "join" {
            auth.extend(get("m.room.join_rules", ""));
        }
    }
    auth.sort();
    auth.dedup();
    auth
}

async fn key(
    axum::extract::State((_, identity)): axum::extract::State<Shared>,
) -> axum::Json<Value> {
    axum::Json(serde_json::to_value(identity.key_document(Timestamp::now()).unwrap()).unwrap())
}

async fn make_join(
    axum::extract::State((room, _)): axum::extract::State<Shared>,
    axum::extract::Path((room_id, user)): axum::extract::Path<(String, String)>,
) -> axum::Json<Value> {
    let room = room.lock().unwrap();
    let content = json!({"membership": "join"});
    let auth = auth_events(&room, "m.room.member", Some(&user), &user, &content);
    let prevs = room.latest.clone();
    axum::Json(json!({"room_version": VERSION, "event": {
        "type": "m.room.member", "room_id": room_id, "sender": user, "state_key": user,
        "content": content, "prev_events": prevs, "auth_events": auth,
        "depth": room.depth(&prevs) + 1}}))
}

async fn send_join(
    axum::extract::State((room, identity)): axum::extract::State<Shared>,
    axum::extract::Path((_, event_id)): axum::extract::Path<(String, String)>,
    axum::Json(join): axum::Json<Value>,
) -> axum::Json<Value> {
    let mut room = room.lock().unwrap();
    let state: Vec<Value> = room
        .state
        .values()
        .map(|id| room.events[id].clone())
        .collect();
    room.add(&event_id, join);
    axum::Json(
        json!({"origin": identity.server_name.as_str(), "state": state,
        "auth_chain": state}),
    )
}

async fn event(
    axum::extract::State((room, identity)): axum::extract::State<Shared>,
    axum::extract::Path(event_id): axum::extract::Path<String>,
) -> Result<axum::Json<Value>, StatusCode> {
    let room = room.lock().unwrap();
    let pdu = room.served(&event_id).ok_or(StatusCode::NOT_FOUND)?;
    Ok(axum::Json(json!({"origin": identity.server_name.as_str(),
        "origin_server_ts": 1, "pdus": [pdu]})))
}

async fn event_auth(
    axum::extract::State((room, _)): axum::extract::State<Shared>,
    axum::extract::Path((_, event_id)): axum::extract::Path<(String, String)>,
) -> Result<axum::Json<Value>, StatusCode> {
    let mut room = room.lock().unwrap();
    room.auth_requests += 1;
    let start = room.events.get(&event_id).ok_or(StatusCode::NOT_FOUND)?;
    let mut queue: Vec<String> = ids(start, "auth_events");
    let mut seen = HashSet::new();
    let mut chain = Vec::new();
    while let Some(id) = queue.pop() {
        if seen.insert(id.clone())
            && let Some(pdu) = room.served(&id)
        {
            queue.extend(ids(&pdu, "auth_events"));
            chain.push(pdu);
        }
    }
    Ok(axum::Json(json!({"auth_chain": chain})))
}

async fn state_ids(
    axum::extract::State((room, _)): axum::extract::State<Shared>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>, StatusCode> {
    let mut room = room.lock().unwrap();
    room.state_requests += 1;
    let event_id = q.get("event_id").ok_or(StatusCode::BAD_REQUEST)?;
    let state = room
        .state_before
        .get(event_id)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)?;
    let mut queue = state.clone();
    let mut chain = Vec::new();
    let mut seen = HashSet::new();
    while let Some(id) = queue.pop() {
        if seen.insert(id.clone())
            && let Some(e) = room.events.get(&id)
        {
            queue.extend(ids(e, "auth_events"));
            chain.push(id);
        }
    }
    Ok(axum::Json(
        json!({"pdu_ids": state, "auth_chain_ids": chain}),
    ))
}

async fn missing_events(
    axum::extract::State((room, _)): axum::extract::State<Shared>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let mut room = room.lock().unwrap();
    room.gap_requests += 1;
    let earliest: HashSet<String> = ids(&body, "earliest_events").into_iter().collect();
    let limit = body["limit"].as_u64().unwrap_or(10) as usize;
    let mut queue: Vec<String> = ids(&body, "latest_events")
        .iter()
        .filter_map(|id| room.events.get(id))
        .flat_map(|e| ids(e, "prev_events"))
        .collect();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    while let Some(id) = queue.pop() {
        if found.len() >= limit || earliest.contains(&id) || !seen.insert(id.clone()) {
            continue;
        }
        if let Some(pdu) = room.served(&id) {
            queue.extend(ids(&pdu, "prev_events"));
            found.push(pdu);
        }
    }
    found.sort_by_key(|e| e["depth"].as_i64());
    axum::Json(json!({"events": found}))
}

/// The `v` events and those before them through `prev_events`, newest first, at most `limit`,
/// then the forged extras.
async fn backfill(
    axum::extract::State((room, identity)): axum::extract::State<Shared>,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> axum::Json<Value> {
    let mut room = room.lock().unwrap();
    room.backfill_requests += 1;
    let limit = q
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(10usize);
    let mut queue: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "v")
        .map(|(_, v)| v.clone())
        .collect();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    while let Some(id) = queue.pop() {
        if found.len() >= limit || !seen.insert(id.clone()) {
            continue;
        }
        if let Some(pdu) = room.served(&id) {
            queue.extend(ids(&pdu, "prev_events"));
            found.push(pdu);
        }
    }
    found.sort_by_key(|e| std::cmp::Reverse(e["depth"].as_i64()));
    found.extend(room.backfill_extra.iter().cloned());
    axum::Json(
        json!({"origin": identity.server_name.as_str(), "origin_server_ts": 1,
        "pdus": found}),
    )
}

async fn send(
    axum::extract::State((room, _)): axum::extract::State<Shared>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let mut room = room.lock().unwrap();
    let mut answers = serde_json::Map::new();
    for pdu in body["pdus"].as_array().cloned().unwrap_or_default() {
        let rules = RoomVersionId::V11.rules().unwrap();
        let parsed = apogee_federation::pdu::Pdu::parse(&pdu, &rules).unwrap();
        let id = parsed.event_id.to_string();
        room.add(&id, pdu);
        answers.insert(id, json!({}));
    }
    axum::Json(json!({"pdus": answers}))
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
