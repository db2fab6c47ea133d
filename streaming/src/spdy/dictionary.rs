//! The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1).
//!
//! Both zlib contexts of a connection are primed with it; a single differing byte makes the
//! peer's inflate fail (zlib checks the dictionary's Adler-32 in the stream header). The
//! dictionary is a list of length-prefixed (u32, big endian) words followed by a raw tail of
//! text; it is built from that structure here rather than pasted as 1,423 opaque bytes.

use std::sync::LazyLock;

/// The words that appear with a 4-byte big-endian length prefix, in order.
const PREFIXED_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The raw tail that follows the prefixed words, without separators.
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 dictionary, 1,423 bytes.
pub static SPDY3_DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut dict = Vec::with_capacity(1423);
    for word in PREFIXED_WORDS {
        // Every word is far shorter than u32::MAX.
        dict.extend_from_slice(&(word.len() as u32).to_be_bytes());
        dict.extend_from_slice(word.as_bytes());
    }
    dict.extend_from_slice(TAIL.as_bytes());
    dict
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_matches_the_spec_layout() {
        let d = &*SPDY3_DICTIONARY;
        assert_eq!(d.len(), 1423);
        // Rows of 16 bytes as printed in the spec's hex listing.
        let row = |i: usize| &d[i * 16..(i * 16 + 16).min(d.len())];
        assert_eq!(
            row(0),
            &[
                0x00, 0x00, 0x00, 0x07, 0x6f, 0x70, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x00, 0x00, 0x00,
                0x04, 0x68
            ]
        );
        assert_eq!(
            row(10),
            &[
                0x6f, 0x72, 0x69, 0x7a, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x0d, 0x63,
                0x61, 0x63
            ]
        );
        assert_eq!(
            row(39),
            &[
                0x72, 0x00, 0x00, 0x00, 0x02, 0x74, 0x65, 0x00, 0x00, 0x00, 0x07, 0x74, 0x72, 0x61,
                0x69, 0x6c
            ]
        );
        assert_eq!(
            row(53),
            &[
                0x6e, 0x31, 0x30, 0x30, 0x31, 0x30, 0x31, 0x32, 0x30, 0x31, 0x32, 0x30, 0x32, 0x32,
                0x30, 0x35
            ]
        );
        assert_eq!(
            row(77),
            &[
                0x65, 0x64, 0x2c, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x68, 0x74, 0x6d, 0x6c, 0x2c, 0x69,
                0x6d, 0x61
            ]
        );
        assert_eq!(
            row(88),
            &[
                0x31, 0x2c, 0x75, 0x74, 0x66, 0x2d, 0x2c, 0x2a, 0x2c, 0x65, 0x6e, 0x71, 0x3d, 0x30,
                0x2e
            ]
        );
    }
}
