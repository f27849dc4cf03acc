//! The `date` header a server adds to responses that lack one (RFC 9110 §6.6.1), formatted once
//! a second per thread rather than per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT`: IMF-fixdate is always 29 bytes.
const LEN: usize = 29;

struct Cached {
    second: u64,
    text: [u8; LEN],
}

thread_local! {
    static NOW: RefCell<Cached> = const {
        RefCell::new(Cached { second: u64::MAX, text: [0; LEN] })
    };
}

/// Calls `f` with the current time as an HTTP date.
pub fn with_now<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    NOW.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.second != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == LEN {
                cached.text.copy_from_slice(text.as_bytes());
                cached.second = second;
            }
        }
        f(&cached.text)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_an_imf_fixdate_of_now() {
        let text = super::with_now(|t| String::from_utf8(t.to_vec()).unwrap());
        let parsed = httpdate::parse_http_date(&text).expect("an HTTP date");
        let age = std::time::SystemTime::now()
            .duration_since(parsed)
            .unwrap_or_default();
        assert!(age.as_secs() <= 2, "{text} is now");
        assert!(text.ends_with(" GMT"), "{text}");
    }
}
