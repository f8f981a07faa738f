//! The admin API's object store: every object, the references between them checked on every
//! change, and the HAProxy model they make ([`Store::balancer`]). Pure: the service around it
//! persists it ([`Store::to_json`], [`Store::from_json`]) and applies the model.
//!
//! References: a listener's `default_pool_id` and `loadbalancer_id`, a pool's `listener_id`
//! and `loadbalancer_id`, and a monitor's `pool_id` must name existing objects; an object that
//! another refers to cannot be deleted (409), except a pool, whose members and monitor go with
//! it. A pool has at most one monitor; a listener at most one default pool (its own
//! `default_pool_id`, or the one pool whose `listener_id` names it).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::objects::Listener as ListenerObject;
use super::objects::{
    Algorithm, HealthMonitor, ListenerProtocol, LoadBalancer, Member, MemberExtras, MonitorType,
    Peer, PersistenceType, Pool, PoolProtocol,
};
use super::quagga::Quagga;
use crate::haproxy::model::{
    Balance, Balancer, CheckKind, ExpectedCodes, Expiry, HttpCheck, HttpMethod, HttpPath, Listener,
    Member as Server, Mode, Monitor, Name, Peer as PeerModel, Peers, Persistence, Pool as Backend,
    StickKey, TableSize, Tls,
};

/// The default HTTP_COOKIE cookie.
pub const DEFAULT_COOKIE: &str = "SERVERID";
/// The default SOURCE_IP stick table size (the KINX seed's).
pub const DEFAULT_STICK_SIZE: &str = "200k";
/// The default SOURCE_IP stick table expiry (the KINX seed's).
pub const DEFAULT_STICK_EXPIRE: &str = "1d";
/// The version of the store file's format.
const FORMAT: u32 = 1;

/// Which kind of object a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `/api/haproxy/loadbalancers`.
    LoadBalancer,
    /// `/api/haproxy/listeners`.
    Listener,
    /// `/api/haproxy/pools`.
    Pool,
    /// `/api/haproxy/pools/<id>/members`, of this pool.
    Member(Name),
    /// `/api/haproxy/healthmonitors`.
    HealthMonitor,
    /// `/api/haproxy/peers`.
    Peer,
}

impl Kind {
    /// The object's name for messages.
    pub fn noun(&self) -> &'static str {
        match self {
            Kind::LoadBalancer => "load balancer",
            Kind::Listener => "listener",
            Kind::Pool => "pool",
            Kind::Member(_) => "member",
            Kind::HealthMonitor => "health monitor",
            Kind::Peer => "peer",
        }
    }
}

/// What the model needs beyond the objects: from keepserver's `api` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The address a listener binds when neither it nor its load balancer names one.
    pub bind: IpAddr,
    /// Where certificate ids name PEM files (`<id>.pem`).
    pub certificates: PathBuf,
    /// The `peers` section's name.
    pub peers_section: Name,
    /// This node's peer name.
    pub peer_name: Name,
}

/// Every object of the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Store {
    loadbalancers: BTreeMap<Name, LoadBalancer>,
    listeners: BTreeMap<Name, ListenerObject>,
    pools: BTreeMap<Name, Pool>,
    healthmonitors: BTreeMap<Name, HealthMonitor>,
    peers: BTreeMap<Name, Peer>,
    quagga: Option<Quagga>,
}

/// The store file: a version and the objects.
#[derive(Serialize, Deserialize)]
struct StoreFile {
    format: u32,
    #[serde(flatten)]
    store: Store,
}

fn json<T: Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or_else(|e| unreachable!("objects serialize: {e}"))
}

impl Store {
    /// The store as its file holds it.
    pub fn to_json(&self) -> String {
        let file = StoreFile {
            format: FORMAT,
            store: self.clone(),
        };
        let mut text = serde_json::to_string_pretty(&file)
            .unwrap_or_else(|e| unreachable!("objects serialize: {e}"));
        text.push('\n');
        text
    }

    /// A store from its file's text, its references checked again.
    pub fn from_json(text: &str) -> Result<Store, String> {
        let file: StoreFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.format != FORMAT {
            return Err(format!(
                "format {} (this keepserver reads {FORMAT})",
                file.format
            ));
        }
        file.store.check_references().map_err(|e| e.reason)?;
        Ok(file.store)
    }

