//! Survey pages rendered and gzip-compressed once per unit, form and language, and reused
//! until the unit tree changes. Two values differ per request, the submission id and the
//! signed token; they sit next to each other in the page, so a cached page is its
//! compressed text before them and after them, and a request adds only a few bytes:
//! gzip header + deflate blocks of the text before (ending byte-aligned, not final) + one
//! stored block with the two values + deflate blocks of the text after (final) + CRC-32
//! (combined from the parts' CRCs) and length. One body with its length, written at once.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use flate2::Compression;
use flate2::write::DeflateEncoder;

use crate::Lang;

/// Stand-ins rendered where the per-request values go.
pub const ID_SLOT: &str = "ffffffff-ffff-ffff-ffff-ffffffffffff";
pub const TOKEN_SLOT: &str = "sipas-token-slot";

/// Pages kept at most; past that the cache starts again (a province has a few hundred
/// units, two languages: this is room for all of them, in a few megabytes).
const MAX_PAGES: usize = 2048;

/// GZIP header: deflate, no name, no time (RFC 1952), unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

pub struct Page {
    /// Gzip header and the compressed text before the submission id.
    head: Vec<u8>,
    /// The text between the submission id and the token, as it is.
    between: String,
    /// The compressed text after the token, ending the stream.
    tail: Vec<u8>,
    crc_before: crc32fast::Hasher,
    crc_after: crc32fast::Hasher,
    plain_len: usize,
}

impl Page {
    /// Splits a page rendered with `ID_SLOT` and `TOKEN_SLOT`; `None` when they are not
    /// both there in that order (the page is then served uncached).
    pub fn new(html: &str) -> Option<Page> {
        let id_at = html.find(ID_SLOT)?;
        let token_at = id_at + ID_SLOT.len() + html[id_at + ID_SLOT.len()..].find(TOKEN_SLOT)?;
        let (before, after) = (&html[..id_at], &html[token_at + TOKEN_SLOT.len()..]);
        let between = html[id_at + ID_SLOT.len()..token_at].to_string();
        // The text before ends with a sync flush: byte-aligned and not final, so more
        // blocks may follow. The text after is compressed on its own (it refers back to
        // nothing) and ends the stream.
        let mut first = DeflateEncoder::new(GZIP_HEADER.to_vec(), Compression::best());
        first.write_all(before.as_bytes()).ok()?;
        first.flush().ok()?;
        let head = std::mem::take(first.get_mut());
        let mut last = DeflateEncoder::new(Vec::new(), Compression::best());
        last.write_all(after.as_bytes()).ok()?;
        let tail = last.finish().ok()?;
        let crc = |text: &str| {
            let mut h = crc32fast::Hasher::new();
            h.update(text.as_bytes());
            h
        };
        Some(Page {
            head,
            tail,
            crc_before: crc(before),
            crc_after: crc(after),
            plain_len: before.len() + between.len() + after.len(),
            between,
        })
    }

    /// The gzip body with this request's submission id and token.
    pub fn gzip(&self, submission_id: &str, token: &str) -> Vec<u8> {
        let middle = format!("{submission_id}{}{token}", self.between);
        // A stored block holds at most 65,535 bytes; the middle is a few hundred.
        let len = u16::try_from(middle.len()).unwrap_or(u16::MAX);
        let middle = &middle.as_bytes()[..usize::from(len)];
        let mut out = Vec::with_capacity(self.head.len() + middle.len() + self.tail.len() + 16);
        out.extend_from_slice(&self.head);
        out.push(0); // BFINAL 0, BTYPE 00 (stored), padded to the byte
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(middle);
        out.extend_from_slice(&self.tail);
        let mut crc = self.crc_before.clone();
        crc.update(middle);
        crc.combine(&self.crc_after);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        let size = self.plain_len - self.between.len() + middle.len();
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out
    }
}

type Key = (String, String, Lang);

/// The cached pages of one generation of the unit tree.
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<(i64, HashMap<Key, Arc<Page>>)>,
}

impl PageCache {
    pub fn get(&self, generation: i64, unit: &str, form: &str, lang: Lang) -> Option<Arc<Page>> {
        let pages = self.pages.lock().ok()?;
        if pages.0 != generation {
            return None;
        }
        pages.1.get(&(unit.to_string(), form.to_string(), lang)).cloned()
    }

    pub fn put(&self, generation: i64, unit: &str, form: &str, lang: Lang, page: Arc<Page>) {
        if let Ok(mut pages) = self.pages.lock() {
            if pages.0 != generation || pages.1.len() >= MAX_PAGES {
                *pages = (generation, HashMap::new());
            }
            pages.1.insert((unit.to_string(), form.to_string(), lang), page);
        }
    }
}

/// Whether the client takes gzip (`Accept-Encoding`, a zero weight refusing it).
pub fn accepts_gzip(req: &actix_web::HttpRequest) -> bool {
    let Some(accept) = req.headers().get(actix_web::http::header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    accept.split(',').any(|part| {
        let mut pieces = part.split(';').map(str::trim);
        let coding = pieces.next().unwrap_or("");
        let refused = pieces.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0)));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn a_spliced_page_is_one_valid_gzip_stream_of_the_whole_text() {
        let before = "<html><body>".to_string() + &"Câu hỏi số một, rất dài. ".repeat(400);
        let after = "</form>".to_string() + &"Phần cuối của trang. ".repeat(300) + "</body></html>";
        let html = format!("{before}{ID_SLOT}\"><input name=\"t\" value=\"{TOKEN_SLOT}{after}");
        let page = Page::new(&html).expect("slots found");
        for (id, token) in [("0f7c0c55-0000-4000-8000-000000000001", "1764000000000.abcdef"), ("x", "")] {
            let body = page.gzip(id, token);
            let mut text = String::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).expect("valid gzip, CRC and length");
            assert_eq!(text, html.replace(ID_SLOT, id).replace(TOKEN_SLOT, token));
            assert!(body.len() < html.len() / 5, "compressed: {} of {}", body.len(), html.len());
        }
        assert!(Page::new("no slots").is_none());
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_take_it() {
        let accepts = |v: &str| {
            let req = actix_web::test::TestRequest::default().insert_header(("accept-encoding", v)).to_http_request();
            accepts_gzip(&req)
        };
        assert!(accepts("gzip, deflate, br"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(!accepts("gzip;q=0, br"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&actix_web::test::TestRequest::default().to_http_request()));
    }
}
