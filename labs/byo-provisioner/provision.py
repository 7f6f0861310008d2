#!/usr/bin/env python3
"""A minimal network-boot provisioner: DHCP (fixed leases by MAC), TFTP (read-only) and HTTP.

Settings (environment):
  SERVER_IP  this container's address on the lab network (DHCP server id, next-server, option 72)
  LEASES     "MAC=IP=HOSTNAME ..." (space- or comma-separated): the only machines it answers
  NETMASK    default 255.255.255.0; ROUTER optional
  CMDLINE    extra kernel command line for the smoke OS

A PXE client gets the iPXE script boot.ipxe over TFTP; it boots /boot/vmlinuz and /boot/initrd
over HTTP. The booted OS asks DHCP again, gets its host name and this server as option 72 (WWW
server) and reports to http://SERVER_IP/lab/report/<mac>, which answers 204.
"""
import http.server
import os
import socket
import struct
import threading

SERVER_IP = os.environ["SERVER_IP"]
NETMASK = os.environ.get("NETMASK", "255.255.255.0")
ROUTER = os.environ.get("ROUTER", "")
LEASE_SECONDS = 3600
TFTP_ROOT = "/srv/tftp"
HTTP_ROOT = "/srv/http"


def log(msg):
    print(f"provisioner: {msg}", flush=True)


def parse_leases(text):
    leases = {}
    for entry in text.replace(",", " ").split():
        mac, ip, name = entry.split("=")
        leases[bytes.fromhex(mac.replace(":", "").replace("-", ""))] = (ip, name)
    return leases


LEASES = parse_leases(os.environ.get("LEASES", ""))

# --- DHCP ----------------------------------------------------------------------------------------

def dhcp_options(data):
    opts, i = {}, 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, length = data[i], data[i + 1]
        opts[code] = data[i + 2:i + 2 + length]
        i += 2 + length
    return opts


def dhcp_reply(request, kind, ip, name, pxe):
    op = 2
    xid, flags, ciaddr = request[4:8], request[10:12], request[12:16]
    chaddr = request[28:44]
    siaddr = socket.inet_aton(SERVER_IP)
    boot_file = b"boot.ipxe" if pxe else b""
    head = struct.pack("!BBBB", op, 1, 6, 0) + xid + b"\0\0" + flags + ciaddr
    head += socket.inet_aton(ip) + siaddr + b"\0" * 4 + chaddr
    head += b"\0" * 64 + boot_file.ljust(128, b"\0") + b"\x63\x82\x53\x63"
    opts = [(53, bytes([kind])), (54, siaddr), (51, struct.pack("!I", LEASE_SECONDS)),
            (1, socket.inet_aton(NETMASK)), (12, name.encode()), (72, siaddr)]
    if ROUTER:
        opts.append((3, socket.inet_aton(ROUTER)))
    if pxe:
        opts.append((67, boot_file))
    body = b"".join(bytes([c, len(v)]) + v for c, v in opts)
    return head + body + b"\xff"


def serve_dhcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("0.0.0.0", 67))
    log(f"dhcp on :67 for {len(LEASES)} machine(s)")
    while True:
        data, _ = s.recvfrom(2048)
        if len(data) < 240 or data[0] != 1 or data[236:240] != b"\x63\x82\x53\x63":
            continue
        mac = data[28:34]
        opts = dhcp_options(data)
        kind = opts.get(53, b"\0")[0]
        lease = LEASES.get(mac)
        if lease is None or kind not in (1, 3):
            continue
        ip, name = lease
        pxe = opts.get(60, b"").startswith(b"PXEClient")
        answer = 2 if kind == 1 else 5
        s.sendto(dhcp_reply(data, answer, ip, name, pxe), ("255.255.255.255", 68))
        log(f"dhcp {'offer' if answer == 2 else 'ack'} {ip} to {mac.hex(':')} ({name}){' with boot.ipxe' if pxe else ''}")

# --- TFTP ----------------------------------------------------------------------------------------

def tftp_send(path, client):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        s.sendto(struct.pack("!HH", 5, 1) + b"File not found\0", client)
        return
    block = 1
    while True:
        chunk = data[(block - 1) * 512:block * 512]
        for _ in range(5):
            s.sendto(struct.pack("!HH", 3, block & 0xFFFF) + chunk, client)
            try:
                ack, _ = s.recvfrom(16)
            except socket.timeout:
                continue
            if ack[:2] == b"\0\x04" and struct.unpack("!H", ack[2:4])[0] == block & 0xFFFF:
                break
        else:
            return
        if len(chunk) < 512:
            return
        block += 1


def serve_tftp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 69))
    log("tftp on :69")
    while True:
        data, client = s.recvfrom(1024)
        if data[:2] != b"\0\x01":
            continue
        name = data[2:].split(b"\0")[0].decode(errors="replace").lstrip("/")
        path = os.path.normpath(os.path.join(TFTP_ROOT, name))
        if not path.startswith(TFTP_ROOT + "/"):
            continue
        log(f"tftp read {name} by {client[0]}")
        threading.Thread(target=tftp_send, args=(path, client), daemon=True).start()

# --- HTTP ----------------------------------------------------------------------------------------

class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=HTTP_ROOT, **kwargs)

    def do_GET(self):
        if self.path.startswith("/lab/report/"):
            log(f"report from {self.client_address[0]}: {self.path.split('?')[0]}")
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, fmt, *args):
        log(f"http {self.client_address[0]} {fmt % args}")


def main():
    os.makedirs(TFTP_ROOT, exist_ok=True)
    cmdline = os.environ.get("CMDLINE", "console=ttyS0,115200n8 no_timer_check quiet")
    with open(os.path.join(TFTP_ROOT, "boot.ipxe"), "w") as f:
        f.write("#!ipxe\n"
                f"kernel http://{SERVER_IP}/boot/vmlinuz initrd=initrd {cmdline}\n"
                f"initrd --name initrd http://{SERVER_IP}/boot/initrd\n"
                "boot\n")
    threading.Thread(target=serve_dhcp, daemon=True).start()
    threading.Thread(target=serve_tftp, daemon=True).start()
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 80), Handler)
    log("http on :80")
    server.serve_forever()


if __name__ == "__main__":
    main()
