//! The inventory: sites → rooms → targets, who owns each target, customer departments and the
//! `depends_on` graph that attribution walks (rules → **incidents**: attribution reads it).
//!
//! Loaded from TOML through the shared [`ConfigSource`]; validation rejects unknown references,
//! missing owner details and dependency cycles, naming file, line, field and the cycle.
//!
//! ```toml
//! [[sites]]
//! id = "dc1"
//!
//! [[rooms]]
//! id = "dc1-r1"
//! site = "dc1"
//!
//! [[departments]]
//! id = "finance"
//! vip = false                  # by hand; also automatic with more than 4 cloud hosts (kind = "vm")
//! contacts = [{ name = "Li Wei", email = "li.wei@example.com", phone = "+86 21 5555 0101" }]
//! language = "zh-CN"           # customer messages in Simplified Chinese (default "en")
//! mail_domains = ["finance.gov.example"]  # mail from these domains to the repair mailbox is theirs
//!
//! [[targets]]
//! id = "edge1-wan"             # our edge interface: the carrier boundary
//! kind = "interface"
//! role = "interface"           # router | switch | firewall | ips | waf | load_balancer | ups | pdu |
//! room = "dc1-r1"              #   cooling | environment_sensor | hypervisor | host | vm | storage |
//! owner = "platform"           #   link | interface | gateway | service | other (default: from kind)
//! device = "edge1"             # the device target whose samples carry this interface …
//! ifname = "Te0/0/0"           # … as the `ifname` label (IF-MIB ifName)
//! labels = { link_role = "carrier" }
//! depends_on = ["edge1"]
//!
//! [[circuits]]                 # a carrier circuit (crate::circuits): a carrier-owned link
//! id = "acme-circuit"          #   target our port (a_end) depends on
//! carrier = "ACME Telecom"
//! circuit_id = "ACME-SH-0042"
//! a_end = "edge1-wan"
//! z_end = "ACME POP Shanghai-3"
//!
//! [[pools]]                    # a resource pool the capacity watch follows (crate::capacity)
//! id = "san-a"
//! kind = "storage"
//! capacity = 500e12
//! members = ["vm-1"]
//! metric = "storage_used_bytes"
//! ```
//!
//! Samples meet the inventory through [`Inventory::resolve`]: an agent polls a device and sends
//! its interfaces' samples with the device's target id and an `ifname` label; an interface target
//! naming that device and ifname takes them over, so a port has its own owner, dependencies and
//! tickets. A target's `labels` are added to its samples before rules see them, which is how a
//! rule tells carrier-facing ports from the others.

use crate::capacity::pool::{Pool, validate_pools};
use crate::circuits::Circuit;
use faultline_wire::Sample;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use faultline_wire::validate::{RESERVED_LABELS, is_label_name};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// Who is responsible when a target fails; also the tag of every incident.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// Our own infrastructure.
    Platform,
    /// A carrier's circuit.
    Carrier,
    /// A customer's system.
    Customer,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(tag_label(Some(*self)))
    }
}

/// The label of a ticket's responsibility tag wherever one is shown or counted (metrics `tag`
/// label, console, notifications): the owner's name, or `untagged` for a ticket waiting for
/// triage (a mail from an unknown sender).
pub fn tag_label(tag: Option<Owner>) -> &'static str {
    match tag {
        Some(Owner::Platform) => "platform",
        Some(Owner::Carrier) => "carrier",
        Some(Owner::Customer) => "customer",
        None => UNTAGGED,
    }
}

/// The label of a ticket without a responsibility tag yet ([`tag_label`]).
pub const UNTAGGED: &str = "untagged";

/// What kind of thing a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A network device (switch, router, firewall).
    Device,
    /// One interface of a device.
    Interface,
    /// A link or circuit.
    Link,
    /// A physical server.
    Host,
    /// A cloud host (virtual machine); counts towards a department's automatic VIP status.
    Vm,
    /// An environmental sensor.
    Sensor,
    /// Facility equipment: cooling unit, UPS, PDU.
    Facility,
    /// A service or application.
    Service,
}

/// What a target does, from a fixed set: carried into tickets' evidence, the API, notification
/// payloads and metric labels, so that faults can be counted by role ("security devices fail
/// often"). A target without one takes its kind's ([`TargetRole::of_kind`]).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TargetRole {
    /// Router (edge, core).
    Router,
    /// Switch (core, aggregation, top of rack).
    Switch,
    /// Firewall (security device).
    Firewall,
    /// Intrusion prevention system (security device).
    Ips,
    /// Web application firewall (security device).
    Waf,
    /// Load balancer / application delivery controller.
    LoadBalancer,
    /// Uninterruptible power supply.
    Ups,
    /// Power distribution unit.
    Pdu,
    /// Precision air conditioning / cooling unit.
    Cooling,
    /// Temperature, humidity or leak sensor.
    EnvironmentSensor,
    /// Virtualisation host.
    Hypervisor,
    /// Physical server.
    Host,
    /// Cloud host (virtual machine).
    Vm,
    /// Storage array or pool.
    Storage,
    /// A link or carrier circuit.
    Link,
    /// One interface (port) of a device.
    Interface,
    /// Monitoring gateway (a machine-room agent host).
    Gateway,
    /// A service or application.
    Service,
    /// Anything else.
    Other,
}

