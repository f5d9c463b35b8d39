//! Known scanners by what they write in User-Agent or From (SIPVicious and the tools
//! that copied its defaults): the signature search of every out-of-dialog request.

/// User-Agent substrings of known SIP scanners (SIPVicious `svmap`/`svwar`/`svcrack`
/// and the tools that copied its defaults), lower case.
pub(crate) const SCANNERS: [&str; 10] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "vaxsipuseragent",
    "iwar",
    "sundayddr",
    "pplsip",
    "smap",
];

/// The bytes a signature of [`SCANNERS`] starts with.
static SCANNER_FIRST: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < SCANNERS.len() {
        // (evaluated at compile time: an index out of range fails the build)
        #[allow(clippy::indexing_slicing)]
        {
            let s = SCANNERS[i].as_bytes();
            if !s.is_empty() {
                t[s[0] as usize] = true;
            }
        }
        i += 1;
    }
    t
};

/// The scanner signature a User-Agent (or From display name) matches, if any (its
/// first 128 bytes are looked at; checked on every out-of-dialog request, so it copies
/// nothing to the heap).
pub fn scanner_signature(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    if b.len() < 4 {
        return None;
    }
    let mut buf = [0u8; 128];
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    let hay = buf.get(..b.len().min(128))?;
    // One pass over the text, trying the signatures that start with the byte at each
    // position (a memmem searcher built per signature cost more than the search); the
    // first signature of the list that occurs wins, as before.
    let mut found = 0u16;
    for i in 0..hay.len() {
        let rest = hay.get(i..).unwrap_or_default();
        let Some(&c) = rest.first() else {
            break;
        };
        if !SCANNER_FIRST.get(usize::from(c)).copied().unwrap_or(false) {
            continue;
        }
        for (k, sig) in SCANNERS.iter().enumerate() {
            if sig.as_bytes().first() == Some(&c) && rest.starts_with(sig.as_bytes()) {
                found |= 1 << k;
            }
        }
    }
    SCANNERS.get(found.trailing_zeros() as usize).copied()
}

/// [`scanner_signature`] of the last text looked at, remembered: a shard sees the same
/// User-Agent again and again (every phone of one model, every request of one scanner),
/// and comparing it with the last one costs a fraction of the search.
#[derive(Default)]
pub struct ScannerMemo {
    text: String,
    signature: Option<&'static str>,
}

impl ScannerMemo {
    /// The longest text remembered (longer ones are searched each time; only the first
    /// 128 bytes are searched anyway).
    const MAX: usize = 256;

    /// What [`scanner_signature`] says of `text`.
    pub fn signature(&mut self, text: &str) -> Option<&'static str> {
        if text.len() < 4 {
            return None;
        }
        if text == self.text {
            return self.signature;
        }
        let signature = scanner_signature(text);
        if text.len() <= Self::MAX {
            // (the buffer is reused: no allocation once it has grown)
            self.text.clear();
            self.text.push_str(text);
            self.signature = signature;
        }
        signature
    }
}
