//! `sipas demo`: today's Đà Nẵng with its history from January 2024. Before 1 July 2025:
//! the city of Đà Nẵng (departments, districts and their wards and communes) and the
//! province of Quảng Nam (departments, the cities of Tam Kỳ and Hội An and their wards and
//! communes); on 1 March 2025 two departments merge; on 1 July 2025 the district tier goes,
//! the wards and communes merge into the new ones (Nghị quyết 1659/NQ-UBTVQH15) and Quảng
//! Nam merges into Đà Nẵng (Nghị quyết 202/2025/QH15), applied with the restructuring plan
//! `examples/danang-2025.csv` (embedded here). Responses run across the whole period, so
//! Quảng Nam's 2024 baseline flows into Đà Nẵng's 2026 figures. Unit names are real (a
//! subset); the responses are invented. Deterministic for a given seed and day; a second
//! run adds nothing.

use chrono::{NaiveDate, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::auth::{self, Role};
use crate::forms::submission::{self, AnswerValue, SubmissionBody};
use crate::forms::{AnswerKind, FormRegistry};
use crate::startup::AppState;
use crate::store;
use crate::units::import::UnitRow;

/// The units on 1 January 2024: code, parent, level, name.
const BEFORE: &[(&str, &str, &str, &str)] = &[
    ("DN", "", "city", "Thành phố Đà Nẵng"),
    ("DN.SNV", "DN", "department", "Sở Nội vụ"),
    ("DN.STC", "DN", "department", "Sở Tài chính"),
    ("DN.SYT", "DN", "department", "Sở Y tế"),
    ("DN.SGDDT", "DN", "department", "Sở Giáo dục và Đào tạo"),
    ("DN.STNMT", "DN", "department", "Sở Tài nguyên và Môi trường"),
    ("DN.SNNPTNT", "DN", "department", "Sở Nông nghiệp và Phát triển nông thôn"),
    ("DN.HC", "DN", "district", "Quận Hải Châu"),
    ("DN.HC.TB", "DN.HC", "commune", "Phường Thanh Bình"),
    ("DN.HC.TP", "DN.HC", "commune", "Phường Thuận Phước"),
    ("DN.HC.TT", "DN.HC", "commune", "Phường Thạch Thang"),
    ("DN.HC.HC", "DN.HC", "commune", "Phường Hải Châu"),
    ("DN.HC.PN", "DN.HC", "commune", "Phường Phước Ninh"),
    ("DN.HC.HTT", "DN.HC", "commune", "Phường Hòa Thuận Tây"),
    ("DN.HC.BT", "DN.HC", "commune", "Phường Bình Thuận"),
    ("DN.HC.HCB", "DN.HC", "commune", "Phường Hòa Cường Bắc"),
    ("DN.HC.HCN", "DN.HC", "commune", "Phường Hòa Cường Nam"),
    ("DN.TK", "DN", "district", "Quận Thanh Khê"),
    ("DN.TK.TKT", "DN.TK", "commune", "Phường Thanh Khê Tây"),
    ("DN.TK.TKD", "DN.TK", "commune", "Phường Thanh Khê Đông"),
    ("DN.TK.XH", "DN.TK", "commune", "Phường Xuân Hà"),
    ("DN.TK.CG", "DN.TK", "commune", "Phường Chính Gián"),
    ("DN.TK.TG", "DN.TK", "commune", "Phường Thạc Gián"),
    ("DN.ST", "DN", "district", "Quận Sơn Trà"),
    ("DN.ST.AHB", "DN.ST", "commune", "Phường An Hải Bắc"),
    ("DN.ST.PM", "DN.ST", "commune", "Phường Phước Mỹ"),
    ("DN.ST.AHN", "DN.ST", "commune", "Phường An Hải Nam"),
    ("DN.ST.TQ", "DN.ST", "commune", "Phường Thọ Quang"),
    ("DN.ST.NHD", "DN.ST", "commune", "Phường Nại Hiên Đông"),
    ("DN.ST.MT", "DN.ST", "commune", "Phường Mân Thái"),
    ("DN.HV", "DN", "district", "Huyện Hòa Vang"),
    ("DN.HV.HP", "DN.HV", "commune", "Xã Hòa Phú"),
    ("DN.HV.HPG", "DN.HV", "commune", "Xã Hòa Phong"),
    ("DN.HS", "DN", "district", "Huyện Hoàng Sa"),
    ("QNM", "", "province", "Tỉnh Quảng Nam"),
    ("QNM.SNV", "QNM", "department", "Sở Nội vụ tỉnh Quảng Nam"),
    ("QNM.STC", "QNM", "department", "Sở Tài chính tỉnh Quảng Nam"),
    ("QNM.SYT", "QNM", "department", "Sở Y tế tỉnh Quảng Nam"),
    ("QNM.TK", "QNM", "district", "Thành phố Tam Kỳ"),
    ("QNM.TK.AM", "QNM.TK", "commune", "Phường An Mỹ"),
    ("QNM.TK.AX", "QNM.TK", "commune", "Phường An Xuân"),
    ("QNM.TK.TX", "QNM.TK", "commune", "Phường Trường Xuân"),
    ("QNM.TK.AP", "QNM.TK", "commune", "Phường An Phú"),
    ("QNM.TK.TTH", "QNM.TK", "commune", "Xã Tam Thanh"),
    ("QNM.TK.TPH", "QNM.TK", "commune", "Xã Tam Phú"),
    ("QNM.TK.HH", "QNM.TK", "commune", "Phường Hòa Hương"),
    ("QNM.TK.AS", "QNM.TK", "commune", "Phường An Sơn"),
    ("QNM.TK.TN", "QNM.TK", "commune", "Xã Tam Ngọc"),
    ("QNM.TK.TTA", "QNM.TK", "commune", "Phường Tân Thạnh"),
    ("QNM.TK.TT", "QNM.TK", "commune", "Xã Tam Thăng"),
    ("QNM.TK.HT", "QNM.TK", "commune", "Phường Hòa Thuận"),
    ("QNM.HA", "QNM", "district", "Thành phố Hội An"),
    ("QNM.HA.MA", "QNM.HA", "commune", "Phường Minh An"),
    ("QNM.HA.CP", "QNM.HA", "commune", "Phường Cẩm Phô"),
    ("QNM.HA.SP", "QNM.HA", "commune", "Phường Sơn Phong"),
    ("QNM.HA.CK", "QNM.HA", "commune", "Xã Cẩm Kim"),
    ("QNM.HA.CN", "QNM.HA", "commune", "Phường Cẩm Nam"),
    ("QNM.HA.CC", "QNM.HA", "commune", "Phường Cẩm Châu"),
    ("QNM.HA.CD", "QNM.HA", "commune", "Phường Cửa Đại"),
    ("QNM.HA.CT", "QNM.HA", "commune", "Xã Cẩm Thanh"),
];

/// The 2025 restructuring, as a plan `sipas units restructure` reads.
pub const PLAN_2025: &str = include_str!("../examples/danang-2025.csv");

/// When the new units start.
fn merger_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 7, 1).unwrap_or_default()
}

