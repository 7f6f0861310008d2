# Sourced by lab-node and lab-vm: helpers and the node's settings from /etc/lab/node/node.env.
# node.env is KEY=VALUE per line, read literally (never executed), so values need no quoting.

say() { printf 'lab: %s\n' "$*"; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

LAB_NODE_DIR=/etc/lab/node
LAB_STATE_DIR=/var/lib/lab

load_node_env() {
    local file=$LAB_NODE_DIR/node.env line key val
    [ -r "$file" ] || die "$file is missing: lab mounts the rendered node files at $LAB_NODE_DIR"
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in '' | '#'*) continue ;; esac
        key=${line%%=*}
        val=${line#*=}
        case $key in
            LAB | NODE_NAME | NODE_GROUP | NODE_PROFILE | MAC | NIC_MACS | IP | BMC_IP | SUBNET | GATEWAY | \
            CPUS | MEMORY_MB | DISK_BYTES | DISK_SERIALS | BOOT | POWER | POWER_RESTORE | ACCEL | FIRMWARE | BMC_USER | BMC_PASSWORD | \
            SYS_VENDOR | SYS_MODEL | SYS_SERIAL | SYS_UUID | SYS_ASSET_TAG | HIDE_HYPERVISOR)
                printf -v "$key" '%s' "$val" ;;
            *) die "$file: unknown setting '$key'" ;;
        esac
    done < "$file"
    local k
    for k in NODE_NAME MAC NIC_MACS CPUS MEMORY_MB DISK_BYTES DISK_SERIALS BOOT POWER POWER_RESTORE ACCEL FIRMWARE BMC_USER BMC_PASSWORD \
        SYS_VENDOR SYS_MODEL SYS_SERIAL SYS_UUID SYS_ASSET_TAG HIDE_HYPERVISOR; do
        [ -n "${!k:-}" ] || die "$file: $k is not set"
    done
}

# Disk N (0 is the first, the boot disk) in the node's volume: disk.qcow2, disk2.qcow2, ...
disk_file() {
    if [ "$1" = 0 ]; then echo "$LAB_STATE_DIR/disk.qcow2"; else echo "$LAB_STATE_DIR/disk$(($1 + 1)).qcow2"; fi
}
