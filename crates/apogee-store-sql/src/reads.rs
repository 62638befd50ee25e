//! Read queries: core's per-aggregate store traits over any [`Database`].

use crate::room_columns::{room_from_row, select_rooms};
use crate::{Arg, Cell, Database, Row, SqlStore, args, contains_pattern, from_json, history};
use apogee_core::store::*;
use apogee_domain::{Message, Room, Subscription, Timestamp, User};
use async_trait::async_trait;
use serde_json::Value;

impl<D: Database> SqlStore<D> {
    async fn rows(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>> {
        self.db.query(sql, args).await
    }

    /// The first column of every row, as text.
    async fn texts(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<String>> {
        Ok(self
            .rows(sql, args)
            .await?
            .iter()
            .filter_map(|r| r[0].text().map(str::to_string))
            .collect())
    }

    async fn count(&self, sql: &str, args: Vec<Arg>) -> StoreResult<i64> {
        Ok(self
            .rows(sql, args)
            .await?
            .first()
            .map_or(0, |r| r[0].int()))
    }

    pub(crate) async fn docs<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        args: Vec<Arg>,
    ) -> StoreResult<Vec<T>> {
        self.rows(sql, args)
            .await?
            .iter()
            .map(|r| from_json(&r[0]))
            .collect()
    }

    /// One page of `table`'s documents matching `filter` (over `args`), in `order`, with the
    /// total matching. LIMIT/OFFSET take the next two placeholders after `args`.
    async fn page_of<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        filter: &str,
        mut args: Vec<Arg>,
        order: &str,
        page: Page,
    ) -> StoreResult<(Vec<T>, i64)> {
        let total = self
            .count(
                &format!("SELECT COUNT(*) FROM {table} {filter}"),
                args.clone(),
            )
            .await?;
        let n = args.len();
        args.extend(args![page.count, page.offset]);
        let sql = format!(
            "SELECT doc FROM {table} {filter} ORDER BY {order} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        Ok((self.docs(&sql, args).await?, total))
    }

    /// A page of a catalogue table (custom sounds, statuses, …) whose `name_lower` contains
    /// `name_contains`.
    async fn catalogue_page<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        order: &str,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<T>, i64)> {
        let filter = "WHERE ($1 IS NULL OR name_lower LIKE $1 ESCAPE '\\')";
        self.page_of(
            table,
            filter,
            args![name_contains.map(contains_pattern)],
            order,
            page,
        )
        .await
    }

    /// The first row's document, if any.
    pub(crate) async fn doc<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        args: Vec<Arg>,
    ) -> StoreResult<Option<T>> {
        Ok(self.docs(sql, args).await?.into_iter().next())
    }
}

/// `IN ($n, $n+1, …)` for `len` parameters starting at `$first`.
fn placeholders(first: usize, len: usize) -> String {
    let list: Vec<String> = (first..first + len).map(|i| format!("${i}")).collect();
    format!("({})", list.join(", "))
}

fn token_from_row(r: &Row) -> LoginToken {
    let text = |i: usize| r[i].text().map(str::to_string);
    let time = |i: usize| match r[i] {
        Cell::Int(ms) => Some(Timestamp::from_millis(ms)),
        _ => None,
    };
    LoginToken {
        hashed: text(0).unwrap_or_default(),
        user_id: text(1).unwrap_or_default(),
        created_at: Timestamp::from_millis(r[2].int()),
        expires_at: time(3),
        name: text(4),
        bypass_two_factor: r[5].int() != 0,
        session_id: text(6),
        last_token_part: text(7),
        client: ClientInfo {
            ip: text(8),
            user_agent: text(9),
        },
        last_active_at: time(10),
    }
}

/// Every column of `login_tokens t`, in [`token_from_row`]'s order.
const TOKEN_COLUMNS: &str =
    "t.hashed, t.user_id, t.created_at, t.expires_at, t.name, t.bypass_two_factor,
    t.session_id, t.last_token_part, t.ip, t.user_agent, t.last_active_at";

