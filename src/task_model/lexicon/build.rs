//! Builds the lexicon's index (`index` has its layout) from the lexicon's text: natively only,
//! for the tests and the CLI that trains (which build it once per process), and for
//! `taskrouter lexicon`, which writes the copy the Worker reads. The same text always makes the
//! same bytes.

use super::index::{
    hash, heads, unspaced, words, Kind, GROUP, HEADER, MAGIC, RECORD, STEM, VERSION,
};
use rustc_hash::FxHashMap;

/// One key's records: (form, concept with the `STEM` bit).
type Group = (Kind, String, Vec<(String, u16)>);

/// The index of the lexicon in `sources` (TSV, `concept<TAB>lang<TAB>form`, the form lowercase,
/// as a unit test checks the shipped files' are; malformed lines are skipped), recording
/// `fingerprint` as the text's.
pub fn index(sources: &[&str], fingerprint: u32) -> Result<Vec<u8>, String> {
    let mut concepts: Vec<&str> = Vec::new();
    let mut ids: FxHashMap<&str, u16> = FxHashMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut by_key: FxHashMap<(Kind, String), usize> = FxHashMap::default();
    let mut entries: u32 = 0;
    let mut add = |kind: Kind, key: &str, form: String, concept: u16| {
        let at = *by_key.entry((kind, key.to_string())).or_insert_with(|| {
            groups.push((kind, key.to_string(), Vec::new()));
            groups.len() - 1
        });
        if let Some((_, _, records)) = groups.get_mut(at) {
            records.push((form, concept));
        }
    };
    for line in sources.iter().flat_map(|s| s.lines()) {
        let mut fields = line.split('\t');
        let (Some(concept), Some(_lang), Some(form), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if concept.starts_with('#') || concept.is_empty() {
            continue;
        }
        let (form, stem) = match form.strip_suffix('*') {
            Some(f) => (f.trim(), true),
            None => (form.trim(), false),
        };
        let Some(first) = form.chars().next() else {
            continue;
        };
        let id = match ids.get(concept) {
            Some(id) => *id,
            None => {
                let id = u16::try_from(concepts.len())
                    .ok()
                    .filter(|id| id & STEM == 0)
                    .ok_or("the lexicon has more concepts than its index can hold")?;
                ids.insert(concept, id);
                concepts.push(concept);
                id
            }
        };
        if unspaced(first) {
            let mut chars = form.char_indices().skip(1);
            if let Some((at, b)) = chars.next() {
                add(Kind::Unspaced, &form[..at + b.len_utf8()], form.into(), id);
                entries += 1;
            }
            continue;
        }
        match &words(form)[..] {
            [] => continue,
            [one] if stem => {
                let [two, three] = heads(one);
                let Some(key) = three.or(two) else {
                    continue;
                };
                add(Kind::Stem, key, one.to_string(), id);
            }
            [first, rest @ ..] => {
                if first.is_empty() {
                    continue;
                }
                let rest: String = rest.iter().flat_map(|w| [" ", w]).collect();
                let flag = if stem { STEM } else { 0 };
                add(Kind::Word, first, rest, id | flag);
            }
        }
        entries += 1;
    }
    write(&concepts, &groups, entries, fingerprint)
}

fn write(
    concepts: &[&str],
    groups: &[Group],
    entries: u32,
    fingerprint: u32,
) -> Result<Vec<u8>, String> {
    let too_big = |what: &str| format!("the lexicon's {what} is larger than its index can hold");
    // Strings, each stored once, in the order first written.
    let mut strings: Vec<u8> = Vec::new();
    let mut stored: FxHashMap<Vec<u8>, u32> = FxHashMap::default();
    let mut store = |s: &[u8]| -> Result<(u32, u16), String> {
        let len = u16::try_from(s.len()).map_err(|_| too_big("longest form"))?;
        let at = match stored.get(s) {
            Some(at) => *at,
            None => {
                let at = u32::try_from(strings.len()).map_err(|_| too_big("text"))?;
                strings.extend_from_slice(s);
                stored.insert(s.to_vec(), at);
                at
            }
        };
        Ok((at, len))
    };
    let mut group_bytes = Vec::with_capacity(groups.len() * GROUP);
    let mut record_bytes = Vec::new();
    let mut first: u32 = 0;
    for (kind, key, records) in groups {
        let mut k = vec![kind.byte()];
        k.extend_from_slice(key.as_bytes());
        let (key_at, key_len) = store(&k)?;
        let count = u16::try_from(records.len()).map_err(|_| too_big("largest group"))?;
        group_bytes.extend_from_slice(&key_at.to_le_bytes());
        group_bytes.extend_from_slice(&first.to_le_bytes());
        group_bytes.extend_from_slice(&key_len.to_le_bytes());
        group_bytes.extend_from_slice(&count.to_le_bytes());
        for (form, concept) in records {
            let (at, len) = store(form.as_bytes())?;
            record_bytes.extend_from_slice(&at.to_le_bytes());
            record_bytes.extend_from_slice(&len.to_le_bytes());
            record_bytes.extend_from_slice(&concept.to_le_bytes());
        }
        first += u32::from(count);
    }
    // Slots: at most half full, so that a word the lexicon lacks (most words) is found missing
    // in one or two probes.
    let slots = (2 * groups.len()).next_power_of_two();
    let mut table = vec![0u32; slots];
    for (g, (kind, key, _)) in groups.iter().enumerate() {
        let mut i = hash(*kind, key.as_bytes()) as usize & (slots - 1);
        while table[i] != 0 {
            i = (i + 1) & (slots - 1);
        }
        table[i] = u32::try_from(g + 1).map_err(|_| too_big("number of keys"))?;
    }

    let u32_of = |n: usize, what: &str| u32::try_from(n).map_err(|_| too_big(what));
    let mut out = Vec::with_capacity(HEADER + slots * 4 + group_bytes.len() + strings.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(concepts.len() as u16).to_le_bytes());
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&u32_of(slots, "number of keys")?.to_le_bytes());
    out.extend_from_slice(&u32_of(groups.len(), "number of keys")?.to_le_bytes());
    out.extend_from_slice(&u32_of(record_bytes.len() / RECORD, "number of entries")?.to_le_bytes());
    out.extend_from_slice(&u32_of(strings.len(), "text")?.to_le_bytes());
    for name in concepts {
        let len = u8::try_from(name.len()).map_err(|_| too_big("longest concept name"))?;
        out.push(len);
        out.extend_from_slice(name.as_bytes());
    }
    for slot in table {
        out.extend_from_slice(&slot.to_le_bytes());
    }
    out.extend_from_slice(&group_bytes);
    out.extend_from_slice(&record_bytes);
    out.extend_from_slice(&strings);
    Ok(out)
}