impl TargetRole {
    /// Every role, in declaration order (metric label values).
    pub const ALL: [TargetRole; 19] = [
        TargetRole::Router,
        TargetRole::Switch,
        TargetRole::Firewall,
        TargetRole::Ips,
        TargetRole::Waf,
        TargetRole::LoadBalancer,
        TargetRole::Ups,
        TargetRole::Pdu,
        TargetRole::Cooling,
        TargetRole::EnvironmentSensor,
        TargetRole::Hypervisor,
        TargetRole::Host,
        TargetRole::Vm,
        TargetRole::Storage,
        TargetRole::Link,
        TargetRole::Interface,
        TargetRole::Gateway,
        TargetRole::Service,
        TargetRole::Other,
    ];

    /// The name used in files, payloads and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetRole::Router => "router",
            TargetRole::Switch => "switch",
            TargetRole::Firewall => "firewall",
            TargetRole::Ips => "ips",
            TargetRole::Waf => "waf",
            TargetRole::LoadBalancer => "load_balancer",
            TargetRole::Ups => "ups",
            TargetRole::Pdu => "pdu",
            TargetRole::Cooling => "cooling",
            TargetRole::EnvironmentSensor => "environment_sensor",
            TargetRole::Hypervisor => "hypervisor",
            TargetRole::Host => "host",
            TargetRole::Vm => "vm",
            TargetRole::Storage => "storage",
            TargetRole::Link => "link",
            TargetRole::Interface => "interface",
            TargetRole::Gateway => "gateway",
            TargetRole::Service => "service",
            TargetRole::Other => "other",
        }
    }

    /// Whether it is a security device (firewall, IPS, WAF).
    pub fn is_security(self) -> bool {
        matches!(
            self,
            TargetRole::Firewall | TargetRole::Ips | TargetRole::Waf
        )
    }

    /// The role a target of `kind` has when its entry names none.
    pub fn of_kind(kind: TargetKind) -> Self {
        match kind {
            TargetKind::Device | TargetKind::Facility => TargetRole::Other,
            TargetKind::Interface => TargetRole::Interface,
            TargetKind::Link => TargetRole::Link,
            TargetKind::Host => TargetRole::Host,
            TargetKind::Vm => TargetRole::Vm,
            TargetKind::Sensor => TargetRole::EnvironmentSensor,
            TargetKind::Service => TargetRole::Service,
        }
    }
}

impl fmt::Display for TargetRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

/// A room in a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Room {
    /// Unique id.
    pub id: String,
    /// The site's id.
    pub site: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

/// A person to inform about a department's faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
}

/// A customer department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// VIP by hand.
    #[serde(default)]
    pub vip: bool,
    /// Contacts for progress updates and call-backs.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Language of the messages its contacts get: `en` (default) or `zh-CN`.
    #[serde(default)]
    pub language: Language,
    /// Mail domains whose senders belong to this department (the repair mailbox matches a
    /// sender by a contact's address first, then by domain); lower case, unique across
    /// departments.
    #[serde(default)]
    pub mail_domains: Vec<String>,
}

/// The language customer messages are written in.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Language {
    /// English.
    #[default]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    ZhCn,
}

/// A watched target as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Unique id; samples carry it.
    pub id: String,
    /// What it is.
    pub kind: TargetKind,
    /// What it does (`router`, `firewall`, `ups`, `vm` …; see [`TargetRole`]); default: its
    /// kind's.
    #[serde(default)]
    pub role: Option<TargetRole>,
    /// Room it stands in, if any (cloud hosts may have none).
    #[serde(default)]
    pub room: Option<String>,
    /// Who is responsible when it fails.
    pub owner: Owner,
    /// Carrier name (carrier targets only).
    #[serde(default)]
    pub carrier: Option<String>,
    /// Circuit id (carrier targets only).
    #[serde(default)]
    pub circuit_id: Option<String>,
    /// Department (customer targets only).
    #[serde(default)]
    pub department: Option<String>,
    /// Targets it cannot work without.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Interface targets only: the device target whose samples carry this interface.
    #[serde(default)]
    pub device: Option<String>,
    /// Interface targets only: the interface's `ifname` label value on the device's samples.
    #[serde(default)]
    pub ifname: Option<String>,
    /// Labels added to this target's samples before rules see them (`link_role = "carrier"`);
    /// a label the sample already has is kept.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Target {
    /// What it does: its `role`, or its kind's.
    pub fn role(&self) -> TargetRole {
        self.role.unwrap_or_else(|| TargetRole::of_kind(self.kind))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    sites: Vec<Site>,
    #[serde(default)]
    rooms: Vec<Room>,
    #[serde(default)]
    departments: Vec<Department>,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    circuits: Vec<Circuit>,
    #[serde(default)]
    pools: Vec<Pool>,
}

/// More cloud hosts than this make a department VIP automatically.
pub const AUTO_VIP_CLOUD_HOSTS: usize = 4;