impl<D: Database> SqlStore<D> {
    async fn tokens(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<LoginToken>> {
        Ok(self
            .rows(sql, args)
            .await?
            .iter()
            .map(token_from_row)
            .collect())
    }

    /// A user's personal access tokens (`named`) or login sessions, oldest first.
    async fn user_tokens(&self, user_id: &str, named: bool) -> StoreResult<Vec<LoginToken>> {
        let name = if named { "IS NOT NULL" } else { "IS NULL" };
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM login_tokens t WHERE t.user_id = $1 AND t.name {name} ORDER BY t.created_at"
        );
        self.tokens(&sql, args![user_id]).await
    }
}

#[async_trait]
impl<D: Database> UserStore for SqlStore<D> {
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        self.doc("SELECT doc FROM users WHERE id = $1", args![id])
            .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.doc(
            "SELECT doc FROM users WHERE username_lower = $1",
            args![username.to_lowercase()],
        )
        .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.doc(
            "SELECT doc FROM users WHERE email_lower = $1",
            args![email.to_lowercase()],
        )
        .await
    }

    async fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT doc FROM users WHERE id IN {}",
            placeholders(1, ids.len())
        );
        self.docs(&sql, ids.iter().map(Arg::from).collect()).await
    }

    async fn password_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        let rows = self
            .rows(
                "SELECT password_hash FROM users WHERE id = $1",
                args![user_id],
            )
            .await?;
        Ok(rows.first().and_then(|r| r[0].text().map(str::to_string)))
    }

    async fn login_token(&self, hashed: &str) -> StoreResult<Option<LoginToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM login_tokens t WHERE t.hashed = $1");
        Ok(self.tokens(&sql, args![hashed]).await?.into_iter().next())
    }

    async fn personal_tokens(&self, user_id: &str) -> StoreResult<Vec<LoginToken>> {
        self.user_tokens(user_id, true).await
    }

    async fn two_factor(&self, user_id: &str) -> StoreResult<Option<TwoFactorSecrets>> {
        let rows = self
            .rows(
                "SELECT revision, doc FROM two_factor WHERE user_id = $1",
                args![user_id],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let mut secrets: TwoFactorSecrets = from_json(&row[1])?;
        secrets.user_id = user_id.to_string();
        secrets.revision = row[0].int();
        Ok(Some(secrets))
    }

    async fn e2e_bot(&self, user_id: &str) -> StoreResult<Option<E2eBot>> {
        let rows = self
            .rows(
                "SELECT doc FROM e2e_bots WHERE user_id = $1",
                args![user_id],
            )
            .await?;
        rows.first().map(|row| from_json(&row[0])).transpose()
    }

    async fn list_users(&self, query: &UserQuery, page: Page) -> StoreResult<(Vec<User>, i64)> {
        let text = query.text.as_deref().map(contains_pattern);
        let role = query.role.as_ref().map(|r| format!("%\"{r}\"%"));
        let filter = "WHERE ($1 IS NULL OR username_lower LIKE $1 ESCAPE '\\' OR name_lower LIKE $1 ESCAPE '\\')
                      AND ($2 IS NULL OR roles LIKE $2) AND ($3 IS NULL OR active = $3)";
        self.page_of(
            "users",
            filter,
            args![text, role, query.active],
            "username_lower",
            page,
        )
        .await
    }

    async fn count_users_with_role(&self, role: &str) -> StoreResult<i64> {
        self.count(
            "SELECT COUNT(*) FROM users WHERE roles LIKE $1",
            args![format!("%\"{role}\"%")],
        )
        .await
    }
}

