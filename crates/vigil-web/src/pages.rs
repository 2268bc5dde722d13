//! The pages, server-rendered with maud (which escapes every value). No
//! string is written here: each comes from the catalogue.

use fluent_bundle::FluentValue;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::backend::{Alert, Resident};
use crate::i18n::{Catalogue, Lang};

/// What every page needs.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The catalogue.
    pub cat: &'a Catalogue,
    /// The page's language.
    pub lang: Lang,
    /// The staff member logged in, and the session's CSRF token.
    pub staff: Option<(&'a str, &'a str)>,
}

impl Ctx<'_> {
    fn t(&self, key: &str) -> String {
        self.cat.tr(self.lang, key)
    }
    fn ta(&self, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        self.cat.tr_args(self.lang, key, args)
    }
}

/// A time as `2026-11-29 20:31 UTC`.
fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| "?".into())
}

fn age(c: &Ctx<'_>, ms: i64, now_ms: i64) -> String {
    let mins = (now_ms.saturating_sub(ms) / 60_000).max(0);
    if mins < 1 {
        c.t("age-now")
    } else if mins < 120 {
        c.ta("age-minutes", &[("n", mins.into())])
    } else if mins < 48 * 60 {
        c.ta("age-hours", &[("n", (mins / 60).into())])
    } else {
        c.ta("age-days", &[("n", (mins / 1440).into())])
    }
}

/// The page frame: head, navigation (when logged in), language switch.
pub fn layout(c: &Ctx<'_>, title_key: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(c.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (c.t(title_key)) " · " (c.t("app-name")) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header {
                    span.brand { (c.t("app-name")) }
                    @if let Some((name, csrf)) = c.staff {
                        nav aria-label=(c.t("nav-label")) {
                            a #nav-inbox href="/" { (c.t("nav-inbox")) }
                        }
                        span #whoami { (c.ta("signed-in-as", &[("name", name.into())])) }
                        form #logout-form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button #logout type="submit" { (c.t("logout")) }
                        }
                    }
                    span.lang-switch {
                        a #lang-en href="/lang/en" lang="en" hreflang="en" { "English" }
                        " · "
                        a #lang-zh href="/lang/zh-CN" lang="zh-CN" hreflang="zh-CN" { "中文" }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The login page; `error` is a catalogue key.
pub fn login(c: &Ctx<'_>, pre_csrf: &str, error: Option<&str>) -> Markup {
    layout(
        c,
        "login-title",
        html! {
            h1 { (c.t("login-title")) }
            @if let Some(e) = error {
                p #login-error.error role="alert" { (c.t(e)) }
            }
            form #login-form method="post" action="/login" {
                input type="hidden" name="csrf" value=(pre_csrf);
                label for="login-name" { (c.t("login-name")) }
                input #login-name type="text" name="name" autocomplete="username" required;
                label for="login-password" { (c.t("login-password")) }
                input #login-password type="password" name="password" autocomplete="current-password" required;
                button #login-submit type="submit" { (c.t("login-submit")) }
            }
        },
    )
}

/// The inbox table's rows (also what the live stream sends).
pub fn inbox_rows(c: &Ctx<'_>, alerts: &[Alert], now_ms: i64) -> Markup {
    let csrf = c.staff.map_or("", |(_, t)| t);
    html! {
        @if alerts.is_empty() {
            tr #inbox-empty { td colspan="7" { (c.t("inbox-empty")) } }
        }
        // Newest first: the one staff must see is at the top.
        @for a in alerts.iter().rev() {
            tr id={ "alert-" (a.id) } class=(if a.acked_ms.is_none() { "unacked" } else { "acked" }) {
                td.what {
                    (c.t(if a.kind == 2 { "alert-ended" } else { "alert-started" }))
                    @if a.monitoring_ended_ms.is_some() {
                        br; small { (c.t("alert-monitoring-ended")) }
                    }
                }
                td.label { (a.label) }
                td { (utc(a.onset_ms)) }
                td { (c.t(match a.level { 1 => "level-1", 2 => "level-2", 3 => "level-3", _ => "level-unknown" })) }
                td { (age(c, a.received_ms, now_ms)) }
                td.status {
                    @match a.acked_ms {
                        None => strong { (c.t("status-new")) },
                        Some(t) => {
                            (c.ta("status-acked", &[
                                ("when", utc(t).into()),
                                ("name", a.acked_by.clone().unwrap_or_else(|| c.t("someone")).into()),
                            ]))
                        }
                    }
                }
                td {
                    @if a.acked_ms.is_none() {
                        form.ack method="post" action={ "/alerts/" (a.id) "/ack" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button id={ "ack-" (a.id) } type="submit" { (c.t("ack")) }
                        }
                    }
                }
            }
        }
    }
}

/// The inbox page.
pub fn inbox(c: &Ctx<'_>, rows: Markup, unacked: usize) -> Markup {
    layout(
        c,
        "inbox-title",
        html! {
            h1 { (c.t("inbox-title")) }
            p #inbox-summary { (c.ta("inbox-unacked", &[("n", unacked.into())])) }
            p #live-status.muted aria-live="polite" data-connected=(c.t("live-on")) data-lost=(c.t("live-lost")) { (c.t("live-connecting")) }
            table #inbox-table {
                thead { tr {
                    th scope="col" { (c.t("col-alert")) }
                    th scope="col" { (c.t("col-resident")) }
                    th scope="col" { (c.t("col-onset")) }
                    th scope="col" { (c.t("col-level")) }
                    th scope="col" { (c.t("col-age")) }
                    th scope="col" { (c.t("col-status")) }
                    th scope="col" { span.visually-hidden { (c.t("col-action")) } }
                } }
                tbody #inbox-rows { (rows) }
            }
        },
    )
}

/// A short error page; `key` is a catalogue key.
pub fn error(c: &Ctx<'_>, key: &str) -> Markup {
    layout(
        c,
        "error-title",
        html! {
            h1 { (c.t("error-title")) }
            p #error-message { (c.t(key)) }
            p { a href="/" { (c.t("back")) } }
        },
    )
}

/// An enrolled resident the node has not heard from for longer than this
/// is marked "no contact for 24 h", ms.
pub const NO_CONTACT_MS: i64 = 24 * 3600 * 1000;

/// Whether `r` is enrolled and silent for longer than [`NO_CONTACT_MS`].
pub fn silent(r: &Resident, now_ms: i64) -> bool {
    r.status == "enrolled"
        && r.last_contact_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > NO_CONTACT_MS)
}

/// Text for the live stream: one SSE data line (no raw line breaks).
pub fn one_line(m: Markup) -> String {
    let PreEscaped(s) = m;
    s.replace('\r', "&#13;").replace('\n', "&#10;")
}
