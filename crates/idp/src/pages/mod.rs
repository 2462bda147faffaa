//! The sign-in, consent, device and error pages. Plain HTML forms that work without
//! JavaScript, keeping Entra's element ids so existing UI automation works unchanged.

pub mod adminconsent;
pub mod authorize;
pub mod device;
pub mod flow;
pub mod logout;

use gatehouse_engine::{Denial, RequestContext};
use minijinja::{Environment, Value, context};
use serde::Serialize;

pub struct Pages {
    env: Environment<'static>,
}

/// One permission line on the consent page.
#[derive(Debug, Clone, Serialize)]
pub struct PermissionLine {
    pub value: String,
    pub display_name: String,
    pub description: String,
    pub admin: bool,
}

/// Hidden fields every step carries.
#[derive(Debug, Clone, Serialize)]
pub struct StepForm<'a> {
    pub action: &'a str,
    pub flow: &'a str,
    pub csrf: &'a str,
    pub step: &'a str,
}

macro_rules! template {
    ($env:expr, $name:literal) => {
        $env.add_template($name, include_str!(concat!("../../templates/", $name)))?
    };
}

impl Pages {
    pub fn new() -> Result<Pages, minijinja::Error> {
        let mut env = Environment::new();
        template!(env, "base.html");
        template!(env, "hidden.html");
        template!(env, "username.html");
        template!(env, "password.html");
        template!(env, "kmsi.html");
        template!(env, "consent.html");
        template!(env, "error.html");
        template!(env, "form_post.html");
        template!(env, "device_code.html");
        template!(env, "device_confirm.html");
        template!(env, "message.html");
        template!(env, "mfa.html");
        Ok(Pages { env })
    }

    fn render(&self, name: &str, ctx: Value) -> String {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed");
                format!(
                    "<!DOCTYPE html><title>Error</title><p>Page {name} could not be rendered.</p>"
                )
            }
        }
    }

    pub fn username(
        &self,
        f: &StepForm<'_>,
        app_name: &str,
        login_hint: &str,
        error: Option<&str>,
    ) -> String {
        self.render("username.html", context! { action => f.action, flow => f.flow, csrf => f.csrf, step => f.step, app_name, login_hint, error })
    }

    pub fn password(&self, f: &StepForm<'_>, username: &str, error: Option<&str>) -> String {
        self.render("password.html", context! { action => f.action, flow => f.flow, csrf => f.csrf, step => f.step, username, error })
    }

    pub fn kmsi(&self, f: &StepForm<'_>, username: &str) -> String {
        self.render("kmsi.html", context! { action => f.action, flow => f.flow, csrf => f.csrf, step => f.step, username })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn consent(
        &self,
        f: &StepForm<'_>,
        username: &str,
        app_name: &str,
        publisher: &str,
        permissions: &[PermissionLine],
        can_consent_for_org: bool,
        admin_consent_only: bool,
    ) -> String {
        self.render(
            "consent.html",
            context! { action => f.action, flow => f.flow, csrf => f.csrf, step => f.step, username, app_name, publisher, permissions => Value::from(minijinja::value::Serde(permissions)), can_consent_for_org, admin_consent_only },
        )
    }

    pub fn device_code(&self, action: &str, csrf: &str, error: Option<&str>) -> String {
        self.render("device_code.html", context! { action, csrf, error })
    }

    pub fn device_confirm(&self, f: &StepForm<'_>, username: &str, app_name: &str) -> String {
        self.render("device_confirm.html", context! { action => f.action, flow => f.flow, csrf => f.csrf, step => f.step, username, app_name })
    }

    /// The TOTP step; with `registration` (secret, otpauth URI) it shows the QR code first.
    pub fn mfa(
        &self,
        f: &StepForm<'_>,
        username: &str,
        registration: Option<(&str, &str)>,
        error: Option<&str>,
    ) -> String {
        let (registering, secret, otpauth_uri, qr_svg) = match registration {
            Some((secret, uri)) => {
                let svg = qrcode::QrCode::new(uri.as_bytes())
                    .map(|c| {
                        c.render::<qrcode::render::svg::Color<'_>>()
                            .min_dimensions(180, 180)
                            .build()
                    })
                    .unwrap_or_default();
                (true, secret.to_owned(), uri.to_owned(), svg)
            }
            None => (false, String::new(), String::new(), String::new()),
        };
        self.render("mfa.html", context! { action => f.action, flow => f.flow, csrf => f.csrf, step => f.step, username, registering, secret, otpauth_uri, qr_svg, error })
    }

    pub fn message(&self, title: &str, text: &str) -> String {
        self.render("message.html", context! { title, text })
    }

    pub fn form_post(&self, action: &str, params: &[(&'static str, String)]) -> String {
        self.render(
            "form_post.html",
            context! { action, params => Value::from(minijinja::value::Serde(params)) },
        )
    }

    /// Entra's error page, with our diagnosis under it.
    pub fn error(&self, denial: &Denial, ctx: &RequestContext, base: &str) -> String {
        let aad = crate::render::aad_of(denial);
        let (title, text) = match aad.codes.first() {
            Some(90094) => (
                "Need admin approval",
                "This app needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.",
            ),
            Some(65004) => (
                "Permissions declined",
                "You declined the permissions this app requested.",
            ),
            _ => ("Sign in", "Sorry, but we're having trouble signing you in."),
        };
        let ts = ctx
            .now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.render(
            "error.html",
            context! {
                title, text,
                message => aad.headline(),
                trace_id => ctx.trace_id.to_string(),
                correlation_id => ctx.correlation_id.to_string(),
                timestamp => ts,
                cause => denial.cause.code(),
                guide => denial.guide.as_str(),
                evidence => Value::from(minijinja::value::Serde(&denial.evidence)),
                fix => Value::from(minijinja::value::Serde(&denial.fix)),
                explain_url => format!("{base}/_gatehouse/explain/{}", ctx.trace_id),
            },
        )
    }
}
