//! Byte classes and small helpers shared by the scanners.

/// Class bits of [`CLASS`].
pub(crate) const DIGIT: u8 = 1;
pub(crate) const AT: u8 = 2;
pub(crate) const ASSIGN: u8 = 4;
pub(crate) const DASH: u8 = 8;
pub(crate) const DOT: u8 = 16;
pub(crate) const UPPER: u8 = 32;

/// The classes of every byte, so the prefilter is one table load per byte.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = DIGIT;
        b += 1;
    }
    let mut b = b'A';
    while b <= b'Z' {
        t[b as usize] = UPPER;
        b += 1;
    }
    t[b'@' as usize] = AT;
    t[b'=' as usize] = ASSIGN;
    t[b':' as usize] = ASSIGN;
    t[b'-' as usize] = DASH;
    t[b'.' as usize] = DOT;
    t
};

/// What kinds of bytes a value holds: the prefilter's result.
pub(crate) struct Shape {
    classes: u8,
    pub digits: usize,
}

impl Shape {
    pub fn of(text: &[u8]) -> Self {
        let mut classes = 0u8;
        let mut digits = 0usize;
        for &b in text {
            let c = CLASS[b as usize];
            classes |= c;
            digits += (c & DIGIT) as usize;
        }
        Shape { classes, digits }
    }

    pub fn has(&self, class: u8) -> bool {
        self.classes & class != 0
    }
}

/// The byte at `i`, or 0 past either end (0 is no class anywhere).
pub(crate) fn at(t: &[u8], i: usize) -> u8 {
    t.get(i).copied().unwrap_or(0)
}

/// The byte before `i`, or 0 at the start.
pub(crate) fn before(t: &[u8], i: usize) -> u8 {
    if i == 0 { 0 } else { t[i - 1] }
}

/// The length of the run of ASCII digits starting at `i`.
pub(crate) fn digit_run(t: &[u8], i: usize) -> usize {
    t.get(i..)
        .map(|s| s.iter().take_while(|b| b.is_ascii_digit()).count())
        .unwrap_or(0)
}

/// Whether a digit-based value may end at `end`: not followed by a letter
/// or digit, nor by a separator that continues the number (`-5`, `.5`).
pub(crate) fn clean_end(t: &[u8], end: usize) -> bool {
    let next = at(t, end);
    if next.is_ascii_alphanumeric() {
        return false;
    }
    !(matches!(next, b'-' | b'.' | b'/') && at(t, end + 1).is_ascii_digit())
}

/// Whether a digit-based value may start at `start`: not preceded by a
/// letter or digit, nor by a separator that continues a number.
pub(crate) fn clean_start(t: &[u8], start: usize) -> bool {
    let prev = before(t, start);
    if prev.is_ascii_alphanumeric() {
        return false;
    }
    !(matches!(prev, b'-' | b'.' | b'/') && before(t, start - 1).is_ascii_digit())
}

/// First index `>= from` where `needle` occurs in `hay`: a scan for the
/// first byte, then a comparison (needles here are short and rare).
pub(crate) fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut i = from;
    while i < hay.len() {
        let at = i + hay[i..].iter().position(|&b| b == first)?;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Bytes that may appear inside a written number: digits and separators.
fn in_number(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+')
}

/// Maximal runs of digits and number separators holding at least 8 digits
/// (the fewest of any number detector), with their digit counts. Every card,
/// SSN or phone number lies inside one such run.
pub(crate) fn digit_clusters(
    t: &[u8],
) -> impl Iterator<Item = (std::ops::Range<usize>, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < t.len() {
            if !t[i].is_ascii_digit() && !matches!(t[i], b'(' | b'+') {
                i += 1;
                continue;
            }
            let start = i;
            let mut digits = 0;
            while i < t.len() && in_number(t[i]) {
                digits += usize::from(t[i].is_ascii_digit());
                i += 1;
            }
            if digits >= 8 {
                return Some((start, digits));
            }
        }
        None
    })
    .map(move |(start, digits)| (start..end_of_cluster(t, start), digits))
}

fn end_of_cluster(t: &[u8], start: usize) -> usize {
    start + t[start..].iter().take_while(|&&b| in_number(b)).count()
}

/// Index of the next byte at or after `i` that starts a word (an ASCII
/// letter or digit not preceded by one).
pub(crate) fn next_word(t: &[u8], mut i: usize) -> usize {
    while i < t.len() {
        if t[i].is_ascii_alphanumeric() {
            if i == 0 || !t[i - 1].is_ascii_alphanumeric() {
                return i;
            }
            // Inside a word: skip to its end.
            while i < t.len() && t[i].is_ascii_alphanumeric() {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    t.len()
}
