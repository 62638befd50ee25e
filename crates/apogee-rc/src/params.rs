//! Request parameters: the JSON body of a POST or the query string of a GET, as one JSON object,
//! checked against Rocket.Chat's request schemas where it has one.

use crate::error::ApiError;
use crate::validate;
use apogee_core::domain::Timestamp;
use apogee_core::store::Page;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Largest accepted request body; uploads have their own route and limit.
pub const MAX_BODY: usize = 1 << 20;

/// The request's parameters as a JSON object.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ParamsRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, ParamsRejection> {
        // Every route in the table is a literal path, so the request path is the matched one.
        let rule = route_schema(req.uri().path());
        let mut params = read(req, state).await?;
        if let Some((schema, style)) = rule {
            params.check(schema, style)?;
        }
        Ok(params)
    }
}

async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Params, ApiError> {
    let query = req.uri().query().unwrap_or_default().to_string();
    if req.method() == Method::GET || req.method() == Method::DELETE {
        return Ok(Params(parse_query(&query)));
    }
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|_| ApiError::failure("Request body too large or unreadable"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Params(parse_query(&query)));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Params(map)),
        Ok(_) => Err(ApiError::invalid_params("must be object")),
        Err(e) => Err(ApiError::failure(format!("Invalid JSON body: {e}"))),
    }
}

/// How Rocket.Chat wires a request schema to a route, which decides the error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `API.v1.addRoute(path, {validateParams})`: `Meteor.Error('invalid-params', msg)`, answered
    /// `{"error":"<msg> [invalid-params]","errorType":"invalid-params"}`.
    Legacy,
    /// `API.v1.get(path, {query})`: `{"error":"<msg>","errorType":"error-invalid-params"}`.
    Query,
    /// `API.v1.post(path, {body})`: `{"error":"<msg>","errorType":"invalid-params"}`.
    Body,
}

