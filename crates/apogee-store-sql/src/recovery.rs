//! E2EE key recovery: reads, and how its changes become rows. The store's keys carry the rules
//! that must hold across nodes: one approval per officer per request (primary key), one pending
//! request per user (partial unique index), and a request leaves `pending` once.

use crate::{Database, SqlStore, SqlTx, args, to_json};
use apogee_core::error::StoreError;
use apogee_core::store::{
    RecoveryApproval, RecoveryEnrolment, RecoveryOfficerKey, RecoveryPolicy, RecoveryRequest,
    RecoveryStore, StoreResult,
};
use async_trait::async_trait;

pub(crate) async fn insert_policy(tx: &mut dyn SqlTx, p: &RecoveryPolicy) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO e2e_recovery_policies (version, doc) VALUES ($1, $2)",
        args![p.version, to_json(p)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn save_officer_key(
    tx: &mut dyn SqlTx,
    k: &RecoveryOfficerKey,
) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO e2e_recovery_officer_keys (user_id, doc) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc",
        args![&k.user_id, to_json(k)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn save_enrolment(tx: &mut dyn SqlTx, e: &RecoveryEnrolment) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO e2e_recovery_enrolments (user_id, doc) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc",
        args![&e.user_id, to_json(e)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_request(tx: &mut dyn SqlTx, r: &RecoveryRequest) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO e2e_recovery_requests (id, user_id, state, created_at, doc) VALUES ($1, $2, $3, $4, $5)",
        args![&r.id, &r.user_id, &r.state, r.created_at.millis(), to_json(r)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn close_request(tx: &mut dyn SqlTx, r: &RecoveryRequest) -> StoreResult<()> {
    let changed = tx
        .exec(
            "UPDATE e2e_recovery_requests SET state = $2, doc = $3 WHERE id = $1 AND state = 'pending'",
            args![&r.id, &r.state, to_json(r)?],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::Conflict("e2e recovery request state".into()));
    }
    Ok(())
}

pub(crate) async fn insert_approval(tx: &mut dyn SqlTx, a: &RecoveryApproval) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO e2e_recovery_approvals (request_id, officer_id, ts, doc) VALUES ($1, $2, $3, $4)",
        args![&a.request_id, &a.officer_id, a.ts.millis(), to_json(a)?],
    )
    .await?;
    Ok(())
}

/// A deleted user's recovery rows go with them (their approvals of others' requests stay:
/// they were given).
pub(crate) async fn delete_user(tx: &mut dyn SqlTx, user_id: &str) -> StoreResult<()> {
    for sql in [
        "DELETE FROM e2e_recovery_approvals WHERE request_id IN (SELECT id FROM e2e_recovery_requests WHERE user_id = $1)",
        "DELETE FROM e2e_recovery_requests WHERE user_id = $1",
        "DELETE FROM e2e_recovery_enrolments WHERE user_id = $1",
        "DELETE FROM e2e_recovery_officer_keys WHERE user_id = $1",
    ] {
        tx.exec(sql, args![user_id]).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: Database> RecoveryStore for SqlStore<D> {
    async fn recovery_policy(&self) -> StoreResult<Option<RecoveryPolicy>> {
        self.doc(
            "SELECT doc FROM e2e_recovery_policies ORDER BY version DESC LIMIT 1",
            args![],
        )
        .await
    }

    async fn recovery_officer_keys(&self) -> StoreResult<Vec<RecoveryOfficerKey>> {
        self.docs(
            "SELECT doc FROM e2e_recovery_officer_keys ORDER BY user_id",
            args![],
        )
        .await
    }

    async fn recovery_enrolment(&self, user_id: &str) -> StoreResult<Option<RecoveryEnrolment>> {
        self.doc(
            "SELECT doc FROM e2e_recovery_enrolments WHERE user_id = $1",
            args![user_id],
        )
        .await
    }

    async fn recovery_request(&self, id: &str) -> StoreResult<Option<RecoveryRequest>> {
        self.doc(
            "SELECT doc FROM e2e_recovery_requests WHERE id = $1",
            args![id],
        )
        .await
    }

    async fn pending_recovery_requests(
        &self,
        user_id: Option<&str>,
    ) -> StoreResult<Vec<RecoveryRequest>> {
        self.docs(
            "SELECT doc FROM e2e_recovery_requests
                 WHERE state = 'pending' AND ($1 IS NULL OR user_id = $1) ORDER BY created_at, id",
            args![user_id],
        )
        .await
    }

    async fn recovery_approvals(&self, request_id: &str) -> StoreResult<Vec<RecoveryApproval>> {
        self.docs(
            "SELECT doc FROM e2e_recovery_approvals WHERE request_id = $1 ORDER BY ts, officer_id",
            args![request_id],
        )
        .await
    }
}
