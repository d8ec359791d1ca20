//! The UI's static files, compiled in: htmx and its SSE extension as published on npm
//! (`htmx.org` 2.0.11, `htmx-ext-sse` 2.2.4, BSD-0 licensed; their licenses sit beside them in
//! `svc-api/assets`), and the stylesheet. Versioned names are cached for a year.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// htmx, as `npm pack htmx.org@2.0.11` ships `dist/htmx.min.js`.
pub const HTMX: &str = "htmx-2.0.11.min.js";
/// The SSE extension, as `npm pack htmx-ext-sse@2.2.4` ships `dist/sse.min.js`.
pub const HTMX_SSE: &str = "htmx-ext-sse-2.2.4.min.js";
/// The stylesheet.
pub const CSS: &str = "ui-1.css";

const HTMX_BODY: &[u8] = include_bytes!("../../assets/htmx-2.0.11.min.js");
const HTMX_SSE_BODY: &[u8] = include_bytes!("../../assets/htmx-ext-sse-2.2.4.min.js");
const CSS_BODY: &[u8] = include_bytes!("../../assets/ui.css");

/// `GET /ui/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        HTMX => (HTMX_BODY, "text/javascript; charset=utf-8"),
        HTMX_SSE => (HTMX_SSE_BODY, "text/javascript; charset=utf-8"),
        CSS => (CSS_BODY, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}