#[async_trait]
impl<D: Database> CredentialStore for SqlStore<D> {
    async fn login_session(&self, session_id: &str) -> StoreResult<Option<LoginToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM login_tokens t WHERE t.session_id = $1");
        Ok(self
            .tokens(&sql, args![session_id])
            .await?
            .into_iter()
            .next())
    }

    async fn login_sessions(
        &self,
        query: &SessionQuery,
        page: Page,
    ) -> StoreResult<(Vec<LoginToken>, i64)> {
        // Expired sessions are over even while their rows remain.
        let filter = "FROM login_tokens t LEFT JOIN users u ON u.id = t.user_id
            WHERE t.session_id IS NOT NULL AND (t.expires_at IS NULL OR t.expires_at > $1)
            AND t.created_at > $4
            AND ($2 IS NULL OR t.user_id = $2)
            AND ($3 IS NULL OR LOWER(t.device_name) LIKE $3 ESCAPE '\\' OR LOWER(t.os_name) LIKE $3 ESCAPE '\\'
                 OR t.ip LIKE $3 ESCAPE '\\' OR LOWER(t.session_id) LIKE $3 ESCAPE '\\'
                 OR u.username_lower LIKE $3 ESCAPE '\\')";
        let args = args![
            Timestamp::now().millis(),
            query.user_id.clone(),
            query.text.as_deref().map(contains_pattern),
            query.logged_in_after.map_or(i64::MIN, |t| t.millis())
        ];
        let total = self
            .count(&format!("SELECT COUNT(*) {filter}"), args.clone())
            .await?;
        let key = match query.sort {
            SessionSort::LoginAt => "t.created_at",
            SessionSort::DeviceName => "LOWER(t.device_name)",
            SessionSort::OsName => "LOWER(t.os_name)",
            SessionSort::OsVersion => "t.os_version",
            SessionSort::Username => "u.username_lower",
            SessionSort::Name => "u.name_lower",
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} {filter} ORDER BY {key} {direction}, t.created_at DESC, t.session_id LIMIT $5 OFFSET $6"
        );
        let mut args = args;
        args.extend(args![page.count, page.offset]);
        Ok((self.tokens(&sql, args).await?, total))
    }

    async fn session_tokens(&self, user_id: &str) -> StoreResult<Vec<LoginToken>> {
        self.user_tokens(user_id, false).await
    }

    async fn password_changed_at(&self, user_id: &str) -> StoreResult<Option<Timestamp>> {
        let rows = self
            .rows(
                "SELECT password_changed_at FROM users WHERE id = $1",
                args![user_id],
            )
            .await?;
        Ok(rows.first().and_then(|r| match r[0] {
            Cell::Int(ms) => Some(Timestamp::from_millis(ms)),
            _ => None,
        }))
    }

    async fn password_history(&self, user_id: &str, limit: i64) -> StoreResult<Vec<String>> {
        self.texts(
            "SELECT hash FROM password_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
            args![user_id, limit],
        )
        .await
    }

    async fn password_reset(&self, hashed: &str) -> StoreResult<Option<PasswordReset>> {
        let rows = self
            .rows(
                "SELECT hashed, user_id, email, created_at, expires_at FROM password_resets WHERE hashed = $1",
                args![hashed],
            )
            .await?;
        Ok(rows.first().map(|r| PasswordReset {
            hashed: r[0].text().unwrap_or_default().to_string(),
            user_id: r[1].text().unwrap_or_default().to_string(),
            email: r[2].text().unwrap_or_default().to_string(),
            created_at: Timestamp::from_millis(r[3].int()),
            expires_at: Timestamp::from_millis(r[4].int()),
        }))
    }
}

#[async_trait]
impl<D: Database> RoomStore for SqlStore<D> {
    async fn room_by_id(&self, id: &str) -> StoreResult<Option<Room>> {
        let rows = self
            .rows(concat!(select_rooms!(), " WHERE r.id = $1"), args![id])
            .await?;
        rows.first().map(room_from_row).transpose()
    }

    async fn room_by_name(&self, name: &str) -> StoreResult<Option<Room>> {
        let rows = self
            .rows(concat!(select_rooms!(), " WHERE r.name = $1"), args![name])
            .await?;
        rows.first().map(room_from_row).transpose()
    }

