//! True and false positives of every detector.

use super::*;

/// The texts a single detector finds in `text`.
fn found(kind: Kind, text: &str) -> Vec<&str> {
    Detectors::only(kind)
        .find_all(text.as_bytes())
        .iter()
        .map(|f| {
            assert_eq!(f.kind, kind);
            &text[f.start..f.end]
        })
        .collect()
}

fn hits(kind: Kind, text: &str) {
    assert_eq!(
        found(kind, text).len(),
        1,
        "{kind:?} should find one in {text:?}"
    );
}

fn misses(kind: Kind, text: &str) {
    assert!(
        found(kind, text).is_empty(),
        "{kind:?} should find nothing in {text:?}: {:?}",
        found(kind, text)
    );
}

#[test]
fn cards() {
    assert_eq!(found(Kind::Card, "4111111111111111"), ["4111111111111111"]);
    assert_eq!(
        found(Kind::Card, "paid with 4111 1111 1111 1111 today"),
        ["4111 1111 1111 1111"]
    );
    assert_eq!(
        found(Kind::Card, "card: 5555-5555-5555-4444."),
        ["5555-5555-5555-4444"]
    );
    assert_eq!(
        found(Kind::Card, "amex 3782 822463 10005"),
        ["3782 822463 10005"]
    );
    assert_eq!(found(Kind::Card, "378282246310005"), ["378282246310005"]);
    hits(Kind::Card, "6011111111111117");
    hits(Kind::Card, "(4012888888881881)");
    // Two cards in one note.
    assert_eq!(
        found(Kind::Card, "4111111111111111,5555555555554444").len(),
        2
    );
    // A grouped card followed by a year.
    assert_eq!(
        found(Kind::Card, "4111 1111 1111 1111 2025"),
        ["4111 1111 1111 1111"]
    );
    // A 16-digit order number that fails Luhn stays visible.
    misses(Kind::Card, "order 4111111111111112");
    misses(Kind::Card, "1234567812345678");
    // Luhn-valid but not a card network, or one repeated digit.
    misses(Kind::Card, "0000000000000000");
    misses(Kind::Card, "7992739871300000"[..16].trim());
    misses(Kind::Card, "9999999999999995");
    // Glued to letters (hex ids, hashes) or part of a longer number.
    misses(Kind::Card, "tx4111111111111111");
    misses(Kind::Card, "41111111111111110000");
    misses(Kind::Card, "3.4111111111111111");
    misses(Kind::Card, "4111111111111111.5");
    // Too short, mixed separators, odd groups.
    misses(Kind::Card, "411111111111");
    misses(Kind::Card, "4111-1111 1111-1111");
    misses(Kind::Card, "41 11 11 11 11 11 11 11");
    misses(Kind::Card, "2024-01-15 10:00:00");
}

#[test]
fn luhn_reference() {
    let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
    assert!(card::luhn(&digits("79927398713")));
    assert!(!card::luhn(&digits("79927398710")));
}

#[test]
fn emails() {
    assert_eq!(
        found(Kind::Email, "alice@example.com"),
        ["alice@example.com"]
    );
    assert_eq!(
        found(Kind::Email, "mail John.Doe+tag@mail.example.co.uk."),
        ["John.Doe+tag@mail.example.co.uk"]
    );
    assert_eq!(found(Kind::Email, "<a_b@x-y.io>, c@d.org").len(), 2);
    misses(Kind::Email, "@mention");
    misses(Kind::Email, "user@localhost");
    misses(Kind::Email, "a@1.2");
    misses(Kind::Email, "foo@");
    misses(Kind::Email, "x @ y.com");
    misses(Kind::Email, "price: 5 @ 3.50");
}

#[test]
fn ssns() {
    assert_eq!(found(Kind::Ssn, "123-45-6789"), ["123-45-6789"]);
    assert_eq!(found(Kind::Ssn, "ssn 078 05 1120 on file"), ["078 05 1120"]);
    misses(Kind::Ssn, "000-12-3456");
    misses(Kind::Ssn, "666-12-3456");
    misses(Kind::Ssn, "912-12-3456");
    misses(Kind::Ssn, "123-00-4567");
    misses(Kind::Ssn, "123-45-0000");
    misses(Kind::Ssn, "123456789");
    misses(Kind::Ssn, "123-45 6789");
    misses(Kind::Ssn, "1123-45-6789");
    misses(Kind::Ssn, "123-45-67890");
    misses(Kind::Ssn, "9-123-45-6789");
    misses(Kind::Ssn, "2024-01-15");
}

