//! The store conformance suite. Every backend runs these same checks against a fresh store via
//! [`conformance_tests!`](crate::conformance_tests), so SQLite and PostgreSQL cannot drift apart.

use crate::error::StoreError;
use crate::store::*;
use apogee_domain::{Message, Room, RoomType, Subscription, Timestamp, User};
use std::sync::Arc;

/// Generates one `#[tokio::test]` per check; `$make` is an async expression giving a fresh
/// `Arc<dyn Store>` (or `None` to skip, e.g. when no PostgreSQL is configured).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            users_round_trip, usernames_and_emails_are_unique, login_tokens, user_listing,
            rooms_round_trip, room_listing, unread_counts_derive_from_sequences,
            last_message_stays_the_newest, last_message_follows_edits_and_deletions,
            mentions_are_counted, mark_unread_from_a_message, history_keyset_pages,
            history_pages_split_no_millisecond, changes_page_through_one_millisecond,
            thread_and_search_filters, deletions_leave_tombstones, failed_batches_write_nothing,
            duplicate_message_ids_conflict, concurrent_commits_all_land,
            a_failing_batch_among_concurrent_ones_fails_alone, room_counters_survive_stale_updates,
            concurrent_appends_across_rooms,
            settings_and_permissions,
            teams_and_memberships, discussion_messages_by_room, invites_and_user_statuses,
            custom_sounds_catalogue, uploads_by_room, presence_per_node,
            subscriptions_without_room_key, upgrade_seeds_only_missing_permissions,
            outbox_leases_and_retries, audit_chain_under_concurrency,
            login_sessions_for_device_management, personal_token_names_are_unique_per_user,
            password_history_and_resets, two_factor_secrets_compare_and_set,
            integrations_by_type_owner_and_channel, moderation_reports_and_summaries,
            custom_emoji_names_and_deltas, federation_keys, federation_rooms_and_events,
            federation_state_snapshots, federation_backfilled_history,
            outbox_queues_deliver_in_order, e2e_recovery_rules, read_state_for_receipts,
            outbox_queue_reads_and_health);
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: Option<std::sync::Arc<dyn $crate::store::Store>> = $make.await;
                match store {
                    Some(store) => $crate::testkit::$name(store).await,
                    None => eprintln!("skipped: no database configured"),
                }
            }
        )*
    };
}

type S = Arc<dyn Store>;

fn user(name: &str) -> User {
    let mut u = User::new(
        apogee_domain::random_id(),
        name.into(),
        Some(name.to_uppercase()),
        "user",
        vec!["user".into()],
    );
    u.emails = vec![apogee_domain::user::Email {
        address: format!("{name}@example.com"),
        verified: false,
    }];
    u
}

fn room(name: &str) -> Room {
    Room::new(
        apogee_domain::random_id(),
        RoomType::Channel,
        Some(name.into()),
        None,
    )
}

fn sub(r: &Room, u: &User) -> Subscription {
    Subscription::new(
        &r.id,
        r.t,
        r.name.clone().unwrap_or_default(),
        None,
        u.as_ref(),
        r.seq,
    )
}

fn msg(r: &Room, u: &User, text: &str, ts: i64) -> Message {
    let mut m = Message::new(apogee_domain::random_id(), &r.id, u.as_ref(), text.into());
    m.ts = Timestamp::from_millis(ts);
    m.updated_at = m.ts;
    m
}

fn append(m: &Message) -> Change {
    Change::AppendMessage {
        message: m.clone(),
        mentioned_user_ids: vec![],
        mentions_all: false,
    }
}

/// A room with the given members, committed.
async fn setup(s: &S, name: &str, members: &[&User]) -> Room {
    let r = room(name);
    let mut changes = vec![Change::InsertRoom(r.clone())];
    changes.extend(
        members
            .iter()
            .map(|u| Change::InsertSubscription(sub(&r, u))),
    );
    s.commit(changes).await.unwrap();
    r
}

async fn add_users(s: &S, users: &[&User]) {
    let changes = users
        .iter()
        .map(|u| Change::InsertUser {
            user: (*u).clone(),
            password_hash: None,
        })
        .collect();
    s.commit(changes).await.unwrap();
}