    async fn rooms_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Room>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            concat!(select_rooms!(), " WHERE r.id IN {}"),
            placeholders(1, ids.len())
        );
        self.rows(&sql, ids.iter().map(Arg::from).collect())
            .await?
            .iter()
            .map(room_from_row)
            .collect()
    }

    async fn list_rooms(&self, query: &RoomQuery, page: Page) -> StoreResult<(Vec<Room>, i64)> {
        let types: Vec<&str> = query.types.iter().map(|t| t.code()).collect();
        let mut filter = format!(
            "WHERE ($1 IS NULL OR r.name_lower LIKE $1 ESCAPE '\\')
             AND ($2 IS NULL OR r.id IN (SELECT rid FROM subscriptions WHERE user_id = $2))
             AND r.t IN {}",
            placeholders(3, types.len().max(1))
        );
        let mut a = args![
            query.name_contains.as_deref().map(contains_pattern),
            query.member.clone()
        ];
        if types.is_empty() {
            filter = filter.replace("AND r.t IN ($3)", "");
            a.push(Arg::NullText);
            filter.push_str(" AND $3 IS NULL");
        } else {
            a.extend(types.iter().map(|t| Arg::from(*t)));
        }
        let total = self
            .count(&format!("SELECT COUNT(*) FROM rooms r {filter}"), a.clone())
            .await?;
        let n = a.len();
        a.extend(args![page.count, page.offset]);
        let sql = format!(
            concat!(
                select_rooms!(),
                " {} ORDER BY r.name_lower, r.id LIMIT ${} OFFSET ${}"
            ),
            filter,
            n + 1,
            n + 2
        );
        let rooms = self
            .rows(&sql, a)
            .await?
            .iter()
            .map(room_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((rooms, total))
    }

    async fn default_rooms(&self) -> StoreResult<Vec<Room>> {
        self.rows(
            concat!(
                select_rooms!(),
                " WHERE r.is_default = 1 ORDER BY r.name_lower"
            ),
            vec![],
        )
        .await?
        .iter()
        .map(room_from_row)
        .collect()
    }

    async fn deleted_rooms_since(
        &self,
        ids: &[String],
        since: Timestamp,
    ) -> StoreResult<Vec<Tombstone>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, deleted_at FROM tombstones WHERE kind = 'room' AND deleted_at > $1 AND id IN {}",
            placeholders(2, ids.len())
        );
        let mut a = args![since.millis()];
        a.extend(ids.iter().map(Arg::from));
        Ok(self
            .rows(&sql, a)
            .await?
            .iter()
            .map(tombstone_from_row)
            .collect())
    }
}

fn tombstone_from_row(r: &Row) -> Tombstone {
    Tombstone {
        id: r[0].text().unwrap_or_default().to_string(),
        deleted_at: Timestamp::from_millis(r[1].int()),
    }
}

/// Columns that [`subscription_from_row`] expects, from [`SUB_TABLES`].
const SUB_COLUMNS: &str = "s.doc, s.read_seq, a.seq, s.user_mentions, a.all_mentions - s.all_mentions_seen, s.updated_at, a.updated_at";

/// A subscription and its room's activity (`room_columns`).
const SUB_TABLES: &str = "subscriptions s JOIN room_activity a ON a.rid = s.rid";

fn subscription_from_row(r: &Row) -> StoreResult<Subscription> {
    let mut sub: Subscription = from_json(&r[0])?;
    sub.read_seq = r[1].int();
    sub.unread = (r[2].int() - sub.read_seq).max(0);
    sub.alert = sub.unread > 0;
    sub.user_mentions = r[3].int();
    sub.group_mentions = r[4].int().max(0);
    // A new message changes what the subscription shows (unread, alert) without a per-member write,
    // so the room's last message counts as the subscription's last change.
    sub.updated_at = Timestamp::from_millis(r[5].int().max(r[6].int()));
    Ok(sub)
}

#[async_trait]
impl<D: Database> SubscriptionStore for SqlStore<D> {
    async fn subscription(&self, rid: &str, user_id: &str) -> StoreResult<Option<Subscription>> {
        let sql =
            format!("SELECT {SUB_COLUMNS} FROM {SUB_TABLES} WHERE s.rid = $1 AND s.user_id = $2");
        self.rows(&sql, args![rid, user_id])
            .await?
            .first()
            .map(subscription_from_row)
            .transpose()
    }

    async fn subscriptions_of_user(&self, user_id: &str) -> StoreResult<Vec<Subscription>> {
        let sql =
            format!("SELECT {SUB_COLUMNS} FROM {SUB_TABLES} WHERE s.user_id = $1 ORDER BY s.id");
        self.rows(&sql, args![user_id])
            .await?
            .iter()
            .map(subscription_from_row)
            .collect()
    }

