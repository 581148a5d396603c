//! What an AWS request is, read off the wire: the service and region from
//! its SigV4 `Authorization` header, the operation from wherever its
//! protocol puts it (`Action=` in a query-protocol form body, `X-Amz-Target`
//! for JSON, the path for RPC v2 CBOR, method and path for Route 53's REST
//! XML), and the protocol, which decides the shape of an injected error.

use std::fmt;

/// How a service encodes requests and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `Action=...` form bodies, XML errors (RDS, CloudWatch, STS, SNS).
    Query,
    /// EC2's variant of the query protocol (`<Response><Errors>`).
    Ec2,
    /// REST with XML bodies (Route 53, S3).
    RestXml,
    /// `X-Amz-Target` JSON (DynamoDB).
    Json,
    /// Smithy RPC v2 CBOR (CloudWatch in recent SDKs).
    Cbor,
}

/// An AWS request as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRequest {
    /// The service, by the name drover uses (`rds`, `ec2`, `route53`,
    /// `cloudwatch`, `dynamodb`, ...); the signing name otherwise.
    pub service: String,
    /// The region it was signed for; `global` for Route 53 (signed for
    /// us-east-1, but a global service: a region blackhole spares it).
    pub region: String,
    /// The API operation, e.g. `PromoteReadReplica`; `unknown` if unread.
    pub operation: String,
    /// Its protocol.
    pub protocol: Protocol,
}

impl fmt::Display for AwsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} in {}", self.service, self.operation, self.region)
    }
}

impl AwsRequest {
    /// Reads a request: `authorization` (the header), `target` (`X-Amz-Target`),
    /// `content_type`, method, path and body.
    pub fn read(authorization: &str, target: Option<&str>, content_type: &str, method: &str, path: &str, body: &[u8]) -> Self {
        let (region, signing) = scope(authorization).unwrap_or(("unknown", "unknown"));
        let service = match signing {
            "monitoring" => "cloudwatch",
            other => other,
        }
        .to_string();
        let protocol = if content_type.contains("cbor") || path.contains("/operation/") {
            Protocol::Cbor
        } else if target.is_some() || content_type.contains("x-amz-json") {
            Protocol::Json
        } else if service == "ec2" {
            Protocol::Ec2
        } else if service == "route53" || service == "s3" {
            Protocol::RestXml
        } else {
            Protocol::Query
        };
        let operation = match protocol {
            Protocol::Query | Protocol::Ec2 => form_value(body, "Action"),
            Protocol::Json => target.and_then(|t| t.rsplit('.').next()).map(str::to_string),
            Protocol::Cbor => path.rsplit("/operation/").next().filter(|_| path.contains("/operation/")).map(|s| s.trim_end_matches('/').to_string()),
            Protocol::RestXml if service == "route53" => Some(route53_operation(method, path).to_string()),
            Protocol::RestXml => None,
        }
        .unwrap_or_else(|| "unknown".into());
        let region = if service == "route53" { "global".to_string() } else { region.to_string() };
        AwsRequest { service, region, operation, protocol }
    }
}

/// `(region, service)` from a SigV4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/rds/aws4_request, ...`.
fn scope(authorization: &str) -> Option<(&str, &str)> {
    let cred = authorization.split("Credential=").nth(1)?;
    let cred = cred.split([',', ' ']).next()?;
    let mut parts = cred.split('/');
    let (_key, _date, region, service) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((region, service))
}

/// The value of `key` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], key: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// Route 53's REST operations, by method and path (`/2013-04-01/...`).
fn route53_operation(method: &str, path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).skip(1).collect();
    match (method, segments.as_slice()) {
        ("POST", ["hostedzone", _, "rrset"]) => "ChangeResourceRecordSets",
        ("GET", ["hostedzone", _, "rrset"]) => "ListResourceRecordSets",
        ("POST", ["hostedzone"]) => "CreateHostedZone",
        ("GET", ["hostedzone"]) => "ListHostedZones",
        ("GET", ["hostedzone", _]) => "GetHostedZone",
        ("DELETE", ["hostedzone", _]) => "DeleteHostedZone",
        ("GET", ["hostedzonesbyname"]) => "ListHostedZonesByName",
        ("GET", ["change", _]) => "GetChange",
        ("POST", ["healthcheck"]) => "CreateHealthCheck",
        ("GET", ["healthcheck"]) => "ListHealthChecks",
        ("GET", ["healthcheck", _, "status"]) => "GetHealthCheckStatus",
        ("GET", ["healthcheck", _]) => "GetHealthCheck",
        ("POST", ["healthcheck", _]) => "UpdateHealthCheck",
        ("DELETE", ["healthcheck", _]) => "DeleteHealthCheck",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20261127/us-west-2/rds/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";

    #[test]
    fn query_requests_name_service_region_and_action() {
        let r = AwsRequest::read(
            AUTH,
            None,
            "application/x-www-form-urlencoded",
            "POST",
            "/",
            b"Action=PromoteReadReplica&Version=2014-10-31&DBInstanceIdentifier=x",
        );
        assert_eq!(r, AwsRequest { service: "rds".into(), region: "us-west-2".into(), operation: "PromoteReadReplica".into(), protocol: Protocol::Query });
        let ec2 = AUTH.replace("/rds/", "/ec2/");
        assert_eq!(AwsRequest::read(&ec2, None, "application/x-www-form-urlencoded", "POST", "/", b"Action=CopyImage").protocol, Protocol::Ec2);
    }

    #[test]
    fn json_cbor_and_rest_requests_are_read_too() {
        let ddb = AUTH.replace("/rds/", "/dynamodb/");
        let r = AwsRequest::read(&ddb, Some("DynamoDB_20120810.PutItem"), "application/x-amz-json-1.0", "POST", "/", b"{}");
        assert_eq!((r.service.as_str(), r.operation.as_str(), r.protocol), ("dynamodb", "PutItem", Protocol::Json));
        let cw = AUTH.replace("/rds/", "/monitoring/");
        let r = AwsRequest::read(&cw, None, "application/cbor", "POST", "/service/GraniteServiceVersion20100801/operation/DescribeAlarms", b"");
        assert_eq!((r.service.as_str(), r.operation.as_str(), r.protocol), ("cloudwatch", "DescribeAlarms", Protocol::Cbor));
        let r53 = AUTH.replace("/us-west-2/rds/", "/us-east-1/route53/");
        let r = AwsRequest::read(&r53, None, "application/xml", "POST", "/2013-04-01/hostedzone/Z123/rrset/", b"<x/>");
        assert_eq!((r.service.as_str(), r.operation.as_str(), r.protocol), ("route53", "ChangeResourceRecordSets", Protocol::RestXml));
        assert_eq!(AwsRequest::read(&r53, None, "", "GET", "/2013-04-01/healthcheck/abc/status", b"").operation, "GetHealthCheckStatus");
        assert_eq!(AwsRequest::read(&r53, None, "", "GET", "/2013-04-01/change/C1", b"").operation, "GetChange");
    }

    #[test]
    fn an_unsigned_request_is_unknown_not_a_crash() {
        let r = AwsRequest::read("", None, "", "GET", "/_health", b"");
        assert_eq!((r.service.as_str(), r.region.as_str(), r.operation.as_str()), ("unknown", "unknown", "unknown"));
    }
}
