//! The Debian packages of `packaging/build-deb`: built from the debug
//! binaries `cargo build --workspace --bins` left (uncompressed, to keep the
//! test fast), their contents checked with dpkg-deb, then installed with
//! dpkg on this machine (CI runs as root), tried, and purged again so the
//! machine is as it was.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const UNIT: &str = "/lib/systemd/system/flipover-agent.service";
const PACKAGES: [&str; 2] = ["flipover-agent", "flipover"];

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    run(Command::new("dpkg-deb").args(args).arg(deb))
}

/// Paths in the package, without the leading "./" (`dpkg-deb -c`).
fn contents(deb: &Path) -> BTreeSet<String> {
    dpkg_deb(&["-c"], deb)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(|path| path.trim_start_matches('.').to_string())
        .collect()
}

fn build_packages(out: &Path) -> (PathBuf, PathBuf) {
    let started = Instant::now();
    let stdout = run(Command::new(format!("{ROOT}/packaging/build-deb"))
        .args(["--profile", "debug", "--compression", "none", "--out"])
        .arg(out));
    eprintln!("packages built in {:.1?}", started.elapsed());
    let debs: Vec<PathBuf> = stdout.lines().map(PathBuf::from).collect();
    let find = |name: &str| {
        debs.iter()
            .find(|p| {
                let file = p.file_name().unwrap().to_str().unwrap();
                file.starts_with(&format!("{name}_{VERSION}_"))
            })
            .unwrap_or_else(|| panic!("no {name} package in {debs:?}"))
            .clone()
    };
    (find("flipover"), find("flipover-agent"))
}

#[test]
fn debian_packages_build_install_and_purge() {
    let out = tempfile::tempdir().unwrap();
    let (cli_deb, agent_deb) = build_packages(out.path());

    // The command line: binaries, man pages, completions.
    let files = contents(&cli_deb);
    for path in [
        "/usr/bin/flipover",
        "/usr/bin/flipover-cmd",
        "/usr/share/man/man1/flipover.1.gz",
        "/usr/share/man/man1/flipover-apply.1.gz",
        "/usr/share/bash-completion/completions/flipover",
        "/usr/share/zsh/vendor-completions/_flipover",
        "/usr/share/fish/vendor_completions.d/flipover.fish",
        "/usr/share/doc/flipover/copyright",
    ] {
        assert!(files.contains(path), "{path} not in {files:#?}");
    }
    assert!(!files.iter().any(|f| f.starts_with("/etc/")), "{files:#?}");
    let depends = dpkg_deb(&["-f"], &cli_deb);
    assert!(depends.contains("Package: flipover\n"), "{depends}");
    assert!(
        depends.contains(&format!("Version: {VERSION}\n")),
        "{depends}"
    );

    // The agent: binary, unit, default config as a conffile, maintainer scripts.
    let files = contents(&agent_deb);
    for path in [
        "/usr/bin/flipover-agent",
        UNIT,
        "/etc/flipover/agent.toml",
        "/usr/share/man/man1/flipover-agent.1.gz",
    ] {
        assert!(files.contains(path), "{path} not in {files:#?}");
    }
    let depends = run(Command::new("dpkg-deb")
        .arg("-f")
        .arg(&agent_deb)
        .arg("Depends"));
    assert!(depends.starts_with("libc6 (>= "), "{depends}");
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&agent_deb)
        .arg(control.path()));
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert_eq!(conffiles, "/etc/flipover/agent.toml\n");
    for script in ["postinst", "prerm", "postrm"] {
        let mode = std::fs::metadata(control.path().join(script))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{script} is executable");
    }
    let info = dpkg_deb(&["-I"], &agent_deb);
    assert!(info.contains("Recommends: mariadb-backup"), "{info}");

    install_and_try(&cli_deb, &agent_deb);
}

