//! Request validation that reproduces Rocket.Chat's server-side AJV errors.
//!
//! Rocket.Chat validates REST parameters with AJV validators exported by
//! `@rocket.chat/rest-typings` (`isChatSendMessageProps`, …). This module loads
//! the same JSON Schemas (`schemas/rest-request-schemas.json`, rest-typings
//! 8.8.1) and evaluates them the way AJV's generated code does, so that the
//! error text matches byte for byte.
//!
//! What Rocket.Chat does (rest-typings `src/v1/Ajv.ts`,
//! `apps/meteor/app/api/server/ApiClass.ts`, `packages/http-router/src/Router.ts`):
//!
//! * Two AJV instances (`ajv/dist/2020`, `allowUnionTypes`, `discriminator`,
//!   `ajv-formats`, plus the `basic_email` / `rfc_email` formats and the
//!   `isNotEmpty` keyword). Neither sets `allErrors` (so a schema stops at its
//!   first failing keyword), `useDefaults` or `removeAdditional`.
//!   * `ajv`: `coerceTypes: true` — even JSON bodies are coerced (`1` → `"1"`,
//!     `"5"` → `5`, `null` → `""`, `"true"` → `true`, …).
//!   * `ajvQuery`: `coerceTypes: "array"` — additionally wraps scalars into
//!     arrays (`"c"` → `["c"]`) and unwraps one-element arrays. Used by the
//!     validators listed in [`QUERY_VALIDATORS`] (mostly GET query params,
//!     which arrive as strings).
//! * The message is `validator.errors.map(e => e.message).join('\n ')` — no
//!   `instancePath` prefix. With `allErrors: false` there is normally one
//!   error, but a failing `oneOf`/`anyOf` reports each branch's first error
//!   followed by its own (`must have required property 'roomId'\n must have
//!   required property 'roomName'\n must match exactly one schema in oneOf`).
//! * Legacy routes (`validateParams`) throw `Meteor.Error('invalid-params',
//!   message)`, answered as 400 `{"success":false,"error":"<message>
//!   [invalid-params]","errorType":"invalid-params"}`. Typed routes
//!   (`API.v1.get/post(path, {query, body})`) answer 400 with the bare message:
//!   `{"success":false,"errorType":"error-invalid-params","error":"<message>"}`
//!   for query params and `errorType: "invalid-params"` for bodies.
//!
//! [`ValidationError::message`] is the `<message>` part.
//!
//! Checked differentially against AJV 8.20 + ajv-formats 3.0.1 set up as in
//! rest-typings (about 150k generated and mutated bodies over all 403
//! schemas: same messages, same coerced data). Known, deliberate gaps: a
//! string such as `"Infinity"` coerced to a number becomes `null` (JSON has
//! no Infinity), and when several keys fail inside one object the key order
//! of `serde_json::Map` (not JS insertion order) decides which is reported.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

const SCHEMAS_JSON: &str = include_str!("../schemas/rest-request-schemas.json");
/// Validators Rocket.Chat declares inside an endpoint's own file rather than in rest-typings
/// (`commands.ts`), so they are missing from the bundle above; same form.
const INLINE_SCHEMAS_JSON: &str = include_str!("../schemas/inline-request-schemas.json");

/// Validators that rest-typings compiles with `ajvQuery`
/// (`coerceTypes: "array"`); every other one uses `ajv` (`coerceTypes: true`).
/// Sorted, for binary search.
pub const QUERY_VALIDATORS: &[&str] = &[
    "GETLivechatConfigRouting",
    "isAISearchProps",
    "isAppLogsExportProps",
    "isAppLogsProps",
    "isAutotranslateGetSupportedLanguagesParamsGET",
    "isBannersProps",
    "isCalendarEventInfoProps",
    "isCalendarEventListProps",
    "isCannedResponsesProps",
    "isChannelsFilesListProps",
    "isChannelsGetAllUserMentionsByChannelProps",
    "isChannelsHistoryProps",
    "isChannelsListProps",
    "isChannelsMessagesProps",
    "isChannelsModeratorsProps",
    "isChannelsOnlineProps",
    "isChannelsRolesProps",
    "isChatGetDeletedMessagesProps",
    "isChatGetDiscussionsProps",
    "isChatGetMentionedMessagesProps",
    "isChatGetPinnedMessagesProps",
    "isChatGetStarredMessagesProps",
    "isChatGetThreadMessagesProps",
    "isChatGetThreadsListProps",
    "isChatSearchProps",
    "isChatSyncMessagesProps",
    "isChatSyncThreadMessagesProps",
    "isCloudConfirmationPollProps",
    "isCustomSoundsGetOneProps",
    "isCustomSoundsListProps",
    "isDirectoryProps",
    "isDmFileProps",
    "isDmHistoryProps",
    "isDmMemberProps",
    "isDmMessagesProps",
    "isEmailInboxList",
    "isEmailInboxSearch",
    "isEmojiCustomList",
    "isGETAgentNextToken",
    "isGETBusinessHourParams",
    "isGETDashboardTotalizerParams",
    "isGETDashboardsAgentStatusParams",
    "isGETLivechatAgentsAgentIdDepartmentsParams",
    "isGETLivechatAnalyticsDashboardsChartDataParams",
    "isGETLivechatConfigParams",
    "isGETLivechatDepartmentProps",
    "isGETLivechatInquiriesGetOneParams",
    "isGETLivechatInquiriesListParams",
    "isGETLivechatInquiriesQueuedForUserParams",
    "isGETLivechatMessageIdParams",
    "isGETLivechatMessagesHistoryRidParams",
    "isGETLivechatMessagesParams",
    "isGETLivechatPrioritiesParams",
    "isGETLivechatQueueParams",
    "isGETLivechatRoomParams",
    "isGETLivechatRoomsParams",
    "isGETLivechatTriggersParams",
    "isGETLivechatVisitorsAutocompleteParams",
    "isGETLivechatVisitorsChatHistoryRoomRoomIdVisitorVisitorIdParams",
    "isGETLivechatVisitorsPagesVisitedRoomIdParams",
    "isGETLivechatVisitorsSearch",
    "isGETLivechatVisitorsSearchChatsRoomRoomIdVisitorVisitorIdParams",
    "isGETOmnichannelContactHistoryProps",
    "isGETOmnichannelContactProps",
    "isGETOmnichannelContactSearchProps",
    "isGETOmnichannelContactsChannelsProps",
    "isGETOmnichannelContactsCheckExistenceProps",
    "isGETOmnichannelContactsProps",
    "isGETOmnichannelContactsSearchProps",
    "isGETRoomsNameExists",
    "isGETWebRTCCall",
    "isGetCurrentImportOperationParamsGET",
    "isGetImportFileDataParamsGET",
    "isGetImportProgressParamsGET",
    "isGetLatestImportOperationsParamsGET",
    "isGetUserReportsParams",
    "isGroupsFilesProps",
    "isGroupsMessagesProps",
    "isGroupsOnlineProps",
    "isImportersListParamsGET",
    "isIntegrationsGetProps",
    "isIntegrationsHistoryProps",
    "isIntegrationsListProps",
    "isLicensesInfoProps",
    "isLivechatAnalyticsAgentOverviewProps",
    "isLivechatAnalyticsAgentsAvailableForServiceHistoryProps",
    "isLivechatAnalyticsAgentsAverageServiceTimeProps",
    "isLivechatAnalyticsAgentsTotalServiceTimeProps",
    "isLivechatAnalyticsDepartmentsAmountOfChatsProps",
    "isLivechatAnalyticsDepartmentsAverageChatDurationTimeProps",
    "isLivechatAnalyticsDepartmentsAverageServiceTimeProps",
    "isLivechatAnalyticsDepartmentsAverageWaitingTimeProps",
    "isLivechatAnalyticsDepartmentsPercentageAbandonedChatsProps",
    "isLivechatAnalyticsDepartmentsTotalAbandonedChatsProps",
    "isLivechatAnalyticsDepartmentsTotalServiceTimeProps",
    "isLivechatAnalyticsDepartmentsTotalTransferredChatsProps",
    "isLivechatAnalyticsOverviewProps",
    "isLivechatCustomFieldsProps",
    "isLivechatDepartmentDepartmentIdAgentsGETProps",
    "isLivechatDepartmentsAvailableByUnitIdProps",
    "isLivechatDepartmentsByUnitIdProps",
    "isLivechatDepartmentsByUnitProps",
    "isLivechatMonitorsListProps",
    "isLivechatPrioritiesProps",
    "isLivechatQueueProps",
    "isLivechatRidMessagesProps",
    "isLivechatTagsListProps",
    "isLivechatUsersAgentProps",
    "isLivechatUsersManagerGETProps",
    "isLivechatVisitorTokenGetProps",
    "isLivechatVisitorsInfoProps",
    "isOpenAPIJSONEndpoint",
    "isPushGetProps",
    "isReportHistoryProps",
    "isReportInfoParams",
    "isReportsByMsgIdParams",
    "isRolesGetUsersInRoleProps",
    "isRoomsAdminRoomsGetRoomProps",
    "isRoomsAdminRoomsProps",
    "isRoomsAutoCompleteChannelAndPrivateProps",
    "isRoomsAutocompleteAdminRoomsPayload",
    "isRoomsAutocompleteAvailableForTeamsProps",
    "isRoomsAutocompleteChannelAndPrivateWithPaginationProps",
    "isRoomsBannedUsersProps",
    "isRoomsImagesProps",
    "isRoomsIsMemberProps",
    "isRoomsMembersOrderedByRoleProps",
    "isServerEventsAuditSettingsProps",
    "isSettingsGetParams",
    "isSettingsPublicWithPaginationProps",
    "isSpotlightProps",
    "isSubscriptionsGetOneProps",
    "isSubscriptionsGetProps",
    "isSubscriptionsUnreadProps",
    "isTeamsAutocompleteProps",
    "isTeamsInfoProps",
    "isTeamsListChildrenProps",
    "isTeamsListRoomsOfUserProps",
    "isTeamsListRoomsProps",
    "isTeamsMembersProps",
    "isUsersGetAvatarParamsGET",
    "isUsersGetPresenceParamsGET",
    "isUsersGetStatusParamsGET",
    "isUsersInfoParamsGetProps",
    "isUsersListParamsGET",
    "isUsersListStatusProps",
    "isUsersPresenceParamsGET",
    "isUsersRequestDataDownloadParamsGET",
    "isVideoConfInfoProps",
    "isVideoConfListProps",
];

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// A failed validation: `message` is what Rocket.Chat puts in the 400 body's
/// `error` field (legacy routes append ` [invalid-params]` to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Whether `name` is one of the bundled validators.
pub fn has_schema(name: &str) -> bool {
    REGISTRY.schemas.contains_key(name)
}

/// Whether `name` is compiled with Rocket.Chat's query-string instance
/// (`coerceTypes: "array"`), i.e. meant for GET query parameters.
pub fn is_query_validator(name: &str) -> bool {
    QUERY_VALIDATORS.binary_search(&name).is_ok()
}

