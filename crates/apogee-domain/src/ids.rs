//! Rocket.Chat identifiers: 17 characters of Meteor's `Random.id()` alphabet.

use rand::Rng;

const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";

/// A new 17-character id, as Meteor's `Random.id()` makes them.
pub fn random_id() -> String {
    random_string(17)
}

/// A new 17-character id over the same alphabet that sorts by creation time: 8 characters of
/// milliseconds since 1970 (the alphabet is in ASCII order, so later ids sort after earlier
/// ones; 8 characters last until the year 4600) and 9 random ones (about 52 bits).
///
/// For records inserted at a high rate (messages): a random key lands on a random leaf of its
/// index, so each insert dirties a page of its own that the commit then writes; keys that grow
/// with time fill the same rightmost leaf, shared by everything one commit inserts.
pub fn time_ordered_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    time_ordered_id_at(millis)
}

fn time_ordered_id_at(millis: u128) -> String {
    let base = ALPHABET.len() as u128;
    let mut id = vec![0u8; 8];
    let mut rest = millis;
    for slot in id.iter_mut().rev() {
        *slot = ALPHABET[(rest % base) as usize];
        rest /= base;
    }
    let mut id = String::from_utf8(id).expect("the alphabet is ASCII");
    id.push_str(&random_string(9));
    id
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
    fn time_ordered_ids_sort_by_their_millisecond() {
        let now = 1_795_400_000_000;
        let ids: Vec<String> = [0, now, now + 1, now + 56, 55u128.pow(8) - 1]
            .into_iter()
            .map(time_ordered_id_at)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids[0].starts_with("22222222"));
        for id in ids.iter().chain([&time_ordered_id()]) {
            assert_eq!(id.len(), 17);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
        }
        assert_ne!(time_ordered_id(), time_ordered_id());
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
