//! A "no" with its reasons.

use serde::Serialize;

use crate::cause::{Cause, Section};
use crate::wire::WireError;

/// One observed fact: "aud = https://graph.windows.net".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

/// One thing to do about it, with a link when there is one (an admin-consent URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub cause: Cause,
    pub evidence: Vec<Fact>,
    pub fix: Vec<Step>,
    pub guide: Section,
    pub wire: WireError,
}

impl Denial {
    pub fn new(cause: Cause, wire: WireError) -> Self {
        Self {
            cause,
            evidence: Vec::new(),
            fix: Vec::new(),
            guide: cause.section(),
            wire,
        }
    }

    pub fn fact(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.evidence.push(Fact {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    pub fn fix(mut self, text: impl Into<String>) -> Self {
        self.fix.push(Step {
            text: text.into(),
            url: None,
        });
        self
    }

    pub fn fix_link(mut self, text: impl Into<String>, url: impl Into<String>) -> Self {
        self.fix.push(Step {
            text: text.into(),
            url: Some(url.into()),
        });
        self
    }

    /// The explanation as JSON, for logs, `/_gatehouse/explain` and `gatehouse explain`.
    pub fn explanation(&self) -> serde_json::Value {
        serde_json::json!({
            "cause": self.cause.code(),
            "summary": self.cause.summary(),
            "guide": self.guide.as_str(),
            "evidence": self.evidence,
            "fix": self.fix,
            "wire": {
                "status": self.wire.status(),
                "error": self.wire.code(),
                "error_codes": self.wire.aad().map(|a| a.codes.clone()).unwrap_or_default(),
                "message": self.wire.message(),
            }
        })
    }
}
