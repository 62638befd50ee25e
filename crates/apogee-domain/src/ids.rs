//! Rocket.Chat identifiers: 17 characters of Meteor's `Random.id()` alphabet.

use rand::Rng;

const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";

/// A new 17-character id, as Meteor's `Random.id()` makes them.
pub fn random_id() -> String {
    random_string(17)
}

/// A 17-character id made from `bytes` (a digest of something that names the record), so the
/// same record always gets the same id: inserting it twice conflicts instead of duplicating.
pub fn id_from_digest(bytes: &[u8; 32]) -> String {
    bytes[..17]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A random string over Meteor's id alphabet, `len` characters long.
pub fn random_string(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A direct-message room id: the participants' ids sorted and concatenated (one id for a self-DM).
pub fn dm_room_id(user_ids: &[&str]) -> String {
    let mut ids: Vec<&str> = user_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids.concat()
}

/// Whether `id` could be a client-chosen record id: non-empty, bounded, and free of characters
/// that would need escaping anywhere they travel.
pub fn is_acceptable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_use_meteor_alphabet() {
        let id = random_id();
        assert_eq!(id.len(), 17);
        assert!(id.bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(random_id(), id);
    }

    #[test]
    fn dm_ids_are_sorted_concatenations() {
        assert_eq!(
            dm_room_id(&["rocket.cat", "fZ3bvXC72pobjFPLJ"]),
            "fZ3bvXC72pobjFPLJrocket.cat"
        );
        assert_eq!(dm_room_id(&["b", "a"]), dm_room_id(&["a", "b"]));
        assert_eq!(dm_room_id(&["a", "a"]), "a");
    }

    #[test]
    fn client_ids_are_checked() {
        assert!(is_acceptable_id("a1b2c3d4e5f6"));
        assert!(!is_acceptable_id(""));
        assert!(!is_acceptable_id("a b"));
        assert!(!is_acceptable_id(&"x".repeat(65)));
    }
}