fn history_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default()
}

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

/// Seeds units, their 2025 restructuring, responses and (when there is no user yet) an
/// admin account.
pub async fn seed(state: &AppState, responses: usize, seed: u64) -> anyhow::Result<DemoReport> {
    let (db, forms) = (&state.db, &state.forms);
    let today = crate::vietnam_today();
    let mut units_created = 0;
    if store::units::by_code(db, "DN").await?.is_none() {
        let rows = BEFORE
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
        units_created += report.created;
    }

    let mut rng = StdRng::seed_from_u64(seed);
    let tree = store::units::tree(db).await?;
    let root = tree.by_code("DN").map_or(0, |u| u.id);
    let already = store::responses::count_in(db, &tree.subtree(root)).await?;
    let mut created = 0;
    if already == 0 {
        // Each unit has its own level of service; Quảng Nam's starts lower. After the merger
        // a unit serves as well as its predecessors did on average, a little better each year.
        let old_quality: Vec<f64> = BEFORE
            .iter()
            .map(
                |(code, ..)| {
                    if code.starts_with("QNM") { rng.random_range(0.50..0.80) } else { rng.random_range(0.62..0.90) }
                },
            )
            .collect();
        let days = (today - history_start()).num_days().max(1);
        let mut before = Vec::new();
        let mut after_dates = Vec::new();
        for _ in 0..responses {
            let date = history_start() + TimeDelta::days(rng.random_range(0..=days));
            if date < merger_day() {
                // The two departments merged on 1 March 2025 take no responses after it.
                let march = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap_or_default();
                let u = loop {
                    let u = pick_before(&mut rng);
                    if date < march || !matches!(BEFORE[u].0, "DN.STNMT" | "DN.SNNPTNT") {
                        break u;
                    }
                };
                let body = fake_response(&mut rng, forms, BEFORE[u].0, old_quality[u]);
                before.push((body, date));
            } else {
                after_dates.push(date);
            }
        }
        let mut subs = Vec::with_capacity(responses);
        for (body, date) in &before {
            let unit = store::units::unit_ref(db, &body.unit, forms).await?;
            subs.push(valid(body, unit.as_ref(), forms, today, *date)?);
        }
        if units_created > 0 {
            let rows = crate::units::restructure::parse_csv(PLAN_2025).map_err(|e| anyhow::anyhow!(e.join("\n")))?;
            let steps =
                store::units::restructure(db, &rows, today, false).await?.map_err(|e| anyhow::anyhow!(e.join("\n")))?;
            units_created +=
                steps.iter().filter(|s| matches!(s, crate::units::restructure::Step::Create { .. })).count();
        }
        // Today's units that serve the public, with their predecessors' level of service.
        let tree = store::units::tree(db).await?;
        let serving: Vec<(String, f64, f64)> = tree
            .all()
            .iter()
            .filter(|u| u.valid_to.is_none() && tree.is_within(u.id, root) && u.id != root && u.level != "special_zone")
            .map(|u| {
                let olds: Vec<f64> = tree
                    .lineage(u.id)
                    .iter()
                    .filter_map(|p| tree.get(*p))
                    .filter_map(|p| BEFORE.iter().position(|b| b.0 == p.code))
                    .map(|i| old_quality[i])
                    .collect();
                let base = if olds.is_empty() { 0.75 } else { olds.iter().sum::<f64>() / olds.len() as f64 };
                let weight = if u.level == "department" { 0.7 } else { 1.0 };
                (u.code.clone(), base, weight)
            })
            .collect();
        for date in after_dates {
            let (code, base, _) = loop {
                let pick = &serving[rng.random_range(0..serving.len().max(1))];
                if rng.random_bool(pick.2) {
                    break pick;
                }
            };
            let years = (date - merger_day()).num_days() as f64 / 365.0;
            let quality = (base + 0.04 + 0.05 * years).min(0.95);
            let body = fake_response(&mut rng, forms, code, quality);
            let unit = store::units::unit_ref(db, code, forms).await?;
            subs.push(valid(&body, unit.as_ref(), forms, today, date)?);
        }
        let txn = store::begin_write(db).await?;
        match store::responses::insert_batch(&txn, &state.catalog, &subs).await? {
            Ok(r) => created = r.created,
            Err(conflicts) => anyhow::bail!("demo data conflicts: {conflicts:?}"),
        }
        txn.commit().await?;
    }

    store::refresh_statistics(db).await?;
    let mut admin = None;
    if store::users::count(db).await? == 0 {
        let email = "admin@demo.sipas.vn".to_string();
        let password = auth::new_token().0[..16].to_string();
        store::users::insert(db, &email, auth::hash_password(&password)?, Role::Admin, None).await?;
        admin = Some((email, password));
    }
    Ok(DemoReport { units_created, responses_created: created, admin })
}

fn valid(
    body: &SubmissionBody,
    unit: Option<&submission::UnitRef>,
    forms: &FormRegistry,
    today: NaiveDate,
    date: NaiveDate,
) -> anyhow::Result<submission::ValidSubmission> {
    submission::validate(body, unit, forms, today, Some(date), true)
        .map_err(|p| anyhow::anyhow!("demo data broke a rule: {:?}", p.to_fields(crate::Lang::En)))
}

/// A unit of 2024 for a response: communes and departments get most visitors, a district's
/// own offices fewer, the province and the city none.
fn pick_before(rng: &mut StdRng) -> usize {
    loop {
        let i = rng.random_range(0..BEFORE.len());
        let weight = match BEFORE[i].2 {
            "commune" => 1.0,
            "department" => 0.7,
            "district" if BEFORE[i].0 != "DN.HS" => 0.25,
            _ => 0.0,
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
