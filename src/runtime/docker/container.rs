//! One replica in containers: a *sandbox* container that owns the network namespace (address on
//! the run network, published ports) and the *replica* container running `mock-backends` inside
//! that namespace, like a Kubernetes pod's pause container and app container.
//!
//! The split gives each container fault its real-world meaning: killing the replica container
//! leaves the address in place, so connects are refused (RST) until it starts again, fresh;
//! pausing freezes the process while the kernel still accepts connections; partitioning
//! disconnects the sandbox from the run network, so packets to it are dropped.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Mount, MountType,
    NetworkConnectRequest, NetworkDisconnectRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{CreateContainerOptions, KillContainerOptions};
use mock_backends::ReplicaConfig;

use super::engine::{DockerError, Engine, api, labels};
use super::image::CONTAINER_USER;

/// Label telling sandboxes from replica containers.
pub const ROLE_LABEL: &str = "dev.chaosgate.role";
/// [`ROLE_LABEL`] of a sandbox.
pub const SANDBOX_ROLE: &str = "sandbox";
/// [`ROLE_LABEL`] of a replica container.
pub const REPLICA_ROLE: &str = "replica";
/// The port replicas serve traffic on, inside their namespace.
pub const TRAFFIC_PORT: u16 = 8080;
/// The port of the replicas' control endpoint, inside their namespace.
pub const CONTROL_PORT: u16 = 9090;

/// The two containers of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaContainers {
    /// Name of the sandbox (owner of the network namespace).
    pub sandbox: String,
    /// Name of the container running `mock-backends`.
    pub replica: String,
    /// The sandbox's address on the run network; kept across partitions.
    pub ip: Ipv4Addr,
}

/// Where the host reaches a replica through the sandbox's published ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// `127.0.0.1:<port>` forwarded to the traffic port.
    pub traffic: SocketAddr,
    /// `127.0.0.1:<port>` forwarded to the control port.
    pub control: SocketAddr,
}

/// What is needed to create a replica's containers.
#[derive(Debug, Clone)]
pub struct ReplicaLaunch<'a> {
    /// The runtime image tag.
    pub image: &'a str,
    /// The run id (labels, names).
    pub run: &'a str,
    /// The run network.
    pub network: &'a str,
    /// The sandbox's address on it.
    pub ip: Ipv4Addr,
    /// The replica's configuration.
    pub config: &'a ReplicaConfig,
}

