//! E2EE key recovery with M-of-N recovery officers (Apogee's own; `docs/E2EE-RECOVERY.md`).
//!
//! The server only relays and records: the user's client uploads its private key encrypted under
//! a random backup key and that key's Shamir shares, each sealed to one officer's RSA key
//! (`apogee_e2ee::BackupKey`). To restore, the user opens a request with a one-off restore public
//! key; officers re-seal their share to it and approve; once the threshold is met the user takes
//! the backup and the re-sealed shares, once. The server never holds a share or the backup key in
//! clear, so neither it nor fewer than M officers can read a backup.
//!
//! Decided here: who is an officer (the current policy, set by `manage-e2e-recovery`), one share
//! per officer at enrolment with the consent the user accepted, one approval per officer per
//! request (also enforced by the store's key), no approving one's own request, expiry
//! (`E2E_Recovery_Request_Expiry_Hours`), material released once (a compare-and-set on the
//! request's state). Every step is an audit entry with ids, counts and fingerprints only.

use crate::Core;
use crate::error::{CoreError, CoreResult, StoreError};
use crate::store::Change;
use apogee_domain::{Timestamp, User};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Most officers a policy names (each enrolment carries one sealed share per officer).
const MAX_OFFICERS: usize = 16;
/// Longest consent text.
const MAX_CONSENT_CHARS: usize = 10_000;
/// Largest backup ciphertext accepted (a 2048-bit private JWK is about 1.7 KB).
const MAX_BACKUP_BYTES: usize = 16 * 1024;
/// Base64 of one 2048-bit RSA block: a sealed share.
const SEALED_SHARE_BYTES: usize = 256;

pub const EXPIRY_SETTING: &str = "E2E_Recovery_Request_Expiry_Hours";

/// The organisation's recovery policy; each change is a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPolicy {
    pub version: i64,
    /// M: approvals needed to restore.
    pub threshold: i64,
    /// The officers' user ids (N of them).
    pub officers: Vec<String>,
    /// What a user accepts when enrolling.
    pub consent_text: String,
    pub set_by: String,
    pub ts: Timestamp,
}

/// An officer's published RSA-OAEP-256 public key (a JWK string, as users publish theirs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryOfficerKey {
    pub user_id: String,
    pub public_key: String,
    pub ts: Timestamp,
}

/// One officer's share of the user's backup key, sealed to that officer's key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedShare {
    pub officer_id: String,
    /// sha256 of the officer key it was sealed to: a later key of the officer cannot open it.
    pub key_sha256: String,
    pub sealed: String,
}

/// The consent a user gave at enrolment: the policy version and a digest of its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub version: i64,
    pub text_sha256: String,
    pub ts: Timestamp,
}

/// A user's enrolment: the encrypted private key and the sealed shares of its key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryEnrolment {
    pub user_id: String,
    pub policy_version: i64,
    pub threshold: i64,
    pub backup: apogee_e2ee::RecoveryBackup,
    pub shares: Vec<SealedShare>,
    pub consent: Consent,
    pub ts: Timestamp,
}

impl std::fmt::Debug for RecoveryEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryEnrolment")
            .field("user_id", &self.user_id)
            .field("policy_version", &self.policy_version)
            .field("threshold", &self.threshold)
            .field("shares", &self.shares.len())
            .field("consent", &self.consent)
            .finish()
    }
}

/// A request's life: `pending` until approved material is taken (`used`), an officer denies
/// it, it expires, or the user withdraws their enrolment.
pub const PENDING: &str = "pending";

/// A user's request to restore their key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryRequest {
    pub id: String,
    pub user_id: String,
    /// The one-off RSA-OAEP-256 public JWK officers re-seal their shares to.
    pub restore_public_key: String,
    pub state: String,
    pub policy_version: i64,
    pub threshold: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub closed_by: Option<String>,
}

/// An officer's approval: their share re-sealed to the request's restore key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryApproval {
    pub request_id: String,
    pub officer_id: String,
    pub resealed_share: String,
    pub ts: Timestamp,
}

impl std::fmt::Debug for RecoveryApproval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryApproval")
            .field("request_id", &self.request_id)
            .field("officer_id", &self.officer_id)
            .finish()
    }
}

impl std::fmt::Debug for SealedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedShare")
            .field("officer_id", &self.officer_id)
            .finish()
    }
}