/// Route path (as registered with axum) → the rest-typings validator Rocket.Chat applies to it
/// and how. Found in Rocket.Chat's `apps/meteor/app/api/server/v1/*.ts`. Routes not listed have
/// no schema in Rocket.Chat (or one Apogee does not bundle) and keep their hand-written checks.
pub const ROUTE_SCHEMAS: &[(&str, &str, Style)] = {
    use Style::*;
    &[
        // commands.ts (its own validators; `commands.preview` has one per method, checked in
        // the handlers)
        ("/api/v1/commands.get", "isCommandsGetParams", Query),
        ("/api/v1/commands.list", "isCommandsListParams", Query),
        ("/api/v1/commands.run", "isCommandsRunBody", Body),
        // chat.ts
        ("/api/v1/chat.delete", "isChatDeleteProps", Legacy),
        (
            "/api/v1/chat.syncMessages",
            "isChatSyncMessagesProps",
            Legacy,
        ),
        ("/api/v1/chat.getMessage", "isChatGetMessageProps", Legacy),
        ("/api/v1/chat.update", "isChatUpdateProps", Body),
        ("/api/v1/chat.postMessage", "isChatPostMessageProps", Legacy),
        ("/api/v1/chat.search", "isChatSearchProps", Legacy),
        ("/api/v1/chat.sendMessage", "isChatSendMessageProps", Legacy),
        ("/api/v1/chat.react", "isChatReactProps", Legacy),
        ("/api/v1/chat.ignoreUser", "isChatIgnoreUserProps", Legacy),
        (
            "/api/v1/chat.getDeletedMessages",
            "isChatGetDeletedMessagesProps",
            Legacy,
        ),
        (
            "/api/v1/chat.getPinnedMessages",
            "isChatGetPinnedMessagesProps",
            Legacy,
        ),
        (
            "/api/v1/chat.getThreadsList",
            "isChatGetThreadsListProps",
            Legacy,
        ),
        (
            "/api/v1/chat.syncThreadsList",
            "isChatSyncThreadsListProps",
            Legacy,
        ),
        (
            "/api/v1/chat.getThreadMessages",
            "isChatGetThreadMessagesProps",
            Legacy,
        ),
        (
            "/api/v1/chat.syncThreadMessages",
            "isChatSyncThreadMessagesProps",
            Legacy,
        ),
        (
            "/api/v1/chat.getMentionedMessages",
            "isChatGetMentionedMessagesProps",
            Legacy,
        ),
        (
            "/api/v1/chat.getStarredMessages",
            "isChatGetStarredMessagesProps",
            Legacy,
        ),
        (
            "/api/v1/chat.getDiscussions",
            "isChatGetDiscussionsProps",
            Legacy,
        ),
        // channels.ts
        ("/api/v1/channels.addAll", "isChannelsAddAllProps", Legacy),
        ("/api/v1/channels.archive", "isChannelsArchiveProps", Legacy),
        (
            "/api/v1/channels.unarchive",
            "isChannelsUnarchiveProps",
            Legacy,
        ),
        ("/api/v1/channels.history", "isChannelsHistoryProps", Legacy),
        ("/api/v1/channels.roles", "isChannelsRolesProps", Legacy),
        ("/api/v1/channels.join", "isChannelsJoinProps", Legacy),
        ("/api/v1/channels.kick", "isChannelsKickProps", Legacy),
        ("/api/v1/channels.leave", "isChannelsLeaveProps", Legacy),
        (
            "/api/v1/channels.messages",
            "isChannelsMessagesProps",
            Legacy,
        ),
        ("/api/v1/channels.open", "isChannelsOpenProps", Legacy),
        (
            "/api/v1/channels.setReadOnly",
            "isChannelsSetReadOnlyProps",
            Legacy,
        ),
        (
            "/api/v1/channels.setAnnouncement",
            "isChannelsSetAnnouncementProps",
            Legacy,
        ),
        (
            "/api/v1/channels.getAllUserMentionsByChannel",
            "isChannelsGetAllUserMentionsByChannelProps",
            Legacy,
        ),
        (
            "/api/v1/channels.moderators",
            "isChannelsModeratorsProps",
            Legacy,
        ),
        ("/api/v1/channels.delete", "isChannelsDeleteProps", Legacy),
        ("/api/v1/channels.list", "isChannelsListProps", Legacy),
        ("/api/v1/channels.online", "isChannelsOnlineProps", Legacy),
        ("/api/v1/channels.files", "isChannelsFilesListProps", Legacy),
        // groups.ts
        ("/api/v1/groups.online", "isGroupsOnlineProps", Legacy),
        ("/api/v1/groups.messages", "isGroupsMessagesProps", Legacy),
        // users.ts
        ("/api/v1/users.info", "isUsersInfoParamsGetProps", Legacy),
        ("/api/v1/users.update", "isUsersUpdateParamsPOST", Legacy),
        (
            "/api/v1/users.setPreferences",
            "isUsersSetPreferencesParamsPOST",
            Legacy,
        ),
        ("/api/v1/users.create", "isUserCreateParamsPOST", Legacy),
        ("/api/v1/users.register", "isUserRegisterParamsPOST", Legacy),
        (
            "/api/v1/users.setActiveStatus",
            "isUserSetActiveStatusParamsPOST",
            Legacy,
        ),
        // misc.ts
        ("/api/v1/directory", "isDirectoryProps", Legacy),
        ("/api/v1/spotlight", "isSpotlightProps", Legacy),
        // roles.ts
        (
            "/api/v1/roles.getUsersInRole",
            "isRolesGetUsersInRoleProps",
            Query,
        ),
        // settings.ts
        (
            "/api/v1/settings.public",
            "isSettingsPublicWithPaginationProps",
            Query,
        ),
        ("/api/v1/settings", "isSettingsGetParams", Query),
        // stats.ts
        ("/api/v1/statistics", "isStatisticsProps", Query),
        ("/api/v1/statistics.list", "isStatisticsListProps", Query),
        // subscriptions.ts
        (
            "/api/v1/subscriptions.get",
            "isSubscriptionsGetProps",
            Query,
        ),
        (
            "/api/v1/subscriptions.getOne",
            "isSubscriptionsGetOneProps",
            Query,
        ),
        (
            "/api/v1/subscriptions.read",
            "isSubscriptionsReadProps",
            Body,
        ),
        (
            "/api/v1/subscriptions.unread",
            "isSubscriptionsUnreadProps",
            Body,
        ),
        // chat.ts
        (
            "/api/v1/chat.getMessageReadReceipts",
            "isChatGetMessageReadReceiptsProps",
            Query,
        ),
        // rooms.ts
        ("/api/v1/rooms.muteUser", "isRoomsMuteUnmuteUserProps", Body),
        (
            "/api/v1/rooms.unmuteUser",
            "isRoomsMuteUnmuteUserProps",
            Body,
        ),
        (
            "/api/v1/rooms.cleanHistory",
            "isRoomsCleanHistoryProps",
            Body,
        ),
        ("/api/v1/rooms.adminRooms", "isRoomsAdminRoomsProps", Query),
        (
            "/api/v1/rooms.createDiscussion",
            "isRoomsCreateDiscussionProps",
            Body,
        ),
        // teams.ts
        ("/api/v1/teams.create", "isTeamsCreateProps", Body),
        ("/api/v1/teams.addRooms", "isTeamsAddRoomsProps", Body),
        ("/api/v1/teams.removeRoom", "isTeamsRemoveRoomProps", Body),
        ("/api/v1/teams.updateRoom", "isTeamsUpdateRoomProps", Body),
        ("/api/v1/teams.listRooms", "isTeamsListRoomsProps", Query),
        (
            "/api/v1/teams.listRoomsOfUser",
            "isTeamsListRoomsOfUserProps",
            Query,
        ),
        ("/api/v1/teams.members", "isTeamsMembersProps", Query),
        ("/api/v1/teams.addMembers", "isTeamsAddMembersProps", Body),
        (
            "/api/v1/teams.updateMember",
            "isTeamsUpdateMemberProps",
            Body,
        ),
        (
            "/api/v1/teams.removeMember",
            "isTeamsRemoveMemberProps",
            Body,
        ),
        ("/api/v1/teams.leave", "isTeamsLeaveProps", Body),
        ("/api/v1/teams.info", "isTeamsInfoProps", Query),
        ("/api/v1/teams.delete", "isTeamsDeleteProps", Body),
        (
            "/api/v1/teams.autocomplete",
            "isTeamsAutocompleteProps",
            Query,
        ),
        ("/api/v1/teams.update", "isTeamsUpdateProps", Body),
        // custom-sounds.ts
        (
            "/api/v1/custom-sounds.list",
            "isCustomSoundsListProps",
            Query,
        ),
        (
            "/api/v1/custom-sounds.getOne",
            "isCustomSoundsGetOneProps",
            Query,
        ),
        // invites.ts
        (
            "/api/v1/findOrCreateInvite",
            "isFindOrCreateInviteParams",
            Body,
        ),
        ("/api/v1/useInviteToken", "isUseInviteTokenProps", Body),
        (
            "/api/v1/validateInviteToken",
            "isValidateInviteTokenProps",
            Body,
        ),
        // e2e.ts
        (
            "/api/v1/e2e.setUserPublicAndPrivateKeys",
            "ise2eSetUserPublicAndPrivateKeysParamsPOST",
            Legacy,
        ),
        // im.ts (`dm.x` and `im.x`, typed since the dm endpoints moved to `API.v1.get/post`)
        ("/api/v1/dm.create", "isDmCreateProps", Body),
        ("/api/v1/im.create", "isDmCreateProps", Body),
        ("/api/v1/dm.history", "isDmHistoryProps", Query),
        ("/api/v1/im.history", "isDmHistoryProps", Query),
        ("/api/v1/dm.members", "isDmMemberProps", Query),
        ("/api/v1/im.members", "isDmMemberProps", Query),
        ("/api/v1/dm.messages", "isDmMessagesProps", Query),
        ("/api/v1/im.messages", "isDmMessagesProps", Query),
        ("/api/v1/dm.files", "isDmFileProps", Query),
        ("/api/v1/im.files", "isDmFileProps", Query),
    ]
};