/// Validates `body` against the named schema. Unknown names pass.
pub fn validate(schema: &str, body: &Value) -> Result<(), ValidationError> {
    if !has_schema(schema) {
        return Ok(());
    }
    let mut copy = body.clone();
    validate_and_coerce(schema, &mut copy)
}

/// Like [`validate`], but applies AJV's type coercion to `body` in place, as
/// Rocket.Chat's handlers see it afterwards (`"50"` → `50`, `"c"` → `["c"]`
/// for query validators, …). Like AJV, coercions made before a failure stay.
pub fn validate_and_coerce(schema: &str, body: &mut Value) -> Result<(), ValidationError> {
    let Some(compiled) = REGISTRY.schemas.get(schema) else {
        return Ok(());
    };
    let run = Run {
        array_coercion: compiled.query,
        levels: RefCell::new(Vec::new()),
    };
    let mut errors = Vec::new();
    if run.child(&compiled.root, body, false, &mut errors) {
        Ok(())
    } else {
        Err(ValidationError {
            message: errors.join("\n "),
        })
    }
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

struct Compiled {
    root: Schema,
    query: bool,
}

struct Registry {
    schemas: HashMap<String, Compiled>,
    #[cfg_attr(not(test), allow(dead_code))]
    failures: Vec<(String, String)>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut registry = load(SCHEMAS_JSON);
    let inline = load(INLINE_SCHEMAS_JSON);
    registry.schemas.extend(inline.schemas);
    registry.failures.extend(inline.failures);
    registry
});

fn load(text: &str) -> Registry {
    let mut registry = Registry {
        schemas: HashMap::new(),
        failures: Vec::new(),
    };
    let parsed: Json = match serde_json::from_str(text) {
        Ok(json) => json,
        Err(e) => {
            registry.failures.push((String::new(), e.to_string()));
            return registry;
        }
    };
    let Json::Obj(entries) = parsed else {
        registry
            .failures
            .push((String::new(), "top level is not an object".into()));
        return registry;
    };
    for (name, schema) in entries {
        let query = is_query_validator(&name);
        match compile(&schema, query) {
            Ok(root) => {
                registry.schemas.insert(name, Compiled { root, query });
            }
            Err(e) => registry.failures.push((name, e)),
        }
    }
    registry
}

// ---------------------------------------------------------------------------
// Order-preserving JSON (schema property order decides which error comes first)
// ---------------------------------------------------------------------------

enum Json {
    Null,
    Bool(bool),
    Num(Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Num(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.clone()),
            Json::Arr(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Obj(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.clone(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JsonVisitor;

        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }

            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Number::from_f64(v).map_or(Json::Null, Json::Num))
            }

            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Str(v.to_owned()))
            }

            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::Str(v))
            }

            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }

            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Arr(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    entries.push((k, v));
                }
                Ok(Json::Obj(entries))
            }
        }

        deserializer.deserialize_any(JsonVisitor)
    }
}

// ---------------------------------------------------------------------------
// Compiled schema
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JType {
    Null,
    Boolean,
    Object,
    Array,
    Number,
    Integer,
    String,
}

impl JType {
    fn parse(name: &str) -> Option<JType> {
        Some(match name {
            "null" => JType::Null,
            "boolean" => JType::Boolean,
            "object" => JType::Object,
            "array" => JType::Array,
            "number" => JType::Number,
            "integer" => JType::Integer,
            "string" => JType::String,
            _ => return None,
        })
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            JType::Null => v.is_null(),
            JType::Boolean => v.is_boolean(),
            JType::Object => v.is_object(),
            JType::Array => v.is_array(),
            JType::Number => v.is_number(),
            JType::Integer => v.as_f64().is_some_and(|x| x.fract() == 0.0),
            JType::String => v.is_string(),
        }
    }

    /// AJV's `COERCIBLE` set (plus `array` under `coerceTypes: "array"`).
    fn coercible(self, array_mode: bool) -> bool {
        !matches!(self, JType::Object) && (array_mode || self != JType::Array)
    }
}

fn matches_any(types: &[JType], v: &Value) -> bool {
    types.iter().any(|t| t.matches(v))
}

/// AJV's `checkDataTypes(types, data)` in its "correct" polarity, used after
/// unwrapping a one-element array under `coerceTypes: "array"`. For several
/// types it ANDs the per-type checks, so it practically never holds.
fn matches_all_types(types: &[JType], v: &Value) -> bool {
    if types.len() == 1 {
        return types[0].matches(v);
    }
    let mut set: Vec<JType> = Vec::new();
    for t in types {
        if !set.contains(t) {
            set.push(*t);
        }
    }
    let mut cond = true;
    if set.contains(&JType::Array) && set.contains(&JType::Object) {
        let not_object = !matches!(v, Value::Null | Value::Array(_) | Value::Object(_));
        cond = if set.contains(&JType::Null) {
            not_object
        } else {
            js_falsy(v) || not_object
        };
        set.retain(|t| !matches!(t, JType::Null | JType::Array | JType::Object));
    }
    if set.contains(&JType::Number) {
        set.retain(|t| *t != JType::Integer);
    }
    cond && set.iter().all(|t| t.matches(v))
}

fn js_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64().is_none_or(|x| x == 0.0 || x.is_nan()),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Limit {
    Maximum,
    Minimum,
    ExclusiveMaximum,
    ExclusiveMinimum,
}

enum Additional {
    Allowed,
    Forbidden,
    Schema(Box<Schema>),
}

struct Discriminator {
    tag: String,
    mapping: Vec<(String, usize)>,
}

#[derive(Clone, Copy)]
enum Format {
    Date,
    Time { strict_tz: bool },
    DateTime { strict_tz: bool },
    BasicEmail,
    RfcEmail,
    MatrixRoomId,
}

struct Schema {
    /// `true` / `false` boolean schema.
    boolean: Option<bool>,
    /// `true` or `{}`: AJV skips such subschemas entirely.
    always_valid: bool,
    types: Vec<JType>,
    type_message: String,
    /// AJV checks (and coerces) the type before any keyword.
    upfront: bool,
    coerce_to: Vec<JType>,
    /// The declared type when it is instead checked inside its keyword group.
    group_type: Option<JType>,

    has_untyped: bool,
    constant: Option<Value>,
    enumeration: Option<Vec<Value>>,
    not: Option<Box<Schema>>,
    any_of: Option<Vec<Schema>>,
    one_of: Option<Vec<Schema>>,
    all_of: Option<Vec<Schema>>,

    has_number: bool,
    limits: Vec<(Limit, f64, String)>,

    has_string: bool,
    max_length: Option<(f64, String)>,
    min_length: Option<(f64, String)>,
    pattern: Option<(String, Regex)>,
    format: Option<(String, Format)>,
    is_not_empty: bool,

    has_array: bool,
    max_items: Option<(f64, String)>,
    min_items: Option<(f64, String)>,
    items: Option<Box<Schema>>,
    unique_items: bool,
    item_types: Vec<JType>,

    has_object: bool,
    max_properties: Option<(f64, String)>,
    min_properties: Option<(f64, String)>,
    required: Vec<String>,
    additional: Additional,
    property_deps: Vec<(String, Vec<String>)>,
    schema_deps: Vec<(String, Schema)>,
    properties: Vec<(String, Schema)>,
    pattern_properties: Vec<(Regex, Schema)>,
    /// Every name under `properties` / every `patternProperties` pattern,
    /// including always-valid ones (for `additionalProperties`).
    declared_properties: Vec<String>,
    declared_patterns: Vec<Regex>,
    discriminator: Option<Discriminator>,
}

impl Schema {
    fn empty() -> Schema {
        Schema {
            boolean: None,
            always_valid: false,
            types: Vec::new(),
            type_message: String::new(),
            upfront: false,
            coerce_to: Vec::new(),
            group_type: None,
            has_untyped: false,
            constant: None,
            enumeration: None,
            not: None,
            any_of: None,
            one_of: None,
            all_of: None,
            has_number: false,
            limits: Vec::new(),
            has_string: false,
            max_length: None,
            min_length: None,
            pattern: None,
            format: None,
            is_not_empty: false,
            has_array: false,
            max_items: None,
            min_items: None,
            items: None,
            unique_items: false,
            item_types: Vec::new(),
            has_object: false,
            max_properties: None,
            min_properties: None,
            required: Vec::new(),
            additional: Additional::Allowed,
            property_deps: Vec::new(),
            schema_deps: Vec::new(),
            properties: Vec::new(),
            pattern_properties: Vec::new(),
            declared_properties: Vec::new(),
            declared_patterns: Vec::new(),
            discriminator: None,
        }
    }
}

const UNTYPED_KEYWORDS: &[&str] = &["const", "enum", "not", "anyOf", "oneOf", "allOf"];
const NUMBER_KEYWORDS: &[&str] = &["maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"];
const STRING_KEYWORDS: &[&str] = &["maxLength", "minLength", "pattern", "format", "isNotEmpty"];
const ARRAY_KEYWORDS: &[&str] = &["maxItems", "minItems", "items", "uniqueItems"];
const OBJECT_KEYWORDS: &[&str] = &[
    "maxProperties",
    "minProperties",
    "required",
    "additionalProperties",
    "dependencies",
    "properties",
    "patternProperties",
    "discriminator",
];
/// Keywords without validation code.
const INERT_KEYWORDS: &[&str] = &[
    "type",
    "nullable",
    "description",
    "title",
    "$comment",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$schema",
    "$id",
];

