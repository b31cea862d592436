//! Saying numbers, digit strings, money, dates and times in English and Chinese, built
//! from the number-word prompts of a prompt set: [`say`] turns a value into the list of
//! prompt names to play (`n3`, `hundred`, `n20`, ...), and [`words`] lists the names a
//! set must have for a language.

/// A language of prompts and say nodes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// What a value is, for saying it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SayKind {
    /// An integer or decimal number: "one hundred and five", "一百零五".
    Number,
    /// Digit by digit (a ticket or phone number); `*` and `#` are "star" and "hash".
    Digits,
    /// An amount in yuan with up to two decimals.
    Money,
    /// `YYYY-MM-DD`.
    Date,
    /// `HH:MM` (24-hour).
    Time,
    /// `YYYY-MM-DD HH:MM` (or with a `T`).
    DateTime,
}

impl SayKind {
    pub fn parse(s: &str) -> Option<SayKind> {
        Some(match s {
            "number" => SayKind::Number,
            "digits" => SayKind::Digits,
            "money" => SayKind::Money,
            "date" => SayKind::Date,
            "time" => SayKind::Time,
            "datetime" => SayKind::DateTime,
            _ => return None,
        })
    }
}

const EN_WORDS: &[&str] = &[
    "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12", "n13", "n14", "n15",
    "n16", "n17", "n18", "n19", "n20", "n30", "n40", "n50", "n60", "n70", "n80", "n90", "hundred",
    "thousand", "million", "billion", "and", "minus", "point", "star", "hash", "yuan", "cents", "oh",
    "oclock", "am", "pm", "month1", "month2", "month3", "month4", "month5", "month6", "month7", "month8",
    "month9", "month10", "month11", "month12",
];

const ZH_WORDS: &[&str] = &[
    "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "liang", "shi", "bai", "qian", "wan", "yi",
    "fu", "dian", "star", "hash", "yuan", "jiao", "fen", "zheng", "nian", "yue", "ri",
];

/// The number-word prompt names a set of this language needs for say nodes.
pub fn words(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => EN_WORDS,
        Lang::Zh => ZH_WORDS,
    }
}

/// The prompt names that say `value` as `kind` in `lang`, or what was wrong with it.
pub fn say(kind: SayKind, value: &str, lang: Lang) -> Result<Vec<String>, String> {
    let v = value.trim();
    let mut out = Vec::new();
    match kind {
        SayKind::Number => number(v, lang, &mut out)?,
        SayKind::Digits => {
            if v.is_empty() {
                return Err("nothing to say: expected digits".into());
            }
            for c in v.chars() {
                match c {
                    '0'..='9' => out.push(format!("n{c}")),
                    '*' => out.push("star".into()),
                    '#' => out.push("hash".into()),
                    ' ' | '-' => {}
                    _ => return Err(format!("cannot say {v:?} as digits: expected 0-9, * and #")),
                }
            }
        }
        SayKind::Money => money(v, lang, &mut out)?,
        SayKind::Date => date(v, lang, &mut out)?,
        SayKind::Time => time(v, lang, &mut out)?,
        SayKind::DateTime => {
            let (d, t) = v
                .split_once([' ', 'T'])
                .ok_or_else(|| format!("cannot say {v:?} as date and time: expected YYYY-MM-DD HH:MM"))?;
            date(d, lang, &mut out)?;
            time(t, lang, &mut out)?;
        }
    }
    Ok(out)
}

fn number(v: &str, lang: Lang, out: &mut Vec<String>) -> Result<(), String> {
    let bad = || format!("cannot say {v:?} as a number: expected digits, an optional - and decimals");
    let (neg, body) = match v.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, v),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let n: u64 = int.parse().map_err(|_| bad())?;
    if n >= 1_000_000_000_000 {
        return Err(format!("cannot say {v:?}: numbers up to 999,999,999,999"));
    }
    if neg {
        out.push(if lang == Lang::En { "minus" } else { "fu" }.into());
    }
    integer(n, lang, out);
    if !frac.is_empty() {
        out.push(if lang == Lang::En { "point" } else { "dian" }.into());
        for c in frac.chars() {
            out.push(format!("n{c}"));
        }
    }
    Ok(())
}

/// An integer below 10^12.
pub fn integer(n: u64, lang: Lang, out: &mut Vec<String>) {
    match lang {
        Lang::En => en_integer(n, out),
        Lang::Zh => zh_integer(n, out),
    }
}

fn en_below_1000(n: u64, out: &mut Vec<String>) {
    let (h, rest) = (n / 100, n % 100);
    if h > 0 {
        out.push(format!("n{h}"));
        out.push("hundred".into());
        if rest > 0 {
            out.push("and".into());
        }
    }
    if rest == 0 {
        return;
    }
    if rest < 20 {
        out.push(format!("n{rest}"));
    } else {
        out.push(format!("n{}", rest / 10 * 10));
        if rest % 10 > 0 {
            out.push(format!("n{}", rest % 10));
        }
    }
}

