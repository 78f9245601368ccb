//! Name resolution for the S3 client with fixed answers first, as curl's
//! `--resolve`: virtual-hosted-style names (`bucket.s3.example`) of a test
//! or lab endpoint often have no DNS record, and a benchmark must not
//! need /etc/hosts edits to address one.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

/// Host names answered from a fixed table, others from the system resolver.
#[derive(Clone)]
pub struct Resolver {
    fixed: Arc<Vec<(String, IpAddr)>>,
    system: GaiResolver,
}

impl Resolver {
    /// A resolver answering `fixed` names (compared without case) itself.
    pub fn new(fixed: Vec<(String, IpAddr)>) -> Resolver {
        Resolver { fixed: Arc::new(fixed), system: GaiResolver::new() }
    }

    fn lookup(&self, name: &str) -> Option<IpAddr> {
        self.fixed.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, ip)| *ip)
    }
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for Resolver {
    type Response = Addrs;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Addrs>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.system.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        // The port is the connector's: it sets the URI's port on each address.
        if let Some(ip) = self.lookup(name.as_str()) {
            return Box::pin(std::future::ready(Ok(vec![SocketAddr::new(ip, 0)].into_iter())));
        }
        let system = self.system.call(name);
        Box::pin(async move { Ok(system.await?.collect::<Vec<_>>().into_iter()) })
    }
}

/// Parses `--resolve HOST:ADDR` (ADDR an IPv4 or IPv6 address).
pub fn parse_resolve(spec: &str) -> Result<(String, IpAddr), String> {
    let (host, addr) = spec.split_once(':').ok_or_else(|| format!("--resolve {spec}: expected HOST:ADDR"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = addr.parse().map_err(|e| format!("--resolve {spec}: {e}"))?;
    if host.is_empty() {
        return Err(format!("--resolve {spec}: no host"));
    }
    Ok((host.to_string(), ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service;

    #[test]
    fn resolve_specs_parse() {
        assert_eq!(parse_resolve("b.s3.test:127.0.0.1").unwrap(), ("b.s3.test".into(), [127, 0, 0, 1].into()));
        assert_eq!(parse_resolve("h:[::1]").unwrap().1, "::1".parse::<IpAddr>().unwrap());
        assert!(parse_resolve("h").is_err());
        assert!(parse_resolve(":1.2.3.4").is_err());
        assert!(parse_resolve("h:not-an-ip").is_err());
    }

    #[tokio::test]
    async fn fixed_names_answer_before_the_system() {
        let mut r = Resolver::new(vec![("Bucket.S3.Test".into(), [10, 1, 2, 3].into())]);
        let name: Name = "bucket.s3.test".parse().unwrap();
        let got: Vec<SocketAddr> = r.call(name).await.unwrap().collect();
        assert_eq!(got, vec![SocketAddr::new([10, 1, 2, 3].into(), 0)]);
        let name: Name = "localhost".parse().unwrap();
        assert!(r.call(name).await.unwrap().any(|a| a.ip().is_loopback()));
    }
}
