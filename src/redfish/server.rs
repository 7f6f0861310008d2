//! HTTPS for the Redfish service: a self-signed certificate made at the first start and kept in
//! the node's volume, rustls, and hyper's HTTP/1.1 server, one task per connection.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::bmc::Ipmi;
use super::service::{Request, Service};

/// The largest request body lab-bmcd reads (Redfish bodies are small).
const MAX_BODY: usize = 64 * 1024;

/// How long a client may take, so that clients that stall (connect and send nothing, stop in the
/// middle of a request, or keep a connection idle) do not hold the BMC's connections for ever.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// The TLS handshake after the TCP connect.
    pub handshake: Duration,
    /// A request's headers, counted from when the connection waits for them: also how long a
    /// kept-alive connection may stay idle between requests.
    pub headers: Duration,
    /// A request's body, once its headers came (408 Request Timeout after it).
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Duration::from_secs(10),
            headers: Duration::from_secs(120),
            body: Duration::from_secs(30),
        }
    }
}

/// The certificate and its key, made now and stored in `dir` unless both are there already.
/// `names` go into the certificate's subject alternative names (host names and addresses).
pub fn certificate(
    dir: &Path,
    names: Vec<String>,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), String> {
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !(cert_file.exists() && key_file.exists()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("cannot make a certificate: {e}"))?;
        let key_tmp = dir.join("key.pem.tmp");
        write_private(&key_tmp, made.signing_key.serialize_pem().as_bytes())
            .and_then(|()| std::fs::rename(&key_tmp, &key_file))
            .map_err(|e| format!("cannot write {}: {e}", key_file.display()))?;
        let cert_tmp = dir.join("cert.pem.tmp");
        std::fs::write(&cert_tmp, made.cert.pem())
            .and_then(|()| std::fs::rename(&cert_tmp, &cert_file))
            .map_err(|e| format!("cannot write {}: {e}", cert_file.display()))?;
    }
    let cert = CertificateDer::from_pem_file(&cert_file).map_err(|e| {
        format!(
            "{}: {e} (remove it and restart to make a new one)",
            cert_file.display()
        )
    })?;
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
        format!(
            "{}: {e} (remove it and restart to make a new one)",
            key_file.display()
        )
    })?;
    Ok((cert, key))
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path)?.write_all(data)
}

/// SHA-256 of the certificate (DER), as `AB:CD:...`, the way browsers and openssl show it.
pub fn fingerprint(cert: &[u8]) -> String {
    Sha256::digest(cert)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn tls_acceptor(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `service` on `listener` over TLS until the process ends.
pub async fn serve<I: Ipmi>(
    listener: TcpListener,
    tls: TlsAcceptor,
    service: Arc<Service<I>>,
    limits: Timeouts,
) {
    loop {
        let (tcp, _peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("lab: redfish: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let Ok(Ok(stream)) = tokio::time::timeout(limits.handshake, tls.accept(tcp)).await
            else {
                return;
            };
            let svc = hyper::service::service_fn(move |req| {
                let service = service.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(answer(&service, req, limits.body).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(limits.headers)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn answer<I: Ipmi>(
    service: &Service<I>,
    req: hyper::Request<Incoming>,
    body_timeout: Duration,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY).collect());
    let reply = match collected.await {
        Err(_) => {
            let message = format!(
                "The request body did not arrive within {} s.",
                body_timeout.as_secs_f64()
            );
            let mut r = refusal(hyper::StatusCode::REQUEST_TIMEOUT, "GeneralError", &message);
            r.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            return r;
        }
        Ok(Ok(b)) => {
            service
                .handle(Request {
                    method: parts.method,
                    path: parts.uri.path().to_string(),
                    headers: parts.headers,
                    body: b.to_bytes().to_vec(),
                })
                .await
        }
        Ok(Err(_)) => {
            return refusal(
                hyper::StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                "The request body is larger than 64 KiB.",
            )
        }
    };
    let mut r = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *r.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in reply.headers {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

/// A request refused before the service saw it (its body too large or too slow): a Redfish
/// `error` object with a Base registry code.
fn refusal(status: hyper::StatusCode, code: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    let body =
        serde_json::json!({"error": {"code": format!("Base.1.19.{code}"), "message": message}});
    let mut r = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r
}

/// A TLS connector that takes any server certificate: for reading a service's fingerprint (not
/// trust) and for tests.
pub fn trusting_connector() -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.verify_tls12_signature(m, c, d)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The SHA-256 fingerprint of the certificate a Redfish service at `addr` presents (a TLS
/// handshake, nothing sent after it): what `lab status --json` shows.
pub async fn peer_fingerprint(addr: SocketAddr) -> Result<String, String> {
    let connector = trusting_connector()?;
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::from(addr.ip());
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        conn.peer_certificates()
            .and_then(|c| c.first())
            .map(|c| fingerprint(c))
            .ok_or_else(|| "no certificate".to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), handshake)
        .await
        .map_err(|_| format!("{addr}: no TLS answer within 2 s"))?
}