/// A validated inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    sites: BTreeMap<String, Site>,
    rooms: BTreeMap<String, Room>,
    departments: BTreeMap<String, Department>,
    targets: BTreeMap<String, Target>,
    /// Departments that are VIP, by hand or automatically.
    vip: BTreeSet<String>,
    /// Reverse edges: who depends on a target.
    dependents: BTreeMap<String, Vec<String>>,
    /// Interface targets by device target and `ifname`.
    interfaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether [`Inventory::resolve`] can change any sample (interfaces or target labels).
    resolves: bool,
    /// Carrier circuits by id (each is also a carrier `link` target).
    circuits: BTreeMap<String, Circuit>,
    /// Resource pools by id (`[[pools]]`, the capacity watch's).
    pools: BTreeMap<String, Pool>,
}

/// The label a re-targeted sample gets with its new target's role ([`Inventory::resolve`]).
pub const ROLE_LABEL: &str = "role";

/// The label that names an interface on a device's samples (IF-MIB profile).
pub const IFNAME_LABEL: &str = "ifname";

impl Inventory {
    /// Parses and validates an inventory file.
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        let file: InventoryFile = source.parse()?;
        validate(source, file)
    }

    /// A target by id.
    pub fn target(&self, id: &str) -> Option<&Target> {
        self.targets.get(id)
    }

    /// A carrier circuit by id (`[[circuits]]`).
    pub fn circuit(&self, id: &str) -> Option<&Circuit> {
        self.circuits.get(id)
    }

    /// All carrier circuits by id.
    pub fn circuits(&self) -> &BTreeMap<String, Circuit> {
        &self.circuits
    }

    /// All resource pools by id (`[[pools]]`, [`crate::capacity`]).
    pub fn pools(&self) -> &BTreeMap<String, Pool> {
        &self.pools
    }

    /// All customer departments by id.
    pub fn departments(&self) -> &BTreeMap<String, Department> {
        &self.departments
    }

    /// All targets by id.
    pub fn targets(&self) -> &BTreeMap<String, Target> {
        &self.targets
    }

    /// A room by id.
    pub fn room(&self, id: &str) -> Option<&Room> {
        self.rooms.get(id)
    }

    /// A site by id.
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.get(id)
    }

    /// A department by id.
    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.get(id)
    }

    /// The department (and contact, when the address is a contact's) a mail sender belongs to:
    /// a contact's e-mail address first, else the address's domain in a department's
    /// `mail_domains`; case-insensitive.
    pub fn sender(&self, address: &str) -> Option<(&Department, Option<&Contact>)> {
        let address = address.trim().to_ascii_lowercase();
        let by_contact = self.departments.values().find_map(|d| {
            d.contacts
                .iter()
                .find(|c| {
                    c.email
                        .as_deref()
                        .is_some_and(|e| e.trim().eq_ignore_ascii_case(&address))
                })
                .map(|c| (d, Some(c)))
        });
        by_contact.or_else(|| {
            let (_, domain) = address.rsplit_once('@')?;
            self.departments
                .values()
                .find(|d| d.mail_domains.iter().any(|m| m == domain))
                .map(|d| (d, None))
        })
    }

    /// The department a target belongs to (customer targets).
    pub fn department_of(&self, target: &str) -> Option<&Department> {
        self.target(target)
            .and_then(|t| t.department.as_deref())
            .and_then(|d| self.department(d))
    }

    /// Whether a department is VIP (by hand, or more than [`AUTO_VIP_CLOUD_HOSTS`] cloud hosts).
    pub fn is_vip(&self, department: &str) -> bool {
        self.vip.contains(department)
    }

    /// The sample as the rules see it: re-targeted to the interface target that claims its device
    /// and `ifname` label, with the (new) target's `labels` and its `role` added, so rules and
    /// dashboards can select by role ("security devices"). Borrowed when nothing applies.
    pub fn resolve<'a>(&self, sample: &'a Sample) -> Cow<'a, Sample> {
        if !self.resolves {
            return Cow::Borrowed(sample);
        }
        let interface = sample
            .labels
            .get(IFNAME_LABEL)
            .and_then(|ifname| self.interfaces.get(&sample.target)?.get(ifname));
        let target = interface.map_or(sample.target.as_str(), String::as_str);
        let Some(known) = self.target(target) else {
            return Cow::Borrowed(sample);
        };
        let adds_labels = known.labels.keys().any(|k| !sample.labels.contains_key(k));
        let adds_role = !sample.labels.contains_key(ROLE_LABEL);
        if interface.is_none() && !adds_labels && !adds_role {
            return Cow::Borrowed(sample);
        }
        let mut resolved = sample.clone();
        if let Some(id) = interface {
            resolved.target.clone_from(id);
        }
        // The sample names what its target is (a re-targeted one: what it now is), for rules and
        // /metrics alike.
        resolved
            .labels
            .entry(ROLE_LABEL.to_string())
            .or_insert_with(|| known.role().as_str().to_string());
        for (name, value) in &known.labels {
            resolved
                .labels
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        Cow::Owned(resolved)
    }

    /// Targets that list `id` in their `depends_on`.
    pub fn dependents(&self, id: &str) -> &[String] {
        self.dependents.get(id).map_or(&[], Vec::as_slice)
    }

    /// Every target upstream of `id` (not `id` itself) with the path to it, nearest first
    /// (breadth-first over `depends_on`). A path starts at `id` and ends at the upstream target.
    pub fn upstream(&self, id: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::from([id.to_string()]);
        let mut queue = VecDeque::from([vec![id.to_string()]]);
        while let Some(path) = queue.pop_front() {
            let Some(last) = path.last().and_then(|t| self.target(t)) else {
                continue;
            };
            for dep in &last.depends_on {
                if seen.insert(dep.clone()) {
                    let mut next = path.clone();
                    next.push(dep.clone());
                    out.push(next.clone());
                    queue.push_back(next);
                }
            }
        }
        out
    }
}

