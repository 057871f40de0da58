//! Improvement plans (kế hoạch khắc phục): a unit's answer to the criteria where it lost
//! points, and whether the criterion moved afterwards.
//!
//! - A plan names one or more index items of its form. When it is made, each item's figure
//!   for the chosen baseline period (a calendar year, quarter or month) is frozen as the
//!   publication gate showed it then: answers, satisfied answers and interval, or only that
//!   it was withheld. Later responses never change a baseline.
//! - "Did it work?" compares two periods of the same length: by default the frozen baseline
//!   against the first whole period of the same kind that starts on or after the deadline;
//!   or, from a chosen date, the period of that kind starting on or after it against the one
//!   just before. The change is `after − before` in points with the 95% Newcombe–Wilson
//!   interval for a difference of two independent proportions (different periods: different
//!   respondents): improved when the whole interval is above 0, worse when it is below 0,
//!   otherwise no clear change. A withheld cell (under k, or protecting another) on either
//!   side gives no verdict, and neither does a period that has not ended.
//!
//! Unit managers write the plans of the units in their scope, admins any; analysts read and
//! comment; whoever can see a unit can comment on its plans. Every change is audited.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::index::compare::newcombe;
use crate::index::engine::{ItemFigure, wilson};
use crate::index::period::Period;

pub mod service;

/// Where a plan stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    InProgress,
    Done,
    Dropped,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Open, Status::InProgress, Status::Done, Status::Dropped];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::Done => "done",
            Status::Dropped => "dropped",
        }
    }

    pub fn parse(value: &str) -> Option<Status> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Still being carried out: open or in progress.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Open | Status::InProgress)
    }

    pub fn label(self, lang: crate::Lang) -> &'static str {
        use crate::Lang::{En, Vi};
        match (self, lang) {
            (Status::Open, Vi) => "Mới lập",
            (Status::Open, En) => "Open",
            (Status::InProgress, Vi) => "Đang thực hiện",
            (Status::InProgress, En) => "In progress",
            (Status::Done, Vi) => "Đã hoàn thành",
            (Status::Done, En) => "Done",
            (Status::Dropped, Vi) => "Đã hủy",
            (Status::Dropped, En) => "Dropped",
        }
    }
}

/// A criterion's figure for one period, as the publication gate showed it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Figure {
    /// `2025-Q2`.
    pub period: String,
    /// Answers (shown only with the figure).
    pub n: Option<u64>,
    #[serde(skip)]
    pub satisfied: Option<u64>,
    /// Percent satisfied.
    pub value: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    /// The gate withholds the cell (fewer than k answers, or it would reveal a small group).
    pub withheld: bool,
}

impl Figure {
    /// From a published item figure (None: the form has no such item in the cell).
    pub fn of(period: &Period, item: Option<&ItemFigure>) -> Figure {
        match item.filter(|i| !i.suppressed && i.value.is_some()).and_then(|i| Some((i.n, i.satisfied?))) {
            Some((n, s)) => Figure::shown(period.label(), n, s),
            None => Figure::withheld(period.label()),
        }
    }

    pub fn shown(period: String, n: u64, satisfied: u64) -> Figure {
        Figure {
            period,
            n: Some(n),
            satisfied: Some(satisfied),
            value: (n > 0).then(|| 100.0 * satisfied as f64 / n as f64),
            ci95: wilson(satisfied, n),
            withheld: false,
        }
    }

    pub fn withheld(period: String) -> Figure {
        Figure { period, n: None, satisfied: None, value: None, ci95: None, withheld: true }
    }
}

/// What the figures say about a criterion after the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    NoClearChange,
    Worse,
    /// A side is withheld by the gate: no verdict.
    Withheld,
    /// The period after has not ended yet.
    NotYet,
}

impl Verdict {
    pub fn label(self, lang: crate::Lang) -> &'static str {
        use crate::Lang::{En, Vi};
        match (self, lang) {
            (Verdict::Improved, Vi) => "Đã cải thiện",
            (Verdict::Improved, En) => "Improved",
            (Verdict::NoClearChange, Vi) => "Chưa có thay đổi rõ rệt",
            (Verdict::NoClearChange, En) => "No clear change",
            (Verdict::Worse, Vi) => "Kém đi",
            (Verdict::Worse, En) => "Worse",
            (Verdict::Withheld, Vi) => "Không đủ phiếu để kết luận",
            (Verdict::Withheld, En) => "Too few responses to tell",
            (Verdict::NotYet, Vi) => "Chưa hết kỳ đánh giá",
            (Verdict::NotYet, En) => "The period after has not ended",
        }
    }
}

/// Before against after for one criterion.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Change {
    pub code: String,
    pub before: Figure,
    pub after: Figure,
    /// `after − before`, in points.
    pub change: Option<f64>,
    /// 95% interval of the change, in points.
    pub ci95: Option<[f64; 2]>,
    pub verdict: Verdict,
}