impl ReplicaContainers {
    /// Creates and starts the sandbox and then the replica container.
    pub async fn launch(
        engine: &Engine,
        launch: &ReplicaLaunch<'_>,
    ) -> Result<ReplicaContainers, DockerError> {
        let config = launch.config;
        let base = container_name(
            launch.run,
            &config.namespace,
            &config.backend,
            config.replica,
        );
        let sandbox = format!("{base}-sandbox");
        let extra = [
            (
                "dev.chaosgate.backend",
                format!("{}/{}", config.namespace, config.backend),
            ),
            ("dev.chaosgate.replica", config.replica.to_string()),
        ];
        let loopback_port = || {
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".to_owned()),
                host_port: Some(String::new()),
            }])
        };
        let sandbox_body = ContainerCreateBody {
            image: Some(launch.image.to_owned()),
            user: Some(CONTAINER_USER.to_owned()),
            // It only holds the namespace; it listens on loopback, never seen from outside.
            cmd: Some(mock_args(
                r#"{"backend":"sandbox","namespace":"chaosgate"}"#,
                "127.0.0.1:0",
                "127.0.0.1:0",
            )),
            exposed_ports: Some(vec![
                format!("{TRAFFIC_PORT}/tcp"),
                format!("{CONTROL_PORT}/tcp"),
            ]),
            labels: Some(with_role(launch.run, &extra, SANDBOX_ROLE)),
            host_config: Some(HostConfig {
                network_mode: Some(launch.network.to_owned()),
                port_bindings: Some(HashMap::from([
                    (format!("{TRAFFIC_PORT}/tcp"), loopback_port()),
                    (format!("{CONTROL_PORT}/tcp"), loopback_port()),
                ])),
                ..hardened()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    launch.network.to_owned(),
                    pinned(launch.ip),
                )])),
            }),
            ..Default::default()
        };
        create_and_start(engine, &sandbox, sandbox_body).await?;

        let config_json = serde_json::to_string(config)
            .map_err(|e| DockerError::Unexpected(format!("replica config: {e}")))?;
        let replica = base;
        let replica_body = ContainerCreateBody {
            image: Some(launch.image.to_owned()),
            user: Some(CONTAINER_USER.to_owned()),
            cmd: Some(mock_args(
                &config_json,
                &format!("0.0.0.0:{TRAFFIC_PORT}"),
                &format!("0.0.0.0:{CONTROL_PORT}"),
            )),
            labels: Some(with_role(launch.run, &extra, REPLICA_ROLE)),
            host_config: Some(HostConfig {
                network_mode: Some(format!("container:{sandbox}")),
                ..hardened()
            }),
            ..Default::default()
        };
        create_and_start(engine, &replica, replica_body).await?;
        Ok(ReplicaContainers {
            sandbox,
            replica,
            ip: launch.ip,
        })
    }

    /// Reads the host ports the sandbox publishes (they change when it reconnects).
    pub async fn published(&self, engine: &Engine) -> Result<Published, DockerError> {
        let ports = published_ports(engine, &self.sandbox).await?;
        let find = |port: u16| {
            ports.get(&port).copied().ok_or_else(|| {
                DockerError::Unexpected(format!(
                    "{} publishes no host port for {port}/tcp",
                    self.sandbox
                ))
            })
        };
        Ok(Published {
            traffic: find(TRAFFIC_PORT)?,
            control: find(CONTROL_PORT)?,
        })
    }

    /// Stops the replica with SIGKILL (also when it is paused).
    pub async fn kill(&self, engine: &Engine) -> Result<(), DockerError> {
        engine
            .docker()
            .kill_container(
                &self.replica,
                Some(KillContainerOptions {
                    signal: "SIGKILL".to_owned(),
                }),
            )
            .await
            .map_err(api(format!("killing {}", self.replica)))
    }

    /// Starts the (killed) replica again: a fresh process in the same namespace.
    pub async fn start(&self, engine: &Engine) -> Result<(), DockerError> {
        engine
            .docker()
            .start_container(&self.replica, None)
            .await
            .map_err(api(format!("starting {}", self.replica)))
    }

    /// Freezes the replica's process.
    pub async fn pause(&self, engine: &Engine) -> Result<(), DockerError> {
        engine
            .docker()
            .pause_container(&self.replica)
            .await
            .map_err(api(format!("pausing {}", self.replica)))
    }

    /// Thaws the replica's process.
    pub async fn unpause(&self, engine: &Engine) -> Result<(), DockerError> {
        engine
            .docker()
            .unpause_container(&self.replica)
            .await
            .map_err(api(format!("unpausing {}", self.replica)))
    }

    /// Cuts the sandbox off the run network.
    pub async fn disconnect(&self, engine: &Engine, network: &str) -> Result<(), DockerError> {
        engine
            .docker()
            .disconnect_network(
                network,
                NetworkDisconnectRequest {
                    container: self.sandbox.clone(),
                    force: Some(true),
                },
            )
            .await
            .map_err(api(format!(
                "disconnecting {} from {network}",
                self.sandbox
            )))
    }

    /// Puts the sandbox back on the run network at its old address.
    pub async fn connect(&self, engine: &Engine, network: &str) -> Result<(), DockerError> {
        engine
            .docker()
            .connect_network(
                network,
                NetworkConnectRequest {
                    container: self.sandbox.clone(),
                    endpoint_config: Some(pinned(self.ip)),
                },
            )
            .await
            .map_err(api(format!("connecting {} to {network}", self.sandbox)))
    }
}

/// `chaosgate-<run>-<ns>-<name>-<index>`, with anything Docker refuses in a name replaced.
pub fn container_name(run: &str, namespace: &str, backend: &str, index: usize) -> String {
    let raw = format!("chaosgate-{run}-{namespace}-{backend}-{index}");
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn mock_args(config: &str, listen: &str, control: &str) -> Vec<String> {
    ["--config", config, "--listen", listen, "--control", control]
        .map(str::to_owned)
        .to_vec()
}

fn with_role(run: &str, extra: &[(&str, String)], role: &str) -> HashMap<String, String> {
    let mut out = labels(run, extra);
    out.insert(ROLE_LABEL.to_owned(), role.to_owned());
    out
}

/// Read-only root, no capabilities, no privilege gain; the image sets the unprivileged user.
fn hardened() -> HostConfig {
    HostConfig {
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        ..Default::default()
    }
}

fn pinned(ip: Ipv4Addr) -> EndpointSettings {
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn create_and_start(
    engine: &Engine,
    name: &str,
    body: ContainerCreateBody,
) -> Result<(), DockerError> {
    let docker = engine.docker();
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(api(format!("creating container {name}")))?;
    docker
        .start_container(name, None)
        .await
        .map_err(api(format!("starting container {name}")))
}

/// Another process of the run in its own container on the run network (the proxy): same
/// image, labels and hardening as the replicas.
#[derive(Debug, Clone)]
pub struct ServiceLaunch<'a> {
    /// Short name, unique in the run (`proxy`); the container is `chaosgate-<run>-<name>`.
    pub name: &'a str,
    /// Executable and arguments, e.g. `["/chaosgate", "proxy", ...]`.
    pub command: Vec<String>,
    /// Ports published on 127.0.0.1 (ephemeral host ports).
    pub ports: Vec<u16>,
    /// `KEY=value` environment entries.
    pub env: Vec<String>,
    /// Host files mounted read-only: `(absolute host path, path in the container)`.
    pub mounts: Vec<(String, String)>,
}

/// A running service container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceContainer {
    /// Container name.
    pub name: String,
    /// Address on the run network.
    pub ip: Ipv4Addr,
    /// Container port → `127.0.0.1:<host port>`.
    pub published: HashMap<u16, SocketAddr>,
}

