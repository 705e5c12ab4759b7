//! Normalisation of domains, emails, URLs and tags (docs/CONTRACT.md §5.1).
//!
//! Every function returns the canonical form or a short reason the input was refused; callers
//! attach the field name when they turn the reason into a `field_value_invalid` error.

/// Longest `string` value, in characters.
pub const MAX_STRING_CHARS: usize = 1_000;
/// Longest `long_text` value, in characters.
pub const MAX_LONG_TEXT_CHARS: usize = 100_000;
/// Most tags on one record.
pub const MAX_TAGS: usize = 100;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 100;

/// A normalising function: the canonical form, or why the input was refused.
pub type Normaliser = fn(&str) -> Result<String, &'static str>;

/// Normalises a domain: trim, lower-case, strip scheme, user info, port, path, query,
/// fragment, a leading `www.` and a trailing dot, convert Unicode to IDNA ASCII, and require a
/// hostname with at least one dot that is not an IP literal.
///
/// `https://WWW.Acme.com/about` → `acme.com`. A domain may be given as the URL it is taken
/// from, so the input is bounded like a URL ([`MAX_DOMAIN_INPUT_CHARS`]), the result like a
/// hostname (253).
pub fn domain(input: &str) -> Result<String, &'static str> {
    if input.chars().count() > MAX_DOMAIN_INPUT_CHARS {
        return Err("a domain, or the URL it is taken from, is at most 2048 characters");
    }
    let mut s = input.trim();
    if let Some(i) = s.find("://") {
        s = &s[i + 3..];
    } else if let Some(rest) = s.strip_prefix("//") {
        s = rest;
    }
    // Authority ends at the first path, query or fragment delimiter.
    if let Some(i) = s.find(['/', '?', '#']) {
        s = &s[..i];
    }
    if let Some(i) = s.rfind('@') {
        s = &s[i + 1..];
    }
    if s.starts_with('[') {
        return Err("an IP address is not a domain");
    }
    if let Some(i) = s.rfind(':') {
        s = &s[..i];
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err("empty domain");
    }
    let ascii = idna::domain_to_ascii(s).map_err(|_| "not a valid domain name")?;
    let ascii = ascii.strip_prefix("www.").map(str::to_owned).unwrap_or(ascii);
    if ascii.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("an IP address is not a domain");
    }
    if !ascii.contains('.') {
        return Err("a domain needs at least one dot");
    }
    let labels_ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !labels_ok || ascii.len() > 253 {
        return Err("not a valid domain name");
    }
    // A numeric top-level label is an IP-like literal, never a real domain.
    if ascii.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err("an IP address is not a domain");
    }
    Ok(ascii)
}

/// Normalises an email: trimmed, the domain part lower-cased (and IDNA-encoded). Matching is
/// case-insensitive; use [`email_key`] for comparisons.
pub fn email(input: &str) -> Result<String, &'static str> {
    let s = input.trim();
    let (local, host) = s.rsplit_once('@').ok_or("an email needs an @")?;
    if local.is_empty() || local.len() > 64 || local.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@') {
        return Err("not a valid email address");
    }
    let host = idna::domain_to_ascii(host).map_err(|_| "not a valid email domain")?;
    if !host.contains('.') || host.starts_with('.') || host.ends_with('.') {
        return Err("not a valid email domain");
    }
    // Host names only (letters, digits, inner hyphens; Unicode arrives here as `xn--`): IDNA
    // lets through symbols such as `*` (found by schemathesis).
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !host.split('.').all(label_ok) {
        return Err("not a valid email domain");
    }
    Ok(format!("{local}@{host}"))
}

/// The case-insensitive matching key of a normalised email.
pub fn email_key(normalised: &str) -> String {
    normalised.to_lowercase()
}

/// The domain part of a normalised email.
pub fn email_domain(normalised: &str) -> &str {
    normalised.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// Longest URL, in characters as sent.
pub const MAX_URL_CHARS: usize = 2_048;
/// Longest domain input, in characters as sent: a URL's bound, since a domain may be given as
/// a URL (`https://acme.com/about`).
pub const MAX_DOMAIN_INPUT_CHARS: usize = MAX_URL_CHARS;

/// Validates an absolute http(s) URL of at most [`MAX_URL_CHARS`]; the value is kept as given
/// after trimming.
pub fn url(input: &str) -> Result<String, &'static str> {
    if input.chars().count() > MAX_URL_CHARS {
        return Err("a URL is at most 2048 characters");
    }
    let s = input.trim();
    if !storable(s) {
        return Err("NUL characters are not allowed");
    }
    let parsed = url::Url::parse(s).map_err(|_| "not an absolute URL")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("only http and https URLs are accepted");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("a URL needs a host");
    }
    Ok(s.to_owned())
}

/// Trims a phone number; it must contain at least one digit.
pub fn phone(input: &str) -> Result<String, &'static str> {
    let s = input.trim();
    if !storable(s) {
        return Err("NUL characters are not allowed");
    }
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return Err("a phone number needs digits");
    }
    if s.chars().count() > 64 {
        return Err("a phone number is at most 64 characters");
    }
    Ok(s.to_owned())
}

/// Whether text can be stored in every supported database (PostgreSQL refuses NUL).
pub fn storable(input: &str) -> bool {
    !input.contains('\0')
}

/// Checks a string's length in characters, and that it holds no NUL character.
pub fn bounded(input: &str, max_chars: usize) -> Result<String, String> {
    if !storable(input) {
        return Err("NUL characters are not allowed".into());
    }
    if input.chars().count() > max_chars {
        return Err(format!("longer than {max_chars} characters"));
    }
    Ok(input.to_owned())
}

