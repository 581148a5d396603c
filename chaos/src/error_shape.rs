//! Injected errors in each service's real shape, so that the agent's SDK
//! parses them exactly as it parses AWS's own: the status, the body format
//! of the protocol, and the error code the service really uses
//! (`Throttling` for RDS and Route 53, `RequestLimitExceeded` for EC2,
//! `ThrottlingException` for DynamoDB).

use crate::aws_request::{AwsRequest, Protocol};

/// Which error to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// The service throttles the caller.
    Throttle,
    /// The service fails on its side (5xx).
    ServerError,
}

/// An HTTP answer: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The answer a service gives for `what` to request `req`.
pub fn answer(req: &AwsRequest, what: Injected, request_id: &str) -> Answer {
    let (code, message, status) = match (what, req.protocol) {
        (Injected::Throttle, Protocol::Ec2) => ("RequestLimitExceeded", "Request limit exceeded.", 503),
        (Injected::Throttle, Protocol::Json) => ("ThrottlingException", "Rate of requests exceeds the allowed throughput.", 400),
        (Injected::Throttle, Protocol::Cbor) => ("ThrottlingException", "Rate exceeded", 400),
        (Injected::Throttle, _) => ("Throttling", "Rate exceeded", 400),
        (Injected::ServerError, Protocol::Ec2) => ("Unavailable", "The server is overloaded and cannot handle the request.", 503),
        (Injected::ServerError, Protocol::Json) => ("InternalServerError", "Internal server error", 500),
        (Injected::ServerError, _) => ("ServiceUnavailable", "Service is unavailable. Try again later.", 503),
    };
    error_answer(req, code, message, status, request_id)
}

/// An error answer to `req` in its service's shape: `code`, `message`, HTTP `status`.
pub fn error_answer(req: &AwsRequest, code: &str, message: &str, status: u16, request_id: &str) -> Answer {
    let id = ("x-amzn-requestid", request_id.to_string());
    match req.protocol {
        Protocol::Query | Protocol::RestXml => {
            let kind = if status >= 500 { "Receiver" } else { "Sender" };
            let body = format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            );
            let mut headers = vec![("content-type", "text/xml".to_string()), id];
            if req.protocol == Protocol::Query {
                // How the query protocol names the error to SDKs that read headers.
                headers.push(("x-amzn-query-error", format!("{code};{kind}")));
            }
            Answer { status, headers, body: body.into_bytes() }
        }
        Protocol::Ec2 => {
            let body = format!(
                "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            );
            Answer { status, headers: vec![("content-type", "text/xml".into()), id], body: body.into_bytes() }
        }
        Protocol::Json => {
            let body = serde_json::json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message }).to_string();
            Answer {
                status,
                headers: vec![("content-type", "application/x-amz-json-1.0".into()), ("x-amzn-errortype", code.to_string()), id],
                body: body.into_bytes(),
            }
        }
        Protocol::Cbor => {
            let mut body = vec![0xa2];
            for text in ["__type", code, "message", message] {
                cbor_text(&mut body, text);
            }
            let headers = vec![("content-type", "application/cbor".to_string()), ("smithy-protocol", "rpc-v2-cbor".to_string()), id];
            Answer { status, headers, body }
        }
    }
}

/// Appends `text` as a CBOR text string (major type 3).
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    let len = text.len();
    match len {
        0..=23 => out.push(0x60 | len as u8),
        24..=255 => out.extend([0x78, len as u8]),
        _ => out.extend([0x79, (len >> 8) as u8, len as u8]),
    }
    out.extend(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(service: &str, protocol: Protocol) -> AwsRequest {
        AwsRequest { service: service.into(), region: "us-east-1".into(), operation: "X".into(), protocol }
    }

    #[test]
    fn each_protocol_gets_its_services_throttling_shape() {
        let a = answer(&req("rds", Protocol::Query), Injected::Throttle, "r1");
        assert_eq!(a.status, 400);
        assert!(String::from_utf8(a.body).unwrap().contains("<Code>Throttling</Code>"));
        let a = answer(&req("ec2", Protocol::Ec2), Injected::Throttle, "r1");
        assert_eq!(a.status, 503);
        assert!(String::from_utf8(a.body).unwrap().contains("<Errors><Error><Code>RequestLimitExceeded</Code>"));
        let a = answer(&req("dynamodb", Protocol::Json), Injected::Throttle, "r1");
        assert!(String::from_utf8(a.body).unwrap().contains("#ThrottlingException"));
        let a = answer(&req("cloudwatch", Protocol::Cbor), Injected::ServerError, "r1");
        assert_eq!((a.status, a.body[0], a.body[1]), (503, 0xa2, 0x66));
        assert_eq!(&a.body[2..8], b"__type");
    }
}