    /// Every object of `kind`, as answered.
    pub fn list(&self, kind: &Kind) -> Result<Value, ApiError> {
        Ok(Value::Array(match kind {
            Kind::LoadBalancer => self.loadbalancers.values().map(json).collect(),
            Kind::Listener => self.listeners.values().map(json).collect(),
            Kind::Pool => self.pools.values().map(json).collect(),
            Kind::Member(pool) => self.pool(pool)?.members.iter().map(json).collect(),
            Kind::HealthMonitor => self.healthmonitors.values().map(json).collect(),
            Kind::Peer => self.peers.values().map(json).collect(),
        }))
    }

    /// One object, as answered.
    pub fn get(&self, kind: &Kind, id: &Name) -> Result<Value, ApiError> {
        let missing = || ApiError::not_found(kind.noun(), id.as_str());
        match kind {
            Kind::LoadBalancer => self.loadbalancers.get(id).map(json),
            Kind::Listener => self.listeners.get(id).map(json),
            Kind::Pool => self.pools.get(id).map(json),
            Kind::Member(pool) => self
                .pool(pool)?
                .members
                .iter()
                .find(|m| m.id == *id)
                .map(json),
            Kind::HealthMonitor => self.healthmonitors.get(id).map(json),
            Kind::Peer => self.peers.get(id).map(json),
        }
        .ok_or_else(missing)
    }

    fn pool(&self, id: &Name) -> Result<&Pool, ApiError> {
        self.pools
            .get(id)
            .ok_or_else(|| ApiError::not_found("pool", id.as_str()))
    }

    /// Creates an object from `body`; returns it as answered.
    pub fn create(&mut self, kind: &Kind, body: &Value) -> Result<Value, ApiError> {
        let answer = match kind {
            Kind::LoadBalancer => {
                let lb = LoadBalancer::read(body, None)?;
                insert_new(&mut self.loadbalancers, lb.id.clone(), lb, kind)?
            }
            Kind::Listener => {
                let l = ListenerObject::read(body, None)?;
                insert_new(&mut self.listeners, l.id.clone(), l, kind)?
            }
            Kind::Pool => {
                let p = Pool::read(body, None)?;
                insert_new(&mut self.pools, p.id.clone(), p, kind)?
            }
            Kind::Member(pool_id) => {
                let (member, extras) = Member::read(body, None)?;
                self.apply_extras(pool_id, &extras)?;
                let pool = self.pool_mut(pool_id)?;
                if pool.members.iter().any(|m| m.id == member.id) {
                    return Err(duplicate(kind, &member.id));
                }
                let answer = json(&member);
                pool.members.push(member);
                answer
            }
            Kind::HealthMonitor => {
                let m = HealthMonitor::read(body, None)?;
                insert_new(&mut self.healthmonitors, m.id.clone(), m, kind)?
            }
            Kind::Peer => {
                let p = Peer::read(body, None)?;
                insert_new(&mut self.peers, p.hostname.clone(), p, kind)?
            }
        };
        self.check_references()?;
        Ok(answer)
    }

    /// Updates an object: the fields `body` gives change; returns it as answered.
    pub fn update(&mut self, kind: &Kind, id: &Name, body: &Value) -> Result<Value, ApiError> {
        let missing = || ApiError::not_found(kind.noun(), id.as_str());
        let answer = match kind {
            Kind::LoadBalancer => {
                let current = self.loadbalancers.get_mut(id).ok_or_else(missing)?;
                *current = LoadBalancer::read(body, Some(current))?;
                json(current)
            }
            Kind::Listener => {
                let current = self.listeners.get_mut(id).ok_or_else(missing)?;
                *current = ListenerObject::read(body, Some(current))?;
                json(current)
            }
            Kind::Pool => {
                let current = self.pools.get_mut(id).ok_or_else(missing)?;
                *current = Pool::read(body, Some(current))?;
                json(current)
            }
            Kind::Member(pool_id) => {
                let pool = self.pool(pool_id)?;
                let current = pool
                    .members
                    .iter()
                    .find(|m| m.id == *id)
                    .ok_or_else(missing)?;
                let (member, extras) = Member::read(body, Some(current))?;
                self.apply_extras(pool_id, &extras)?;
                let pool = self.pool_mut(pool_id)?;
                let answer = json(&member);
                if let Some(slot) = pool.members.iter_mut().find(|m| m.id == *id) {
                    *slot = member;
                }
                answer
            }
            Kind::HealthMonitor => {
                let current = self.healthmonitors.get_mut(id).ok_or_else(missing)?;
                *current = HealthMonitor::read(body, Some(current))?;
                json(current)
            }
            Kind::Peer => {
                let current = self.peers.get_mut(id).ok_or_else(missing)?;
                *current = Peer::read(body, Some(current))?;
                json(current)
            }
        };
        self.check_references()?;
        Ok(answer)
    }