fn compile(json: &Json, array_mode: bool) -> Result<Schema, String> {
    let mut s = Schema::empty();
    let entries = match json {
        Json::Bool(b) => {
            s.boolean = Some(*b);
            s.always_valid = *b;
            return Ok(s);
        }
        Json::Obj(entries) => entries,
        _ => return Err("schema must be an object or a boolean".into()),
    };
    s.always_valid = entries.is_empty();

    let is = |list: &[&str], k: &str| list.contains(&k);
    for (k, _) in entries {
        let k = k.as_str();
        if is(UNTYPED_KEYWORDS, k) {
            s.has_untyped = true;
        } else if is(NUMBER_KEYWORDS, k) {
            s.has_number = true;
        } else if is(STRING_KEYWORDS, k) {
            s.has_string = true;
        } else if is(ARRAY_KEYWORDS, k) {
            s.has_array = true;
        } else if is(OBJECT_KEYWORDS, k) {
            s.has_object = true;
        } else if !is(INERT_KEYWORDS, k) {
            return Err(format!("unsupported keyword {k:?}"));
        }
    }

    // type / nullable (AJV getSchemaTypes + coerceAndCheckDataType)
    let declared = json.get("type");
    match declared {
        None => {}
        Some(Json::Str(t)) => {
            s.types
                .push(JType::parse(t).ok_or_else(|| format!("unknown type {t:?}"))?);
            s.type_message = format!("must be {t}");
        }
        Some(Json::Arr(list)) => {
            let mut names = Vec::new();
            for t in list {
                let Json::Str(t) = t else {
                    return Err("type entries must be strings".into());
                };
                s.types
                    .push(JType::parse(t).ok_or_else(|| format!("unknown type {t:?}"))?);
                names.push(t.as_str());
            }
            s.type_message = format!("must be {}", names.join(","));
        }
        Some(_) => return Err("type must be a string or an array".into()),
    }
    match json.get("nullable") {
        None => {}
        Some(Json::Bool(nullable)) => {
            if s.types.contains(&JType::Null) {
                if !nullable {
                    return Err("\"nullable\" cannot be used without \"type\"".into());
                }
            } else if s.types.is_empty() {
                return Err("\"nullable\" cannot be used without \"type\"".into());
            } else if *nullable {
                s.types.push(JType::Null);
            }
        }
        Some(_) => return Err("nullable must be a boolean".into()),
    }
    s.coerce_to = s
        .types
        .iter()
        .copied()
        .filter(|t| t.coercible(array_mode))
        .collect();
    let group_has_rules = |t: JType| match t {
        JType::Number => s.has_number,
        JType::String => s.has_string,
        JType::Array => s.has_array,
        JType::Object => s.has_object,
        _ => false,
    };
    // AJV `coerceAndCheckDataType`: a lone, non-coercible type whose keyword
    // group is used is checked inside that group instead (after untyped ones).
    let checked_in_group =
        s.coerce_to.is_empty() && s.types.len() == 1 && group_has_rules(s.types[0]);
    s.upfront = !s.types.is_empty() && !checked_in_group;
    if !s.upfront && s.types.len() == 1 {
        s.group_type = Some(s.types[0]);
    }

    // untyped group
    if let Some(c) = json.get("const") {
        s.constant = Some(c.to_value());
    }
    if let Some(e) = json.get("enum") {
        let Json::Arr(values) = e else {
            return Err("enum must be an array".into());
        };
        s.enumeration = Some(values.iter().map(Json::to_value).collect());
    }
    if let Some(n) = json.get("not") {
        s.not = Some(Box::new(compile(n, array_mode)?));
    }
    let list = |key: &str| -> Result<Option<Vec<Schema>>, String> {
        match json.get(key) {
            None => Ok(None),
            Some(Json::Arr(items)) => items
                .iter()
                .map(|i| compile(i, array_mode))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!("{key} must be an array")),
        }
    };
    s.any_of = list("anyOf")?;
    s.one_of = list("oneOf")?;
    s.all_of = list("allOf")?;

    // number group
    for (key, limit) in [
        ("maximum", Limit::Maximum),
        ("minimum", Limit::Minimum),
        ("exclusiveMaximum", Limit::ExclusiveMaximum),
        ("exclusiveMinimum", Limit::ExclusiveMinimum),
    ] {
        if let Some(value) = number_keyword(json, key)? {
            s.limits.push((limit, value.0, value.1));
        }
    }

    // string group
    s.max_length = number_keyword(json, "maxLength")?;
    s.min_length = number_keyword(json, "minLength")?;
    if let Some(p) = json.get("pattern") {
        let Json::Str(p) = p else {
            return Err("pattern must be a string".into());
        };
        s.pattern = Some((p.clone(), Regex::new(p)?));
    }
    if let Some(f) = json.get("format") {
        let Json::Str(f) = f else {
            return Err("format must be a string".into());
        };
        let format = match f.as_str() {
            "date" => Format::Date,
            "time" => Format::Time { strict_tz: true },
            "iso-time" => Format::Time { strict_tz: false },
            "date-time" => Format::DateTime { strict_tz: true },
            "iso-date-time" => Format::DateTime { strict_tz: false },
            "basic_email" => Format::BasicEmail,
            "rfc_email" => Format::RfcEmail,
            "matrix-room-id" => Format::MatrixRoomId,
            other => return Err(format!("unknown format {other:?}")),
        };
        s.format = Some((f.clone(), format));
    }
    s.is_not_empty = json.get("isNotEmpty").is_some();

    // array group
    s.max_items = number_keyword(json, "maxItems")?;
    s.min_items = number_keyword(json, "minItems")?;
    if let Some(items) = json.get("items") {
        if matches!(items, Json::Arr(_)) {
            return Err("tuple items are not supported".into());
        }
        let compiled = compile(items, array_mode)?;
        s.item_types = compiled.types.clone();
        s.items = Some(Box::new(compiled));
    }
    match json.get("uniqueItems") {
        None => {}
        Some(Json::Bool(b)) => s.unique_items = *b,
        Some(_) => return Err("uniqueItems must be a boolean".into()),
    }

    // object group
    s.max_properties = number_keyword(json, "maxProperties")?;
    s.min_properties = number_keyword(json, "minProperties")?;
    if let Some(required) = json.get("required") {
        let Json::Arr(names) = required else {
            return Err("required must be an array".into());
        };
        for name in names {
            let Json::Str(name) = name else {
                return Err("required entries must be strings".into());
            };
            s.required.push(name.clone());
        }
    }
    match json.get("additionalProperties") {
        None | Some(Json::Bool(true)) => {}
        Some(Json::Bool(false)) => s.additional = Additional::Forbidden,
        Some(other) => {
            let compiled = compile(other, array_mode)?;
            if !compiled.always_valid {
                s.additional = Additional::Schema(Box::new(compiled));
            }
        }
    }
    if let Some(deps) = json.get("dependencies") {
        let Json::Obj(deps) = deps else {
            return Err("dependencies must be an object".into());
        };
        for (prop, dep) in deps {
            if let Json::Arr(names) = dep {
                let mut list = Vec::new();
                for name in names {
                    let Json::Str(name) = name else {
                        return Err("dependencies entries must be strings".into());
                    };
                    list.push(name.clone());
                }
                if !list.is_empty() {
                    s.property_deps.push((prop.clone(), list));
                }
            } else {
                let compiled = compile(dep, array_mode)?;
                if !compiled.always_valid {
                    s.schema_deps.push((prop.clone(), compiled));
                }
            }
        }
    }
    if let Some(props) = json.get("properties") {
        let Json::Obj(props) = props else {
            return Err("properties must be an object".into());
        };
        for (name, sub) in props {
            s.declared_properties.push(name.clone());
            let compiled = compile(sub, array_mode)?;
            if !compiled.always_valid {
                s.properties.push((name.clone(), compiled));
            }
        }
    }
    if let Some(patterns) = json.get("patternProperties") {
        let Json::Obj(patterns) = patterns else {
            return Err("patternProperties must be an object".into());
        };
        for (pattern, sub) in patterns {
            s.declared_patterns.push(Regex::new(pattern)?);
            let compiled = compile(sub, array_mode)?;
            if !compiled.always_valid {
                s.pattern_properties.push((Regex::new(pattern)?, compiled));
            }
        }
    }
    if let Some(d) = json.get("discriminator") {
        s.discriminator = Some(compile_discriminator(json, d)?);
    }
    Ok(s)
}

