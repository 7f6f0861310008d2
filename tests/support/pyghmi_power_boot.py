# Run by tests/ipmi_maas_ironic.rs: pyghmi's power and boot device calls against a lab BMC, as
# xCAT/confluent make them; prints what each call returned as one JSON line.
import sys, json
from pyghmi.ipmi import command
c = command.Command(bmc=sys.argv[1], port=int(sys.argv[2]), userid=sys.argv[3], password=sys.argv[4])
out = {}
out["off"] = c.set_power("off", wait=True)
out["after_off"] = c.get_power()
out["bootdev"] = c.set_bootdev("network", persist=True, uefiboot=True)
out["get_bootdev"] = c.get_bootdev()
out["on"] = c.set_power("on", wait=True)
out["after_on"] = c.get_power()
print(json.dumps(out, default=str))