    /// Deletes an object (a pool with its members and monitor).
    pub fn delete(&mut self, kind: &Kind, id: &Name) -> Result<(), ApiError> {
        let missing = || ApiError::not_found(kind.noun(), id.as_str());
        match kind {
            Kind::LoadBalancer => {
                self.refuse_if_used(id, "load balancer", |s| {
                    let listeners = s
                        .listeners
                        .values()
                        .filter(|l| l.loadbalancer_id.as_ref() == Some(id))
                        .map(|l| ("listener", &l.id));
                    let pools = s
                        .pools
                        .values()
                        .filter(|p| p.loadbalancer_id.as_ref() == Some(id))
                        .map(|p| ("pool", &p.id));
                    listeners.chain(pools).next().map(|(w, n)| (w, n.clone()))
                })?;
                self.loadbalancers.remove(id).ok_or_else(missing)?;
            }
            Kind::Listener => {
                self.refuse_if_used(id, "listener", |s| {
                    s.pools
                        .values()
                        .find(|p| p.listener_id.as_ref() == Some(id))
                        .map(|p| ("pool", p.id.clone()))
                })?;
                self.listeners.remove(id).ok_or_else(missing)?;
            }
            Kind::Pool => {
                self.refuse_if_used(id, "pool", |s| {
                    s.listeners
                        .values()
                        .find(|l| l.default_pool_id.as_ref() == Some(id))
                        .map(|l| ("listener", l.id.clone()))
                })?;
                self.pools.remove(id).ok_or_else(missing)?;
                self.healthmonitors.retain(|_, m| m.pool_id != *id);
            }
            Kind::Member(pool_id) => {
                let pool = self.pool_mut(pool_id)?;
                let before = pool.members.len();
                pool.members.retain(|m| m.id != *id);
                if pool.members.len() == before {
                    return Err(missing());
                }
            }
            Kind::HealthMonitor => {
                self.healthmonitors.remove(id).ok_or_else(missing)?;
            }
            Kind::Peer => {
                self.peers.remove(id).ok_or_else(missing)?;
            }
        }
        Ok(())
    }

