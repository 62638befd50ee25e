//! Roles: who holds them, custom roles, granting and revoking. Global (`Users`-scope) roles live
//! on the user; `Subscriptions`-scope roles on a room subscription.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::events::Event;
use crate::store::{Change, Page, Role, RoomQuery, UserQuery};
use apogee_domain::{Timestamp, User, random_id};
use serde_json::json;

/// A new custom role.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    pub name: String,
    pub scope: Option<String>,
    pub description: Option<String>,
    pub mandatory2fa: Option<bool>,
}

fn role_not_found() -> CoreError {
    CoreError::bad("error-invalid-roleId", "This role does not exist")
}

fn not_allowed() -> CoreError {
    CoreError::bad(
        "error-action-not-allowed",
        "Accessing permissions is not allowed",
    )
}

impl Core {
    async fn role_by_id_or_name(&self, key: &str) -> CoreResult<Option<Role>> {
        Ok(self
            .roles()
            .await?
            .into_iter()
            .find(|r| r.id == key || r.name == key))
    }

    /// `roles.getUsersInRole`: holders of a role, globally or in one room. Needs
    /// `access-permissions` (and `view-other-user-channels` for a room).
    pub async fn users_in_role(
        &self,
        actor: &User,
        role: &str,
        room_id: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<User>, i64)> {
        self.authz.require(actor, "access-permissions", None)?;
        if room_id.is_some() && !self.authz.has(actor, "view-other-user-channels") {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        let role = self
            .role_by_id_or_name(role)
            .await?
            .ok_or_else(|| CoreError::bad("error-invalid-roleId", ""))?;
        match room_id {
            None => {
                let query = UserQuery {
                    role: Some(role.id),
                    ..Default::default()
                };
                Ok(self.store.list_users(&query, page).await?)
            }
            Some(rid) => {
                let (subs, _) = self.store.subscriptions_of_room(rid, Page::ALL).await?;
                let ids: Vec<String> = subs
                    .into_iter()
                    .filter(|s| s.has_role(&role.id))
                    .map(|s| s.u.id)
                    .collect();
                let mut users = self.store.users_by_ids(&ids).await?;
                users.sort_by(|a, b| a.username.cmp(&b.username));
                let total = users.len() as i64;
                let users = users
                    .into_iter()
                    .skip(page.offset.max(0) as usize)
                    .take(page.count.max(0) as usize)
                    .collect();
                Ok((users, total))
            }
        }
    }

    /// `getUserRoles`: the users holding a global role that is shown publicly (one with a
    /// description, such as `admin`), with only those roles. Members' own roles stay private.
    pub async fn users_with_public_roles(&self) -> CoreResult<Vec<(User, Vec<String>)>> {
        let public: Vec<String> = self
            .roles()
            .await?
            .into_iter()
            .filter(|r| r.scope == "Users" && !r.description.is_empty())
            .map(|r| r.id)
            .collect();
        let mut found: Vec<(User, Vec<String>)> = Vec::new();
        for role in &public {
            let query = UserQuery {
                role: Some(role.clone()),
                ..Default::default()
            };
            let (users, _) = self.store.list_users(&query, Page::ALL).await?;
            for user in users {
                let roles = user
                    .roles
                    .iter()
                    .filter(|r| public.contains(r))
                    .cloned()
                    .collect();
                if !found.iter().any(|(u, _)| u.id == user.id) {
                    found.push((user, roles));
                }
            }
        }
        found.sort_by(|a, b| a.0.username.cmp(&b.0.username));
        Ok(found)
    }

    /// `roles.sync`: roles changed after `since`.
    pub async fn roles_changed_since(&self, since: Timestamp) -> CoreResult<Vec<Role>> {
        let mut roles = self.roles().await?;
        roles.retain(|r| r.updated_at > since);
        Ok(roles)
    }

    /// `roles.getUsersInPublicRoles`: users holding a global role that has a description (the
    /// roles shown as tags), each with only those roles.
    pub async fn users_in_public_roles(&self) -> CoreResult<Vec<User>> {
        let public: Vec<String> = self
            .roles()
            .await?
            .into_iter()
            .filter(|r| r.scope == "Users" && !r.description.is_empty())
            .map(|r| r.id)
            .collect();
        let mut out: Vec<User> = Vec::new();
        for role in &public {
            let query = UserQuery {
                role: Some(role.clone()),
                ..Default::default()
            };
            for u in self.store.list_users(&query, Page::ALL).await?.0 {
                if !out.iter().any(|o| o.id == u.id) {
                    out.push(u);
                }
            }
        }
        for u in &mut out {
            u.roles.retain(|r| public.contains(r));
        }
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    /// `roles.create`: a custom role. Needs `access-permissions`.
    pub async fn create_role(&self, actor: &User, new: NewRole) -> CoreResult<Role> {
        if !self.authz.has(actor, "access-permissions") {
            return Err(not_allowed());
        }
        let name = new.name.trim().to_string();
        let scope = new.scope.unwrap_or_else(|| "Users".into());
        if name.is_empty() || !["Users", "Subscriptions"].contains(&scope.as_str()) {
            return Err(CoreError::bad(
                "error-invalid-role-properties",
                "The role properties are invalid.",
            ));
        }
        if self.role_by_id_or_name(&name).await?.is_some() {
            return Err(CoreError::bad(
                "error-duplicate-role-names-not-allowed",
                "Role name already exists",
            ));
        }
        let role = Role {
            id: random_id(),
            name,
            scope,
            description: new.description.unwrap_or_default(),
            protected: false,
            mandatory2fa: new.mandatory2fa.unwrap_or(false),
            updated_at: Timestamp::now(),
        };
        let audit = self.audit(
            "role.created",
            Some(actor),
            json!({"role": role.id, "scope": role.scope}),
        );
        self.commit(vec![Change::UpsertRole(role.clone()), audit])
            .await?;
        // Applied here at once too (the bus event may arrive a moment later).
        self.authz.role_changed(&role, false);
        Ok(role)
    }

    /// `roles.update`: renames or re-describes a role. Needs `access-permissions`; a protected
    /// (built-in) role keeps its name and scope, and names stay unique.
    pub async fn update_role(&self, actor: &User, role_id: &str, new: NewRole) -> CoreResult<Role> {
        if !self.authz.has(actor, "access-permissions") {
            return Err(not_allowed());
        }
        let roles = self.roles().await?;
        let mut role = roles
            .iter()
            .find(|r| r.id == role_id)
            .cloned()
            .ok_or_else(role_not_found)?;
        let name = new.name.trim();
        let name = if name.is_empty() {
            role.name.clone()
        } else {
            name.to_string()
        };
        let scope = new.scope.unwrap_or_else(|| role.scope.clone());
        if role.protected && (name != role.name || scope != role.scope) {
            return Err(CoreError::bad("error-role-protected", "Role is protected"));
        }
        if !["Users", "Subscriptions"].contains(&scope.as_str()) {
            return Err(CoreError::bad("error-invalid-scope", "Invalid scope"));
        }
        if scope != role.scope && self.role_in_use(&role).await? {
            // Holders sit on users or on subscriptions by scope; moving them is not offered.
            return Err(CoreError::bad(
                "error-role-in-use",
                "Cannot change the scope of a role in use",
            ));
        }
        if roles.iter().any(|r| r.id != role.id && r.name == name) {
            return Err(CoreError::bad(
                "error-duplicate-role-names-not-allowed",
                "Role name already exists",
            ));
        }
        role.name = name;
        role.scope = scope;
        if let Some(description) = new.description {
            role.description = description;
        }
        if let Some(mandatory2fa) = new.mandatory2fa {
            role.mandatory2fa = mandatory2fa;
        }
        role.updated_at = Timestamp::now();
        let audit = self.audit(
            "role.updated",
            Some(actor),
            json!({"role": role.id, "name": role.name, "scope": role.scope}),
        );
        self.commit(vec![Change::UpsertRole(role.clone()), audit])
            .await?;
        Ok(role)
    }

    /// `roles.addUserToRole`: needs `access-permissions` or `assign-roles` (and
    /// `assign-admin-role` for `admin`). `room_id` scopes a `Subscriptions` role to a room.
    pub async fn add_user_to_role(
        &self,
        actor: &User,
        role_id: &str,
        username: &str,
        room_id: Option<&str>,
    ) -> CoreResult<Role> {
        if !self.authz.has(actor, "access-permissions") && !self.authz.has(actor, "assign-roles") {
            return Err(not_allowed());
        }
        let role = self
            .roles()
            .await?
            .into_iter()
            .find(|r| r.id == role_id)
            .ok_or_else(|| CoreError::bad("error-role-not-found", "Role not found"))?;
        if role.id == "admin" && !self.authz.has(actor, "assign-admin-role") {
            return Err(CoreError::bad(
                "error-action-not-allowed",
                "Assigning admin is not allowed",
            ));
        }
        let mut user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or_else(|| CoreError::bad("error-user-not-found", "User not found"))?;
        let already = CoreError::bad("error-user-already-in-role", "User already in role");
        let change = match (role.scope.as_str(), room_id) {
            ("Subscriptions", Some(rid)) => {
                let mut sub = self
                    .store
                    .subscription(rid, &user.id)
                    .await?
                    .ok_or_else(|| {
                        CoreError::bad("error-invalid-user", "User is not part of given room")
                    })?;
                if sub.has_role(&role.id) {
                    return Err(already);
                }
                sub.roles.push(role.id.clone());
                sub.updated_at = Timestamp::now();
                Change::UpdateSubscription(sub)
            }
            ("Subscriptions", None) => {
                return Err(CoreError::bad(
                    "error-invalid-arguments",
                    "Invalid arguments",
                ));
            }
            _ => {
                if user.has_role(&role.id) {
                    return Err(already);
                }
                user.roles.push(role.id.clone());
                user.updated_at = Timestamp::now();
                Change::UpdateUser(user.clone())
            }
        };
        self.commit_user_role(actor, &role, &user, username, room_id, change, true)
            .await?;
        Ok(role)
    }

    /// Commits `change`, which gives (`added`) or takes `role`, with its audit entry, then
    /// announces it.
    #[allow(clippy::too_many_arguments)]
    async fn commit_user_role(
        &self,
        actor: &User,
        role: &Role,
        user: &User,
        username: &str,
        room_id: Option<&str>,
        change: Change,
        added: bool,
    ) -> CoreResult<()> {
        let audit = self.audit(
            if added {
                "role.user_added"
            } else {
                "role.user_removed"
            },
            Some(actor),
            json!({"role": role.id, "username": username, "roomId": room_id}),
        );
        self.commit(vec![change, audit]).await?;
        self.publish_user_role(role, user, room_id, added);
        Ok(())
    }

    /// Announces a role given or taken on `stream-roles`.
    pub(crate) fn publish_user_role(
        &self,
        role: &Role,
        user: &User,
        scope: Option<&str>,
        added: bool,
    ) {
        self.publish(Event::UserRole {
            role_id: role.id.clone(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            scope: scope
                .filter(|_| role.scope == "Subscriptions")
                .map(str::to_string),
            added,
        });
    }

    /// `roles.removeUserFromRole`: needs `access-permissions`; the last admin stays.
    pub async fn remove_user_from_role(
        &self,
        actor: &User,
        role_id: &str,
        username: &str,
        room_id: Option<&str>,
    ) -> CoreResult<Role> {
        self.authz.require(actor, "access-permissions", None)?;
        let mut user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or_else(|| {
                CoreError::bad("error-invalid-user", "There is no user with this username")
            })?;
        let role = self
            .roles()
            .await?
            .into_iter()
            .find(|r| r.id == role_id)
            .ok_or_else(role_not_found)?;
        let not_in = || CoreError::bad("error-user-not-in-role", "User is not in this role");
        let change = match (role.scope.as_str(), room_id) {
            ("Subscriptions", Some(rid)) => {
                let mut sub = self
                    .store
                    .subscription(rid, &user.id)
                    .await?
                    .filter(|s| s.has_role(&role.id))
                    .ok_or_else(not_in)?;
                sub.roles.retain(|r| *r != role.id);
                sub.updated_at = Timestamp::now();
                Change::UpdateSubscription(sub)
            }
            _ => {
                if !user.has_role(&role.id) {
                    return Err(not_in());
                }
                if role.id == "admin" && self.store.count_users_with_role("admin").await? <= 1 {
                    return Err(CoreError::bad(
                        "error-admin-required",
                        "You need to have at least one admin",
                    ));
                }
                user.roles.retain(|r| *r != role.id);
                user.updated_at = Timestamp::now();
                Change::UpdateUser(user.clone())
            }
        };
        self.commit_user_role(actor, &role, &user, username, room_id, change, false)
            .await?;
        Ok(role)
    }

    /// `roles.delete`: removes an unused custom role. Needs `access-permissions`.
    pub async fn delete_role(&self, actor: &User, key: &str) -> CoreResult<()> {
        self.authz.require(actor, "access-permissions", None)?;
        let role = self
            .role_by_id_or_name(key)
            .await?
            .ok_or_else(role_not_found)?;
        if role.protected {
            return Err(CoreError::bad(
                "error-role-protected",
                "Cannot delete a protected role",
            ));
        }
        if self.role_in_use(&role).await? {
            return Err(CoreError::bad(
                "error-role-in-use",
                "Cannot delete role because it's in use",
            ));
        }
        let audit = self.audit("role.deleted", Some(actor), json!({"role": role.id}));
        self.commit(vec![Change::DeleteRole(role.id.clone()), audit])
            .await?;
        self.publish(Event::Role {
            role: Box::new(role),
            removed: true,
        });
        Ok(())
    }

    async fn role_in_use(&self, role: &Role) -> CoreResult<bool> {
        if role.scope != "Subscriptions" {
            return Ok(self.store.count_users_with_role(&role.id).await? > 0);
        }
        let (rooms, _) = self
            .store
            .list_rooms(&RoomQuery::default(), Page::ALL)
            .await?;
        for room in rooms {
            let (subs, _) = self
                .store
                .subscriptions_of_room(&room.id, Page::ALL)
                .await?;
            if subs.iter().any(|s| s.has_role(&role.id)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