fn number_keyword(json: &Json, key: &str) -> Result<Option<(f64, String)>, String> {
    match json.get(key) {
        None => Ok(None),
        Some(Json::Num(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            Ok(Some((x, js_number_string(x))))
        }
        Some(_) => Err(format!("{key} must be a number")),
    }
}

fn compile_discriminator(json: &Json, d: &Json) -> Result<Discriminator, String> {
    let Some(Json::Str(tag)) = d.get("propertyName") else {
        return Err("discriminator: requires propertyName".into());
    };
    if d.get("mapping").is_some() {
        return Err("discriminator: mapping is not supported".into());
    }
    let Some(Json::Arr(branches)) = json.get("oneOf") else {
        return Err("discriminator: requires oneOf keyword".into());
    };
    let required_has = |schema: &Json| match schema.get("required") {
        Some(Json::Arr(names)) => names.iter().any(|n| matches!(n, Json::Str(n) if n == tag)),
        _ => false,
    };
    let top_required = required_has(json);
    let mut mapping: Vec<(String, usize)> = Vec::new();
    for (i, branch) in branches.iter().enumerate() {
        let Some(prop) = branch.get("properties").and_then(|p| p.get(tag)) else {
            return Err(format!(
                "discriminator: oneOf subschemas must have \"properties/{tag}\""
            ));
        };
        if !(top_required || required_has(branch)) {
            return Err(format!("discriminator: \"{tag}\" must be required"));
        }
        let values: Vec<&Json> = match (prop.get("const"), prop.get("enum")) {
            (Some(c), _) => vec![c],
            (None, Some(Json::Arr(values))) => values.iter().collect(),
            _ => {
                return Err(format!(
                    "discriminator: \"properties/{tag}\" must have \"const\" or \"enum\""
                ));
            }
        };
        for value in values {
            let Json::Str(value) = value else {
                return Err(format!(
                    "discriminator: \"{tag}\" values must be unique strings"
                ));
            };
            if mapping.iter().any(|(v, _)| v == value) {
                return Err(format!(
                    "discriminator: \"{tag}\" values must be unique strings"
                ));
            }
            mapping.push((value.clone(), i));
        }
    }
    Ok(Discriminator {
        tag: tag.clone(),
        mapping,
    })
}

// ---------------------------------------------------------------------------
// Evaluation (mirrors the control flow of AJV's generated code, allErrors off)
// ---------------------------------------------------------------------------

struct Run {
    array_coercion: bool,
    /// One entry per data location being validated (root, property, item).
    /// AJV coerces into a local variable and writes successful coercions
    /// back to the parent object; the root has no parent, and a failed
    /// one-element-array unwrap changes only the local variable. `Some` holds
    /// what the parent keeps while the local view differs; it is restored
    /// when the location is left.
    levels: RefCell<Vec<Option<Value>>>,
}

enum Coercion {
    To(Value),
    /// Type error; `Some` when an array was unwrapped on the way.
    Failed(Option<Value>),
}

impl Run {
    /// Validates a new data location (root, property value, array item).
    fn child(
        &self,
        s: &Schema,
        value: &mut Value,
        composite: bool,
        errs: &mut Vec<String>,
    ) -> bool {
        self.levels.borrow_mut().push(None);
        let valid = self.check(s, value, composite, errs);
        if let Some(parent_view) = self.levels.borrow_mut().pop().flatten() {
            *value = parent_view;
        }
        valid
    }

    /// The local view of the current location is about to diverge from what
    /// its parent holds: remember the parent's value (once).
    fn diverge(&self, data: &Value) {
        if let Some(top) = self.levels.borrow_mut().last_mut()
            && top.is_none()
        {
            *top = Some(data.clone());
        }
    }

    /// Validates `data`, pushing AJV messages to `errs`. Outside composite
    /// rules AJV returns at the first error; inside `anyOf`/`oneOf` branches
    /// errors accumulate, but a schema still stops at its first failing group.
    fn check(&self, s: &Schema, data: &mut Value, composite: bool, errs: &mut Vec<String>) -> bool {
        if let Some(b) = s.boolean {
            if !b {
                errs.push("boolean schema is false".into());
            }
            return b;
        }
        let start = errs.len();
        let mut type_failed = false;
        if s.upfront && !matches_any(&s.types, data) {
            let outcome = self.coerce(data, &s.types, &s.coerce_to);
            let at_root = self.levels.borrow().len() <= 1;
            match outcome {
                Coercion::To(coerced) => {
                    if at_root {
                        self.diverge(data);
                    } else if let Some(top) = self.levels.borrow_mut().last_mut() {
                        // written back to the parent: both views agree again
                        *top = None;
                    }
                    *data = coerced;
                }
                Coercion::Failed(unwrapped) => {
                    if let Some(element) = unwrapped {
                        self.diverge(data);
                        *data = element;
                    }
                    errs.push(s.type_message.clone());
                    if !composite {
                        return false;
                    }
                    // Inside a composite rule AJV still runs the untyped group.
                    type_failed = true;
                }
            }
        }
        if s.has_untyped && !self.untyped(s, data, composite, errs) {
            return false;
        }
        if type_failed {
            return false;
        }
        if s.has_number {
            if data.is_number() {
                if !self.number_group(s, data, errs) {
                    return false;
                }
            } else if s.group_type == Some(JType::Number) {
                errs.push(s.type_message.clone());
                return false;
            }
        }
        if s.has_string {
            if let Value::String(text) = data {
                if !self.string_group(s, text, errs) {
                    return false;
                }
            } else if s.group_type == Some(JType::String) {
                errs.push(s.type_message.clone());
                return false;
            }
        }
        if s.has_array {
            if data.is_array() {
                if !self.array_group(s, data, composite, errs) {
                    return false;
                }
            } else if s.group_type == Some(JType::Array) {
                errs.push(s.type_message.clone());
                return false;
            }
        }
        if s.has_object {
            if data.is_object() {
                if !self.object_group(s, data, composite, errs) {
                    return false;
                }
            } else if s.group_type == Some(JType::Object) {
                errs.push(s.type_message.clone());
                return false;
            }
        }
        errs.len() == start
    }

    /// AJV `coerceData`.
    fn coerce(&self, data: &Value, types: &[JType], coerce_to: &[JType]) -> Coercion {
        if coerce_to.is_empty() {
            return Coercion::Failed(None);
        }
        let mut current = data;
        let mut unwrapped = false;
        if self.array_coercion
            && let Value::Array(items) = data
            && items.len() == 1
        {
            current = &items[0];
            unwrapped = true;
            if matches_all_types(types, current) {
                return Coercion::To(current.clone());
            }
        }
        match coerce_to.iter().find_map(|t| coerce_to_type(current, *t)) {
            Some(v) => Coercion::To(v),
            None => Coercion::Failed(unwrapped.then(|| current.clone())),
        }
    }

    fn untyped(
        &self,
        s: &Schema,
        data: &mut Value,
        composite: bool,
        errs: &mut Vec<String>,
    ) -> bool {
        if let Some(c) = &s.constant
            && !js_equal(data, c)
        {
            errs.push("must be equal to constant".into());
            return false;
        }
        if let Some(values) = &s.enumeration
            && !values.iter().any(|v| js_equal(data, v))
        {
            errs.push("must be equal to one of the allowed values".into());
            return false;
        }
        if let Some(not) = &s.not {
            let start = errs.len();
            let passed = not.always_valid || self.check(not, data, true, errs);
            errs.truncate(start);
            if passed {
                errs.push("must NOT be valid".into());
                return false;
            }
        }
        if let Some(branches) = &s.any_of {
            // Ajv2020 enables `unevaluated`, so anyOf never short-circuits:
            // every branch runs (and may coerce) even after one matched.
            let start = errs.len();
            let mut valid = false;
            for branch in branches {
                valid |= branch.always_valid || self.check(branch, data, true, errs);
            }
            if valid {
                errs.truncate(start);
            } else {
                errs.push("must match a schema in anyOf".into());
                return false;
            }
        }
        if let Some(branches) = &s.one_of
            && s.discriminator.is_none()
        {
            let start = errs.len();
            let mut valid = false;
            for branch in branches {
                let passed = branch.always_valid || self.check(branch, data, true, errs);
                if passed && valid {
                    // A second match: AJV skips the remaining branches.
                    valid = false;
                    break;
                }
                valid |= passed;
            }
            if valid {
                errs.truncate(start);
            } else {
                errs.push("must match exactly one schema in oneOf".into());
                return false;
            }
        }
        if let Some(branches) = &s.all_of {
            for branch in branches {
                if !branch.always_valid && !self.check(branch, data, composite, errs) {
                    return false;
                }
            }
        }
        true
    }

    fn number_group(&self, s: &Schema, data: &Value, errs: &mut Vec<String>) -> bool {
        let x = data.as_f64().unwrap_or(f64::NAN);
        for (kind, limit, label) in &s.limits {
            let (fails, op) = match kind {
                Limit::Maximum => (x > *limit, "<="),
                Limit::Minimum => (x < *limit, ">="),
                Limit::ExclusiveMaximum => (x >= *limit, "<"),
                Limit::ExclusiveMinimum => (x <= *limit, ">"),
            };
            if fails || x.is_nan() {
                errs.push(format!("must be {op} {label}"));
                return false;
            }
        }
        true
    }

    fn string_group(&self, s: &Schema, text: &str, errs: &mut Vec<String>) -> bool {
        if s.max_length.is_some() || s.min_length.is_some() {
            let len = text.chars().count() as f64;
            if let Some((max, label)) = &s.max_length
                && len > *max
            {
                errs.push(format!("must NOT have more than {label} characters"));
                return false;
            }
            if let Some((min, label)) = &s.min_length
                && len < *min
            {
                errs.push(format!("must NOT have fewer than {label} characters"));
                return false;
            }
        }
        if let Some((source, regex)) = &s.pattern
            && !regex.is_match(text)
        {
            errs.push(format!("must match pattern \"{source}\""));
            return false;
        }
        if let Some((name, format)) = &s.format
            && !format_matches(*format, text)
        {
            errs.push(format!("must match format \"{name}\""));
            return false;
        }
        if s.is_not_empty && js_trim(text).is_empty() {
            errs.push("must pass \"isNotEmpty\" keyword validation".into());
            return false;
        }
        true
    }

    fn array_group(
        &self,
        s: &Schema,
        data: &mut Value,
        composite: bool,
        errs: &mut Vec<String>,
    ) -> bool {
        let Value::Array(items) = data else {
            return true;
        };
        let len = items.len() as f64;
        if !count_within(len, &s.max_items, &s.min_items, "items", errs) {
            return false;
        }
        if let Some(item_schema) = &s.items
            && !item_schema.always_valid
        {
            for item in items.iter_mut() {
                if !self.child(item_schema, item, composite, errs) {
                    return false;
                }
            }
        }
        if s.unique_items
            && let Some((j, i)) = duplicate_items(items, &s.item_types)
        {
            errs.push(format!(
                "must NOT have duplicate items (items ## {j} and {i} are identical)"
            ));
            return false;
        }
        true
    }

    fn object_group(
        &self,
        s: &Schema,
        data: &mut Value,
        composite: bool,
        errs: &mut Vec<String>,
    ) -> bool {
        let Value::Object(map) = data else {
            return true;
        };
        let count = map.len() as f64;
        if !count_within(
            count,
            &s.max_properties,
            &s.min_properties,
            "properties",
            errs,
        ) {
            return false;
        }
        if let Some(missing) = s
            .required
            .iter()
            .find(|name| !map.contains_key(name.as_str()))
        {
            errs.push(format!("must have required property '{missing}'"));
            return false;
        }
        match &s.additional {
            Additional::Allowed => {}
            Additional::Forbidden => {
                if map.keys().any(|key| s.is_additional(key)) {
                    errs.push("must NOT have additional properties".into());
                    return false;
                }
            }
            Additional::Schema(sub) => {
                let keys: Vec<String> =
                    map.keys().filter(|k| s.is_additional(k)).cloned().collect();
                for key in keys {
                    if let Some(value) = map.get_mut(&key)
                        && !self.child(sub, value, composite, errs)
                    {
                        return false;
                    }
                }
            }
        }
        for (prop, deps) in &s.property_deps {
            if map.contains_key(prop) && deps.iter().any(|d| !map.contains_key(d)) {
                let noun = if deps.len() == 1 {
                    "property"
                } else {
                    "properties"
                };
                errs.push(format!(
                    "must have {noun} {} when property {prop} is present",
                    deps.join(", ")
                ));
                return false;
            }
        }
        for (prop, sub) in &s.schema_deps {
            let present = matches!(&*data, Value::Object(m) if m.contains_key(prop));
            if present && !self.check(sub, data, composite, errs) {
                return false;
            }
        }
        let Value::Object(map) = data else {
            return true;
        };
        for (prop, sub) in &s.properties {
            if let Some(value) = map.get_mut(prop)
                && !self.child(sub, value, composite, errs)
            {
                return false;
            }
        }
        for (regex, sub) in &s.pattern_properties {
            // With `unevaluated` on, AJV does not break out of this loop: in a
            // composite rule every matching key is checked, and only the last
            // one's result gates the following keywords.
            let keys: Vec<String> = map.keys().filter(|k| regex.is_match(k)).cloned().collect();
            let mut last_valid = true;
            for key in keys {
                if let Some(value) = map.get_mut(&key) {
                    last_valid = self.child(sub, value, composite, errs);
                    if !last_valid && !composite {
                        return false;
                    }
                }
            }
            if !last_valid {
                return false;
            }
        }
        if let Some(d) = &s.discriminator {
            let branch = match map.get(&d.tag) {
                Some(Value::String(tag)) => match d.mapping.iter().find(|(v, _)| v == tag) {
                    Some((_, i)) => *i,
                    None => {
                        errs.push(format!("value of tag \"{}\" must be in oneOf", d.tag));
                        return false;
                    }
                },
                _ => {
                    errs.push(format!("tag \"{}\" must be string", d.tag));
                    return false;
                }
            };
            if let Some(sub) = s.one_of.as_ref().and_then(|b| b.get(branch))
                && !self.check(sub, data, composite, errs)
            {
                return false;
            }
        }
        true
    }
}

impl Schema {
    fn is_additional(&self, key: &str) -> bool {
        !self.declared_properties.iter().any(|p| p == key)
            && !self.declared_patterns.iter().any(|r| r.is_match(key))
    }
}

fn coerce_to_type(v: &Value, t: JType) -> Option<Value> {
    match t {
        JType::String => match v {
            Value::Number(n) => Some(Value::String(js_number_string(n.as_f64()?))),
            Value::Bool(b) => Some(Value::String(b.to_string())),
            Value::Null => Some(Value::String(String::new())),
            _ => None,
        },
        JType::Number | JType::Integer => {
            let x = match v {
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Null => 0.0,
                Value::String(s) if !s.is_empty() => js_string_to_number(s),
                _ => return None,
            };
            // JS: `data == +data` (not NaN); integers also need `!(data % 1)`,
            // which lets Infinity through.
            if x.is_nan() || (t == JType::Integer && x.is_finite() && x.fract() != 0.0) {
                return None;
            }
            // JSON has no Infinity; `JSON.stringify` would write `null` too.
            Some(number_value(x).unwrap_or(Value::Null))
        }
        JType::Boolean => match v {
            Value::String(s) if s == "false" => Some(Value::Bool(false)),
            Value::String(s) if s == "true" => Some(Value::Bool(true)),
            Value::Number(n) if n.as_f64() == Some(0.0) => Some(Value::Bool(false)),
            Value::Number(n) if n.as_f64() == Some(1.0) => Some(Value::Bool(true)),
            Value::Null => Some(Value::Bool(false)),
            _ => None,
        },
        JType::Null => match v {
            Value::String(s) if s.is_empty() => Some(Value::Null),
            Value::Number(n) if n.as_f64() == Some(0.0) => Some(Value::Null),
            Value::Bool(false) => Some(Value::Null),
            _ => None,
        },
        JType::Array => match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
                Some(Value::Array(vec![v.clone()]))
            }
            _ => None,
        },
        JType::Object => None,
    }
}