    async fn subscriptions_without_e2e_key(
        &self,
        rid: &str,
        limit: i64,
    ) -> StoreResult<Vec<Subscription>> {
        // The document is compact serde JSON: the top-level member is `,"E2EKey":` (the record's
        // own fields come first). The same text inside a string value would be escaped
        // (`\"E2EKey\":`), and in `oldRoomKeys` entries, whose members are sorted, `E2EKey` comes
        // first (`{"E2EKey":`), so neither matches. Rows are checked again after reading.
        let sql = format!(
            "SELECT {SUB_COLUMNS} FROM {SUB_TABLES}
             WHERE s.rid = $1 AND s.doc NOT LIKE '%,\"E2EKey\":%'
             ORDER BY s.username_lower LIMIT $2"
        );
        let subs = self
            .rows(&sql, args![rid, limit])
            .await?
            .iter()
            .map(subscription_from_row)
            .collect::<StoreResult<Vec<Subscription>>>()?;
        Ok(subs
            .into_iter()
            .filter(|s| !s.extra.get("E2EKey").is_some_and(Value::is_string))
            .collect())
    }

    async fn subscriptions_in_room(
        &self,
        rid: &str,
        user_ids: &[String],
    ) -> StoreResult<Vec<Subscription>> {
        // Chunked so a large room stays under SQLite's bound-parameter limit.
        let mut found = Vec::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(500) {
            let sql = format!(
                "SELECT {SUB_COLUMNS} FROM {SUB_TABLES}
                 WHERE s.rid = $1 AND s.user_id IN {}",
                placeholders(2, chunk.len())
            );
            let mut args = args![rid];
            args.extend(chunk.iter().map(Arg::from));
            for row in self.rows(&sql, args).await? {
                found.push(subscription_from_row(&row)?);
            }
        }
        Ok(found)
    }

    async fn subscriptions_of_room(
        &self,
        rid: &str,
        page: Page,
    ) -> StoreResult<(Vec<Subscription>, i64)> {
        let total = self
            .count(
                "SELECT COUNT(*) FROM subscriptions WHERE rid = $1",
                args![rid],
            )
            .await?;
        let sql = format!(
            "SELECT {SUB_COLUMNS} FROM {SUB_TABLES} WHERE s.rid = $1
             ORDER BY s.username_lower LIMIT $2 OFFSET $3"
        );
        let subs = self
            .rows(&sql, args![rid, page.count, page.offset])
            .await?
            .iter()
            .map(subscription_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((subs, total))
    }

    async fn deleted_subscriptions_since(
        &self,
        user_id: &str,
        since: Timestamp,
    ) -> StoreResult<Vec<Tombstone>> {
        let rows = self
            .rows(
                "SELECT id, deleted_at FROM tombstones WHERE kind = 'subscription' AND scope = $1 AND deleted_at > $2",
                args![user_id, since.millis()],
            )
            .await?;
        Ok(rows.iter().map(tombstone_from_row).collect())
    }

    async fn left_rooms_since(
        &self,
        user_id: &str,
        since: Timestamp,
    ) -> StoreResult<Vec<Tombstone>> {
        let rows = self
            .rows(
                "SELECT id, MAX(deleted_at) FROM tombstones WHERE kind = 'membership' AND scope = $1 AND deleted_at > $2
                 GROUP BY id",
                args![user_id, since.millis()],
            )
            .await?;
        Ok(rows.iter().map(tombstone_from_row).collect())
    }
}

#[async_trait]
impl<D: Database> MessageStore for SqlStore<D> {
    async fn message_by_id(&self, id: &str) -> StoreResult<Option<Message>> {
        self.doc("SELECT doc FROM messages WHERE id = $1", args![id])
            .await
    }

    async fn history(&self, rid: &str, q: &HistoryQuery) -> StoreResult<(Vec<Message>, i64)> {
        let total = if q.with_total {
            let (sql, a) = history::total_sql(rid, q);
            self.count(&sql, a).await?
        } else {
            0
        };
        let (sql, a) = history::page_sql(rid, q);
        let mut page: Vec<Message> = self.docs(&sql, a).await?;
        if q.whole_last_millisecond
            && q.count > 0
            && page.len() as i64 == q.count
            && let Some(last) = page.last()
        {
            let (sql, a) = history::ties_sql(rid, q, &MessageKey::of(last));
            let ties: Vec<Message> = self.docs(&sql, a).await?;
            page.extend(ties);
        }
        Ok((page, total))
    }

    async fn messages_updated_since(
        &self,
        rid: &str,
        since: Timestamp,
        after_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let (sql, a) = history::changes_sql(rid, since.millis(), after_id, limit);
        self.docs(&sql, a).await
    }

