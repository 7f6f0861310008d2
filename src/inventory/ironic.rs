//! Ironic/bifrost: the `{"nodes": [...]}` file `baremetal create` (python-ironicclient's
//! create_resources) takes, each node with its driver, driver_info, properties and ports.

use serde_json::{json, Map, Value};

use super::{Driver, Inventory, NodeEntry, Side, REDFISH_SYSTEM};
use crate::lab::Firmware;

const GIB: u64 = 1 << 30;

pub fn render(inv: &Inventory, driver: Driver, side: Side) -> String {
    let nodes: Vec<Value> = inv
        .nodes
        .iter()
        .map(|n| node(inv, n, driver, side))
        .collect();
    let mut text =
        serde_json::to_string_pretty(&json!({ "nodes": nodes })).expect("plain data serializes");
    text.push('\n');
    text
}

fn node(inv: &Inventory, n: &NodeEntry, driver: Driver, side: Side) -> Value {
    let ep = n.bmc.endpoint(side);
    let (driver_name, driver_info) = match driver {
        Driver::Ipmi => (
            "ipmi",
            json!({
                "ipmi_address": ep.address.to_string(),
                "ipmi_port": ep.ipmi_port,
                "ipmi_username": n.bmc.username,
                "ipmi_password": n.bmc.password,
            }),
        ),
        Driver::Redfish => (
            "redfish",
            json!({
                "redfish_address": format!("https://{}", ep.authority(Driver::Redfish)),
                "redfish_system_id": REDFISH_SYSTEM,
                "redfish_username": n.bmc.username,
                "redfish_password": n.bmc.password,
                // The BMC's certificate is self-signed (its fingerprint: `lab status --json`).
                "redfish_verify_ca": false,
            }),
        ),
    };
    let mut properties = Map::new();
    properties.insert("cpus".into(), json!(n.cpus));
    properties.insert("memory_mb".into(), json!(n.memory_mb));
    // Ironic's local_gb: whole GiB of the root disk.
    let root = n.disks.first();
    properties.insert(
        "local_gb".into(),
        json!(root.map(|d| d.bytes / GIB).unwrap_or(0)),
    );
    properties.insert("cpu_arch".into(), json!(n.arch));
    let boot_mode = match n.firmware {
        Firmware::Bios => "bios",
        Firmware::Uefi => "uefi",
    };
    properties.insert(
        "capabilities".into(),
        json!(format!("boot_mode:{boot_mode}")),
    );
    if let Some(d) = root {
        properties.insert("root_device".into(), json!({ "serial": d.serial }));
    }
    let ports: Vec<Value> = n
        .macs
        .iter()
        .map(|m| json!({ "address": m.to_string(), "pxe_enabled": *m == n.boot_mac }))
        .collect();
    json!({
        "name": n.name,
        "description": format!("lab {} node {}", inv.lab, n.name),
        "driver": driver_name,
        "driver_info": driver_info,
        "resource_class": "baremetal",
        "properties": properties,
        "extra": {
            "lab": inv.lab,
            "vendor": n.identity.vendor,
            "model": n.identity.model,
            "serial": n.identity.serial,
            "system_uuid": n.identity.uuid,
            "asset_tag": n.identity.asset_tag,
        },
        "ports": ports,
    })
}