pub async fn users_round_trip(s: S) {
    let mut alice = user("Alice");
    s.commit(vec![Change::InsertUser {
        user: alice.clone(),
        password_hash: Some("h1".into()),
    }])
    .await
    .unwrap();
    assert_eq!(
        s.user_by_id(&alice.id).await.unwrap().as_ref(),
        Some(&alice)
    );
    assert_eq!(
        s.user_by_username("alice").await.unwrap().unwrap().id,
        alice.id
    );
    assert_eq!(
        s.user_by_email("ALICE@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    assert_eq!(
        s.password_hash(&alice.id).await.unwrap().as_deref(),
        Some("h1")
    );
    alice.name = Some("Alice Liddell".into());
    s.commit(vec![Change::UpdateUser(alice.clone())])
        .await
        .unwrap();
    assert_eq!(
        s.user_by_id(&alice.id)
            .await
            .unwrap()
            .unwrap()
            .name
            .as_deref(),
        Some("Alice Liddell")
    );
    assert_eq!(
        s.password_hash(&alice.id).await.unwrap().as_deref(),
        Some("h1"),
        "updates keep the hash"
    );
    s.commit(vec![Change::SetPasswordHash {
        user_id: alice.id.clone(),
        hash: Some("h2".into()),
    }])
    .await
    .unwrap();
    assert_eq!(
        s.password_hash(&alice.id).await.unwrap().as_deref(),
        Some("h2")
    );
    assert_eq!(
        s.users_by_ids(&[alice.id.clone(), "nope".into()])
            .await
            .unwrap()
            .len(),
        1
    );
    let missing = s.commit(vec![Change::UpdateUser(user("ghost"))]).await;
    assert!(
        matches!(missing, Err(StoreError::Missing(_))),
        "{missing:?}"
    );
}

pub async fn usernames_and_emails_are_unique(s: S) {
    let a = user("bob");
    add_users(&s, &[&a]).await;
    let mut same_name = user("BOB");
    same_name.emails.clear();
    let r = s
        .commit(vec![Change::InsertUser {
            user: same_name,
            password_hash: None,
        }])
        .await;
    assert!(
        matches!(r, Err(StoreError::Conflict(ref c)) if c.contains("username")),
        "{r:?}"
    );
    let mut same_mail = user("robert");
    same_mail.emails = a.emails.clone();
    let r = s
        .commit(vec![Change::InsertUser {
            user: same_mail,
            password_hash: None,
        }])
        .await;
    assert!(
        matches!(r, Err(StoreError::Conflict(ref c)) if c.contains("email")),
        "{r:?}"
    );
}

pub async fn login_tokens(s: S) {
    let u = user("carol");
    add_users(&s, &[&u]).await;
    let token = |hashed: &str, name: Option<&str>| LoginToken {
        hashed: hashed.into(),
        user_id: u.id.clone(),
        created_at: Timestamp::now(),
        expires_at: Some(Timestamp::now().plus_days(1)),
        name: name.map(str::to_string),
        bypass_two_factor: name.is_some(),
        session_id: name.is_none().then(|| format!("s-{hashed}")),
        last_token_part: name.map(|_| "abc123".to_string()),
        client: ClientInfo::default(),
        last_active_at: None,
    };
    s.commit(vec![
        Change::InsertLoginToken(token("t1", None)),
        Change::InsertLoginToken(token("pat", Some("ci"))),
    ])
    .await
    .unwrap();
    let t1 = s.login_token("t1").await.unwrap().unwrap();
    assert_eq!(t1.user_id, u.id);
    assert!(t1.expires_at.is_some() && !t1.bypass_two_factor);
    assert_eq!(s.personal_tokens(&u.id).await.unwrap().len(), 1);
    s.commit(vec![Change::DeleteSessionTokens {
        user_id: u.id.clone(),
    }])
    .await
    .unwrap();
    assert!(s.login_token("t1").await.unwrap().is_none());
    assert!(
        s.login_token("pat").await.unwrap().is_some(),
        "personal tokens survive"
    );
    s.commit(vec![Change::DeleteUser(u.id.clone())])
        .await
        .unwrap();
    assert!(
        s.login_token("pat").await.unwrap().is_none(),
        "deleting a user drops their tokens"
    );
}

fn session(user: &User, hashed: &str, age_ms: i64, agent: &str, ip: &str) -> LoginToken {
    let created = Timestamp::from_millis(Timestamp::now().millis() - age_ms);
    LoginToken {
        hashed: hashed.into(),
        user_id: user.id.clone(),
        created_at: created,
        expires_at: Some(Timestamp::now().plus_days(1)),
        name: None,
        bypass_two_factor: false,
        session_id: Some(format!("sid-{hashed}")),
        last_token_part: None,
        client: ClientInfo {
            ip: Some(ip.into()),
            user_agent: Some(agent.into()),
        },
        last_active_at: Some(created),
    }
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36";

pub async fn login_sessions_for_device_management(s: S) {
    let (a, b) = (user("sess_a"), user("sess_b"));
    add_users(&s, &[&a, &b]).await;
    let mut expired = session(&a, "a-old", 10_000, FIREFOX, "10.0.0.9");
    expired.expires_at = Some(Timestamp::from_millis(Timestamp::now().millis() - 1));
    let mut pat = session(&a, "a-pat", 0, CHROME, "10.0.0.8");
    pat.session_id = None;
    pat.name = Some("ci".into());
    s.commit(vec![
        Change::InsertLoginToken(session(&a, "a1", 3_000, FIREFOX, "10.0.0.1")),
        Change::InsertLoginToken(session(&a, "a2", 2_000, CHROME, "10.0.0.2")),
        Change::InsertLoginToken(session(&b, "b1", 1_000, CHROME, "10.0.0.3")),
        Change::InsertLoginToken(expired),
        Change::InsertLoginToken(pat),
    ])
    .await
    .unwrap();
    let ids = |v: &[LoginToken]| v.iter().map(|t| t.hashed.clone()).collect::<Vec<_>>();
    let all = Page {
        offset: 0,
        count: 50,
    };
    let own = SessionQuery {
        user_id: Some(a.id.clone()),
        descending: true,
        ..Default::default()
    };
    let (list, total) = s.login_sessions(&own, all).await.unwrap();
    assert_eq!(
        (ids(&list), total),
        (vec!["a2".to_string(), "a1".to_string()], 2),
        "newest first; no expired sessions, no personal tokens, no one else's"
    );
    assert_eq!(list[1].client.ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(list[1].client.user_agent.as_deref(), Some(FIREFOX));
    let by_device = SessionQuery {
        sort: SessionSort::DeviceName,
        ..Default::default()
    };
    let (list, total) = s.login_sessions(&by_device, all).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        ids(&list),
        ["b1", "a2", "a1"],
        "Chrome before Firefox, newest first"
    );
    let recent = SessionQuery {
        logged_in_after: Some(Timestamp::from_millis(Timestamp::now().millis() - 2_500)),
        ..Default::default()
    };
    let (list, total) = s.login_sessions(&recent, all).await.unwrap();
    assert_eq!(
        (ids(&list), total),
        (vec!["a2".to_string(), "b1".to_string()], 2)
    );
    let search = SessionQuery {
        text: Some("fIrEfOx".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&s.login_sessions(&search, all).await.unwrap().0),
        ["a1"]
    );
    let by_user = SessionQuery {
        text: Some("sess_b".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&s.login_sessions(&by_user, all).await.unwrap().0),
        ["b1"]
    );
    let (page, total) = s
        .login_sessions(
            &SessionQuery::default(),
            Page {
                offset: 1,
                count: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec!["a2".to_string()], 3));
    assert_eq!(
        s.login_session("sid-a1").await.unwrap().map(|t| t.hashed),
        Some("a1".into())
    );
    assert!(s.login_session("sid-nope").await.unwrap().is_none());
    assert_eq!(
        s.session_tokens(&a.id).await.unwrap().len(),
        3,
        "expired included"
    );
    let later = Timestamp::now().plus_days(1);
    s.commit(vec![Change::TouchLoginToken {
        hashed: "a1".into(),
        at: later,
    }])
    .await
    .unwrap();
    assert_eq!(
        s.login_token("a1").await.unwrap().unwrap().last_active_at,
        Some(later)
    );
    // Deleting a token names its owner: another user's token is left alone.
    s.commit(vec![Change::DeleteLoginToken {
        user_id: b.id.clone(),
        hashed: "a1".into(),
    }])
    .await
    .unwrap();
    assert!(s.login_token("a1").await.unwrap().is_some());
    s.commit(vec![Change::DeleteLoginToken {
        user_id: a.id.clone(),
        hashed: "a1".into(),
    }])
    .await
    .unwrap();
    assert!(s.login_session("sid-a1").await.unwrap().is_none());
}

pub async fn personal_token_names_are_unique_per_user(s: S) {
    let (a, b) = (user("pat_a"), user("pat_b"));
    add_users(&s, &[&a, &b]).await;
    let pat = |u: &User, hashed: &str| {
        let mut t = session(u, hashed, 0, "", "");
        t.session_id = None;
        t.name = Some("deploy".into());
        t
    };
    s.commit(vec![
        Change::InsertLoginToken(pat(&a, "pa1")),
        Change::InsertLoginToken(pat(&b, "pb1")),
    ])
    .await
    .unwrap();
    let r = s
        .commit(vec![Change::InsertLoginToken(pat(&a, "pa2"))])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert!(s.login_token("pa2").await.unwrap().is_none());
}

pub async fn password_history_and_resets(s: S) {
    let u = user("pw_user");
    add_users(&s, &[&u]).await;
    assert!(s.password_changed_at(&u.id).await.unwrap().is_none());
    for (i, hash) in ["h1", "h2", "h3", "h4"].iter().enumerate() {
        s.commit(vec![Change::PasswordChanged {
            user_id: u.id.clone(),
            hash: hash.to_string(),
            at: Timestamp::from_millis(1_000 + i as i64),
            history_keep: 3,
        }])
        .await
        .unwrap();
    }
    assert_eq!(s.password_hash(&u.id).await.unwrap().as_deref(), Some("h4"));
    assert_eq!(
        s.password_changed_at(&u.id).await.unwrap(),
        Some(Timestamp::from_millis(1_003))
    );
    assert_eq!(
        s.password_history(&u.id, 10).await.unwrap(),
        ["h4", "h3", "h2"],
        "newest first, only the newest three kept"
    );
    assert_eq!(s.password_history(&u.id, 2).await.unwrap(), ["h4", "h3"]);

    let reset = |hashed: &str| PasswordReset {
        hashed: hashed.into(),
        user_id: u.id.clone(),
        email: "pw@example.com".into(),
        created_at: Timestamp::now(),
        expires_at: Timestamp::now().plus_days(1),
    };
    s.commit(vec![Change::InsertPasswordReset(reset("r1"))])
        .await
        .unwrap();
    s.commit(vec![Change::InsertPasswordReset(reset("r2"))])
        .await
        .unwrap();
    assert!(
        s.password_reset("r1").await.unwrap().is_none(),
        "superseded"
    );
    let r2 = s.password_reset("r2").await.unwrap().unwrap();
    assert_eq!(
        (r2.user_id.as_str(), r2.email.as_str()),
        (u.id.as_str(), "pw@example.com")
    );
    s.commit(vec![Change::DeletePasswordResets {
        user_id: u.id.clone(),
    }])
    .await
    .unwrap();
    assert!(s.password_reset("r2").await.unwrap().is_none());
    s.commit(vec![Change::InsertPasswordReset(reset("r3"))])
        .await
        .unwrap();
    s.commit(vec![Change::DeleteUser(u.id.clone())])
        .await
        .unwrap();
    assert!(s.password_reset("r3").await.unwrap().is_none());
    assert!(s.password_history(&u.id, 10).await.unwrap().is_empty());
}

pub async fn user_listing(s: S) {
    let (a, b, mut c) = (user("dave"), user("erin"), user("frank"));
    c.roles.push("admin".into());
    c.active = false;
    add_users(&s, &[&a, &b, &c]).await;
    let all = s
        .list_users(
            &UserQuery::default(),
            Page {
                offset: 0,
                count: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.1, 3);
    let names: Vec<_> = all.0.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["dave", "erin", "frank"]);
    let page = s
        .list_users(
            &UserQuery::default(),
            Page {
                offset: 1,
                count: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!((page.0[0].username.as_str(), page.1), ("erin", 3));
    let q = UserQuery {
        text: Some("RI".into()),
        ..Default::default()
    };
    assert_eq!(
        s.list_users(
            &q,
            Page {
                offset: 0,
                count: 10
            }
        )
        .await
        .unwrap()
        .1,
        1
    );
    let q = UserQuery {
        text: Some("%".into()),
        ..Default::default()
    };
    assert_eq!(
        s.list_users(
            &q,
            Page {
                offset: 0,
                count: 10
            }
        )
        .await
        .unwrap()
        .1,
        0,
        "LIKE wildcards are escaped"
    );
    assert_eq!(s.count_users_with_role("admin").await.unwrap(), 1);
    let q = UserQuery {
        active: Some(false),
        ..Default::default()
    };
    assert_eq!(
        s.list_users(
            &q,
            Page {
                offset: 0,
                count: 10
            }
        )
        .await
        .unwrap()
        .0[0]
            .id,
        c.id
    );
}

pub async fn rooms_round_trip(s: S) {
    let mut r = room("lobby");
    r.default = true;
    s.commit(vec![Change::InsertRoom(r.clone())]).await.unwrap();
    assert_eq!(s.room_by_id(&r.id).await.unwrap().as_ref(), Some(&r));
    assert_eq!(s.room_by_name("lobby").await.unwrap().unwrap().id, r.id);
    assert_eq!(s.default_rooms().await.unwrap().len(), 1);
    r.topic = Some("news".into());
    r.name = Some("hall".into());
    s.commit(vec![Change::UpdateRoom(r.clone())]).await.unwrap();
    assert!(s.room_by_name("lobby").await.unwrap().is_none());
    assert_eq!(
        s.room_by_name("hall")
            .await
            .unwrap()
            .unwrap()
            .topic
            .as_deref(),
        Some("news")
    );
    let dup = s.commit(vec![Change::InsertRoom(room("hall"))]).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let mut dm = Room::new("ab".into(), RoomType::Direct, None, None);
    dm.uids = vec!["a".into(), "b".into()];
    s.commit(vec![
        Change::InsertRoom(dm.clone()),
        Change::InsertRoom(Room::new("cd".into(), RoomType::Direct, None, None)),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.rooms_by_ids(&["ab".into(), r.id.clone()])
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn room_listing(s: S) {
    let u = user("gina");
    add_users(&s, &[&u]).await;
    setup(&s, "alpha", &[&u]).await;
    setup(&s, "beta", &[]).await;
    let mut g = room("gamma");
    g.t = RoomType::Group;
    s.commit(vec![Change::InsertRoom(g)]).await.unwrap();
    let page = Page {
        offset: 0,
        count: 10,
    };
    let channels = RoomQuery {
        types: vec![RoomType::Channel],
        ..Default::default()
    };
    let (rooms, total) = s.list_rooms(&channels, page).await.unwrap();
    assert_eq!((rooms.len(), total), (2, 2));
    assert_eq!(rooms[0].name.as_deref(), Some("alpha"));
    let mine = RoomQuery {
        member: Some(u.id.clone()),
        ..channels.clone()
    };
    assert_eq!(s.list_rooms(&mine, page).await.unwrap().1, 1);
    let named = RoomQuery {
        name_contains: Some("ET".into()),
        ..channels
    };
    assert_eq!(
        s.list_rooms(&named, page).await.unwrap().0[0]
            .name
            .as_deref(),
        Some("beta")
    );
    assert_eq!(
        s.list_rooms(&RoomQuery::default(), page).await.unwrap().1,
        3,
        "no type filter lists all"
    );
}

pub async fn unread_counts_derive_from_sequences(s: S) {
    let (a, b) = (user("hank"), user("iris"));
    add_users(&s, &[&a, &b]).await;
    let r = setup(&s, "chat", &[&a, &b]).await;
    for i in 0..3 {
        s.commit(vec![append(&msg(&r, &a, "hi", 1000 + i))])
            .await
            .unwrap();
    }
    let mut reply = msg(&r, &b, "in thread", 2000);
    reply.tmid = Some("parent".into());
    s.commit(vec![append(&reply)]).await.unwrap();
    let sb = s.subscription(&r.id, &b.id).await.unwrap().unwrap();
    assert_eq!(
        (sb.unread, sb.alert),
        (3, true),
        "hidden thread replies do not count"
    );
    assert_eq!(
        s.subscription(&r.id, &a.id).await.unwrap().unwrap().unread,
        0,
        "own messages are read"
    );
    let room = s.room_by_id(&r.id).await.unwrap().unwrap();
    assert_eq!((room.seq, room.msgs), (3, 4));
    assert_eq!(room.last_message.unwrap()["msg"], "hi");
    s.commit(vec![Change::MarkRead {
        rid: r.id.clone(),
        user_id: b.id.clone(),
    }])
    .await
    .unwrap();
    let sb = s.subscription(&r.id, &b.id).await.unwrap().unwrap();
    assert_eq!((sb.unread, sb.alert), (0, false));
    assert!(sb.ls.is_some());
    assert_eq!(s.subscriptions_of_user(&b.id).await.unwrap().len(), 1);
    let (members, total) = s
        .subscriptions_of_room(
            &r.id,
            Page {
                offset: 0,
                count: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!((members.len(), total), (2, 2));
    assert_eq!(members[0].u.username, "hank");
    let some = s
        .subscriptions_in_room(&r.id, &[b.id.clone(), "nobody".into()])
        .await
        .unwrap();
    assert_eq!(some.len(), 1);
    assert_eq!((some[0].u.id.as_str(), some[0].unread), (b.id.as_str(), 0));
    assert!(
        s.subscriptions_in_room(&r.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

/// A message stamped before a newer one can commit after it (another group, committer or
/// node): it counts, but the room's `lm` and `lastMessage` stay the newest.
pub async fn last_message_stays_the_newest(s: S) {
    let (a, b) = (user("nina"), user("otto"));
    add_users(&s, &[&a, &b]).await;
    let r = setup(&s, "late", &[&a, &b]).await;
    s.commit(vec![append(&msg(&r, &a, "newer", 2000))])
        .await
        .unwrap();
    s.commit(vec![append(&msg(&r, &b, "older", 1000))])
        .await
        .unwrap();
    let room = s.room_by_id(&r.id).await.unwrap().unwrap();
    assert_eq!((room.seq, room.msgs), (2, 2));
    assert_eq!(room.lm, Some(Timestamp::from_millis(2000)));
    assert_eq!(room.last_message.unwrap()["msg"], "newer");
    let sb = s.subscription(&r.id, &b.id).await.unwrap().unwrap();
    assert_eq!(
        sb.unread, 0,
        "the late sender still read up to their own message"
    );
    let sa = s.subscription(&r.id, &a.id).await.unwrap().unwrap();
    assert_eq!(sa.unread, 1);
    // In one group too, whichever comes first in it.
    s.commit(vec![
        append(&msg(&r, &a, "newest", 3000)),
        append(&msg(&r, &b, "oldest", 500)),
    ])
    .await
    .unwrap();
    let room = s.room_by_id(&r.id).await.unwrap().unwrap();
    assert_eq!((room.seq, room.msgs), (4, 4));
    assert_eq!(room.last_message.unwrap()["msg"], "newest");
}

/// A room's `lastMessage` is its stored message: an edit shows in it, and when it is deleted the
/// newest main-timeline message left takes its place (a thread reply does not).
pub async fn last_message_follows_edits_and_deletions(s: S) {
    let a = user("petra");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "edited", &[&a]).await;
    let first = msg(&r, &a, "first", 1000);
    let mut reply = msg(&r, &a, "reply", 1500);
    reply.tmid = Some(first.id.clone());
    let mut last = msg(&r, &a, "last", 2000);
    s.commit(vec![append(&first), append(&reply), append(&last)])
        .await
        .unwrap();
    last.msg = "last, edited".into();
    let delete = |m: &Message| Change::DeleteMessage {
        id: m.id.clone(),
        rid: r.id.clone(),
    };
    let steps = [
        (Change::UpdateMessage(last.clone()), Some("last, edited")),
        (delete(&last), Some("first")),
        // A thread reply is not the room's last message.
        (delete(&first), None),
    ];
    for (change, expected) in steps {
        s.commit(vec![change]).await.unwrap();
        let room = s.room_by_id(&r.id).await.unwrap().unwrap();
        let shown = room
            .last_message
            .map(|m| m["msg"].as_str().unwrap().to_string());
        assert_eq!(shown.as_deref(), expected);
    }
}

pub async fn mentions_are_counted(s: S) {
    let (a, b, c) = (user("jack"), user("kate"), user("liam"));
    add_users(&s, &[&a, &b, &c]).await;
    let r = setup(&s, "ops", &[&a, &b, &c]).await;
    let m = msg(&r, &a, "@kate look", 1);
    s.commit(vec![Change::AppendMessage {
        message: m,
        mentioned_user_ids: vec![b.id.clone()],
        mentions_all: false,
    }])
    .await
    .unwrap();
    let m = msg(&r, &a, "@all look", 2);
    s.commit(vec![Change::AppendMessage {
        message: m,
        mentioned_user_ids: vec![],
        mentions_all: true,
    }])
    .await
    .unwrap();
    let sb = s.subscription(&r.id, &b.id).await.unwrap().unwrap();
    assert_eq!((sb.user_mentions, sb.group_mentions, sb.unread), (1, 1, 2));
    let sc = s.subscription(&r.id, &c.id).await.unwrap().unwrap();
    assert_eq!((sc.user_mentions, sc.group_mentions), (0, 1));
    s.commit(vec![Change::MarkRead {
        rid: r.id.clone(),
        user_id: c.id.clone(),
    }])
    .await
    .unwrap();
    let sc = s.subscription(&r.id, &c.id).await.unwrap().unwrap();
    assert_eq!((sc.user_mentions, sc.group_mentions), (0, 0));
}

pub async fn mark_unread_from_a_message(s: S) {
    let (a, b) = (user("mia"), user("noah"));
    add_users(&s, &[&a, &b]).await;
    let r = setup(&s, "desk", &[&a, &b]).await;
    let msgs: Vec<Message> = (0..5).map(|i| msg(&r, &a, "m", 100 + i)).collect();
    s.commit(msgs.iter().map(append).collect()).await.unwrap();
    s.commit(vec![Change::MarkRead {
        rid: r.id.clone(),
        user_id: b.id.clone(),
    }])
    .await
    .unwrap();
    s.commit(vec![Change::MarkUnreadFrom {
        rid: r.id.clone(),
        user_id: b.id.clone(),
        message_id: msgs[3].id.clone(),
    }])
    .await
    .unwrap();
    assert_eq!(
        s.subscription(&r.id, &b.id).await.unwrap().unwrap().unread,
        2
    );
}

pub async fn history_keyset_pages(s: S) {
    let a = user("olga");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "log", &[&a]).await;
    let msgs: Vec<Message> = (0..10)
        .map(|i| msg(&r, &a, &format!("m{i}"), 1000 + i * 10))
        .collect();
    s.commit(msgs.iter().map(append).collect()).await.unwrap();
    let q = HistoryQuery {
        count: 3,
        with_total: true,
        ..Default::default()
    };
    let (page, total) = s.history(&r.id, &q).await.unwrap();
    assert_eq!(total, 10);
    let uncounted = HistoryQuery {
        with_total: false,
        ..q.clone()
    };
    assert_eq!(
        s.history(&r.id, &uncounted).await.unwrap().1,
        0,
        "no count asked"
    );
    assert_eq!(
        page.iter().map(|m| m.msg.as_str()).collect::<Vec<_>>(),
        ["m9", "m8", "m7"]
    );
    let q = HistoryQuery {
        count: 3,
        latest: Some(page[2].ts),
        ..Default::default()
    };
    let next = s.history(&r.id, &q).await.unwrap().0;
    assert_eq!(
        next[0].msg, "m6",
        "the next page starts strictly before the bound"
    );
    let q = HistoryQuery {
        count: 100,
        latest: Some(msgs[5].ts),
        oldest: Some(msgs[2].ts),
        inclusive: true,
        ..Default::default()
    };
    assert_eq!(s.history(&r.id, &q).await.unwrap().0.len(), 4);
    let q = HistoryQuery {
        count: 100,
        latest: Some(msgs[5].ts),
        oldest: Some(msgs[2].ts),
        ..Default::default()
    };
    assert_eq!(s.history(&r.id, &q).await.unwrap().0.len(), 2);
    let q = HistoryQuery {
        count: 2,
        ascending: true,
        offset: 1,
        ..Default::default()
    };
    assert_eq!(s.history(&r.id, &q).await.unwrap().0[0].msg, "m1");
}

/// Many messages share one millisecond across page boundaries: paging in small pages, backward
/// and forward, by the full `(ts, id)` keyset or by a timestamp alone (the wire's exclusive
/// `latest`/`oldest`, with the page's last millisecond completed), returns each message once, in
/// order.
pub async fn history_pages_split_no_millisecond(s: S) {
    let a = user("tess");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "ties", &[&a]).await;
    // Ids that sort alike under any collation; inserted out of order.
    let at = |id: &str, ts: i64| {
        let mut m = msg(&r, &a, id, ts);
        m.id = format!("tie-{id}");
        m
    };
    let mut msgs = vec![at("a0", 1000), at("a1", 1000)];
    msgs.extend((0..7).rev().map(|i| at(&format!("b{i}"), 2000)));
    msgs.extend([
        at("c0", 3000),
        at("c1", 3000),
        at("c2", 3000),
        at("d0", 4000),
    ]);
    s.commit(msgs.iter().map(append).collect()).await.unwrap();
    let mut oldest_first: Vec<String> = msgs.iter().map(|m| m.id.clone()).collect();
    oldest_first.sort_by_key(|id| (msgs.iter().find(|m| m.id == *id).unwrap().ts, id.clone()));
    let newest_first: Vec<String> = oldest_first.iter().rev().cloned().collect();
    let ids = |page: &[Message]| page.iter().map(|m| m.id.clone()).collect::<Vec<_>>();

    // The full keyset: every page has exactly `count`, none is lost or repeated.
    for ascending in [false, true] {
        let mut seen = Vec::new();
        let mut edge: Option<MessageKey> = None;
        loop {
            let q = HistoryQuery {
                count: 2,
                ascending,
                before: edge.clone().filter(|_| !ascending),
                after: edge.clone().filter(|_| ascending),
                ..Default::default()
            };
            let (page, _) = s.history(&r.id, &q).await.unwrap();
            assert!(page.len() <= 2, "a keyset page is at most `count`");
            let Some(last) = page.last() else { break };
            edge = Some(MessageKey::of(last));
            seen.extend(ids(&page));
        }
        let want = if ascending {
            &oldest_first
        } else {
            &newest_first
        };
        assert_eq!(&seen, want, "keyset paging, ascending: {ascending}");
    }

    // A timestamp alone, exclusive, as clients send it: pages end with a whole millisecond.
    for ascending in [false, true] {
        let mut seen = Vec::new();
        let mut edge: Option<Timestamp> = None;
        let mut sizes = Vec::new();
        loop {
            let q = HistoryQuery {
                count: 2,
                ascending,
                latest: edge.filter(|_| !ascending),
                oldest: edge.filter(|_| ascending),
                whole_last_millisecond: true,
                ..Default::default()
            };
            let (page, _) = s.history(&r.id, &q).await.unwrap();
            let Some(last) = page.last() else { break };
            edge = Some(last.ts);
            sizes.push(page.len());
            seen.extend(ids(&page));
        }
        let want = if ascending {
            &oldest_first
        } else {
            &newest_first
        };
        assert_eq!(&seen, want, "timestamp paging, ascending: {ascending}");
        let want_sizes = if ascending {
            vec![2, 7, 3, 1]
        } else {
            vec![4, 7, 2]
        };
        assert_eq!(
            sizes, want_sizes,
            "a page grows only by its last millisecond's ties"
        );
    }

    // Without completing the millisecond, a timestamp bound loses the page's other ties: the
    // reason for the flag (and what Rocket.Chat's own `ts`-only pages do).
    let q = HistoryQuery {
        count: 2,
        latest: Some(Timestamp::from_millis(2500)),
        ..Default::default()
    };
    let (page, _) = s.history(&r.id, &q).await.unwrap();
    assert_eq!(ids(&page), ["tie-b6", "tie-b5"]);
    let next = HistoryQuery {
        latest: Some(page[1].ts),
        ..q
    };
    assert_eq!(
        ids(&s.history(&r.id, &next).await.unwrap().0),
        ["tie-a1", "tie-a0"]
    );

    // Both keyset bounds and a page smaller than the ties: the middle of one millisecond.
    let q = HistoryQuery {
        count: 2,
        before: Some(MessageKey::of(&msgs[2])), // tie-b6
        after: Some(MessageKey::of(&msgs[7])),  // tie-b1
        whole_last_millisecond: true,
        ..Default::default()
    };
    assert_eq!(
        ids(&s.history(&r.id, &q).await.unwrap().0),
        ["tie-b5", "tie-b4", "tie-b3", "tie-b2"],
        "the completed millisecond stays within both bounds"
    );
    // Offsets and filters apply to the ties too.
    let q = HistoryQuery {
        count: 1,
        offset: 3,
        latest: Some(Timestamp::from_millis(2500)),
        whole_last_millisecond: true,
        text: Some("b".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&s.history(&r.id, &q).await.unwrap().0),
        ["tie-b3", "tie-b2", "tie-b1", "tie-b0"]
    );
}

/// The change feed (`chat.syncMessages`) pages by `(_updatedAt, _id)`: many changes in one
/// millisecond across a page boundary are each read once, messages sent then (never changed)
/// in their place among messages changed then.
pub async fn changes_page_through_one_millisecond(s: S) {
    let a = user("uma");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "feed", &[&a]).await;
    let mut msgs: Vec<Message> = (0..7)
        .map(|i| {
            let mut m = msg(&r, &a, &format!("u{i}"), 10 + i);
            m.id = format!("upd-{i}");
            m.updated_at = Timestamp::from_millis(if i < 2 { 50 } else { 60 });
            m
        })
        .collect();
    for (id, ts) in [("upd-1x", 50), ("upd-3x", 60), ("upd-7", 70)] {
        let mut m = msg(&r, &a, id, ts);
        m.id = id.into();
        m.updated_at = m.ts;
        msgs.push(m);
    }
    s.commit(msgs.iter().rev().map(append).collect())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let (mut from, mut after_id) = (Timestamp::from_millis(1), None::<String>);
    loop {
        let page = s
            .messages_updated_since(&r.id, from, after_id.as_deref(), 3)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        (from, after_id) = (last.updated_at, Some(last.id.clone()));
        seen.extend(page.iter().map(|m| m.id.clone()));
    }
    let want = [
        "upd-0", "upd-1", "upd-1x", "upd-2", "upd-3", "upd-3x", "upd-4", "upd-5", "upd-6", "upd-7",
    ];
    assert_eq!(seen, want);
    let later = s
        .messages_updated_since(&r.id, Timestamp::from_millis(50), None, 10)
        .await
        .unwrap();
    assert_eq!(
        later.len(),
        7,
        "without an id, the millisecond itself is excluded"
    );
}

pub async fn thread_and_search_filters(s: S) {
    let a = user("pete");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "dev", &[&a]).await;
    let mut parent = msg(&r, &a, "Release 100% done_now", 1);
    let mut reply = msg(&r, &a, "nice", 2);
    reply.tmid = Some(parent.id.clone());
    s.commit(vec![append(&parent), append(&reply)])
        .await
        .unwrap();
    parent.tcount = Some(1);
    parent.updated_at = Timestamp::from_millis(3);
    parent.pinned = Some(true);
    parent.starred = Some(vec![apogee_domain::message::Starred { id: a.id.clone() }]);
    s.commit(vec![Change::UpdateMessage(parent.clone())])
        .await
        .unwrap();
    let all = |q: HistoryQuery| HistoryQuery {
        count: 50,
        with_total: true,
        ..q
    };
    let main = s
        .history(&r.id, &all(HistoryQuery::default()))
        .await
        .unwrap();
    assert_eq!(main.1, 1, "replies stay out of the main timeline");
    let with = s
        .history(
            &r.id,
            &all(HistoryQuery {
                include_thread_replies: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(with.1, 2);
    let thread = s
        .history(
            &r.id,
            &all(HistoryQuery {
                tmid: Some(parent.id.clone()),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(thread.0[0].id, reply.id);
    let threads = s
        .history(
            &r.id,
            &all(HistoryQuery {
                threads_only: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(threads.0[0].id, parent.id);
    for (needle, hits) in [
        ("100%", 1),
        ("release", 1),
        ("%", 1),
        ("_now", 1),
        ("0_", 0),
    ] {
        let q = all(HistoryQuery {
            text: Some(needle.into()),
            include_thread_replies: true,
            ..Default::default()
        });
        assert_eq!(s.history(&r.id, &q).await.unwrap().1, hits, "{needle}");
    }
    assert_eq!(
        s.history(
            &r.id,
            &all(HistoryQuery {
                pinned_only: true,
                ..Default::default()
            })
        )
        .await
        .unwrap()
        .1,
        1
    );
    let q = all(HistoryQuery {
        starred_by: Some(a.id.clone()),
        ..Default::default()
    });
    assert_eq!(s.history(&r.id, &q).await.unwrap().1, 1);
    let updated = s
        .messages_updated_since(&r.id, Timestamp::from_millis(1), None, 10)
        .await
        .unwrap();
    assert_eq!(updated.len(), 2);
}

pub async fn deletions_leave_tombstones(s: S) {
    let a = user("quinn");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "tmp", &[&a]).await;
    let m = msg(&r, &a, "bye", 5);
    s.commit(vec![append(&m)]).await.unwrap();
    let before = Timestamp::from_millis(Timestamp::now().millis() - 1000);
    s.commit(vec![Change::DeleteMessage {
        id: m.id.clone(),
        rid: r.id.clone(),
    }])
    .await
    .unwrap();
    assert!(s.message_by_id(&m.id).await.unwrap().is_none());
    assert_eq!(
        s.deleted_messages_since(&r.id, before).await.unwrap()[0].id,
        m.id
    );
    let sub_id = s.subscription(&r.id, &a.id).await.unwrap().unwrap().id;
    s.commit(vec![Change::DeleteSubscription {
        rid: r.id.clone(),
        user_id: a.id.clone(),
    }])
    .await
    .unwrap();
    assert_eq!(
        s.deleted_subscriptions_since(&a.id, before).await.unwrap()[0].id,
        sub_id
    );
    assert_eq!(
        s.left_rooms_since(&a.id, before).await.unwrap()[0].id,
        r.id,
        "leaving is remembered per room for rooms.get deltas"
    );
    s.commit(vec![Change::DeleteRoom(r.id.clone())])
        .await
        .unwrap();
    assert!(s.room_by_id(&r.id).await.unwrap().is_none());
    assert_eq!(
        s.deleted_rooms_since(std::slice::from_ref(&r.id), before)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.deleted_rooms_since(std::slice::from_ref(&r.id), Timestamp::now().plus_days(1))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn failed_batches_write_nothing(s: S) {
    let a = user("rita");
    add_users(&s, &[&a]).await;
    let r = room("atomic");
    let bad = s
        .commit(vec![
            Change::InsertRoom(r.clone()),
            Change::InsertSubscription(sub(&r, &a)),
            Change::DeleteMessage {
                id: "none".into(),
                rid: r.id.clone(),
            },
        ])
        .await;
    assert!(bad.is_err());
    assert!(
        s.room_by_id(&r.id).await.unwrap().is_none(),
        "the whole batch rolled back"
    );
    assert!(s.subscription(&r.id, &a.id).await.unwrap().is_none());
}

pub async fn duplicate_message_ids_conflict(s: S) {
    let a = user("sam");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "dups", &[&a]).await;
    let m = msg(&r, &a, "once", 1);
    s.commit(vec![append(&m)]).await.unwrap();
    let again = s.commit(vec![append(&m)]).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let room = s.room_by_id(&r.id).await.unwrap().unwrap();
    assert_eq!(room.msgs, 1, "the failed append did not bump counters");
}

pub async fn concurrent_commits_all_land(s: S) {
    let a = user("tess");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "busy", &[&a]).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (s, m) = (s.clone(), msg(&r, &a, "x", i));
        tasks.push(tokio::spawn(
            async move { s.commit(vec![append(&m)]).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let room = s.room_by_id(&r.id).await.unwrap().unwrap();
    assert_eq!((room.seq, room.msgs), (64, 64), "no lost increments");
}

/// Appends committed together — several rooms, senders, threads, mentions, and another change
/// between two appends of one batch — move every room and subscription as they would one by
/// one: the backends write a group's appends with shared multi-row statements.
pub async fn concurrent_appends_across_rooms(s: S) {
    let (a, b, c) = (user("vera"), user("walt"), user("xena"));
    add_users(&s, &[&a, &b, &c]).await;
    let r1 = setup(&s, "ga", &[&a, &b, &c]).await;
    let r2 = setup(&s, "gb", &[&a, &b]).await;
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let (r, sender) = if i % 2 == 0 { (&r1, &a) } else { (&r2, &b) };
        let mut m = msg(r, sender, "x", 1000 + i);
        if i % 10 == 9 {
            m.tmid = Some("parent".into()); // a hidden thread reply: no sequence, not unread
        }
        let mut batch = vec![Change::AppendMessage {
            message: m,
            // r1's messages mention xena (and the sender, which never counts).
            mentioned_user_ids: if i % 2 == 0 {
                vec![c.id.clone(), a.id.clone()]
            } else {
                vec![]
            },
            mentions_all: i == 4,
        }];
        if i == 6 {
            // Another change between two appends of one batch sees the first one applied.
            batch.push(Change::MarkRead {
                rid: r1.id.clone(),
                user_id: b.id.clone(),
            });
            batch.push(append(&msg(&r1, &a, "after the read", 1000 + i)));
        }
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.commit(batch).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let room1 = s.room_by_id(&r1.id).await.unwrap().unwrap();
    let room2 = s.room_by_id(&r2.id).await.unwrap().unwrap();
    // Even i never end in 9, so r1 has no thread replies; r2's i = 9, 19, 29, 39 are.
    assert_eq!((room1.seq, room1.msgs), (21, 21));
    assert_eq!((room2.seq, room2.msgs), (16, 20));
    // `lm` and `lastMessage` are the newest main-timeline message, whatever the commit order:
    // r2's is i = 37 (39 is a thread reply).
    assert_eq!(room1.lm, Some(Timestamp::from_millis(1038)));
    assert_eq!(room2.lm, Some(Timestamp::from_millis(1037)));
    let last2 = room2.last_message.unwrap();
    assert_eq!(
        last2["ts"],
        serde_json::to_value(room2.lm.unwrap()).unwrap()
    );
    assert!(
        last2.get("tmid").is_none(),
        "a thread reply is never the last message"
    );
    let sa = s.subscription(&r1.id, &a.id).await.unwrap().unwrap();
    assert_eq!(sa.unread, 0, "the sender has read up to their own messages");
    let sc = s.subscription(&r1.id, &c.id).await.unwrap().unwrap();
    assert_eq!(
        (sc.unread, sc.user_mentions, sc.group_mentions),
        (21, 20, 1)
    );
    let sb1 = s.subscription(&r1.id, &b.id).await.unwrap().unwrap();
    assert!(
        sb1.unread < 21,
        "walt read r1 once, somewhere in the middle: {}",
        sb1.unread
    );
    let sb2 = s.subscription(&r2.id, &b.id).await.unwrap().unwrap();
    assert_eq!(sb2.unread, 0);
    let sa2 = s.subscription(&r2.id, &a.id).await.unwrap().unwrap();
    assert_eq!((sa2.unread, sa2.user_mentions), (16, 0));
}

/// Batches committed together (group commit) still succeed or fail each on its own: the
/// duplicates fail and write nothing, every other message lands once.
pub async fn a_failing_batch_among_concurrent_ones_fails_alone(s: S) {
    let a = user("uma");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "grouped", &[&a]).await;
    let taken = msg(&r, &a, "first", 0);
    s.commit(vec![append(&taken)]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 1..=48 {
        // Every fourth batch appends a fresh message and then the taken id again.
        let fresh = msg(&r, &a, "x", i);
        let mut batch = vec![append(&fresh)];
        if i % 4 == 0 {
            batch.push(append(&taken));
        }
        let s = s.clone();
        tasks.push(tokio::spawn(
            async move { (i, fresh.id, s.commit(batch).await) },
        ));
    }
    for t in tasks {
        let (i, fresh, result) = t.await.unwrap();
        let stored = s.message_by_id(&fresh).await.unwrap();
        if i % 4 == 0 {
            assert!(
                matches!(result, Err(StoreError::Conflict(_))),
                "{i}: {result:?}"
            );
            // Written by the same multi-row statement that then failed.
            assert!(stored.is_none(), "{i}: the failed batch's other message");
        } else {
            result.unwrap();
            assert!(stored.is_some(), "{i}");
        }
    }
    let room = s.room_by_id(&r.id).await.unwrap().unwrap();
    assert_eq!(
        (room.seq, room.msgs),
        (37, 37),
        "1 + 36 landed, nothing of the failed"
    );
}

pub async fn room_counters_survive_stale_updates(s: S) {
    let (a, b, c) = (user("ann"), user("bob"), user("cyd"));
    add_users(&s, &[&a, &b, &c]).await;
    let mut stale = setup(&s, "counted", &[&a, &b]).await;
    let stored = s.room_by_id(&stale.id).await.unwrap().unwrap();
    assert_eq!(stored.users_count, 2, "memberships counted by the store");
    // A copy read before a message and a join is written back with a new topic.
    s.commit(vec![
        append(&msg(&stale, &a, "hi", 5)),
        Change::InsertSubscription(sub(&stale, &c)),
    ])
    .await
    .unwrap();
    stale.topic = Some("news".into());
    s.commit(vec![Change::UpdateRoom(stale.clone())])
        .await
        .unwrap();
    let room = s.room_by_id(&stale.id).await.unwrap().unwrap();
    assert_eq!(room.topic.as_deref(), Some("news"));
    assert_eq!((room.msgs, room.users_count), (1, 3));
    assert!(room.last_message.is_some());
    // Concurrent removals each count once.
    let tasks: Vec<_> = [b.id.clone(), c.id.clone()]
        .into_iter()
        .map(|id| {
            let s = s.clone();
            tokio::spawn(async move { s.commit(vec![Change::DeleteUser(id)]).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    s.commit(vec![Change::DeleteSubscription {
        rid: stale.id.clone(),
        user_id: a.id.clone(),
    }])
    .await
    .unwrap();
    let room = s.room_by_id(&stale.id).await.unwrap().unwrap();
    assert_eq!(room.users_count, 0);
}

pub async fn settings_and_permissions(s: S) {
    s.commit(vec![
        Change::SetSetting {
            id: "Site_Name".into(),
            value: serde_json::json!("X"),
        },
        Change::SetSetting {
            id: "Site_Name".into(),
            value: serde_json::json!("Y"),
        },
        Change::SetPermissionRoles {
            id: "create-c".into(),
            roles: vec!["admin".into()],
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        s.settings().await.unwrap(),
        vec![("Site_Name".to_string(), serde_json::json!("Y"))]
    );
    assert_eq!(
        s.permissions().await.unwrap(),
        vec![("create-c".to_string(), vec!["admin".to_string()])]
    );
    let role = Role {
        id: "auditor".into(),
        name: "auditor".into(),
        scope: "Users".into(),
        description: String::new(),
        protected: false,
        mandatory2fa: false,
        updated_at: Timestamp::now(),
    };
    s.commit(vec![Change::UpsertRole(role.clone())])
        .await
        .unwrap();
    assert_eq!(s.roles().await.unwrap(), vec![role]);
    s.commit(vec![Change::DeleteRole("auditor".into())])
        .await
        .unwrap();
    assert!(s.roles().await.unwrap().is_empty());
}

/// A database from an older release (a few permissions, one edited by an admin, a custom role)
/// gains the catalogue's new permissions and built-in roles at start-up; what was stored stays.
pub async fn upgrade_seeds_only_missing_permissions(s: S) {
    let custom = Role {
        id: "auditor".into(),
        name: "auditor".into(),
        scope: "Users".into(),
        description: "Audits".into(),
        protected: false,
        mandatory2fa: false,
        updated_at: Timestamp::now(),
    };
    s.commit(vec![
        Change::SetPermissionRoles {
            id: "create-c".into(),
            roles: vec!["admin".into(), "auditor".into()],
        },
        Change::SetPermissionRoles {
            id: "delete-user".into(),
            roles: vec![],
        },
        Change::UpsertRole(custom.clone()),
    ])
    .await
    .unwrap();
    let core = crate::Core::start(s.clone(), crate::Options::default())
        .await
        .unwrap();
    let stored: std::collections::HashMap<String, Vec<String>> =
        s.permissions().await.unwrap().into_iter().collect();
    let catalogue = apogee_domain::permissions::DEFAULT_PERMISSIONS;
    assert_eq!(
        stored.len(),
        catalogue.len(),
        "every catalogue id is stored"
    );
    assert_eq!(
        stored["create-c"],
        ["admin", "auditor"],
        "edited grant kept"
    );
    assert!(stored["delete-user"].is_empty(), "revoked grant kept");
    assert_eq!(
        stored["kick-user-from-any-c-room"],
        ["admin"],
        "new id seeded"
    );
    assert_eq!(core.authz.roles_for("create-c"), ["admin", "auditor"]);
    let roles = s.roles().await.unwrap();
    assert!(roles.contains(&custom), "custom role kept");
    for (id, _, _) in apogee_domain::permissions::DEFAULT_ROLES {
        assert!(
            roles.iter().any(|r| r.id == *id),
            "built-in role {id} seeded"
        );
    }
}

pub async fn teams_and_memberships(s: S) {
    let (alice, bob) = (user("tAlice"), user("tBob"));
    add_users(&s, &[&alice, &bob]).await;
    let mut main = room("team-main");
    let now = Timestamp::now();
    let team = Team {
        id: apogee_domain::random_id(),
        name: "team-main".into(),
        kind: 1,
        room_id: main.id.clone(),
        created_by: alice.as_ref(),
        created_at: now,
        updated_at: now,
    };
    main.team_id = Some(team.id.clone());
    main.team_main = Some(true);
    let member = |u: &User, roles: Option<Vec<String>>| TeamMember {
        id: apogee_domain::random_id(),
        team_id: team.id.clone(),
        user_id: u.id.clone(),
        roles,
        created_by: alice.as_ref(),
        created_at: now,
        updated_at: now,
    };
    s.commit(vec![
        Change::InsertRoom(main.clone()),
        Change::InsertTeam(team.clone()),
        Change::UpsertTeamMember(member(&alice, Some(vec!["owner".into()]))),
        Change::UpsertTeamMember(member(&bob, None)),
    ])
    .await
    .unwrap();
    assert_eq!(s.team_by_id(&team.id).await.unwrap(), Some(team.clone()));
    assert_eq!(
        s.team_by_name("team-main").await.unwrap().unwrap().id,
        team.id
    );
    assert!(s.team_by_name("TEAM-MAIN").await.unwrap().is_none());
    let mut renamed = team.clone();
    renamed.name = "team-renamed".into();
    s.commit(vec![Change::UpdateTeam(renamed.clone())])
        .await
        .unwrap();
    assert_eq!(s.team_by_name("team-renamed").await.unwrap(), Some(renamed));
    assert!(s.team_by_name("team-main").await.unwrap().is_none());
    let page = Page {
        offset: 0,
        count: 10,
    };
    assert_eq!(s.list_teams(None, page).await.unwrap().1, 1);
    assert_eq!(s.list_teams(Some(&bob.id), page).await.unwrap().1, 1);
    assert_eq!(s.list_teams(Some("nobody"), page).await.unwrap().1, 0);
    // Upserting an existing membership replaces its roles.
    let mut bob_member = s.team_member(&team.id, &bob.id).await.unwrap().unwrap();
    bob_member.roles = Some(vec!["moderator".into()]);
    s.commit(vec![Change::UpsertTeamMember(bob_member.clone())])
        .await
        .unwrap();
    assert_eq!(s.team_members(&team.id).await.unwrap().len(), 2);
    assert_eq!(
        s.team_member(&team.id, &bob.id).await.unwrap(),
        Some(bob_member)
    );
    // Team rooms exclude the main room; the link follows room updates.
    let mut side = room("team-side");
    side.team_id = Some(team.id.clone());
    s.commit(vec![Change::InsertRoom(side.clone())])
        .await
        .unwrap();
    let rooms = s.team_rooms(&team.id).await.unwrap();
    assert_eq!(
        rooms.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&side.id]
    );
    side.team_id = None;
    s.commit(vec![Change::UpdateRoom(side)]).await.unwrap();
    assert!(s.team_rooms(&team.id).await.unwrap().is_empty());
    // Deleting a user drops their memberships; deleting the team drops the rest.
    s.commit(vec![Change::DeleteUser(bob.id.clone())])
        .await
        .unwrap();
    assert!(s.team_member(&team.id, &bob.id).await.unwrap().is_none());
    s.commit(vec![Change::DeleteTeam(team.id.clone())])
        .await
        .unwrap();
    assert!(s.team_by_id(&team.id).await.unwrap().is_none());
    assert!(s.team_members(&team.id).await.unwrap().is_empty());
    assert!(matches!(
        s.commit(vec![Change::DeleteTeamMember {
            team_id: team.id.clone(),
            user_id: alice.id.clone(),
        }])
        .await,
        Err(StoreError::Missing(_))
    ));
    // Deleting a main room takes its team along.
    let main2 = room("team-two");
    let team2 = Team {
        id: apogee_domain::random_id(),
        name: "team-two".into(),
        room_id: main2.id.clone(),
        ..team.clone()
    };
    let mut owner2 = member(&alice, None);
    owner2.team_id = team2.id.clone();
    s.commit(vec![
        Change::InsertRoom(main2.clone()),
        Change::InsertTeam(team2.clone()),
        Change::InsertSubscription(sub(&main2, &alice)),
        Change::UpsertTeamMember(owner2.clone()),
    ])
    .await
    .unwrap();
    // Leaving the main room is leaving the team.
    s.commit(vec![Change::DeleteSubscription {
        rid: main2.id.clone(),
        user_id: alice.id.clone(),
    }])
    .await
    .unwrap();
    assert!(s.team_member(&team2.id, &alice.id).await.unwrap().is_none());
    s.commit(vec![Change::UpsertTeamMember(owner2)])
        .await
        .unwrap();
    s.commit(vec![Change::DeleteRoom(main2.id.clone())])
        .await
        .unwrap();
    assert!(s.team_by_id(&team2.id).await.unwrap().is_none());
    assert!(s.team_members(&team2.id).await.unwrap().is_empty());
}

pub async fn discussion_messages_by_room(s: S) {
    let alice = user("dAlice");
    add_users(&s, &[&alice]).await;
    let parent = setup(&s, "d-parent", &[&alice]).await;
    let plain = msg(&parent, &alice, "hello", 1_000);
    let mut created = Message::system(
        &parent.id,
        "discussion-created",
        "Budget talk".into(),
        alice.as_ref(),
    );
    created.ts = Timestamp::from_millis(2_000);
    created
        .extra
        .insert("drid".into(), serde_json::json!("child-room"));
    s.commit(vec![append(&plain), append(&created)])
        .await
        .unwrap();
    let page = Page {
        offset: 0,
        count: 10,
    };
    let (found, total) = s.discussion_messages(&parent.id, None, page).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(found[0].id, created.id);
    assert_eq!(
        s.discussion_messages(&parent.id, Some("budget"), page)
            .await
            .unwrap()
            .1,
        1
    );
    assert_eq!(
        s.discussion_messages(&parent.id, Some("other"), page)
            .await
            .unwrap()
            .1,
        0
    );
    // Messages in a discussion keep its parent announcement's dcount/dlm current.
    let mut child = room("d-child");
    child.prid = Some(parent.id.clone());
    let mut opened = Message::system(
        &parent.id,
        "discussion-created",
        "Child".into(),
        alice.as_ref(),
    );
    opened.ts = Timestamp::from_millis(3_000);
    opened
        .extra
        .insert("drid".into(), serde_json::json!(child.id.clone()));
    let reply = msg(&child, &alice, "first", 4_000);
    s.commit(vec![Change::InsertRoom(child.clone()), append(&opened)])
        .await
        .unwrap();
    s.commit(vec![append(&reply)]).await.unwrap();
    let opened = s.message_by_id(&opened.id).await.unwrap().unwrap();
    let children = s.discussion_rooms(&parent.id).await.unwrap();
    assert_eq!(
        children.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&child.id]
    );
    assert_eq!(opened.extra.get("dcount"), Some(&serde_json::json!(1)));
    assert_eq!(
        opened.extra.get("dlm"),
        Some(&serde_json::json!(reply.ts.to_iso()))
    );
}

pub async fn invites_and_user_statuses(s: S) {
    let alice = user("iAlice");
    add_users(&s, &[&alice]).await;
    let r = setup(&s, "i-room", &[&alice]).await;
    let now = Timestamp::now();
    let mut invite = Invite {
        id: apogee_domain::random_id(),
        rid: r.id.clone(),
        user_id: alice.id.clone(),
        days: 7,
        max_uses: 5,
        uses: 0,
        created_at: now,
        expires: Some(now.plus_days(7)),
        url: String::new(),
        updated_at: now,
    };
    s.commit(vec![Change::UpsertInvite(invite.clone())])
        .await
        .unwrap();
    invite.uses = 1;
    s.commit(vec![Change::UpsertInvite(invite.clone())])
        .await
        .unwrap();
    assert_eq!(
        s.invite_by_id(&invite.id).await.unwrap(),
        Some(invite.clone())
    );
    assert_eq!(s.invites().await.unwrap(), vec![invite.clone()]);
    // Invites go with their room.
    s.commit(vec![Change::DeleteRoom(r.id.clone())])
        .await
        .unwrap();
    assert!(s.invite_by_id(&invite.id).await.unwrap().is_none());

    let status = |name: &str| CustomUserStatus {
        id: apogee_domain::random_id(),
        name: name.into(),
        status_type: "busy".into(),
        updated_at: now,
    };
    let (a, b) = (status("In a meeting"), status("Lunch"));
    s.commit(vec![
        Change::UpsertCustomUserStatus(b.clone()),
        Change::UpsertCustomUserStatus(a.clone()),
    ])
    .await
    .unwrap();
    let page = Page {
        offset: 0,
        count: 10,
    };
    let (all, total) = s.custom_user_statuses(None, page).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(all, vec![a.clone(), b.clone()]);
    assert_eq!(
        s.custom_user_statuses(Some("MEET"), page).await.unwrap().1,
        1
    );
    assert_eq!(
        s.custom_user_status_by_name("lunch").await.unwrap(),
        Some(b.clone())
    );
    // Names are unique, case-insensitively.
    let clash = status("LUNCH");
    assert!(matches!(
        s.commit(vec![Change::UpsertCustomUserStatus(clash)]).await,
        Err(StoreError::Conflict(_))
    ));
    s.commit(vec![Change::DeleteCustomUserStatus(a.id.clone())])
        .await
        .unwrap();
    assert!(s.custom_user_status_by_id(&a.id).await.unwrap().is_none());
}

pub async fn custom_sounds_catalogue(s: S) {
    let sound = |name: &str| CustomSound {
        id: apogee_domain::random_id(),
        name: name.into(),
        extension: "mp3".into(),
        updated_at: Timestamp::now(),
    };
    let (bell, ding) = (sound("bell"), sound("ding"));
    s.commit(vec![
        Change::UpsertCustomSound(ding.clone()),
        Change::UpsertCustomSound(bell.clone()),
    ])
    .await
    .unwrap();
    let page = Page {
        offset: 0,
        count: 10,
    };
    assert_eq!(
        s.custom_sounds(None, page).await.unwrap(),
        (vec![bell.clone(), ding.clone()], 2)
    );
    assert_eq!(s.custom_sounds(Some("DIN"), page).await.unwrap().1, 1);
    assert_eq!(
        s.custom_sound_by_name("ding").await.unwrap(),
        Some(ding.clone())
    );
    assert!(matches!(
        s.commit(vec![Change::UpsertCustomSound(sound("ding"))])
            .await,
        Err(StoreError::Conflict(_))
    ));
    let mut renamed = ding.clone();
    renamed.name = "dong".into();
    s.commit(vec![Change::UpsertCustomSound(renamed.clone())])
        .await
        .unwrap();
    assert_eq!(s.custom_sound_by_id(&ding.id).await.unwrap(), Some(renamed));
    s.commit(vec![Change::DeleteCustomSound(bell.id.clone())])
        .await
        .unwrap();
    assert!(s.custom_sound_by_id(&bell.id).await.unwrap().is_none());
}

pub async fn uploads_by_room(s: S) {
    let a = user("uma");
    add_users(&s, &[&a]).await;
    let r = setup(&s, "filing", &[&a]).await;
    let other = setup(&s, "elsewhere", &[&a]).await;
    let upload = |rid: &str, name: &str, ms: i64| Upload {
        id: apogee_domain::random_id(),
        rid: rid.into(),
        user_id: a.id.clone(),
        username: a.username.clone(),
        name: name.into(),
        content_type: "image/png".into(),
        size: 42,
        store_key: format!("uploads/{ms}"),
        complete: false,
        description: None,
        content: None,
        created_at: Timestamp::from_millis(ms),
        updated_at: Timestamp::from_millis(ms),
    };
    let (old, new, away) = (
        upload(&r.id, "Old_Photo.png", 1_000),
        upload(&r.id, "new 100%.png", 2_000),
        upload(&other.id, "away.png", 3_000),
    );
    s.commit(vec![
        Change::InsertUpload(old.clone()),
        Change::InsertUpload(new.clone()),
        Change::InsertUpload(away.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(s.upload_by_id(&old.id).await.unwrap(), Some(old.clone()));
    let page = Page {
        offset: 0,
        count: 10,
    };
    assert_eq!(
        s.uploads_of_room(&r.id, None, page).await.unwrap(),
        (vec![new.clone(), old.clone()], 2),
        "newest first, only this room"
    );
    assert_eq!(
        s.uploads_of_room(&r.id, Some("photo"), page).await.unwrap(),
        (vec![old.clone()], 1)
    );
    assert_eq!(
        s.uploads_of_room(&r.id, Some("100%"), page)
            .await
            .unwrap()
            .1,
        1,
        "LIKE wildcards are literal"
    );
    let one = Page {
        offset: 1,
        count: 1,
    };
    assert_eq!(
        s.uploads_of_room(&r.id, None, one).await.unwrap(),
        (vec![old.clone()], 2)
    );
    let mut confirmed = old.clone();
    confirmed.complete = true;
    confirmed.description = Some("a photo".into());
    s.commit(vec![Change::UpdateUpload(confirmed.clone())])
        .await
        .unwrap();
    assert_eq!(s.upload_by_id(&old.id).await.unwrap(), Some(confirmed));
    assert!(matches!(
        s.commit(vec![Change::InsertUpload(new.clone())]).await,
        Err(StoreError::Conflict(_))
    ));
    s.commit(vec![Change::DeleteUpload(new.id.clone())])
        .await
        .unwrap();
    assert!(s.upload_by_id(&new.id).await.unwrap().is_none());
    assert!(
        s.commit(vec![Change::DeleteUpload(new.id.clone())])
            .await
            .is_err(),
        "deleting a missing upload fails the batch"
    );
}

pub async fn presence_per_node(s: S) {
    let set = |node: &str, user: &str, status: Option<&str>| Change::SetPresence {
        node: node.into(),
        user_id: user.into(),
        status: status.map(str::to_string),
    };
    let seen = |node: &str, at: i64| Change::NodeSeen {
        node: node.into(),
        at: Timestamp::from_millis(at),
    };
    s.commit(vec![
        seen("a", 1000),
        seen("b", 5000),
        set("a", "u", Some("away")),
    ])
    .await
    .unwrap();
    s.commit(vec![
        set("b", "u", Some("online")),
        set("a", "u", Some("online")),
    ])
    .await
    .unwrap();
    let pair = |n: &str, st: &str| (n.to_string(), st.to_string());
    assert_eq!(
        s.presence_of("u").await.unwrap(),
        [pair("a", "online"), pair("b", "online")],
        "one row per node, replaced"
    );
    s.commit(vec![set("b", "u", None), set("b", "v", Some("away"))])
        .await
        .unwrap();
    assert_eq!(s.presence_of("u").await.unwrap(), [pair("a", "online")]);
    assert_eq!(
        s.stale_nodes(Timestamp::from_millis(2000)).await.unwrap(),
        ["a"]
    );
    assert_eq!(s.users_on_node("a").await.unwrap(), ["u"]);
    s.commit(vec![Change::DropNode("a".into())]).await.unwrap();
    assert!(s.presence_of("u").await.unwrap().is_empty());
    assert!(
        s.stale_nodes(Timestamp::from_millis(2000))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.presence_of("v").await.unwrap(), [pair("b", "away")]);
}

pub async fn subscriptions_without_room_key(s: S) {
    let (a, b, c) = (user("kay"), user("lee"), user("max"));
    add_users(&s, &[&a, &b, &c]).await;
    let r = setup(&s, "sealed", &[&a, &b, &c]).await;
    let mut keyed = s.subscription(&r.id, &a.id).await.unwrap().unwrap();
    keyed
        .extra
        .insert("E2EKey".into(), serde_json::json!("kid0AAAA"));
    // A value that merely mentions the member name must not count as a key.
    let mut decoy = s.subscription(&r.id, &b.id).await.unwrap().unwrap();
    decoy
        .extra
        .insert("note".into(), serde_json::json!("\"E2EKey\":x"));
    // After a rotation the old key sits in `oldRoomKeys[].E2EKey`: still no current key.
    let mut rotated = s.subscription(&r.id, &c.id).await.unwrap().unwrap();
    rotated.extra.insert(
        "oldRoomKeys".into(),
        serde_json::json!([{"e2eKeyId": "kid0", "ts": Timestamp::from_millis(5), "E2EKey": "kid0AAAA"}]),
    );
    s.commit(vec![
        Change::UpdateSubscription(keyed),
        Change::UpdateSubscription(decoy),
        Change::UpdateSubscription(rotated),
    ])
    .await
    .unwrap();
    let without = s.subscriptions_without_e2e_key(&r.id, 10).await.unwrap();
    let names: Vec<&str> = without.iter().map(|x| x.u.username.as_str()).collect();
    assert_eq!(names, ["lee", "max"]);
    let limited = s.subscriptions_without_e2e_key(&r.id, 1).await.unwrap();
    assert_eq!(limited.len(), 1);
}

/// Second-factor secrets: kept apart from the user document, saved only over the revision they
/// were read at (so a code cannot be accepted twice by racing writers), removed with the user.
pub async fn two_factor_secrets_compare_and_set(s: S) {
    let u = user("tfa");
    add_users(&s, &[&u]).await;
    assert!(s.two_factor(&u.id).await.unwrap().is_none());
    let first = TwoFactorSecrets {
        user_id: u.id.clone(),
        revision: 0,
        totp_secret: Some("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into()),
        last_totp_step: Some(41),
        backup_codes: vec!["h1".into(), "h2".into()],
        email_code: Some(EmailCode {
            hash: "x".into(),
            salt: "y".into(),
            expires_at: Timestamp::from_millis(1_000),
            failed_attempts: 2,
        }),
        ..Default::default()
    };
    s.commit(vec![Change::SaveTwoFactor(first.clone())])
        .await
        .unwrap();
    let stored = s.two_factor(&u.id).await.unwrap().unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(
        TwoFactorSecrets {
            revision: 0,
            ..stored.clone()
        },
        first
    );
    // Not on the user document.
    let doc = serde_json::to_string(&s.user_by_id(&u.id).await.unwrap().unwrap()).unwrap();
    assert!(!doc.contains("JBSWY3DP"), "{doc}");
    // A second insert, or a save over a stale revision, conflicts and changes nothing.
    let stale = s.commit(vec![Change::SaveTwoFactor(first.clone())]).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let next = TwoFactorSecrets {
        last_totp_step: Some(42),
        ..stored.clone()
    };
    s.commit(vec![Change::SaveTwoFactor(next.clone())])
        .await
        .unwrap();
    let raced = TwoFactorSecrets {
        last_totp_step: Some(43),
        ..stored
    };
    let lost = s.commit(vec![Change::SaveTwoFactor(raced)]).await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    let now = s.two_factor(&u.id).await.unwrap().unwrap();
    assert_eq!((now.revision, now.last_totp_step), (2, Some(42)));
    // Removed on reset and with the user.
    s.commit(vec![Change::DeleteTwoFactor {
        user_id: u.id.clone(),
    }])
    .await
    .unwrap();
    assert!(s.two_factor(&u.id).await.unwrap().is_none());
    s.commit(vec![Change::SaveTwoFactor(first)]).await.unwrap();
    s.commit(vec![Change::DeleteUser(u.id.clone())])
        .await
        .unwrap();
    assert!(s.two_factor(&u.id).await.unwrap().is_none());
}

pub async fn outbox_leases_and_retries(s: S) {
    let at = Timestamp::from_millis;
    let item = |id: &str, created: i64| OutboxItem {
        id: id.into(),
        kind: "mail".into(),
        queue: None,
        payload: serde_json::json!({"to": id}),
        created_at: at(created),
        attempts: 0,
        last_error: None,
    };
    s.commit(vec![
        Change::Enqueue(item("x", 1000)),
        Change::Enqueue(item("y", 2000)),
    ])
    .await
    .unwrap();
    assert!(s.due_outbox(at(999), 10).await.unwrap().is_empty());
    let due = s.due_outbox(at(3000), 10).await.unwrap();
    assert_eq!(due, [item("x", 1000), item("y", 2000)]);

    // Node a leases both; node b, a moment later, wins nothing.
    let lease = |node: &str, now: i64, until: i64| Change::LeaseOutbox {
        ids: vec!["x".into(), "y".into()],
        node: node.into(),
        now: at(now),
        until: at(until),
    };
    s.commit(vec![lease("a", 3000, 63000)]).await.unwrap();
    s.commit(vec![lease("b", 3001, 63001)]).await.unwrap();
    assert_eq!(s.leased_outbox("a", at(63000)).await.unwrap().len(), 2);
    assert!(s.leased_outbox("b", at(63001)).await.unwrap().is_empty());
    assert!(s.due_outbox(at(62999), 10).await.unwrap().is_empty());

    // x is delivered; y fails once (retried later), then for good.
    s.commit(vec![
        Change::OutboxDelivered("x".into()),
        Change::OutboxFailed {
            id: "y".into(),
            error: "refused".into(),
            retry_at: Some(at(70000)),
        },
    ])
    .await
    .unwrap();
    assert!(s.due_outbox(at(69999), 10).await.unwrap().is_empty());
    let retried = s.due_outbox(at(70000), 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (retried[0].attempts, retried[0].last_error.as_deref()),
        (1, Some("refused"))
    );
    s.commit(vec![Change::OutboxFailed {
        id: "y".into(),
        error: "refused for good".into(),
        retry_at: None,
    }])
    .await
    .unwrap();
    assert!(s.due_outbox(at(i64::MAX / 2), 10).await.unwrap().is_empty());
    let failed = s.failed_outbox(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 2);
}

pub async fn audit_chain_under_concurrency(s: S) {
    use crate::audit::{AuditEntry, GENESIS, chain_hash};
    let entry = |i: usize| AuditEntry {
        id: format!("e{i}"),
        ts: Timestamp::from_millis(1000 + i as i64),
        event: "test".into(),
        actor: None,
        ip: None,
        details: serde_json::json!({"i": i}),
    };
    assert_eq!(s.audit_head().await.unwrap(), (0, GENESIS.to_string()));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.commit(vec![Change::Audit(entry(i))]).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // A batch that fails takes its audit entry with it.
    let failing = vec![
        Change::Audit(entry(99)),
        Change::DeleteUpload("no-such-upload".into()),
    ];
    assert!(s.commit(failing).await.is_err());

    let all = s
        .audit_records(&AuditQuery {
            ascending: true,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 16);
    let mut prev = GENESIS.to_string();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1);
        assert_eq!(r.prev_hash, prev);
        assert_eq!(r.hash, chain_hash(&prev, r.seq, &r.doc));
        prev = r.hash.clone();
    }
    assert_eq!(s.audit_head().await.unwrap(), (16, prev));
    let newest = s
        .audit_records(&AuditQuery {
            before_seq: Some(16),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [15, 14]);

    assert_eq!(s.audit_exported("siem").await.unwrap(), 0);
    s.commit(vec![Change::AuditExported {
        sink: "siem".into(),
        seq: 9,
    }])
    .await
    .unwrap();
    assert_eq!(s.audit_exported("siem").await.unwrap(), 9);
}

/// The first federation signing key stays current (a second insert, as by a racing node, changes
/// nothing); remote server keys are kept per server and key id, a refetch replacing the row.
pub async fn federation_keys(s: S) {
    use crate::store::{FederationServerKey, FederationSigningKey};
    assert!(s.federation_signing_key().await.unwrap().is_none());
    let first = FederationSigningKey {
        key_id: "ed25519:a1".into(),
        pkcs8: "Zmlyc3Q=".into(),
        created_at: Timestamp::from_millis(1_000),
    };
    let second = FederationSigningKey {
        key_id: "ed25519:b2".into(),
        pkcs8: "c2Vjb25k".into(),
        created_at: Timestamp::from_millis(2_000),
    };
    let (a, b) = tokio::join!(
        s.commit(vec![Change::InsertFederationSigningKey(first.clone())]),
        s.commit(vec![Change::InsertFederationSigningKey(second.clone())]),
    );
    a.unwrap();
    b.unwrap();
    let current = s.federation_signing_key().await.unwrap().unwrap();
    assert!(current == first || current == second, "{current:?}");
    s.commit(vec![Change::InsertFederationSigningKey(
        FederationSigningKey {
            key_id: "ed25519:c3".into(),
            ..first.clone()
        },
    )])
    .await
    .unwrap();
    assert_eq!(s.federation_signing_key().await.unwrap().unwrap(), current);
    assert!(
        !format!("{current:?}").contains(&current.pkcs8),
        "Debug hides the key"
    );

    let key = |server: &str, id: &str, public: &str, until: i64| FederationServerKey {
        server_name: server.into(),
        key_id: id.into(),
        public_key: public.into(),
        valid_until: Timestamp::from_millis(until),
        fetched_at: Timestamp::from_millis(500),
    };
    s.commit(vec![Change::SaveFederationServerKeys(vec![
        key("one.test", "ed25519:k1", "AAAA", 10_000),
        key("one.test", "ed25519:old", "BBBB", 5_000),
        key("two.test:8448", "ed25519:k1", "CCCC", 20_000),
    ])])
    .await
    .unwrap();
    s.commit(vec![Change::SaveFederationServerKeys(vec![key(
        "one.test",
        "ed25519:k1",
        "DDDD",
        30_000,
    )])])
    .await
    .unwrap();
    let one = s.federation_server_keys("one.test").await.unwrap();
    assert_eq!(
        one,
        vec![
            key("one.test", "ed25519:k1", "DDDD", 30_000),
            key("one.test", "ed25519:old", "BBBB", 5_000),
        ]
    );
    assert_eq!(
        s.federation_server_keys("two.test:8448")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.federation_server_keys("three.test")
            .await
            .unwrap()
            .is_empty()
    );
}
fn integration(kind: &str, name: &str, by: &User, channels: &[&str]) -> Integration {
    let now = Timestamp::now();
    Integration {
        id: apogee_domain::random_id(),
        kind: kind.into(),
        name: name.into(),
        enabled: true,
        username: by.username.clone(),
        user_id: by.id.clone(),
        channel: channels.iter().map(|c| c.to_string()).collect(),
        token: apogee_domain::random_id(),
        script_enabled: false,
        created_at: now,
        created_by: Some(by.as_ref()),
        updated_at: now,
        extra: serde_json::Map::new(),
    }
}

pub async fn integrations_by_type_owner_and_channel(s: S) {
    let (ann, bob) = (user("ann"), user("bob"));
    let mut out = integration("webhook-outgoing", "Out_1", &ann, &["all_public_channels"]);
    out.extra
        .insert("urls".into(), serde_json::json!(["https://a.example/h%_"]));
    let a = integration("webhook-incoming", "A", &ann, &["#general", "#dev_ops"]);
    let b = integration("webhook-incoming", "B", &bob, &["#devXops"]);
    s.commit(vec![
        Change::UpsertIntegration(out.clone()),
        Change::UpsertIntegration(a.clone()),
        Change::UpsertIntegration(b.clone()),
    ])
    .await
    .unwrap();
    let page = Page {
        offset: 0,
        count: 10,
    };
    let q = |kinds: &[&str], own: &[&str], actor: &User, channels: &[&str]| IntegrationQuery {
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        own_only_kinds: own.iter().map(|k| k.to_string()).collect(),
        actor_id: actor.id.clone(),
        name_contains: None,
        channels_any: channels.iter().map(|c| c.to_string()).collect(),
    };
    let both = ["webhook-incoming", "webhook-outgoing"];
    assert_eq!(
        s.integrations(&q(&both, &[], &ann, &[]), page)
            .await
            .unwrap()
            .1,
        3
    );
    // Only one's own of a type.
    let (mine, n) = s
        .integrations(&q(&both, &["webhook-incoming"], &bob, &[]), page)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(mine.iter().all(|i| i.id != a.id));
    // Channel membership is exact: `_` and `%` are not wildcards.
    let (dev, _) = s
        .integrations(&q(&both, &[], &ann, &["#dev_ops"]), page)
        .await
        .unwrap();
    assert_eq!(dev.iter().map(|i| &i.id).collect::<Vec<_>>(), vec![&a.id]);
    let (public, _) = s
        .integrations(
            &q(&both, &[], &ann, &["#nothing", "all_public_channels"]),
            page,
        )
        .await
        .unwrap();
    assert_eq!(public[0].id, out.id);
    let mut named = q(&both, &[], &ann, &[]);
    named.name_contains = Some("out_".into());
    assert_eq!(s.integrations(&named, page).await.unwrap().1, 1);
    assert_eq!(
        s.outgoing_integration_by_url("https://a.example/h%_")
            .await
            .unwrap()
            .map(|i| i.id),
        Some(out.id.clone())
    );
    assert!(
        s.outgoing_integration_by_url("https://a.example/hxx")
            .await
            .unwrap()
            .is_none()
    );
    // History belongs to its integration and goes with it.
    s.commit(vec![Change::InsertIntegrationHistory {
        id: "h1".into(),
        integration_id: out.id.clone(),
        doc: serde_json::json!({"_id": "h1", "step": "finished"}),
    }])
    .await
    .unwrap();
    assert_eq!(s.integration_history(&out.id, page).await.unwrap().1, 1);
    s.commit(vec![Change::DeleteIntegration(out.id.clone())])
        .await
        .unwrap();
    assert!(s.integration_by_id(&out.id).await.unwrap().is_none());
    assert_eq!(s.integration_history(&out.id, page).await.unwrap().1, 0);
    let token = s.integration_by_id(&a.id).await.unwrap().unwrap().token;
    assert_eq!(token, a.token);
}

fn message_report(m: &Message, by: &User, ts: i64, description: &str) -> ModerationReport {
    let mut extra = serde_json::Map::new();
    extra.insert("message".into(), serde_json::to_value(m).unwrap());
    extra.insert("room".into(), serde_json::json!({"_id": m.rid}));
    ModerationReport {
        id: apogee_domain::random_id(),
        description: description.into(),
        reported_by: serde_json::json!({"_id": by.id, "username": by.username}),
        ts: Timestamp::from_millis(ts),
        hidden: false,
        updated_at: Timestamp::from_millis(ts),
        extra,
    }
}

pub async fn moderation_reports_and_summaries(s: S) {
    let (ann, bob, cat) = (user("ann"), user("bob"), user("cat"));
    let (r1, r2) = (room("one"), room("two"));
    let (m1, m2, m3) = (
        msg(&r1, &bob, "spam one", 1_000),
        msg(&r2, &bob, "spam two", 2_000),
        msg(&r1, &cat, "hello", 3_000),
    );
    let reports = [
        message_report(&m1, &ann, 10_000, "rude"),
        message_report(&m1, &cat, 11_000, "rude too"),
        message_report(&m2, &ann, 12_000, "spam"),
        message_report(&m3, &ann, 9_000, "meh"),
    ];
    let mut user_report = message_report(&m3, &ann, 13_000, "troll");
    user_report.extra.clear();
    user_report.extra.insert(
        "reportedUser".into(),
        serde_json::json!({"_id": cat.id, "username": "cat"}),
    );
    let mut changes: Vec<Change> = reports
        .iter()
        .cloned()
        .map(Change::UpsertModerationReport)
        .collect();
    changes.push(Change::UpsertModerationReport(user_report.clone()));
    s.commit(changes).await.unwrap();
    let page = Page {
        offset: 0,
        count: 10,
    };
    let of_message = |id: &str| ReportQuery {
        kind: ReportKind::Message,
        message_id: Some(id.into()),
        target_user_id: None,
        text: None,
    };
    let (list, n) = s
        .moderation_reports(&of_message(&m1.id), page)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(list[0].id, reports[1].id, "newest first");
    // Per author: bob (3 reports over two rooms, newest 12 000) before cat.
    let (sums, total) = s
        .moderation_report_summaries(ReportKind::Message, None, page)
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(sums[0].target_user_id, bob.id);
    assert_eq!(sums[0].count, 3);
    assert_eq!(sums[0].latest.id, reports[2].id);
    let mut rooms = vec![r1.id.clone(), r2.id.clone()];
    rooms.sort();
    assert_eq!(sums[0].rids, rooms);
    let (by_text, _) = s
        .moderation_report_summaries(ReportKind::Message, Some("HELLO"), page)
        .await
        .unwrap();
    assert_eq!(by_text.len(), 1);
    assert_eq!(by_text[0].target_user_id, cat.id);
    let (users, _) = s
        .moderation_report_summaries(ReportKind::User, None, page)
        .await
        .unwrap();
    assert_eq!(users[0].target_user_id, cat.id);
    // Hidden reports drop out of every list but stay readable.
    let mut hidden = reports[0].clone();
    hidden.hidden = true;
    s.commit(vec![Change::UpsertModerationReport(hidden.clone())])
        .await
        .unwrap();
    assert_eq!(
        s.moderation_reports(&of_message(&m1.id), page)
            .await
            .unwrap()
            .1,
        1
    );
    assert_eq!(
        s.moderation_report_by_id(&hidden.id).await.unwrap(),
        Some(hidden)
    );
}

pub async fn custom_emoji_names_and_deltas(s: S) {
    let emoji = |name: &str, aliases: &[&str], at: i64| CustomEmoji {
        id: apogee_domain::random_id(),
        name: name.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        extension: "png".into(),
        etag: "e".into(),
        updated_at: Timestamp::from_millis(at),
    };
    let party = emoji("party_time", &["tada", "fiesta"], 1_000);
    let cat = emoji("cat", &[], 2_000);
    s.commit(vec![
        Change::UpsertCustomEmoji(party.clone()),
        Change::UpsertCustomEmoji(cat.clone()),
    ])
    .await
    .unwrap();
    let found = |n: &str| {
        let s = s.clone();
        let n = n.to_string();
        async move {
            s.custom_emoji_by_name_or_alias(&n)
                .await
                .unwrap()
                .map(|e| e.id)
        }
    };
    assert_eq!(found("fiesta").await, Some(party.id.clone()));
    assert_eq!(found("party_time").await, Some(party.id.clone()));
    assert_eq!(found("party").await, None, "whole names only");
    assert_eq!(found("partyXtime").await, None, "`_` is not a wildcard");
    let page = Page {
        offset: 0,
        count: 10,
    };
    assert_eq!(s.custom_emoji(Some("PARTY"), page).await.unwrap().1, 1);
    let (all, _) = s.custom_emoji_changed_since(None).await.unwrap();
    assert_eq!(all.len(), 2);
    let since = Timestamp::from_millis(1_500);
    s.commit(vec![Change::DeleteCustomEmoji(party.clone())])
        .await
        .unwrap();
    let (updated, removed) = s.custom_emoji_changed_since(Some(since)).await.unwrap();
    assert_eq!(
        updated.iter().map(|e| &e.id).collect::<Vec<_>>(),
        vec![&cat.id]
    );
    assert_eq!(
        removed.iter().map(|t| &t.id).collect::<Vec<_>>(),
        vec![&party.id]
    );
    assert_eq!(found("tada").await, None);
}

/// Federated rooms map both ways and uniquely; stored PDUs keep the first copy of an event id;
/// state entries are replaced per (type, state key); extremities move; a failing batch leaves
/// no mapping, event or state behind; deleting the room drops only the mapping.
pub async fn federation_rooms_and_events(s: S) {
    use serde_json::json;
    let r = room("fed-room");
    s.commit(vec![Change::InsertRoom(r.clone())]).await.unwrap();
    let mapping = FederatedRoom {
        rid: r.id.clone(),
        matrix_room_id: "!abc:synapse.test".into(),
        room_version: "11".into(),
        origin: "synapse.test".into(),
    };
    let event = |id: &str, kind: FederationEventKind, depth: i64, body: &str| FederationEvent {
        event_id: id.into(),
        matrix_room_id: "!abc:synapse.test".into(),
        message_id: (kind == FederationEventKind::Timeline).then(|| format!("m-{id}")),
        kind,
        depth,
        pdu: json!({"type": "m.room.message", "content": {"body": body}}),
    };
    let entry = |t: &str, k: &str, id: &str| FederationStateEntry {
        event_type: t.into(),
        state_key: k.into(),
        event_id: id.into(),
    };
    s.commit(vec![
        Change::InsertFederatedRoom(mapping.clone()),
        Change::SaveFederationEvents(vec![
            event("$create", FederationEventKind::Outlier, 1, "c"),
            event("$msg", FederationEventKind::Timeline, 5, "hello"),
        ]),
        Change::SetFederationRoomState {
            matrix_room_id: "!abc:synapse.test".into(),
            entries: vec![
                entry("m.room.create", "", "$create"),
                entry("m.room.member", "@a:synapse.test", "$join1"),
            ],
        },
        Change::SetFederationExtremities {
            matrix_room_id: "!abc:synapse.test".into(),
            remove: vec![],
            add: vec!["$msg".into(), "$other".into()],
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        s.federated_room(&r.id).await.unwrap(),
        Some(mapping.clone())
    );
    assert_eq!(
        s.federated_room_by_matrix_id("!abc:synapse.test")
            .await
            .unwrap(),
        Some(mapping.clone())
    );
    assert_eq!(s.federated_room("nope").await.unwrap(), None);
    // A second Rocket.Chat room cannot be the same Matrix room.
    let r2 = room("fed-room-2");
    s.commit(vec![Change::InsertRoom(r2.clone())])
        .await
        .unwrap();
    assert!(
        s.commit(vec![
            Change::InsertFederatedRoom(FederatedRoom {
                rid: r2.id.clone(),
                ..mapping.clone()
            }),
            Change::SaveFederationEvents(vec![event(
                "$lost",
                FederationEventKind::Timeline,
                9,
                "x"
            )]),
            Change::SetFederationRoomState {
                matrix_room_id: "!abc:synapse.test".into(),
                entries: vec![entry("m.room.name", "", "$lost")],
            },
        ])
        .await
        .is_err()
    );
    assert_eq!(s.federated_room(&r2.id).await.unwrap(), None);
    assert_eq!(s.federation_event("$lost").await.unwrap(), None);

    // A room re-pointed to another Matrix room in one batch (a DM following its members'
    // newest Matrix room): the old Matrix id maps to nothing, its events and state stay.
    let newer = FederatedRoom {
        matrix_room_id: "!newer:synapse.test".into(),
        ..mapping.clone()
    };
    s.commit(vec![
        Change::DeleteFederatedRoom { rid: r.id.clone() },
        Change::InsertFederatedRoom(newer.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(s.federated_room(&r.id).await.unwrap(), Some(newer.clone()));
    assert_eq!(
        s.federated_room_by_matrix_id("!abc:synapse.test")
            .await
            .unwrap(),
        None
    );
    assert!(s.federation_event("$msg").await.unwrap().is_some());
    s.commit(vec![
        Change::DeleteFederatedRoom { rid: r.id.clone() },
        Change::InsertFederatedRoom(mapping.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.federated_room(&r.id).await.unwrap(),
        Some(mapping.clone())
    );

    // Known events keep their first copy.
    s.commit(vec![Change::SaveFederationEvents(vec![event(
        "$msg",
        FederationEventKind::SoftFailed,
        7,
        "changed",
    )])])
    .await
    .unwrap();
    assert_eq!(
        s.federation_event("$msg").await.unwrap(),
        Some(event("$msg", FederationEventKind::Timeline, 5, "hello"))
    );
    assert_eq!(
        s.federation_event("$create").await.unwrap().unwrap().kind,
        FederationEventKind::Outlier
    );

    s.commit(vec![
        Change::SetFederationRoomState {
            matrix_room_id: "!abc:synapse.test".into(),
            entries: vec![entry("m.room.member", "@a:synapse.test", "$join2")],
        },
        Change::SetFederationExtremities {
            matrix_room_id: "!abc:synapse.test".into(),
            remove: vec!["$msg".into(), "$other".into()],
            add: vec!["$next".into()],
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        s.federation_room_state("!abc:synapse.test").await.unwrap(),
        vec![
            entry("m.room.create", "", "$create"),
            entry("m.room.member", "@a:synapse.test", "$join2"),
        ]
    );
    assert!(
        s.federation_room_state("!lost:synapse.test")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.federation_extremities("!abc:synapse.test").await.unwrap(),
        vec!["$next".to_string()]
    );

    s.commit(vec![Change::DeleteRoom(r.id.clone())])
        .await
        .unwrap();
    assert_eq!(s.federated_room(&r.id).await.unwrap(), None);
    assert!(s.federation_event("$msg").await.unwrap().is_some());
}

/// Items of one outbox queue are due one at a time, oldest first: a newer item waits while an
/// older one is due later (a retry) or leased; other queues and unqueued items are not held up.
pub async fn outbox_queues_deliver_in_order(s: S) {
    let at = Timestamp::from_millis;
    let item = |id: &str, queue: Option<&str>, created: i64| OutboxItem {
        id: id.into(),
        kind: "federation.pdu".into(),
        queue: queue.map(str::to_string),
        payload: serde_json::json!({"n": id}),
        created_at: at(created),
        attempts: 0,
        last_error: None,
    };
    s.commit(vec![
        Change::Enqueue(item("a1", Some("federation:a"), 100)),
        Change::Enqueue(item("a2", Some("federation:a"), 200)),
        Change::Enqueue(item("b1", Some("federation:b"), 150)),
        Change::Enqueue(item("free", None, 300)),
    ])
    .await
    .unwrap();
    let due = |now: i64| {
        let s = s.clone();
        async move {
            let mut ids: Vec<String> = s
                .due_outbox(at(now), 10)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(due(1_000).await, vec!["a1", "b1", "free"]);
    // a1 in flight: a2 still waits.
    s.commit(vec![Change::LeaseOutbox {
        ids: vec!["a1".into()],
        node: "n".into(),
        now: at(1_000),
        until: at(61_000),
    }])
    .await
    .unwrap();
    assert_eq!(due(2_000).await, vec!["b1", "free"]);
    // a1 failed, retried later: a2 waits for it rather than overtaking.
    s.commit(vec![Change::OutboxFailed {
        id: "a1".into(),
        error: "down".into(),
        retry_at: Some(at(5_000)),
    }])
    .await
    .unwrap();
    assert_eq!(due(3_000).await, vec!["b1", "free"]);
    assert_eq!(due(5_000).await, vec!["a1", "b1", "free"]);
    s.commit(vec![Change::OutboxDelivered("a1".into())])
        .await
        .unwrap();
    assert_eq!(due(5_000).await, vec!["a2", "b1", "free"]);
}

/// Key recovery's rules that must hold across nodes: a policy version is written once, a user
/// has one pending request, an officer approves a request once, and a request leaves `pending`
/// once (approved material is released once). A refused change writes nothing of its batch.
pub async fn e2e_recovery_rules(s: S) {
    use crate::e2e_recovery::{Consent, SealedShare};
    let (u, o1, o2) = (user("rec-user"), user("rec-o1"), user("rec-o2"));
    add_users(&s, &[&u, &o1, &o2]).await;
    assert!(s.recovery_policy().await.unwrap().is_none());
    let policy = |version| RecoveryPolicy {
        version,
        threshold: 2,
        officers: vec![o1.id.clone(), o2.id.clone()],
        consent_text: format!("consent {version}"),
        set_by: "admin".into(),
        ts: Timestamp::from_millis(version),
    };
    s.commit(vec![Change::InsertRecoveryPolicy(policy(1))])
        .await
        .unwrap();
    s.commit(vec![Change::InsertRecoveryPolicy(policy(2))])
        .await
        .unwrap();
    assert!(matches!(
        s.commit(vec![Change::InsertRecoveryPolicy(policy(2))])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.recovery_policy().await.unwrap().unwrap(), policy(2));

    let key = |id: &str, k: &str| RecoveryOfficerKey {
        user_id: id.into(),
        public_key: k.into(),
        ts: Timestamp::from_millis(5),
    };
    s.commit(vec![
        Change::SaveRecoveryOfficerKey(key(&o1.id, "old")),
        Change::SaveRecoveryOfficerKey(key(&o1.id, "k1")),
        Change::SaveRecoveryOfficerKey(key(&o2.id, "k2")),
    ])
    .await
    .unwrap();
    let keys = s.recovery_officer_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&key(&o1.id, "k1")));

    let enrolment = RecoveryEnrolment {
        user_id: u.id.clone(),
        policy_version: 2,
        threshold: 2,
        backup: apogee_e2ee::RecoveryBackup {
            iv: "aXY=".into(),
            ciphertext: "Y3Q=".into(),
        },
        shares: vec![SealedShare {
            officer_id: o1.id.clone(),
            key_sha256: "f".into(),
            sealed: "c2hhcmU=".into(),
        }],
        consent: Consent {
            version: 2,
            text_sha256: "d".into(),
            ts: Timestamp::from_millis(6),
        },
        ts: Timestamp::from_millis(6),
    };
    s.commit(vec![Change::SaveRecoveryEnrolment(enrolment.clone())])
        .await
        .unwrap();
    assert_eq!(
        s.recovery_enrolment(&u.id).await.unwrap(),
        Some(enrolment.clone())
    );

    let request = |id: &str, at| RecoveryRequest {
        id: id.into(),
        user_id: u.id.clone(),
        restore_public_key: "rk".into(),
        state: "pending".into(),
        policy_version: 2,
        threshold: 2,
        created_at: Timestamp::from_millis(at),
        expires_at: Timestamp::from_millis(at + 1000),
        closed_at: None,
        closed_by: None,
    };
    s.commit(vec![Change::InsertRecoveryRequest(request("r1", 10))])
        .await
        .unwrap();
    // A second pending request for the user is refused, and its batch writes nothing.
    assert!(matches!(
        s.commit(vec![
            Change::DeleteRecoveryEnrolment {
                user_id: u.id.clone()
            },
            Change::InsertRecoveryRequest(request("r2", 11)),
        ])
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.recovery_enrolment(&u.id).await.unwrap().is_some());
    assert_eq!(
        s.pending_recovery_requests(Some(&u.id)).await.unwrap(),
        vec![request("r1", 10)]
    );
    assert!(
        s.pending_recovery_requests(Some(&o1.id))
            .await
            .unwrap()
            .is_empty()
    );

    let approval = |officer: &User, share: &str| RecoveryApproval {
        request_id: "r1".into(),
        officer_id: officer.id.clone(),
        resealed_share: share.into(),
        ts: Timestamp::from_millis(20),
    };
    s.commit(vec![Change::InsertRecoveryApproval(approval(&o1, "a"))])
        .await
        .unwrap();
    // A replayed approval (even with another share) is refused.
    assert!(matches!(
        s.commit(vec![Change::InsertRecoveryApproval(approval(&o1, "b"))])
            .await,
        Err(StoreError::Conflict(_))
    ));
    s.commit(vec![Change::InsertRecoveryApproval(approval(&o2, "c"))])
        .await
        .unwrap();
    let approvals = s.recovery_approvals("r1").await.unwrap();
    assert_eq!(approvals.len(), 2);
    assert!(approvals.contains(&approval(&o1, "a")));

    // Released once: the second close of the same pending request loses.
    let used = RecoveryRequest {
        state: "used".into(),
        closed_at: Some(Timestamp::from_millis(30)),
        closed_by: Some(u.id.clone()),
        ..request("r1", 10)
    };
    let (a, b) = tokio::join!(
        s.commit(vec![Change::CloseRecoveryRequest(used.clone())]),
        s.commit(vec![Change::CloseRecoveryRequest(used.clone())]),
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one close wins: {a:?} {b:?}"
    );
    assert!(matches!(a.err().or(b.err()), Some(StoreError::Conflict(_))));
    assert_eq!(s.recovery_request("r1").await.unwrap(), Some(used));
    assert!(s.pending_recovery_requests(None).await.unwrap().is_empty());
    // Once closed, the user may open another.
    s.commit(vec![Change::InsertRecoveryRequest(request("r3", 40))])
        .await
        .unwrap();
    s.commit(vec![Change::DeleteRecoveryEnrolment {
        user_id: u.id.clone(),
    }])
    .await
    .unwrap();
    assert!(s.recovery_enrolment(&u.id).await.unwrap().is_none());
}

/// Read receipts are derived from what this checks: a member's `ls` after marking a room read is
/// at or after its newest message's `ts`, members list with their join time and `ls`, and a
/// message keeps Rocket.Chat's `unread` flag as stored.
pub async fn read_state_for_receipts(s: S) {
    let (a, b) = (user("rhea"), user("saul"));
    add_users(&s, &[&a, &b]).await;
    let r = setup(&s, "receipts", &[&a, &b]).await;
    let mut m = Message::new(
        apogee_domain::random_id(),
        &r.id,
        a.as_ref(),
        "seen?".into(),
    );
    m.extra
        .insert("unread".into(), serde_json::Value::Bool(true));
    s.commit(vec![append(&m)]).await.unwrap();
    let stored = s.message_by_id(&m.id).await.unwrap().unwrap();
    assert_eq!(
        stored.extra.get("unread"),
        Some(&serde_json::Value::Bool(true))
    );
    assert_eq!(stored.ts, m.ts);
    s.commit(vec![Change::MarkRead {
        rid: r.id.clone(),
        user_id: b.id.clone(),
    }])
    .await
    .unwrap();
    let all = Page {
        offset: 0,
        count: 10,
    };
    let (members, total) = s.subscriptions_of_room(&r.id, all).await.unwrap();
    assert_eq!(total, 2);
    let of = |u: &User| members.iter().find(|x| x.u.id == u.id).unwrap().clone();
    let (sa, sb) = (of(&a), of(&b));
    assert!(
        sb.ls.is_some_and(|ls| ls >= m.ts),
        "{:?} < {:?}",
        sb.ls,
        m.ts
    );
    assert!(
        sa.ts <= m.ts && sb.ts <= m.ts,
        "members keep their join time"
    );
}

/// A queue's items read in delivery order (what a packed federation transaction carries), the
/// queues' health by name prefix (length, oldest, next attempt, in flight, failed attempts,
/// last success and failure kept per queue), and an early retry that moves only an item
/// waiting for its backoff.
pub async fn outbox_queue_reads_and_health(s: S) {
    let at = Timestamp::from_millis;
    let item = |id: &str, queue: &str, created: i64| OutboxItem {
        id: id.into(),
        kind: "federation.pdu".into(),
        queue: Some(queue.into()),
        payload: serde_json::json!({"n": id}),
        created_at: at(created),
        attempts: 0,
        last_error: None,
    };
    s.commit(vec![
        Change::Enqueue(item("a2", "federation:a", 200)),
        Change::Enqueue(item("a1", "federation:a", 100)),
        Change::Enqueue(item("a3", "federation:a", 300)),
        Change::Enqueue(item("b1", "federation:b", 150)),
        Change::Enqueue(item("m1", "mail:x", 50)),
        // Not a match: the prefix is compared exactly, case included.
        Change::Enqueue(item("w1", "FEDERATION:c", 60)),
    ])
    .await
    .unwrap();
    let ids = |items: Vec<OutboxItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.queued_outbox("federation:a", 2).await.unwrap()),
        vec!["a1", "a2"]
    );
    assert_eq!(
        ids(s.queued_outbox("federation:a", 10).await.unwrap()),
        vec!["a1", "a2", "a3"]
    );
    let health = s.outbox_queue_health("federation:").await.unwrap();
    assert_eq!(
        health.iter().map(|h| h.queue.as_str()).collect::<Vec<_>>(),
        vec!["federation:a", "federation:b"]
    );
    assert_eq!(
        health[0],
        OutboxQueueHealth {
            queue: "federation:a".into(),
            length: 3,
            oldest_pending_at: Some(at(100)),
            next_attempt_at: Some(at(100)),
            ..Default::default()
        }
    );
    // a1 in flight, then failed: counted on it, recorded for the queue.
    s.commit(vec![Change::LeaseOutbox {
        ids: vec!["a1".into()],
        node: "n".into(),
        now: at(1_000),
        until: at(61_000),
    }])
    .await
    .unwrap();
    let a = &s.outbox_queue_health("federation:").await.unwrap()[0];
    assert!(
        a.in_flight && a.next_attempt_at == Some(at(61_000)),
        "{a:?}"
    );
    // An early retry leaves an item in flight alone.
    s.commit(vec![Change::RetryOutboxNow {
        id: "a1".into(),
        now: at(2_000),
    }])
    .await
    .unwrap();
    assert_eq!(
        s.outbox_queue_health("federation:").await.unwrap()[0].next_attempt_at,
        Some(at(61_000))
    );
    s.commit(vec![
        Change::OutboxFailed {
            id: "a1".into(),
            error: "connection refused".into(),
            retry_at: Some(at(90_000)),
        },
        Change::RecordQueueAttempt {
            queue: "federation:a".into(),
            at: at(3_000),
            error: Some("connection refused".into()),
        },
    ])
    .await
    .unwrap();
    let a = &s.outbox_queue_health("federation:").await.unwrap()[0];
    assert_eq!(
        (
            a.in_flight,
            a.attempts,
            a.next_attempt_at,
            a.last_failure_at,
            a.last_error.as_deref(),
            a.last_success_at
        ),
        (
            false,
            1,
            Some(at(90_000)),
            Some(at(3_000)),
            Some("connection refused"),
            None
        )
    );
    // The peer is heard from: a1 is due now rather than at 90 s.
    s.commit(vec![Change::RetryOutboxNow {
        id: "a1".into(),
        now: at(4_000),
    }])
    .await
    .unwrap();
    assert!(ids(s.due_outbox(at(4_000), 10).await.unwrap()).contains(&"a1".to_string()));
    // Delivered together: the queue is empty but keeps its record.
    s.commit(vec![
        Change::OutboxDelivered("a1".into()),
        Change::OutboxDelivered("a2".into()),
        Change::OutboxDelivered("a3".into()),
        Change::RecordQueueAttempt {
            queue: "federation:a".into(),
            at: at(5_000),
            error: None,
        },
    ])
    .await
    .unwrap();
    let a = &s.outbox_queue_health("federation:").await.unwrap()[0];
    assert_eq!(
        (
            a.length,
            a.oldest_pending_at,
            a.next_attempt_at,
            a.last_success_at,
            a.last_failure_at
        ),
        (0, None, None, Some(at(5_000)), Some(at(3_000)))
    );
    // Given-up items do not count as waiting.
    s.commit(vec![Change::OutboxFailed {
        id: "b1".into(),
        error: "bad".into(),
        retry_at: None,
    }])
    .await
    .unwrap();
    assert!(
        s.queued_outbox("federation:b", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.outbox_queue_health("federation:").await.unwrap().len(), 1);
}

/// State snapshots are written once per id (a second copy changes nothing), an event's
/// snapshot is set once, and both are read back ordered.
pub async fn federation_state_snapshots(s: S) {
    let entry = |t: &str, k: &str, id: &str| FederationStateEntry {
        event_type: t.into(),
        state_key: k.into(),
        event_id: id.into(),
    };
    let first = vec![
        entry("m.room.member", "@b:x", "$m"),
        entry("m.room.create", "", "$c"),
    ];
    s.commit(vec![
        Change::InsertFederationStateSnapshot {
            snapshot_id: "snap1".into(),
            entries: first.clone(),
        },
        Change::SetFederationEventState {
            event_id: "$e1".into(),
            snapshot_id: "snap1".into(),
        },
        Change::SetFederationEventState {
            event_id: "$e2".into(),
            snapshot_id: "snap1".into(),
        },
    ])
    .await
    .unwrap();
    // Same id again (another node got there first), and an attempt to move $e1: ignored.
    s.commit(vec![
        Change::InsertFederationStateSnapshot {
            snapshot_id: "snap1".into(),
            entries: first.clone(),
        },
        Change::SetFederationEventState {
            event_id: "$e1".into(),
            snapshot_id: "snap2".into(),
        },
    ])
    .await
    .unwrap();
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(s.federation_state_snapshot("snap1").await.unwrap(), sorted);
    assert!(
        s.federation_state_snapshot("snap2")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.federation_event_snapshot("$e1").await.unwrap().as_deref(),
        Some("snap1")
    );
    assert_eq!(
        s.federation_event_snapshot("$e2").await.unwrap().as_deref(),
        Some("snap1")
    );
    assert_eq!(s.federation_event_snapshot("$none").await.unwrap(), None);
}

/// Backfilled history: a message inserted as backfilled is in the room's history (by its old
/// `ts`) and in `msgs`, but never unread, never the room's last message, and counts no mention;
/// the same message id again fails the batch with nothing written; the room's oldest timeline
/// events (timeline and backfilled, not outliers) come by depth.
pub async fn federation_backfilled_history(s: S) {
    use serde_json::json;
    let (a, b) = (user("bf-ann"), user("bf-bob"));
    add_users(&s, &[&a, &b]).await;
    let r = setup(&s, "backfilled", &[&a, &b]).await;
    let live = msg(&r, &a, "live", 5_000);
    s.commit(vec![append(&live)]).await.unwrap();
    let before = s.room_by_id(&r.id).await.unwrap().unwrap();
    let old = msg(&r, &a, "from before the join", 1_000);
    let event = |id: &str, kind: FederationEventKind, depth: i64| FederationEvent {
        event_id: id.into(),
        matrix_room_id: "!bf:synapse.test".into(),
        message_id: None,
        kind,
        depth,
        pdu: json!({"type": "m.room.message"}),
    };
    s.commit(vec![
        Change::InsertFederatedRoom(FederatedRoom {
            rid: r.id.clone(),
            matrix_room_id: "!bf:synapse.test".into(),
            room_version: "11".into(),
            origin: "synapse.test".into(),
        }),
        Change::SaveFederationEvents(vec![
            event("$create", FederationEventKind::Outlier, 1),
            event("$join", FederationEventKind::Timeline, 9),
            event("$later", FederationEventKind::Timeline, 10),
            event("$old-b", FederationEventKind::Backfilled, 4),
            event("$old-a", FederationEventKind::Backfilled, 4),
        ]),
        Change::InsertBackfilledMessage(old.clone()),
    ])
    .await
    .unwrap();
    let oldest: Vec<String> = s
        .federation_oldest_events("!bf:synapse.test", 3)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(oldest, ["$old-a", "$old-b", "$join"]);
    let after = s.room_by_id(&r.id).await.unwrap().unwrap();
    assert_eq!(after.msgs, before.msgs + 1);
    assert_eq!(after.lm, before.lm, "the last message time stays");
    assert_eq!(after.last_message, before.last_message);
    let sub = s.subscription(&r.id, &b.id).await.unwrap().unwrap();
    assert_eq!(sub.unread, 1, "only the live message is unread");
    let (page, _) = s
        .history(
            &r.id,
            &HistoryQuery {
                count: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let texts: Vec<&str> = page.iter().map(|m| m.msg.as_str()).collect();
    assert_eq!(texts, ["live", "from before the join"]);
    // Twice the same message: the batch fails, its event row is not kept either.
    let again = s
        .commit(vec![
            Change::SaveFederationEvents(vec![event("$dup", FederationEventKind::Backfilled, 3)]),
            Change::InsertBackfilledMessage(old.clone()),
        ])
        .await;
    assert!(again.is_err(), "{again:?}");
    assert_eq!(s.federation_event("$dup").await.unwrap(), None);
    assert_eq!(s.room_by_id(&r.id).await.unwrap().unwrap().msgs, after.msgs);

    // Edits, reactions, redactions and thread replies are found by the event they change (stored before it:
    // history paged back comes newest first), in their room only, not soft-failed ones.
    let related = |id: &str, kind, depth, room: &str, pdu: serde_json::Value| FederationEvent {
        event_id: id.into(),
        matrix_room_id: room.into(),
        message_id: None,
        kind,
        depth,
        pdu,
    };
    let edit = json!({"type": "m.room.message", "sender": "@a:synapse.test", "content": {
        "body": "* new", "m.relates_to": {"rel_type": "m.replace", "event_id": "$target"}}});
    let reaction = json!({"type": "m.reaction", "sender": "@a:synapse.test", "content": {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": "$target", "key": "👍"}}});
    let redaction_v11 = json!({"type": "m.room.redaction", "content": {"redacts": "$target"}});
    let redaction_v10 = json!({"type": "m.room.redaction", "redacts": "$target", "content": {}});
    let thread = json!({"type": "m.room.message", "content": {"body": "in thread",
        "m.relates_to": {"rel_type": "m.thread", "event_id": "$target"}}});
    s.commit(vec![Change::SaveFederationEvents(vec![
        related(
            "$edit",
            FederationEventKind::Backfilled,
            7,
            "!bf:synapse.test",
            edit,
        ),
        related(
            "$react",
            FederationEventKind::Timeline,
            6,
            "!bf:synapse.test",
            reaction.clone(),
        ),
        related(
            "$red11",
            FederationEventKind::Backfilled,
            8,
            "!bf:synapse.test",
            redaction_v11,
        ),
        related(
            "$red10",
            FederationEventKind::Backfilled,
            8,
            "!bf:synapse.test",
            redaction_v10,
        ),
        related(
            "$thread",
            FederationEventKind::Backfilled,
            6,
            "!bf:synapse.test",
            thread,
        ),
        related(
            "$soft",
            FederationEventKind::SoftFailed,
            6,
            "!bf:synapse.test",
            reaction.clone(),
        ),
        related(
            "$elsewhere",
            FederationEventKind::Backfilled,
            6,
            "!other:synapse.test",
            reaction,
        ),
    ])])
    .await
    .unwrap();
    let relations: Vec<String> = s
        .federation_relations("!bf:synapse.test", "$target")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        relations,
        ["$react", "$thread", "$edit", "$red10", "$red11"]
    );
    assert!(
        s.federation_relations("!bf:synapse.test", "$edit")
            .await
            .unwrap()
            .is_empty()
    );
}
