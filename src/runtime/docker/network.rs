//! The private network of a run: a bridge named `chaosgate-<run id>` whose subnet is fixed at
//! creation, so each sandbox keeps its address across a partition (disconnect, connect).

use std::net::Ipv4Addr;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use ipnet::Ipv4Net;

use super::engine::{DockerError, Engine, NAME_PREFIX, api, is_not_found, labels};

/// A run's network and the addresses handed out on it.
#[derive(Debug)]
pub struct RunNetwork {
    name: String,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    next: Ipv4Addr,
}

/// How often creating the network is tried when its probed subnet is taken in between.
const CREATE_ATTEMPTS: usize = 3;

impl RunNetwork {
    /// Creates the network. The engine picks a free subnet from its own pools (a probe network
    /// is created and removed), which is then requested explicitly: the engine only pins
    /// container addresses on networks whose subnet the user chose.
    pub async fn create(engine: &Engine, run: &str) -> Result<RunNetwork, DockerError> {
        let name = format!("{NAME_PREFIX}{run}");
        let mut last = None;
        for _ in 0..CREATE_ATTEMPTS {
            let (subnet, gateway) = probe_subnet(engine, &name, run).await?;
            let request = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".to_owned()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.to_string()),
                        gateway: Some(gateway.to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(labels(run, &[])),
                ..Default::default()
            };
            match engine.docker().create_network(request).await {
                Ok(_) => {
                    return Ok(RunNetwork {
                        name,
                        subnet,
                        gateway,
                        next: gateway,
                    });
                }
                // Another network took the subnet between probe and create: probe again.
                Err(e) => last = Some(e),
            }
        }
        let source = last.unwrap_or(bollard::errors::Error::RequestTimeoutError);
        Err(api(format!("creating network {name}"))(source))
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network's subnet.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The next free address of the subnet (the gateway and broadcast are never handed out).
    pub fn allocate(&mut self) -> Result<Ipv4Addr, DockerError> {
        let mut candidate = u32::from(self.next);
        loop {
            candidate = candidate.checked_add(1).ok_or_else(|| self.full())?;
            let ip = Ipv4Addr::from(candidate);
            if !self.subnet.contains(&ip) || ip == self.subnet.broadcast() {
                return Err(self.full());
            }
            if ip != self.gateway && ip != self.subnet.network() {
                self.next = ip;
                return Ok(ip);
            }
        }
    }

    fn full(&self) -> DockerError {
        DockerError::Unexpected(format!("network {} ({}) is full", self.name, self.subnet))
    }

    /// Removes the network (its containers must be gone); a missing network is fine.
    pub async fn remove(&self, engine: &Engine) -> Result<(), DockerError> {
        match engine.docker().remove_network(&self.name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api(format!("removing network {}", self.name))(e)),
        }
    }
}

/// Lets the engine choose a subnet for a throwaway network of that name and returns it.
async fn probe_subnet(
    engine: &Engine,
    name: &str,
    run: &str,
) -> Result<(Ipv4Net, Ipv4Addr), DockerError> {
    let docker = engine.docker();
    let request = NetworkCreateRequest {
        name: name.to_owned(),
        driver: Some("bridge".to_owned()),
        labels: Some(labels(run, &[])),
        ..Default::default()
    };
    docker
        .create_network(request)
        .await
        .map_err(api(format!("creating network {name}")))?;
    let inspected = docker.inspect_network(name, None).await;
    docker
        .remove_network(name)
        .await
        .map_err(api(format!("removing probe network {name}")))?;
    let inspected = inspected.map_err(api(format!("inspecting network {name}")))?;
    let config = inspected
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default();
    config
        .iter()
        .find_map(|c| {
            let subnet: Ipv4Net = c.subnet.as_deref()?.parse().ok()?;
            let gateway = c
                .gateway
                .as_deref()
                .and_then(|g| g.parse().ok())
                .or_else(|| subnet.hosts().next())?;
            Some((subnet, gateway))
        })
        .ok_or_else(|| {
            DockerError::Unexpected(format!("network {name} got no IPv4 subnet from the engine"))
        })
}

#[cfg(test)]
impl RunNetwork {
    /// A network value without an engine, for address tests.
    pub(crate) fn for_test(subnet: Ipv4Net, gateway: Ipv4Addr) -> RunNetwork {
        RunNetwork {
            name: "chaosgate-test".to_owned(),
            subnet,
            gateway,
            next: gateway,
        }
    }
}
