//! The AWS regions the SDK knows, to catch a mistyped region in the config.
//!
//! `partitions.json` is the partition data the Rust SDK compiles into every service crate
//! (`aws-sdk-eks` 1.160.0, `src/endpoint_lib.rs`, the JSON handed to
//! `PartitionResolver::new_from_json`), copied because the SDK keeps it crate-private. A test
//! checks the copy against the `aws-sdk-eks` sources cargo built, so an SDK upgrade that
//! adds regions says so. Regions appear faster than builds: an unknown region that looks
//! like one is a warning, never an error.

use std::sync::OnceLock;

/// The SDK's partitions file, as copied (see the module doc).
const PARTITIONS_JSON: &str = include_str!("partitions.json");

/// Every region of every partition, sorted; the `aws-global`-style pseudo-regions left out.
pub fn known() -> &'static [String] {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN.get_or_init(|| regions_in(PARTITIONS_JSON))
}

/// The regions listed in a partitions file (empty if it cannot be read: then every region
/// is merely unknown, which only warns).
fn regions_in(json: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut regions: Vec<String> = doc["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["regions"].as_object())
        .flat_map(|r| r.keys().cloned())
        .filter(|r| !r.ends_with("-global"))
        .collect();
    regions.sort();
    regions
}

/// Whether the SDK lists `region`.
pub fn is_known(region: &str) -> bool {
    known().binary_search_by(|r| r.as_str().cmp(region)).is_ok()
}

/// The known region `region` was most likely meant to be: the nearest by edit distance,
/// if it is within two edits.
pub fn closest(region: &str) -> Option<&'static str> {
    known()
        .iter()
        .map(|r| (edit_distance(region, r), r.as_str()))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, r)| r)
}

/// Levenshtein distance over bytes (region names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_regions_of_every_partition() {
        for region in [
            "us-east-1",
            "eu-west-1",
            "ap-southeast-7",
            "us-gov-west-1",
            "cn-north-1",
            "eusc-de-east-1",
        ] {
            assert!(is_known(region), "{region}");
        }
        for region in ["us-est-1", "aws-global", "us-east-9", ""] {
            assert!(!is_known(region), "{region}");
        }
        assert!(known().len() > 40, "{:?}", known());
    }

    #[test]
    fn suggests_the_nearest_region_for_a_typo_only() {
        assert_eq!(closest("us-est-1"), Some("us-east-1"));
        assert_eq!(closest("eu-wset-1"), Some("eu-west-1"));
        assert_eq!(closest("ap-southeast-22"), Some("ap-southeast-2"));
        assert_eq!(closest("mars-north-1"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    /// The copy matches the SDK cargo built: after an SDK upgrade, copy the JSON of
    /// `aws-sdk-eks/src/endpoint_lib.rs` into `partitions.json` again.
    #[test]
    fn the_copy_matches_the_sdk_crate() {
        let lock = include_str!("../../../Cargo.lock");
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"aws-sdk-eks\""))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .expect("aws-sdk-eks in Cargo.lock");
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
            .expect("CARGO_HOME or HOME");
        let registry = cargo_home.join("registry").join("src");
        let source = std::fs::read_dir(&registry)
            .expect("cargo's registry sources")
            .filter_map(Result::ok)
            .map(|d| {
                d.path()
                    .join(format!("aws-sdk-eks-{version}"))
                    .join("src")
                    .join("endpoint_lib.rs")
            })
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("aws-sdk-eks-{version} sources under {registry:?}"));
        let text = std::fs::read_to_string(&source).expect("endpoint_lib.rs");
        let marker = "new_from_json(b\"";
        let start = text.find(marker).expect("the partitions JSON") + marker.len();
        let end = start + text[start..].find("\").expect").expect("its end");
        let json = text[start..end].replace("\\\"", "\"").replace("\\\\", "\\");
        assert_eq!(
            regions_in(&json),
            known(),
            "{} lists other regions than src/sources/aws/partitions.json",
            source.display()
        );
    }
}
