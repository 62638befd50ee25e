//! Pure Apogee types. Everything here is plain data and pure functions: no I/O, no async.
//!
//! The serde form of each record is Rocket.Chat's wire shape (camelCase keys, `_id`, ISO dates),
//! so stores persist it as a document and the wire layer renders it without a second mapping.

pub mod commands;
pub mod device;
pub mod ids;
pub mod markdown;
pub mod matrix_html;
pub mod mentions;
pub mod message;
pub mod password_policy;
pub mod permissions;
pub mod quote;
pub mod room;
pub mod settings;
pub mod subscription;
pub mod time;
pub mod user;

pub use ids::{dm_room_id, id_from_digest, random_id, time_ordered_id};
pub use message::Message;
pub use room::{Room, RoomType};
pub use subscription::Subscription;
pub use time::Timestamp;
pub use user::User;

use serde::{Deserialize, Serialize};

/// The `{_id, username, name}` triple Rocket.Chat embeds in rooms, messages and subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
