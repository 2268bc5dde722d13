//! The pages, server-rendered with maud (which escapes every value). No
//! string is written here: each comes from the catalogue.

use fluent_bundle::FluentValue;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::backend::{Alert, IssuedTicket, NodeInfo, Quota, Resident, ResidentPage};
use crate::i18n::{Catalogue, Lang};

/// An enrolled resident the node has not heard from for longer than this
/// is marked "no contact for 24 h", ms: a wristband that fell silent for a
/// day (battery, forgotten phone) is what staff should follow up.
pub const NO_CONTACT_MS: i64 = 24 * 3600 * 1000;

/// Widest a label is shown in the residents table, in characters; the
/// whole label is in the cell's title (and on the sheet).
pub const LABEL_CUT: usize = 32;

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

/// The navigation entry a page belongs to.
fn current_nav(title_key: &str) -> &'static str {
    match title_key {
        "residents-title" | "sheet-title" => "nav-residents",
        "node-title" => "nav-node",
        "inbox-title" => "nav-inbox",
        _ => "",
    }
}

/// The page frame: head, navigation (when logged in), language switch.
pub fn layout(c: &Ctx<'_>, title_key: &str, body: Markup) -> Markup {
    let here = current_nav(title_key);
    let current = |id: &str| (id == here).then_some("page");
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
                            a #nav-inbox aria-current=[current("nav-inbox")] href="/" { (c.t("nav-inbox")) }
                            a #nav-residents aria-current=[current("nav-residents")] href="/residents" { (c.t("nav-residents")) }
                            a #nav-node aria-current=[current("nav-node")] href="/node" { (c.t("nav-node")) }
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
            // The live stream sends only the count: app.js words it from
            // these templates. "one" is the line for 1, which is all that
            // category holds in the two catalogue languages; "{n}" (a
            // string, so Fluent picks the default variant) marks the number.
            // aria-live: the count changes while staff watch.
            p #inbox-summary aria-live="polite"
                data-one=(c.ta("inbox-unacked", &[("n", 1.into())]))
                data-other=(c.ta("inbox-unacked", &[("n", "{n}".into())])) {
                (c.ta("inbox-unacked", &[("n", unacked.into())]))
            }
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

/// Whether `r` is enrolled and the node last heard from them more than
/// [`NO_CONTACT_MS`] before `now_ms`.
pub fn silent(r: &Resident, now_ms: i64) -> bool {
    r.status == "enrolled"
        && r.last_contact_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > NO_CONTACT_MS)
}

/// `s` cut to [`LABEL_CUT`] characters, an ellipsis marking the cut.
pub fn cut(s: &str) -> String {
    if s.chars().count() <= LABEL_CUT {
        return s.to_owned();
    }
    let mut c: String = s.chars().take(LABEL_CUT - 1).collect();
    c.truncate(c.trim_end().len());
    c.push('…');
    c
}

/// A byte count: `3.0 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn status_key(status: &str) -> Option<&'static str> {
    Some(match status {
        "unused" => "resident-unused",
        "enrolled" => "resident-enrolled",
        "revoked" => "resident-revoked",
        "period over" => "resident-period-over",
        "ended monitoring" => "resident-ended-monitoring",
        "ended early" => "resident-ended-early",
        _ => return None,
    })
}

/// What the issue form shows again after a refusal.
#[derive(Debug, Clone, Default)]
pub struct IssueForm<'a> {
    /// The label typed.
    pub label: &'a str,
    /// The period typed, days.
    pub days: &'a str,
    /// Why it was refused (a catalogue key), and the node's words if it
    /// was the node.
    pub error: Option<(&'static str, Option<&'a str>)>,
}

/// How the residents list is shown: its search, page, and why the request
/// was refused if it was.
#[derive(Debug, Clone, Default)]
pub struct ListView<'a> {
    /// The search as typed (already checked: short, no control characters).
    pub q: &'a str,
    /// Rows per page.
    pub per_page: usize,
    /// Why the page or search given was refused (a catalogue key).
    pub error: Option<&'static str>,
}

