//! How each [`Change`] becomes rows. Runs inside the backend's transaction.

use crate::appends::{Append, PendingAppends};
use crate::room_columns::last_message_id;
use crate::{Arg, SqlTx, args, from_json, to_json};
use apogee_core::error::StoreError;
use apogee_core::store::{Change, StoreResult, TwoFactorSecrets};
use apogee_domain::{Message, Room, Subscription, Timestamp, User};
use serde_json::Value;

/// Applies the batch in order; the caller commits or rolls back the transaction.
pub async fn apply_changes(tx: &mut dyn SqlTx, changes: &[Change]) -> StoreResult<()> {
    apply_batches(tx, &[changes]).await
}

/// Applies the batches one after the other, as one: consecutive appended messages are written
/// together (`appends.rs`), everything else in order. The caller commits or rolls back, and
/// keeps the batches to run them again one by one should the group fail.
pub async fn apply_batches(tx: &mut dyn SqlTx, batches: &[&[Change]]) -> StoreResult<()> {
    let mut appends = PendingAppends::default();
    for change in batches.iter().flat_map(|batch| batch.iter()) {
        match change {
            Change::AppendMessage {
                message,
                mentioned_user_ids,
                mentions_all,
            } => appends.push(Append {
                message,
                mentioned: mentioned_user_ids,
                mentions_all: *mentions_all,
            }),
            other => {
                appends.flush(tx).await?;
                apply(tx, other.clone()).await?;
            }
        }
    }
    appends.flush(tx).await
}

