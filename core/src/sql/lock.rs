//! The cluster lock's SQL: a named `GET_LOCK` held by one session per server
//! for the whole apply (it dies with its connection, so a killed apply never
//! leaves it behind).

use super::quote_literal;

/// The lock's name: per cluster. MySQL limits names to 64 characters
/// (characters, not bytes: a cluster name may be any text).
pub fn name(cluster: &str) -> String {
    format!("flipover:{cluster}").chars().take(64).collect()
}

/// Takes the lock without waiting: column `got` is 1 when this session has it.
pub fn try_acquire(name: &str) -> String {
    format!("SELECT GET_LOCK({}, 0) AS got", quote_literal(name))
}

/// Who holds the lock: columns `id`, `user`, `host`, `time`.
pub fn holder(name: &str) -> String {
    format!(
        "SELECT p.id, p.user, p.host, p.time FROM information_schema.processlist p \
         WHERE p.id = IS_USED_LOCK({})",
        quote_literal(name)
    )
}

/// Gives back every lock this session holds.
pub const RELEASE_ALL: &str = "SELECT RELEASE_ALL_LOCKS()";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_are_cut_at_64_characters_not_bytes() {
        assert_eq!(name("shop"), "flipover:shop");
        let long = name(&"ü".repeat(100));
        assert_eq!(long.chars().count(), 64);
        assert!(long.starts_with("flipover:üü"));
        assert_eq!(
            try_acquire("flipover:it's"),
            "SELECT GET_LOCK('flipover:it''s', 0) AS got"
        );
    }
}
