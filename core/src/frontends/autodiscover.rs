//! Autodiscover for mobile devices ([MS-ASCMD] §2.2.2.1): a phone posts the user's e-mail
//! address and is told the ActiveSync URL, so users type only address and password.
//! Only the `mobilesync` response schema is served; the Outlook schema (for MAPI/HTTP)
//! answers error 601 until the Outlook frontend exists.

use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::config::{Listener, Settings};
use crate::http::body::{full, read_limited, Body};
use crate::http::router::{HttpFrontend, RequestContext};

const MOBILESYNC_RESPONSE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
/// Autodiscover requests are a few hundred bytes; anything big is not one.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// The Autodiscover frontend.
#[derive(Debug)]
pub struct Autodiscover {
    activesync_url: String,
}

impl Autodiscover {
    /// Build from the configuration (the public URL is fixed per snapshot).
    pub fn new(settings: &Settings) -> Self {
        let base = if settings.config.server.public_url.is_empty() {
            let port = settings
                .addrs(Listener::Https)
                .first()
                .map(|a| a.port())
                .unwrap_or(443);
            let host = &settings.config.server.hostname;
            if port == 443 {
                format!("https://{host}")
            } else {
                format!("https://{host}:{port}")
            }
        } else {
            settings
                .config
                .server
                .public_url
                .trim_end_matches('/')
                .to_string()
        };
        Self {
            activesync_url: format!("{base}/Microsoft-Server-ActiveSync"),
        }
    }
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct AutodiscoverRequest {
    /// `Request/EMailAddress`.
    pub email: String,
    /// `Request/AcceptableResponseSchema`.
    pub schema: String,
}

/// Parse a request body. Errors are short phrases for the `Message` element.
pub fn parse_request(xml: &[u8]) -> Result<AutodiscoverRequest, String> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let (mut email, mut schema) = (None, None);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                if path.len() > 16 {
                    return Err("document nests too deeply".into());
                }
                path.push(e.local_name().as_ref().to_vec());
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t
                    .decode()
                    .map_err(|e| format!("bad text: {e}"))?
                    .into_owned();
                let text = quick_xml::escape::unescape(&text)
                    .map_err(|e| format!("bad text: {e}"))?
                    .into_owned();
                match path.last().map(Vec::as_slice) {
                    Some(b"EMailAddress") => email = Some(text),
                    Some(b"AcceptableResponseSchema") => schema = Some(text),
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "malformed XML at byte {}: {e}",
                    reader.buffer_position()
                ))
            }
        }
        buf.clear();
    }
    Ok(AutodiscoverRequest {
        email: email.ok_or("missing Request/EMailAddress")?,
        schema: schema.ok_or("missing Request/AcceptableResponseSchema")?,
    })
}

/// The mobilesync answer for a user.
pub fn settings_response(display_name: &str, email: &str, url: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="{MOBILESYNC_RESPONSE}">
    <Culture>en:us</Culture>
    <User>
      <DisplayName>{}</DisplayName>
      <EMailAddress>{}</EMailAddress>
    </User>
    <Action>
      <Settings>
        <Server>
          <Type>MobileSync</Type>
          <Url>{url}</Url>
          <Name>{url}</Name>
        </Server>
      </Settings>
    </Action>
  </Response>
</Autodiscover>
"#,
        escape(display_name),
        escape(email),
        url = escape(url)
    )
}

/// An error answer: 600 invalid request, 601 requested schema not available.
pub fn error_response(code: u16, message: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response>
    <Error Time="{}" Id="1">
      <ErrorCode>{code}</ErrorCode>
      <Message>{}</Message>
      <DebugData />
    </Error>
  </Response>
</Autodiscover>
"#,
        chrono::Utc::now().format("%H:%M:%S%.f"),
        escape(message)
    )
}

fn xml(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

impl HttpFrontend for Autodiscover {
    fn name(&self) -> &str {
        "autodiscover"
    }

    fn handle(
        &self,
        req: Request<Incoming>,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Response<Body>> {
        let url = self.activesync_url.clone();
        Box::pin(async move {
            if req.method() != Method::POST {
                let mut r = xml(
                    StatusCode::METHOD_NOT_ALLOWED,
                    error_response(600, "Autodiscover takes POST"),
                );
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
                return r;
            }
            let (parts, body) = req.into_parts();
            let bytes =
                match read_limited(&parts.headers, body, ctx.body_limit(MAX_REQUEST_BYTES)).await {
                    Ok(b) => b,
                    Err(e) => return e.response(),
                };
            let request = match parse_request(&bytes) {
                Ok(r) => r,
                Err(msg) => {
                    tracing::info!(reason = %msg, "autodiscover: invalid request");
                    return xml(
                        StatusCode::OK,
                        error_response(600, &format!("Invalid Request: {msg}")),
                    );
                }
            };
            if request.schema != MOBILESYNC_RESPONSE {
                return xml(
                    StatusCode::OK,
                    error_response(601, "Provider not available for the requested schema"),
                );
            }
            let Some(identity) = ctx.identity else {
                return xml(StatusCode::OK, error_response(600, "Invalid Request"));
            };
            if !request.email.trim().eq_ignore_ascii_case(&identity.address) {
                // Do not describe other people's mailboxes to whoever logged in.
                return xml(
                    StatusCode::OK,
                    error_response(600, "EMailAddress does not match the authenticated user"),
                );
            }
            let display = identity
                .display_name
                .clone()
                .unwrap_or_else(|| identity.address.clone());
            xml(
                StatusCode::OK,
                settings_response(&display, &identity.address, &url),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Request example from [MS-ASCMD] §4.2.1 (Autodiscover).
    const SPEC_REQUEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006">
  <Request>
    <EMailAddress>chris@woodgrovebank.com</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;

    #[test]
    fn parses_the_spec_request() {
        let r = parse_request(SPEC_REQUEST.as_bytes()).unwrap();
        assert_eq!(r.email, "chris@woodgrovebank.com");
        assert_eq!(r.schema, MOBILESYNC_RESPONSE);
    }

    #[test]
    fn rejects_broken_and_incomplete_requests() {
        assert!(parse_request(b"<Autodiscover><Request>")
            .unwrap_err()
            .contains("missing"));
        assert!(parse_request(b"<a></b>")
            .unwrap_err()
            .contains("malformed XML"));
        assert_eq!(
            parse_request(
                b"<Autodiscover><Request><EMailAddress>x@y</EMailAddress></Request></Autodiscover>"
            )
            .unwrap_err(),
            "missing Request/AcceptableResponseSchema"
        );
        let deep = "<a>".repeat(100);
        assert!(parse_request(deep.as_bytes())
            .unwrap_err()
            .contains("deeply"));
    }

    #[test]
    fn response_escapes_user_data() {
        let body = settings_response("A <&> B", "a@b.c", "https://h/Microsoft-Server-ActiveSync");
        assert!(body.contains("<DisplayName>A &lt;&amp;&gt; B</DisplayName>"));
        assert!(body.contains("<Url>https://h/Microsoft-Server-ActiveSync</Url>"));
    }
}
