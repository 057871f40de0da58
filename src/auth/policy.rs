//! The password rule (OWASP ASVS 5.0, 6.2): while a password is the only factor it has at
//! least 15 characters (as a reader counts them), at most 128; it is not one of the most
//! common passwords (a list shipped with the code, compared without case and spacing), not
//! one character repeated, not the account's own email; no composition rules. The same
//! rule for the CLI, the API, the console and password resets.

pub const MIN_CHARS: usize = 15;
pub const MAX_CHARS: usize = 128;

/// Passwords people pick when told "at least 15 characters", from public breach lists'
/// most common entries of that length, and the service's own words. Compared lower-case
/// with spaces removed.
const COMMON: &[&str] = &[
    "123456789012345",
    "1234567890123456",
    "12345678901234567890",
    "123456789987654321",
    "111111111111111",
    "000000000000000",
    "qwertyuiopasdfgh",
    "qwertyuiopasdfghjkl",
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertyqwertyqwerty",
    "1qaz2wsx3edc4rfv",
    "1q2w3e4r5t6y7u8i",
    "1q2w3e4r5t6y7u8i9o0p",
    "zaq12wsxcde34rfv",
    "passwordpassword",
    "password12345678",
    "password123456789",
    "passwordpassword123",
    "iloveyouiloveyou",
    "abcdefghijklmnop",
    "abcdefghijklmnopqrstuvwxyz",
    "abc123abc123abc123",
    "letmeinletmeinletmein",
    "welcomewelcome123",
    "adminadminadmin",
    "administrator123",
    "administrator1234",
    "changemechangeme",
    "correcthorsebatterystaple",
    "matkhaumatkhaumatkhau",
    "matkhau123456789",
    "sipassipassipas",
    "sipas1234567890",
    "khaosatkhaosat123",
    "vietnamvietnamvietnam",
    "vietnam123456789",
    "hanoihanoihanoi",
    "hochiminh1234567",
    "thisismypassword",
    "mypasswordispassword",
];

/// Why a password is refused, or None when it may be used.
pub fn problem(password: &str, email: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Some(format!("must have at least {MIN_CHARS} characters (a phrase of a few words is easiest)"));
    }
    if chars > MAX_CHARS {
        return Some(format!("must have at most {MAX_CHARS} characters"));
    }
    let folded: String = password.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    let mut distinct: Vec<char> = folded.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 2 {
        return Some("must not be one or two characters repeated".into());
    }
    if COMMON.contains(&folded.as_str()) {
        return Some("is one of the most common passwords: choose another".into());
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if folded == email.to_lowercase() || (local.chars().count() >= 6 && folded.contains(&local)) {
        return Some("must not contain the account's email".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_common_repeated_and_own_email_passwords_are_refused() {
        let email = "nguyen.van.a@example.gov.vn";
        for bad in [
            "1234567890",
            "          ",
            "               ",
            "aaaaaaaaaaaaaaaaaaaa",
            "Password Password",
            "123456789012345",
        ] {
            assert!(problem(bad, email).is_some(), "{bad:?} accepted");
        }
        assert!(problem("nguyen.van.a is my name", email).is_some());
        assert!(problem(&"x".repeat(129), email).is_some());
        for good in ["correct horse battery stapler", "ba con mèo đi chợ sớm", "Đà Nẵng mùa mưa 2026"] {
            assert_eq!(problem(good, email), None, "{good:?} refused");
        }
    }
}
