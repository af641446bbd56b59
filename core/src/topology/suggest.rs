//! "Did you mean …?" for misspelt keys and server names.

/// How alike two words must be (normalised Damerau-Levenshtein, 1.0 = equal) to
/// be offered as a correction. High enough that `db4` does not suggest `db1`,
/// low enough that `soruce`, `hots` and `passwd` find `source`, `host` and `password`.
const MIN_SIMILARITY: f64 = 0.7;

/// The candidate closest to `word`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let similarity =
                strsim::normalized_damerau_levenshtein(&word, &candidate.to_ascii_lowercase());
            (candidate, similarity)
        })
        .filter(|(_, similarity)| *similarity >= MIN_SIMILARITY)
        // On a tie, the first candidate wins so that the result is deterministic.
        .fold(
            None,
            |best: Option<(&str, f64)>, (candidate, similarity)| match best {
                Some((_, best_similarity)) if best_similarity >= similarity => best,
                _ => Some((candidate, similarity)),
            },
        )
        .map(|(candidate, _)| candidate)
}

/// `` `a`, `b` and `c` `` for hints that list what is allowed.
pub fn list_in_backticks<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| format!("`{item}`")).collect();
    match items.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let keys = ["host", "port", "source", "clone_from", "promotable"];
        assert_eq!(did_you_mean("soruce", keys), Some("source"));
        assert_eq!(did_you_mean("hots", keys), Some("host"));
        assert_eq!(did_you_mean("clone-from", keys), Some("clone_from"));
        assert_eq!(did_you_mean("Port", keys), Some("port"));
        assert_eq!(did_you_mean("weight", keys), None);
        assert_eq!(did_you_mean("db4", ["db1", "db2", "db3"]), None);
        assert_eq!(did_you_mean("db_2", ["db1", "db2", "db3"]), Some("db2"));
    }

    #[test]
    fn lists_items() {
        assert_eq!(list_in_backticks(["a"]), "`a`");
        assert_eq!(list_in_backticks(["a", "b", "c"]), "`a`, `b` and `c`");
    }
}