/// A JS number as JSON: integral values within 2^53 become JSON integers.
/// Non-finite values cannot be represented (`None`).
fn number_value(x: f64) -> Option<Value> {
    if !x.is_finite() {
        return None;
    }
    if x.fract() == 0.0 && x.abs() <= 9_007_199_254_740_992.0 {
        return Some(Value::from(x as i64));
    }
    Number::from_f64(x).map(Value::Number)
}

/// fast-deep-equal / `===` as AJV uses them for `const`, `enum`, `uniqueItems`.
fn js_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| js_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| js_equal(v, w)))
        }
        _ => false,
    }
}

/// Ajv's `maxItems`/`minItems` and `maxProperties`/`minProperties`: whether `count` (of the
/// `noun`) is within the bounds, each kept with its label as the schema wrote it.
fn count_within(
    count: f64,
    max: &Option<(f64, String)>,
    min: &Option<(f64, String)>,
    noun: &str,
    errs: &mut Vec<String>,
) -> bool {
    if let Some((max, label)) = max
        && count > *max
    {
        errs.push(format!("must NOT have more than {label} {noun}"));
        return false;
    }
    if let Some((min, label)) = min
        && count < *min
    {
        errs.push(format!("must NOT have fewer than {label} {noun}"));
        return false;
    }
    true
}

/// AJV `uniqueItems`: returns `(j, i)` as they appear in the message.
fn duplicate_items(items: &[Value], item_types: &[JType]) -> Option<(usize, usize)> {
    let n = items.len();
    if n <= 1 {
        return None;
    }
    let scalar = !item_types.is_empty()
        && !item_types
            .iter()
            .any(|t| matches!(t, JType::Object | JType::Array));
    if scalar {
        // Keys of a JS object: `String(item)`, strings suffixed when several
        // types are allowed.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for i in (0..n).rev() {
            let item = &items[i];
            if !matches_any(item_types, item) {
                continue;
            }
            let mut key = match item {
                Value::String(s) => s.clone(),
                Value::Number(x) => js_number_string(x.as_f64().unwrap_or(f64::NAN)),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".to_owned(),
                _ => continue,
            };
            if item_types.len() > 1 && item.is_string() {
                key.push('_');
            }
            if let Some(&j) = seen.get(&key) {
                return Some((j, i));
            }
            seen.insert(key, i);
        }
        None
    } else {
        for i in (0..n).rev() {
            for j in (0..i).rev() {
                if js_equal(&items[i], &items[j]) {
                    return Some((j, i));
                }
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------
// JS number <-> string
// ---------------------------------------------------------------------------

/// `Number.prototype.toString()` for finite and non-finite doubles.
fn js_number_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Shortest round-trip digits, as `d.ddde±x`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e = if e >= 0 {
            format!("+{e}")
        } else {
            e.to_string()
        };
        if k == 1 {
            format!("{digits}e{e}")
        } else {
            format!("{}.{}e{e}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

/// JS `WhiteSpace` and `LineTerminator` (what `\s` and `trim()` use).
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// JS `Number(string)` (`+string`): NaN when not a numeric literal.
fn js_string_to_number(s: &str) -> f64 {
    let t = js_trim(s);
    if t.is_empty() {
        return 0.0;
    }
    let radix = |prefix: [&str; 2], base: u32| -> Option<f64> {
        let digits = t
            .strip_prefix(prefix[0])
            .or_else(|| t.strip_prefix(prefix[1]))?;
        if digits.is_empty() {
            return Some(f64::NAN);
        }
        let mut value = 0.0f64;
        for c in digits.chars() {
            match c.to_digit(base) {
                Some(d) => value = value * f64::from(base) + f64::from(d),
                None => return Some(f64::NAN),
            }
        }
        Some(value)
    };
    if let Some(v) = radix(["0x", "0X"], 16)
        .or_else(|| radix(["0o", "0O"], 8))
        .or_else(|| radix(["0b", "0B"], 2))
    {
        return v;
    }
    let (negative, unsigned) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if unsigned == "Infinity" {
        return if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    // StrUnsignedDecimalLiteral: digits [. digits] | . digits, then [eE][+-]digits
    let bytes = unsigned.as_bytes();
    let mut i = 0;
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return f64::NAN;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return f64::NAN;
        }
    }
    if i != bytes.len() {
        return f64::NAN;
    }
    match unsigned.parse::<f64>() {
        Ok(v) if negative => -v,
        Ok(v) => v,
        Err(_) => f64::NAN,
    }
}

// ---------------------------------------------------------------------------
// Formats (ajv-formats "full" mode, plus Rocket.Chat's own)
// ---------------------------------------------------------------------------

fn format_matches(format: Format, s: &str) -> bool {
    match format {
        Format::Date => is_date(s),
        Format::Time { strict_tz } => is_time(s, strict_tz),
        Format::DateTime { strict_tz } => {
            // `str.split(/t|\s/i)` must give exactly two parts.
            let mut parts = s.split(|c: char| c == 't' || c == 'T' || is_js_space(c));
            match (parts.next(), parts.next(), parts.next()) {
                (Some(date), Some(time), None) => is_date(date) && is_time(time, strict_tz),
                _ => false,
            }
        }
        Format::BasicEmail => {
            // /^[^@]+@[^@]+$/
            let mut parts = s.split('@');
            matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
            )
        }
        Format::RfcEmail => is_rfc_email(s),
        // Rocket.Chat: `id.charAt(0) === '!' && id.includes(':')`.
        Format::MatrixRoomId => s.starts_with('!') && s.contains(':'),
    }
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(c - b'0'))
        }
        _ => None,
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !b[..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let year: u32 = s[..4].parse().unwrap_or(0);
    let (Some(month), Some(day)) = (two_digits(&b[5..7]), two_digits(&b[8..10])) else {
        return false;
    };
    const DAYS: [u32; 13] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    (1..=12).contains(&month)
        && day >= 1
        && day
            <= if month == 2 && leap {
                29
            } else {
                DAYS[month as usize]
            }
}

/// `/^(\d\d):(\d\d):(\d\d(?:\.\d+)?)(z|([+-])(\d\d)(?::?(\d\d))?)?$/i` plus
/// ajv-formats' range and leap-second checks.
fn is_time(s: &str, strict_tz: bool) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(hr), Some(min), Some(sec_int)) = (
        two_digits(&b[0..2]),
        two_digits(&b[3..5]),
        two_digits(&b[6..8]),
    ) else {
        return false;
    };
    let mut i = 8;
    let mut sec = f64::from(sec_int);
    if i < b.len() && b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return false;
        }
        sec = s[6..end].parse().unwrap_or(f64::NAN);
        i = end;
    }
    let rest = &b[i..];
    let (has_tz, tz_sign, tz_h, tz_m) = match rest {
        [] => (false, 1i32, 0u32, 0u32),
        [b'z' | b'Z'] => (true, 1, 0, 0),
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let sign = if *sign == b'-' { -1 } else { 1 };
            let (h, m) = match tail {
                [h1, h2] => (two_digits(&[*h1, *h2]), Some(0)),
                [h1, h2, m1, m2] => (two_digits(&[*h1, *h2]), two_digits(&[*m1, *m2])),
                [h1, h2, b':', m1, m2] => (two_digits(&[*h1, *h2]), two_digits(&[*m1, *m2])),
                _ => (None, None),
            };
            let (Some(h), Some(m)) = (h, m) else {
                return false;
            };
            (true, sign, h, m)
        }
        _ => return false,
    };
    if tz_h > 23 || tz_m > 59 || (strict_tz && !has_tz) {
        return false;
    }
    if hr <= 23 && min <= 59 && sec < 60.0 {
        return true;
    }
    // leap second
    let utc_min = min as i32 - tz_m as i32 * tz_sign;
    let utc_hr = hr as i32 - tz_h as i32 * tz_sign - i32::from(utc_min < 0);
    (utc_hr == 23 || utc_hr == -1) && (utc_min == 59 || utc_min == -1) && sec < 61.0
}

/// Rocket.Chat's `rfc_email` format.
fn is_rfc_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    local_ok && domain.split('.').all(label_ok)
}

// ---------------------------------------------------------------------------
// A small regular-expression engine for JS `new RegExp(pattern, "u").test()`
// (literals, `.`, classes, `\d\w\s` and negations, anchors, groups,
// alternation, greedy/lazy quantifiers). Pike VM: linear time, no recursion
// at match time, so hostile input cannot blow the stack.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum ClassItem {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

impl ClassItem {
    fn matches(&self, c: char) -> bool {
        match self {
            ClassItem::Range(lo, hi) => (*lo..=*hi).contains(&c),
            ClassItem::Digit(neg) => c.is_ascii_digit() != *neg,
            ClassItem::Word(neg) => (c.is_ascii_alphanumeric() || c == '_') != *neg,
            ClassItem::Space(neg) => is_js_space(c) != *neg,
        }
    }
}

#[derive(Clone, Debug)]
struct CharClass {
    negated: bool,
    items: Vec<ClassItem>,
}

impl CharClass {
    fn matches(&self, c: char) -> bool {
        self.items.iter().any(|i| i.matches(c)) != self.negated
    }
}

#[derive(Clone, Debug)]
enum Ast {
    Char(char),
    Any,
    Class(CharClass),
    Start,
    End,
    Concat(Vec<Ast>),
    Alt(Vec<Ast>),
    Repeat(Box<Ast>, u32, Option<u32>),
}

#[derive(Debug)]
enum Inst {
    Char(char),
    Any,
    Class(CharClass),
    Split(usize, usize),
    Jmp(usize),
    AssertStart,
    AssertEnd,
    Match,
}