/// The verdict on two figures of a criterion; `ended` says whether the period after is over.
pub fn judge(code: &str, before: Figure, after: Figure, ended: bool) -> Change {
    let counts = |f: &Figure| f.n.zip(f.satisfied).filter(|(n, _)| *n > 0 && !f.withheld);
    let (change, ci95, verdict) = match (counts(&before), counts(&after)) {
        (Some((n0, s0)), Some((n1, s1))) => {
            let change = 100.0 * (s1 as f64 / n1 as f64 - s0 as f64 / n0 as f64);
            let ci = newcombe(s1, n1, s0, n0).map(|[lo, hi]| [100.0 * lo, 100.0 * hi]);
            let verdict = match ci {
                _ if !ended => Verdict::NotYet,
                Some([lo, _]) if lo > 0.0 => Verdict::Improved,
                Some([_, hi]) if hi < 0.0 => Verdict::Worse,
                _ => Verdict::NoClearChange,
            };
            (Some(change), ci, verdict)
        }
        _ if !ended && !before.withheld => (None, None, Verdict::NotYet),
        _ => (None, None, Verdict::Withheld),
    };
    Change { code: code.to_string(), before, after, change, ci95, verdict }
}

/// The period of the same length just after `p` (a year, quarter or month: the gate's cells).
pub fn next(p: &Period) -> Period {
    let months = match p.label() {
        l if l.contains('Q') => 3,
        l if l.len() == 4 => 12,
        _ => 1,
    };
    let from = p.to.succ_opt().unwrap_or(p.to);
    let to = from.checked_add_months(chrono::Months::new(months)).and_then(|d| d.pred_opt()).unwrap_or(from);
    Period { from, to }
}

/// The first period of the same kind as `like` that starts on or after `date`.
pub fn first_from(like: &Period, date: NaiveDate) -> Period {
    let mut p = *like;
    // Back first when the date is before the baseline (a chosen date may be anything).
    while p.from > date {
        let before = p.previous();
        if before.from <= date {
            break;
        }
        p = before;
    }
    while p.from < date {
        p = next(&p);
    }
    p
}

/// The two periods compared: (before, after). Without a chosen date, the baseline and the
/// first period of its kind from the deadline; with one, the period of that kind from the
/// date and the one just before it.
pub fn periods(baseline: &Period, deadline: NaiveDate, chosen: Option<NaiveDate>) -> (Period, Period) {
    match chosen {
        None => (*baseline, first_from(baseline, deadline)),
        Some(date) => {
            let after = first_from(baseline, date);
            (after.previous(), after)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    fn q(spec: &str) -> Period {
        Period::parse(spec).unwrap_or(Period { from: d(2000, 1, 1), to: d(2000, 1, 1) })
    }

    #[test]
    fn the_period_after_is_the_first_whole_one_from_the_deadline() {
        assert_eq!(first_from(&q("2025-Q2"), d(2025, 9, 15)), q("2025-Q4"));
        assert_eq!(first_from(&q("2025-Q2"), d(2025, 10, 1)), q("2025-Q4"));
        assert_eq!(first_from(&q("2025-03"), d(2025, 3, 2)), q("2025-04"));
        assert_eq!(first_from(&q("2024"), d(2024, 6, 30)), q("2025"));
        assert_eq!(first_from(&q("2025-Q4"), d(2025, 2, 1)), q("2025-Q2"));
        assert_eq!(next(&q("2025-Q4")), q("2026-Q1"));
        assert_eq!(periods(&q("2025-Q1"), d(2025, 5, 1), Some(d(2025, 7, 1))), (q("2025-Q2"), q("2025-Q3")));
    }

    #[test]
    fn verdicts_follow_the_interval_of_the_change() {
        let f = |n, s| Figure::shown("p".into(), n, s);
        // 50% → 75% on 200 answers each: the interval is well above 0.
        assert_eq!(judge("A1", f(200, 100), f(200, 150), true).verdict, Verdict::Improved);
        assert_eq!(judge("A1", f(200, 150), f(200, 100), true).verdict, Verdict::Worse);
        // 50% → 53% on 100 each: within the uncertainty.
        let same = judge("A1", f(100, 50), f(100, 53), true);
        assert_eq!(same.verdict, Verdict::NoClearChange);
        assert!(same.ci95.is_some_and(|[lo, hi]| lo < 0.0 && hi > 0.0));
        assert!((same.change.unwrap_or_default() - 3.0).abs() < 1e-9);
        // A withheld side never gives a verdict, whatever the other shows.
        let hidden = judge("A1", f(200, 100), Figure::withheld("p".into()), true);
        assert_eq!((hidden.verdict, hidden.change, hidden.ci95), (Verdict::Withheld, None, None));
        assert_eq!(judge("A1", Figure::withheld("p".into()), f(200, 190), true).verdict, Verdict::Withheld);
        // A period that has not ended gives none either.
        assert_eq!(judge("A1", f(200, 100), f(200, 190), false).verdict, Verdict::NotYet);
    }
}
