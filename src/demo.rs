//! `sipas demo`: a realistic province (Quảng Ninh: departments, cities and their wards and
//! communes) with a few thousand responses over the past year, so a new user sees real
//! figures at once. Deterministic for a given seed and day; a second run adds nothing.

use chrono::TimeDelta;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::auth::{self, Role};
use crate::forms::submission::{self, AnswerValue, SubmissionBody};
use crate::forms::{AnswerKind, FormRegistry};
use crate::startup::AppState;
use crate::store;
use crate::units::import::UnitRow;

const UNITS: &[(&str, &str, &str, &str)] = &[
    ("QNI", "", "province", "Tỉnh Quảng Ninh"),
    ("QNI.SNV", "QNI", "department", "Sở Nội vụ"),
    ("QNI.STP", "QNI", "department", "Sở Tư pháp"),
    ("QNI.STC", "QNI", "department", "Sở Tài chính"),
    ("QNI.SXD", "QNI", "department", "Sở Xây dựng"),
    ("QNI.SNNMT", "QNI", "department", "Sở Nông nghiệp và Môi trường"),
    ("QNI.SYT", "QNI", "department", "Sở Y tế"),
    ("QNI.SGDDT", "QNI", "department", "Sở Giáo dục và Đào tạo"),
    ("QNI.SCT", "QNI", "department", "Sở Công Thương"),
    ("QNI.HL", "QNI", "district", "Thành phố Hạ Long"),
    ("QNI.HL.HG", "QNI.HL", "commune", "Phường Hồng Gai"),
    ("QNI.HL.BC", "QNI.HL", "commune", "Phường Bãi Cháy"),
    ("QNI.HL.HT", "QNI.HL", "commune", "Phường Hà Tu"),
    ("QNI.CP", "QNI", "district", "Thành phố Cẩm Phả"),
    ("QNI.CP.CT", "QNI.CP", "commune", "Phường Cẩm Trung"),
    ("QNI.CP.CTH", "QNI.CP", "commune", "Phường Cẩm Thạch"),
    ("QNI.CP.DH", "QNI.CP", "commune", "Xã Dương Huy"),
    ("QNI.UB", "QNI", "district", "Thành phố Uông Bí"),
    ("QNI.UB.QT", "QNI.UB", "commune", "Phường Quang Trung"),
    ("QNI.UB.TS", "QNI.UB", "commune", "Phường Thanh Sơn"),
    ("QNI.VD", "QNI", "district", "Huyện Vân Đồn"),
    ("QNI.VD.DX", "QNI.VD", "commune", "Xã Đông Xá"),
    ("QNI.VD.HL", "QNI.VD", "commune", "Xã Hạ Long"),
    ("QNI.MC", "QNI", "district", "Thành phố Móng Cái"),
    ("QNI.MC.KL", "QNI.MC", "commune", "Phường Ka Long"),
    ("QNI.MC.TP", "QNI.MC", "commune", "Phường Trần Phú"),
];

const COMMENTS: &[&str] = &[
    "Cán bộ hướng dẫn nhiệt tình, dễ hiểu.",
    "Chỗ ngồi chờ còn ít vào buổi sáng.",
    "Nên có thêm máy lấy số thứ tự.",
    "Thời gian trả kết quả đúng hẹn, rất hài lòng.",
    "Niêm yết thủ tục cần rõ hơn, chữ nhỏ khó đọc.",
    "Mong được nhắn tin báo khi có kết quả.",
    "Phải đi lại hai lần vì thiếu giấy tờ, hướng dẫn chưa đầy đủ.",
    "Dịch vụ công trực tuyến còn khó dùng trên điện thoại.",
];

pub struct DemoReport {
    pub units_created: usize,
    pub responses_created: usize,
    pub admin: Option<(String, String)>,
}

