//! MAAS: one `maas "$PROFILE" machines create key=value ...` command per node (the parameters of
//! MAAS's machines create and of its `ipmi` or `redfish` power type), as a shell script.

use super::{origin, Driver, Inventory, NodeEntry, Side};
use crate::lab::Firmware;

pub fn render(inv: &Inventory, driver: Driver, side: Side) -> String {
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&format!("# {}\n", origin(inv, driver, side)));
    out.push_str("# PROFILE is the profile name you gave `maas login`.\n");
    out.push_str("set -eu\n");
    out.push_str(": \"${PROFILE:?set PROFILE to your maas login profile}\"\n");
    for n in &inv.nodes {
        out.push_str("maas \"$PROFILE\" machines create");
        for (k, v) in params(inv, n, driver, side) {
            out.push_str(" \\\n    ");
            out.push_str(&quote(&format!("{k}={v}")));
        }
        out.push('\n');
    }
    out
}

fn params(inv: &Inventory, n: &NodeEntry, driver: Driver, side: Side) -> Vec<(String, String)> {
    let ep = n.bmc.endpoint(side);
    let mut p: Vec<(String, String)> = vec![
        ("hostname".into(), n.name.clone()),
        // MAAS names x86_64 `amd64`, with its generic subarchitecture.
        ("architecture".into(), "amd64/generic".into()),
        (
            "description".into(),
            format!(
                "lab {} node {}: {} {}, serial {}",
                inv.lab, n.name, n.identity.vendor, n.identity.model, n.identity.serial
            ),
        ),
    ];
    // MAAS takes several MACs as the same parameter given again; the boot NIC first.
    p.extend(
        n.macs
            .iter()
            .map(|m| ("mac_addresses".to_string(), m.to_string())),
    );
    let power = |k: &str, v: String| (format!("power_parameters_{k}"), v);
    match driver {
        Driver::Ipmi => {
            // A port other than 623 goes with the address, as freeipmi's `-h HOST:PORT`.
            let address = match ep.ipmi_port {
                Some(crate::lab::IPMI_PORT) | None => ep.address.to_string(),
                Some(_) => ep.authority(driver),
            };
            p.push(("power_type".into(), "ipmi".into()));
            p.push(power("power_driver", "LAN_2_0".into()));
            p.push(power("power_address", address));
            p.push(power("power_user", n.bmc.username.clone()));
            p.push(power("power_pass", n.bmc.password.clone()));
            // lab's BMC has cipher suite 17 (SHA-256), as current servers do, and 3.
            p.push(power("cipher_suite_id", "17".into()));
            let boot = match n.firmware {
                Firmware::Uefi => "efi",
                Firmware::Bios => "legacy",
            };
            p.push(power("power_boot_type", boot.into()));
        }
        Driver::Redfish => {
            p.push(("power_type".into(), "redfish".into()));
            p.push(power(
                "power_address",
                format!("https://{}", ep.authority(driver)),
            ));
            p.push(power("power_user", n.bmc.username.clone()));
            p.push(power("power_pass", n.bmc.password.clone()));
            // The member of /redfish/v1/Systems (lab-bmcd has one, `1`).
            p.push(power("node_id", "1".into()));
        }
    }
    p
}

/// A word for POSIX sh: as it is when it holds only characters no shell treats specially,
/// else in single quotes (a `'` inside written as `'\''`).
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_only_what_the_shell_would_change() {
        assert_eq!(quote("hostname=master"), "hostname=master");
        assert_eq!(
            quote("mac_addresses=00:aa:bb:cc:dd:ee"),
            "mac_addresses=00:aa:bb:cc:dd:ee"
        );
        assert_eq!(quote("description=a b"), "'description=a b'");
        assert_eq!(quote("power_pass=it's $x"), r"'power_pass=it'\''s $x'");
        assert_eq!(quote(""), "''");
    }
}
