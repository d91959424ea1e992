//! Where an error path (`routes[0].when.metadata.plan.$in`) stands in the text of a JSON document,
//! for diagnostics that show the offending line. A small span-tracking JSON walker: keys may
//! themselves contain dots (condition paths), so object keys are matched greedily.

/// A value's byte span, with its children: object members (key, key start, value) or array items.
struct Node {
    start: usize,
    end: usize,
    members: Vec<(Option<String>, usize, Node)>,
}

struct Walker<'a> {
    s: &'a [u8],
    i: usize,
}

impl Walker<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.i + 1;
        self.i += 1;
        while self.i < self.s.len() && self.s[self.i] != b'"' {
            if self.s[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        let raw = std::str::from_utf8(self.s.get(start..self.i)?)
            .ok()?
            .to_string();
        self.i += 1;
        serde_json::from_str::<String>(&format!("\"{raw}\"")).ok()
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > 128 {
            return None;
        }
        self.ws();
        let start = self.i;
        let mut members = Vec::new();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                loop {
                    self.ws();
                    match *self.s.get(self.i)? {
                        b'}' => {
                            self.i += 1;
                            break;
                        }
                        b',' => self.i += 1,
                        b'"' => {
                            let key_at = self.i;
                            let key = self.string()?;
                            self.ws();
                            if self.s.get(self.i) != Some(&b':') {
                                return None;
                            }
                            self.i += 1;
                            let v = self.value(depth + 1)?;
                            members.push((Some(key), key_at, v));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                loop {
                    self.ws();
                    match *self.s.get(self.i)? {
                        b']' => {
                            self.i += 1;
                            break;
                        }
                        b',' => self.i += 1,
                        _ => {
                            let v = self.value(depth + 1)?;
                            members.push((None, v.start, v));
                        }
                    }
                }
            }
            b'"' => {
                self.string()?;
            }
            _ => {
                while self.i < self.s.len()
                    && !matches!(self.s[self.i], b',' | b'}' | b']')
                    && !self.s[self.i].is_ascii_whitespace()
                {
                    self.i += 1;
                }
            }
        }
        Some(Node {
            start,
            end: self.i,
            members,
        })
    }
}

/// `routes[0].when.x` → ["routes", "[0]", "when", "x"] (indexes kept apart from keys).
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(rest[..i].to_string());
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                out.push(rest[..=end].to_string());
                rest = &rest[end + 1..];
            }
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// The byte span to underline for `path`: the deepest part of the path found in the document.
pub fn span(text: &str, path: &str) -> Option<(usize, usize)> {
    let root = Walker {
        s: text.as_bytes(),
        i: 0,
    }
    .value(0)?;
    let segs = segments(path);
    let mut node = &root;
    let mut at = (root.start, root.start + 1);
    let mut k = 0;
    'walk: while k < segs.len() {
        if let Some(index) = segs[k]
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse::<usize>().ok())
        {
            let Some((_, _, child)) = node.members.get(index) else {
                break;
            };
            node = child;
            at = (child.start, child.end);
            k += 1;
            continue;
        }
        // Greedy: the longest run of segments that names a key here (keys may contain dots).
        for take in (1..=segs.len() - k).rev() {
            let key = segs[k..k + take].join(".");
            if let Some((_, key_at, child)) = node
                .members
                .iter()
                .find(|(name, _, _)| name.as_deref() == Some(key.as_str()))
            {
                node = child;
                at = if k + take == segs.len() {
                    (*key_at, key_at + key.len() + 2)
                } else {
                    (child.start, child.end)
                };
                // The last segment names a value: underline it, or its key when it is an object.
                if k + take == segs.len() && text.as_bytes().get(child.start) != Some(&b'{') {
                    at = (child.start, child.end);
                }
                k += take;
                continue 'walk;
            }
        }
        break;
    }
    Some(at)
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{\n  \"version\": 1,\n  \"routes\": [\n    {\"name\": \"a\", \"when\": {\"metadata.plan\": {\"$in\": [\"pro\"]}}, \"then\": \"strongg\"}\n  ]\n}";

    #[test]
    fn finds_values_keys_and_dotted_keys() {
        let show = |p: &str| span(DOC, p).map(|(s, e)| &DOC[s..e]);
        assert_eq!(show("routes[0].then"), Some("\"strongg\""));
        assert_eq!(show("version"), Some("1"));
        assert_eq!(show("routes[0].when.metadata.plan.$in"), Some("[\"pro\"]"));
        assert_eq!(show("routes[0].when"), Some("\"when\""));
        assert_eq!(show("routes[0].missing"), Some("{\"name\": \"a\", \"when\": {\"metadata.plan\": {\"$in\": [\"pro\"]}}, \"then\": \"strongg\"}"));
        let (s, _) = span(DOC, "routes[0].then").unwrap();
        assert_eq!(line_col(DOC, s), (4, 72));
        assert!(span("{not json", "x").is_none());
    }
}