#[test]
fn phones() {
    assert_eq!(found(Kind::Phone, "+1-415-555-0100"), ["+1-415-555-0100"]);
    assert_eq!(
        found(Kind::Phone, "call (415) 555-0100 now"),
        ["(415) 555-0100"]
    );
    assert_eq!(found(Kind::Phone, "415-555-0100"), ["415-555-0100"]);
    assert_eq!(found(Kind::Phone, "415.555.0100"), ["415.555.0100"]);
    assert_eq!(found(Kind::Phone, "1 415 555 0100"), ["1 415 555 0100"]);
    assert_eq!(found(Kind::Phone, "+44 20 7946 0958"), ["+44 20 7946 0958"]);
    assert_eq!(found(Kind::Phone, "tel:+14155550100"), ["+14155550100"]);
    assert_eq!(
        found(Kind::Phone, "+1 (415) 555-0100"),
        ["+1 (415) 555-0100"]
    );
    misses(Kind::Phone, "4155550100");
    misses(Kind::Phone, "2024-01-15");
    misses(Kind::Phone, "order 12345678901");
    misses(Kind::Phone, "115-555-0100");
    misses(Kind::Phone, "415-155-0100");
    misses(Kind::Phone, "id 415-555-0100-7");
    misses(Kind::Phone, "3+1234567");
    misses(Kind::Phone, "+1234567");
    misses(Kind::Phone, "version 1.2.3");
    misses(Kind::Phone, "192.168.100.200");
    misses(Kind::Phone, "x+14155550100");
}

#[test]
fn ibans() {
    assert_eq!(
        found(Kind::Iban, "DE89370400440532013000"),
        ["DE89370400440532013000"]
    );
    assert_eq!(
        found(Kind::Iban, "pay to DE89 3704 0044 0532 0130 00 by Friday"),
        ["DE89 3704 0044 0532 0130 00"]
    );
    hits(Kind::Iban, "GB82 WEST 1234 5698 7654 32");
    hits(Kind::Iban, "NL91ABNA0417164300");
    // Bad checksum, wrong length for the country, unknown country, glued.
    misses(Kind::Iban, "DE89370400440532013001");
    misses(Kind::Iban, "DE8937040044053201300");
    misses(Kind::Iban, "ZZ89370400440532013000");
    misses(Kind::Iban, "XDE89370400440532013000");
    misses(Kind::Iban, "DE89370400440532013000X");
    misses(Kind::Iban, "de89370400440532013000");
}

