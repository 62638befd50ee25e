//! A room's state where its history forks: the state before an event with several
//! predecessors, and the room's current state when it has several forward extremities, are
//! resolved with ruma-state-res's `resolve` (state resolution v2, with the v12 rules — the
//! conflicted state subgraph — as ruma implements them) instead of "the last state event
//! applied wins". Everything resolution reads must be stored: an event we do not hold makes
//! resolution give up (the caller keeps its old behaviour).

use crate::Federation;
use crate::pdu::Pdu;
use apogee_core::store::FederationStateEntry;
use ruma::events::StateEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::state_res::utils::event_id_set::EventIdSet;
use ruma::state_res::{Event, StateMap, resolve};
use ruma::{EventId, OwnedEventId};
use std::collections::{HashMap, HashSet, VecDeque};

/// Resolution reads at most this many events (state and auth chains).
const MAX_EVENTS: usize = 20_000;

impl Federation {
    /// The state after an event: the state before it, with it if it is a state event.
    pub(crate) async fn state_after(&self, event_id: &str) -> Option<Vec<FederationStateEntry>> {
        self.core
            .federation_state_after(event_id)
            .await
            .ok()
            .flatten()
    }

    /// The state before an event whose predecessors are `prevs`: the state after the one, or
    /// the resolution of the states after each. `None` when some predecessor's state is not
    /// known (an outlier, or an event we never had).
    pub(crate) async fn state_from_prevs(
        &self,
        rules: &RoomVersionRules,
        prevs: &[String],
    ) -> Option<Vec<FederationStateEntry>> {
        let mut maps = Vec::new();
        for prev in prevs {
            maps.push(self.state_after(prev).await?);
        }
        self.resolve_states(rules, maps, None).await
    }

    /// Resolves state maps (state resolution v2). One map, or equal maps, are their own
    /// answer. `arriving` is an event not stored yet that the maps may hold (the one being
    /// received: the state after it is resolved before it is kept).
    pub(crate) async fn resolve_states(
        &self,
        rules: &RoomVersionRules,
        mut maps: Vec<Vec<FederationStateEntry>>,
        arriving: Option<&Pdu>,
    ) -> Option<Vec<FederationStateEntry>> {
        for m in &mut maps {
            m.sort();
        }
        maps.dedup();
        if maps.len() <= 1 {
            return maps.pop();
        }
        let v2 = rules.state_res.v2_rules()?;
        // Every event of the maps and of their auth chains, parsed once.
        let mut events: HashMap<OwnedEventId, Pdu> = HashMap::new();
        let mut queue: VecDeque<String> =
            maps.iter().flatten().map(|e| e.event_id.clone()).collect();
        if let Some(pdu) = arriving {
            queue.extend(pdu.auth_event_ids().iter().map(|a| a.to_string()));
            events.insert(pdu.event_id.clone(), pdu.clone());
        }
        while let Some(id) = queue.pop_front() {
            if events.len() >= MAX_EVENTS {
                tracing::info!("state resolution: too many events");
                return None;
            }
            let Ok(owned) = OwnedEventId::try_from(id.as_str()) else {
                continue;
            };
            if events.contains_key(&owned) {
                continue;
            }
            let Some(pdu) = self.stored_pdu(&id).await else {
                tracing::info!(event_id = %id, "state resolution: an event is missing");
                return None;
            };
            queue.extend(pdu.auth_event_ids().iter().map(|a| a.to_string()));
            events.insert(owned, pdu);
        }
        let state_maps: Vec<StateMap<OwnedEventId>> = maps
            .iter()
            .map(|m| {
                m.iter()
                    .filter_map(|e| {
                        Some((
                            (
                                StateEventType::from(e.event_type.as_str()),
                                e.state_key.clone(),
                            ),
                            OwnedEventId::try_from(e.event_id.as_str()).ok()?,
                        ))
                    })
                    .collect()
            })
            .collect();
        let auth_chains: Vec<EventIdSet<OwnedEventId>> = state_maps
            .iter()
            .map(|m| auth_chain(m.values(), &events))
            .collect();
        let resolved = resolve(
            &rules.authorization,
            v2,
            &state_maps,
            auth_chains,
            |id: &EventId| events.get(id).cloned(),
            |conflicted: &StateMap<Vec<OwnedEventId>>| {
                Some(conflicted_subgraph(conflicted, &events))
            },
        );
        match resolved {
            Ok(map) => {
                let mut entries: Vec<FederationStateEntry> = map
                    .into_iter()
                    .map(|((kind, key), id)| FederationStateEntry {
                        event_type: kind.to_string(),
                        state_key: key,
                        event_id: id.to_string(),
                    })
                    .collect();
                entries.sort();
                Some(entries)
            }
            Err(e) => {
                tracing::info!(error = %e, "state resolution failed");
                None
            }
        }
    }
}

/// The auth ancestors of `ids` (not the events themselves).
fn auth_chain<'a>(
    ids: impl Iterator<Item = &'a OwnedEventId>,
    events: &HashMap<OwnedEventId, Pdu>,
) -> EventIdSet<OwnedEventId> {
    let mut chain = EventIdSet::new();
    let mut queue: Vec<OwnedEventId> = ids
        .filter_map(|id| events.get(id))
        .flat_map(|e| e.auth_event_ids().iter().cloned())
        .collect();
    while let Some(id) = queue.pop() {
        if chain.insert(id.clone())
            && let Some(e) = events.get(&id)
        {
            queue.extend(e.auth_events().cloned());
        }
    }
    chain
}