fn en_integer(n: u64, out: &mut Vec<String>) {
    if n == 0 {
        out.push("n0".into());
        return;
    }
    for (scale, word) in
        [(1_000_000_000, Some("billion")), (1_000_000, Some("million")), (1_000, Some("thousand")), (1, None)]
    {
        let part = n / scale % 1000;
        if part == 0 {
            continue;
        }
        // "one thousand and five": British "and" before a last part under a hundred.
        if scale == 1 && part < 100 && n >= 1000 {
            out.push("and".into());
        }
        en_below_1000(part, out);
        if let Some(w) = word {
            out.push(w.into());
        }
    }
}

/// Chinese: groups of four digits with 万 and 亿; one 零 for any run of zeros between
/// digits; 两 for 2 before 百, 千, 万 and 亿; 十 alone (not 一十) at the head.
fn zh_integer(n: u64, out: &mut Vec<String>) {
    if n == 0 {
        out.push("n0".into());
        return;
    }
    let groups = [(n / 100_000_000, Some("yi")), (n / 10_000 % 10_000, Some("wan")), (n % 10_000, None)];
    let mut started = false;
    let mut zero_pending = false;
    for (g, unit) in groups {
        if g == 0 {
            if started {
                zero_pending = true;
            }
            continue;
        }
        if started && (zero_pending || g < 1000) {
            out.push("n0".into());
        }
        zh_group(g, !started, unit.is_some(), out);
        if let Some(u) = unit {
            out.push(u.into());
        }
        started = true;
        zero_pending = false;
    }
}

fn zh_group(g: u64, head: bool, before_unit: bool, out: &mut Vec<String>) {
    let digits = [g / 1000, g / 100 % 10, g / 10 % 10, g % 10];
    let units = [Some("qian"), Some("bai"), Some("shi"), None];
    let first = digits.iter().position(|&d| d > 0).unwrap_or(3);
    let mut zero = false;
    for i in first..4 {
        let d = digits[i];
        if d == 0 {
            zero = true;
            continue;
        }
        if zero {
            out.push("n0".into());
            zero = false;
        }
        let only = g == d * 10u64.pow(3 - i as u32);
        if i == 2 && d == 1 && head && first == 2 {
            // 十二, not 一十二, at the head of the number.
        } else if d == 2 && (i < 2 || (i == 3 && only && before_unit && head)) {
            out.push("liang".into());
        } else {
            out.push(format!("n{d}"));
        }
        if let Some(u) = units[i] {
            out.push(u.into());
        }
    }
}

fn money(v: &str, lang: Lang, out: &mut Vec<String>) -> Result<(), String> {
    let bad = || format!("cannot say {v:?} as money: expected an amount like 12 or 12.50");
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() || frac.len() > 2 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let yuan: u64 = int.parse().map_err(|_| bad())?;
    if yuan >= 1_000_000_000_000 {
        return Err(bad());
    }
    let cents: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    match lang {
        Lang::En => {
            en_integer(yuan, out);
            out.push("yuan".into());
            if cents > 0 {
                out.push("and".into());
                en_below_1000(cents, out);
                out.push("cents".into());
            }
        }
        Lang::Zh => {
            zh_integer(yuan, out);
            out.push("yuan".into());
            let (jiao, fen) = (cents / 10, cents % 10);
            if jiao > 0 {
                out.push(format!("n{jiao}"));
                out.push("jiao".into());
            }
            if fen > 0 {
                if jiao == 0 {
                    out.push("n0".into());
                }
                out.push(format!("n{fen}"));
                out.push("fen".into());
            }
            if cents == 0 {
                out.push("zheng".into());
            }
        }
    }
    Ok(())
}

fn date(v: &str, lang: Lang, out: &mut Vec<String>) -> Result<(), String> {
    let bad = || format!("cannot say {v:?} as a date: expected YYYY-MM-DD");
    let mut it = v.trim().split('-');
    let (y, m, d) = (it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?);
    if it.next().is_some() || y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let m: u64 = m.parse().map_err(|_| bad())?;
    let d: u64 = d.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let year: u64 = y.parse().map_err(|_| bad())?;
    match lang {
        Lang::En => {
            out.push(format!("month{m}"));
            en_integer(d, out);
            // Years read in pairs ("twenty twenty-six") except 2000-2009.
            if (2000..2010).contains(&year) || year % 100 == 0 {
                en_integer(year, out);
            } else {
                en_below_1000(year / 100, out);
                if year % 100 < 10 {
                    out.push("oh".into());
                }
                en_below_1000(year % 100, out);
            }
        }
        Lang::Zh => {
            for c in y.chars() {
                out.push(format!("n{c}"));
            }
            out.push("nian".into());
            zh_integer(m, out);
            out.push("yue".into());
            zh_integer(d, out);
            out.push("ri".into());
        }
    }
    Ok(())
}

