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
//!
//! [[targets]]
//! id = "acme-circuit"
//! kind = "link"
//! owner = "carrier"
//! carrier = "ACME Telecom"
//! circuit_id = "ACME-SH-0042"
//!
//! [[targets]]
//! id = "edge1-wan"             # our edge interface: the carrier boundary
//! kind = "interface"
//! room = "dc1-r1"
//! owner = "platform"
//! depends_on = ["edge1", "acme-circuit"]
//! ```

use faultline_wire::config_file::{ConfigError, ConfigSource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// Who is responsible when a target fails; also the tag of every incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
        f.write_str(match self {
            Owner::Platform => "platform",
            Owner::Carrier => "carrier",
            Owner::Customer => "customer",
        })
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// A watched target as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Unique id; samples carry it.
    pub id: String,
    /// What it is.
    pub kind: TargetKind,
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
}

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

fn validate(source: &ConfigSource, file: InventoryFile) -> Result<Inventory, ConfigError> {
    let mut inv = Inventory::default();
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
        inv.targets.insert(target.id.clone(), target.clone());
    }
    for (i, target) in file.targets.iter().enumerate() {
        for (j, dep) in target.depends_on.iter().enumerate() {
            let field = format!("targets[{i}].depends_on[{j}]");
            if *dep == target.id {
                return Err(source.error(&field, format!("`{dep}` cannot depend on itself")));
            }
            if !inv.targets.contains_key(dep) {
                return Err(source.error(&field, format!("unknown target `{dep}`")));
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
    Ok(inv)
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