/// What a client uploads to enrol.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrolBody {
    version: i64,
    backup: apogee_e2ee::RecoveryBackup,
    shares: Vec<ShareBody>,
    consent: Option<ConsentBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShareBody {
    officer_id: String,
    sealed: String,
}

#[derive(Deserialize)]
struct ConsentBody {
    text: String,
    version: i64,
}

/// Hex sha256: how keys and consent texts are named in answers and the audit log.
pub fn fingerprint(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn disabled() -> CoreError {
    CoreError::bad(
        "error-e2e-recovery-disabled",
        "Key recovery is not set up in this workspace",
    )
}

fn not_enrolled() -> CoreError {
    CoreError::bad(
        "error-e2e-recovery-not-enrolled",
        "You are not enrolled in key recovery",
    )
}

fn not_an_officer() -> CoreError {
    CoreError::not_allowed("Only recovery officers can do this")
}

/// A sealed share as clients send it: base64 of exactly one RSA-2048 block.
fn check_sealed_share(s: &str) -> CoreResult<()> {
    match STANDARD.decode(s) {
        Ok(bytes) if bytes.len() == SEALED_SHARE_BYTES => Ok(()),
        _ => Err(CoreError::invalid_params(
            "A share must be the base64 of one RSA-OAEP-256 block (256 bytes)",
        )),
    }
}

fn check_backup(backup: &apogee_e2ee::RecoveryBackup) -> CoreResult<()> {
    let iv = STANDARD.decode(&backup.iv).ok();
    let ct = STANDARD.decode(&backup.ciphertext).ok();
    match (iv, ct) {
        (Some(iv), Some(ct)) if iv.len() == 12 && (17..=MAX_BACKUP_BYTES).contains(&ct.len()) => {
            Ok(())
        }
        _ => Err(CoreError::invalid_params(
            "The backup must be {iv, ciphertext}: base64 of a 12-byte IV and an AES-GCM ciphertext",
        )),
    }
}

fn expired(request: &RecoveryRequest, now: Timestamp) -> bool {
    request.expires_at.millis() <= now.millis()
}

impl Core {
    async fn current_policy(&self) -> CoreResult<RecoveryPolicy> {
        self.store.recovery_policy().await?.ok_or_else(disabled)
    }

    /// The policy, when the caller is one of its officers (without a policy nobody is).
    async fn policy_of_officer(&self, actor: &User) -> CoreResult<RecoveryPolicy> {
        match self.store.recovery_policy().await? {
            Some(policy) if policy.officers.contains(&actor.id) => Ok(policy),
            _ => Err(not_an_officer()),
        }
    }

    async fn officer_keys(&self) -> CoreResult<HashMap<String, RecoveryOfficerKey>> {
        Ok(self
            .store
            .recovery_officer_keys()
            .await?
            .into_iter()
            .map(|k| (k.user_id.clone(), k))
            .collect())
    }

    /// Whether an enrolment still matches the current policy and officer keys (else the user's
    /// client should enrol again).
    fn enrolment_current(
        enrolment: &RecoveryEnrolment,
        policy: &RecoveryPolicy,
        keys: &HashMap<String, RecoveryOfficerKey>,
    ) -> bool {
        enrolment.policy_version == policy.version
            && enrolment.shares.iter().all(|s| {
                keys.get(&s.officer_id)
                    .is_some_and(|k| fingerprint(&k.public_key) == s.key_sha256)
            })
    }

    /// `GET e2e.recovery.policy`: the policy, the officers and their keys, and the caller's own
    /// enrolment and open request.
    pub async fn e2e_recovery_policy(&self, actor: &User) -> CoreResult<Value> {
        let Some(policy) = self.store.recovery_policy().await? else {
            return Ok(json!({"enabled": false}));
        };
        let keys = self.officer_keys().await?;
        let users = self.store.users_by_ids(&policy.officers).await?;
        let officers: Vec<Value> = policy
            .officers
            .iter()
            .map(|id| {
                let username = users.iter().find(|u| &u.id == id).map(|u| &u.username);
                json!({
                    "_id": id,
                    "username": username,
                    "publicKey": keys.get(id).map(|k| &k.public_key),
                })
            })
            .collect();
        let enrolment = self.store.recovery_enrolment(&actor.id).await?.map(|e| {
            json!({
                "version": e.policy_version,
                "current": Self::enrolment_current(&e, &policy, &keys),
                "enrolledAt": e.ts,
            })
        });
        let request = match self
            .store
            .pending_recovery_requests(Some(&actor.id))
            .await?
            .into_iter()
            .next()
        {
            Some(r) => Some(self.request_view(&r).await?),
            None => None,
        };
        Ok(json!({
            "enabled": true,
            "version": policy.version,
            "threshold": policy.threshold,
            "officers": officers,
            "consentText": policy.consent_text,
            "isOfficer": policy.officers.contains(&actor.id),
            "enrolment": enrolment,
            "request": request,
        }))
    }

    async fn request_view(&self, r: &RecoveryRequest) -> CoreResult<Value> {
        let approvals = self.store.recovery_approvals(&r.id).await?;
        Ok(json!({
            "_id": r.id,
            "state": if r.state == PENDING && expired(r, Timestamp::now()) { "expired" } else { r.state.as_str() },
            "approvals": approvals.len(),
            "threshold": r.threshold,
            "restoreKeyFingerprint": fingerprint(&r.restore_public_key),
            "createdAt": r.created_at,
            "expiresAt": r.expires_at,
        }))
    }

    /// `POST e2e.recovery.officers.set {officers, threshold, consentText}`: a new policy version.
    /// Enrolments made under an older version are reported as not current (the user's client
    /// enrols again); they keep working with the officers they were sealed to who remain.
    pub async fn e2e_recovery_set_officers(
        &self,
        actor: &User,
        officers: &[String],
        threshold: i64,
        consent_text: &str,
    ) -> CoreResult<Value> {
        self.authz.require(actor, "manage-e2e-recovery", None)?;
        let mut ids = officers.to_vec();
        ids.sort();
        ids.dedup();
        if ids.len() != officers.len() || ids.len() < 2 || ids.len() > MAX_OFFICERS {
            return Err(CoreError::invalid_params(
                "officers must name 2 to 16 different users",
            ));
        }
        if threshold < 2 || threshold > officers.len() as i64 {
            return Err(CoreError::invalid_params(
                "threshold must be at least 2 and at most the number of officers",
            ));
        }
        let consent_text = consent_text.trim();
        if consent_text.is_empty() || consent_text.chars().count() > MAX_CONSENT_CHARS {
            return Err(CoreError::invalid_params(
                "consentText must be 1 to 10000 characters",
            ));
        }
        let users = self.store.users_by_ids(&ids).await?;
        if users.len() != ids.len() || users.iter().any(|u| !u.active) {
            return Err(CoreError::invalid_user());
        }
        let version = self
            .store
            .recovery_policy()
            .await?
            .map_or(1, |p| p.version + 1);
        let policy = RecoveryPolicy {
            version,
            threshold,
            officers: officers.to_vec(),
            consent_text: consent_text.to_string(),
            set_by: actor.id.clone(),
            ts: Timestamp::now(),
        };
        let audit = self.audit(
            "e2e.recovery.policy_changed",
            Some(actor),
            json!({
                "version": version,
                "threshold": threshold,
                "officers": policy.officers,
                "consentSha256": fingerprint(&policy.consent_text),
            }),
        );
        self.commit(vec![Change::InsertRecoveryPolicy(policy), audit])
            .await?;
        self.e2e_recovery_policy(actor).await
    }

    /// `POST e2e.recovery.officer.setKey {publicKey}`: an officer publishes their key.
    pub async fn e2e_recovery_set_officer_key(
        &self,
        actor: &User,
        public_key: &str,
    ) -> CoreResult<()> {
        self.policy_of_officer(actor).await?;
        crate::e2e::check_public_key(public_key)?;
        let audit = self.audit(
            "e2e.recovery.officer_key_set",
            Some(actor),
            json!({"keySha256": fingerprint(public_key)}),
        );
        self.commit(vec![
            Change::SaveRecoveryOfficerKey(RecoveryOfficerKey {
                user_id: actor.id.clone(),
                public_key: public_key.to_string(),
                ts: Timestamp::now(),
            }),
            audit,
        ])
        .await
    }

    /// `POST e2e.recovery.enrol {version, backup, shares, consent}`: stores the caller's backup
    /// with one sealed share per current officer and the consent they accepted (replacing an
    /// earlier enrolment).
    pub async fn e2e_recovery_enrol(&self, actor: &User, body: &Value) -> CoreResult<Value> {
        let policy = self.current_policy().await?;
        let body: EnrolBody = serde_json::from_value(body.clone()).map_err(|_| {
            CoreError::invalid_params(
                "Expected {version, backup: {iv, ciphertext}, shares: [{officerId, sealed}], consent: {text, version}}",
            )
        })?;
        let consent = body.consent.ok_or_else(|| {
            CoreError::bad(
                "error-e2e-recovery-consent-required",
                "Enrolling needs the user's consent to the recovery policy",
            )
        })?;
        if body.version != policy.version
            || consent.version != policy.version
            || consent.text != policy.consent_text
        {
            return Err(CoreError::bad(
                "error-e2e-recovery-policy-changed",
                "The recovery policy changed; read it again and ask for consent",
            )
            .with_details(json!({"version": policy.version})));
        }
        check_backup(&body.backup)?;
        let keys = self.officer_keys().await?;
        let mut shares = Vec::with_capacity(body.shares.len());
        for officer in &policy.officers {
            let key = keys.get(officer).ok_or_else(|| {
                CoreError::bad(
                    "error-e2e-recovery-officer-without-key",
                    "An officer has not published a key yet",
                )
                .with_details(json!({"officerId": officer}))
            })?;
            let mut given = body.shares.iter().filter(|s| &s.officer_id == officer);
            let share = match (given.next(), given.next()) {
                (Some(share), None) => share,
                _ => {
                    return Err(CoreError::invalid_params(
                        "shares must hold exactly one share for each officer",
                    ));
                }
            };
            check_sealed_share(&share.sealed)?;
            shares.push(SealedShare {
                officer_id: officer.clone(),
                key_sha256: fingerprint(&key.public_key),
                sealed: share.sealed.clone(),
            });
        }
        if body.shares.len() != policy.officers.len() {
            return Err(CoreError::invalid_params(
                "shares must hold exactly one share for each officer",
            ));
        }
        let now = Timestamp::now();
        let consent = Consent {
            version: policy.version,
            text_sha256: fingerprint(&consent.text),
            ts: now,
        };
        let audit = self.audit(
            "e2e.recovery.enrolled",
            Some(actor),
            json!({
                "version": policy.version,
                "threshold": policy.threshold,
                "officers": shares.len(),
                "consentSha256": consent.text_sha256,
            }),
        );
        let mut changes = vec![
            Change::SaveRecoveryEnrolment(RecoveryEnrolment {
                user_id: actor.id.clone(),
                policy_version: policy.version,
                threshold: policy.threshold,
                backup: body.backup,
                shares,
                consent,
                ts: now,
            }),
            audit,
        ];
        // Shares approved for an open request belong to the replaced backup key: the request
        // cannot restore anything any more, so it closes with the old enrolment.
        for request in self
            .store
            .pending_recovery_requests(Some(&actor.id))
            .await?
        {
            changes.push(close(request, "withdrawn", &actor.id));
        }
        self.commit(changes).await?;
        Ok(json!({"version": policy.version, "enrolledAt": now}))
    }

    /// `POST e2e.recovery.withdraw`: consent withdrawn — the enrolment goes, and an open
    /// request with it.
    pub async fn e2e_recovery_withdraw(&self, actor: &User) -> CoreResult<()> {
        if self.store.recovery_enrolment(&actor.id).await?.is_none() {
            return Err(not_enrolled());
        }
        let mut changes = vec![Change::DeleteRecoveryEnrolment {
            user_id: actor.id.clone(),
        }];
        for request in self
            .store
            .pending_recovery_requests(Some(&actor.id))
            .await?
        {
            changes.push(close(request, "withdrawn", &actor.id));
        }
        changes.push(self.audit("e2e.recovery.withdrawn", Some(actor), json!({})));
        self.commit(changes).await
    }

    /// `POST e2e.recovery.request {restorePublicKey}`: opens the caller's request. One open
    /// request per user; an expired one is closed in the same batch.
    pub async fn e2e_recovery_request(
        &self,
        actor: &User,
        restore_public_key: &str,
    ) -> CoreResult<Value> {
        let enrolment = self
            .store
            .recovery_enrolment(&actor.id)
            .await?
            .ok_or_else(not_enrolled)?;
        crate::e2e::check_public_key(restore_public_key)?;
        let now = Timestamp::now();
        let mut changes = Vec::new();
        for open in self
            .store
            .pending_recovery_requests(Some(&actor.id))
            .await?
        {
            if !expired(&open, now) {
                return Err(CoreError::bad(
                    "error-e2e-recovery-request-open",
                    "A recovery request is already open",
                ));
            }
            changes.push(self.audit(
                "e2e.recovery.expired",
                Some(actor),
                json!({"requestId": open.id}),
            ));
            changes.push(close(open, "expired", &actor.id));
        }
        let hours = self.settings.int(EXPIRY_SETTING).clamp(1, 24 * 365);
        let request = RecoveryRequest {
            id: apogee_domain::random_id(),
            user_id: actor.id.clone(),
            restore_public_key: restore_public_key.to_string(),
            state: PENDING.into(),
            policy_version: enrolment.policy_version,
            threshold: enrolment.threshold,
            created_at: now,
            expires_at: Timestamp::from_millis(now.millis() + hours * 3_600_000),
            closed_at: None,
            closed_by: None,
        };
        changes.push(self.audit(
            "e2e.recovery.requested",
            Some(actor),
            json!({
                "requestId": request.id,
                "restoreKeySha256": fingerprint(restore_public_key),
                "threshold": request.threshold,
            }),
        ));
        changes.push(Change::InsertRecoveryRequest(request.clone()));
        self.commit(changes).await?;
        // Officers who can act on it hear of it at once (they also find it by polling).
        let officers = self
            .store
            .recovery_policy()
            .await?
            .map(|p| p.officers)
            .unwrap_or_default();
        for share in &enrolment.shares {
            if officers.contains(&share.officer_id) && share.officer_id != actor.id {
                self.publish(crate::events::Event::E2eRecoveryRequest {
                    officer_id: share.officer_id.clone(),
                    request_id: request.id.clone(),
                    user_id: actor.id.clone(),
                    username: actor.username.clone(),
                    restore_key_sha256: fingerprint(restore_public_key),
                });
            }
        }
        Ok(json!({"request": self.request_view(&request).await?}))
    }

    /// `GET e2e.recovery.requests`: the open requests the calling officer holds a share for,
    /// with that sealed share.
    pub async fn e2e_recovery_requests(&self, actor: &User) -> CoreResult<Value> {
        self.policy_of_officer(actor).await?;
        let now = Timestamp::now();
        let mut out = Vec::new();
        for request in self.store.pending_recovery_requests(None).await? {
            if request.user_id == actor.id || expired(&request, now) {
                continue;
            }
            let Some(enrolment) = self.store.recovery_enrolment(&request.user_id).await? else {
                continue;
            };
            let Some(share) = enrolment.shares.iter().find(|s| s.officer_id == actor.id) else {
                continue;
            };
            let approvals = self.store.recovery_approvals(&request.id).await?;
            let requester = self.store.user_by_id(&request.user_id).await?;
            let mut view = self.request_view(&request).await?;
            view["user"] = json!({
                "_id": request.user_id,
                "username": requester.map(|u| u.username),
            });
            view["restorePublicKey"] = json!(request.restore_public_key);
            view["sealedShare"] = json!(share.sealed);
            view["approvedByMe"] = json!(approvals.iter().any(|a| a.officer_id == actor.id));
            out.push(view);
        }
        Ok(json!({"requests": out}))
    }

    /// The checks approving and denying share: the caller is a current officer holding a
    /// share of this open, unexpired request of someone else.
    async fn officer_request(
        &self,
        actor: &User,
        request_id: &str,
    ) -> CoreResult<(RecoveryRequest, Vec<RecoveryApproval>)> {
        self.policy_of_officer(actor).await?;
        let request = self
            .store
            .recovery_request(request_id)
            .await?
            .ok_or_else(|| {
                CoreError::bad(
                    "error-e2e-recovery-request-not-found",
                    "No such recovery request",
                )
            })?;
        if request.user_id == actor.id {
            return Err(CoreError::not_allowed(
                "Officers cannot act on their own recovery request",
            ));
        }
        if request.state != PENDING {
            return Err(CoreError::bad(
                "error-e2e-recovery-request-closed",
                "This recovery request is closed",
            ));
        }
        if expired(&request, Timestamp::now()) {
            return Err(CoreError::bad(
                "error-e2e-recovery-request-expired",
                "This recovery request has expired",
            ));
        }
        let holds_share = self
            .store
            .recovery_enrolment(&request.user_id)
            .await?
            .is_some_and(|e| e.shares.iter().any(|s| s.officer_id == actor.id));
        if !holds_share {
            return Err(not_an_officer());
        }
        let approvals = self.store.recovery_approvals(&request.id).await?;
        Ok((request, approvals))
    }

    /// `POST e2e.recovery.approve {requestId, resealedShare}`: an officer's share, re-sealed to
    /// the request's restore key. Once per officer per request.
    pub async fn e2e_recovery_approve(
        &self,
        actor: &User,
        request_id: &str,
        resealed_share: &str,
    ) -> CoreResult<Value> {
        let (request, approvals) = self.officer_request(actor, request_id).await?;
        if approvals.iter().any(|a| a.officer_id == actor.id) {
            return Err(already_approved());
        }
        check_sealed_share(resealed_share)?;
        let count = approvals.len() + 1;
        let audit = self.audit(
            "e2e.recovery.approved",
            Some(actor),
            json!({
                "requestId": request.id,
                "userId": request.user_id,
                "approvals": count,
                "threshold": request.threshold,
            }),
        );
        let approval = RecoveryApproval {
            request_id: request.id.clone(),
            officer_id: actor.id.clone(),
            resealed_share: resealed_share.to_string(),
            ts: Timestamp::now(),
        };
        // Two racing approvals by one officer: the store's key lets one through.
        match self
            .store
            .commit(vec![Change::InsertRecoveryApproval(approval), audit])
            .await
        {
            Err(StoreError::Conflict(_)) => return Err(already_approved()),
            other => other?,
        }
        Ok(json!({"approvals": count, "threshold": request.threshold}))
    }

    /// `POST e2e.recovery.deny {requestId}`: an officer closes the request.
    pub async fn e2e_recovery_deny(&self, actor: &User, request_id: &str) -> CoreResult<()> {
        let (request, _) = self.officer_request(actor, request_id).await?;
        let audit = self.audit(
            "e2e.recovery.denied",
            Some(actor),
            json!({"requestId": request.id, "userId": request.user_id}),
        );
        self.commit(vec![close(request, "denied", &actor.id), audit])
            .await
    }

    /// `POST e2e.recovery.material`: once the threshold of approvals is met, the caller's
    /// backup and the re-sealed shares — once; the request is then `used`.
    pub async fn e2e_recovery_material(&self, actor: &User) -> CoreResult<Value> {
        let request = self
            .store
            .pending_recovery_requests(Some(&actor.id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                CoreError::bad(
                    "error-e2e-recovery-request-not-found",
                    "No open recovery request",
                )
            })?;
        if expired(&request, Timestamp::now()) {
            return Err(CoreError::bad(
                "error-e2e-recovery-request-expired",
                "This recovery request has expired",
            ));
        }
        let approvals = self.store.recovery_approvals(&request.id).await?;
        if (approvals.len() as i64) < request.threshold {
            return Err(CoreError::bad(
                "error-e2e-recovery-not-approved",
                "Not enough officers have approved this request yet",
            )
            .with_details(json!({"approvals": approvals.len(), "threshold": request.threshold})));
        }
        let enrolment = self
            .store
            .recovery_enrolment(&actor.id)
            .await?
            .ok_or_else(not_enrolled)?;
        let audit = self.audit(
            "e2e.recovery.material_released",
            Some(actor),
            json!({"requestId": request.id, "approvals": approvals.len()}),
        );
        let request_id = request.id.clone();
        match self
            .store
            .commit(vec![close(request, "used", &actor.id), audit])
            .await
        {
            // Taken by a concurrent call: material is released once.
            Err(StoreError::Conflict(_)) => {
                return Err(CoreError::bad(
                    "error-e2e-recovery-request-closed",
                    "This recovery request is closed",
                ));
            }
            other => other?,
        }
        Ok(json!({
            "requestId": request_id,
            "backup": enrolment.backup,
            "shares": approvals.iter().map(|a| &a.resealed_share).collect::<Vec<_>>(),
            "threshold": enrolment.threshold,
        }))
    }
}

fn already_approved() -> CoreError {
    CoreError::bad(
        "error-e2e-recovery-already-approved",
        "You already approved this request",
    )
}

/// Moves a pending request to a final state (compare-and-set on `pending`).
fn close(mut request: RecoveryRequest, state: &str, by: &str) -> Change {
    request.state = state.to_string();
    request.closed_at = Some(Timestamp::now());
    request.closed_by = Some(by.to_string());
    Change::CloseRecoveryRequest(request)
}