/// A number with thousands separators: `10,000`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `s` percent-encoded for a query string value (everything but unreserved
/// characters), so a search survives a round trip through the links.
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The link to page `n` (1-based) of the list with search `q`.
fn page_link(n: usize, q: &str) -> String {
    if q.is_empty() {
        format!("/residents?page={n}")
    } else {
        format!("/residents?page={n}&q={}", query_value(q))
    }
}

/// The search form, where the list is and which page, and the links to the
/// pages either side.
fn list_nav(c: &Ctx<'_>, page: &ResidentPage, view: &ListView<'_>) -> Markup {
    let per = view.per_page.max(1);
    let number = page.offset / per + 1;
    let pages = page.matching.div_ceil(per).max(1);
    html! {
        form #residents-search method="get" action="/residents" role="search" {
            label for="residents-q" { (c.t("residents-search")) }
            input #residents-q type="search" name="q" value=(view.q) maxlength=(crate::MAX_SEARCH_CHARS);
            button #residents-search-submit type="submit" { (c.t("residents-search-submit")) }
            @if !view.q.is_empty() {
                " " a #residents-search-clear href="/residents" { (c.t("residents-search-clear")) }
            }
        }
        @if let Some(key) = view.error {
            p #residents-error.error role="alert" {
                (c.t(key)) " " a href="/residents" { (c.t("residents-first-page")) }
            }
        }
        p #residents-range aria-live="polite" {
            @if page.matching == 0 {
                @if !view.q.is_empty() {
                    span #residents-none-found { (c.ta("residents-none-found", &[("q", view.q.into())])) }
                }
            } @else {
                (c.ta("residents-range", &[
                    ("from", grouped(page.offset + 1).into()),
                    ("to", grouped(page.offset + page.rows.len()).into()),
                    ("total", grouped(page.matching).into()),
                ]))
                @if !view.q.is_empty() {
                    " " (c.ta("residents-found-in", &[
                        ("q", view.q.into()),
                        ("all", grouped(page.total).into()),
                    ]))
                }
            }
        }
        @if pages > 1 {
            nav #residents-pages aria-label=(c.t("residents-pages")) {
                @if number > 1 {
                    a #page-prev rel="prev" href=(page_link(number - 1, view.q)) { (c.t("residents-prev")) }
                    " "
                }
                span #page-at { (c.ta("residents-page-of", &[("n", grouped(number).into()), ("pages", grouped(pages).into())])) }
                @if number < pages {
                    " "
                    a #page-next rel="next" href=(page_link(number + 1, view.q)) { (c.t("residents-next")) }
                }
            }
        }
    }
}

