//! What a simulated endpoint answers: JSON (Kasm's usual), a CherryPy HTML error page (what
//! Kasm's framework sends for malformed requests and crashes), JPEG bytes or an empty body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One answer of the simulator.
#[derive(Debug)]
pub enum Reply {
    Json(StatusCode, Value),
    /// A CherryPy error page with this status and message.
    Html(StatusCode, String),
    Jpeg(Vec<u8>),
    Empty(StatusCode),
}

impl Reply {
    /// HTTP 200 with a JSON body.
    pub fn ok(body: Value) -> Reply {
        Reply::Json(StatusCode::OK, body)
    }

    /// HTTP 200 with only `error_message`: how Kasm reports most logical errors.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::status_error(StatusCode::OK, message)
    }

    /// `{"error_message": …}` with an explicit status (403 Access Denied, 401, 400…).
    pub fn status_error(status: StatusCode, message: impl Into<String>) -> Reply {
        Reply::Json(status, json!({ "error_message": message.into() }))
    }

    /// What CherryPy shows when a handler raises (e.g. PostgreSQL rejecting a non-UUID id).
    pub fn crash() -> Reply {
        Reply::Html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server encountered an unexpected condition which prevented it from fulfilling the request.".into(),
        )
    }

    /// `{}`: the success body of destroy/stop/pause/resume/delete_user/…
    pub fn empty_object() -> Reply {
        Reply::ok(json!({}))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(status, body) => (status, axum::Json(body)).into_response(),
            Reply::Html(status, message) => cherrypy_page(status, &message),
            Reply::Jpeg(bytes) => {
                let mut r = (StatusCode::OK, bytes).into_response();
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpg"));
                r
            }
            Reply::Empty(status) => status.into_response(),
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A CherryPy-style HTML error page.
pub fn cherrypy_page(status: StatusCode, message: &str) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = format!(
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" \
\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n\
<html>\n<head>\n    <meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></meta>\n\
    <title>{title}</title>\n</head>\n<body>\n    <h2>{title}</h2>\n    <p>{msg}</p>\n\
    <pre id=\"traceback\"></pre>\n    <div id=\"powered_by\">\n      <span>\n        \
Powered by <a href=\"http://www.cherrypy.dev\">CherryPy 18.8.0</a>\n      </span>\n    </div>\n\
</body>\n</html>\n",
        msg = escape(message)
    );
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_pages_escape_and_carry_status() {
        let r = cherrypy_page(StatusCode::NOT_FOUND, "The path '/<x>' was not found.");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/html;charset=utf-8"
        );
    }

    #[test]
    fn jpeg_replies_use_kasms_content_type() {
        let r = Reply::Jpeg(vec![0xFF, 0xD8, 0xFF]).into_response();
        assert_eq!(r.headers().get(header::CONTENT_TYPE).unwrap(), "image/jpg");
    }
}
