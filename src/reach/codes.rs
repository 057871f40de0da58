//! One-time receipt codes: 8 random characters from Crockford's base-32 alphabet (no I, L,
//! O, U: 40 bits) and a check character, printed as `ABCD-EFGH-K`. Stored only as SHA-256
//! hashes; using a code deletes it in the submission's own transaction, so nothing records
//! when it was used or for which response.

use chrono::{NaiveDate, TimeDelta};
use rand::Rng;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::entities::code;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DATA_LEN: usize = 8;

fn value_of(c: char) -> Option<u32> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        other => other,
    };
    ALPHABET.iter().position(|a| *a as char == c).map(|p| p as u32)
}

/// The check character: a position-weighted sum modulo 31 (a prime), so that any single
/// wrong character and any swap of two neighbours changes it.
fn check(values: &[u32]) -> char {
    let sum: u32 = values.iter().enumerate().map(|(i, v)| (i as u32 + 1) * v).sum();
    ALPHABET[(sum % 31) as usize] as char
}

/// A new random code, formatted for printing.
pub fn generate() -> String {
    let mut rng = rand::rng();
    let values: Vec<u32> = (0..DATA_LEN).map(|_| rng.random_range(0..32)).collect();
    let data: String = values.iter().map(|v| ALPHABET[*v as usize] as char).collect();
    format!("{}-{}-{}", &data[..4], &data[4..], check(&values))
}

/// Why a typed code is not a code.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeError {
    Length,
    Character,
    Check,
}

/// Reads a typed code: case, spaces and hyphens do not matter, and O/I/L read as 0/1/1.
/// Returns the canonical nine characters.
pub fn normalise(typed: &str) -> Result<String, CodeError> {
    let chars: Vec<char> = typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if chars.len() != DATA_LEN + 1 {
        return Err(CodeError::Length);
    }
    let values: Vec<u32> = chars.iter().map(|c| value_of(*c)).collect::<Option<_>>().ok_or(CodeError::Character)?;
    let canonical: String = values.iter().map(|v| ALPHABET[*v as usize] as char).collect();
    if check(&values[..DATA_LEN]) != canonical.chars().last().unwrap_or(' ') {
        return Err(CodeError::Check);
    }
    Ok(canonical)
}

pub fn hash(canonical: &str) -> String {
    hex::encode(Sha256::digest(format!("sipas-code:{canonical}").as_bytes()))
}

/// Creates `n` codes for a unit, valid through `expires_on`; returns them formatted.
pub async fn issue(
    db: &impl ConnectionTrait,
    unit_id: i32,
    n: usize,
    expires_on: NaiveDate,
) -> Result<Vec<String>, DbErr> {
    let codes: Vec<String> = (0..n).map(|_| generate()).collect();
    for chunk in codes.chunks(500) {
        let rows = chunk.iter().filter_map(|c| normalise(c).ok()).map(|canonical| code::ActiveModel {
            code_hash: Set(hash(&canonical)),
            unit_id: Set(unit_id),
            expires_on: Set(expires_on),
        });
        // A collision among 2^40 codes is as good as impossible; if it happens, one is dropped.
        code::Entity::insert_many(rows)
            .on_conflict(OnConflict::column(code::Column::CodeHash).do_nothing().to_owned())
            .exec_without_returning(db)
            .await?;
    }
    Ok(codes)
}

pub fn expiry(today: NaiveDate, validity_days: i64) -> NaiveDate {
    today + TimeDelta::days(validity_days)
}

/// Uses a code inside the submission's transaction: true when it existed for this unit and
/// had not expired. The row is deleted, so the same code can never be used twice.
pub async fn consume(
    txn: &impl ConnectionTrait,
    code_hash: &str,
    unit_id: i32,
    predecessors: &[i32],
    today: NaiveDate,
) -> Result<bool, DbErr> {
    let units = std::iter::once(unit_id).chain(predecessors.iter().copied());
    let deleted = code::Entity::delete_many()
        .filter(code::Column::CodeHash.eq(code_hash))
        .filter(code::Column::UnitId.is_in(units))
        .filter(code::Column::ExpiresOn.gte(today))
        .exec(txn)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Removes expired codes (they can no longer unlock anything).
pub async fn purge_expired(db: &impl ConnectionTrait, today: NaiveDate) -> Result<u64, DbErr> {
    Ok(code::Entity::delete_many().filter(code::Column::ExpiresOn.lt(today)).exec(db).await?.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_read_back_and_typos_are_caught() {
        for _ in 0..200 {
            let code = generate();
            assert_eq!(code.len(), 11);
            let canonical = normalise(&code).unwrap_or_default();
            assert_eq!(canonical, code.replace('-', ""));
            assert_eq!(normalise(&code.to_lowercase().replace('-', " ")).as_deref(), Ok(canonical.as_str()));
            // Every single-character change is caught.
            let chars: Vec<char> = canonical.chars().collect();
            for i in 0..8 {
                for a in ALPHABET.iter().map(|a| *a as char).filter(|a| *a != chars[i]) {
                    let mut typo = chars.clone();
                    typo[i] = a;
                    let typo: String = typo.into_iter().collect();
                    // Values 0 and 31 are the same modulo 31: the one blind spot.
                    if !((chars[i] == '0' && a == 'Z') || (chars[i] == 'Z' && a == '0')) {
                        assert!(normalise(&typo).is_err(), "{canonical} -> {typo}");
                    }
                }
            }
            // Swapping two different neighbours is caught.
            for i in 0..7 {
                if chars[i] != chars[i + 1] && !matches!((chars[i], chars[i + 1]), ('0', 'Z') | ('Z', '0')) {
                    let mut swapped = chars.clone();
                    swapped.swap(i, i + 1);
                    assert!(normalise(&swapped.into_iter().collect::<String>()).is_err());
                }
            }
        }
        assert_eq!(normalise("ABCD"), Err(CodeError::Length));
        assert_eq!(normalise("ABCD-EFGH-!"), Err(CodeError::Character));
    }

    #[test]
    fn ambiguous_letters_read_as_digits() {
        let code = generate().replace('0', "O").replace('1', "l");
        assert!(normalise(&code).is_ok());
    }
}
