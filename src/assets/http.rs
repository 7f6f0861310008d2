//! The HTTP client: ureq with rustls (ring), no OpenSSL; proxies from the environment.
//!
//! Proxies follow curl's conventions: `https_proxy`/`HTTPS_PROXY` for https URLs,
//! `http_proxy`/`HTTP_PROXY` for http, `all_proxy`/`ALL_PROXY` for both, and `no_proxy`/`NO_PROXY`
//! (a comma list of hosts and domain suffixes, or `*`) to bypass them.

use std::time::Duration;

use ureq::{Agent, Proxy};

use super::FetchError;

/// Agents for direct connections and through each proxy the environment names.
pub(super) struct Client {
    direct: Agent,
    http: Option<Agent>,
    https: Option<Agent>,
    no_proxy: Vec<String>,
}

/// Timeouts of every request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub connect: Duration,
    /// No byte for this long, while waiting for the response or reading the body: stalled.
    pub stall: Duration,
}

impl Client {
    pub fn from_env(t: Timeouts) -> Result<Client, FetchError> {
        let agent_via =
            |found: Option<(&'static str, String)>| -> Result<Option<Agent>, FetchError> {
                let Some((name, url)) = found else {
                    return Ok(None);
                };
                let proxy = Proxy::new(url.trim()).map_err(|e| FetchError::Proxy {
                    var: name.to_string(),
                    value: url.clone(),
                    message: e.to_string(),
                })?;
                Ok(Some(agent(t, Some(proxy))))
            };
        let http = agent_via(var(&["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]))?;
        let https = agent_via(var(&[
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ]))?;
        let no_proxy = var(&["no_proxy", "NO_PROXY"])
            .map(|(_, v)| {
                v.split(',')
                    .map(|e| {
                        e.trim()
                            .trim_start_matches("*.")
                            .trim_start_matches('.')
                            .to_ascii_lowercase()
                    })
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Client {
            direct: agent(t, None),
            http,
            https,
            no_proxy,
        })
    }

    /// The agent for a URL: through the proxy for its scheme unless `no_proxy` names its host.
    pub fn agent(&self, url: &str) -> &Agent {
        let (scheme, host) = scheme_host(url);
        let proxied = if scheme.eq_ignore_ascii_case("https") {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        };
        match proxied {
            Some(agent) if !self.bypass(&host) => agent,
            _ => &self.direct,
        }
    }

    fn bypass(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.no_proxy
            .iter()
            .any(|e| e == "*" || host == *e || host.ends_with(&format!(".{e}")))
    }
}

/// The first of these variables that is set and not empty, with its name.
fn var(names: &[&'static str]) -> Option<(&'static str, String)> {
    names.iter().find_map(|n| {
        std::env::var(n)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*n, v))
    })
}

fn agent(t: Timeouts, proxy: Option<Proxy>) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .proxy(proxy)
        .timeout_connect(Some(t.connect))
        .timeout_per_read(Some(t.stall))
        .input_buffer_size(1024 * 1024)
        .user_agent(format!("metal-lab/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// `https://user@host:443/x` -> (`https`, `host`); IPv6 brackets are kept off.
fn scheme_host(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        hostport.split(':').next().unwrap_or_default()
    };
    (scheme.to_string(), host.to_string())
}

/// Whether a failed request or read is worth another try: connection trouble and timeouts are,
/// a bad URL, an unknown host or a TLS failure are not.
pub(super) fn transient(e: &ureq::Error) -> bool {
    use ureq::Error as E;
    match e {
        E::Io(_) if unknown_host(e) => false,
        E::Io(_) | E::Timeout(_) | E::ConnectionFailed | E::BodyStalled | E::Protocol(_) => true,
        _ => false,
    }
}

/// The resolver said the name does not exist (not a temporary DNS failure, which is retried).
/// The system resolver's errors reach ureq as plain I/O errors, so this goes by their text.
pub(super) fn unknown_host(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::HostNotFound => true,
        ureq::Error::Io(io) => {
            let text = io.to_string();
            text.contains("failed to lookup address information")
                && !text.contains("Temporary failure")
        }
        _ => false,
    }
}

/// An I/O error from a body reader: whether it is a stall (per-read timeout).
pub(super) fn is_stall(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.kind() == std::io::ErrorKind::WouldBlock
        || e.get_ref()
            .and_then(|x| x.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

#[cfg(test)]
mod tests {
    use super::scheme_host;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            scheme_host("https://github.com/rancher/os"),
            ("https".into(), "github.com".into())
        );
        assert_eq!(
            scheme_host("http://u:p@127.0.0.1:8080/x"),
            ("http".into(), "127.0.0.1".into())
        );
        assert_eq!(
            scheme_host("http://[::1]:80/x"),
            ("http".into(), "::1".into())
        );
    }
}
