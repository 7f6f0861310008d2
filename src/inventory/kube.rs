//! The Kubernetes formats: Metal3 (`BareMetalHost`, metal3.io/v1alpha1) and Tinkerbell
//! (`Hardware`, tinkerbell.org/v1alpha1, and rufio's `Machine`, bmc.tinkerbell.org/v1alpha1),
//! each node with a `Secret` holding its BMC's `username` and `password` (the keys the
//! baremetal-operator and rufio read).

use serde_json::{json, Map, Value};

use super::{origin, yaml, Driver, Inventory, NodeEntry, Side, REDFISH_SYSTEM};
use crate::lab::{Firmware, Power};

/// Label and annotation prefix of what lab writes into Kubernetes objects.
const PREFIX: &str = "metal-lab.io";

pub fn metal3(inv: &Inventory, driver: Driver, side: Side, namespace: &str) -> String {
    let mut docs = Vec::new();
    for n in &inv.nodes {
        docs.push(secret(inv, n, namespace));
        docs.push(baremetalhost(inv, n, driver, side, namespace));
    }
    yaml::documents(&origin(inv, driver, side), &docs)
}

pub fn tinkerbell(inv: &Inventory, driver: Driver, side: Side, namespace: &str) -> String {
    let mut docs = Vec::new();
    for n in &inv.nodes {
        docs.push(secret(inv, n, namespace));
        docs.push(machine(inv, n, driver, side, namespace));
        docs.push(hardware(inv, n, namespace));
    }
    yaml::documents(&origin(inv, driver, side), &docs)
}

fn secret_name(n: &NodeEntry) -> String {
    format!("{}-bmc-secret", n.name)
}

fn metadata(inv: &Inventory, name: &str, namespace: &str, annotations: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("namespace".into(), json!(namespace));
    m.insert("labels".into(), json!({ format!("{PREFIX}/lab"): inv.lab }));
    if let Some(a) = annotations {
        m.insert("annotations".into(), a);
    }
    Value::Object(m)
}

/// The node's identity and NICs, which these kinds have no field for.
fn identity_annotations(n: &NodeEntry) -> Value {
    let macs: Vec<String> = n.macs.iter().map(|m| m.to_string()).collect();
    json!({
        format!("{PREFIX}/vendor"): n.identity.vendor,
        format!("{PREFIX}/model"): n.identity.model,
        format!("{PREFIX}/serial"): n.identity.serial,
        format!("{PREFIX}/uuid"): n.identity.uuid,
        format!("{PREFIX}/macs"): macs.join(","),
    })
}

fn secret(inv: &Inventory, n: &NodeEntry, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(inv, &secret_name(n), namespace, None),
        "type": "Opaque",
        "stringData": {
            "username": n.bmc.username,
            "password": n.bmc.password,
        },
    })
}

fn baremetalhost(inv: &Inventory, n: &NodeEntry, driver: Driver, side: Side, ns: &str) -> Value {
    let ep = n.bmc.endpoint(side);
    let mut bmc = Map::new();
    match driver {
        Driver::Ipmi => {
            bmc.insert(
                "address".into(),
                json!(format!("ipmi://{}", ep.authority(driver))),
            );
        }
        Driver::Redfish => {
            bmc.insert(
                "address".into(),
                json!(format!(
                    "redfish-virtualmedia://{}{REDFISH_SYSTEM}",
                    ep.authority(driver)
                )),
            );
        }
    }
    bmc.insert("credentialsName".into(), json!(secret_name(n)));
    if driver == Driver::Redfish {
        // The BMC's certificate is self-signed.
        bmc.insert("disableCertificateVerification".into(), json!(true));
    }
    let mut spec = Map::new();
    spec.insert("online".into(), json!(n.power == Power::On));
    spec.insert("architecture".into(), json!(n.arch));
    spec.insert("bootMACAddress".into(), json!(n.boot_mac.to_string()));
    spec.insert(
        "bootMode".into(),
        json!(match n.firmware {
            Firmware::Uefi => "UEFI",
            Firmware::Bios => "legacy",
        }),
    );
    spec.insert("bmc".into(), Value::Object(bmc));
    if let Some(d) = n.disks.first() {
        spec.insert(
            "rootDeviceHints".into(),
            json!({ "serialNumber": d.serial }),
        );
    }
    spec.insert(
        "description".into(),
        json!(format!("lab {} node {}", inv.lab, n.name)),
    );
    json!({
        "apiVersion": "metal3.io/v1alpha1",
        "kind": "BareMetalHost",
        "metadata": metadata(inv, &n.name, ns, Some(identity_annotations(n))),
        "spec": spec,
    })
}

