//! `docs/problem-codes.md` lists every code a plan's problems and warnings
//! carry, generated from `flipover::planner::Code` (so CI gates can rely on
//! the list); `UPDATE_EXPECTED=1` rewrites it.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use flipover::planner::Code;

const HEADER: &str = "# Problem and warning codes

Every problem and warning in a plan carries one of these codes: in the text
form as `error[CODE]:` / `warning[CODE]:`, in the plan JSON as `code`, in
Markdown in backticks. Codes are stable: one is never renamed or reused, new
ones are only added. A CI gate can allow or deny by code, e.g. with jq:

```sh
flipover plan --json | jq -e '[.problems[].code] | index(\"errant-gtid\") | not'
```

This file is generated from `core/src/planner/codes.rs` by
`UPDATE_EXPECTED=1 cargo test --test problem_codes_doc`.

| code | meaning |
|---|---|
";

fn expected() -> String {
    let mut text = HEADER.to_string();
    for code in Code::ALL {
        let _ = writeln!(text, "| `{}` | {} |", code.as_str(), code.meaning());
    }
    text
}

#[test]
fn the_docs_list_every_problem_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/problem-codes.md");
    let want = expected();
    if common::expected::updating("UPDATE_DOCS") {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/problem-codes.md is stale: UPDATE_EXPECTED=1 cargo test --test problem_codes_doc"
    );
}
