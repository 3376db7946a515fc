//! The HTML templates (minijinja), compiled into the binary and parsed once. Names ending
//! in `.html` are auto-escaped, so user text can never become markup.

use std::sync::LazyLock;

use axum::response::Html;
use minijinja::Environment;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

const SOURCES: &[(&str, &str)] = templates!(
    "base.html",
    "error.html",
    "logout.html",
    "welcome.html",
    "dashboard.html",
    "login.html",
    "register.html",
    "bookmarks.html",
    "notes.html",
    "vault.html",
    "edit.html",
    "session.html",
    "devices.html",
    "demo.html",
    "macros.html",
);

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in SOURCES {
        env.add_template(name, source).unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env
});

/// Renders the template `name` with `ctx`.
pub(crate) fn render(name: &str, ctx: minijinja::Value) -> Result<Html<String>, minijinja::Error> {
    ENV.get_template(name)?.render(ctx).map(Html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes() {
        for (name, _) in SOURCES {
            ENV.get_template(name).unwrap();
        }
        let page = minijinja::context! { theme => "light", flashes => Vec::<()>::new() };
        let html =
            render("error.html", minijinja::context! { page, title => "<b>", message => "x", status => 400 })
                .unwrap()
                .0;
        assert!(html.contains("&lt;b&gt;") && !html.contains("<b>"), "{html}");
    }
}
