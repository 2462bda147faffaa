//! The `gatehouse doctor` corpus: real 401/403/400 failures from public reports
//! (tests/doctor-corpus/NNN-*.json, each with its source link), replayed twice:
//!
//! * through the engine, built from the case file exactly as `gatehouse doctor --case`
//!   builds it, and
//! * through the real binary, with the claims re-signed by a test RSA key and the
//!   signature verified against a JWKS file (`--jwks`), as a person would run it.
//!
//! Both must name the expected cause. Run the throughput figure with
//! `cargo test --release -p gatehouse --test doctor_corpus -- --ignored --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gatehouse::doctor::{DoctorArgs, build_case};
use gatehouse_engine::cause::Cause;
use gatehouse_engine::doctor::{Case, Report, Verdict, diagnose};
use gatehouse_jose::keys::SigningKey;
use serde_json::{Map, Value};

struct CaseFile {
    name: String,
    path: PathBuf,
    json: Value,
}

impl CaseFile {
    fn str(&self, k: &str) -> &str {
        self.json.get(k).and_then(Value::as_str).unwrap_or("")
    }
    fn expected_cause(&self) -> &str {
        self.str("expected_cause")
    }
    fn expected_verdict(&self) -> &str {
        self.str("expected_verdict")
    }
    fn source(&self) -> &str {
        self.str("source")
    }
    fn claims(&self) -> Option<&Map<String, Value>> {
        self.json.get("claims").and_then(Value::as_object)
    }
    fn response(&self) -> Option<&Map<String, Value>> {
        self.json.get("response").and_then(Value::as_object)
    }
    fn request(&self) -> Option<&Map<String, Value>> {
        self.json.get("request").and_then(Value::as_object)
    }
    fn now(&self) -> i64 {
        self.json.get("now").and_then(Value::as_i64).unwrap_or(0)
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/doctor-corpus")
}

fn load() -> Vec<CaseFile> {
    let mut out: Vec<CaseFile> = std::fs::read_dir(corpus_dir())
        .expect("tests/doctor-corpus exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let json: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
            CaseFile { name, path, json }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Allowed => "allowed",
        Verdict::Denied => "denied",
        Verdict::Unknown => "unknown",
    }
}

fn exit_code_for(verdict: &str) -> i32 {
    match verdict {
        "allowed" => 0,
        "denied" => 1,
        _ => 2,
    }
}

/// The case as `gatehouse doctor --case FILE` builds it.
fn build(c: &CaseFile) -> Case {
    let args = DoctorArgs {
        case: Some(c.path.clone()),
        ..Default::default()
    };
    build_case(&args, c.now()).unwrap_or_else(|e| panic!("{}: build_case: {e:#}", c.name))
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.parse::<uuid::Uuid>().is_ok()
}

/// The claims look like a real Entra access token of their kind.
fn shape_problems(c: &CaseFile) -> Vec<String> {
    let Some(cl) = c.claims() else {
        return Vec::new();
    };
    let s = |k: &str| cl.get(k).and_then(Value::as_str).unwrap_or("");
    let mut p = Vec::new();
    let tid = s("tid");
    if !uuid_like(tid) {
        p.push(format!("tid {tid:?} is not a GUID"));
    }
    for k in ["aud", "iss", "oid", "sub", "uti", "ver"] {
        if s(k).is_empty() {
            p.push(format!("{k} missing"));
        }
    }
    for k in ["iat", "nbf", "exp"] {
        if cl.get(k).and_then(Value::as_i64).is_none() {
            p.push(format!("{k} is not an integer"));
        }
    }
    let delegated = cl.contains_key("scp");
    match s("ver") {
        "1.0" => {
            if s("iss") != format!("https://sts.windows.net/{tid}/") {
                p.push(format!(
                    "v1 iss {} is not https://sts.windows.net/{{tid}}/",
                    s("iss")
                ));
            }
            if !uuid_like(s("appid")) || !["0", "1", "2"].contains(&s("appidacr")) {
                p.push("v1 token without appid/appidacr".into());
            }
            if cl.contains_key("azp") {
                p.push("v1 token with azp".into());
            }
            if delegated && (s("upn").is_empty() || s("unique_name").is_empty()) {
                p.push("v1 delegated token without upn/unique_name".into());
            }
        }
        "2.0" => {
            if s("iss") != format!("https://login.microsoftonline.com/{tid}/v2.0") {
                p.push(format!(
                    "v2 iss {} is not https://login.microsoftonline.com/{{tid}}/v2.0",
                    s("iss")
                ));
            }
            // Access tokens name the client (azp); an ID token sent by mistake carries a nonce instead.
            let id_token =
                cl.contains_key("nonce") && !cl.contains_key("scp") && !cl.contains_key("roles");
            if !id_token && (!uuid_like(s("azp")) || !["0", "1", "2"].contains(&s("azpacr"))) {
                p.push("v2 access token without azp/azpacr".into());
            }
            if cl.contains_key("appid") {
                p.push("v2 token with appid".into());
            }
            if !uuid_like(s("aud")) {
                p.push("v2 aud is not the API's client id".into());
            }
        }
        v => p.push(format!("ver {v:?}")),
    }
    let graph = [
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        "00000003-0000-0000-c000-000000000000",
    ]
    .contains(&s("aud"));
    if graph {
        // idtyp is present on Graph tokens since ~2021; older reports predate it.
        let want = if delegated { "user" } else { "app" };
        if cl.contains_key("idtyp") && s("idtyp") != want {
            p.push(format!(
                "Graph token with idtyp {:?} (want {want})",
                s("idtyp")
            ));
        }
        if s("ver") != "1.0" {
            p.push("Graph tokens are v1.0".into());
        }
    }
    if delegated && cl.contains_key("roles") && graph {
        p.push("delegated Graph token with roles".into());
    }
    if let Some(scp) = cl.get("scp")
        && !scp.is_string()
    {
        p.push("scp is not a space-separated string".into());
    }
    if let Some(r) = cl.get("roles")
        && !r.is_array()
    {
        p.push("roles is not an array".into());
    }
    p
}

#[test]
fn corpus_is_well_formed() {
    let cases = load();
    assert!(cases.len() >= 40, "{} cases, want at least 40", cases.len());
    let mut sections = std::collections::BTreeMap::<&str, usize>::new();
    let (mut tee_only, mut token_request, mut all_three) = (0, 0, 0);
    let mut problems = Vec::new();
    for c in &cases {
        let prefix = c.name.split('-').next().unwrap_or("");
        if prefix.len() != 3 || !prefix.chars().all(|d| d.is_ascii_digit()) {
            problems.push(format!("{}: name is not NNN-short-name", c.name));
        }
        match Cause::from_code(c.expected_cause()) {
            Some(cause) => *sections.entry(cause.section().as_str()).or_default() += 1,
            None => problems.push(format!(
                "{}: unknown expected_cause {:?}",
                c.name,
                c.expected_cause()
            )),
        }
        if !["allowed", "denied", "unknown"].contains(&c.expected_verdict()) {
            problems.push(format!(
                "{}: expected_verdict {:?}",
                c.name,
                c.expected_verdict()
            ));
        }
        if !c.source().starts_with("https://") {
            problems.push(format!("{}: source is not a URL", c.name));
        }
        if c.str("note").is_empty() {
            problems.push(format!("{}: no note", c.name));
        }
        for p in shape_problems(c) {
            problems.push(format!("{}: {p}", c.name));
        }
        let has_token = c.claims().is_some() || c.json.get("token").is_some_and(Value::is_string);
        let tee = c
            .response()
            .and_then(|r| r.get("token_endpoint_error"))
            .is_some_and(|e| !e.is_null());
        let graph_answer = c
            .response()
            .is_some_and(|r| r.get("status").is_some_and(|s| !s.is_null()));
        match (has_token, c.request().is_some(), tee || graph_answer) {
            (false, false, true) => tee_only += 1,
            (true, true, false) => token_request += 1,
            (true, true, true) => all_three += 1,
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "corpus problems:\n{}",
        problems.join("\n")
    );
    for s in [
        "consent",
        "permissions",
        "token-type",
        "privileged-operation",
        "user-access",
        "wrong-resource",
        "conditional-access",
        "token-validity",
        "client-configuration",
    ] {
        assert!(
            sections.get(s).copied().unwrap_or(0) >= 2,
            "section {s} has fewer than 2 cases: {sections:?}"
        );
    }
    assert!(
        tee_only >= 5 && token_request >= 5 && all_three >= 5,
        "input mix: error only {tee_only}, token+request {token_request}, all three {all_three}"
    );
    eprintln!(
        "{} cases; by section {sections:?}; error only {tee_only}, token+request {token_request}, token+request+response {all_three}",
        cases.len()
    );
}

fn failure(c: &CaseFile, what: &str, report: &str) -> String {
    format!(
        "--- {} ({})\n    source: {}\n    expected: {} / {}\n    {what}\n    report: {report}",
        c.name,
        c.str("note"),
        c.source(),
        c.expected_cause(),
        c.expected_verdict(),
    )
}

#[test]
fn engine_names_the_expected_cause() {
    let cases = load();
    let mut failures = Vec::new();
    for c in &cases {
        let case = build(c);
        let report: Report = match diagnose(&case) {
            Ok(r) => r,
            Err(e) => {
                failures.push(failure(c, &format!("diagnose failed: {e}"), ""));
                continue;
            }
        };
        let cause = report.cause.unwrap_or("null");
        let verdict = verdict_name(report.verdict);
        if cause != c.expected_cause() || verdict != c.expected_verdict() {
            failures.push(failure(
                c,
                &format!("got: {cause} / {verdict} (guide {})", report.guide),
                &serde_json::to_string_pretty(&report).unwrap(),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases named the wrong cause:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn doctor_args(c: &CaseFile, token_file: &Path, jwks: &Path) -> Vec<String> {
    let mut a = vec!["doctor".to_owned(), token_file.display().to_string()];
    if let Some(r) = c.request() {
        let m = r.get("method").and_then(Value::as_str).unwrap_or("GET");
        let u = r.get("url").and_then(Value::as_str).unwrap_or("");
        a.push("--request".into());
        a.push(format!("{m} {u}"));
        if let Some(b) = r.get("body").filter(|b| !b.is_null()) {
            a.push("--body".into());
            a.push(b.to_string());
        }
    }
    if let Some(r) = c.response() {
        if let Some(s) = r.get("status").and_then(Value::as_u64) {
            a.push("--status".into());
            a.push(s.to_string());
        }
        if let Some(w) = r.get("www_authenticate").and_then(Value::as_str) {
            a.push("--www-authenticate".into());
            a.push(w.to_owned());
        }
        if let Some(b) = r.get("body").filter(|b| !b.is_null()) {
            a.push("--response-body".into());
            a.push(match b {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        if let Some(e) = r.get("token_endpoint_error").filter(|e| !e.is_null()) {
            a.push("--token-endpoint-error".into());
            a.push(match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    }
    a.push("--now".into());
    a.push(c.now().to_string());
    a.push("--jwks".into());
    a.push(jwks.display().to_string());
    a.push("--json".into());
    a
}

#[test]
fn binary_names_the_same_cause_on_resigned_tokens() {
    let cases = load();
    let (key, _) = SigningKey::generate(1).unwrap();
    let dir = std::env::temp_dir().join(format!("gatehouse-doctor-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks_path = dir.join("jwks.json");
    std::fs::write(
        &jwks_path,
        serde_json::to_vec_pretty(&serde_json::json!({ "keys": [key.jwk("https://login.microsoftonline.com/common/v2.0")] })).unwrap(),
    )
    .unwrap();
    let sign = |c: &CaseFile| -> String {
        let mut header = c
            .json
            .get("header")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        header.insert("alg".into(), "RS256".into());
        if header.contains_key("x5t") {
            header.insert("x5t".into(), key.kid().into());
        }
        header.insert("kid".into(), key.kid().into());
        let claims = Value::Object(c.claims().cloned().unwrap_or_default());
        gatehouse_jose::jws::sign(&key, &header, &claims).unwrap()
    };
    let bin = env!("CARGO_BIN_EXE_gatehouse");
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cases.iter().filter(|c| c.claims().is_some()) {
        ran += 1;
        let token = sign(c);
        let signature = token.rsplit('.').next().unwrap().to_owned();
        let token_file = dir.join(format!("{}.jwt", c.name));
        std::fs::write(&token_file, &token).unwrap();
        let args = doctor_args(c, &token_file, &jwks_path);
        let out = Command::new(bin).args(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = out.status.code().unwrap_or(-1);
        let report: Value = match serde_json::from_str(&stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(failure(
                    c,
                    &format!(
                        "exit {code}, stdout is not JSON ({e}); stderr: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                    &stdout,
                ));
                continue;
            }
        };
        let cause = report
            .get("cause")
            .and_then(Value::as_str)
            .unwrap_or("null");
        let mut wrong = Vec::new();
        if cause != c.expected_cause() {
            wrong.push(format!("cause {cause}"));
        }
        if code != exit_code_for(c.expected_verdict()) {
            wrong.push(format!("exit code {code}"));
        }
        if report.get("signature") != Some(&Value::String("valid".into())) {
            wrong.push(format!(
                "signature {}",
                report.get("signature").cloned().unwrap_or(Value::Null)
            ));
        }
        if stdout.contains(&signature) {
            wrong.push("the report contains the token's signature".into());
        }
        if !wrong.is_empty() {
            failures.push(failure(
                c,
                &format!("binary: {} (args {:?})", wrong.join(", "), &args[2..]),
                &stdout,
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ran >= 20, "only {ran} cases carry claims");
    assert!(
        failures.is_empty(),
        "{} of {ran} signed cases failed through the binary:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Engine throughput over the corpus (decisions per second), for bench/doctor.sh.
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn bench_engine_decisions_per_second() {
    let files = load();
    let cases: Vec<Case> = files.iter().map(build).collect();
    // For bench/doctor.sh: one re-signed token, its JWKS and its command line.
    if let Ok(out) = std::env::var("DOCTOR_BENCH_OUT") {
        let out = PathBuf::from(out);
        let name = std::env::var("DOCTOR_BENCH_CASE")
            .unwrap_or_else(|_| "030-privileged-passwordprofile-app-no-directory-role".into());
        let c = files
            .iter()
            .find(|c| c.name == name)
            .expect("bench case exists");
        let (key, _) = SigningKey::generate(1).unwrap();
        let mut header = c
            .json
            .get("header")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if header.contains_key("x5t") {
            header.insert("x5t".into(), key.kid().into());
        }
        header.insert("kid".into(), key.kid().into());
        let token = gatehouse_jose::jws::sign(
            &key,
            &header,
            &Value::Object(c.claims().cloned().unwrap_or_default()),
        )
        .unwrap();
        std::fs::write(out.join("token.jwt"), token).unwrap();
        let jwks = out.join("jwks.json");
        std::fs::write(&jwks, serde_json::json!({ "keys": [key.jwk("https://login.microsoftonline.com/common/v2.0")] }).to_string()).unwrap();
        // One argument per line, for the script to read into an array.
        let args = doctor_args(c, &out.join("token.jwt"), &jwks);
        std::fs::write(out.join("args"), args.join("\n") + "\n").unwrap();
    }
    // The first decision on a Graph request loads the embedded permission catalogue:
    // that cost is paid by every `gatehouse doctor` process.
    let graph_case = files
        .iter()
        .position(|c| {
            c.claims().is_some()
                && c.request().is_some_and(|r| {
                    r.get("url")
                        .and_then(Value::as_str)
                        .is_some_and(|u| u.contains("graph.microsoft.com"))
                })
        })
        .unwrap_or(0);
    let cold = Instant::now();
    let _ = diagnose(&cases[graph_case]);
    let cold_ms = cold.elapsed().as_secs_f64() * 1e3;
    let warm = Instant::now();
    let _ = diagnose(&cases[graph_case]);
    let warm_us = warm.elapsed().as_secs_f64() * 1e6;
    println!(
        "DOCTOR_COLD first_decision_ms={cold_ms:.2} second_decision_us={warm_us:.1} case={}",
        files[graph_case].name
    );
    // Warm up (allocator, caches).
    for c in &cases {
        let _ = diagnose(c);
    }
    let mut decisions: u64 = 0;
    let budget = Duration::from_secs(
        std::env::var("DOCTOR_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );
    let start = Instant::now();
    while start.elapsed() < budget {
        for c in &cases {
            let r = diagnose(c);
            std::hint::black_box(&r);
            decisions += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let per_s = decisions as f64 / secs;
    println!(
        "DOCTOR_ENGINE cases={} decisions={decisions} seconds={secs:.2} decisions_per_s={per_s:.0} us_per_decision={:.2}",
        cases.len(),
        1e6 / per_s
    );
}
