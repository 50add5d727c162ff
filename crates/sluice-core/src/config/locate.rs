//! Maps a key path (`rules[1].connection`) back to a line of the file, so
//! `sluice config check` can point at it.

use toml_edit::{ImDocument, Item};

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(&'static str),
    Index(usize),
}

pub fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of the deepest part of `path` found in `text`.
pub fn line_of_path(text: &str, path: &[Seg]) -> Option<usize> {
    let doc = ImDocument::parse(text.to_string()).ok()?;
    let mut best = None;
    let mut item: &Item = doc.as_item();
    for seg in path {
        let next = match seg {
            Seg::Key(k) => {
                let table = item.as_table_like()?;
                let (key, value) = table.get_key_value(k)?;
                if let Some(span) = key.span() {
                    best = Some(span.start);
                }
                value
            }
            Seg::Index(i) => {
                if let Some(aot) = item.as_array_of_tables() {
                    let t = aot.get(*i)?;
                    if let Some(span) = t.span() {
                        best = Some(span.start);
                    }
                    // Array-of-tables entries are tables; re-wrap lookups below.
                    return descend_table(text, t, path_after(path, seg), best);
                }
                let arr = item.as_array()?;
                let v = arr.get(*i)?;
                if let Some(span) = v.span() {
                    best = Some(span.start);
                }
                return best.map(|o| line_of(text, o));
            }
        };
        item = next;
        if let Some(span) = item.span() {
            best = Some(span.start).or(best);
        }
    }
    best.map(|o| line_of(text, o))
}

fn path_after<'a>(path: &'a [Seg], seg: &Seg) -> &'a [Seg] {
    let pos = path
        .iter()
        .position(|s| std::ptr::eq(s, seg))
        .unwrap_or(path.len());
    &path[(pos + 1).min(path.len())..]
}

fn descend_table(
    text: &str,
    table: &toml_edit::Table,
    rest: &[Seg],
    mut best: Option<usize>,
) -> Option<usize> {
    let mut table: &dyn toml_edit::TableLike = table;
    let mut rest = rest;
    while let Some(Seg::Key(k)) = rest.first()
        && let Some((key, value)) = table.get_key_value(k)
    {
        if let Some(span) = key.span() {
            best = Some(span.start);
        }
        if let (Some(Seg::Index(i)), Some(arr)) = (rest.get(1), value.as_array())
            && let Some(span) = arr.get(*i).and_then(|v| v.span())
        {
            best = Some(span.start);
        }
        // A sub-table (`[connections.pool]`): its keys have lines of their own.
        match value.as_table_like() {
            Some(inner) => table = inner,
            None => break,
        }
        rest = &rest[1..];
    }
    best.map(|o| line_of(text, o))
}
