//! Email invitations: each address gets a one-time link carrying a fresh receipt code, in
//! Vietnamese with the unit's name. Addresses go only into the outbox, which forgets them
//! once the message is delivered; nothing links an address to a code or to a response.
//! Also the time a form takes, which the invitation, the poster and the survey page state.

use serde_json::json;

use super::codes;
use crate::email::{Mail, enqueue};
use crate::entities::unit;
use crate::error::{ApiError, FieldErrors};
use crate::forms::Form;
use crate::startup::AppState;
use crate::{audit, store};

pub const MAX_PER_REQUEST: usize = 500;

/// Time to read one question and tap an answer on a phone.
pub const SECONDS_PER_QUESTION: usize = 8;
/// The optional part about the respondent, and sending.
pub const SECONDS_TO_FINISH: usize = 30;

/// Minutes a citizen needs for `form`, rounded up: what the survey page, the poster and the
/// invitation promise, so a long form never claims to be short.
pub fn minutes_to_answer(form: &Form) -> usize {
    (form.answerables().len() * SECONDS_PER_QUESTION + SECONDS_TO_FINISH).div_ceil(60)
}

/// "khoảng N phút" for the form the unit's link opens (its first form), in Vietnamese.
pub async fn time_to_answer(state: &AppState, unit: &unit::Model) -> Result<String, ApiError> {
    let unit_ref = store::units::ref_of(&state.db, unit, &state.forms).await?;
    let form = unit_ref.forms.first().and_then(|f| state.forms.get(f));
    Ok(match form {
        Some(f) => format!("{} câu hỏi, khoảng {} phút", f.form.answerables().len(), minutes_to_answer(&f.form)),
        None => "vài phút".to_string(),
    })
}

/// Queues one invitation per address; returns how many. Every bad address is reported.
pub async fn send(
    state: &AppState,
    unit: &unit::Model,
    emails: &[String],
    actor: Option<(i32, &str)>,
) -> Result<usize, ApiError> {
    let mut fields = FieldErrors::new();
    if emails.is_empty() || emails.len() > MAX_PER_REQUEST {
        fields.insert("emails".into(), vec![format!("list 1 to {MAX_PER_REQUEST} addresses")]);
    }
    let mut clean = Vec::new();
    for (i, e) in emails.iter().enumerate() {
        let e = e.trim();
        match e.parse::<lettre::Address>() {
            Ok(_) if e.len() <= 254 => clean.push(e.to_string()),
            _ => {
                fields.insert(format!("emails[{i}]"), vec!["not an email address".into()]);
            }
        }
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let today = crate::vietnam_today();
    let expires_on = codes::expiry(today, state.settings.code_validity_days);
    let time = time_to_answer(state, unit).await?;
    let txn = store::begin_write(&state.db).await?;
    let issued = codes::issue(&txn, unit.id, clean.len(), expires_on).await?;
    for (to, code) in clean.iter().zip(&issued) {
        let link = format!("{}?code={}", super::qr::survey_url(&state.settings, &unit.code), code);
        let text = format!(
            "Kính gửi anh/chị,\n\n\
             {name} mời anh/chị cho biết mức độ hài lòng về việc giải quyết thủ tục hành chính vừa qua.\n\
             Phiếu khảo sát không ghi tên, {time}:\n{link}\n\n\
             Liên kết chỉ dùng được một lần, đến hết ngày {expires}.\n\
             Địa chỉ thư của anh/chị chỉ dùng để gửi thư này và không gắn với câu trả lời.\n\n\
             Trân trọng cảm ơn.\n",
            name = unit.name_vi,
            expires = expires_on.format("%d/%m/%Y"),
        );
        let mail = Mail {
            kind: "invitation",
            dedupe_key: None,
            to: to.clone(),
            subject: format!("Mời đánh giá sự hài lòng – {}", unit.name_vi),
            text,
            html: None,
        };
        enqueue(&txn, mail).await?;
    }
    audit::record(&txn, actor, "invitations_sent", Some(&unit.code), json!({"count": clean.len()})).await?;
    txn.commit().await?;
    Ok(clean.len())
}
