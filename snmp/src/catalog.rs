//! The set of profiles an agent knows: the ones shipped in `snmp/profiles/` (embedded in the
//! binary) plus the files of the user's profile directory, and the choice of profiles for one
//! device (named in its config, or detected from its sysObjectID).
//!
//! Loaded once at agent start ([`ProfileCatalog::builtin`], [`ProfileCatalog::with_user_dir`]);
//! every load error names the file, line and field. The device tasks ([`crate::poller`]) call
//! [`ProfileCatalog::select`].

use crate::Oid;
use crate::profile::Profile;
use faultline_wire::config_file::{ConfigError, ConfigSource};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// The profiles shipped with Faultline: (file name, text).
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("if-mib.toml", include_str!("../profiles/if-mib.toml")),
    (
        "host-resources.toml",
        include_str!("../profiles/host-resources.toml"),
    ),
    ("ucd-snmp.toml", include_str!("../profiles/ucd-snmp.toml")),
    (
        "entity-sensor.toml",
        include_str!("../profiles/entity-sensor.toml"),
    ),
    ("ups-mib.toml", include_str!("../profiles/ups-mib.toml")),
    (
        "geist-environment.toml",
        include_str!("../profiles/geist-environment.toml"),
    ),
    (
        "fortinet-fortigate.toml",
        include_str!("../profiles/fortinet-fortigate.toml"),
    ),
    (
        "paloalto-panos.toml",
        include_str!("../profiles/paloalto-panos.toml"),
    ),
    (
        "huawei-vrp.toml",
        include_str!("../profiles/huawei-vrp.toml"),
    ),
    (
        "huawei-usg.toml",
        include_str!("../profiles/huawei-usg.toml"),
    ),
    (
        "h3c-comware.toml",
        include_str!("../profiles/h3c-comware.toml"),
    ),
    ("ruijie.toml", include_str!("../profiles/ruijie.toml")),
    ("sangfor.toml", include_str!("../profiles/sangfor.toml")),
    (
        "hillstone-stoneos.toml",
        include_str!("../profiles/hillstone-stoneos.toml"),
    ),
    (
        "topsec-ngfw.toml",
        include_str!("../profiles/topsec-ngfw.toml"),
    ),
    ("nsfocus.toml", include_str!("../profiles/nsfocus.toml")),
    (
        "huawei-ups.toml",
        include_str!("../profiles/huawei-ups.toml"),
    ),
    (
        "liebert-cooling.toml",
        include_str!("../profiles/liebert-cooling.toml"),
    ),
];

/// The set of profiles the agent knows: the built-in ones plus the user's.
#[derive(Debug, Clone, Default)]
pub struct ProfileCatalog {
    profiles: BTreeMap<String, Arc<Profile>>,
}

impl ProfileCatalog {
    /// The profiles shipped with Faultline.
    pub fn builtin() -> Result<Self, ConfigError> {
        let mut catalog = Self::default();
        for (file, text) in BUILTIN_PROFILES {
            let path = Path::new("snmp/profiles").join(file);
            let source = ConfigSource::from_text(&path, (*text).to_string());
            catalog.insert(&source, Profile::parse(&source)?, false)?;
        }
        Ok(catalog)
    }

    /// The built-in profiles plus every `*.toml` file in `dir` (a user profile with a built-in
    /// profile's name replaces it).
    pub fn with_user_dir(dir: &Path) -> Result<Self, ConfigError> {
        let mut catalog = Self::builtin()?;
        let unreadable = |e: std::io::Error| ConfigError {
            file: dir.to_path_buf(),
            position: None,
            field: String::new(),
            message: format!("cannot read profile directory: {e}"),
        };
        let mut files = std::fs::read_dir(dir)
            .map_err(unreadable)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        files.sort();
        let mut user_names = BTreeSet::new();
        for file in files {
            let source = ConfigSource::read(&file)?;
            let profile = Profile::parse(&source)?;
            if !user_names.insert(profile.name.clone()) {
                return Err(source.error(
                    "name",
                    format!(
                        "profile `{}` is defined by another file in this directory",
                        profile.name
                    ),
                ));
            }
            catalog.insert(&source, profile, true)?;
        }
        Ok(catalog)
    }

    fn insert(
        &mut self,
        source: &ConfigSource,
        profile: Profile,
        replace: bool,
    ) -> Result<(), ConfigError> {
        if self.profiles.contains_key(&profile.name) && !replace {
            return Err(source.error(
                "name",
                format!("profile `{}` is defined twice", profile.name),
            ));
        }
        if let Some(old) = self
            .profiles
            .insert(profile.name.clone(), Arc::new(profile))
        {
            tracing::info!(profile = %old.name, file = %source.path().display(), "user profile replaces built-in profile");
        }
        Ok(())
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Profile>> {
        self.profiles.get(name)
    }

    /// All profiles, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.profiles.values()
    }

    /// The profiles for a device: those `named` (unknown names are returned as the error) plus,
    /// when `detect` is on, those matching its sysObjectID. No duplicates; named ones first.
    pub fn select(
        &self,
        named: &[String],
        sys_object_id: Option<&Oid>,
        detect: bool,
    ) -> Result<Vec<Arc<Profile>>, String> {
        let mut out: Vec<Arc<Profile>> = Vec::new();
        for name in named {
            let profile = self.get(name).ok_or_else(|| name.clone())?;
            if !out.iter().any(|p| p.name == profile.name) {
                out.push(profile.clone());
            }
        }
        if let (true, Some(oid)) = (detect, sys_object_id) {
            for profile in self.iter().filter(|p| p.matches(oid)) {
                if !out.iter().any(|p| p.name == profile.name) {
                    out.push(profile.clone());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::GOOD;

    #[test]
    fn builtin_profiles_load() {
        let catalog = ProfileCatalog::builtin().unwrap();
        assert_eq!(catalog.iter().count(), BUILTIN_PROFILES.len());
    }

    #[test]
    fn select_named_and_detected() {
        let catalog = ProfileCatalog::builtin().unwrap();
        let netsnmp: Oid = "1.3.6.1.4.1.8072.3.2.10".parse().unwrap();
        let names = |v: Vec<Arc<Profile>>| v.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        let got = names(
            catalog
                .select(&["ups-mib".into()], Some(&netsnmp), true)
                .unwrap(),
        );
        assert_eq!(got[0], "ups-mib");
        assert!(
            got.contains(&"if-mib".to_string()) && got.contains(&"ucd-snmp".to_string()),
            "{got:?}"
        );
        let got = names(
            catalog
                .select(&["ups-mib".into()], Some(&netsnmp), false)
                .unwrap(),
        );
        assert_eq!(got, ["ups-mib"]);
        assert_eq!(
            catalog.select(&["nope".into()], None, true).unwrap_err(),
            "nope"
        );
    }

    #[test]
    fn user_dir_adds_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.toml"), GOOD).unwrap();
        std::fs::write(
            dir.path().join("ups.toml"),
            GOOD.replacen("name = \"t\"", "name = \"ups-mib\"", 1),
        )
        .unwrap();
        let catalog = ProfileCatalog::with_user_dir(dir.path()).unwrap();
        assert!(catalog.get("t").is_some());
        assert_eq!(catalog.get("ups-mib").unwrap().tables[0].name, "ifTable");
        std::fs::write(dir.path().join("zbad.toml"), "name = 3\n").unwrap();
        let err = ProfileCatalog::with_user_dir(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}:1:", dir.path().join("zbad.toml").display())),
            "{err}"
        );
    }
}