fn validate(source: &ConfigSource, mut file: InventoryFile) -> Result<Inventory, ConfigError> {
    let mut inv = Inventory::default();
    crate::circuits::add_to_targets(source, &file.circuits, &mut file.targets)?;
    for (i, site) in file.sites.into_iter().enumerate() {
        check_id(
            source,
            &format!("sites[{i}].id"),
            &site.id,
            inv.sites.contains_key(&site.id),
        )?;
        inv.sites.insert(site.id.clone(), site);
    }
    for (i, room) in file.rooms.into_iter().enumerate() {
        check_id(
            source,
            &format!("rooms[{i}].id"),
            &room.id,
            inv.rooms.contains_key(&room.id),
        )?;
        if !inv.sites.contains_key(&room.site) {
            return Err(source.error(
                &format!("rooms[{i}].site"),
                format!("unknown site `{}`", room.site),
            ));
        }
        inv.rooms.insert(room.id.clone(), room);
    }
    for (i, dept) in file.departments.into_iter().enumerate() {
        let exists = inv.departments.contains_key(&dept.id);
        check_id(source, &format!("departments[{i}].id"), &dept.id, exists)?;
        for (j, c) in dept.contacts.iter().enumerate() {
            if c.name.trim().is_empty() || (c.email.is_none() && c.phone.is_none()) {
                return Err(source.error(
                    &format!("departments[{i}].contacts[{j}]"),
                    "a contact needs a name and an e-mail or a phone",
                ));
            }
        }
        for (j, domain) in dept.mail_domains.iter().enumerate() {
            let field = format!("departments[{i}].mail_domains[{j}]");
            let valid = domain.contains('.')
                && !domain.starts_with('.')
                && domain
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
            if !valid {
                return Err(source.error(
                    &field,
                    format!("`{domain}` is not a lower-case mail domain (finance.gov.example)"),
                ));
            }
            let owner = inv
                .departments
                .values()
                .find(|d| d.mail_domains.contains(domain))
                .map(|d| d.id.as_str())
                .or_else(|| {
                    dept.mail_domains[..j]
                        .contains(domain)
                        .then_some(dept.id.as_str())
                });
            if let Some(owner) = owner {
                return Err(source.error(
                    &field,
                    format!("`{domain}` is already department `{owner}`'s"),
                ));
            }
        }
        inv.departments.insert(dept.id.clone(), dept);
    }
    for (i, target) in file.targets.iter().enumerate() {
        let field = |f: &str| format!("targets[{i}].{f}");
        check_id(
            source,
            &field("id"),
            &target.id,
            inv.targets.contains_key(&target.id),
        )?;
        if let Some(room) = &target.room
            && !inv.rooms.contains_key(room)
        {
            return Err(source.error(&field("room"), format!("unknown room `{room}`")));
        }
        let is_carrier = target.owner == Owner::Carrier;
        if is_carrier && (target.kind == TargetKind::Interface || target.device.is_some()) {
            return Err(source.error(
                &field("owner"),
                format!(
                    "`{}` is a port of our equipment: keep it owner = \"platform\" and describe \
                     the circuit as [[circuits]] with a_end = \"{}\" (otherwise whatever \
                     depends on the port would count as our side of the boundary)",
                    target.id, target.id
                ),
            ));
        }
        for (name, value) in [
            ("carrier", &target.carrier),
            ("circuit_id", &target.circuit_id),
        ] {
            match (is_carrier, value.as_deref().map(str::trim)) {
                (true, None | Some("")) => {
                    return Err(
                        source.error(&field(name), format!("a carrier target needs `{name}`"))
                    );
                }
                (false, Some(_)) => {
                    return Err(source.error(
                        &field(name),
                        "only targets with owner = \"carrier\" take it",
                    ));
                }
                _ => {}
            }
        }
        match (target.owner == Owner::Customer, &target.department) {
            (true, None) => {
                return Err(source.error(&field("owner"), "a customer target needs `department`"));
            }
            (true, Some(d)) if !inv.departments.contains_key(d) => {
                return Err(source.error(&field("department"), format!("unknown department `{d}`")));
            }
            (false, Some(_)) => {
                return Err(source.error(
                    &field("department"),
                    "only targets with owner = \"customer\" take it",
                ));
            }
            _ => {}
        }
        check_interface(source, i, target, &file.targets, &mut inv.interfaces)?;
        for name in target.labels.keys() {
            if !is_label_name(name) || RESERVED_LABELS.contains(&name.as_str()) {
                return Err(source.error(
                    &field("labels"),
                    format!("`{name}` is not a label name a target can add (letters, digits, `_`; not `agent` or `target`)"),
                ));
            }
        }
        inv.targets.insert(target.id.clone(), target.clone());
    }
    inv.resolves = !inv.interfaces.is_empty() || inv.targets.values().any(|t| !t.labels.is_empty());
    for (i, target) in file.targets.iter().enumerate() {
        for (j, dep) in target.depends_on.iter().enumerate() {
            let field = format!("targets[{i}].depends_on[{j}]");
            if *dep == target.id {
                return Err(source.error(&field, format!("`{dep}` cannot depend on itself")));
            }
            let Some(upstream) = inv.targets.get(dep) else {
                return Err(source.error(&field, format!("unknown target `{dep}`")));
            };
            if target.owner == Owner::Customer && upstream.owner == Owner::Carrier {
                return Err(source.error(
                    &field,
                    format!(
                        "customer system `{}` depends on carrier target `{dep}` directly: make \
                         it depend on our equipment (the port the circuit ends on), so the \
                         boundary is judged on our side",
                        target.id
                    ),
                ));
            }
            inv.dependents
                .entry(dep.clone())
                .or_default()
                .push(target.id.clone());
        }
    }
    if let Some(cycle) = find_cycle(&inv) {
        let index = file
            .targets
            .iter()
            .position(|t| t.id == cycle[0])
            .unwrap_or(0);
        return Err(source.error(
            &format!("targets[{index}].depends_on"),
            format!("dependency cycle: {}", cycle.join(" → ")),
        ));
    }
    for dept in inv.departments.values() {
        let cloud_hosts = inv
            .targets
            .values()
            .filter(|t| {
                t.kind == TargetKind::Vm && t.department.as_deref() == Some(dept.id.as_str())
            })
            .count();
        if dept.vip || cloud_hosts > AUTO_VIP_CLOUD_HOSTS {
            inv.vip.insert(dept.id.clone());
        }
    }
    inv.circuits = file
        .circuits
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    inv.pools = validate_pools(source, file.pools, &inv)?;
    Ok(inv)
}