const MAX_REGEX_PROGRAM: usize = 20_000;

struct Regex {
    prog: Vec<Inst>,
}

impl Regex {
    fn new(pattern: &str) -> Result<Regex, String> {
        let mut parser = RegexParser {
            chars: pattern.chars().collect(),
            pos: 0,
        };
        let ast = parser.alternation()?;
        if parser.pos != parser.chars.len() {
            return Err(format!("invalid pattern {pattern:?}"));
        }
        let mut prog = Vec::new();
        emit(&ast, &mut prog)?;
        prog.push(Inst::Match);
        Ok(Regex { prog })
    }

    /// Unanchored search, like `RegExp.prototype.test`.
    fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let len = chars.len();
        let mut marks = vec![usize::MAX; self.prog.len()];
        let mut current: Vec<usize> = Vec::new();
        let mut next: Vec<usize> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        for pos in 0..=len {
            if self.add(&mut current, &mut marks, &mut stack, 0, pos, len) {
                return true;
            }
            let Some(&c) = chars.get(pos) else {
                break;
            };
            for &pc in &current {
                let step = match &self.prog[pc] {
                    Inst::Char(x) => *x == c,
                    Inst::Any => !is_line_terminator(c),
                    Inst::Class(class) => class.matches(c),
                    _ => false,
                };
                if step && self.add(&mut next, &mut marks, &mut stack, pc + 1, pos + 1, len) {
                    return true;
                }
            }
            current.clear();
            std::mem::swap(&mut current, &mut next);
        }
        false
    }

    fn add(
        &self,
        list: &mut Vec<usize>,
        marks: &mut [usize],
        stack: &mut Vec<usize>,
        pc: usize,
        pos: usize,
        len: usize,
    ) -> bool {
        stack.clear();
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if marks[pc] == pos {
                continue;
            }
            marks[pc] = pos;
            match &self.prog[pc] {
                Inst::Jmp(target) => stack.push(*target),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::AssertStart => {
                    if pos == 0 {
                        stack.push(pc + 1);
                    }
                }
                Inst::AssertEnd => {
                    if pos == len {
                        stack.push(pc + 1);
                    }
                }
                Inst::Match => return true,
                Inst::Char(_) | Inst::Any | Inst::Class(_) => list.push(pc),
            }
        }
        false
    }
}

fn emit(ast: &Ast, prog: &mut Vec<Inst>) -> Result<(), String> {
    if prog.len() > MAX_REGEX_PROGRAM {
        return Err("pattern too large".into());
    }
    match ast {
        Ast::Char(c) => prog.push(Inst::Char(*c)),
        Ast::Any => prog.push(Inst::Any),
        Ast::Class(class) => prog.push(Inst::Class(class.clone())),
        Ast::Start => prog.push(Inst::AssertStart),
        Ast::End => prog.push(Inst::AssertEnd),
        Ast::Concat(items) => {
            for item in items {
                emit(item, prog)?;
            }
        }
        Ast::Alt(branches) => {
            let mut jumps = Vec::new();
            for (i, branch) in branches.iter().enumerate() {
                if i + 1 < branches.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    emit(branch, prog)?;
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let after = prog.len();
                    prog[split] = Inst::Split(split + 1, after);
                } else {
                    emit(branch, prog)?;
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Ast::Repeat(node, min, max) => {
            for _ in 0..*min {
                emit(node, prog)?;
            }
            match max {
                None => {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    emit(node, prog)?;
                    prog.push(Inst::Jmp(split));
                    let after = prog.len();
                    prog[split] = Inst::Split(split + 1, after);
                }
                Some(max) => {
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(prog.len());
                        prog.push(Inst::Split(prog.len() + 1, 0));
                        emit(node, prog)?;
                    }
                    let after = prog.len();
                    for s in splits {
                        prog[s] = Inst::Split(s + 1, after);
                    }
                }
            }
        }
    }
    Ok(())
}

struct RegexParser {
    chars: Vec<char>,
    pos: usize,
}

impl RegexParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn alternation(&mut self) -> Result<Ast, String> {
        let mut branches = vec![self.concat()?];
        while self.eat('|') {
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Ast::Concat(Vec::new()))
        } else {
            Ast::Alt(branches)
        })
    }

    fn concat(&mut self) -> Result<Ast, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let quantifiable = !matches!(atom, Ast::Start | Ast::End);
            match self.quantifier()? {
                Some((min, max)) if quantifiable => {
                    items.push(Ast::Repeat(Box::new(atom), min, max));
                }
                Some(_) => return Err("nothing to repeat".into()),
                None => items.push(atom),
            }
        }
        Ok(Ast::Concat(items))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            return None;
        }
        self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }

    fn quantifier(&mut self) -> Result<Option<(u32, Option<u32>)>, String> {
        let q = if self.eat('*') {
            (0, None)
        } else if self.eat('+') {
            (1, None)
        } else if self.eat('?') {
            (0, Some(1))
        } else if self.eat('{') {
            let min = self.number().ok_or("incomplete quantifier")?;
            let max = if !self.eat(',') {
                Some(min)
            } else if self.peek() == Some('}') {
                None
            } else {
                Some(self.number().ok_or("incomplete quantifier")?)
            };
            if !self.eat('}') {
                return Err("incomplete quantifier".into());
            }
            if max.is_some_and(|m| m < min) || min > 1000 || max.is_some_and(|m| m > 1000) {
                return Err("quantifier out of range".into());
            }
            (min, max)
        } else {
            return Ok(None);
        };
        // A lazy `?` does not change whether a match exists.
        self.eat('?');
        Ok(Some(q))
    }

    fn atom(&mut self) -> Result<Ast, String> {
        let c = self.peek().ok_or("unexpected end of pattern")?;
        self.pos += 1;
        Ok(match c {
            '^' => Ast::Start,
            '$' => Ast::End,
            '.' => Ast::Any,
            '(' => {
                if self.eat('?') && !self.eat(':') {
                    return Err("lookaround and named groups are not supported".into());
                }
                let inner = self.alternation()?;
                if !self.eat(')') {
                    return Err("unterminated group".into());
                }
                inner
            }
            '[' => Ast::Class(self.class()?),
            '\\' => match self.escape(false)? {
                Escaped::Char(c) => Ast::Char(c),
                Escaped::Class(item) => Ast::Class(CharClass {
                    negated: false,
                    items: vec![item],
                }),
            },
            '*' | '+' | '?' | '{' | '}' | ']' => {
                return Err("nothing to repeat / lone bracket".into());
            }
            c => Ast::Char(c),
        })
    }

    fn class(&mut self) -> Result<CharClass, String> {
        let negated = self.eat('^');
        let mut items = Vec::new();
        loop {
            let c = self.peek().ok_or("unterminated character class")?;
            self.pos += 1;
            if c == ']' {
                break;
            }
            let first = if c == '\\' {
                self.escape(true)?
            } else {
                Escaped::Char(c)
            };
            let Escaped::Char(lo) = first else {
                if let Escaped::Class(item) = first {
                    items.push(item);
                }
                continue;
            };
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|c| *c != ']') {
                self.pos += 1;
                let c = self.peek().ok_or("unterminated character class")?;
                self.pos += 1;
                let hi = if c == '\\' {
                    match self.escape(true)? {
                        Escaped::Char(hi) => hi,
                        Escaped::Class(_) => return Err("invalid class range".into()),
                    }
                } else {
                    c
                };
                if hi < lo {
                    return Err("range out of order in character class".into());
                }
                items.push(ClassItem::Range(lo, hi));
            } else {
                items.push(ClassItem::Range(lo, lo));
            }
        }
        Ok(CharClass { negated, items })
    }

    fn hex(&mut self, count: usize) -> Result<u32, String> {
        let mut value = 0u32;
        for _ in 0..count {
            let d = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or("invalid escape")?;
            self.pos += 1;
            value = value * 16 + d;
        }
        Ok(value)
    }

    fn escape(&mut self, in_class: bool) -> Result<Escaped, String> {
        let c = self.peek().ok_or("\\ at end of pattern")?;
        self.pos += 1;
        let class = |item| Ok(Escaped::Class(item));
        match c {
            'd' => class(ClassItem::Digit(false)),
            'D' => class(ClassItem::Digit(true)),
            'w' => class(ClassItem::Word(false)),
            'W' => class(ClassItem::Word(true)),
            's' => class(ClassItem::Space(false)),
            'S' => class(ClassItem::Space(true)),
            't' => Ok(Escaped::Char('\t')),
            'n' => Ok(Escaped::Char('\n')),
            'r' => Ok(Escaped::Char('\r')),
            'f' => Ok(Escaped::Char('\u{0C}')),
            'v' => Ok(Escaped::Char('\u{0B}')),
            'b' if in_class => Ok(Escaped::Char('\u{08}')),
            '-' if in_class => Ok(Escaped::Char('-')),
            '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => Ok(Escaped::Char('\0')),
            'x' => {
                let v = self.hex(2)?;
                char::from_u32(v)
                    .map(Escaped::Char)
                    .ok_or_else(|| "invalid escape".into())
            }
            'u' => {
                let v = if self.eat('{') {
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.pos += 1;
                    }
                    let digits: String = self.chars[start..self.pos].iter().collect();
                    if !self.eat('}') || digits.is_empty() {
                        return Err("invalid unicode escape".into());
                    }
                    u32::from_str_radix(&digits, 16).map_err(|_| "invalid unicode escape")?
                } else {
                    self.hex(4)?
                };
                char::from_u32(v)
                    .map(Escaped::Char)
                    .ok_or_else(|| "invalid escape".into())
            }
            '^' | '$' | '\\' | '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|'
            | '/' => Ok(Escaped::Char(c)),
            _ => Err(format!("unsupported escape \\{c}")),
        }
    }
}

