//! What one listing of the organization means: which accounts are read, under which
//! names, and which are left to `[[accounts]]`.

use std::collections::{BTreeMap, HashSet};

use crate::config::{Account, Organization};

/// An ACTIVE account of the organization, as `ListAccounts` gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub name: String,
    /// `aws`, `aws-us-gov`, `aws-cn`: from the account's ARN.
    pub partition: String,
}

/// An account to read: its id and the name it is shown under (`eks:{name}/{region}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub partition: String,
}

/// The accounts to read after one listing, by id, and how many were found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub members: BTreeMap<String, Member>,
    /// ACTIVE accounts listed.
    pub discovered: usize,
}

/// Chooses the accounts to read: those `include` / `exclude` keep, less those an
/// `[[accounts]]` entry already reads. An entry is known to be the same account when its
/// `role_arn` names the account's id, or (an entry without a role carries no id) when
/// its `name` is the account's name: the entry wins either way. A name an entry or an
/// earlier account (by id) already shows is followed by the account id, so every source
/// name stays unique: `sandbox-111122223333`.
pub fn plan(org: &Organization, explicit: &[Account], listed: &[Listed]) -> Plan {
    let explicit_ids: HashSet<&str> = explicit
        .iter()
        .filter_map(|a| a.role_arn.as_deref().and_then(account_id_of_arn))
        .collect();
    let mut taken: HashSet<String> = explicit.iter().map(|a| a.name.clone()).collect();
    let mut listed: Vec<&Listed> = listed.iter().collect();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    let mut members = BTreeMap::new();
    for account in &listed {
        if !org.includes(&account.id, &account.name) {
            continue;
        }
        let name = display_name(&account.name, &account.id);
        if explicit_ids.contains(account.id.as_str())
            || explicit
                .iter()
                .any(|a| a.name == name && a.role_arn.is_none())
        {
            continue;
        }
        let name = if taken.contains(&name) {
            format!("{name}-{}", account.id)
        } else {
            name
        };
        taken.insert(name.clone());
        members.insert(
            account.id.clone(),
            Member {
                id: account.id.clone(),
                name,
                partition: account.partition.clone(),
            },
        );
    }
    Plan {
        members,
        discovered: listed.len(),
    }
}

/// The account's name as fleetdeck can show it: a `ClusterId` part holds no '/'.
fn display_name(name: &str, id: &str) -> String {
    let name = name.trim().replace('/', "-");
    if name.is_empty() {
        id.to_string()
    } else {
        name
    }
}

/// `123456789012` from `arn:aws:iam::123456789012:role/x`.
pub fn account_id_of_arn(arn: &str) -> Option<&str> {
    let id = arn.split(':').nth(4)?;
    (id.len() == 12 && id.chars().all(|c| c.is_ascii_digit())).then_some(id)
}

/// `aws-us-gov` from `arn:aws-us-gov:organizations::...`; `aws` when the ARN is absent.
pub fn partition_of_arn(arn: Option<&str>) -> String {
    arn.and_then(|a| a.split(':').nth(1))
        .filter(|p| p.starts_with("aws"))
        .unwrap_or("aws")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OrganizationRegions;

    fn org(include: &[&str], exclude: &[&str]) -> Organization {
        let globs = |g: &[&str]| g.iter().map(|s| s.to_string()).collect();
        Organization::new(
            "fleetdeck",
            globs(include),
            globs(exclude),
            OrganizationRegions::Listed(vec!["us-east-1".into()]),
        )
        .expect("valid globs")
    }

    fn listed(id: &str, name: &str) -> Listed {
        Listed {
            id: id.into(),
            name: name.into(),
            partition: "aws".into(),
        }
    }

    fn explicit(name: &str, role_arn: Option<&str>) -> Account {
        Account {
            name: name.into(),
            profile: None,
            regions: vec!["us-east-1".into()],
            role_arn: role_arn.map(str::to_string),
            endpoint_url: None,
            endpoints: Default::default(),
        }
    }

    fn names(plan: &Plan) -> Vec<(&str, &str)> {
        plan.members
            .values()
            .map(|m| (m.id.as_str(), m.name.as_str()))
            .collect()
    }

    #[test]
    fn include_and_exclude_globs_match_the_name_or_the_id() {
        let all = [
            listed("111111111111", "prod-payments"),
            listed("222222222222", "prod-sandbox"),
            listed("333333333333", "security"),
            listed("444444444444", "dev"),
        ];
        let plan = plan(&org(&["prod-*", "3333*"], &["*-sandbox"]), &[], &all);
        assert_eq!(
            names(&plan),
            [
                ("111111111111", "prod-payments"),
                ("333333333333", "security")
            ]
        );
        assert_eq!(plan.discovered, 4);
    }

    #[test]
    fn an_explicit_entry_wins_by_the_id_in_its_role_or_by_its_name() {
        let all = [
            listed("111111111111", "prod"),
            listed("222222222222", "staging"),
            listed("333333333333", "dev"),
        ];
        let explicit = [
            // Same id as "prod", shown under another name: the entry reads it.
            explicit("production", Some("arn:aws:iam::111111111111:role/ro")),
            // No role, so no id: the same name is taken as the same account.
            explicit("staging", None),
        ];
        let plan = plan(&org(&["*"], &[]), &explicit, &all);
        assert_eq!(names(&plan), [("333333333333", "dev")]);
    }

    #[test]
    fn names_stay_unique_and_readable() {
        let all = [
            listed("222222222222", "sandbox"),
            listed("111111111111", "sandbox"),
            listed("333333333333", "team/a"),
            listed("444444444444", "  "),
            // Another account than the entry's (its role names another id).
            listed("555555555555", "prod"),
        ];
        let explicit = [explicit("prod", Some("arn:aws:iam::999999999999:role/ro"))];
        let plan = plan(&org(&["*"], &[]), &explicit, &all);
        assert_eq!(
            names(&plan),
            [
                ("111111111111", "sandbox"),
                ("222222222222", "sandbox-222222222222"),
                ("333333333333", "team-a"),
                ("444444444444", "444444444444"),
                ("555555555555", "prod-555555555555"),
            ]
        );
    }

    #[test]
    fn arns_give_ids_and_partitions() {
        assert_eq!(
            account_id_of_arn("arn:aws:iam::123456789012:role/x"),
            Some("123456789012")
        );
        assert_eq!(account_id_of_arn("arn:aws:iam::12:role/x"), None);
        assert_eq!(
            partition_of_arn(Some("arn:aws-us-gov:organizations::1:account/o-1/2")),
            "aws-us-gov"
        );
        assert_eq!(partition_of_arn(None), "aws");
    }
}