async fn apply(tx: &mut dyn SqlTx, change: Change) -> StoreResult<()> {
    let now = Timestamp::now().millis();
    match change {
        Change::InsertUser {
            user,
            password_hash,
        } => {
            tx.exec(
                "INSERT INTO users (id, username_lower, email_lower, name_lower, roles, active, password_hash, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                user_args(&user, password_hash)?,
            )
            .await?;
        }
        Change::UpdateUser(user) => {
            let mut a = user_args(&user, None)?;
            a.remove(6); // password hash is changed only by SetPasswordHash
            exec_one(
                tx,
                "UPDATE users SET username_lower = $2, email_lower = $3, name_lower = $4, roles = $5,
                 active = $6, doc = $7 WHERE id = $1",
                a,
                "user",
            )
            .await?;
        }
        Change::SetPasswordHash { user_id, hash } => {
            exec_one(
                tx,
                "UPDATE users SET password_hash = $2 WHERE id = $1",
                args![user_id, hash],
                "user",
            )
            .await?;
        }
        Change::DeleteUser(id) => {
            let subs = tx
                .query(
                    "SELECT id FROM subscriptions WHERE user_id = $1",
                    args![&id],
                )
                .await?;
            for s in subs {
                tombstone(
                    tx,
                    "subscription",
                    s[0].text().unwrap_or_default(),
                    &id,
                    now,
                )
                .await?;
            }
            let rooms = tx
                .query(
                    "SELECT rid FROM subscriptions WHERE user_id = $1",
                    args![&id],
                )
                .await?;
            for r in rooms {
                adjust_users_count(tx, r[0].text().unwrap_or_default(), -1, now).await?;
            }
            tx.exec("DELETE FROM subscriptions WHERE user_id = $1", args![&id])
                .await?;
            tx.exec("DELETE FROM login_tokens WHERE user_id = $1", args![&id])
                .await?;
            tx.exec(
                "DELETE FROM password_history WHERE user_id = $1",
                args![&id],
            )
            .await?;
            tx.exec("DELETE FROM password_resets WHERE user_id = $1", args![&id])
                .await?;
            tx.exec("DELETE FROM team_members WHERE user_id = $1", args![&id])
                .await?;
            tx.exec("DELETE FROM two_factor WHERE user_id = $1", args![&id])
                .await?;
            tx.exec("DELETE FROM e2e_bots WHERE user_id = $1", args![&id])
                .await?;
            crate::recovery::delete_user(tx, &id).await?;
            exec_one(tx, "DELETE FROM users WHERE id = $1", args![&id], "user").await?;
        }
        Change::InsertLoginToken(t) => {
            // Only login sessions show a device; a personal access token is not one.
            let device = t
                .session_id
                .is_some()
                .then(|| apogee_domain::device::parse(t.client.user_agent.as_deref()));
            let mut a = args![
                t.hashed,
                t.user_id,
                t.created_at.millis(),
                t.expires_at.map(|e| e.millis()),
                t.name,
                t.bypass_two_factor
            ];
            a.extend(args![
                t.session_id,
                t.last_token_part,
                t.client.ip,
                t.client.user_agent,
                device.as_ref().map(|d| d.name.clone()),
                device.as_ref().map(|d| d.os.name.clone()),
                device.as_ref().map(|d| d.os.version.clone()),
                t.last_active_at.map(|at| at.millis())
            ]);
            tx.exec(
                "INSERT INTO login_tokens (hashed, user_id, created_at, expires_at, name, bypass_two_factor,
                 session_id, last_token_part, ip, user_agent, device_name, os_name, os_version, last_active_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                a,
            )
            .await?;
        }
        Change::DeleteLoginToken { user_id, hashed } => {
            tx.exec(
                "DELETE FROM login_tokens WHERE hashed = $1 AND user_id = $2",
                args![hashed, user_id],
            )
            .await?;
        }
        Change::TouchLoginToken { hashed, at } => {
            tx.exec(
                "UPDATE login_tokens SET last_active_at = $2 WHERE hashed = $1",
                args![hashed, at.millis()],
            )
            .await?;
        }
        Change::PasswordChanged {
            user_id,
            hash,
            at,
            history_keep,
        } => {
            exec_one(
                tx,
                "UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1",
                args![&user_id, &hash, at.millis()],
                "user",
            )
            .await?;
            tx.exec(
                "INSERT INTO password_history (user_id, hash, created_at) VALUES ($1, $2, $3)",
                args![&user_id, hash, at.millis()],
            )
            .await?;
            // Keep the newest entries only: old hashes are of no use once out of the window.
            tx.exec(
                "DELETE FROM password_history WHERE user_id = $1 AND created_at NOT IN
                 (SELECT created_at FROM password_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2)",
                args![&user_id, history_keep.max(1)],
            )
            .await?;
        }
        Change::InsertPasswordReset(r) => {
            tx.exec(
                "DELETE FROM password_resets WHERE user_id = $1",
                args![&r.user_id],
            )
            .await?;
            tx.exec(
                "INSERT INTO password_resets (hashed, user_id, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                args![r.hashed, r.user_id, r.email, r.created_at.millis(), r.expires_at.millis()],
            )
            .await?;
        }
        Change::DeletePasswordResets { user_id } => {
            tx.exec(
                "DELETE FROM password_resets WHERE user_id = $1",
                args![user_id],
            )
            .await?;
        }
        Change::DeleteSessionTokens { user_id } => {
            tx.exec(
                "DELETE FROM login_tokens WHERE user_id = $1 AND name IS NULL",
                args![user_id],
            )
            .await?;
        }
        Change::InsertRoom(room) => {
            // `usersCount` is the store's: it counts the subscriptions inserted after the room.
            let room = Room {
                users_count: 0,
                ..room
            };
            tx.exec(
                "INSERT INTO rooms (id, t, name, name_lower, is_default, updated_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                room_row_args(&room)?,
            )
            .await?;
            tx.exec(
                "INSERT INTO room_activity (rid, seq, all_mentions, msgs, lm, updated_at, last_message_id)
                 VALUES ($1, $2, 0, $3, $4, $5, $6)",
                args![
                    &room.id,
                    room.seq,
                    room.msgs,
                    room.lm.map(|lm| lm.millis()),
                    room.updated_at.millis(),
                    last_message_id(&room)
                ],
            )
            .await?;
            write_room_links(tx, &room).await?;
        }
        Change::UpdateRoom(room) => {
            write_room(tx, &room).await?;
            write_room_links(tx, &room).await?;
        }
        Change::DeleteRoom(id) => {
            let subs = tx
                .query(
                    "SELECT id, user_id FROM subscriptions WHERE rid = $1",
                    args![&id],
                )
                .await?;
            for s in subs {
                let (sid, uid) = (
                    s[0].text().unwrap_or_default(),
                    s[1].text().unwrap_or_default(),
                );
                tombstone(tx, "subscription", sid, uid, now).await?;
                tombstone(tx, "membership", &id, uid, now).await?;
            }
            tx.exec("DELETE FROM subscriptions WHERE rid = $1", args![&id])
                .await?;
            tx.exec("DELETE FROM messages WHERE rid = $1", args![&id])
                .await?;
            tx.exec("DELETE FROM invites WHERE rid = $1", args![&id])
                .await?;
            // The Matrix room lives on at other servers; only our mapping to it goes.
            tx.exec("DELETE FROM federation_rooms WHERE rid = $1", args![&id])
                .await?;
            // A team whose main room goes goes with it.
            tx.exec(
                "DELETE FROM team_members WHERE team_id IN (SELECT id FROM teams WHERE room_id = $1)",
                args![&id],
            )
            .await?;
            tx.exec("DELETE FROM teams WHERE room_id = $1", args![&id])
                .await?;
            tx.exec("DELETE FROM room_activity WHERE rid = $1", args![&id])
                .await?;
            exec_one(tx, "DELETE FROM rooms WHERE id = $1", args![&id], "room").await?;
            tombstone(tx, "room", &id, "", now).await?;
        }
        Change::InsertSubscription(sub) => {
            let all = tx
                .query(
                    "SELECT all_mentions FROM room_activity WHERE rid = $1",
                    args![&sub.rid],
                )
                .await?;
            let all_seen = all
                .first()
                .ok_or_else(|| StoreError::Missing("room".into()))?[0]
                .int();
            tx.exec(
                "INSERT INTO subscriptions (id, rid, user_id, username_lower, read_seq, user_mentions,
                 all_mentions_seen, updated_at, doc) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
                args![
                    &sub.id,
                    &sub.rid,
                    &sub.u.id,
                    sub.u.username.to_lowercase(),
                    sub.read_seq,
                    all_seen,
                    sub.updated_at.millis(),
                    to_json(&sub)?
                ],
            )
            .await?;
            adjust_users_count(tx, &sub.rid, 1, now).await?;
        }
        Change::UpdateSubscription(sub) => {
            exec_one(tx, "UPDATE subscriptions SET username_lower = $2, updated_at = $3, doc = $4 WHERE id = $1",
                    args![&sub.id, sub.u.username.to_lowercase(), sub.updated_at.millis(), to_json(&sub)?], "subscription").await?;
        }
        Change::DeleteSubscription { rid, user_id } => {
            let rows = tx
                .query(
                    "SELECT id FROM subscriptions WHERE rid = $1 AND user_id = $2",
                    args![&rid, &user_id],
                )
                .await?;
            let Some(row) = rows.first() else {
                return Err(StoreError::Missing("subscription".into()));
            };
            tombstone(
                tx,
                "subscription",
                row[0].text().unwrap_or_default(),
                &user_id,
                now,
            )
            .await?;
            tombstone(tx, "membership", &rid, &user_id, now).await?;
            tx.exec(
                "DELETE FROM subscriptions WHERE rid = $1 AND user_id = $2",
                args![&rid, &user_id],
            )
            .await?;
            adjust_users_count(tx, &rid, -1, now).await?;
            // Leaving a team's main room is leaving the team.
            tx.exec(
                "DELETE FROM team_members WHERE user_id = $2 AND team_id IN (SELECT id FROM teams WHERE room_id = $1)",
                args![rid, user_id],
            )
            .await?;
        }
        Change::MarkRead { rid, user_id } => {
            mark_read(tx, &rid, &user_id, None, now).await?;
        }
        Change::MarkUnreadFrom {
            rid,
            user_id,
            message_id,
        } => {
            let rows = tx
                .query(
                    "SELECT ts FROM messages WHERE id = $1 AND rid = $2",
                    args![&message_id, &rid],
                )
                .await?;
            let ts = rows
                .first()
                .ok_or_else(|| StoreError::Missing("message".into()))?[0]
                .int();
            let newer = tx
                .query(
                    "SELECT COUNT(*) FROM messages WHERE rid = $1 AND main = 1 AND ts >= $2",
                    args![&rid, ts],
                )
                .await?;
            mark_read(tx, &rid, &user_id, Some(newer[0][0].int()), now).await?;
        }
        // `apply_batches` holds appends back to write them together; one alone is the same.
        Change::AppendMessage {
            message,
            mentioned_user_ids,
            mentions_all,
        } => {
            let mut one = PendingAppends::default();
            one.push(Append {
                message: &message,
                mentioned: &mentioned_user_ids,
                mentions_all,
            });
            one.flush(tx).await?;
        }
        Change::InsertBackfilledMessage(message) => {
            insert_backfilled_message(tx, &message).await?;
        }
        Change::UpdateMessage(message) => {
            // `tmid` too: a backfilled reply joins its thread when its root arrives later.
            let mut args = message_args(&message)?;
            args.push(Arg::from(message.tmid.clone()));
            exec_one(
                tx,
                "UPDATE messages SET updated_at = $2, tcount = $3, pinned = $4, starred_by = $5,
                     mention_ids = $6, msg_lower = $7, doc = $8, main = $9, tmid = $10 WHERE id = $1",
                args,
                "message",
            )
            .await?;
        }
        Change::DeleteMessage { id, rid } => {
            exec_one(
                tx,
                "DELETE FROM messages WHERE id = $1 AND rid = $2",
                args![&id, &rid],
                "message",
            )
            .await?;
            // A room whose last message goes shows the newest one left, as Rocket.Chat's does.
            tx.exec(
                "UPDATE room_activity SET last_message_id = (SELECT id FROM messages
                     WHERE rid = $1 AND main = 1 ORDER BY ts DESC, id DESC LIMIT 1)
                 WHERE rid = $1 AND last_message_id = $2",
                args![&rid, &id],
            )
            .await?;
            tombstone(tx, "message", &id, &rid, now).await?;
        }
        Change::SetSetting { id, value } => {
            tx.exec(
                "INSERT INTO settings (id, value, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                args![id, to_json(&value)?, now],
            )
            .await?;
        }
        Change::SetPermissionRoles { id, roles } => {
            tx.exec(
                "INSERT INTO permissions (id, roles, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, updated_at = excluded.updated_at",
                args![id, to_json(&roles)?, now],
            )
            .await?;
        }
        Change::UpsertRole(role) => {
            tx.exec(
                "INSERT INTO roles (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                args![&role.id, to_json(&role)?],
            )
            .await?;
        }
        Change::DeleteRole(id) => {
            exec_one(tx, "DELETE FROM roles WHERE id = $1", args![id], "role").await?;
        }
        Change::InsertTeam(team) => {
            tx.exec(
                "INSERT INTO teams (id, name, room_id, doc) VALUES ($1, $2, $3, $4)",
                args![&team.id, &team.name, &team.room_id, to_json(&team)?],
            )
            .await?;
        }
        Change::UpdateTeam(team) => {
            exec_one(
                tx,
                "UPDATE teams SET name = $2, room_id = $3, doc = $4 WHERE id = $1",
                args![&team.id, &team.name, &team.room_id, to_json(&team)?],
                "team",
            )
            .await?;
        }
        Change::DeleteTeam(id) => {
            tx.exec("DELETE FROM team_members WHERE team_id = $1", args![&id])
                .await?;
            exec_one(tx, "DELETE FROM teams WHERE id = $1", args![&id], "team").await?;
        }
        Change::UpsertTeamMember(m) => {
            tx.exec(
                "INSERT INTO team_members (id, team_id, user_id, created_at, doc) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (team_id, user_id) DO UPDATE SET id = excluded.id, doc = excluded.doc",
                args![&m.id, &m.team_id, &m.user_id, m.created_at.millis(), to_json(&m)?],
            )
            .await?;
        }
        Change::DeleteTeamMember { team_id, user_id } => {
            exec_one(
                tx,
                "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2",
                args![team_id, user_id],
                "team member",
            )
            .await?;
        }
        Change::UpsertInvite(i) => {
            tx.exec(
                "INSERT INTO invites (id, rid, user_id, created_at, doc) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                args![&i.id, &i.rid, &i.user_id, i.created_at.millis(), to_json(&i)?],
            )
            .await?;
        }
        Change::DeleteInvite(id) => {
            exec_one(tx, "DELETE FROM invites WHERE id = $1", args![id], "invite").await?;
        }
        Change::UpsertCustomUserStatus(st) => {
            tx.exec(
                "INSERT INTO custom_user_statuses (id, name_lower, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET name_lower = excluded.name_lower, doc = excluded.doc",
                args![&st.id, st.name.to_lowercase(), to_json(&st)?],
            )
            .await?;
        }
        Change::UpsertCustomSound(snd) => {
            tx.exec(
                "INSERT INTO custom_sounds (id, name, name_lower, doc) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_lower = excluded.name_lower, doc = excluded.doc",
                args![&snd.id, &snd.name, snd.name.to_lowercase(), to_json(&snd)?],
            )
            .await?;
        }
        Change::DeleteCustomSound(id) => {
            exec_one(
                tx,
                "DELETE FROM custom_sounds WHERE id = $1",
                args![id],
                "custom sound",
            )
            .await?;
        }
        Change::UpsertIntegration(i) => crate::integrations::upsert(tx, &i).await?,
        Change::DeleteIntegration(id) => crate::integrations::delete(tx, &id).await?,
        Change::InsertIntegrationHistory {
            id,
            integration_id,
            doc,
        } => crate::integrations::insert_history(tx, &id, &integration_id, &doc).await?,
        Change::UpsertModerationReport(r) => crate::moderation::upsert(tx, &r).await?,
        Change::UpsertCustomEmoji(e) => crate::emoji::upsert(tx, &e).await?,
        Change::DeleteCustomEmoji(e) => crate::emoji::delete(tx, &e, now).await?,
        Change::InsertUpload(up) => {
            tx.exec(
                "INSERT INTO uploads (id, rid, user_id, name, name_lower, type, size, store_key, complete, created_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                args![
                    &up.id,
                    &up.rid,
                    &up.user_id,
                    &up.name,
                    up.name.to_lowercase(),
                    &up.content_type,
                    up.size,
                    &up.store_key,
                    up.complete,
                    up.created_at.millis(),
                    to_json(&up)?
                ],
            )
            .await?;
        }
        Change::UpdateUpload(up) => {
            exec_one(tx, "UPDATE uploads SET name = $2, name_lower = $3, type = $4, size = $5, store_key = $6, complete = $7, doc = $8 WHERE id = $1",
                    args![
                        &up.id,
                        &up.name,
                        up.name.to_lowercase(),
                        &up.content_type,
                        up.size,
                        &up.store_key,
                        up.complete,
                        to_json(&up)?
                    ], "upload").await?;
        }
        Change::SetPresence {
            node,
            user_id,
            status: Some(status),
        } => {
            tx.exec(
                "INSERT INTO presence (node, user_id, status) VALUES ($1, $2, $3)
                 ON CONFLICT (node, user_id) DO UPDATE SET status = excluded.status",
                args![&node, &user_id, &status],
            )
            .await?;
        }
        Change::SetPresence {
            node,
            user_id,
            status: None,
        } => {
            tx.exec(
                "DELETE FROM presence WHERE node = $1 AND user_id = $2",
                args![&node, &user_id],
            )
            .await?;
        }
        Change::NodeSeen { node, at } => {
            tx.exec(
                "INSERT INTO nodes (id, seen_at) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                args![&node, at.millis()],
            )
            .await?;
        }
        Change::SaveTwoFactor(secrets) => save_two_factor(tx, secrets).await?,
        Change::SaveE2eBot(bot) => {
            let doc = to_json(&bot)?;
            tx.exec(
                "INSERT INTO e2e_bots (user_id, doc) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET doc = $2",
                args![&bot.user_id, doc],
            )
            .await?;
        }
        Change::InsertRecoveryPolicy(p) => crate::recovery::insert_policy(tx, &p).await?,
        Change::SaveRecoveryOfficerKey(k) => crate::recovery::save_officer_key(tx, &k).await?,
        Change::SaveRecoveryEnrolment(e) => crate::recovery::save_enrolment(tx, &e).await?,
        Change::DeleteRecoveryEnrolment { user_id } => {
            tx.exec(
                "DELETE FROM e2e_recovery_enrolments WHERE user_id = $1",
                args![user_id],
            )
            .await?;
        }
        Change::InsertRecoveryRequest(r) => crate::recovery::insert_request(tx, &r).await?,
        Change::CloseRecoveryRequest(r) => crate::recovery::close_request(tx, &r).await?,
        Change::InsertRecoveryApproval(a) => crate::recovery::insert_approval(tx, &a).await?,
        Change::DeleteE2eBot { user_id } => {
            tx.exec("DELETE FROM e2e_bots WHERE user_id = $1", args![user_id])
                .await?;
        }
        Change::DeleteTwoFactor { user_id } => {
            tx.exec("DELETE FROM two_factor WHERE user_id = $1", args![user_id])
                .await?;
        }
        Change::DropNode(node) => {
            tx.exec("DELETE FROM presence WHERE node = $1", args![&node])
                .await?;
            tx.exec("DELETE FROM nodes WHERE id = $1", args![&node])
                .await?;
        }
        Change::Enqueue(item) => {
            tx.exec(
                "INSERT INTO outbox (id, kind, payload, created_at, attempts, due_at, lease_node, last_error, queue)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8)",
                args![
                    item.id,
                    item.kind,
                    to_json(&item.payload)?,
                    item.created_at.millis(),
                    item.attempts,
                    item.created_at.millis(),
                    item.last_error,
                    item.queue
                ],
            )
            .await?;
        }
        Change::LeaseOutbox {
            ids,
            node,
            now,
            until,
        } => {
            for id in ids {
                // Only still-due items: an item another node leased first is left to it.
                tx.exec(
                    "UPDATE outbox SET lease_node = $2, due_at = $3 WHERE id = $1 AND due_at <= $4",
                    args![id, &node, until.millis(), now.millis()],
                )
                .await?;
            }
        }
        Change::OutboxDelivered(id) => {
            tx.exec("DELETE FROM outbox WHERE id = $1", args![id])
                .await?;
        }
        Change::OutboxFailed {
            id,
            error,
            retry_at,
        } => {
            tx.exec(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, due_at = $3, lease_node = NULL
                 WHERE id = $1",
                args![id, error, retry_at.map(|t| t.millis())],
            )
            .await?;
        }
        Change::RetryOutboxNow { id, now } => {
            tx.exec(
                "UPDATE outbox SET due_at = $2 WHERE id = $1 AND lease_node IS NULL AND due_at > $2",
                args![id, now.millis()],
            )
            .await?;
        }
        Change::RecordQueueAttempt { queue, at, error } => {
            // A success keeps the last error (when it happened says it is over).
            let sql = if error.is_none() {
                "INSERT INTO outbox_queue_health (queue, last_success_at) VALUES ($1, $2)
                 ON CONFLICT (queue) DO UPDATE SET last_success_at = excluded.last_success_at"
            } else {
                "INSERT INTO outbox_queue_health (queue, last_failure_at, last_error) VALUES ($1, $2, $3)
                 ON CONFLICT (queue) DO UPDATE SET last_failure_at = excluded.last_failure_at,
                 last_error = excluded.last_error"
            };
            match error {
                None => tx.exec(sql, args![queue, at.millis()]).await?,
                Some(error) => tx.exec(sql, args![queue, at.millis(), error]).await?,
            };
        }
        Change::Audit(entry) => {
            let head = tx
                .query(
                    "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
                    args![],
                )
                .await?;
            let head = head
                .first()
                .ok_or_else(|| StoreError::Backend("audit head row missing".into()))?;
            let (seq, prev_hash) = (
                head[0].int(),
                head[1].text().unwrap_or_default().to_string(),
            );
            let doc = to_json(&entry)?;
            let hash = apogee_core::audit::chain_hash(&prev_hash, seq, &doc);
            tx.exec("UPDATE audit_head SET hash = $1 WHERE id = 1", args![&hash])
                .await?;
            tx.exec(
                "INSERT INTO audit_log (seq, id, ts, event, actor_id, doc, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                args![
                    seq,
                    entry.id,
                    entry.ts.millis(),
                    entry.event,
                    entry.actor.map(|a| a.id),
                    doc,
                    prev_hash,
                    hash
                ],
            )
            .await?;
        }
        Change::InsertFederationSigningKey(key) => {
            tx.exec(
                "INSERT INTO federation_signing_keys (key_id, current_key, pkcs8, created_at)
                 VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING",
                args![key.key_id, key.pkcs8, key.created_at.millis()],
            )
            .await?;
        }
        Change::SaveFederationServerKeys(keys) => {
            for key in keys {
                tx.exec(
                    "INSERT INTO federation_server_keys
                     (server_name, key_id, public_key, valid_until, fetched_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (server_name, key_id) DO UPDATE SET
                     public_key = excluded.public_key, valid_until = excluded.valid_until,
                     fetched_at = excluded.fetched_at",
                    args![
                        key.server_name,
                        key.key_id,
                        key.public_key,
                        key.valid_until.millis(),
                        key.fetched_at.millis()
                    ],
                )
                .await?;
            }
        }
        Change::InsertFederatedRoom(room) => {
            tx.exec(
                "INSERT INTO federation_rooms (rid, matrix_room_id, room_version, origin)
                 VALUES ($1, $2, $3, $4)",
                args![
                    room.rid,
                    room.matrix_room_id,
                    room.room_version,
                    room.origin
                ],
            )
            .await?;
        }
        Change::DeleteFederatedRoom { rid } => {
            tx.exec("DELETE FROM federation_rooms WHERE rid = $1", args![rid])
                .await?;
        }
        Change::SaveFederationEvents(events) => {
            for event in events {
                tx.exec(
                    "INSERT INTO federation_events
                     (event_id, matrix_room_id, message_id, kind, depth, pdu, relates_to)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
                    args![
                        &event.event_id,
                        &event.matrix_room_id,
                        event.message_id.as_deref(),
                        event.kind.as_str(),
                        event.depth,
                        to_json(&event.pdu)?,
                        event.relates_to()
                    ],
                )
                .await?;
            }
        }
        Change::SetFederationRoomState {
            matrix_room_id,
            entries,
        } => {
            for entry in entries {
                tx.exec(
                    "INSERT INTO federation_room_state
                     (matrix_room_id, event_type, state_key, event_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (matrix_room_id, event_type, state_key)
                     DO UPDATE SET event_id = excluded.event_id",
                    args![
                        &matrix_room_id,
                        entry.event_type,
                        entry.state_key,
                        entry.event_id
                    ],
                )
                .await?;
            }
        }
        Change::SetFederationExtremities {
            matrix_room_id,
            remove,
            add,
        } => {
            for event_id in remove {
                tx.exec(
                    "DELETE FROM federation_extremities WHERE matrix_room_id = $1 AND event_id = $2",
                    args![&matrix_room_id, event_id],
                )
                .await?;
            }
            for event_id in add {
                tx.exec(
                    "INSERT INTO federation_extremities (matrix_room_id, event_id) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    args![&matrix_room_id, event_id],
                )
                .await?;
            }
        }
        Change::InsertFederationStateSnapshot {
            snapshot_id,
            entries,
        } => {
            for entry in entries {
                tx.exec(
                    "INSERT INTO federation_state_snapshots
                     (snapshot_id, event_type, state_key, event_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    args![
                        &snapshot_id,
                        entry.event_type,
                        entry.state_key,
                        entry.event_id
                    ],
                )
                .await?;
            }
        }
        Change::SetFederationEventState {
            event_id,
            snapshot_id,
        } => {
            tx.exec(
                "INSERT INTO federation_event_state (event_id, snapshot_id) VALUES ($1, $2)
                 ON CONFLICT (event_id) DO NOTHING",
                args![event_id, snapshot_id],
            )
            .await?;
        }
        Change::AuditExported { sink, seq } => {
            tx.exec(
                "INSERT INTO audit_exports (sink, seq) VALUES ($1, $2)
                 ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq",
                args![sink, seq],
            )
            .await?;
        }
        Change::DeleteUpload(id) => {
            exec_one(tx, "DELETE FROM uploads WHERE id = $1", args![id], "upload").await?;
        }
        Change::DeleteCustomUserStatus(id) => {
            exec_one(
                tx,
                "DELETE FROM custom_user_statuses WHERE id = $1",
                args![id],
                "custom user status",
            )
            .await?;
        }
    }
    Ok(())
}

/// Compare-and-set on the revision: a second writer that read the same revision loses.
async fn save_two_factor(tx: &mut dyn SqlTx, secrets: TwoFactorSecrets) -> StoreResult<()> {
    let doc = to_json(&secrets)?;
    let changed = if secrets.revision == 0 {
        tx.exec(
            "INSERT INTO two_factor (user_id, revision, doc) VALUES ($1, 1, $2) ON CONFLICT (user_id) DO NOTHING",
            args![&secrets.user_id, doc],
        )
        .await?
    } else {
        tx.exec(
            "UPDATE two_factor SET revision = revision + 1, doc = $3 WHERE user_id = $1 AND revision = $2",
            args![&secrets.user_id, secrets.revision, doc],
        )
        .await?
    };
    if changed == 0 {
        return Err(StoreError::Conflict("two-factor state".into()));
    }
    Ok(())
}

/// Runs a statement that must change a row: `Missing(what)` when there was none to change.
async fn exec_one(tx: &mut dyn SqlTx, sql: &str, args: Vec<Arg>, what: &str) -> StoreResult<()> {
    if tx.exec(sql, args).await? == 0 {
        Err(StoreError::Missing(what.to_string()))
    } else {
        Ok(())
    }
}

fn user_args(user: &User, password_hash: Option<String>) -> StoreResult<Vec<Arg>> {
    Ok(args![
        &user.id,
        user.username.to_lowercase(),
        user.primary_email().map(str::to_lowercase),
        user.name.as_ref().map(|n| n.to_lowercase()),
        to_json(&user.roles)?,
        user.active,
        password_hash,
        to_json(user)?
    ])
}

pub(crate) fn message_args(m: &Message) -> StoreResult<Vec<Arg>> {
    let starred: Vec<&str> = m.starred.iter().flatten().map(|s| s.id.as_str()).collect();
    let mentions: Vec<&str> = m.mentions.iter().map(|s| s.id.as_str()).collect();
    Ok(args![
        &m.id,
        m.updated_at.millis(),
        m.tcount.unwrap_or(0),
        m.pinned.unwrap_or(false),
        to_json(&starred)?,
        to_json(&mentions)?,
        // Encrypted messages are never searchable: only ciphertext, nothing to index.
        if m.t.as_deref() == Some("e2e") {
            String::new()
        } else {
            m.msg.to_lowercase()
        },
        to_json(m)?,
        m.in_main_timeline()
    ])
}

/// Replaces a room document, keeping the fields only the store maintains as they are stored:
/// the caller's copy may predate a concurrent message or membership change, and writing it back
/// would lose that update. What messages move is in `room_activity`, which this leaves alone
/// (the document's copies are not read, see `room_columns`); the member count is kept.
async fn write_room(tx: &mut dyn SqlTx, room: &Room) -> StoreResult<()> {
    let stored = locked_room(tx, &room.id).await?;
    let room = Room {
        users_count: stored.users_count,
        ..room.clone()
    };
    exec_one(
        tx,
        "UPDATE rooms SET t = $2, name = $3, name_lower = $4, is_default = $5, updated_at = $6, doc = $7
             WHERE id = $1",
        room_row_args(&room)?,
        "room",
    )
    .await
}

/// A room's row in `rooms`: id, type, name, lowercased name, default flag, time, document.
fn room_row_args(room: &Room) -> StoreResult<Vec<Arg>> {
    Ok(args![
        &room.id,
        room.t.code(),
        room.name.clone(),
        room.name.as_ref().map(|n| n.to_lowercase()),
        room.default,
        room.updated_at.millis(),
        to_json(room)?
    ])
}

/// The room's stored document, its row locked until the transaction ends (PostgreSQL's plain
/// SELECT does not lock; SQLite serializes writers anyway).
async fn locked_room(tx: &mut dyn SqlTx, rid: &str) -> StoreResult<Room> {
    let rows = tx
        .query(
            "UPDATE rooms SET updated_at = updated_at WHERE id = $1 RETURNING doc",
            args![rid],
        )
        .await?;
    from_json(
        &rows
            .first()
            .ok_or_else(|| StoreError::Missing("room".into()))?[0],
    )
}

/// Counts a membership in or out of the room's `usersCount`, under the room's row lock so that
/// concurrent joins, leaves and user deletions all land.
async fn adjust_users_count(
    tx: &mut dyn SqlTx,
    rid: &str,
    delta: i64,
    now: i64,
) -> StoreResult<()> {
    let mut room = locked_room(tx, rid).await?;
    room.users_count = (room.users_count + delta).max(0);
    room.updated_at = Timestamp::from_millis(now);
    tx.exec(
        "UPDATE rooms SET updated_at = $2, doc = $3 WHERE id = $1",
        args![rid, now, to_json(&room)?],
    )
    .await?;
    Ok(())
}

/// When `rid` is a discussion, copies its message count and last message time onto the
/// `discussion-created` message in the parent (`dcount`, `dlm`).
pub(crate) async fn refresh_discussion_metadata(tx: &mut dyn SqlTx, rid: &str) -> StoreResult<()> {
    let rows = tx
        .query(
            "SELECT r.prid, a.msgs, a.lm FROM rooms r JOIN room_activity a ON a.rid = r.id
             WHERE r.id = $1",
            args![rid],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let Some(prid) = row[0].text().map(str::to_string) else {
        return Ok(());
    };
    let (msgs, lm) = (
        row[1].int(),
        row[2].int_or_null().map(Timestamp::from_millis),
    );
    let found = tx
        .query(
            "SELECT doc FROM messages WHERE rid = $1 AND drid = $2",
            args![&prid, rid],
        )
        .await?;
    for m in found {
        let mut doc: Message = from_json(&m[0])?;
        doc.extra.insert("dcount".into(), Value::from(msgs));
        if let Some(lm) = lm {
            doc.extra.insert(
                "dlm".into(),
                serde_json::to_value(lm).unwrap_or(Value::Null),
            );
        }
        doc.updated_at = Timestamp::now();
        tx.exec(
            "UPDATE messages SET updated_at = $2, doc = $3 WHERE id = $1",
            args![&doc.id, doc.updated_at.millis(), to_json(&doc)?],
        )
        .await?;
    }
    Ok(())
}

/// Keeps the `team_id` and `prid` columns in step with the room document.
async fn write_room_links(tx: &mut dyn SqlTx, room: &Room) -> StoreResult<()> {
    tx.exec(
        "UPDATE rooms SET team_id = $2, prid = $3 WHERE id = $1",
        args![&room.id, room.team_id.clone(), room.prid.clone()],
    )
    .await?;
    Ok(())
}

async fn tombstone(
    tx: &mut dyn SqlTx,
    kind: &str,
    id: &str,
    scope: &str,
    now: i64,
) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO tombstones (kind, id, scope, deleted_at) VALUES ($1, $2, $3, $4)",
        args![kind, id, scope, now],
    )
    .await?;
    Ok(())
}

