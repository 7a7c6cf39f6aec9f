//! OpenSC's `pkcs11-tool` as an independent PKCS#11 client (Debian package `opensc`). The test
//! fails, never skips, when the tool is missing: CI installs it.

use crate::common::*;
use cryptoki::object::Attribute;
use std::path::Path;
use std::process::{Command, Output};

const TOOL: &str = "pkcs11-tool";
const TOOL_SO_PIN: &str = "12345678";
const TOOL_USER_PIN: &str = "87654321";
const SM4_VALUE: &[u8; 16] = b"0123456789abcdef";

fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new(TOOL)
        .arg("--module")
        .arg(module_path())
        .args(args)
        .env("GMCHAIN_SOFTTOKEN_DIR", dir)
        .env_remove("GMCHAIN_SOFTTOKEN_SLOTS")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {TOOL} ({e}): install OpenSC (Debian: apt-get install opensc)")
        })
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tool(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{TOOL} {args:?} failed:\n{text}");
    text
}

#[test]
fn pkcs11_tool_as_an_independent_client() {
    let test = test_path(module_path!(), "pkcs11_tool_as_an_independent_client");
    if is_child(&test) {
        // Role "keygen": a cryptoki client puts an SM2 key pair with CKA_ID 01 on the token.
        let p11 = load();
        let slot = p11.get_slots_with_token().unwrap()[0];
        let s = p11.open_rw_session(slot).unwrap();
        s.login(cryptoki::session::UserType::User, Some(&pin(TOOL_USER_PIN)))
            .unwrap();
        s.generate_key_pair(
            &mech(CKM_GM_SM2_KEY_PAIR_GEN),
            &[
                Attribute::Token(true),
                Attribute::Id(vec![1]),
                Attribute::Label(b"tool-key".to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Id(vec![1]),
                Attribute::Label(b"tool-key".to_vec()),
            ],
        )
        .unwrap();
        // Two SM4 keys with known values: 02 sensitive (the default), 03 explicitly readable,
        // the control that shows pkcs11-tool really asks the token for CKA_VALUE.
        for (id, readable) in [(2u8, false), (3u8, true)] {
            s.create_object(&[
                class(cryptoki::object::ObjectClass::SECRET_KEY),
                Attribute::KeyType(sm4_type()),
                Attribute::Token(true),
                Attribute::Id(vec![id]),
                Attribute::Label(format!("sm4-{id}").into_bytes()),
                Attribute::Value(SM4_VALUE.to_vec()),
                Attribute::Sensitive(!readable),
                Attribute::Extractable(readable),
            ])
            .unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let slots = ok(d, &["--list-slots"]);
    assert!(slots.contains("gmchain"), "{slots}");
    assert!(slots.contains("uninitialized"), "{slots}");

    // Vendor mechanisms show as hex codes; the list must be there and complete.
    let mechs = ok(d, &["--list-mechanisms", "--slot", "0"]).to_lowercase();
    for code in ["80474d10", "80474d12", "80474d20", "80474d35"] {
        assert!(mechs.contains(code), "{code} missing from:\n{mechs}");
    }

    ok(
        d,
        &[
            "--slot",
            "0",
            "--init-token",
            "--label",
            "t",
            "--so-pin",
            TOOL_SO_PIN,
        ],
    );
    ok(
        d,
        &[
            "--slot",
            "0",
            "--init-pin",
            "--pin",
            TOOL_USER_PIN,
            "--so-pin",
            TOOL_SO_PIN,
        ],
    );
    let slots = ok(d, &["--list-slots"]);
    assert!(slots.contains("token label        : t"), "{slots}");
    assert!(slots.contains("PIN initialized"), "{slots}");

    let out = spawn(&test, d, &[]).wait_with_output().unwrap();
    check_child(&test, out);

    let objects = ok(
        d,
        &[
            "--slot",
            "0",
            "--login",
            "--pin",
            TOOL_USER_PIN,
            "--list-objects",
        ],
    );
    assert!(objects.contains("Private Key Object"), "{objects}");
    assert!(objects.contains("Public Key Object"), "{objects}");
    assert!(objects.contains("tool-key"), "{objects}");
    // Without login the private key is invisible.
    let public_only = ok(d, &["--slot", "0", "--list-objects"]);
    assert!(!public_only.contains("Private Key Object"), "{public_only}");
    assert!(public_only.contains("Public Key Object"), "{public_only}");

    // The listing shows what the token enforces for the generated private key.
    assert!(
        objects.contains("Access:     sensitive, always sensitive, never extractable, local"),
        "{objects}"
    );

    // Reading the private key's value yields nothing. pkcs11-tool 0.23 refuses private keys
    // on its own side ("reading private keys not (yet) supported", exit status 0) without
    // asking the token, so the exit status proves nothing here: the check is that no key
    // material was written. The token's own refusal is shown below with secret keys, for
    // which pkcs11-tool does ask for CKA_VALUE.
    let login = ["--slot", "0", "--login", "--pin", TOOL_USER_PIN];
    let read = |ty: &str, id: &str, out: &Path| {
        let mut args = login.to_vec();
        args.extend([
            "--read-object",
            "--type",
            ty,
            "--id",
            id,
            "--output-file",
            out.to_str().unwrap(),
        ]);
        tool(d, &args)
    };
    let out_file = d.join("privkey.bin");
    let r = read("privkey", "01", &out_file);
    let leaked = std::fs::read(&out_file).unwrap_or_default();
    assert!(
        leaked.is_empty(),
        "{} bytes of a private key were written:\n{}",
        leaked.len(),
        String::from_utf8_lossy(&r.stderr)
    );
    // The control: an extractable, non-sensitive key reads back through the same path...
    let control = d.join("sm4-3.bin");
    let r = read("secrkey", "03", &control);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(std::fs::read(&control).unwrap(), SM4_VALUE);
    // ... and a sensitive one is refused by the token (CKR_ATTRIBUTE_SENSITIVE).
    let refused = d.join("sm4-2.bin");
    let r = read("secrkey", "02", &refused);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "reading a sensitive key must fail");
    assert!(stderr.contains("CKR_ATTRIBUTE_SENSITIVE"), "{stderr}");
    assert!(std::fs::read(&refused).unwrap_or_default().is_empty());

    // A wrong PIN is refused.
    let wrong = tool(
        d,
        &[
            "--slot",
            "0",
            "--login",
            "--pin",
            "00000000",
            "--list-objects",
        ],
    );
    assert!(!wrong.status.success());
}
