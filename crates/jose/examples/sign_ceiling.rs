//! RS256 signing ceiling of this machine: RSA-2048 PKCS#1 v1.5 SHA-256 signatures with
//! aws-lc-rs `RsaKeyPair` (the same primitive and key kind Gatehouse signs tokens with),
//! one thread per core, each signing in a tight loop for N seconds.
//!
//!     cargo run --release -p gatehouse-jose --example sign_ceiling -- [SECONDS] [THREADS]
//!
//! SECONDS defaults to 10, THREADS to the number of available cores. The key is made once
//! with `rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)` (PKCS#8 DER) and parsed once
//! per thread (a long-running issuer caches its parsed key). The signing input is a typical
//! JWS signing input (~1 KB: base64url header + Entra-like claim set).
//!
//! Output: a human summary plus one machine-readable line
//! `SIGN_CEILING total=<sig/s> per_core=<sig/s> threads=<n> seconds=<s>`.

use std::error::Error;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let secs: f64 = match args.next() {
        Some(s) => s.parse()?,
        None => 10.0,
    };
    let threads: usize = match args.next() {
        Some(s) => s.parse()?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if secs.is_nan() || secs <= 0.0 || threads == 0 {
        return Err("SECONDS must be > 0 and THREADS >= 1".into());
    }

    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
    let der = Arc::new(kp.serialize_der());
    // A JWS signing input the size of an Entra app-only access token (header.payload).
    let msg: Arc<Vec<u8>> = Arc::new(
        format!(
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IngifQ.{}",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9w".repeat(16)
        )
        .into_bytes(),
    );

    let start_flag = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(threads);
    for _ in 0..threads {
        let der = Arc::clone(&der);
        let msg = Arc::clone(&msg);
        let start_flag = Arc::clone(&start_flag);
        handles.push(std::thread::spawn(move || -> Result<(u64, f64), String> {
            let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| e.to_string())?;
            let rng = SystemRandom::new();
            let mut sig = vec![0u8; pair.public_modulus_len()];
            while !start_flag.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            // 300 ms warm-up (caches, frequency), not counted.
            let wu = Instant::now();
            while wu.elapsed() < Duration::from_millis(300) {
                pair.sign(&RSA_PKCS1_SHA256, &rng, black_box(&msg), &mut sig)
                    .map_err(|e| e.to_string())?;
            }
            let t0 = Instant::now();
            let limit = Duration::from_secs_f64(secs);
            let mut n: u64 = 0;
            while t0.elapsed() < limit {
                pair.sign(&RSA_PKCS1_SHA256, &rng, black_box(&msg), &mut sig)
                    .map_err(|e| e.to_string())?;
                black_box(&sig);
                n += 1;
            }
            Ok((n, t0.elapsed().as_secs_f64()))
        }));
    }
    start_flag.store(true, Ordering::Release);

    let mut total = 0.0_f64;
    let mut per_thread = Vec::with_capacity(threads);
    for h in handles {
        let (n, el) = h.join().map_err(|_| "signing thread panicked")??;
        let rate = n as f64 / el;
        per_thread.push(rate);
        total += rate;
    }
    let per_core = total / threads as f64;
    println!(
        "RS256 (RSA-2048 PKCS#1 v1.5 SHA-256, aws-lc-rs RsaKeyPair), {threads} thread(s) x {secs} s, {} B signing input",
        msg.len()
    );
    for (i, r) in per_thread.iter().enumerate() {
        println!(
            "  thread {i}: {r:.0} signatures/s ({:.0} us/signature)",
            1e6 / r
        );
    }
    println!("  total: {total:.0} signatures/s; per core: {per_core:.0} signatures/s");
    println!(
        "SIGN_CEILING total={total:.0} per_core={per_core:.0} threads={threads} seconds={secs}"
    );
    Ok(())
}