/// The schema and style Rocket.Chat applies to the route registered as `path`.
pub fn route_schema(path: &str) -> Option<(&'static str, Style)> {
    ROUTE_SCHEMAS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, schema, style)| (*schema, *style))
}

/// What the [`Params`] extractor answers when the request is unreadable or fails its schema.
#[derive(Debug)]
pub enum ParamsRejection {
    Api(ApiError),
    /// A typed route's validation failure: the bare message with `errorType`.
    Typed {
        error_type: &'static str,
        message: String,
    },
}

impl From<ApiError> for ParamsRejection {
    fn from(e: ApiError) -> Self {
        ParamsRejection::Api(e)
    }
}

impl IntoResponse for ParamsRejection {
    fn into_response(self) -> Response {
        match self {
            ParamsRejection::Api(e) => e.into_response(),
            ParamsRejection::Typed {
                error_type,
                message,
            } => (
                StatusCode::BAD_REQUEST,
                Json(json!({"success": false, "errorType": error_type, "error": message})),
            )
                .into_response(),
        }
    }
}

/// Every value of a repeated query key (`k=a&k=b`, or `k[]=a&k[]=b`), in order.
pub fn query_values(query: &str, key: &str) -> Vec<String> {
    let brackets = format!("{key}[]");
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode(k);
            (k == key || k == brackets).then(|| decode(v))
        })
        .collect()
}

