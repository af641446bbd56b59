//! `flipover certs init`: a CA, a certificate per host of a topology file
//! (or per --host) and flipover's client certificate, keys private, never
//! overwriting without --force.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::flipover;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn certs_init_makes_a_ca_and_certificates_for_every_host() {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.toml");
    std::fs::write(
        &topology,
        "[cluster]\nname = \"shop\"\n\n[servers.db1]\nhost = \"db1.example\"\n\n\
         [servers.db2]\nhost = \"10.0.0.2\"\nsource = \"db1\"\n\n\
         [servers.db3]\nhost = \"10.0.0.2\"\nport = 3307\nagent_port = 9836\nstream_port = 9837\nsource = \"db1\"\n",
    )
    .unwrap();
    let out = dir.path().join("tls");
    let args = [
        "certs",
        "init",
        out.to_str().unwrap(),
        "-f",
        topology.to_str().unwrap(),
        "--host",
        "127.0.0.9",
    ];
    let output = flipover(&args);
    assert!(output.status.success(), "{output:?}");
    let listed = String::from_utf8(output.stdout).unwrap();
    let mut names: Vec<&str> = listed
        .lines()
        .map(|l| Path::new(l).file_name().unwrap().to_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "10.0.0.2-key.pem",
            "10.0.0.2.pem",
            "127.0.0.9-key.pem",
            "127.0.0.9.pem",
            "ca-key.pem",
            "ca.pem",
            "db1.example-key.pem",
            "db1.example.pem",
            "flipover-key.pem",
            "flipover.pem",
        ]
    );
    assert_eq!(mode(&out.join("db1.example-key.pem")), 0o600);
    assert_eq!(mode(&out.join("ca-key.pem")), 0o600);
    assert_eq!(mode(&out.join("flipover-key.pem")), 0o600);
    assert_eq!(mode(&out.join("ca.pem")), 0o644);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--client-ca") && stderr.contains("client_cert ="),
        "{stderr}"
    );

    // Again: refused, nothing changes.
    let ca = std::fs::read(out.join("ca.pem")).unwrap();
    let output = flipover(&args);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to overwrite") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out.join("ca.pem")).unwrap(), ca);
    // --force makes a new CA.
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(flipover(&forced).status.success());
    assert_ne!(std::fs::read(out.join("ca.pem")).unwrap(), ca);

    // Neither -f nor --host: a usage error.
    let output = flipover(&["certs", "init", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
}