/// The residents page: the issue form, then one page of the tickets and
/// their state, residents who need attention first.
pub fn residents(
    c: &Ctx<'_>,
    page: &ResidentPage,
    view: &ListView<'_>,
    now_ms: i64,
    form: &IssueForm<'_>,
) -> Markup {
    let list = &page.rows;
    let csrf = c.staff.map_or("", |(_, t)| t);
    let days = if form.days.is_empty() {
        crate::DEFAULT_PERIOD_DAYS.to_string()
    } else {
        form.days.to_owned()
    };
    layout(
        c,
        "residents-title",
        html! {
            h1 { (c.t("residents-title")) }
            section #issue aria-labelledby="issue-heading" {
                h2 #issue-heading { (c.t("issue-title")) }
                @if let Some((key, detail)) = form.error {
                    p #issue-error.error role="alert" {
                        (c.t(key))
                        @if let Some(d) = detail { " " span lang="en" { (d) } }
                    }
                }
                form #issue-ticket method="post" action="/residents" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="ticket-label" { (c.t("issue-label")) }
                    input #ticket-label type="text" name="label" value=(form.label) maxlength="80" required aria-describedby="ticket-label-hint";
                    small #ticket-label-hint.muted { (c.t("issue-label-hint")) }
                    label for="ticket-days" { (c.t("issue-days")) }
                    input #ticket-days type="number" name="days" value=(days) min="1" max=(crate::MAX_PERIOD_DAYS) required;
                    button #issue-submit type="submit" { (c.t("issue-submit")) }
                }
            }
            h2 { (c.t("residents-list")) }
            @if page.total == 0 {
                p #residents-empty { (c.t("residents-empty")) }
            } @else {
                (list_nav(c, page, view))
            }
            @if !list.is_empty() {
                table #residents {
                    thead { tr {
                        th scope="col" { (c.t("col-resident")) }
                        th scope="col" { (c.t("col-state")) }
                        th scope="col" { (c.t("col-period-end")) }
                        th scope="col" { (c.t("col-last-contact")) }
                        th scope="col" { (c.t("col-alerts")) }
                        th scope="col" { span.visually-hidden { (c.t("col-action")) } }
                    } }
                    tbody #resident-rows {
                        @for r in list {
                            tr id={ "resident-" (r.id) } data-status=(r.status) class=[silent(r, now_ms).then_some("silent")] {
                                td.label title=(r.label) { (cut(&r.label)) br; small.muted { (r.id) } }
                                td.state {
                                    (status_key(&r.status).map_or_else(|| r.status.clone(), |k| c.t(k)))
                                }
                                td { (utc(r.period_end_ms)) }
                                td {
                                    @match r.last_contact_ms {
                                        Some(t) => { (utc(t)) br; small { (age(c, t, now_ms)) } },
                                        None => (c.t("never")),
                                    }
                                    @if silent(r, now_ms) {
                                        br; strong.no-contact { (c.t("no-contact")) }
                                    }
                                }
                                td { (c.ta("alerts-count", &[("n", r.alerts.into()), ("new", r.unacked.into())])) }
                                td.actions {
                                    @if let Some(t) = &r.ticket {
                                        a.sheet-link href={ "/residents/" (t) "/sheet" } { (c.t("sheet-link")) }
                                        @if matches!(r.status.as_str(), "unused" | "enrolled") {
                                            form.revoke method="post" action={ "/residents/" (t) "/revoke" }
                                                data-confirm=(c.ta("revoke-confirm", &[("label", cut(&r.label).into())])) {
                                                input type="hidden" name="csrf" value=(csrf);
                                                button.revoke type="submit" { (c.t("revoke")) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What the sheet shows of its ticket.
#[derive(Debug, Clone)]
pub struct SheetTicket<'a> {
    /// The label.
    pub label: &'a str,
    /// The period's end, ms.
    pub period_end_ms: i64,
    /// The ticket and its QR code as SVG, while the server holds them
    /// (right after issuing, for the staff member who issued it).
    pub code: Option<(&'a IssuedTicket, String)>,
}

/// The instructions a resident reads, in one language.
fn instructions(c: &Ctx<'_>, period_end: &str) -> Markup {
    html! {
        section.instructions lang=(c.lang.tag()) {
            h2 { (c.t("sheet-how-title")) }
            ol {
                li { (c.t("sheet-how-app")) }
                li { (c.t("sheet-how-cli")) " " code { (c.t("sheet-how-command")) } }
                li { (c.t("sheet-how-once")) }
            }
            h2 { (c.t("sheet-learns-title")) }
            ul {
                li { (c.t("sheet-learns-alert")) }
                li { (c.t("sheet-learns-sync")) }
                li { (c.t("sheet-learns-size")) }
            }
            h2 { (c.t("sheet-not-title")) }
            ul {
                li { (c.t("sheet-not-readings")) }
                li { (c.t("sheet-not-location")) }
                li { (c.t("sheet-not-notes")) }
                li { (c.ta("sheet-not-after", &[("when", period_end.into())])) }
            }
        }
    }
}

/// The printable enrolment sheet: the ticket (text and QR code) and the
/// instructions in plain words, in the page's language and then the other.
pub fn sheet(c: &Ctx<'_>, t: &SheetTicket<'_>) -> Markup {
    let end = utc(t.period_end_ms);
    let other = Ctx {
        lang: match c.lang {
            Lang::En => Lang::ZhCn,
            Lang::ZhCn => Lang::En,
        },
        ..*c
    };
    layout(
        c,
        "sheet-title",
        html! {
            article #sheet {
                h1 { (c.t("sheet-title")) }
                p #sheet-label { (c.ta("sheet-for", &[("label", t.label.into())])) }
                p #sheet-period-end { (c.ta("sheet-period-end", &[("when", end.clone().into())])) }
                @match &t.code {
                    Some((ticket, svg)) => {
                        div #sheet-qr role="img" aria-label=(c.t("sheet-qr-alt")) { (PreEscaped(svg)) }
                        p { (c.t("sheet-code-label")) }
                        code #sheet-ticket { (ticket.ticket.as_str()) }
                        p.no-print { button #print-sheet type="button" { (c.t("sheet-print")) } }
                    }
                    None => {
                        p #sheet-no-code.error { (c.t("sheet-no-code")) }
                    }
                }
                (instructions(c, &end))
                (instructions(&other, &end))
            }
        },
    )
}

fn quota_row(c: &Ctx<'_>, id: &str, key: &str, q: Quota, as_bytes: bool) -> Markup {
    let show = |n: u64| if as_bytes { bytes(n) } else { n.to_string() };
    html! {
        tr id=(id) {
            th scope="row" { (c.t(key)) }
            td { (show(q.used)) " / " (show(q.max)) }
        }
    }
}

/// The node page.
pub fn node(c: &Ctx<'_>, n: &NodeInfo) -> Markup {
    layout(
        c,
        "node-title",
        html! {
            section #node {
                h1 { (c.t("node-title")) }
                dl {
                    dt { (c.t("node-code")) }
                    @match &n.code {
                        Some(text) => dd #node-code { code { (text) } },
                        None => dd #node-no-code { (c.t("node-no-code")) },
                    }
                    dt { (c.t("node-fingerprint")) }
                    dd #node-fingerprint { code { (n.fingerprint) } }
                    dt { (c.t("node-listen")) }
                    dd #node-listen { (n.listen) }
                    dt { (c.t("node-started")) }
                    dd #node-started { (utc(n.started_ms)) " · " (c.t("node-version")) " " (n.version) }
                }
                h2 { (c.t("node-storage")) }
                table #node-storage {
                    thead { tr {
                        th scope="col" { (c.t("col-what")) }
                        th scope="col" { (c.t("col-used")) }
                    } }
                    tbody {
                        (quota_row(c, "quota-mailboxes", "node-mailboxes", n.mailboxes, false))
                        (quota_row(c, "quota-ciphertext", "node-ciphertext", n.blob_bytes, true))
                        (quota_row(c, "quota-tickets", "node-unused-tickets", n.unused_tickets, false))
                        (quota_row(c, "quota-pairings", "node-pairings", n.pairing_slots, false))
                        (quota_row(c, "quota-grant-keys", "node-grant-keys", n.grant_keys, false))
                        tr #quota-per-vault {
                            th scope="row" { (c.t("node-per-vault")) }
                            td { (bytes(n.max_bytes_per_vault)) }
                        }
                        tr #node-disk {
                            th scope="row" { (c.t("node-disk")) }
                            td { (bytes(n.store_bytes)) }
                        }
                    }
                }
                h2 { (c.t("node-sweep")) }
                div #node-last-sweep {
                    @match &n.last_sweep {
                        None => p { (c.t("node-sweep-none")) },
                        Some(s) => {
                            p { (c.ta("node-sweep-at", &[("when", utc(s.at_ms).into())])) }
                            p { (c.ta("node-sweep-removed", &[
                                ("mailboxes", s.mailboxes.into()),
                                ("blobs", s.blobs.into()),
                                ("bytes", bytes(s.bytes).into()),
                                ("grants", s.grants.into()),
                                ("alerts", s.alerts.into()),
                                ("tickets", s.tickets.into()),
                            ])) }
                        }
                    }
                }
                h2 { (c.t("node-receipts-title")) }
                p { (c.t("node-receipts")) " " strong #node-receipts { (n.receipts) } }
            }
        },
    )
}

/// Text for the live stream: one SSE data line (no raw line breaks).
pub fn one_line(m: Markup) -> String {
    let PreEscaped(s) = m;
    s.replace('\r', "&#13;").replace('\n', "&#10;")
}
