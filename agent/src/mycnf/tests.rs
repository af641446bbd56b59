//! Unit tests for the my.cnf parser, using real files in temp dirs.

use super::*;
use std::fs;
use tempfile::TempDir;

/// Writes `files` (name, content) into a fresh temp dir and loads the first.
fn load(files: &[(&str, &str)]) -> (TempDir, Result<MyCnf, MyCnfError>) {
    let dir = TempDir::new().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
    }
    let result = MyCnf::load(&dir.path().join(files[0].0));
    (dir, result)
}

fn opts(text: &str) -> BTreeMap<String, Option<String>> {
    let (_dir, cnf) = load(&[("my.cnf", text)]);
    cnf.unwrap().server_options(Some((10, 11)))
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn merges_all_server_groups() {
    let o = opts(
        "[mysqld]\nport=3307\n[server]\nserver-id=4\n[mariadb]\nreport_host=db1\n\
         [mariadbd]\nbinlog_format=ROW\n[client-server]\nsocket=/tmp/s.sock\n",
    );
    assert_eq!(o.get("port"), Some(&some("3307")));
    assert_eq!(o.get("server_id"), Some(&some("4")));
    assert_eq!(o.get("report_host"), Some(&some("db1")));
    assert_eq!(o.get("binlog_format"), Some(&some("ROW")));
    assert_eq!(o.get("socket"), Some(&some("/tmp/s.sock")));
}

#[test]
fn non_server_groups_are_ignored() {
    let o = opts("[client]\nport=1\n[mysqldump]\nquick\n[mysqld_safe]\nnice=0\n[mysqld]\nport=2\n");
    assert_eq!(o.get("port"), Some(&some("2")));
    assert!(!o.contains_key("quick"));
    assert!(!o.contains_key("nice"));
}

#[test]
fn versioned_groups_match_only_their_version() {
    let text = "[mysqld]\nport=1\n[mariadb-10.11]\nport=2\n[mysqld-8.0]\nserver_id=9\n[mariadbd-10.11]\nreport_host=v\n";
    let (_dir, cnf) = load(&[("my.cnf", text)]);
    let cnf = cnf.unwrap();
    let o = cnf.server_options(Some((10, 11)));
    assert_eq!(o.get("port"), Some(&some("2")));
    assert_eq!(o.get("report_host"), Some(&some("v")));
    assert!(!o.contains_key("server_id"));
    let o = cnf.server_options(Some((8, 0)));
    assert_eq!(o.get("port"), Some(&some("1")));
    assert_eq!(o.get("server_id"), Some(&some("9")));
    assert!(!cnf.server_options(None).contains_key("report_host"));
}

#[test]
fn later_occurrence_wins_across_groups() {
    let o = opts("[mysqld]\nport=1\n[server]\nport=2\n[mysqld]\nport=3\n[client]\nport=4\n");
    assert_eq!(o.get("port"), Some(&some("3")));
}

#[test]
fn dash_underscore_and_case_are_alike() {
    let o = opts("[mysqld]\nServer-Id=5\nlog_slave-updates\nbind-address = 127.0.0.1\n");
    assert_eq!(o.get("server_id"), Some(&some("5")));
    assert_eq!(o.get("log_slave_updates"), Some(&None));
    assert_eq!(o.get("bind_address"), Some(&some("127.0.0.1")));
}

#[test]
fn flags_and_spacing_forms() {
    let o = opts("[mysqld]\nlog-bin\nport = 3306\nserver_id=7\n  report_host   =   h1   \n");
    assert_eq!(o.get("log_bin"), Some(&None));
    assert_eq!(o.get("port"), Some(&some("3306")));
    assert_eq!(o.get("server_id"), Some(&some("7")));
    assert_eq!(o.get("report_host"), Some(&some("h1")));
}

#[test]
fn loose_prefix_is_stripped() {
    let o = opts("[mysqld]\nloose-server-id=3\nloose_report_host=x\nloose-skip-log-bin\n");
    assert_eq!(o.get("server_id"), Some(&some("3")));
    assert_eq!(o.get("report_host"), Some(&some("x")));
}

#[test]
fn skip_log_bin_removes_log_bin_and_later_log_bin_restores_it() {
    let o = opts("[mysqld]\nlog-bin=mysql-bin\nskip-log-bin\n");
    assert!(!o.contains_key("log_bin"));
    let o = opts("[mysqld]\ndisable-log-bin\n[mariadb]\nlog_bin=b\n");
    assert_eq!(o.get("log_bin"), Some(&some("b")));
}

#[test]
fn skip_enable_booleans_and_real_skip_options() {
    let o =
        opts("[mysqld]\nskip-log-slave-updates\nenable-log_replica_updates\nskip-name-resolve\n");
    // The alias puts both spellings on one key; the later `enable` wins.
    assert_eq!(o.get("log_slave_updates"), Some(&None));
    assert_eq!(o.get("skip_name_resolve"), Some(&None));
    let o = opts("[mysqld]\nlog-slave-updates\nskip-log-slave-updates\n");
    assert_eq!(o.get("log_slave_updates"), Some(&some("0")));
}

#[test]
fn quotes_and_escapes() {
    let o = opts(
        "[mysqld]\nreport_host=\"a b\"\nbind_address='x#y'\nsocket=\"/tmp/a\\sb\"\nlog_error=c:\\q\\\\d\n",
    );
    assert_eq!(o.get("report_host"), Some(&some("a b")));
    assert_eq!(o.get("bind_address"), Some(&some("x#y")));
    assert_eq!(o.get("socket"), Some(&some("/tmp/a b")));
    assert_eq!(o.get("log_error"), Some(&some("c:\\q\\d")));
}

#[test]
fn comments_full_line_and_trailing() {
    let o = opts("# top\n; also a comment\n[mysqld] \n  # indented\nport=3306 # the port\nlog-bin # flag\n;port=1\n");
    assert_eq!(o.get("port"), Some(&some("3306")));
    assert_eq!(o.get("log_bin"), Some(&None));
}

#[test]
fn include_and_includedir_relative_sorted() {
    let (_dir, cnf) = load(&[
        (
            "etc/my.cnf",
            "[mysqld]\nport=1\n!include extra/one.cnf\n!includedir conf.d\n",
        ),
        ("etc/extra/one.cnf", "[mysqld]\nport=2\nserver_id=1\n"),
        ("etc/conf.d/20-b.cnf", "[mysqld]\nserver_id=20\n"),
        ("etc/conf.d/10-a.cnf", "[mysqld]\nserver_id=10\nport=10\n"),
        ("etc/conf.d/99-ignored.txt", "[mysqld]\nserver_id=99\n"),
    ]);
    let o = cnf.unwrap().server_options(None);
    assert_eq!(o.get("port"), Some(&some("10")));
    assert_eq!(o.get("server_id"), Some(&some("20")));
}

#[test]
fn options_after_include_stay_in_including_group_order() {
    // Lines after an include still win over the included ones.
    let (_dir, cnf) = load(&[
        ("my.cnf", "[mysqld]\n!include inc.cnf\nport=5\n"),
        ("inc.cnf", "[mysqld]\nport=4\n"),
    ]);
    assert_eq!(
        cnf.unwrap().server_options(None).get("port"),
        Some(&some("5"))
    );
}

#[test]
fn include_loop_is_an_error() {
    let (_dir, cnf) = load(&[
        ("a.cnf", "[mysqld]\n!include b.cnf\n"),
        ("b.cnf", "[mysqld]\n!include a.cnf\n"),
    ]);
    let err = cnf.unwrap_err();
    assert!(matches!(err, MyCnfError::IncludeLoop { .. }), "{err}");
    assert!(err.to_string().contains("include loop"), "{err}");
}

#[test]
fn missing_include_is_skipped_but_missing_includedir_fails() {
    let o = opts("[mysqld]\n!include /nonexistent/x.cnf\nport=1\n");
    assert_eq!(o.get("port"), Some(&some("1")));
    let (_dir, cnf) = load(&[("my.cnf", "[mysqld]\n!includedir /nonexistent/dir\n")]);
    assert!(matches!(cnf.unwrap_err(), MyCnfError::Io { .. }));
}

#[test]
fn option_outside_group_is_a_syntax_error() {
    let (_dir, cnf) = load(&[("my.cnf", "port=1\n[mysqld]\n")]);
    let err = cnf.unwrap_err();
    assert!(matches!(err, MyCnfError::Syntax { line: 1, .. }), "{err}");
}

#[test]
fn settings_with_defaults_and_relative_paths() {
    let (_dir, cnf) = load(&[(
        "my.cnf",
        "[mysqld]\ndatadir=/data/db\nlog-bin\nserver-id=12\nlog-slave-updates=OFF\nport=3310\npid-file=db.pid\n",
    )]);
    let s = cnf.unwrap().settings(Some((10, 11)));
    assert_eq!(s.log_bin, some(""));
    assert_eq!(s.server_id, Some(12));
    assert_eq!(s.log_slave_updates, Some(false));
    assert_eq!(s.port, Some(3310));
    assert_eq!(s.pid_file, some("/data/db/db.pid"));
    assert_eq!(s.socket, some(DEFAULT_SOCKET));
    assert_eq!(s.report_host, None);
}

#[test]
fn settings_default_datadir_and_pid_file() {
    let (_dir, cnf) = load(&[("my.cnf", "[mysqld]\nlog_bin=mysql-bin\nskip-log-bin\n")]);
    let cnf = cnf.unwrap();
    assert_eq!(cnf.datadir(None), PathBuf::from(DEFAULT_DATADIR));
    let s = cnf.settings(None);
    assert_eq!(s.log_bin, None);
    let pid = s.pid_file.unwrap();
    assert!(
        pid.starts_with("/var/lib/mysql/") && pid.ends_with(".pid"),
        "{pid}"
    );
}

#[test]
fn booleans_and_versions() {
    for on in ["1", "ON", "true", "Yes"] {
        assert_eq!(parse_bool(Some(on)), Some(true));
    }
    for off in ["0", "off", "FALSE", "no"] {
        assert_eq!(parse_bool(Some(off)), Some(false));
    }
    assert_eq!(parse_bool(None), Some(true));
    assert_eq!(parse_bool(Some("maybe")), None);
    assert_eq!(parse_version("10.11.19-MariaDB-0+deb12u1"), Some((10, 11)));
    assert_eq!(parse_version("8.0.36"), Some((8, 0)));
    assert_eq!(parse_version("garbage"), None);
}

#[test]
fn host_file_names_follow_the_server() {
    assert_eq!(host_file_name("db1", "pid"), "db1.pid");
    assert_eq!(host_file_name("db1.example.com", "pid"), "db1.example.pid");
}