    async fn deleted_messages_since(
        &self,
        rid: &str,
        since: Timestamp,
    ) -> StoreResult<Vec<Tombstone>> {
        let rows = self
            .rows(
                "SELECT id, deleted_at FROM tombstones WHERE kind = 'message' AND scope = $1 AND deleted_at > $2",
                args![rid, since.millis()],
            )
            .await?;
        Ok(rows.iter().map(tombstone_from_row).collect())
    }
}

#[async_trait]
impl<D: Database> SettingStore for SqlStore<D> {
    async fn settings(&self) -> StoreResult<Vec<(String, Value)>> {
        let rows = self
            .rows("SELECT id, value FROM settings ORDER BY id", vec![])
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r[0].text().unwrap_or_default().to_string(),
                    from_json(&r[1])?,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl<D: Database> AuthzStore for SqlStore<D> {
    async fn permissions(&self) -> StoreResult<Vec<(String, Vec<String>)>> {
        let rows = self
            .rows("SELECT id, roles FROM permissions ORDER BY id", vec![])
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r[0].text().unwrap_or_default().to_string(),
                    from_json(&r[1])?,
                ))
            })
            .collect()
    }

    async fn roles(&self) -> StoreResult<Vec<Role>> {
        self.docs("SELECT doc FROM roles ORDER BY id", vec![]).await
    }
}

#[async_trait]
impl<D: Database> Writer for SqlStore<D> {
    async fn commit(&self, changes: Vec<Change>) -> StoreResult<()> {
        self.db.commit(changes).await
    }
}

#[async_trait]
impl<D: Database> TeamStore for SqlStore<D> {
    async fn team_by_id(&self, id: &str) -> StoreResult<Option<Team>> {
        self.doc("SELECT doc FROM teams WHERE id = $1", args![id])
            .await
    }

    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
        self.doc("SELECT doc FROM teams WHERE name = $1", args![name])
            .await
    }

    async fn list_teams(&self, member: Option<&str>, page: Page) -> StoreResult<(Vec<Team>, i64)> {
        let filter =
            "WHERE ($1 IS NULL OR id IN (SELECT team_id FROM team_members WHERE user_id = $1))";
        let a = args![member];
        let total = self
            .count(&format!("SELECT COUNT(*) FROM teams {filter}"), a.clone())
            .await?;
        let mut a = a;
        a.extend(args![page.count, page.offset]);
        let teams = self
            .docs(
                &format!("SELECT doc FROM teams {filter} ORDER BY name, id LIMIT $2 OFFSET $3"),
                a,
            )
            .await?;
        Ok((teams, total))
    }

    async fn team_member(&self, team_id: &str, user_id: &str) -> StoreResult<Option<TeamMember>> {
        self.doc(
            "SELECT doc FROM team_members WHERE team_id = $1 AND user_id = $2",
            args![team_id, user_id],
        )
        .await
    }

    async fn team_members(&self, team_id: &str) -> StoreResult<Vec<TeamMember>> {
        self.docs(
            "SELECT doc FROM team_members WHERE team_id = $1 ORDER BY created_at, id",
            args![team_id],
        )
        .await
    }

    async fn team_rooms(&self, team_id: &str) -> StoreResult<Vec<Room>> {
        self.rows(
            concat!(
                select_rooms!(),
                " WHERE r.team_id = $1 AND r.id NOT IN (SELECT room_id FROM teams WHERE id = $1)
             ORDER BY r.name_lower, r.id"
            ),
            args![team_id],
        )
        .await?
        .iter()
        .map(room_from_row)
        .collect()
    }

    async fn discussion_rooms(&self, prid: &str) -> StoreResult<Vec<Room>> {
        self.rows(
            concat!(select_rooms!(), " WHERE r.prid = $1 ORDER BY r.id"),
            args![prid],
        )
        .await?
        .iter()
        .map(room_from_row)
        .collect()
    }

    async fn discussion_messages(
        &self,
        rid: &str,
        text: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<Message>, i64)> {
        let filter =
            "WHERE rid = $1 AND drid IS NOT NULL AND ($2 IS NULL OR msg_lower LIKE $2 ESCAPE '\\')";
        let a = args![rid, text.map(contains_pattern)];
        let total = self
            .count(
                &format!("SELECT COUNT(*) FROM messages {filter}"),
                a.clone(),
            )
            .await?;
        let mut a = a;
        a.extend(args![page.count, page.offset]);
        let messages = self
            .docs(
                &format!(
                    "SELECT doc FROM messages {filter} ORDER BY ts DESC, id DESC LIMIT $3 OFFSET $4"
                ),
                a,
            )
            .await?;
        Ok((messages, total))
    }
}