impl ServiceContainer {
    /// Creates and starts a service container at `ip` on `network`.
    pub async fn launch(
        engine: &Engine,
        image: &str,
        run: &str,
        network: &str,
        ip: Ipv4Addr,
        launch: &ServiceLaunch<'_>,
    ) -> Result<ServiceContainer, DockerError> {
        let name = container_name(run, "service", launch.name, 0);
        let (entrypoint, args) = launch
            .command
            .split_first()
            .ok_or_else(|| DockerError::Unexpected(format!("service {name} has no command")))?;
        let port_key = |port: &u16| format!("{port}/tcp");
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            user: Some(CONTAINER_USER.to_owned()),
            entrypoint: Some(vec![entrypoint.clone()]),
            cmd: Some(args.to_vec()),
            env: Some(launch.env.clone()),
            exposed_ports: Some(launch.ports.iter().map(port_key).collect()),
            labels: Some(with_role(
                run,
                &[("dev.chaosgate.service", launch.name.to_owned())],
                "service",
            )),
            host_config: Some(HostConfig {
                network_mode: Some(network.to_owned()),
                // Mounts rather than binds: paths may hold a `:`.
                mounts: Some(
                    launch
                        .mounts
                        .iter()
                        .map(|(host, inside)| Mount {
                            target: Some(inside.clone()),
                            source: Some(host.clone()),
                            typ: Some(MountType::BIND),
                            read_only: Some(true),
                            ..Default::default()
                        })
                        .collect(),
                ),
                port_bindings: Some(
                    launch
                        .ports
                        .iter()
                        .map(|p| {
                            let binding = PortBinding {
                                host_ip: Some("127.0.0.1".to_owned()),
                                host_port: Some(String::new()),
                            };
                            (port_key(p), Some(vec![binding]))
                        })
                        .collect(),
                ),
                ..hardened()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network.to_owned(), pinned(ip))])),
            }),
            ..Default::default()
        };
        create_and_start(engine, &name, body).await?;
        let ports = published_ports(engine, &name).await?;
        let published = launch
            .ports
            .iter()
            .filter_map(|p| ports.get(p).map(|addr| (*p, *addr)))
            .collect();
        Ok(ServiceContainer {
            name,
            ip,
            published,
        })
    }
}

impl ServiceContainer {
    /// Sends `signal` (e.g. `SIGINT`) to the service's process.
    pub async fn signal(&self, engine: &Engine, signal: &str) -> Result<(), DockerError> {
        engine
            .docker()
            .kill_container(
                &self.name,
                Some(KillContainerOptions {
                    signal: signal.to_owned(),
                }),
            )
            .await
            .map_err(api(format!("signalling {}", self.name)))
    }
}

/// Container port → host address, for every TCP port `name` publishes.
async fn published_ports(
    engine: &Engine,
    name: &str,
) -> Result<HashMap<u16, SocketAddr>, DockerError> {
    let inspected = engine
        .docker()
        .inspect_container(name, None)
        .await
        .map_err(api(format!("inspecting {name}")))?;
    let ports = inspected
        .network_settings
        .and_then(|s| s.ports)
        .unwrap_or_default();
    Ok(ports
        .iter()
        .filter_map(|(key, bindings)| {
            let port: u16 = key.strip_suffix("/tcp")?.parse().ok()?;
            let addr = bindings.as_ref()?.iter().find_map(|b| {
                let ip: Ipv4Addr = b.host_ip.as_deref()?.parse().ok()?;
                let host_port: u16 = b.host_port.as_deref()?.parse().ok()?;
                Some(SocketAddr::from((ip, host_port)))
            })?;
            Some((port, addr))
        })
        .collect())
}
