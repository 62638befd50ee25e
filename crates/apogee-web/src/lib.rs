//! The browser client, built from `web/` by this crate's build script and embedded in the binary.
//! `apogee-rc`'s `web_client` module serves it; this crate only holds the bytes.

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

#[cfg(test)]
mod tests {
    use super::FILES;

    #[test]
    fn the_build_has_an_index_page() {
        let index = FILES.iter().find(|(path, _, _)| *path == "/index.html");
        let (_, body, gz) = index.expect("index.html is embedded");
        assert!(!body.is_empty());
        assert!(!gz.is_empty(), "HTML is stored gzipped too");
    }
}