#[async_trait]
impl<D: Database> InviteStore for SqlStore<D> {
    async fn invite_by_id(&self, id: &str) -> StoreResult<Option<Invite>> {
        self.doc("SELECT doc FROM invites WHERE id = $1", args![id])
            .await
    }

    async fn invites(&self) -> StoreResult<Vec<Invite>> {
        self.docs("SELECT doc FROM invites ORDER BY created_at, id", vec![])
            .await
    }
}

#[async_trait]
impl<D: Database> UserStatusStore for SqlStore<D> {
    async fn custom_user_statuses(
        &self,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<CustomUserStatus>, i64)> {
        self.catalogue_page(
            "custom_user_statuses",
            "name_lower, id",
            name_contains,
            page,
        )
        .await
    }

    async fn custom_user_status_by_id(&self, id: &str) -> StoreResult<Option<CustomUserStatus>> {
        self.doc(
            "SELECT doc FROM custom_user_statuses WHERE id = $1",
            args![id],
        )
        .await
    }

    async fn custom_user_status_by_name(
        &self,
        name: &str,
    ) -> StoreResult<Option<CustomUserStatus>> {
        self.doc(
            "SELECT doc FROM custom_user_statuses WHERE name_lower = $1",
            args![name.to_lowercase()],
        )
        .await
    }
}

#[async_trait]
impl<D: Database> SoundStore for SqlStore<D> {
    async fn custom_sounds(
        &self,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<CustomSound>, i64)> {
        self.catalogue_page("custom_sounds", "name, id", name_contains, page)
            .await
    }

    async fn custom_sound_by_id(&self, id: &str) -> StoreResult<Option<CustomSound>> {
        self.doc("SELECT doc FROM custom_sounds WHERE id = $1", args![id])
            .await
    }

    async fn custom_sound_by_name(&self, name: &str) -> StoreResult<Option<CustomSound>> {
        self.doc("SELECT doc FROM custom_sounds WHERE name = $1", args![name])
            .await
    }
}

#[async_trait]
impl<D: Database> UploadStore for SqlStore<D> {
    async fn upload_by_id(&self, id: &str) -> StoreResult<Option<Upload>> {
        self.doc("SELECT doc FROM uploads WHERE id = $1", args![id])
            .await
    }

    async fn uploads_of_room(
        &self,
        rid: &str,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<Upload>, i64)> {
        let filter = "WHERE rid = $1 AND ($2 IS NULL OR name_lower LIKE $2 ESCAPE '\\')";
        let a = args![
            rid,
            name_contains.map(|n| contains_pattern(&n.to_lowercase()))
        ];
        self.page_of("uploads", filter, a, "created_at DESC, id", page)
            .await
    }

    async fn unconfirmed_uploads(&self, before: Timestamp, limit: i64) -> StoreResult<Vec<Upload>> {
        self.docs(
            "SELECT doc FROM uploads WHERE complete = 0 AND created_at < $1 ORDER BY created_at LIMIT $2",
            args![before.millis(), limit],
        )
        .await
    }
}

#[async_trait]
impl<D: Database> PresenceStore for SqlStore<D> {
    async fn presence_of(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = self
            .rows(
                "SELECT node, status FROM presence WHERE user_id = $1 ORDER BY node",
                args![user_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let text = |i: usize| r[i].text().unwrap_or_default().to_string();
                (text(0), text(1))
            })
            .collect())
    }

    async fn stale_nodes(&self, before: Timestamp) -> StoreResult<Vec<String>> {
        self.texts(
            "SELECT id FROM nodes WHERE seen_at < $1 ORDER BY id",
            args![before.millis()],
        )
        .await
    }

    async fn users_on_node(&self, node: &str) -> StoreResult<Vec<String>> {
        self.texts(
            "SELECT user_id FROM presence WHERE node = $1 ORDER BY user_id",
            args![node],
        )
        .await
    }
}
