//! `CspBuilder` driven by an arbitrary sequence of calls, checked against a model of the
//! builder and against a re-parse of the rendered header value.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tower_shield::secure_headers::{Csp, CspBuilder};

const NAMES: &[&str] = &[
    "default-src",
    "script-src",
    "style-src",
    "img-src",
    "object-src",
    "frame-ancestors",
    "script-src-elem",
    "style-src-elem",
    "sandbox",
    "report-to",
    "report-uri",
    "upgrade-insecure-requests",
    "trusted-types",
    "webrtc",
    "base-uri",
    "x-custom",
    "referrer",
];

const VALUES: &[&str] = &[
    "'self'",
    "'none'",
    "'unsafe-inline'",
    "https:",
    "data:",
    "*",
    "https://cdn.example.com",
    "'sha256-abc+/='",
    "'nonce-abc'",
    "self",
    "allow-scripts",
    "csp-endpoint",
    "/csp",
    "'strict-dynamic'",
];

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Free(String),
}

impl Text {
    fn resolve(&self, table: &[&str]) -> String {
        match self {
            Text::Known(i) => table[usize::from(*i) % table.len()].to_owned(),
            Text::Free(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Directive(Text, Vec<Text>),
    Custom(Text, Vec<Text>),
    Replace(Text, Vec<Text>),
    Remove(Text),
    Nonce(Text),
    UpgradeInsecure,
    ReportTo(Text),
    Compact,
    AllowMissingDefault,
}

#[derive(Arbitrary, Debug)]
struct Input {
    start: u8,
    ops: Vec<Op>,
    nonce: u8,
}

/// What the builder should hold: directives in order, and where nonces were asked for.
#[derive(Default)]
struct Model {
    directives: Vec<(String, Vec<String>)>,
    nonce_in: Vec<String>,
}

fn values(texts: &[Text]) -> Vec<String> {
    texts.iter().map(|t| t.resolve(VALUES)).collect()
}

fn apply(builder: CspBuilder, model: &mut Model, op: &Op) -> CspBuilder {
    match op {
        Op::Directive(name, vals) | Op::Custom(name, vals) => {
            let (name, vals) = (name.resolve(NAMES), values(vals));
            model.directives.push((name.clone(), vals.clone()));
            if matches!(op, Op::Custom(..)) {
                builder.custom_directive(name, vals)
            } else {
                builder.directive(name, vals)
            }
        }
        Op::Replace(name, vals) => {
            let (name, vals) = (name.resolve(NAMES), values(vals));
            match model.directives.iter_mut().find(|(n, _)| *n == name) {
                Some(d) => d.1 = vals.clone(),
                None => model.directives.push((name.clone(), vals.clone())),
            }
            builder.replace(name, vals)
        }
        Op::Remove(name) => {
            let name = name.resolve(NAMES);
            model.directives.retain(|(n, _)| *n != name);
            model.nonce_in.retain(|n| *n != name);
            builder.remove(&name)
        }
        Op::Nonce(name) => {
            let name = name.resolve(NAMES);
            model.nonce_in.push(name.clone());
            builder.nonce(name)
        }
        Op::UpgradeInsecure => {
            model
                .directives
                .push(("upgrade-insecure-requests".into(), Vec::new()));
            builder.upgrade_insecure_requests()
        }
        Op::ReportTo(group) => {
            let group = group.resolve(VALUES);
            model
                .directives
                .push(("report-to".into(), vec![group.clone()]));
            builder.report_to(group)
        }
        Op::Compact => builder.compact(),
        Op::AllowMissingDefault => builder.dangerously_allow_missing_default_src(),
    }
}

/// Splits a header value back into directives the way a browser does: on `;`, then on
/// ASCII whitespace.
fn parse_policy(value: &str) -> Vec<(String, Vec<String>)> {
    value
        .split(';')
        .map(|d| {
            let mut tokens = d.split_ascii_whitespace().map(str::to_owned);
            let name = tokens.next().expect("an empty directive in the rendering");
            (name, tokens.collect())
        })
        .collect()
}

fn check_rendering(rendered: &str) {
    assert!(
        rendered.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
        "a byte outside visible ASCII in {rendered:?}"
    );
    assert!(!rendered.contains(','), "a second policy in {rendered:?}");
    assert!(
        http::HeaderValue::from_str(rendered).is_ok(),
        "{rendered:?} is no header value"
    );
}

fuzz_target!(|input: Input| {
    let (mut builder, mut model) = match input.start % 5 {
        0 => (Csp::builder(), Model::default()),
        // Starting points: their directives come from their own rendering.
        n => {
            let b = match n {
                1 => Csp::recommended(),
                2 => Csp::helmet(),
                3 => Csp::owasp(),
                _ => Csp::api(),
            };
            let rendered = b.clone().build().expect("a preset builds").to_string();
            let model = Model {
                directives: parse_policy(&rendered),
                nonce_in: Vec::new(),
            };
            (b, model)
        }
    };
    for op in &input.ops {
        builder = apply(builder, &mut model, op);
    }
    let csp = match builder.build() {
        Ok(csp) => csp,
        Err(err) => {
            let text = err.to_string();
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "raw control character in the error {text:?}"
            );
            return;
        }
    };
    let rendered = csp.to_string();
    check_rendering(&rendered);
    let parsed = parse_policy(&rendered);
    // Accepted: exactly the directives asked for, in order, each value one token.
    assert_eq!(parsed, model.directives, "{rendered:?}");
    for (name, vals) in &model.directives {
        let got: Vec<&str> = csp
            .directive(name)
            .expect("a directive of the model")
            .iter()
            .map(|v| v.as_ref())
            .collect();
        assert_eq!(&got, vals);
        for v in vals {
            assert!(!v.is_empty() && !v.contains([';', ',']));
        }
    }
    for (i, (name, _)) in model.directives.iter().enumerate() {
        assert!(
            !model.directives[..i].iter().any(|(n, _)| n == name),
            "{name} accepted twice"
        );
    }

    let nonce_dirs: Vec<&String> = model
        .directives
        .iter()
        .map(|(n, _)| n)
        .filter(|n| model.nonce_in.contains(n))
        .collect();
    assert_eq!(csp.uses_nonce(), !nonce_dirs.is_empty());
    // A nonce as the layer makes one: base64 of random bytes.
    let nonce = format!("n{}A+/", input.nonce);
    let with_nonce = csp.render_with_nonce(&nonce);
    check_rendering(&with_nonce);
    let expected: Vec<(String, Vec<String>)> = model
        .directives
        .iter()
        .map(|(n, v)| {
            let mut v = v.clone();
            if nonce_dirs.contains(&n) {
                v.push(format!("'nonce-{nonce}'"));
            }
            (n.clone(), v)
        })
        .collect();
    assert_eq!(parse_policy(&with_nonce), expected, "{with_nonce:?}");
    if nonce_dirs.is_empty() {
        assert_eq!(with_nonce, rendered);
    }
});