/// The v12 conflicted state subgraph: the events of the auth DAG that are both an ancestor
/// of some conflicted event and a descendant of some conflicted event (conflicted events
/// included).
fn conflicted_subgraph(
    conflicted: &StateMap<Vec<OwnedEventId>>,
    events: &HashMap<OwnedEventId, Pdu>,
) -> EventIdSet<OwnedEventId> {
    let targets: HashSet<&OwnedEventId> = conflicted.values().flatten().collect();
    // Ancestors of conflicted events, themselves included.
    let mut ancestors: HashSet<OwnedEventId> = HashSet::new();
    let mut queue: Vec<OwnedEventId> = targets.iter().map(|id| (*id).clone()).collect();
    while let Some(id) = queue.pop() {
        if ancestors.insert(id.clone())
            && let Some(e) = events.get(&id)
        {
            queue.extend(e.auth_events().cloned());
        }
    }
    // Of those, the ones that reach a conflicted event through their own auth events.
    let mut reaches: HashMap<OwnedEventId, bool> = HashMap::new();
    fn reaches_target(
        id: &OwnedEventId,
        events: &HashMap<OwnedEventId, Pdu>,
        targets: &HashSet<&OwnedEventId>,
        memo: &mut HashMap<OwnedEventId, bool>,
    ) -> bool {
        if let Some(r) = memo.get(id) {
            return *r;
        }
        memo.insert(id.clone(), false);
        let r = targets.contains(id)
            || events.get(id).is_some_and(|e| {
                e.auth_event_ids()
                    .iter()
                    .any(|a| reaches_target(a, events, targets, memo))
            });
        memo.insert(id.clone(), r);
        r
    }
    ancestors
        .into_iter()
        .filter(|id| reaches_target(id, events, &targets, &mut reaches))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{auth_chain, conflicted_subgraph};
    use crate::identity::{Identity, new_signing_key};
    use crate::pdu::{Pdu, sign_new};
    use apogee_domain::Timestamp;
    use ruma::OwnedEventId;
    use ruma::events::StateEventType;
    use ruma::state_res::StateMap;
    use serde_json::json;
    use std::collections::HashMap;

    /// Builds a v11 state event with the given auth events (signed; the checks do not run).
    fn event(me: &Identity, kind: &str, key: &str, auth: &[&Pdu], n: i64) -> Pdu {
        let rules = crate::pdu::rules_for("11").unwrap();
        let auth: Vec<String> = auth.iter().map(|p| p.event_id.to_string()).collect();
        let object = serde_json::from_value(json!({"type": kind, "state_key": key,
            "room_id": "!r:ours.test", "sender": "@alice:ours.test", "content": {"n": n},
            "prev_events": [], "auth_events": auth, "depth": n}))
        .unwrap();
        sign_new(object, &rules, me, Timestamp::now()).unwrap()
    }

    /// The subgraph holds the conflicted events and what lies on auth paths between them
    /// (dave's join between join rules J1 and his later update D2), not their common
    /// ancestors (create, alice's join, power levels).
    #[test]
    fn conflicted_subgraph_is_what_lies_between_conflicted_events() {
        let me =
            Identity::from_stored("ours.test".try_into().unwrap(), &new_signing_key()).unwrap();
        let c = event(&me, "m.room.create", "", &[], 1);
        let m = event(&me, "m.room.member", "@alice:ours.test", &[&c], 2);
        let p = event(&me, "m.room.power_levels", "", &[&c, &m], 3);
        let j1 = event(&me, "m.room.join_rules", "", &[&c, &m, &p], 4);
        let j2 = event(&me, "m.room.join_rules", "", &[&c, &m, &p], 5);
        let d = event(&me, "m.room.member", "@dave:ours.test", &[&c, &p, &j1], 6);
        let d2 = event(&me, "m.room.member", "@dave:ours.test", &[&c, &p, &d], 7);
        let d_other = event(&me, "m.room.member", "@dave:ours.test", &[&c, &p, &j2], 8);
        let events: HashMap<OwnedEventId, Pdu> = [&c, &m, &p, &j1, &j2, &d, &d2, &d_other]
            .into_iter()
            .map(|e| (e.event_id.clone(), e.clone()))
            .collect();
        let mut conflicted: StateMap<Vec<OwnedEventId>> = StateMap::new();
        conflicted.insert(
            (StateEventType::RoomJoinRules, String::new()),
            vec![j1.event_id.clone(), j2.event_id.clone()],
        );
        conflicted.insert(
            (StateEventType::RoomMember, "@dave:ours.test".into()),
            vec![d2.event_id.clone(), d_other.event_id.clone()],
        );
        let sub = conflicted_subgraph(&conflicted, &events);
        for e in [&j1, &j2, &d, &d2, &d_other] {
            assert!(sub.contains(&e.event_id), "{} missing", e.event_id);
        }
        for e in [&c, &m, &p] {
            assert!(
                !sub.contains(&e.event_id),
                "{} is only an ancestor",
                e.event_id
            );
        }
        assert_eq!(sub.len(), 5);

        // An auth chain is the ancestors, not the events themselves.
        let chain = auth_chain([&d2.event_id].into_iter(), &events);
        for e in [&c, &m, &p, &j1, &d] {
            assert!(chain.contains(&e.event_id));
        }
        assert!(!chain.contains(&d2.event_id) && !chain.contains(&j2.event_id));
    }
}