/// A query string as parameters. `k[]=a&k[]=b` (how browsers' and Rocket.Chat's clients send a
/// list) becomes the array `k: [a, b]`; another repeated key keeps its last value.
pub(crate) fn parse_query(query: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), Value::String(decode(v)));
        match k.strip_suffix("[]") {
            Some(list) if !list.is_empty() => {
                match map
                    .entry(list.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(items) => items.push(v),
                    other => *other = Value::Array(vec![v]),
                }
            }
            _ => {
                map.insert(k, v);
            }
        }
    }
    map
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    /// Validates against `schema` the way `style` does in Rocket.Chat, coercing the parameters in
    /// place (AJV `coerceTypes`) so that handlers see what Rocket.Chat's handlers see.
    pub fn check(&mut self, schema: &str, style: Style) -> Result<(), ParamsRejection> {
        let mut value = Value::Object(std::mem::take(&mut self.0));
        let result = validate::validate_and_coerce(schema, &mut value);
        if let Value::Object(map) = value {
            self.0 = map;
        }
        result.map_err(|e| match style {
            Style::Legacy => ParamsRejection::Api(ApiError::invalid_params(e.message)),
            Style::Query => ParamsRejection::Typed {
                error_type: "error-invalid-params",
                message: e.message,
            },
            Style::Body => ParamsRejection::Typed {
                error_type: "invalid-params",
                message: e.message,
            },
        })
    }

    /// Checks the parameters against the named Rocket.Chat request schema.
    pub fn validate(&self, schema: &str) -> Result<&Self, ApiError> {
        validate::validate(schema, &Value::Object(self.0.clone()))
            .map_err(|e| ApiError::invalid_params(e.message))?;
        Ok(self)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A non-empty string parameter.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A required non-empty string, with Rocket.Chat's wording when missing.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.str(key)
            .ok_or_else(|| ApiError::invalid_params(format!("must have required property '{key}'")))
    }

    /// A boolean given as JSON or as `"true"`/`"false"` in a query string.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// An ISO date parameter; a malformed one is an error, not ignored.
    pub fn date(&self, key: &str) -> Result<Option<Timestamp>, ApiError> {
        match self.str(key) {
            None => Ok(None),
            Some(s) => Timestamp::parse(s).map(Some).ok_or_else(|| {
                ApiError::invalid_params(format!(
                    "The \"{key}\" query parameter must be a valid date."
                ))
            }),
        }
    }

    /// Rocket.Chat's `count`/`offset` paging, bounded by `API_Upper_Count_Limit`.
    pub fn page(&self, default_count: i64, upper: i64) -> Page {
        let count = self.int("count").unwrap_or(default_count);
        let count = if count <= 0 { upper } else { count.min(upper) };
        Page {
            offset: self.int("offset").unwrap_or(0).max(0),
            count,
        }
    }

    /// A list given as a JSON array or a comma-separated string.
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let m = parse_query("roomId=GEN%20ERAL&count=5&flag&q=a+b&bad=%zz");
        assert_eq!(m["roomId"], "GEN ERAL");
        assert_eq!(m["count"], "5");
        assert_eq!(m["flag"], "");
        assert_eq!(m["q"], "a b");
        assert_eq!(m["bad"], "%zz");
        assert_eq!(parse_query("x=%e2%82%ac")["x"], "€");
        assert_eq!(parse_query("x=%4")["x"], "%4");
    }

    #[test]
    fn bracketed_keys_make_lists() {
        let m = parse_query("types%5B%5D=c&count=5&types[]=p&one[]=x");
        assert_eq!(m["types"], json!(["c", "p"]));
        assert_eq!(m["one"], json!(["x"]));
        assert_eq!(m["count"], "5");
        assert!(!m.contains_key("types[]"));
        assert_eq!(parse_query("[]=x")["[]"], "x");
    }

    #[test]
    fn route_schemas_are_bundled_and_unique() {
        for (i, (path, schema, _)) in ROUTE_SCHEMAS.iter().enumerate() {
            assert!(
                validate::has_schema(schema),
                "{path}: {schema} is not bundled"
            );
            assert!(
                ROUTE_SCHEMAS[i + 1..].iter().all(|(p, _, _)| p != path),
                "{path} listed twice"
            );
        }
        assert_eq!(
            route_schema("/api/v1/im.history"),
            Some(("isDmHistoryProps", Style::Query))
        );
        assert_eq!(route_schema("/api/v1/channels.info"), None);
    }

    #[test]
    fn check_coerces_and_picks_the_envelope() {
        let mut p = Params(parse_query("roomId=GENERAL&count=5&offset=1"));
        p.check("isChannelsHistoryProps", Style::Legacy).unwrap();
        assert_eq!(p.0["count"], 5);
        assert_eq!(p.0["offset"], 1);
        assert_eq!(p.int("count"), Some(5));

        let body = |v: Value| Params(v.as_object().unwrap().clone());
        match body(json!({"roomId": "r"})).check("isChatUpdateProps", Style::Body) {
            Err(ParamsRejection::Typed {
                error_type,
                message,
            }) => {
                assert_eq!(error_type, "invalid-params");
                assert!(
                    message.starts_with("must have required property"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        match body(json!({})).check("isChatGetMessageProps", Style::Legacy) {
            Err(ParamsRejection::Api(ApiError(e))) => {
                assert_eq!(e.code, "invalid-params");
                assert_eq!(e.message, "must have required property 'msgId'");
            }
            other => panic!("{other:?}"),
        }
        match body(json!({})).check("isChatGetMessageProps", Style::Query) {
            Err(ParamsRejection::Typed { error_type, .. }) => {
                assert_eq!(error_type, "error-invalid-params")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paging_is_bounded() {
        let p = Params(parse_query("count=500&offset=-3"));
        assert_eq!(
            p.page(50, 100),
            Page {
                offset: 0,
                count: 100
            }
        );
        assert_eq!(
            Params::default().page(50, 100),
            Page {
                offset: 0,
                count: 50
            }
        );
    }
}
