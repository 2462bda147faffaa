//! OData basics: `$select`, `$filter` (eq, ne, startswith, in, and, or), `$top`,
//! `$orderby`, `$count` and paging with `@odata.nextLink`.

use serde_json::{Map, Value};

#[derive(Debug, Default, Clone)]
pub struct Query {
    pub select: Option<Vec<String>>,
    pub filter: Option<String>,
    pub top: Option<usize>,
    pub skip: usize,
    pub orderby: Option<(String, bool)>,
    pub count: bool,
    pub expand: Vec<String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, String> {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match k.trim_start_matches('$').to_ascii_lowercase().as_str() {
                "select" => {
                    q.select = Some(
                        v.split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    )
                }
                "filter" => q.filter = Some(v.into_owned()),
                "top" => {
                    q.top = Some(
                        v.parse()
                            .map_err(|_| format!("Invalid value '{v}' for $top."))?,
                    )
                }
                "skiptoken" => q.skip = v.parse().map_err(|_| "Invalid $skiptoken.".to_owned())?,
                "orderby" => {
                    let mut parts = v.split_whitespace();
                    let prop = parts.next().unwrap_or("").to_owned();
                    let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
                    q.orderby = Some((prop, desc));
                }
                "count" => q.count = v.eq_ignore_ascii_case("true"),
                "expand" => q.expand = v.split(',').map(|s| s.trim().to_owned()).collect(),
                _ => {}
            }
        }
        Ok(q)
    }
}

fn prop<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn literal(s: &str) -> Value {
    let t = s.trim();
    if let Some(inner) = t.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return Value::String(inner.replace("''", "'"));
    }
    match t {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => t
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(t.to_owned())),
    }
}

fn eq(a: Option<&Value>, b: &Value) -> bool {
    match (a, b) {
        (Some(Value::String(x)), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Some(x), y) => x == y,
        (None, Value::Null) => true,
        (None, _) => false,
    }
}

/// One comparison: `p eq 'x'`, `p ne 'x'`, `startswith(p,'x')`, `p in ('a','b')`.
fn clause(o: &Map<String, Value>, c: &str) -> Result<bool, String> {
    let c = c.trim();
    let lower = c.to_ascii_lowercase();
    if lower.starts_with("startswith(") && c.ends_with(')') {
        let inner = c.get(11..c.len() - 1).unwrap_or("");
        let (p, v) = inner
            .split_once(',')
            .ok_or_else(|| format!("Invalid filter clause: {c}"))?;
        let want = literal(v);
        return Ok(match (prop(o, p.trim()), want) {
            (Some(Value::String(x)), Value::String(y)) => {
                x.to_ascii_lowercase().starts_with(&y.to_ascii_lowercase())
            }
            _ => false,
        });
    }
    let parts: Vec<&str> = c.splitn(3, ' ').collect();
    let [p, op, v] = parts.as_slice() else {
        return Err(format!("Invalid filter clause: {c}"));
    };
    match op.to_ascii_lowercase().as_str() {
        "eq" => Ok(eq(prop(o, p), &literal(v))),
        "ne" => Ok(!eq(prop(o, p), &literal(v))),
        "in" => {
            let list = v.trim().trim_start_matches('(').trim_end_matches(')');
            Ok(list.split(',').any(|item| eq(prop(o, p), &literal(item))))
        }
        other => Err(format!("Unsupported filter operator '{other}'.")),
    }
}

/// `a and b or c`: `and` binds tighter than `or`; no parentheses beyond `in (...)`.
pub fn matches(o: &Map<String, Value>, filter: &str) -> Result<bool, String> {
    for alternative in split_keyword(filter, " or ") {
        let mut all = true;
        for c in split_keyword(&alternative, " and ") {
            all &= clause(o, &c)?;
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Split on a keyword outside quotes, case-insensitively.
fn split_keyword(s: &str, kw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let chars: Vec<char> = s.chars().collect();
    let kw: Vec<char> = kw.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars.get(i).copied().unwrap_or(' ');
        if c == '\'' {
            quoted = !quoted;
        }
        let here: String = chars.iter().skip(i).take(kw.len()).collect();
        if !quoted && here.eq_ignore_ascii_case(&kw.iter().collect::<String>()) {
            out.push(std::mem::take(&mut cur));
            i += kw.len();
            continue;
        }
        cur.push(c);
        i += 1;
    }
    out.push(cur);
    out
}

/// Apply the query to a collection; returns the page, the total and whether more follow.
pub fn apply(items: Vec<Value>, q: &Query) -> Result<(Vec<Value>, usize, bool), String> {
    let mut out = Vec::new();
    for item in items {
        let keep = match (&q.filter, item.as_object()) {
            (Some(f), Some(o)) => matches(o, f)?,
            _ => true,
        };
        if keep {
            out.push(item);
        }
    }
    if let Some((p, desc)) = &q.orderby {
        out.sort_by(|a, b| {
            let ka = a
                .get(p)
                .map(|v| v.to_string().to_ascii_lowercase())
                .unwrap_or_default();
            let kb = b
                .get(p)
                .map(|v| v.to_string().to_ascii_lowercase())
                .unwrap_or_default();
            if *desc { kb.cmp(&ka) } else { ka.cmp(&kb) }
        });
    }
    let total = out.len();
    let page: Vec<Value> = out
        .into_iter()
        .skip(q.skip)
        .take(q.top.unwrap_or(100))
        .collect();
    let more = q.skip + page.len() < total;
    let page = match &q.select {
        Some(sel) => page.into_iter().map(|v| select(v, sel)).collect(),
        None => page,
    };
    Ok((page, total, more))
}

pub fn select(v: Value, sel: &[String]) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| {
                    k == "id"
                        || k.starts_with("@odata")
                        || sel.iter().any(|s| s.eq_ignore_ascii_case(k))
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters() {
        let o = json!({"displayName": "Adele Vance", "accountEnabled": true, "mail": "adele@x"});
        let o = o.as_object().unwrap();
        assert!(matches(o, "displayName eq 'adele vance'").unwrap());
        assert!(matches(o, "startswith(displayName,'Ad') and accountEnabled eq true").unwrap());
        assert!(!matches(o, "displayName ne 'Adele Vance'").unwrap());
        assert!(matches(o, "mail in ('a@x', 'adele@x')").unwrap());
        assert!(matches(o, "displayName eq 'x' or mail eq 'adele@x'").unwrap());
        assert!(matches(o, "displayName eq 'it''s'").is_ok());
        assert!(matches(o, "displayName gt 'a'").is_err());
    }
}