/// Checks `device` and `ifname` of target `i` (both or neither, interface targets only, the
/// device a known non-interface target, one target per device and ifname) and records the pair.
fn check_interface(
    source: &ConfigSource,
    i: usize,
    target: &Target,
    all: &[Target],
    interfaces: &mut BTreeMap<String, BTreeMap<String, String>>,
) -> Result<(), ConfigError> {
    let field = |f: &str| format!("targets[{i}].{f}");
    let (device, ifname) = match (&target.device, &target.ifname) {
        (None, None) => return Ok(()),
        (Some(d), Some(n)) => (d, n),
        (Some(_), None) => return Err(source.error(&field("device"), "`device` needs `ifname`")),
        (None, Some(_)) => return Err(source.error(&field("ifname"), "`ifname` needs `device`")),
    };
    if target.kind != TargetKind::Interface {
        return Err(source.error(
            &field("device"),
            "only targets with kind = \"interface\" take it",
        ));
    }
    if !all
        .iter()
        .any(|t| t.id == *device && t.kind != TargetKind::Interface)
    {
        return Err(source.error(
            &field("device"),
            format!("unknown device target `{device}`"),
        ));
    }
    if ifname.trim().is_empty() {
        return Err(source.error(&field("ifname"), "must not be empty"));
    }
    let by_name = interfaces.entry(device.clone()).or_default();
    if let Some(other) = by_name.insert(ifname.clone(), target.id.clone()) {
        return Err(source.error(
            &field("ifname"),
            format!("`{device}` `{ifname}` is already target `{other}`"),
        ));
    }
    Ok(())
}

/// Rejects an empty or duplicate id at `field` (shared by every config file of this crate).
pub(crate) fn check_id(
    source: &ConfigSource,
    field: &str,
    id: &str,
    duplicate: bool,
) -> Result<(), ConfigError> {
    if id.trim().is_empty() {
        return Err(source.error(field, "must not be empty"));
    }
    if duplicate {
        return Err(source.error(field, format!("duplicate id `{id}`")));
    }
    Ok(())
}

