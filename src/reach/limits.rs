//! Abuse limits that suit public offices. Citizens of one office often share one address, so
//! limits are generous per address and strict per kiosk device.
//!
//! Two kinds. The limits that guard secrets (receipt-code attempts, sign-ins per address and
//! per account, reset requests) are kept in the database (`store::throttles`), so they hold
//! across every instance of the service. The submission limits (per address, per kiosk) are
//! kept in each instance's memory: they smooth load, a balancer with N instances lets N
//! times as many through, and a database write per submission would cost more than they save. The client address comes
//! from `X-Forwarded-For` only when the direct peer is a configured trusted proxy, and it is
//! used for counting only: never stored, never logged.
//!
//! Suspicious submissions are flagged, not dropped: a filled honeypot field, or a survey page
//! sent back sooner than `min_fill_seconds` after it was served (the time travels in a signed
//! token, so no clock is stored).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::HttpRequest;
use base64::Engine;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use sea_orm::DatabaseConnection;

use crate::config::Settings;
use crate::error::ApiError;
use crate::store;
use crate::store::throttles::Bucket;

/// The limiters: in memory for submissions, in the database for the rest.
#[derive(Clone)]
pub struct Limits {
    submit: Arc<DefaultKeyedRateLimiter<String>>,
    kiosk: Arc<DefaultKeyedRateLimiter<String>>,
    code_attempts: Bucket,
    sign_ins: Bucket,
    trusted: Arc<Vec<IpAddr>>,
    /// Keys the shared buckets: a row names a keyed hash, never an address or an email.
    secret: Arc<Vec<u8>>,
}

/// Password-reset requests an hour, per address and per typed email.
const RESETS_PER_HOUR_PER_ADDRESS: u32 = 10;
const RESETS_PER_HOUR_PER_EMAIL: u32 = 3;
/// Sign-in attempts a minute for one typed email, from any number of addresses. Not a
/// lock-out: the bucket refills by one every six seconds, so the real owner gets in as soon
/// as a guesser pauses, and guessing stays at ten a minute however many addresses it uses.
const SIGN_INS_PER_MINUTE_PER_ACCOUNT: u32 = 10;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

fn bucket(burst: u32, period_ms: i64) -> Bucket {
    Bucket { burst: burst.max(1), period_ms }
}

