//! SQL as text: result rows as name → text maps, string literals quoted the
//! way every session flipover opens reads them.
//!
//! Architecture Invariant: names and secrets reach SQL only through
//! [`quote_literal`], and every session runs [`SESSION_SETUP`] first (the
//! `flipover` crate's `db::connect` does), so the quoting is right whatever
//! the server's sql_mode.

use std::collections::BTreeMap;

/// One result row, column name → value as text (`None` for SQL NULL).
pub type TextRow = BTreeMap<String, Option<String>>;

/// Run on every connection: takes `NO_BACKSLASH_ESCAPES` out of the
/// session's sql_mode, so that the session reads `\` the way
/// [`quote_literal`] writes it whatever the server's global sql_mode is
/// (with the mode on, `'a\\b'` would be read as two backslashes and a
/// password given to CHANGE MASTER would silently change).
pub const SESSION_SETUP: &str = "SET SESSION sql_mode = \
     REPLACE(REPLACE(REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES,', ''), \
     ',NO_BACKSLASH_ESCAPES', ''), 'NO_BACKSLASH_ESCAPES', '')";

/// Quotes a string literal for SQL: `'` and `\` escaped, as MySQL and MariaDB
/// read them in every session flipover opens (see [`SESSION_SETUP`]).
pub fn quote_literal(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for ch in text.chars() {
        match ch {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            '\0' => quoted.push_str("\\0"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_literals_with_quotes_and_backslashes() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b"), r"'a\\b'");
        assert_eq!(quote_literal("é; \"x\""), "'é; \"x\"'");
        assert_eq!(quote_literal("r'e\"p\\l; ü\0"), "'r''e\"p\\\\l; ü\\0'");
    }

    /// Reads one string literal at the start of `sql` as the server's lexer
    /// does (backslash escapes on): its value and the text after it.
    fn read_literal(sql: &str) -> Option<(String, &str)> {
        let mut chars = sql.char_indices();
        if chars.next()?.1 != '\'' {
            return None;
        }
        let mut value = String::new();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '\\' => match chars.next()?.1 {
                    '0' => value.push('\0'),
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '\'' if sql[i + 1..].starts_with('\'') => {
                    chars.next();
                    value.push('\'');
                }
                '\'' => return Some((value, &sql[i + 1..])),
                other => value.push(other),
            }
        }
        None
    }

    proptest::proptest! {
        /// Whatever the text, its literal reads back as exactly that text
        /// and ends where the quoting ends: nothing can leak into the SQL.
        #[test]
        fn every_text_survives_quoting(text in "(.|['\"\\\\;\0 ü])*") {
            let quoted = quote_literal(&text);
            let statement = format!("{quoted}, MASTER_USE_GTID=slave_pos");
            let (value, rest) = read_literal(&statement).expect("a closed literal");
            proptest::prop_assert_eq!(value, text);
            proptest::prop_assert_eq!(rest, ", MASTER_USE_GTID=slave_pos");
        }
    }
}