fn machine(inv: &Inventory, n: &NodeEntry, driver: Driver, side: Side, ns: &str) -> Value {
    let ep = n.bmc.endpoint(side);
    let port = ep.port(driver).unwrap_or_default();
    // bmclib tries its providers in order; put the one for the chosen protocol first.
    let options = match driver {
        Driver::Ipmi => json!({
            "preferredOrder": ["ipmitool"],
            // lab's BMC has cipher suite 17 (SHA-256), as current servers do, and 3.
            "ipmitool": { "port": port, "cipherSuite": "17" },
        }),
        Driver::Redfish => json!({
            "preferredOrder": ["gofish"],
            "redfish": { "port": port },
        }),
    };
    json!({
        "apiVersion": "bmc.tinkerbell.org/v1alpha1",
        "kind": "Machine",
        "metadata": metadata(inv, &n.name, ns, None),
        "spec": {
            "connection": {
                "host": ep.address.to_string(),
                "port": port,
                "authSecretRef": { "name": secret_name(n), "namespace": ns },
                // The Redfish certificate is self-signed.
                "insecureTLS": true,
                "providerOptions": options,
            },
        },
    })
}

fn hardware(inv: &Inventory, n: &NodeEntry, ns: &str) -> Value {
    let uefi = n.firmware == Firmware::Uefi;
    // Every NIC has a reservation; only the boot NIC (the first) network-boots.
    let interfaces: Vec<Value> = n
        .macs
        .iter()
        .zip(&n.ips)
        .enumerate()
        .map(|(i, (mac, ip))| {
            let mut dhcp = Map::new();
            dhcp.insert("mac".into(), json!(mac.to_string()));
            dhcp.insert("hostname".into(), json!(n.name));
            dhcp.insert("arch".into(), json!(n.arch));
            dhcp.insert("uefi".into(), json!(uefi));
            dhcp.insert(
                "ip".into(),
                json!({
                    "address": ip.to_string(),
                    "netmask": inv.network.netmask.to_string(),
                    "gateway": inv.network.gateway.to_string(),
                    "family": 4,
                }),
            );
            if !inv.network.dns.is_empty() {
                let dns: Vec<String> = inv.network.dns.iter().map(|a| a.to_string()).collect();
                dhcp.insert("name_servers".into(), json!(dns));
            }
            let boots = i == 0;
            json!({
                "dhcp": dhcp,
                "netboot": { "allowPXE": boots, "allowWorkflow": boots },
            })
        })
        .collect();
    let disks: Vec<Value> = n
        .disks
        .iter()
        .map(|d| json!({ "device": d.device }))
        .collect();
    json!({
        "apiVersion": "tinkerbell.org/v1alpha1",
        "kind": "Hardware",
        "metadata": metadata(inv, &n.name, ns, Some(identity_annotations(n))),
        "spec": {
            "bmcRef": { "apiGroup": "bmc.tinkerbell.org", "kind": "Machine", "name": n.name },
            "disks": disks,
            "resources": {
                "cpu": n.cpus.to_string(),
                "memory": format!("{}Mi", n.memory_mb),
            },
            "metadata": {
                "instance": { "hostname": n.name, "allow_pxe": true },
            },
            "interfaces": interfaces,
        },
    })
}