#[test]
fn aws_keys() {
    assert_eq!(
        found(Kind::AwsKey, "id=AKIAIOSFODNN7EXAMPLE"),
        ["AKIAIOSFODNN7EXAMPLE"]
    );
    hits(Kind::AwsKey, "ASIAY34FZKBOKMUTVV7A");
    misses(Kind::AwsKey, "AKIAIOSFODNN7EXAMPL");
    misses(Kind::AwsKey, "AKIAIOSFODNN7EXAMPLEX");
    misses(Kind::AwsKey, "XAKIAIOSFODNN7EXAMPLE");
    misses(Kind::AwsKey, "AIDAIOSFODNN7EXAMPLE");
    misses(Kind::AwsKey, "AKIAiosfodnn7example");
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

#[test]
fn jwts() {
    assert_eq!(found(Kind::Jwt, JWT), [JWT]);
    let text = format!("Authorization: Bearer {JWT}\n");
    assert_eq!(found(Kind::Jwt, &text), [JWT]);
    // alg none: empty signature.
    let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    assert_eq!(found(Kind::Jwt, none), [none]);
    // Header without alg, not JSON, only two segments.
    misses(Kind::Jwt, "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln");
    misses(Kind::Jwt, "eyJub3QganNvbg.eyJzdWIiOiJ4In0.c2ln");
    misses(
        Kind::Jwt,
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    );
    misses(
        Kind::Jwt,
        "xeyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln",
    );
}

#[test]
fn pem_blocks() {
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    let text = format!("key:\n{key}\ntrailer");
    assert_eq!(found(Kind::Pem, &text), [key]);
    let open = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA";
    assert_eq!(found(Kind::Pem, open), [open]);
    hits(
        Kind::Pem,
        "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----",
    );
    misses(
        Kind::Pem,
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----",
    );
    misses(
        Kind::Pem,
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----",
    );
}

#[test]
fn secrets() {
    assert_eq!(found(Kind::Secret, "password=hunter22"), ["hunter22"]);
    assert_eq!(
        found(Kind::Secret, "db_password = 'correct horse'"),
        ["correct horse"]
    );
    assert_eq!(
        found(Kind::Secret, r#"{"client_secret": "s3cr3t-v4lue"}"#),
        ["s3cr3t-v4lue"]
    );
    assert_eq!(
        found(
            Kind::Secret,
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        ),
        ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]
    );
    assert_eq!(
        found(
            Kind::Secret,
            "GET /x?access_token=9f86d081884c7d659a2feaa0c55ad015&page=2"
        ),
        ["9f86d081884c7d659a2feaa0c55ad015"]
    );
    assert_eq!(
        found(Kind::Secret, "apiKey: Zx81kQ2mP0vLr7TtY3sW"),
        ["Zx81kQ2mP0vLr7TtY3sW"]
    );
    assert_eq!(
        found(Kind::Secret, "x-api-key:Zx81kQ2mP0vLr7TtY3sW"),
        ["Zx81kQ2mP0vLr7TtY3sW"]
    );
    assert_eq!(
        found(Kind::Secret, "Authorization: Bearer Zx81kQ2mP0vLr7TtY3sW"),
        ["Zx81kQ2mP0vLr7TtY3sW"]
    );
    // Low-entropy or short values of weak keys, non-keywords, placeholders.
    misses(Kind::Secret, "primary_key=id");
    misses(Kind::Secret, "sort_key=created_at_descending_order");
    misses(Kind::Secret, "monkey=Zx81kQ2mP0vLr7TtY3sW");
    misses(Kind::Secret, "token=${API_TOKEN}");
    misses(Kind::Secret, "password=****");
    misses(Kind::Secret, "password=[REDACTED]");
    misses(Kind::Secret, "password: null");
    misses(Kind::Secret, "pwd=abc");
    misses(Kind::Secret, "https://example.com/a?b=c");
    misses(Kind::Secret, "at 12:30:00");
    misses(Kind::Secret, "a == b");
    // A value stops before a backslash, so escapes around it survive.
    assert_eq!(found(Kind::Secret, r#"password=abcd\"ef"#), ["abcd"]);
}

#[test]
fn entropy_values() {
    assert!(secret::entropy(b"aaaaaaaa") < 0.01);
    assert!((secret::entropy(b"abcd") - 2.0).abs() < 1e-9);
}

#[test]
fn overlapping_findings_keep_the_longest_first() {
    let text = format!("token={JWT} card 4111111111111111 mail a@b.io");
    let found = Detectors::ALL.find_all(text.as_bytes());
    let kinds: Vec<Kind> = found.iter().map(|f| f.kind).collect();
    assert_eq!(kinds.len(), 3, "{found:?}");
    assert!(kinds.contains(&Kind::Card) && kinds.contains(&Kind::Email));
    for w in found.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
}

#[test]
fn nothing_found_means_no_allocation() {
    let mut out = Vec::new();
    Detectors::ALL.find(b"Alice Smith, 42 Main Street, order 1234", &mut out);
    assert!(out.is_empty() && out.capacity() == 0);
}

#[test]
fn switches() {
    let mut s = DetectorSwitches::default();
    assert_eq!(Detectors::from_switches(&s), Detectors::ALL);
    s.email = false;
    let d = Detectors::from_switches(&s);
    assert!(!d.contains(Kind::Email) && d.contains(Kind::Card));
    assert!(d.find_all(b"a@example.com").is_empty());
}