/// Seeds units, responses and (when there is no user yet) an admin account.
pub async fn seed(state: &AppState, responses: usize, seed: u64) -> anyhow::Result<DemoReport> {
    let (db, forms) = (&state.db, &state.forms);
    let rows = UNITS
        .iter()
        .enumerate()
        .map(|(i, (code, parent, level, name))| UnitRow {
            line: i as u64 + 2,
            code: code.to_string(),
            parent: (!parent.is_empty()).then(|| parent.to_string()),
            level: level.to_string(),
            name_vi: name.to_string(),
            name_en: None,
        })
        .collect();
    let report = store::units::import(db, rows).await?.map_err(|e| anyhow::anyhow!(e.join("\n")))?;

    let mut rng = StdRng::seed_from_u64(seed);
    let today = crate::vietnam_today();
    let tree = store::units::tree(db).await?;
    let already = store::responses::count_in(db, &tree.subtree(tree.by_code("QNI").map_or(0, |u| u.id))).await?;
    let mut created = 0;
    if already == 0 {
        let mut subs = Vec::with_capacity(responses);
        // Each unit has its own level of service; communes answer most.
        let quality: Vec<f64> = UNITS.iter().map(|_| rng.random_range(0.55..0.93)).collect();
        for _ in 0..responses {
            let u = pick_unit(&mut rng);
            let body = fake_response(&mut rng, forms, UNITS[u].0, quality[u]);
            let date = today - TimeDelta::days(rng.random_range(0..365));
            let unit = store::units::unit_ref(db, UNITS[u].0, forms).await?;
            match submission::validate(&body, unit.as_ref(), forms, today, Some(date), true) {
                Ok(valid) => subs.push(valid),
                Err(p) => {
                    anyhow::bail!("demo data broke a rule: {:?}", p.to_fields(crate::Lang::En))
                }
            }
        }
        let txn = store::begin_write(db).await?;
        match store::responses::insert_batch(&txn, &state.catalog, &subs).await? {
            Ok(r) => created = r.created,
            Err(conflicts) => anyhow::bail!("demo data conflicts: {conflicts:?}"),
        }
        txn.commit().await?;
    }

    let mut admin = None;
    if store::users::count(db).await? == 0 {
        let email = "admin@demo.sipas.vn".to_string();
        let password = auth::new_token().0[..16].to_string();
        store::users::insert(db, &email, auth::hash_password(&password)?, Role::Admin, None).await?;
        admin = Some((email, password));
    }
    Ok(DemoReport { units_created: report.created, responses_created: created, admin })
}

fn pick_unit(rng: &mut StdRng) -> usize {
    // Communes and the offices of departments get most visitors; the province itself none.
    loop {
        let i = rng.random_range(1..UNITS.len());
        let weight = match UNITS[i].2 {
            "commune" => 1.0,
            "department" => 0.7,
            _ => 0.25,
        };
        if rng.random_bool(weight) {
            return i;
        }
    }
}

fn fake_response(rng: &mut StdRng, forms: &FormRegistry, unit: &str, quality: f64) -> SubmissionBody {
    let use_2023 = forms.get("sipas-2023").is_some() && rng.random_bool(0.2);
    let form_id = if use_2023 { "sipas-2023" } else { "sipas-2017" };
    let organization = !use_2023 && rng.random_bool(0.2);
    let mut answers = std::collections::BTreeMap::new();
    if let Some(form) = forms.get(form_id) {
        for (i, (code, kind, scale)) in form.form.answerables().into_iter().enumerate() {
            let Some(scale) = form.form.scales.get(scale) else {
                continue;
            };
            let skip = if code.starts_with('E') { 0.15 } else { 0.04 };
            if rng.random_bool(skip) {
                answers.insert(code.to_string(), None);
                continue;
            }
            let values: Vec<i64> = scale.levels.iter().map(|l| i64::from(l.value)).collect();
            let value = match kind {
                AnswerKind::Question { multiple: true } => {
                    let mut chosen: Vec<i64> = values.iter().copied().filter(|_| rng.random_bool(0.35)).collect();
                    if chosen.is_empty() {
                        chosen.push(values[0]);
                    }
                    AnswerValue::Many(chosen)
                }
                AnswerKind::IndexItem => {
                    // Items differ a little from each other around the unit's level.
                    let p = (quality + ((i % 5) as f64 - 2.0) * 0.03).clamp(0.05, 0.98);
                    let v = if rng.random_bool(p) {
                        if rng.random_bool(0.45) { 5 } else { 4 }
                    } else {
                        [1, 2, 3, 3, 3][rng.random_range(0..5)]
                    };
                    AnswerValue::One(v)
                }
                _ => AnswerValue::One(values[rng.random_range(0..values.len())]),
            };
            answers.insert(code.to_string(), Some(value));
        }
    }
    let demographics = rng.random_bool(0.6).then(|| {
        let mut d = std::collections::BTreeMap::new();
        d.insert("gender".to_string(), Some(["male", "female"][rng.random_range(0..2)].to_string()));
        d.insert(
            "age_band".to_string(),
            Some(["18-25", "26-34", "35-49", "50-60", "60+"][rng.random_range(0..5)].to_string()),
        );
        d
    });
    let fields = ["ho_tich", "chung_thuc", "dat_dai", "xay_dung", "kinh_doanh", "lao_dong", "tu_phap", "khac"];
    let mut id = [0u8; 16];
    rng.fill(&mut id);
    SubmissionBody {
        submission_id: uuid::Builder::from_random_bytes(id).into_uuid(),
        unit: unit.to_string(),
        form: form_id.to_string(),
        respondent_type: if organization { "organization" } else { "citizen" }.to_string(),
        channel: ["in_person", "online", "online", "kiosk", "paper"][rng.random_range(0..5)].to_string(),
        answers,
        demographics,
        service: Some(fields[rng.random_range(0..fields.len())].to_string()),
        comment: rng.random_bool(0.1).then(|| COMMENTS[rng.random_range(0..COMMENTS.len())].to_string()),
        code: None,
        form_token: None,
        website: None,
    }
}
