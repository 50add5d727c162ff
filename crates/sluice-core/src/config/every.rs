//! Every type error of a file, not only the first.
//!
//! serde stops at the first value of the wrong type or an unknown key, which
//! hid every later problem from `sluice config check`. So the file is read
//! again and again: after each error, the key at fault is taken out (the
//! whole table, when the error is about a table, such as a missing field)
//! and the rest is read once more, until it reads or nothing is left to
//! take out. Each error is reported at its line in the original file.

use toml_edit::{DocumentMut, ImDocument, Item};

use super::{Config, Problem, locate};

/// How many errors one file may report before the rest is left unread.
const MAX_ROUNDS: usize = 64;

/// Every error that stopped a file being read, and what was read of the
/// rest when its array entries kept their places (so the rest can still be
/// validated, and its problems located).
pub(super) struct Unread {
    pub problems: Vec<Problem>,
    pub rest: Option<Box<Config>>,
}

/// The configuration in `text`, or every error that stopped it being read.
pub(super) fn deserialize(text: &str, file: &str) -> Result<Config, Unread> {
    let mut current = text.to_string();
    let mut problems: Vec<Problem> = Vec::new();
    let mut taken = Taken::default();
    for _ in 0..MAX_ROUNDS {
        let e = match toml::from_str::<Config>(&current) {
            Ok(c) if problems.is_empty() => return Ok(c),
            Ok(c) => {
                let rest = taken.entries.is_empty().then(|| Box::new(c));
                return Err(Unread { problems, rest });
            }
            Err(e) => e,
        };
        let path = e
            .span()
            .and_then(|s| path_at(&current, s.start))
            .unwrap_or_default();
        let message = e.message().trim().to_string();
        // A table missing a key Sluice took out (its value was wrong) is
        // the same problem again: take the table out without saying so.
        if !taken.explains(&path, &message) {
            let line = locate_path(text, &taken.original(&path))
                .or_else(|| e.span().map(|s| locate::line_of(&current, s.start)));
            problems.push(Problem {
                location: match line {
                    Some(l) => format!("{file}:{l}"),
                    None => file.to_string(),
                },
                message,
            });
        }
        match without(&current, &path) {
            Some(next) if !path.is_empty() && next != current => {
                taken.took(&path);
                current = next;
            }
            _ => break,
        }
    }
    Err(Unread {
        problems,
        rest: None,
    })
}

/// What was taken out of the file so far: keys, and array entries by
/// their place in the original (so later paths can be mapped back).
#[derive(Default)]
struct Taken {
    /// (path to the array, the entry's original index).
    entries: Vec<(Vec<Step>, usize)>,
    /// Keys taken out, by their path in the current text.
    keys: Vec<Vec<Step>>,
}

impl Taken {
    fn took(&mut self, path: &[Step]) {
        match path.split_last() {
            Some((Step::Index(i), parent)) => {
                let original = self.original(path);
                let index = match original.last() {
                    Some(Step::Index(o)) => *o,
                    _ => *i,
                };
                self.entries.push((self.original(parent), index));
            }
            Some(_) => self.keys.push(path.to_vec()),
            None => {}
        }
    }

    /// `path` in the current text as a path in the original.
    fn original(&self, path: &[Step]) -> Vec<Step> {
        let mut out = Vec::with_capacity(path.len());
        for step in path {
            let step = match step {
                Step::Index(i) => {
                    let mut removed: Vec<usize> = self
                        .entries
                        .iter()
                        .filter(|(p, _)| *p == out)
                        .map(|(_, r)| *r)
                        .collect();
                    removed.sort_unstable();
                    let mut o = *i;
                    for r in removed {
                        if r <= o {
                            o += 1;
                        }
                    }
                    Step::Index(o)
                }
                key => key.clone(),
            };
            out.push(step);
        }
        out
    }

    /// Whether `message` at the table `path` is a missing key that was
    /// taken out of that table.
    fn explains(&self, path: &[Step], message: &str) -> bool {
        let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        else {
            return false;
        };
        self.keys.iter().any(|k| {
            k.split_last().is_some_and(|(last, parent)| {
                parent == path && *last == Step::Key(field.to_string())
            })
        })
    }
}

/// One step of a path: a key, or an index into an array of tables.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path to the deepest key or array entry whose text contains `offset`.
fn path_at(text: &str, offset: usize) -> Option<Vec<Step>> {
    let doc = ImDocument::parse(text.to_string()).ok()?;
    let mut path = Vec::new();
    descend(doc.as_item(), offset, &mut path);
    Some(path)
}

fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn descend(item: &Item, offset: usize, path: &mut Vec<Step>) {
    if let Some(aot) = item.as_array_of_tables() {
        for (i, t) in aot.iter().enumerate() {
            if contains(t.span(), offset) || table_holds(t, offset) {
                path.push(Step::Index(i));
                for (k, v) in t.iter() {
                    if holds(t.key(k).and_then(|k| k.span()), v, offset) {
                        path.push(Step::Key(k.to_string()));
                        descend(v, offset, path);
                        return;
                    }
                }
                return;
            }
        }
        return;
    }
    let Some(table) = item.as_table_like() else {
        return;
    };
    for (k, v) in table.iter() {
        let key_span = table.get_key_value(k).and_then(|(key, _)| key.span());
        if holds(key_span, v, offset) {
            path.push(Step::Key(k.to_string()));
            descend(v, offset, path);
            return;
        }
    }
}

/// Whether a key or its value holds `offset`.
fn holds(key_span: Option<std::ops::Range<usize>>, v: &Item, offset: usize) -> bool {
    contains(key_span, offset)
        || contains(v.span(), offset)
        || v.as_table().is_some_and(|t| table_holds(t, offset))
        || v.as_array_of_tables().is_some_and(|a| {
            a.iter()
                .any(|t| contains(t.span(), offset) || table_holds(t, offset))
        })
}

/// Whether any key or value of a table holds `offset` (a table's own span
/// covers only its header).
fn table_holds(t: &toml_edit::Table, offset: usize) -> bool {
    t.iter()
        .any(|(k, v)| holds(t.key(k).and_then(|k| k.span()), v, offset))
}

/// `text` with the key or entry at `path` taken out.
fn without(text: &str, path: &[Step]) -> Option<String> {
    let mut doc: DocumentMut = text.parse().ok()?;
    remove_at(doc.as_item_mut(), path)?;
    Some(doc.to_string())
}

fn remove_at(item: &mut Item, path: &[Step]) -> Option<()> {
    match path {
        [Step::Key(k)] => item.as_table_like_mut()?.remove(k).map(|_| ()),
        [Step::Index(i)] => {
            let aot = item.as_array_of_tables_mut()?;
            (*i < aot.len()).then(|| aot.remove(*i))
        }
        [Step::Key(k), rest @ ..] => remove_at(item.as_table_like_mut()?.get_mut(k)?, rest),
        [Step::Index(i), rest @ ..] => {
            remove_in_table(item.as_array_of_tables_mut()?.get_mut(*i)?, rest)
        }
        [] => None,
    }
}

fn remove_in_table(t: &mut toml_edit::Table, path: &[Step]) -> Option<()> {
    match path {
        [Step::Key(k)] => t.remove(k).map(|_| ()),
        [Step::Key(k), rest @ ..] => remove_at(t.get_mut(k)?, rest),
        _ => None,
    }
}

/// The line of the deepest part of `path` found in the original `text`.
fn locate_path(text: &str, path: &[Step]) -> Option<usize> {
    let doc = ImDocument::parse(text.to_string()).ok()?;
    let mut best = None;
    let mut item: &Item = doc.as_item();
    let mut steps = path.iter();
    while let Some(step) = steps.next() {
        match step {
            Step::Key(k) => {
                let (key, value) = item.as_table_like()?.get_key_value(k)?;
                best = key.span().map(|s| s.start).or(best);
                item = value;
            }
            Step::Index(i) => {
                let t = item.as_array_of_tables()?.get(*i)?;
                best = t.span().map(|s| s.start).or(best);
                let Some(Step::Key(k)) = steps.next() else {
                    break;
                };
                let Some((key, value)) = t.get_key_value(k) else {
                    break;
                };
                best = key.span().map(|s| s.start).or(best);
                item = value;
            }
        }
    }
    best.map(|offset| locate::line_of(text, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_error_is_reported_with_its_line() {
        let text = r#"
[server]
api_listen = 8420
pending_grant_timeout = "soon"

[[connections]]
name = "a"
kind = "oracle"
host = "db"
database = "d"
user = "u"

[[connections]]
name = "b"
kind = "postgres"
host = "db"
database = "d"
user = "u"
port = "five"

[[rules]]
name = "r"
groups = ["g"]
connection = "b"
profile = "superuser"
max_ttl = "10m"
colour = "blue"
"#;
        let Err(Unread { problems, .. }) = deserialize(text, "s.toml") else {
            panic!("read")
        };
        let at = |needle: &str| {
            let line = text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
            format!("s.toml:{line}")
        };
        for (needle, words) in [
            ("api_listen", "string"),
            ("pending_grant_timeout", "duration"),
            ("kind = \"oracle\"", "oracle"),
            ("port", "five"),
            ("profile", "superuser"),
            ("colour", "colour"),
        ] {
            let p = problems
                .iter()
                .find(|p| p.location == at(needle))
                .unwrap_or_else(|| panic!("nothing at {needle}: {problems:?}"));
            assert!(p.message.contains(words), "{needle}: {p:?}");
        }
        // Nothing else: a key taken out for its bad value is not reported
        // again as missing.
        assert_eq!(problems.len(), 6, "{problems:#?}");
    }
}