    fn pool_mut(&mut self, id: &Name) -> Result<&mut Pool, ApiError> {
        self.pools
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("pool", id.as_str()))
    }

    /// A 409 naming who uses `id`, when `user` finds someone.
    fn refuse_if_used(
        &self,
        id: &Name,
        what: &str,
        user: impl FnOnce(&Store) -> Option<(&'static str, Name)>,
    ) -> Result<(), ApiError> {
        match user(self) {
            Some((kind, name)) => Err(ApiError::conflict(
                None,
                format!("{what} `{id}` is used by {kind} `{name}`: change or delete that first"),
            )),
            None => Ok(()),
        }
    }

    /// Applies a member request's KINX pool fields to its pool.
    fn apply_extras(&mut self, pool_id: &Name, extras: &MemberExtras) -> Result<(), ApiError> {
        let current_monitor = self
            .healthmonitors
            .values()
            .find(|m| m.pool_id == *pool_id)
            .cloned();
        let pool = self.pool_mut(pool_id)?;
        if let Some(p) = &extras.persistence {
            let cookie = matches!(
                p.kind,
                PersistenceType::HttpCookie | PersistenceType::AppCookie
            );
            if cookie && pool.protocol == PoolProtocol::Tcp {
                return Err(ApiError::bad(
                    "type",
                    "cookie persistence needs an HTTP pool",
                ));
            }
            if p.kind == PersistenceType::AppCookie && p.cookie_name.is_none() {
                return Err(ApiError::bad("cookie_name", "is required for APP_COOKIE"));
            }
            pool.session_persistence = Some(p.clone());
        }
        if let Some(body) = &extras.healthmonitor {
            let monitor = HealthMonitor::from_member(body, pool_id, current_monitor.as_ref())?;
            self.healthmonitors.retain(|_, m| m.pool_id != *pool_id);
            self.healthmonitors.insert(monitor.id.clone(), monitor);
        }
        Ok(())
    }

    /// Every reference names an existing object, at most one monitor per pool and one pool per
    /// listener.
    fn check_references(&self) -> Result<(), ApiError> {
        let lb = |field: &str, id: &Option<Name>| match id {
            Some(id) if !self.loadbalancers.contains_key(id) => {
                Err(unknown(field, "load balancer", id))
            }
            _ => Ok(()),
        };
        for l in self.listeners.values() {
            lb("loadbalancer_id", &l.loadbalancer_id)?;
            if let Some(pool) = &l.default_pool_id {
                let found = self
                    .pools
                    .get(pool)
                    .ok_or_else(|| unknown("default_pool_id", "pool", pool))?;
                if !protocols_match(l.protocol, found.protocol) {
                    return Err(ApiError::conflict(
                        Some("default_pool_id"),
                        format!(
                            "listener `{}` is {} but pool `{pool}` is {}",
                            l.id,
                            wire_name(l.protocol),
                            wire_name(found.protocol)
                        ),
                    ));
                }
            }
        }
        for p in self.pools.values() {
            lb("loadbalancer_id", &p.loadbalancer_id)?;
            if let Some(listener) = &p.listener_id {
                let l = self
                    .listeners
                    .get(listener)
                    .ok_or_else(|| unknown("listener_id", "listener", listener))?;
                let rivals = self
                    .pools
                    .values()
                    .filter(|o| o.listener_id == p.listener_id)
                    .count();
                if rivals > 1 && l.default_pool_id.is_none() {
                    return Err(ApiError::conflict(
                        Some("listener_id"),
                        format!("two pools name listener `{listener}`: give it a default_pool_id"),
                    ));
                }
            }
        }
        let mut monitored = BTreeMap::new();
        for m in self.healthmonitors.values() {
            let pool = self
                .pools
                .get(&m.pool_id)
                .ok_or_else(|| unknown("pool_id", "pool", &m.pool_id))?;
            if let Some(other) = monitored.insert(&m.pool_id, &m.id) {
                return Err(ApiError::conflict(
                    Some("pool_id"),
                    format!(
                        "pool `{}` has one health monitor at most, not both `{other}` and `{}`",
                        m.pool_id, m.id
                    ),
                ));
            }
            if matches!(m.kind, MonitorType::Http | MonitorType::Https)
                && pool.protocol == PoolProtocol::Tcp
            {
                return Err(ApiError::conflict(
                    Some("type"),
                    format!(
                        "pool `{}` is TCP: an HTTP monitor needs an HTTP pool",
                        m.pool_id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The HAProxy model of every object (see the module documentation).
    pub fn balancer(&self, ctx: &Context) -> Result<Balancer, ApiError> {
        let mut listeners = Vec::new();
        for l in self.listeners.values() {
            listeners.push(self.frontend(l, ctx)?);
        }
        let mut backends = Vec::new();
        for p in self.pools.values() {
            backends.push(self.backend(p, ctx)?);
        }
        Balancer::new(listeners, backends, self.peers(ctx)).map_err(|e| ApiError::model(&e))
    }

    fn backend_name(pool: &Name) -> Result<Name, ApiError> {
        pool.prefixed("pool id", "backend-")
            .map_err(|e| ApiError::model(&e))
    }

    fn frontend(&self, l: &ListenerObject, ctx: &Context) -> Result<Listener, ApiError> {
        let lb = l
            .loadbalancer_id
            .as_ref()
            .and_then(|id| self.loadbalancers.get(id));
        let default_pool = match &l.default_pool_id {
            Some(pool) => Some(pool.clone()),
            None => self
                .pools
                .values()
                .find(|p| p.listener_id.as_ref() == Some(&l.id))
                .map(|p| p.id.clone()),
        };
        let tls = match l.protocol {
            ListenerProtocol::TerminatedHttps => Some(Tls {
                certificates: l
                    .tls_certificate_id
                    .iter()
                    .chain(&l.sni_containers)
                    .map(|id| ctx.certificates.join(format!("{id}.pem")))
                    .collect(),
            }),
            _ => None,
        };
        Ok(Listener {
            name: l.id.clone(),
            enabled: l.enabled && lb.is_none_or(|lb| lb.enabled),
            mode: match l.protocol {
                ListenerProtocol::Tcp => Mode::Tcp,
                ListenerProtocol::Http | ListenerProtocol::TerminatedHttps => Mode::Http,
            },
            address: l
                .vip_address
                .or_else(|| lb.and_then(|lb| lb.vip_address))
                .unwrap_or(ctx.bind),
            port: l.protocol_port,
            max_connections: l.connection_limit,
            tls,
            default_pool: default_pool.map(|p| Store::backend_name(&p)).transpose()?,
        })
    }

    fn backend(&self, p: &Pool, ctx: &Context) -> Result<Backend, ApiError> {
        let lb = p
            .loadbalancer_id
            .as_ref()
            .and_then(|id| self.loadbalancers.get(id));
        let persistence = match &p.session_persistence {
            None => None,
            Some(sp) => Some(match sp.kind {
                PersistenceType::SourceIp => Persistence::SourceIp {
                    key: if self.serves_ipv6(p, ctx) {
                        StickKey::Ipv6
                    } else {
                        StickKey::Ipv4
                    },
                    size: TableSize::new(p.stick_size.as_deref().unwrap_or(DEFAULT_STICK_SIZE))
                        .map_err(|e| ApiError::bad("stick_size", e.to_string()))?,
                    expire: Expiry::new(p.stick_expire.as_deref().unwrap_or(DEFAULT_STICK_EXPIRE))
                        .map_err(|e| ApiError::bad("stick_expire", e.to_string()))?,
                    peers: self.peers(ctx).is_some(),
                },
                PersistenceType::HttpCookie => Persistence::HttpCookie {
                    cookie: sp
                        .cookie_name
                        .clone()
                        .unwrap_or_else(|| known(DEFAULT_COOKIE)),
                },
                PersistenceType::AppCookie => Persistence::AppCookie {
                    cookie: sp.cookie_name.clone().ok_or_else(|| {
                        ApiError::bad(
                            "session_persistence.cookie_name",
                            "is required for APP_COOKIE",
                        )
                    })?,
                },
            }),
        };
        let monitor = self
            .healthmonitors
            .values()
            .find(|m| m.pool_id == p.id && m.enabled)
            .map(monitor)
            .transpose()?;
        Ok(Backend {
            name: Store::backend_name(&p.id)?,
            enabled: p.enabled && lb.is_none_or(|lb| lb.enabled),
            mode: match p.protocol {
                PoolProtocol::Http => Mode::Http,
                PoolProtocol::Tcp => Mode::Tcp,
            },
            balance: match p.lb_algorithm {
                Algorithm::RoundRobin => Balance::RoundRobin,
                Algorithm::LeastConnections => Balance::LeastConnections,
                Algorithm::SourceIp => Balance::SourceIp,
            },
            persistence,
            monitor,
            members: p.members.iter().map(server).collect(),
        })
    }

    /// Whether a listener using `pool` binds an IPv6 address (its stick table then keys IPv6).
    fn serves_ipv6(&self, pool: &Pool, ctx: &Context) -> bool {
        self.listeners.values().any(|l| {
            let uses = l.default_pool_id.as_ref() == Some(&pool.id)
                || pool.listener_id.as_ref() == Some(&l.id);
            let lb = l
                .loadbalancer_id
                .as_ref()
                .and_then(|id| self.loadbalancers.get(id));
            let address = l
                .vip_address
                .or_else(|| lb.and_then(|lb| lb.vip_address))
                .unwrap_or(ctx.bind);
            uses && address.is_ipv6()
        })
    }

    /// The `peers` section, once this node is among the peers (until then stick tables are
    /// this node's own).
    fn peers(&self, ctx: &Context) -> Option<Peers> {
        if !self.peers.contains_key(&ctx.peer_name) {
            return None;
        }
        Some(Peers {
            section: ctx.peers_section.clone(),
            local: ctx.peer_name.clone(),
            peers: self
                .peers
                .values()
                .map(|p| PeerModel {
                    name: p.hostname.clone(),
                    address: p.address,
                    port: p.port,
                })
                .collect(),
        })
    }

    /// The BGP peering `/api/quagga` set, if any.
    pub fn quagga(&self) -> Option<&Quagga> {
        self.quagga.as_ref()
    }

    /// Sets (or, with `None`, removes) the BGP peering.
    pub fn set_quagga(&mut self, quagga: Option<Quagga>) {
        self.quagga = quagga;
    }

    /// Whether this node is among the peers (the `peers` section is rendered).
    pub fn peers_active(&self, ctx: &Context) -> bool {
        self.peers.contains_key(&ctx.peer_name)
    }
}

fn server(m: &Member) -> Server {
    Server {
        name: m.id.clone(),
        address: m.address.into(),
        port: m.protocol_port,
        weight: m.weight,
        enabled: m.enabled,
        backup: m.backup,
    }
}

fn monitor(m: &HealthMonitor) -> Result<Monitor, ApiError> {
    let http = || -> Result<HttpCheck, ApiError> {
        Ok(HttpCheck {
            method: match &m.http_method {
                Some(method) => {
                    method
                        .parse()
                        .map_err(|e: crate::haproxy::model::ModelError| {
                            ApiError::bad("http_method", e.to_string())
                        })?
                }
                None => HttpMethod::Get,
            },
            path: HttpPath::new(m.url_path.as_deref().unwrap_or("/"))
                .map_err(|e| ApiError::bad("url_path", e.to_string()))?,
            expect: match &m.expected_codes {
                Some(codes) => ExpectedCodes::parse(codes)
                    .map_err(|e| ApiError::bad("expected_codes", e.to_string()))?,
                None => ExpectedCodes::one(200),
            },
        })
    };
    Ok(Monitor {
        kind: match m.kind {
            MonitorType::Tcp => CheckKind::Tcp,
            MonitorType::Http => CheckKind::Http(http()?),
            MonitorType::Https => CheckKind::Https(http()?),
            MonitorType::Ping => CheckKind::Ping,
        },
        interval_s: m.delay,
        timeout_s: m.timeout,
        rise: m.max_retries,
        fall: m.max_retries_down.unwrap_or(m.max_retries),
    })
}

/// An enum value as the request spells it (`TERMINATED_HTTPS`).
fn wire_name(value: impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => "?".to_string(),
    }
}

fn protocols_match(listener: ListenerProtocol, pool: PoolProtocol) -> bool {
    matches!(
        (listener, pool),
        (ListenerProtocol::Tcp, PoolProtocol::Tcp)
            | (
                ListenerProtocol::Http | ListenerProtocol::TerminatedHttps,
                PoolProtocol::Http
            )
    )
}

fn known(name: &str) -> Name {
    Name::new("name", name).unwrap_or_else(|e| unreachable!("{e}"))
}

fn insert_new<T: Serialize>(
    map: &mut BTreeMap<Name, T>,
    id: Name,
    object: T,
    kind: &Kind,
) -> Result<Value, ApiError> {
    if map.contains_key(&id) {
        return Err(duplicate(kind, &id));
    }
    let answer = json(&object);
    map.insert(id, object);
    Ok(answer)
}

fn duplicate(kind: &Kind, id: &Name) -> ApiError {
    ApiError::conflict(
        Some("id"),
        format!(
            "a {} `{id}` exists already; update it with PUT",
            kind.noun()
        ),
    )
}

fn unknown(field: &str, what: &str, id: &Name) -> ApiError {
    ApiError::conflict(Some(field), format!("there is no {what} `{id}`"))
}

#[cfg(test)]
mod tests;