/// A dependency cycle as `a, b, c, a`, if any (depth-first search with colours).
fn find_cycle(inv: &Inventory) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<&str, Colour> = inv
        .targets
        .keys()
        .map(|k| (k.as_str(), Colour::White))
        .collect();
    for start in inv.targets.keys() {
        if colour.get(start.as_str()) != Some(&Colour::White) {
            continue;
        }
        // Explicit stack of (target, next dependency index) so deep graphs cannot overflow.
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        colour.insert(start.as_str(), Colour::Grey);
        while let Some((node, next)) = stack.last().copied() {
            let deps = inv
                .targets
                .get(node)
                .map_or(&[][..], |t| t.depends_on.as_slice());
            let Some(dep) = deps.get(next) else {
                colour.insert(node, Colour::Black);
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            match colour.get(dep.as_str()) {
                Some(Colour::White) => {
                    colour.insert(dep.as_str(), Colour::Grey);
                    stack.push((dep.as_str(), 0));
                }
                Some(Colour::Grey) => {
                    let from = stack
                        .iter()
                        .position(|(n, _)| *n == dep.as_str())
                        .unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                    cycle.push(dep.clone());
                    return Some(cycle);
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    pub(crate) const SAMPLE: &str = r#"
[[sites]]
id = "dc1"

[[rooms]]
id = "r1"
site = "dc1"

[[departments]]
id = "finance"
contacts = [{ name = "Li Wei", email = "li.wei@example.com" }]

[[departments]]
id = "research"

[[targets]]
id = "host-1"
kind = "host"
room = "r1"
owner = "platform"

[[targets]]
id = "vm-1"
kind = "vm"
owner = "customer"
department = "finance"
depends_on = ["host-1"]
"#;

    fn load(text: &str) -> Result<Inventory, ConfigError> {
        Inventory::load(&ConfigSource::from_text(
            Path::new("inv.toml"),
            text.to_string(),
        ))
    }

    #[test]
    fn mail_senders_match_a_contact_first_then_a_domain() {
        let inv = load(&SAMPLE.replacen(
            "id = \"research\"",
            "id = \"research\"\nmail_domains = [\"research.gov.example\", \"example.com\"]",
            1,
        ))
        .unwrap();
        let cases = [
            ("li.wei@example.com", Some(("finance", Some("Li Wei")))),
            (" Li.Wei@EXAMPLE.com ", Some(("finance", Some("Li Wei")))),
            ("zhang@example.com", Some(("research", None))),
            ("x@Research.Gov.Example", Some(("research", None))),
            ("x@sub.research.gov.example", None),
            ("nobody@elsewhere.example", None),
            ("not-an-address", None),
        ];
        for (address, want) in cases {
            let got = inv
                .sender(address)
                .map(|(d, c)| (d.id.as_str(), c.map(|c| c.name.as_str())));
            assert_eq!(got, want, "{address}");
        }
    }

    #[test]
    fn circuits_are_carrier_links_our_port_depends_on_and_ambiguous_models_are_refused() {
        let base = "[[sites]]\nid = \"dc1\"\n\n[[rooms]]\nid = \"r1\"\nsite = \"dc1\"\n\n[[departments]]\nid = \"finance\"\n\n[[targets]]\nid = \"edge1\"\nkind = \"device\"\nrole = \"router\"\nroom = \"r1\"\nowner = \"platform\"\n\n[[targets]]\nid = \"edge1-wan\"\nkind = \"interface\"\nroom = \"r1\"\nowner = \"platform\"\ndevice = \"edge1\"\nifname = \"Te0/0/0\"\ndepends_on = [\"edge1\"]\n\n[[targets]]\nid = \"vm-1\"\nkind = \"vm\"\nowner = \"customer\"\ndepartment = \"finance\"\ndepends_on = [\"edge1-wan\"]\n\n[[circuits]]\nid = \"acme-1\"\ncarrier = \"ACME\"\ncircuit_id = \"ACME-0042\"\na_end = \"edge1-wan\"\nz_end = \"ACME POP 3\"\nnoc = [{ name = \"ACME NOC\", email = \"noc@acme.example\" }]\n";
        let inv = load(base).unwrap();
        let link = inv.target("acme-1").unwrap();
        assert_eq!(
            (link.owner, link.kind, link.role(), link.room.as_deref()),
            (
                Owner::Carrier,
                TargetKind::Link,
                TargetRole::Link,
                Some("r1")
            )
        );
        assert_eq!(link.circuit_id.as_deref(), Some("ACME-0042"));
        assert!(
            inv.target("edge1-wan")
                .unwrap()
                .depends_on
                .contains(&"acme-1".to_string())
        );
        assert_eq!(inv.dependents("acme-1"), ["edge1-wan"]);
        assert_eq!(inv.circuit("acme-1").unwrap().noc[0].name, "ACME NOC");
        // Our side of the boundary: our port and the router, never the VM behind them.
        let side = crate::attribution::our_side(&inv, "acme-1", true);
        assert_eq!(side, ["edge1", "edge1-wan"]);
        // Refused, naming file, line and field.
        let cases = [
            (
                base.replace("a_end = \"edge1-wan\"", "a_end = \"edge9\""),
                "circuits[0].a_end",
                "unknown target",
            ),
            (
                base.replace("a_end = \"edge1-wan\"", "a_end = \"vm-1\""),
                "circuits[0].a_end",
                "customer-owned",
            ),
            (
                base.replace("id = \"acme-1\"", "id = \"edge1\""),
                "circuits[0].id",
                "duplicate id",
            ),
            (
                base[..base.find("[[circuits]]").unwrap()].replace(
                    "owner = \"platform\"\ndevice",
                    "owner = \"carrier\"\ncarrier = \"ACME\"\ncircuit_id = \"X\"\ndevice",
                ),
                "targets[1].owner",
                "a port of our equipment",
            ),
            (
                base.replace("depends_on = [\"edge1-wan\"]", "depends_on = [\"acme-1\"]"),
                "targets[2].depends_on[0]",
                "depends on carrier target",
            ),
        ];
        for (text, field, message) in cases {
            let err = load(&text).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().contains(message), "{err}");
            assert!(err.position.is_some(), "{err}");
        }
    }

    #[test]
    fn the_shipped_example_inventory_loads_with_its_boundaries() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/inventory.toml");
        let inv = Inventory::load(&ConfigSource::read(&path).unwrap()).unwrap();
        assert_eq!(inv.circuits().len(), 2);
        for (circuit, port) in [
            ("ct-gz-0042", "edge-r1-wan1"),
            ("cu-gz-0107", "edge-r1-wan2"),
        ] {
            assert_eq!(inv.target(circuit).unwrap().owner, Owner::Carrier);
            let side = crate::attribution::our_side(&inv, circuit, true);
            assert_eq!(side, ["edge-r1".to_string(), port.to_string()], "{circuit}");
        }
        let security = inv
            .targets()
            .values()
            .filter(|t| t.role().is_security())
            .count();
        assert_eq!(security, 3, "firewall, IPS and WAF");
        // A VM's chain reaches a circuit through our equipment.
        let chain = inv
            .upstream("vm-fin-portal")
            .into_iter()
            .find(|p| p.last().map(String::as_str) == Some("ct-gz-0042"))
            .unwrap();
        assert!(chain.contains(&"edge-r1-wan1".to_string()), "{chain:?}");
        assert!(inv.is_vip("health-commission"));
    }

    #[test]
    fn roles_are_typed_and_default_to_the_kind() {
        let inv = load(
            "[[targets]]\nid = \"fw1\"\nkind = \"device\"\nrole = \"firewall\"\nowner = \"platform\"\n\n[[targets]]\nid = \"t1\"\nkind = \"sensor\"\nowner = \"platform\"\n",
        )
        .unwrap();
        let fw = inv.target("fw1").unwrap().role();
        assert_eq!((fw, fw.is_security()), (TargetRole::Firewall, true));
        assert_eq!(
            inv.target("t1").unwrap().role(),
            TargetRole::EnvironmentSensor
        );
        assert_eq!(TargetRole::LoadBalancer.as_str(), "load_balancer");
        let err = load(
            "[[targets]]\nid = \"x\"\nkind = \"device\"\nrole = \"toaster\"\nowner = \"platform\"\n",
        )
        .unwrap_err();
        assert!(err.field.ends_with("role"), "{err}");
    }

    #[test]
    fn loads_and_walks_upstream() {
        let inv = load(SAMPLE).unwrap();
        assert_eq!(
            inv.upstream("vm-1"),
            vec![vec!["vm-1".to_string(), "host-1".to_string()]]
        );
        assert_eq!(inv.dependents("host-1"), ["vm-1".to_string()]);
        assert_eq!(
            inv.department_of("vm-1").map(|d| d.id.as_str()),
            Some("finance")
        );
        assert!(!inv.is_vip("finance"));
    }

    #[test]
    fn vip_is_automatic_above_four_cloud_hosts_or_by_hand() {
        let vm = |n: usize| {
            format!(
                "\n[[targets]]\nid = \"vm-x{n}\"\nkind = \"vm\"\nowner = \"customer\"\ndepartment = \"research\"\n"
            )
        };
        let four: String = SAMPLE.to_string() + &(0..4).map(vm).collect::<String>();
        assert!(!load(&four).unwrap().is_vip("research"));
        let five = four.clone() + &vm(4);
        assert!(load(&five).unwrap().is_vip("research"));
        let by_hand = SAMPLE.replace("id = \"research\"", "id = \"research\"\nvip = true");
        assert!(load(&by_hand).unwrap().is_vip("research"));
    }

    const PORTS: &str = r#"
[[targets]]
id = "edge1"
kind = "device"
owner = "platform"

[[targets]]
id = "edge1-wan"
kind = "interface"
owner = "platform"
device = "edge1"
ifname = "Te0/0/0"
labels = { link_role = "carrier" }
depends_on = ["edge1"]
"#;

    #[test]
    fn resolve_table() {
        let inv = load(&(SAMPLE.to_string() + PORTS)).unwrap();
        let sample = |target: &str, labels: &[(&str, &str)]| Sample {
            metric: "faultline_snmp_if_oper_status".into(),
            target: target.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: 2.0,
            ts_ms: 1,
            kind: faultline_wire::SampleKind::State,
        };
        // (what, sample, expected target, expected link_role, borrowed: only when the inventory
        // does not know the target, or the sample already names its role)
        let cases = [
            (
                "the device's WAN port becomes the interface target, with its labels",
                sample("edge1", &[("ifname", "Te0/0/0")]),
                "edge1-wan",
                Some("carrier"),
                false,
            ),
            (
                "another port stays on the device",
                sample("edge1", &[("ifname", "Gi0/1")]),
                "edge1",
                None,
                false,
            ),
            (
                "the same ifname on another device is not the WAN port",
                sample("host-1", &[("ifname", "Te0/0/0")]),
                "host-1",
                None,
                false,
            ),
            (
                "a sample sent for the interface target itself gets its labels",
                sample("edge1-wan", &[]),
                "edge1-wan",
                Some("carrier"),
                false,
            ),
            (
                "the sample's own label wins",
                sample("edge1-wan", &[("link_role", "core")]),
                "edge1-wan",
                Some("core"),
                false,
            ),
            (
                "no ifname label: the device's own sample",
                sample("edge1", &[]),
                "edge1",
                None,
                false,
            ),
        ];
        for (what, input, target, role, borrowed) in cases {
            let out = inv.resolve(&input);
            assert_eq!(out.target, target, "{what}");
            assert_eq!(
                out.labels.get("link_role").map(String::as_str),
                role,
                "{what}"
            );
            assert_eq!(matches!(out, Cow::Borrowed(_)), borrowed, "{what}");
            // The (new) target's role comes along, unless the sample named one.
            let role = input
                .labels
                .get(ROLE_LABEL)
                .map(String::as_str)
                .or_else(|| inv.target(&out.target).map(|t| t.role().as_str()));
            assert_eq!(
                out.labels.get(ROLE_LABEL).map(String::as_str),
                role,
                "{what}"
            );
            if out.target == "edge1-wan" {
                assert_eq!(role, Some("interface"), "{what}");
            }
        }
        let plain = load(SAMPLE).unwrap();
        let input = sample("edge1", &[("ifname", "Te0/0/0")]);
        assert!(matches!(plain.resolve(&input), Cow::Borrowed(_)));
    }

    #[test]
    fn invalid_interface_targets_table() {
        // (replace, with, expected field, fragment of the message)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "device = \"edge1\"\n",
                "",
                "targets[3].ifname",
                "needs `device`",
            ),
            (
                "ifname = \"Te0/0/0\"\n",
                "",
                "targets[3].device",
                "needs `ifname`",
            ),
            (
                "device = \"edge1\"",
                "device = \"edge9\"",
                "targets[3].device",
                "unknown device target `edge9`",
            ),
            (
                "device = \"edge1\"",
                "device = \"edge1-wan\"",
                "targets[3].device",
                "unknown device target `edge1-wan`",
            ),
            (
                "kind = \"interface\"",
                "kind = \"link\"",
                "targets[3].device",
                "kind = \"interface\"",
            ),
            (
                "ifname = \"Te0/0/0\"",
                "ifname = \" \"",
                "targets[3].ifname",
                "must not be empty",
            ),
            ("link_role", "target", "targets[3].labels", "`target`"),
            ("link_role", "link-role", "targets[3].labels", "`link-role`"),
        ];
        let text = SAMPLE.to_string() + PORTS;
        for (from, to, field, fragment) in cases {
            assert!(text.contains(from), "{from}");
            let err = load(&text.replacen(from, to, 1)).unwrap_err();
            assert_eq!(err.field, *field, "{to}: {err}");
            assert!(err.message.contains(fragment), "{to}: {err}");
        }
        let twice = text.clone()
            + "\n[[targets]]\nid = \"edge1-wan2\"\nkind = \"interface\"\nowner = \"platform\"\ndevice = \"edge1\"\nifname = \"Te0/0/0\"\n";
        let err = load(&twice).unwrap_err();
        assert_eq!(err.field, "targets[4].ifname", "{err}");
        assert!(err.message.contains("already target `edge1-wan`"), "{err}");
    }

    #[test]
    fn invalid_inventories_table() {
        // (replace, with, expected field, fragment of the message)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "site = \"dc1\"",
                "site = \"dc9\"",
                "rooms[0].site",
                "unknown site `dc9`",
            ),
            (
                "room = \"r1\"",
                "room = \"r9\"",
                "targets[0].room",
                "unknown room",
            ),
            (
                "depends_on = [\"host-1\"]",
                "depends_on = [\"host-9\"]",
                "targets[1].depends_on[0]",
                "unknown target `host-9`",
            ),
            (
                "department = \"finance\"",
                "department = \"hr\"",
                "targets[1].department",
                "unknown department",
            ),
            (
                "department = \"finance\"\n",
                "",
                "targets[1].owner",
                "needs `department`",
            ),
            (
                "owner = \"platform\"",
                "owner = \"carrier\"",
                "targets[0].carrier",
                "needs `carrier`",
            ),
            (
                "owner = \"platform\"",
                "owner = \"platform\"\ncircuit_id = \"C1\"",
                "targets[0].circuit_id",
                "only targets",
            ),
            (
                "id = \"vm-1\"",
                "id = \"host-1\"",
                "targets[1].id",
                "duplicate id",
            ),
            (
                "email = \"li.wei@example.com\"",
                "",
                "departments[0].contacts[0]",
                "e-mail or a phone",
            ),
            (
                "depends_on = [\"host-1\"]",
                "depends_on = [\"vm-1\"]",
                "targets[1].depends_on[0]",
                "itself",
            ),
            (
                "id = \"research\"",
                "id = \"research\"\nmail_domains = [\"@Research.example\"]",
                "departments[1].mail_domains[0]",
                "lower-case mail domain",
            ),
            (
                "id = \"research\"",
                "id = \"research\"\nmail_domains = [\"ok.example\", \"ok.example\"]",
                "departments[1].mail_domains[1]",
                "already department `research`",
            ),
        ];
        for (from, to, field, fragment) in cases {
            assert!(SAMPLE.contains(from), "{from}");
            let err = load(&SAMPLE.replacen(from, to, 1)).unwrap_err();
            assert_eq!(err.field, *field, "{to}: {err}");
            assert!(err.message.contains(fragment), "{to}: {err}");
            assert!(err.position.is_some(), "{err}");
        }
    }

    #[test]
    fn cycle_is_named_with_file_and_line() {
        let text = SAMPLE.replacen(
            "owner = \"platform\"",
            "owner = \"platform\"\ndepends_on = [\"vm-1\"]",
            1,
        );
        let err = load(&text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("inv.toml:"), "{msg}");
        assert!(
            msg.contains("dependency cycle: host-1 → vm-1 → host-1"),
            "{msg}"
        );
        assert_eq!(err.position.map(|p| p.0), Some(21), "{msg}");
    }
}
