//! `$metadata` (the CSDL document naming every schema the service uses, by its published DMTF
//! URI) and the OData service document (`/redfish/v1/odata`).

use serde_json::{json, Value};

/// Each schema file the service's resources use, with the namespaces it includes: the
/// unversioned one and the version the resources' `@odata.type` names.
const SCHEMAS: &[(&str, &[&str])] = &[
    ("ServiceRoot", &["ServiceRoot", "ServiceRoot.v1_20_0"]),
    ("ComputerSystemCollection", &["ComputerSystemCollection"]),
    (
        "ComputerSystem",
        &["ComputerSystem", "ComputerSystem.v1_27_0"],
    ),
    ("ActionInfo", &["ActionInfo", "ActionInfo.v1_5_0"]),
    (
        "EthernetInterfaceCollection",
        &["EthernetInterfaceCollection"],
    ),
    (
        "EthernetInterface",
        &["EthernetInterface", "EthernetInterface.v1_12_4"],
    ),
    ("ProcessorCollection", &["ProcessorCollection"]),
    ("Processor", &["Processor", "Processor.v1_22_0"]),
    ("StorageCollection", &["StorageCollection"]),
    ("Storage", &["Storage", "Storage.v1_21_0"]),
    ("DriveCollection", &["DriveCollection"]),
    ("Drive", &["Drive", "Drive.v1_22_0"]),
    ("SimpleStorageCollection", &["SimpleStorageCollection"]),
    ("SimpleStorage", &["SimpleStorage", "SimpleStorage.v1_3_2"]),
    ("LogServiceCollection", &["LogServiceCollection"]),
    ("LogService", &["LogService", "LogService.v1_9_0"]),
    ("LogEntryCollection", &["LogEntryCollection"]),
    ("LogEntry", &["LogEntry", "LogEntry.v1_21_0"]),
    ("ManagerCollection", &["ManagerCollection"]),
    ("Manager", &["Manager", "Manager.v1_24_0"]),
    ("VirtualMediaCollection", &["VirtualMediaCollection"]),
    ("VirtualMedia", &["VirtualMedia", "VirtualMedia.v1_6_5"]),
    ("ChassisCollection", &["ChassisCollection"]),
    ("Chassis", &["Chassis", "Chassis.v1_28_0"]),
    ("SensorCollection", &["SensorCollection"]),
    ("Sensor", &["Sensor", "Sensor.v1_12_0"]),
    (
        "SessionService",
        &["SessionService", "SessionService.v1_2_0"],
    ),
    ("SessionCollection", &["SessionCollection"]),
    ("Session", &["Session", "Session.v1_8_0"]),
    (
        "AccountService",
        &["AccountService", "AccountService.v1_18_1"],
    ),
    ("ManagerAccountCollection", &["ManagerAccountCollection"]),
    (
        "ManagerAccount",
        &["ManagerAccount", "ManagerAccount.v1_14_1"],
    ),
    ("Message", &["Message", "Message.v1_3_0"]),
    ("Resource", &["Resource", "Resource.v1_23_0"]),
];

/// Where DMTF publishes its schemas.
const SCHEMA_BASE: &str = "http://redfish.dmtf.org/schemas/v1";

pub fn metadata() -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n",
    );
    for (file, namespaces) in SCHEMAS {
        x.push_str(&format!(
            "  <edmx:Reference Uri=\"{SCHEMA_BASE}/{file}_v1.xml\">\n"
        ));
        for ns in *namespaces {
            x.push_str(&format!("    <edmx:Include Namespace=\"{ns}\"/>\n"));
        }
        x.push_str("  </edmx:Reference>\n");
    }
    x.push_str(&format!(
        "  <edmx:Reference Uri=\"{SCHEMA_BASE}/RedfishExtensions_v1.xml\">\n\
         \x20   <edmx:Include Namespace=\"RedfishExtensions.v1_0_0\" Alias=\"Redfish\"/>\n\
         \x20 </edmx:Reference>\n\
         \x20 <edmx:DataServices>\n\
         \x20   <Schema xmlns=\"http://docs.oasis-open.org/odata/ns/edm\" Namespace=\"Service\">\n\
         \x20     <EntityContainer Name=\"Service\" Extends=\"ServiceRoot.v1_20_0.ServiceContainer\"/>\n\
         \x20   </Schema>\n\
         \x20 </edmx:DataServices>\n\
         </edmx:Edmx>\n"
    ));
    x
}

/// The OData service document: the service root's top-level resources.
pub fn service_document() -> Value {
    let entry = |name: &str, url: &str| json!({"name": name, "kind": "Singleton", "url": url});
    json!({
        "@odata.context": "/redfish/v1/$metadata",
        "value": [
            entry("Service", "/redfish/v1/"),
            entry("Systems", "/redfish/v1/Systems"),
            entry("Chassis", "/redfish/v1/Chassis"),
            entry("Managers", "/redfish/v1/Managers"),
            entry("SessionService", "/redfish/v1/SessionService"),
            entry("AccountService", "/redfish/v1/AccountService"),
            entry("Sessions", "/redfish/v1/SessionService/Sessions"),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every namespace of an `@odata.type` the service sends is included in `$metadata`, and
    /// every schema named exists in DMTF's bundle at that version (checked when the bundle is
    /// on this machine: LAB_REDFISH_SCHEMAS or ../shared/redfish/csdl).
    #[test]
    fn metadata_names_published_schemas() {
        let m = metadata();
        assert!(m.contains("Uri=\"http://redfish.dmtf.org/schemas/v1/ComputerSystem_v1.xml\""));
        assert!(m.contains("<edmx:Include Namespace=\"ComputerSystem.v1_27_0\"/>"));
        let dir = std::env::var("LAB_REDFISH_SCHEMAS").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/redfish/csdl").into()
        });
        let Ok(_) = std::fs::metadata(&dir) else {
            return;
        };
        for (file, namespaces) in SCHEMAS {
            let text = std::fs::read_to_string(format!("{dir}/{file}_v1.xml"))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            for ns in *namespaces {
                assert!(
                    text.contains(&format!("Namespace=\"{ns}\"")),
                    "{file} lacks {ns}"
                );
            }
        }
    }
}
