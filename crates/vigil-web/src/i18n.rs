//! The message catalogues (Fluent): English and Simplified Chinese. Every
//! string a page shows comes from here.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// English source.
pub const EN_FTL: &str = include_str!("../i18n/en.ftl");
/// Simplified Chinese source.
pub const ZH_FTL: &str = include_str!("../i18n/zh-CN.ftl");

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Lang {
    /// The tag, for `<html lang>` and the cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// A tag from the cookie or the switch; `None` if not one of ours.
    pub fn from_tag(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh-CN" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    /// The best of ours for an `Accept-Language` header (English when none
    /// fits): highest q first, ties in the order given.
    pub fn from_accept(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag == "zh" || tag.starts_with("zh-") {
                Lang::ZhCn
            } else if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

/// Both catalogues, parsed once.
pub struct Catalogue {
    en: FluentBundle<FluentResource>,
    zh: FluentBundle<FluentResource>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalogue")
    }
}

fn bundle(tag: &str, src: &str) -> FluentBundle<FluentResource> {
    // Both sources are compiled in and parsed by the tests, so a parse
    // error cannot reach a running node; the tests fail on one.
    let res = FluentResource::try_new(src.to_owned()).unwrap_or_else(|(r, _)| r);
    let lang = tag.parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![lang]);
    // No Unicode isolation marks around arguments: the pages are plain text.
    b.set_use_isolating(false);
    let _ = b.add_resource(res);
    b
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue {
            en: bundle("en", EN_FTL),
            zh: bundle("zh-CN", ZH_FTL),
        }
    }
}

impl Catalogue {
    /// The message `key` in `lang`, with `args`; the key itself if missing
    /// (a test keeps every key in both catalogues).
    pub fn tr_args(&self, lang: Lang, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let b = match lang {
            Lang::En => &self.en,
            Lang::ZhCn => &self.zh,
        };
        let Some(pattern) = b.get_message(key).and_then(|m| m.value()) else {
            return key.to_owned();
        };
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            fa.set(*k, v.clone());
        }
        let mut errors = vec![];
        b.format_pattern(pattern, Some(&fa), &mut errors)
            .into_owned()
    }

    /// The message `key` in `lang`.
    pub fn tr(&self, lang: Lang, key: &str) -> String {
        self.tr_args(lang, key, &[])
    }
}

/// The message ids in a Fluent source (lines `id = ...`).
pub fn keys(src: &str) -> std::collections::BTreeSet<String> {
    src.lines()
        .filter_map(|l| l.split_once(" ="))
        .map(|(k, _)| k)
        .filter(|k| {
            k.starts_with(|c: char| c.is_ascii_lowercase())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_parse_and_have_the_same_keys() {
        for src in [EN_FTL, ZH_FTL] {
            assert!(FluentResource::try_new(src.to_owned()).is_ok());
        }
        let (en, zh) = (keys(EN_FTL), keys(ZH_FTL));
        assert!(en.len() > 20);
        assert_eq!(
            en.symmetric_difference(&zh).collect::<Vec<_>>(),
            Vec::<&String>::new()
        );
        let c = Catalogue::default();
        for k in &en {
            assert_ne!(c.tr(Lang::En, k), *k, "{k} has no English value");
            assert_ne!(c.tr(Lang::ZhCn, k), *k, "{k} has no Chinese value");
        }
    }

    #[test]
    fn accept_language() {
        assert_eq!(Lang::from_accept("zh-CN,zh;q=0.9,en;q=0.8"), Lang::ZhCn);
        assert_eq!(Lang::from_accept("en-GB,zh;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept("fr, zh-TW;q=0.7"), Lang::ZhCn);
        assert_eq!(Lang::from_accept("de"), Lang::En);
        assert_eq!(Lang::from_accept("en;q=0.2, zh;q=0.9"), Lang::ZhCn);
    }
}