fn quota(per_minute: u32) -> Quota {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

impl Limits {
    pub fn new(settings: &Settings, secret: Arc<Vec<u8>>) -> Limits {
        Limits {
            submit: Arc::new(RateLimiter::keyed(quota(settings.submit_per_minute))),
            kiosk: Arc::new(RateLimiter::keyed(quota(settings.kiosk_per_minute))),
            code_attempts: bucket(settings.code_attempts_per_hour, HOUR_MS),
            sign_ins: bucket(settings.sign_ins_per_minute, MINUTE_MS),
            trusted: Arc::new(settings.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect()),
            secret,
        }
    }

    /// The address a request comes from, as a limiter key.
    pub fn client(&self, req: &HttpRequest) -> String {
        let peer = req.peer_addr().map(|a| a.ip());
        let forwarded = || {
            let header = req.headers().get("x-forwarded-for")?.to_str().ok()?;
            // The right-most address that is not one of our proxies is the client.
            header.split(',').rev().filter_map(|a| a.trim().parse::<IpAddr>().ok()).find(|a| !self.trusted.contains(a))
        };
        let ip = match peer {
            Some(p) if self.trusted.contains(&p) => forwarded().unwrap_or(p),
            Some(p) => p,
            None => return "unknown".into(),
        };
        format!("ip:{ip}")
    }

    fn check(limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Result<(), u64> {
        limiter.check_key(&key.to_string()).map_err(|until| {
            let wait = until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// One submission from this address; Err(seconds to wait).
    pub fn submission(&self, client: &str) -> Result<(), u64> {
        Self::check(&self.submit, client)
    }

    /// One submission from this kiosk device.
    pub fn kiosk(&self, device: i32) -> Result<(), u64> {
        Self::check(&self.kiosk, &format!("kiosk:{device}"))
    }

    /// The row key of a shared bucket: a keyed hash, so the table names no address or email.
    fn bucket_key(&self, kind: &str, key: &str) -> String {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(key.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// One attempt on each of some shared buckets; 429 with the seconds to wait when one
    /// of them is empty.
    async fn shared(&self, db: &DatabaseConnection, buckets: &[(&str, &str, Bucket)]) -> Result<(), ApiError> {
        let keys: Vec<String> = buckets.iter().map(|(kind, key, _)| self.bucket_key(kind, key)).collect();
        let rows: Vec<(&str, Bucket)> = keys.iter().zip(buckets).map(|(k, (_, _, b))| (k.as_str(), *b)).collect();
        let now = chrono::Utc::now().timestamp_millis();
        store::throttles::hit(db, &rows, now).await?.map_err(ApiError::TooManyRequests)
    }

    /// A submission carrying a receipt code, counted before the code is looked at, so that
    /// guessing is slowed whether a guess is right or wrong.
    pub async fn code_attempt(&self, db: &DatabaseConnection, client: &str) -> Result<(), ApiError> {
        self.shared(db, &[("code", client, self.code_attempts)]).await
    }

    /// A sign-in attempt from this address (passwords are not guessed at speed).
    pub async fn sign_in(&self, db: &DatabaseConnection, client: &str) -> Result<(), ApiError> {
        self.shared(db, &[("sign_in", client, self.sign_ins)]).await
    }

    /// A password-reset request from this address for this email: at most
    /// `RESETS_PER_HOUR_PER_ADDRESS` an hour from an address, and
    /// `RESETS_PER_HOUR_PER_EMAIL` for one email whether or not it has an account (so the
    /// limit says nothing about accounts).
    pub async fn reset_request(&self, db: &DatabaseConnection, client: &str, email: &str) -> Result<(), ApiError> {
        let email = email.trim().to_lowercase();
        self.shared(
            db,
            &[
                ("reset", client, bucket(RESETS_PER_HOUR_PER_ADDRESS, HOUR_MS)),
                ("reset_email", &email, bucket(RESETS_PER_HOUR_PER_EMAIL, HOUR_MS)),
            ],
        )
        .await
    }

    /// A sign-in attempt for this email, whoever sends it (accounts and unknown emails alike).
    pub async fn account_sign_in(&self, db: &DatabaseConnection, email: &str) -> Result<(), ApiError> {
        let b = bucket(SIGN_INS_PER_MINUTE_PER_ACCOUNT, MINUTE_MS);
        self.shared(db, &[("account", &email.trim().to_lowercase(), b)]).await
    }

    /// Forgets idle keys so memory stays bounded.
    pub fn sweep(&self) {
        self.submit.retain_recent();
        self.kiosk.retain_recent();
    }
}

type HmacSha256 = Hmac<Sha256>;

/// A token carrying the time a page was served, signed with the server's secret.
pub fn form_token(secret: &[u8], now_ms: i64) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&now_ms.to_be_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16]);
    format!("{now_ms}.{sig}")
}

/// Seconds since the page of `token` was served; None when the token is not ours.
pub fn seconds_since(secret: &[u8], token: &str, now_ms: i64) -> Option<i64> {
    let (ms, _) = token.split_once('.')?;
    let ms: i64 = ms.parse().ok()?;
    (form_token(secret, ms) == token).then_some((now_ms - ms) / 1000)
}

/// Whether a submission looks automated: honeypot filled, or sent too fast. `token` is
/// required from the survey pages (`needs_token`), optional from API clients.
pub fn suspicious(
    secret: &[u8],
    min_fill_seconds: i64,
    honeypot: Option<&str>,
    token: Option<&str>,
    needs_token: bool,
) -> bool {
    if honeypot.is_some_and(|h| !h.trim().is_empty()) {
        return true;
    }
    let now = chrono::Utc::now().timestamp_millis();
    match token.filter(|t| !t.is_empty()) {
        Some(t) => seconds_since(secret, t, now).is_none_or(|s| s < min_fill_seconds),
        None => needs_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_tell_the_fill_time_and_cannot_be_forged() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let token = form_token(secret, 1_000_000);
        assert_eq!(seconds_since(secret, &token, 1_012_500), Some(12));
        assert_eq!(seconds_since(b"another secret", &token, 1_012_500), None);
        assert_eq!(seconds_since(secret, "999000.forged", 1_012_500), None);
        let fresh = form_token(secret, chrono::Utc::now().timestamp_millis());
        assert!(suspicious(secret, 8, None, Some(&fresh), true), "sent at once");
        let old = form_token(secret, chrono::Utc::now().timestamp_millis() - 60_000);
        assert!(!suspicious(secret, 8, None, Some(&old), true));
        assert!(suspicious(secret, 8, Some("http://spam"), Some(&old), true), "honeypot");
        assert!(suspicious(secret, 8, None, None, true), "page without its token");
        assert!(!suspicious(secret, 8, None, None, false), "API client");
    }
}
