//! Role-based access control: Rocket.Chat's permission ids granted to global roles (on the user)
//! and room roles (on the subscription). The permission table is cached in memory; every check
//! is a map lookup.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::store::{AuthzStore, Change, Role};
use apogee_domain::permissions::DEFAULT_ROLES;
use apogee_domain::{Room, RoomType, Subscription, Timestamp, User};
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Default)]
pub struct Authz {
    grants: RwLock<HashMap<String, Vec<String>>>,
}

impl Authz {
    pub(crate) async fn load(store: &dyn AuthzStore) -> CoreResult<Self> {
        let a = Authz::default();
        a.reload(store).await?;
        Ok(a)
    }

    pub(crate) async fn reload(&self, store: &dyn AuthzStore) -> CoreResult<()> {
        let perms = store.permissions().await?;
        *self.grants.write().unwrap_or_else(|e| e.into_inner()) = perms.into_iter().collect();
        Ok(())
    }

    /// Roles granted `permission`.
    pub fn roles_for(&self, permission: &str) -> Vec<String> {
        self.grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(permission)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the user's global roles grant `permission`.
    pub fn has(&self, user: &User, permission: &str) -> bool {
        self.has_in(user, permission, None)
    }

    /// Whether the user's global roles, or their roles in the room, grant `permission`.
    pub fn has_in(&self, user: &User, permission: &str, sub: Option<&Subscription>) -> bool {
        let grants = self.grants.read().unwrap_or_else(|e| e.into_inner());
        let Some(roles) = grants.get(permission) else {
            return false;
        };
        roles
            .iter()
            .any(|r| user.has_role(r) || sub.is_some_and(|s| s.has_role(r)))
    }

    /// Fails with `error-unauthorized` (403) unless the user holds `permission`.
    pub fn require(
        &self,
        user: &User,
        permission: &str,
        sub: Option<&Subscription>,
    ) -> CoreResult<()> {
        if self.has_in(user, permission, sub) {
            Ok(())
        } else {
            Err(CoreError::unauthorized())
        }
    }

    /// Rocket.Chat's `canAccessRoom`: members always; public channels for whoever may view them.
    pub fn can_read_room(&self, user: &User, room: &Room, sub: Option<&Subscription>) -> bool {
        if sub.is_some() {
            return true;
        }
        match room.t {
            RoomType::Channel => self.has(user, "view-c-room"),
            RoomType::Group | RoomType::Direct => false,
        }
    }

    pub(crate) fn set(&self, id: &str, roles: Vec<String>) {
        self.grants
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), roles);
    }

    pub fn all(&self) -> Vec<(String, Vec<String>)> {
        let mut all: Vec<_> = self
            .grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        all
    }
}

/// One `permissions.update` entry.
#[derive(Debug, Clone)]
pub struct PermissionGrant {
    pub id: String,
    pub roles: Vec<String>,
}

impl Core {
    /// `permissions.update`: replaces the roles of existing permissions. Needs `access-permissions`.
    pub async fn update_permissions(
        &self,
        actor: &User,
        grants: Vec<PermissionGrant>,
    ) -> CoreResult<()> {
        self.authz.require(actor, "access-permissions", None)?;
        let known_roles: Vec<String> = self.roles().await?.into_iter().map(|r| r.id).collect();
        for g in &grants {
            if self.authz.roles_for(&g.id).is_empty()
                && !self.authz.all().iter().any(|(id, _)| *id == g.id)
            {
                return Err(CoreError::bad(
                    "error-invalid-permission",
                    "Invalid permission",
                ));
            }
            if let Some(bad) = g.roles.iter().find(|r| !known_roles.contains(r)) {
                return Err(CoreError::bad(
                    "error-invalid-role",
                    format!("Invalid role {bad}"),
                ));
            }
        }
        let mut changes: Vec<Change> = grants
            .iter()
            .map(|g| Change::SetPermissionRoles {
                id: g.id.clone(),
                roles: g.roles.clone(),
            })
            .collect();
        for g in &grants {
            let details = serde_json::json!({"permission": g.id, "roles": g.roles});
            changes.push(self.audit("permission.changed", Some(actor), details));
        }
        self.commit(changes).await?;
        for g in grants {
            self.authz.set(&g.id, g.roles);
        }
        Ok(())
    }

    /// All roles, built-in and custom.
    pub async fn roles(&self) -> CoreResult<Vec<Role>> {
        Ok(self.store.roles().await?)
    }

    pub(crate) fn builtin_roles() -> Vec<Role> {
        let now = Timestamp::now();
        DEFAULT_ROLES
            .iter()
            .map(|(id, scope, description)| Role {
                id: id.to_string(),
                name: id.to_string(),
                scope: scope.to_string(),
                description: description.to_string(),
                protected: true,
                mandatory2fa: false,
                updated_at: now,
            })
            .collect()
    }
}