enum Escaped {
    Char(char),
    Class(ClassItem),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("test JSON")
    }

    fn message(schema: &str, body: Value) -> Option<String> {
        validate(schema, &body).err().map(|e| e.message)
    }

    #[test]
    fn every_schema_in_the_file_compiles() {
        let registry = &*REGISTRY;
        assert!(registry.failures.is_empty(), "{:?}", registry.failures);
        assert_eq!(
            registry.schemas.len(),
            403 + 3,
            "the bundle and the inline validators"
        );
        assert!(has_schema("isChatSendMessageProps"));
        assert!(has_schema("isCommandsRunBody"));
        assert!(has_schema("validateBadRequestErrorResponse"));
    }

    #[test]
    fn query_validator_list_is_sorted_and_known() {
        assert!(QUERY_VALIDATORS.windows(2).all(|w| w[0] < w[1]));
        for name in QUERY_VALIDATORS {
            assert!(has_schema(name), "{name}");
        }
        assert!(is_query_validator("isChannelsHistoryProps"));
        assert!(!is_query_validator("isChatSendMessageProps"));
    }

    #[test]
    fn unknown_schema_passes() {
        assert!(!has_schema("isNoSuchProps"));
        assert_eq!(validate("isNoSuchProps", &json!({"anything": 1})), Ok(()));
        let mut body = json!("x");
        assert_eq!(validate_and_coerce("isNoSuchProps", &mut body), Ok(()));
        assert_eq!(body, json!("x"));
    }

    #[test]
    fn required_property_message() {
        assert_eq!(
            message("isChatSendMessageProps", json!({})).as_deref(),
            Some("must have required property 'message'")
        );
        let err = validate("isChatSendMessageProps", &json!({})).unwrap_err();
        assert_eq!(err.to_string(), "must have required property 'message'");
    }

    #[test]
    fn additional_property_message() {
        assert_eq!(
            message(
                "isChatSendMessageProps",
                json!({"message": {"rid": "GENERAL"}, "extra": true})
            )
            .as_deref(),
            Some("must NOT have additional properties")
        );
    }

    #[test]
    fn one_of_lists_each_branch_error_then_its_own() {
        assert_eq!(
            message("isChannelsHistoryProps", json!({})).as_deref(),
            Some(
                "must have required property 'roomId'\n must have required property 'roomName'\n must match exactly one schema in oneOf"
            )
        );
        assert_eq!(
            message("isChannelsHistoryProps", json!({"roomName": "general"})),
            None
        );
    }

    #[test]
    fn query_strings_are_coerced_like_ajv_query() {
        let mut body = json!({"roomId": "GENERAL", "count": "20", "offset": "0"});
        assert_eq!(
            validate_and_coerce("isChannelsHistoryProps", &mut body),
            Ok(())
        );
        assert_eq!(body, json!({"roomId": "GENERAL", "count": 20, "offset": 0}));
        let mut body = json!({"types": "c"});
        assert_eq!(
            validate_and_coerce("isRoomsAdminRoomsProps", &mut body),
            Ok(())
        );
        assert_eq!(body, json!({"types": ["c"]}));
    }

    #[test]
    fn type_mismatch_and_body_coercion() {
        assert_eq!(
            message("isChatDeleteProps", json!({"roomId": {}, "msgId": "x"})).as_deref(),
            Some("must be string")
        );
        // `ajv` (bodies) also coerces: a number where a string is expected passes.
        let mut body = json!({"roomId": 5, "msgId": "x"});
        assert_eq!(validate_and_coerce("isChatDeleteProps", &mut body), Ok(()));
        assert_eq!(body, json!({"roomId": "5", "msgId": "x"}));
    }

    /// Expected outputs produced by AJV 8.20 + ajv-formats 3.0.1 configured as
    /// in rest-typings 8.8.1 (`ajv` / `ajvQuery`).
    const AJV_CASES: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "isChatSendMessageProps",
            r#"{}"#,
            Some("must have required property 'message'"),
            r#"{}"#,
        ),
        (
            "isChatSendMessageProps",
            r#"{"message":{"rid":"GENERAL","msg":"hi"},"extra":1}"#,
            Some("must NOT have additional properties"),
            r#"{"message":{"rid":"GENERAL","msg":"hi"},"extra":1}"#,
        ),
        (
            "isChatSendMessageProps",
            r#"{"message":{"msg":"hi"}}"#,
            None,
            r#"{"message":{"msg":"hi"}}"#,
        ),
        (
            "isChatSendMessageProps",
            r#"{"message":"hi"}"#,
            Some("must be object"),
            r#"{"message":"hi"}"#,
        ),
        (
            "isChatSendMessageProps",
            r#"{"message":{"rid":"GENERAL","tshow":"yes"}}"#,
            Some("must be boolean"),
            r#"{"message":{"rid":"GENERAL","tshow":"yes"}}"#,
        ),
        (
            "isChatSendMessageProps",
            r#"{"message":{"rid":"GENERAL","msg":"hi"}}"#,
            None,
            r#"{"message":{"rid":"GENERAL","msg":"hi"}}"#,
        ),
        (
            "isChatSendMessageProps",
            r#""text""#,
            Some("must be object"),
            r#""text""#,
        ),
        (
            "isChannelsHistoryProps",
            r#"{}"#,
            Some(
                "must have required property 'roomId'\n must have required property 'roomName'\n must match exactly one schema in oneOf",
            ),
            r#"{}"#,
        ),
        (
            "isChannelsHistoryProps",
            r#"{"roomId":"a","roomName":"b"}"#,
            Some(
                "must NOT have additional properties\n must NOT have additional properties\n must match exactly one schema in oneOf",
            ),
            r#"{"roomId":"a","roomName":"b"}"#,
        ),
        (
            "isChannelsHistoryProps",
            r#"{"roomId":""}"#,
            Some(
                "must NOT have fewer than 1 characters\n must have required property 'roomName'\n must match exactly one schema in oneOf",
            ),
            r#"{"roomId":""}"#,
        ),
        (
            "isChannelsHistoryProps",
            r#"{"roomId":"GENERAL","count":"abc"}"#,
            Some(
                "must be number\n must have required property 'roomName'\n must match exactly one schema in oneOf",
            ),
            r#"{"roomId":"GENERAL","count":"abc"}"#,
        ),
        (
            "isChannelsHistoryProps",
            r#"{"roomName":"general","inclusive":"maybe"}"#,
            Some(
                "must have required property 'roomId'\n must be equal to one of the allowed values\n must match exactly one schema in oneOf",
            ),
            r#"{"roomName":"general","inclusive":"maybe"}"#,
        ),
        (
            "isChannelsHistoryProps",
            r#"{"roomId":"GENERAL","count":"20","offset":"0"}"#,
            None,
            r#"{"roomId":"GENERAL","count":20,"offset":0}"#,
        ),
        (
            "isChatDeleteProps",
            r#"{"roomId":{},"msgId":"x"}"#,
            Some("must be string"),
            r#"{"roomId":{},"msgId":"x"}"#,
        ),
        (
            "isChatDeleteProps",
            r#"{"roomId":5,"msgId":"x"}"#,
            None,
            r#"{"roomId":"5","msgId":"x"}"#,
        ),
        (
            "isChatDeleteProps",
            r#"{"roomId":"r"}"#,
            Some(
                "must have required property 'msgId'\n must have required property 'fileId'\n must match a schema in anyOf",
            ),
            r#"{"roomId":"r"}"#,
        ),
        (
            "isChatDeleteProps",
            r#"{"roomId":"r","msgId":"m","asUser":"true"}"#,
            None,
            r#"{"roomId":"r","msgId":"m","asUser":true}"#,
        ),
        (
            "isChatUpdateProps",
            r#"{"roomId":"x","msgId":"y","content":{"algorithm":"zz"}}"#,
            Some(
                "must have required property 'text'\n value of tag \"algorithm\" must be in oneOf\n must match exactly one schema in oneOf",
            ),
            r#"{"roomId":"x","msgId":"y","content":{"algorithm":"zz"}}"#,
        ),
        (
            "isChatUpdateProps",
            r#"{"roomId":"x","msgId":"y","content":{"ciphertext":"c"}}"#,
            Some(
                "must have required property 'text'\n tag \"algorithm\" must be string\n must match exactly one schema in oneOf",
            ),
            r#"{"roomId":"x","msgId":"y","content":{"ciphertext":"c"}}"#,
        ),
        (
            "isChatUpdateProps",
            r#"{"roomId":"x","msgId":"y","text":"hello"}"#,
            None,
            r#"{"roomId":"x","msgId":"y","text":"hello"}"#,
        ),
        (
            "isChatGetDeletedMessagesProps",
            r#"{"roomId":"r","since":""}"#,
            Some("must NOT have fewer than 1 characters"),
            r#"{"roomId":"r","since":""}"#,
        ),
        (
            "isChatGetDeletedMessagesProps",
            r#"{"roomId":"r","since":"yesterday"}"#,
            Some("must match format \"iso-date-time\""),
            r#"{"roomId":"r","since":"yesterday"}"#,
        ),
        (
            "isChatGetDeletedMessagesProps",
            r#"{"roomId":"r","since":"2024-01-01T10:00:00.000Z"}"#,
            None,
            r#"{"roomId":"r","since":"2024-01-01T10:00:00.000Z"}"#,
        ),
        (
            "isChatSyncMessagesProps",
            r#"{"roomId":"r","lastUpdate":"2024-01-01"}"#,
            None,
            r#"{"roomId":"r","lastUpdate":"2024-01-01"}"#,
        ),
        (
            "isAISearchProps",
            r#"{"query":"   "}"#,
            Some("must match pattern \"\\S\""),
            r#"{"query":"   "}"#,
        ),
        (
            "isSearchAnswerProps",
            r#"{"query":"q","messages":[{"_id":"x","score":2}]}"#,
            Some("must be <= 1"),
            r#"{"query":"q","messages":[{"_id":"x","score":2}]}"#,
        ),
        (
            "isSearchAnswerProps",
            r#"{"query":"q","messages":[{"_id":"x","score":-1}]}"#,
            Some("must be >= 0"),
            r#"{"query":"q","messages":[{"_id":"x","score":-1}]}"#,
        ),
        (
            "isFederationVerifyMatrixIdProps",
            r#"{"matrixIds":[]}"#,
            Some("must NOT have fewer than 1 items"),
            r#"{"matrixIds":[]}"#,
        ),
        (
            "isFederationVerifyMatrixIdProps",
            r#"{"matrixIds":["a","b","a"]}"#,
            Some("must NOT have duplicate items (items ## 2 and 0 are identical)"),
            r#"{"matrixIds":["a","b","a"]}"#,
        ),
        (
            "isFederationVerifyMatrixIdProps",
            r#"{"matrixIds":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16"]}"#,
            Some("must NOT have more than 15 items"),
            r#"{"matrixIds":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16"]}"#,
        ),
        (
            "isFederationJoinExternalPublicRoomProps",
            r#"{"externalRoomId":"room"}"#,
            Some("must match format \"matrix-room-id\""),
            r#"{"externalRoomId":"room"}"#,
        ),
        (
            "isRoomsExportProps",
            r#"{"rid":"r","type":"file","format":"pdf"}"#,
            Some(
                "must be equal to one of the allowed values\n must have required property 'messages'\n must match exactly one schema in oneOf",
            ),
            r#"{"rid":"r","type":"file","format":"pdf"}"#,
        ),
        (
            "isGETOmnichannelContactsProps",
            r#"{"contactId":"  "}"#,
            Some("must pass \"isNotEmpty\" keyword validation"),
            r#"{"contactId":"  "}"#,
        ),
        (
            "isAutotranslateSaveSettingsParamsPOST",
            r#"{"roomId":"r","field":"autoTranslate","value":{}}"#,
            Some("must be boolean\n must be string\n must match a schema in anyOf"),
            r#"{"roomId":"r","field":"autoTranslate","value":{}}"#,
        ),
        (
            "isAutotranslateSaveSettingsParamsPOST",
            r#"{"roomId":"r","field":"autoTranslate","value":true}"#,
            None,
            r#"{"roomId":"r","field":"autoTranslate","value":"true"}"#,
        ),
        (
            "isGETLivechatRoomsParams",
            r#"{"departmentId":"12","count":"5"}"#,
            None,
            r#"{"departmentId":["12"],"count":5}"#,
        ),
        (
            "isGroupsCreateProps",
            r#"{"name":"g","extraData":{"broadcast":true,"encrypted":false}}"#,
            None,
            r#"{"name":"g","extraData":{"broadcast":true,"encrypted":false}}"#,
        ),
        (
            "isGroupsCreateProps",
            r#"{"name":"g","extraData":{"broadcast":"nope"}}"#,
            Some("must be boolean"),
            r#"{"name":"g","extraData":{"broadcast":"nope"}}"#,
        ),
        (
            "isLiveChatRoomSaveInfoProps",
            r#"{"guestData":{"_id":"g","livechatData":{"a":{}}},"roomData":{"_id":"r"}}"#,
            Some("must be string"),
            r#"{"guestData":{"_id":"g","livechatData":{"a":{}}},"roomData":{"_id":"r"}}"#,
        ),
        (
            "isUsersSendWelcomeEmailProps",
            r#"{"email":"nope"}"#,
            Some("must match format \"basic_email\""),
            r#"{"email":"nope"}"#,
        ),
        (
            "isFindOrCreateInviteParams",
            r#"{"rid":"r","days":1.5,"maxUses":0}"#,
            Some("must be integer"),
            r#"{"rid":"r","days":1.5,"maxUses":0}"#,
        ),
        (
            "isFindOrCreateInviteParams",
            r#"{"rid":"r","days":"7","maxUses":"0"}"#,
            None,
            r#"{"rid":"r","days":7,"maxUses":0}"#,
        ),
        (
            "isRoomsAdminRoomsProps",
            r#"{"types":"c"}"#,
            None,
            r#"{"types":["c"]}"#,
        ),
        (
            "isRoomsAdminRoomsProps",
            r#"{"types":["c","x"]}"#,
            Some("must be equal to one of the allowed values"),
            r#"{"types":["c","x"]}"#,
        ),
        (
            "isTeamsCreateProps",
            r#"{"name":"t","type":2}"#,
            Some("must be equal to one of the allowed values"),
            r#"{"name":"t","type":2}"#,
        ),
        (
            "isAppLogsProps",
            r#"{"offset":"-1"}"#,
            Some("must be >= 0"),
            r#"{"offset":-1}"#,
        ),
        (
            "isAppLogsProps",
            r#"{"offset":["1"]}"#,
            None,
            r#"{"offset":1}"#,
        ),
        (
            "isCustomSoundsListProps",
            r#"{"sort":["x"]}"#,
            Some("must be string"),
            r#"{"sort":["x"]}"#,
        ),
        (
            "isChannelsListProps",
            r#"{"count":"Infinity"}"#,
            None,
            r#"{"count":null}"#,
        ),
    ];

    #[test]
    fn matches_ajv_on_real_schemas() {
        for (schema, input, expected, coerced) in AJV_CASES {
            let mut body = parse(input);
            let got = validate_and_coerce(schema, &mut body)
                .err()
                .map(|e| e.message);
            assert_eq!(got.as_deref(), *expected, "{schema} {input}");
            assert_eq!(body, parse(coerced), "coerced data for {schema} {input}");
            assert_eq!(
                validate(schema, &parse(input))
                    .err()
                    .map(|e| e.message)
                    .as_deref(),
                *expected
            );
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let long = "x".repeat(100_000);
        let odd = [
            json!(null),
            json!(true),
            json!(0),
            json!(-1.5e300),
            json!(""),
            json!("Infinity"),
            json!(long),
            json!([]),
            json!([[[[]]]]),
            json!([null]),
            json!({}),
            json!({"": null, "__proto__": {}, "constructor": 1}),
            json!({"roomId": [], "message": [1], "query": long, "field": {"a": [{}]}}),
        ];
        let names: Vec<String> = REGISTRY.schemas.keys().cloned().collect();
        for name in &names {
            for value in &odd {
                let _ = validate(name, value);
            }
        }
    }

    const REGEX_SUBJECTS: &[&str] = &[
        "",
        " ",
        "a",
        "abc_DEF-1",
        "abc def",
        "\u{a0}",
        "\t\n",
        "webhook-incomingx",
        "ae",
        "abcdcde",
        "abbbe",
        "12x",
        "1234x",
        "x@y",
        "foobarfoo",
        "A.",
        "A",
        "\u{feff}",
        "\u{85}",
        "a\nb",
        "\u{fc}n\u{ef}",
    ];
    /// `new RegExp(pattern, "u").test(subject)` in Node, one digit per subject.
    const REGEX_CASES: &[(&str, &str)] = &[
        ("\\S", "001110011111111110111"),
        ("webhook-incoming", "000000010000000000000"),
        ("^[0-9a-zA-Z_-]+$", "001100011111101010000"),
        (".*", "111111111111111111111"),
        ("^a(b|cd)*e?$", "001000001110000000000"),
        ("^\\d{2,3}x$", "000000000001000000000"),
        ("[^\\s@]+@[^\\s@]+", "000000000000010000000"),
        ("^(?:foo|bar)+$", "000000000000001000000"),
        ("\\u0041\\.", "000000000000000100000"),
        ("^[\\w.-]*$", "101100011111101110000"),
    ];

    #[test]
    fn regex_engine_matches_javascript() {
        for (pattern, bits) in REGEX_CASES {
            let regex = Regex::new(pattern).expect(pattern);
            for (subject, bit) in REGEX_SUBJECTS.iter().zip(bits.chars()) {
                assert_eq!(
                    regex.is_match(subject),
                    bit == '1',
                    "/{pattern}/u on {subject:?}"
                );
            }
        }
        for bad in ["(?=x)", "a{2,1}", "[b-a]", "*", "(a", "\\1", "x{"] {
            assert!(Regex::new(bad).is_err(), "{bad}");
        }
        // linear time, no recursion: a long subject is fine
        let regex = Regex::new("^[0-9a-zA-Z_-]+$").expect("pattern");
        assert!(regex.is_match(&"a".repeat(1_000_000)));
    }

    const FORMAT_SUBJECTS: &[&str] = &[
        "2020-01-01",
        "2020-02-29",
        "2021-02-29",
        "2020-13-01",
        "2020-00-10",
        "2020-04-31",
        "20-01-01",
        "2020-01-01T10:00:00Z",
        "2020-01-01t10:00:00.5-03:30",
        "2020-01-01T10:00:00",
        "2020-01-01 10:00:00+0130",
        "2020-01-01T25:00:00Z",
        "2016-12-31T23:59:60Z",
        "2016-12-31T22:59:60-01:00",
        "2016-12-31T23:58:60Z",
        "2020-01-01T10:00:00.Z",
        "2020-01-01T10:00:00+01:",
        "2020-01-01T10:00:00+24:00",
        "2020-01-01T10:00:00z",
        "2020-01-01TT10:00:00Z",
        "2020-01-01\u{a0}10:00:00Z",
    ];
    /// ajv-formats 3.0.1 ("full") validators in Node, one digit per subject.
    const FORMAT_CASES: &[(Format, &str)] = &[
        (Format::Date, "110000000000000000000"),
        (
            Format::DateTime { strict_tz: true },
            "000000011010110000101",
        ),
        (
            Format::DateTime { strict_tz: false },
            "000000011110110000101",
        ),
    ];

    #[test]
    fn formats_match_ajv_formats() {
        for (format, bits) in FORMAT_CASES {
            for (subject, bit) in FORMAT_SUBJECTS.iter().zip(bits.chars()) {
                assert_eq!(format_matches(*format, subject), bit == '1', "{subject:?}");
            }
        }
        assert!(format_matches(Format::BasicEmail, "a@b"));
        assert!(!format_matches(Format::BasicEmail, "a@@b"));
        assert!(!format_matches(Format::BasicEmail, "@b"));
        assert!(format_matches(Format::MatrixRoomId, "!room:server"));
        assert!(!format_matches(Format::MatrixRoomId, "room:server"));
        assert!(format_matches(
            Format::RfcEmail,
            "first.last+tag@example.co"
        ));
        assert!(!format_matches(Format::RfcEmail, "a@-example.com"));
    }

    #[test]
    fn javascript_number_conversions() {
        assert_eq!(js_number_string(0.0_f64), "0");
        assert_eq!(js_number_string(1.0_f64), "1");
        assert_eq!(js_number_string(-1.0_f64), "-1");
        assert_eq!(js_number_string(1.5_f64), "1.5");
        assert_eq!(js_number_string(0.1_f64), "0.1");
        assert_eq!(js_number_string(1e+21_f64), "1e+21");
        assert_eq!(js_number_string(1e-07_f64), "1e-7");
        assert_eq!(js_number_string(1.23e-18_f64), "1.23e-18");
        assert_eq!(
            js_number_string(1.2345678901234568e+20_f64),
            "123456789012345680000"
        );
        assert_eq!(js_number_string(2.5e-06_f64), "0.0000025");
        assert_eq!(js_number_string(1e+100_f64), "1e+100");
        assert_eq!(js_number_string(-1e-06_f64), "-0.000001");
        assert_eq!(js_number_string(4.35_f64), "4.35");
        assert_eq!(js_number_string(9007199254740992.0_f64), "9007199254740992");
        assert_eq!(js_string_to_number("12"), 12.0_f64);
        assert_eq!(js_string_to_number(" 12 "), 12.0_f64);
        assert_eq!(js_string_to_number("1.5"), 1.5_f64);
        assert_eq!(js_string_to_number("1e3"), 1000.0_f64);
        assert_eq!(js_string_to_number(".5"), 0.5_f64);
        assert_eq!(js_string_to_number("5."), 5.0_f64);
        assert_eq!(js_string_to_number("+5"), 5.0_f64);
        assert_eq!(js_string_to_number("-5"), -5.0_f64);
        assert_eq!(js_string_to_number("0x1F"), 31.0_f64);
        assert_eq!(js_string_to_number("0b11"), 3.0_f64);
        assert_eq!(js_string_to_number("0o17"), 15.0_f64);
        assert!(js_string_to_number("-0x1").is_nan());
        assert_eq!(js_string_to_number("Infinity"), f64::INFINITY);
        assert_eq!(js_string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert!(js_string_to_number("infinity").is_nan());
        assert!(js_string_to_number("NaN").is_nan());
        assert!(js_string_to_number("1_000").is_nan());
        assert!(js_string_to_number("\u{661}").is_nan());
        assert_eq!(js_string_to_number("  "), 0.0_f64);
        assert_eq!(js_string_to_number("\u{a0}12\u{feff}"), 12.0_f64);
        assert!(js_string_to_number("e5").is_nan());
        assert!(js_string_to_number("1e").is_nan());
        assert!(js_string_to_number("0.0.1").is_nan());
        assert!(js_string_to_number("12abc").is_nan());
    }
}
