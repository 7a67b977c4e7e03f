//! A throwaway OpenLDAP server for tests: a temp directory with a `slapd.conf` (mdb backend,
//! the core/cosine/inetorgperson/nis schemas, the memberof overlay), a self-signed certificate
//! generated here for `ldaps://` and StartTLS, listening on free high loopback ports
//! (127.0.0.1 only), loaded with [`DATA`] through `ldapadd`, and killed when dropped.
//!
//! Shared by the connector's own tests and the core's end-to-end tests (`#[path]` include);
//! it needs only `std`, `rcgen` and `tempfile`. Debian: `apt-get install slapd ldap-utils`.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where Debian's `slapd` package puts the server.
pub const SLAPD: &str = "/usr/sbin/slapd";
/// The directory's suffix.
pub const BASE_DN: &str = "dc=example,dc=com";
/// Where people live.
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=com";
/// The root DN (used only to load the data).
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
/// Its password.
pub const ROOT_PASSWORD: &str = "root secret";
/// The service account the connector searches with.
pub const SERVICE_DN: &str = "cn=switchboard,ou=services,dc=example,dc=com";
/// Its password.
pub const SERVICE_PASSWORD: &str = "service secret";
/// Number of `galNN` filler people (more than one page at the tests' page size).
pub const GAL_PEOPLE: usize = 23;

/// People: (uid, password, cn, displayName, mail, phone).
pub const PEOPLE: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "bob",
        "bob's secret",
        "Bob Builder",
        "Bob the Builder",
        "bob@example.com",
        "+1 555 0100",
    ),
    (
        "carol",
        "carol pw",
        "Carol Singer",
        "Carol Singer",
        "carol@example.com",
        "+1 555 0101",
    ),
    (
        "dave",
        "dave pw",
        "Dave Null",
        "Dave Null",
        "dave.null@example.com",
        "",
    ),
];

/// The LDIF loaded at start: base, services, people, `GAL_PEOPLE` filler entries and two
/// groups (`staff`: bob and carol; `admins`: bob), whose membership the memberof overlay
/// mirrors into each person's `memberOf`.
pub fn data() -> String {
    let mut out = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=services,{BASE_DN}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {SERVICE_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
         cn: switchboard\nuserPassword: {SERVICE_PASSWORD}\n\n"
    );
    for (uid, pw, cn, display, mail, phone) in PEOPLE {
        let sn = cn.rsplit(' ').next().unwrap_or(cn);
        out.push_str(&format!(
            "dn: uid={uid},{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {sn}\n\
             displayName: {display}\nmail: {mail}\nuserPassword: {pw}\n"
        ));
        if !phone.is_empty() {
            out.push_str(&format!("telephoneNumber: {phone}\n"));
        }
        out.push('\n');
    }
    for i in 1..=GAL_PEOPLE {
        out.push_str(&format!(
            "dn: uid=gal{i:02},{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: gal{i:02}\n\
             cn: Gal Person {i:02}\nsn: Person\nmail: gal{i:02}@example.com\nuserPassword: gal pw\n\n"
        ));
    }
    out.push_str(&format!(
        "dn: cn=staff,ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: staff\n\
         member: uid=bob,{PEOPLE_DN}\nmember: uid=carol,{PEOPLE_DN}\n\n\
         dn: cn=admins,ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: admins\n\
         member: uid=bob,{PEOPLE_DN}\n"
    ));
    out
}

/// A running throwaway slapd.
#[derive(Debug)]
pub struct Slapd {
    child: Child,
    dir: tempfile::TempDir,
    /// Port of `ldap://127.0.0.1` (StartTLS offered).
    pub ldap_port: u16,
    /// Port of `ldaps://127.0.0.1`.
    pub ldaps_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         moduleload memberof\n\
         pidfile {d}/slapd.pid\n\
         argsfile {d}/slapd.args\n\
         TLSCertificateFile {d}/cert.pem\n\
         TLSCertificateKeyFile {d}/key.pem\n\
         database mdb\n\
         maxsize 33554432\n\
         suffix \"{BASE_DN}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw \"{ROOT_PASSWORD}\"\n\
         directory {d}/db\n\
         overlay memberof\n\
         memberof-group-oc groupOfNames\n\
         memberof-member-ad member\n\
         memberof-memberof-ad memberOf\n\
         access to attrs=userPassword by self write by anonymous auth by * none\n\
         access to * by users read by * none\n"
    )
}

impl Slapd {
    /// Start a server loaded with [`data`]. Panics with a clear message when slapd or
    /// ldapadd is missing or the server does not come up.
    pub fn start() -> Slapd {
        assert!(
            Path::new(SLAPD).is_file(),
            "{SLAPD} is missing: the LDAP tests start their own OpenLDAP server; install it with \
             `apt-get install slapd ldap-utils` (Debian), as .ci/run does"
        );
        let dir = tempfile::tempdir().expect("temp dir for slapd");
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("self-signed certificate");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("slapd.conf"), config(dir.path())).unwrap();

        // A port picked here may be taken by someone else before slapd binds it: retry.
        let mut last_log = String::new();
        for _ in 0..5 {
            let (ldap_port, ldaps_port) = (free_port(), free_port());
            if ldap_port == ldaps_port {
                continue;
            }
            let log = std::fs::File::create(dir.path().join("slapd.log")).unwrap();
            let child = Command::new(SLAPD)
                .arg("-f")
                .arg(dir.path().join("slapd.conf"))
                .arg("-h")
                .arg(format!(
                    "ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"
                ))
                // Stay in the foreground (so the child is the server) and log to stderr.
                .args(["-d", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {SLAPD}: {e}"));
            let mut child = child;
            if wait_listening(&mut child, [ldap_port, ldaps_port]) {
                let slapd = Slapd {
                    child,
                    dir,
                    ldap_port,
                    ldaps_port,
                };
                slapd.load(&data());
                return slapd;
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(dir.path().join("slapd.log")).unwrap_or_default();
        }
        panic!("slapd did not start; its log:\n{last_log}");
    }

    /// Add entries with `ldapadd` as the root DN.
    pub fn load(&self, ldif: &str) {
        self.tool("ldapadd", ldif)
    }

    /// Change entries with `ldapmodify` as the root DN (LDIF with `changetype: modify`).
    pub fn modify(&self, ldif: &str) {
        self.tool("ldapmodify", ldif)
    }

    /// Set a person's password, as an admin would in the directory.
    pub fn set_password(&self, uid: &str, password: &str) {
        self.modify(&format!(
            "dn: uid={uid},{PEOPLE_DN}\nchangetype: modify\nreplace: userPassword\nuserPassword: {password}\n"
        ))
    }

    fn tool(&self, tool: &str, ldif: &str) {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {tool} ({e}): install it with `apt-get install ldap-utils`")
            });
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ldap://127.0.0.1:PORT` (plain, StartTLS available).
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// The server's self-signed certificate (PEM): the CA file clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The temp directory (config, database, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Poll until every port accepts connections (false if slapd exited or 10 s passed).
fn wait_listening(child: &mut Child, ports: [u16; 2]) -> bool {
    for _ in 0..200 {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if ports
            .iter()
            .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