/// dpkg -i, the installed files at work, dpkg --purge.
fn install_and_try(cli_deb: &Path, agent_deb: &Path) {
    if !nix::unistd::Uid::effective().is_root() {
        // CI runs as root; there, skipping would hide a broken package.
        assert!(
            std::env::var_os("CI").is_none(),
            "installing the packages needs root, and CI must run it"
        );
        eprintln!("not root: the packages were built and checked but not installed");
        return;
    }
    for package in PACKAGES {
        let status = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(
            !status.contains("installed") || status.contains("not-installed"),
            "{package} is already installed ({status}): this test would remove it"
        );
    }
    let _purge = Purge;
    // No fsync per file: the packages are removed again within seconds.
    dpkg(&[
        "--force-unsafe-io".as_ref(),
        "-i".as_ref(),
        cli_deb.as_os_str(),
        agent_deb.as_os_str(),
    ]);

    let version = run(Command::new("/usr/bin/flipover-agent").arg("--version"));
    assert_eq!(version.trim(), format!("flipover-agent {VERSION}"));
    let version = run(Command::new("/usr/bin/flipover").arg("--version"));
    assert_eq!(version.trim(), format!("flipover {VERSION}"));

    // The unit as shipped: read from disk (systemd does not run here).
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(format!("{ROOT}/packaging/flipover-agent.service")).unwrap()
    );
    for line in [
        "ExecStart=/usr/bin/flipover-agent --config /etc/flipover/agent.toml\n",
        "Restart=on-failure\n",
        "User=root\n",
        "KillMode=mixed\n",
        "WantedBy=multi-user.target\n",
    ] {
        assert!(unit.contains(line), "{line:?} not in\n{unit}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        run(Command::new("systemd-analyze").args(["verify", "--man=no", UNIT]));
    }

    // postinst made a root-only token; the packaged config and the
    // installed binary start an agent that accepts it.
    let token_file = Path::new("/etc/flipover/agent.token");
    let mode = std::fs::metadata(token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
    let token = std::fs::read_to_string(token_file).unwrap();
    assert!(token.trim().len() >= 40, "a random token: {token:?}");
    installed_agent_answers(token.trim());

    dpkg(&[
        "--purge".as_ref(),
        "flipover-agent".as_ref(),
        "flipover".as_ref(),
    ]);
    for gone in [
        "/usr/bin/flipover",
        "/usr/bin/flipover-agent",
        UNIT,
        "/etc/flipover",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is left after purge");
    }
}

/// `dpkg ARGS`, waiting while another dpkg or apt holds its lock (the
/// machine may be installing something else meanwhile).
fn dpkg(args: &[&std::ffi::OsStr]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let output = Command::new("dpkg")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            return;
        }
        if !stderr.contains("lock") || Instant::now() > deadline {
            panic!(
                "dpkg {args:?} failed: {}\n{stderr}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// /usr/bin/flipover-agent with /etc/flipover/agent.toml (the unit's command
/// line), moved to a loopback port and a temporary my.cnf.
fn installed_agent_answers(token: &str) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("my.cnf");
    std::fs::write(
        &conf,
        format!(
            "[mysqld]\ndatadir={d}/data\npid-file={d}/mysqld.pid\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let ip = Ipv4Addr::new(127, 43, 0, 5);
    let port = TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut agent = Command::new("/usr/bin/flipover-agent")
        .args(["--config", "/etc/flipover/agent.toml", "--listen"])
        .arg(format!("{ip}:{port}"))
        .arg("--stream-listen")
        .arg(format!("{ip}:0"))
        .arg("--conf")
        .arg(&conf)
        // No certificates in this test: plaintext, asked for explicitly.
        .arg("--insecure")
        .env_remove("FLIPOVER_AGENT_TOKEN")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = flipover_agent::client::AgentClient::new(
        &format!("http://{ip}:{port}"),
        token,
        Duration::from_secs(5),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let facts = loop {
        match runtime.block_on(client.facts()) {
            Ok(facts) => break Ok(facts),
            Err(e) if Instant::now() > deadline => break Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let _ = agent.kill();
    let _ = agent.wait();
    let facts = facts.expect("the installed agent answers with the generated token");
    assert_eq!(facts.service.as_deref(), Some("mariadb"), "from agent.toml");
    assert_eq!(
        facts.conf_path,
        conf.display().to_string(),
        "command line wins"
    );
}

/// Purges the packages even when an assertion failed midway.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .arg("--purge")
            .args(PACKAGES)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