fn time(v: &str, lang: Lang, out: &mut Vec<String>) -> Result<(), String> {
    let bad = || format!("cannot say {v:?} as a time: expected HH:MM (24-hour)");
    let (h, m) = v.trim().split_once(':').ok_or_else(bad)?;
    // Seconds, when given, are not said.
    let m = m.split(':').next().unwrap_or(m);
    let h: u64 = h.parse().map_err(|_| bad())?;
    let m: u64 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    match lang {
        Lang::En => {
            let h12 = if h % 12 == 0 { 12 } else { h % 12 };
            en_integer(h12, out);
            if m == 0 {
                out.push("oclock".into());
            } else {
                if m < 10 {
                    out.push("oh".into());
                }
                en_below_1000(m, out);
            }
            out.push(if h < 12 { "am" } else { "pm" }.into());
        }
        Lang::Zh => {
            // 两点, not 二点.
            if h == 2 {
                out.push("liang".into());
            } else {
                zh_integer(h, out);
            }
            out.push("dian".into());
            if m == 0 {
                out.push("zheng".into());
            } else {
                if m < 10 {
                    out.push("n0".into());
                }
                zh_integer(m, out);
                out.push("fen".into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zh(n: u64) -> String {
        let mut out = Vec::new();
        zh_integer(n, &mut out);
        out.iter()
            .map(|w| match w.as_str() {
                "liang" => "两".to_string(),
                "shi" => "十".into(),
                "bai" => "百".into(),
                "qian" => "千".into(),
                "wan" => "万".into(),
                "yi" => "亿".into(),
                d => {
                    "零一二三四五六七八九".chars().nth(d[1..].parse::<usize>().unwrap()).unwrap().to_string()
                }
            })
            .collect()
    }

    fn en(kind: SayKind, v: &str) -> String {
        say(kind, v, Lang::En).unwrap().join(" ")
    }

    #[test]
    fn chinese_numbers_read_as_a_person_says_them() {
        assert_eq!(zh(0), "零");
        assert_eq!(zh(10), "十");
        assert_eq!(zh(12), "十二");
        assert_eq!(zh(20), "二十");
        assert_eq!(zh(105), "一百零五");
        assert_eq!(zh(110), "一百一十");
        assert_eq!(zh(200), "两百");
        assert_eq!(zh(1001), "一千零一");
        assert_eq!(zh(2000), "两千");
        assert_eq!(zh(10_010), "一万零一十");
        assert_eq!(zh(20_000), "两万");
        assert_eq!(zh(100_000), "十万");
        assert_eq!(zh(1_000_500), "一百万零五百");
        assert_eq!(zh(300_000_002), "三亿零二");
        assert_eq!(zh(12_345_678), "一千两百三十四万五千六百七十八");
    }

    #[test]
    fn english_numbers_money_dates_and_times() {
        assert_eq!(en(SayKind::Number, "0"), "n0");
        assert_eq!(en(SayKind::Number, "115"), "n1 hundred and n15");
        assert_eq!(en(SayKind::Number, "2005"), "n2 thousand and n5");
        assert_eq!(en(SayKind::Number, "-3.25"), "minus n3 point n2 n5");
        assert_eq!(en(SayKind::Money, "42.5"), "n40 n2 yuan and n50 cents");
        assert_eq!(en(SayKind::Digits, "12#"), "n1 n2 hash");
        assert_eq!(en(SayKind::Date, "2026-03-05"), "month3 n5 n20 n20 n6");
        assert_eq!(en(SayKind::Time, "14:05"), "n2 oh n5 pm");
        assert_eq!(en(SayKind::Time, "00:00"), "n12 oclock am");
        assert!(say(SayKind::Number, "12a", Lang::En).is_err());
        assert!(say(SayKind::Date, "2026-13-01", Lang::En).is_err());
    }

    #[test]
    fn chinese_money_dates_and_times() {
        let z = |k, v| say(k, v, Lang::Zh).unwrap().join(" ");
        assert_eq!(z(SayKind::Money, "12.05"), "shi n2 yuan n0 n5 fen");
        assert_eq!(z(SayKind::Money, "3"), "n3 yuan zheng");
        assert_eq!(z(SayKind::Date, "2026-03-05"), "n2 n0 n2 n6 nian n3 yue n5 ri");
        assert_eq!(z(SayKind::Time, "02:30"), "liang dian n3 shi fen");
        assert_eq!(z(SayKind::Time, "15:00"), "shi n5 dian zheng");
    }

    #[test]
    fn every_word_said_is_in_the_word_list() {
        for lang in [Lang::En, Lang::Zh] {
            for (k, v) in [
                (SayKind::Number, "-987654321012.5"),
                (SayKind::Money, "20202.22"),
                (SayKind::DateTime, "2009-12-31 23:59"),
                (SayKind::Digits, "0123456789*#"),
            ] {
                for w in say(k, v, lang).unwrap() {
                    assert!(words(lang).contains(&w.as_str()), "{w} ({lang:?})");
                }
            }
        }
    }
}