/// Tags: each trimmed, empty ones refused, duplicates (case-insensitive) dropped keeping the
/// first spelling and the order; at most [`MAX_TAGS`] sent, each at most [`MAX_TAG_CHARS`] as
/// sent. The limits count what the client sent, not what is left after trimming and dropping
/// duplicates, so the OpenAPI document's `maxItems` and `maxLength` state them exactly
/// (docs/API.md, "Tags").
pub fn tags<'a>(input: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in input.into_iter().enumerate() {
        if i >= MAX_TAGS {
            return Err(format!("at most {MAX_TAGS} tags"));
        }
        if raw.chars().count() > MAX_TAG_CHARS {
            return Err(format!("a tag is at most {MAX_TAG_CHARS} characters"));
        }
        let t = raw.trim();
        if !storable(t) {
            return Err("NUL characters are not allowed".into());
        }
        if t.is_empty() {
            return Err("tags cannot be empty".into());
        }
        if seen.insert(t.to_lowercase()) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// Email domains that never auto-associate a contact with an account (docs/CONTRACT.md §4.3).
pub const FREE_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "zoho.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "fastmail.com",
    "tutanota.com",
    "hey.com",
];

/// Whether a normalised domain is a free-mail provider.
pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL_DOMAINS.contains(&domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn domains_normalise_as_the_spec_says() {
        for (input, want) in [
            ("https://WWW.Acme.com/about", "acme.com"),
            ("acme.com", "acme.com"),
            ("  Acme.COM.  ", "acme.com"),
            ("http://user:pw@shop.acme.co.uk:8443/x?y#z", "shop.acme.co.uk"),
            ("//www.example.org", "example.org"),
            ("bücher.de", "xn--bcher-kva.de"),
            ("https://BÜCHER.de/", "xn--bcher-kva.de"),
            ("acme.com?ref=1", "acme.com"),
        ] {
            assert_eq!(domain(input).as_deref(), Ok(want), "{input}");
        }
        for bad in ["", "localhost", "http://", "192.168.0.1", "[::1]", "a..b", "-a.com", "acme .com", "1.2.3.4:80"] {
            assert!(domain(bad).is_err(), "{bad} should be refused");
        }
        // Given as a URL, the input is bounded like one (the document's `maxLength`).
        let long = format!("https://acme.com/{}", "x".repeat(MAX_DOMAIN_INPUT_CHARS));
        assert!(domain(&long).is_err());
        assert_eq!(domain(&long[..MAX_DOMAIN_INPUT_CHARS]).as_deref(), Ok("acme.com"));
    }

    #[test]
    fn emails_keep_the_local_part_and_lower_case_the_domain() {
        assert_eq!(email(" Jane.Doe@ACME.com ").unwrap(), "Jane.Doe@acme.com");
        assert_eq!(email_key("Jane.Doe@acme.com"), "jane.doe@acme.com");
        assert_eq!(email_domain("Jane.Doe@acme.com"), "acme.com");
        for bad in [
            "",
            "jane",
            "@acme.com",
            "jane@",
            "jane@localhost",
            "ja ne@acme.com",
            "jane@acme.com*",
            "jane@a_b.com",
            "jane@-a.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert_eq!(url(" https://acme.com/x ").unwrap(), "https://acme.com/x");
        for bad in ["acme.com", "ftp://acme.com", "javascript:alert(1)", "https://"] {
            assert!(url(bad).is_err(), "{bad}");
        }
        // What the OpenAPI document's URL pattern rules out, the parser refuses too.
        for bad in ["http://a:65536", "http://a.1", "http://999999999999"] {
            assert!(url(bad).is_err(), "{bad}");
        }
        for good in ["http://a:65535", "http://1.a", "HTTP://A.B:0/x/"] {
            assert!(url(good).is_ok(), "{good}");
        }
        let long = format!("https://acme.com/{}", "x".repeat(MAX_URL_CHARS));
        assert!(url(&long).is_err());
        assert!(url(&long[..MAX_URL_CHARS]).is_ok());
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_ordered() {
        assert_eq!(tags([" vip ", "Partner", "VIP", "partner", "new"]).unwrap(), ["vip", "Partner", "new"]);
        assert!(tags([" "]).is_err());
        assert!(tags(["a\0b"]).is_err());
        assert!(bounded("a\0b", 10).is_err());
        assert!(phone("+1\0").is_err() && url("https://a.com/\0").is_err() && email("a\0@b.com").is_err());
        assert!(tags(std::iter::repeat_n("x".repeat(101).as_str(), 1)).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
        assert!(tags(many.iter().map(String::as_str)).is_err());
        // The limits count what was sent: padding counts, duplicates count.
        assert!(tags([format!(" {} ", "x".repeat(99)).as_str()]).is_err());
        assert!(tags(std::iter::repeat_n("x", 101)).is_err());
        assert_eq!(tags(std::iter::repeat_n("x", 100)).unwrap(), ["x"]);
    }

    proptest! {
        // Normalising is idempotent: a normalised domain normalises to itself.
        #[test]
        fn domain_normalisation_is_idempotent(s in "[a-zA-Z0-9.\\-:/@ü]{0,30}") {
            if let Ok(d) = domain(&s) {
                prop_assert_eq!(domain(&d), Ok(d.clone()));
                prop_assert!(d.contains('.'));
                prop_assert_eq!(d.to_lowercase(), d);
            }
        }

        #[test]
        fn email_normalisation_is_idempotent(local in "[a-zA-Z0-9._+]{1,20}", host in "[a-zA-Z0-9]{1,10}\\.[a-zA-Z]{2,5}") {
            let e = email(&format!("{local}@{host}")).unwrap();
            prop_assert_eq!(email(&e), Ok(e.clone()));
            prop_assert_eq!(email_domain(&e), host.to_lowercase());
        }
    }
}
