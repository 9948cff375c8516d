//! The gateway config parser: any bytes, read as UTF-8 with replacement
//! characters, give a config or an error, never a panic; what is accepted
//! summarises, and what is refused says where.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringstack::router::config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match config::parse(&text) {
        Ok(c) => {
            assert!(!c.interfaces.is_empty());
            let _ = c.summary();
        }
        Err(e) => {
            if let Some(line) = e.line {
                assert!((1..=text.split('\n').count()).contains(&line), "{e}");
            }
            let _ = e.to_string();
        }
    }
});
