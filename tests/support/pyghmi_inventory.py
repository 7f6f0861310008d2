# Run by tests/ipmi_clients.rs: pyghmi against a lab BMC; prints inventory, health and sensors as JSON.
import sys, json
from pyghmi.ipmi import command
c = command.Command(bmc=sys.argv[1], port=int(sys.argv[2]), userid=sys.argv[3], password=sys.argv[4])
inv = {k: v for k, v in c.get_inventory()}
health = c.get_health()
sensors = [(s.name, s.value, s.units, s.health) for s in c.get_sensor_data()]
print(json.dumps({"inventory": inv, "health": health, "sensors": sensors}, default=str))