/// Sets the read mark `unread_left` messages before the room's head and clears mention counters
/// (all of them when the room is read to the end).
async fn mark_read(
    tx: &mut dyn SqlTx,
    rid: &str,
    user_id: &str,
    unread_left: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    let rows = tx
        .query(
            "SELECT seq, all_mentions FROM room_activity WHERE rid = $1",
            args![rid],
        )
        .await?;
    let room = rows
        .first()
        .ok_or_else(|| StoreError::Missing("room".into()))?;
    let (seq, all) = (room[0].int(), room[1].int());
    let read_seq = seq - unread_left.unwrap_or(0).clamp(0, seq);
    let sub = tx
        .query(
            "SELECT doc FROM subscriptions WHERE rid = $1 AND user_id = $2",
            args![rid, user_id],
        )
        .await?;
    let row = sub
        .first()
        .ok_or_else(|| StoreError::Missing("subscription".into()))?;
    let mut doc: Subscription = from_json(&row[0])?;
    let ts = Timestamp::from_millis(now);
    doc.ls = Some(ts);
    doc.updated_at = ts;
    tx.exec(
        "UPDATE subscriptions SET read_seq = $3, user_mentions = 0, all_mentions_seen = $4, updated_at = $5, doc = $6
         WHERE rid = $1 AND user_id = $2",
        args![rid, user_id, read_seq, all, now, to_json(&doc)?],
    )
    .await?;
    Ok(())
}

/// A message older than the room's newest: counted in `msgs`, nothing else of the room moves
/// (no sequence, so no subscription counts it unread; `lm` and `lastMessage` stay).
async fn insert_backfilled_message(tx: &mut dyn SqlTx, m: &Message) -> StoreResult<()> {
    exec_one(
        tx,
        "UPDATE room_activity SET msgs = msgs + 1 WHERE rid = $1",
        args![&m.rid],
        "room",
    )
    .await?;
    crate::appends::insert_message_row(tx, m).await
}
