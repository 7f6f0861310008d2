/*
 * lab-bmc: lab's module for OpenIPMI's ipmi_sim, loaded by `loadlib` in the node's lan.conf.
 * It makes ipmi_sim answer as a real BMC does where it falls short:
 *
 * 1. The LAN channel's sockets are ours. ipmi_sim answers sessionless requests (Get Channel
 *    Cipher Suites, Get Channel Authentication Capabilities, Get System GUID) only in IPMI 1.5
 *    framing and drops them in RMCP+ framing without a word, so `ipmitool -I lanplus` without
 *    `-C` retries its cipher-suite discovery for about 10 s before it gives up and guesses. We
 *    hand such requests to ipmi_sim in 1.5 framing and put its answer back into RMCP+ framing.
 * 2. We listen on every port the BMC is reached on (623 on the lab network and the host port it
 *    is published on) and tell ipmi_sim which one a request came in on, so that SOL activation
 *    names the port the client used (ipmitool refuses an SOL session on another port).
 *    Sessions without a password are refused: IPMI 1.5 authentication type "none" is off in
 *    lan.conf, and an RMCP+ Open Session Request proposing RAKP-none ("cipher suite 0", which
 *    ipmi_sim would grant at any privilege) gets "no cipher suite match".
 * 3. System boot options (`ipmitool chassis bootdev pxe|disk|cdrom [options=persistent,efiboot]`):
 *    ipmi_sim drops the persistent flag and keeps no state. We keep the boot flags in a file that
 *    the node's power-on script (lab-vm) reads, and clears after one boot unless persistent:
 *    "<device> once|persistent [efi]", or "none". The device "http" (UEFI HTTP boot, which IPMI
 *    has no selector for; Redfish's UefiHttp writes it) reads over IPMI as PXE in UEFI mode.
 *
 * 4. RMCP+ Open Session Requests that ask for "the highest privilege level available" (0), as
 *    freeipmi's tools do by default: ipmi_sim answers with maximum privilege 0, which freeipmi
 *    rejects ("privilege level cannot be obtained for this user"). We put the channel's privilege
 *    limit in the answer (the Open Session Response carries no authentication code; the privilege
 *    the session gets is still the one the client asks for in RAKP message 1, checked there).
 * 5. Chassis Control 4 (pulse diagnostic interrupt, `ipmitool power diag`), which ipmi_sim
 *    refuses: we send an NMI to the VM over the VM channel (QEMU's ipmi-bmc-extern injects it);
 *    every other Chassis Control goes to ipmi_sim's own handler.
 * 6. DCMI Get Power Reading (`ipmitool dcmi power reading`) and Get DCMI Capabilities, which
 *    ipmi_sim lacks: a plausible reading while the VM runs, 0 W while it is off.
 *
 * 7. The power restore policy (`ipmitool chassis policy`, shown by `chassis status`), which
 *    ipmi_sim lacks: kept in a file of the node's volume (initialised from the lab file's
 *    `power_restore` when missing), and the power last asked for by Chassis Control kept beside
 *    it, so that lab-node powers the VM on or not when its container restarts (engine restart).
 *
 * Options (second argument of loadlib): "ports=623,6230 bootdev=/run/lab/bootdev
 * policy=/var/lib/lab/power-policy state=/var/lib/lab/power-state restore=previous".
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <OpenIPMI/ipmi_err.h>
#include <OpenIPMI/ipmi_mc.h>
#include <OpenIPMI/ipmi_msgbits.h>
#include <OpenIPMI/lanserv.h>
#include <OpenIPMI/mcserv.h>
#include <OpenIPMI/serv.h>

#define MAX_PORTS 4
#define RMCP_HDR 4
#define AUTHTYPE_NONE 0
#define AUTHTYPE_RMCPP 6
#define PARAM_NOT_SUPPORTED_CC 0x80

struct lab_port {
    int fd;
    uint16_t port;
};

/* The address lanserv keeps for a session and hands back to send_out. */
struct lab_addr {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int fd;
    int rmcpp_sessionless; /* answer in RMCP+ framing what ipmi_sim answers in 1.5 framing */
};

static struct lab_port ports[MAX_PORTS];
static unsigned int num_ports;
static lanserv_data_t *lan;
static char *bootdev_file;
static char *policy_file;
static char *state_file;
static unsigned char restore_policy = 1; /* 0 always off, 1 previous, 2 always on */
static sys_data_t *sysd;

/* ipmi_sim's own tables and helpers (global symbols of the ipmi_sim binary, see bmc.h). */
extern cmd_handler_f chassis_netfn_handlers[256];
extern cmd_handler_f storage_netfn_handlers[256];
extern int ipmi_mc_is_power_on(lmc_data_t *mc);
extern int ipmi_mc_add_to_sel(lmc_data_t *mc, unsigned char record_type, unsigned char event[13],
                              unsigned int *recid);
static cmd_handler_f sim_chassis_control;
static cmd_handler_f sim_read_fru;
static cmd_handler_f sim_chassis_status;
static void save_word(const char *file, const char *word);
static const char *const policy_names[3] = { "off", "previous", "on" };

static void say(const char *what, const char *detail)
{
    printf("lab: bmc: %s%s\n", what, detail);
    fflush(stdout);
}

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "lab: error: bmc: %s%s\n", what, detail);
    exit(1);
}

/* ---- 1 and 2: the LAN sockets ---- */

static void send_out(lanserv_data_t *l, struct iovec *data, int vecs, void *addr, int addr_len)
{
    struct lab_addr *a = addr;
    unsigned char buf[1024], out[1024];
    size_t len = 0, plen;
    int i;

    (void) l;
    if (addr_len != (int) sizeof(*a))
        return;
    for (i = 0; i < vecs; i++) {
        if (len + data[i].iov_len > sizeof(buf))
            return;
        memcpy(buf + len, data[i].iov_base, data[i].iov_len);
        len += data[i].iov_len;
    }
    /* 4: an Open Session Response (payload 0x11) granting maximum privilege 0 ("highest"). */
    if (len >= 16 + 36 && buf[4] == AUTHTYPE_RMCPP && (buf[5] & 0x3f) == 0x11 && buf[17] == 0
        && (buf[18] & 0xf) == 0)
        buf[18] = lan->channel.privilege_limit ? lan->channel.privilege_limit : IPMI_PRIVILEGE_ADMIN;
    /* 1.5 sessionless answer: RMCP header, authtype 0, seq (4), sid (4), length (1), message. */
    if (a->rmcpp_sessionless && len >= 14 && buf[4] == AUTHTYPE_NONE
        && (plen = buf[13]) + 14 <= len) {
        memcpy(out, buf, RMCP_HDR);
        out[4] = AUTHTYPE_RMCPP;
        out[5] = 0;                       /* payload type IPMI, not encrypted or authenticated */
        memset(out + 6, 0, 8);            /* session id 0, sequence 0 */
        out[14] = plen & 0xff;
        out[15] = 0;
        memcpy(out + 16, buf + 14, plen);
        sendto(a->fd, out, 16 + plen, 0, (struct sockaddr *) &a->addr, a->addr_len);
        return;
    }
    sendto(a->fd, buf, len, 0, (struct sockaddr *) &a->addr, a->addr_len);
}

/* An RMCP+ IPMI request outside a session: authtype 6, payload type 0 (IPMI, clear), sid 0. */
static int rmcpp_sessionless(const unsigned char *p, size_t len, size_t *plen)
{
    uint32_t sid;

    if (len < 16 || p[4] != AUTHTYPE_RMCPP || p[5] != 0)
        return 0;
    sid = p[6] | (p[7] << 8) | (p[8] << 16) | ((uint32_t) p[9] << 24);
    *plen = p[14] | (p[15] << 8);
    return sid == 0 && *plen <= 255 && 16 + *plen <= len;
}

/* An RMCP+ Open Session Request (payload type 0x10) that proposes authentication algorithm
 * RAKP-none: answered here with status 0x11 (no cipher suite match), never given to ipmi_sim. */
static int refuse_rakp_none(struct lab_addr *a, const unsigned char *p, size_t len)
{
    const unsigned char *d = p + 16;
    unsigned char out[24];

    if (len < 16 + 32 || p[4] != AUTHTYPE_RMCPP || (p[5] & 0x3f) != 0x10)
        return 0;
    if (d[8] != 0 || d[11] != 8 || (d[12] & 0x3f) != 0)
        return 0;
    memcpy(out, p, RMCP_HDR);
    out[4] = AUTHTYPE_RMCPP;
    out[5] = 0x11;                        /* Open Session Response */
    memset(out + 6, 0, 8);                /* session id 0, sequence 0 */
    out[14] = 8;
    out[15] = 0;
    out[16] = d[0];                       /* message tag */
    out[17] = 0x11;                       /* no cipher suite match with proposed algorithms */
    out[18] = 0;
    out[19] = 0;
    memcpy(out + 20, d + 4, 4);           /* the console's session id */
    sendto(a->fd, out, sizeof(out), 0, (struct sockaddr *) &a->addr, a->addr_len);
    return 1;
}

static void lan_ready(int fd, void *cb_data)
{
    struct lab_port *port = cb_data;
    unsigned char buf[1024], v15[300];
    struct lab_addr a;
    ssize_t len;
    size_t plen;

    memset(&a, 0, sizeof(a));
    a.addr_len = sizeof(a.addr);
    a.fd = fd;
    len = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *) &a.addr, &a.addr_len);
    if (len < 5 || buf[0] != 6) /* RMCP version 1.0 */
        return;
    lan->port = port->port;
    if (buf[3] == 6) {
        handle_asf(lan, buf, len, &a, sizeof(a));
    } else if (buf[3] == 7 && refuse_rakp_none(&a, buf, len)) {
        say("refused a session without authentication (RAKP-none, cipher suite 0)", "");
    } else if (buf[3] == 7 && rmcpp_sessionless(buf, len, &plen)) {
        memcpy(v15, buf, RMCP_HDR);
        v15[4] = AUTHTYPE_NONE;
        memset(v15 + 5, 0, 8);            /* sequence 0, session id 0 */
        v15[13] = plen;
        memcpy(v15 + 14, buf + 16, plen);
        a.rmcpp_sessionless = 1;
        ipmi_handle_lan_msg(lan, v15, 14 + plen, &a, sizeof(a));
    } else if (buf[3] == 7) {
        ipmi_handle_lan_msg(lan, buf, len, &a, sizeof(a));
    }
}

static void open_port(sys_data_t *sys, struct lab_port *p)
{
    struct sockaddr_in sin;
    ipmi_io_t *io;
    char detail[64];
    int one = 1;

    p->fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (p->fd < 0)
        fail("cannot open a UDP socket: ", strerror(errno));
    setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(p->port);
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(p->fd, (struct sockaddr *) &sin, sizeof(sin)) < 0) {
        snprintf(detail, sizeof(detail), "%u/udp: %s", p->port, strerror(errno));
        fail("cannot listen on ", detail);
    }
    if (sys->add_io_hnd(sys, p->fd, lan_ready, p, &io))
        fail("cannot watch the LAN socket", "");
}

/* ---- 3: system boot options ---- */

struct boot_flags {
    unsigned char valid, persistent, efi, device, http;
    unsigned char in_progress, clear_mask, ack;
};

static const char *const device_names[16] = {
    [0] = "none", [1] = "pxe", [2] = "disk", [3] = "safe", [4] = "diag",
    [5] = "cdrom", [6] = "bios", [0xf] = "floppy",
};

static struct boot_flags boot;

/* The file holds "<device> once|persistent [efi]" while an override is valid, "none" otherwise. */
static void load_boot(void)
{
    char dev[16] = "", mode[16] = "", flags[16] = "";
    FILE *f = fopen(bootdev_file, "r");
    unsigned int i;

    boot.valid = 0;
    boot.http = 0;
    if (!f)
        return;
    if (fscanf(f, "%15s %15s %15s", dev, mode, flags) >= 1) {
        boot.http = strcmp(dev, "http") == 0;
        for (i = 1; i < 16; i++) {
            if ((device_names[i] && strcmp(dev, device_names[i]) == 0) || (boot.http && i == 1)) {
                boot.valid = 1;
                boot.device = i;
                boot.persistent = strcmp(mode, "persistent") == 0;
                boot.efi = boot.http || strcmp(flags, "efi") == 0;
            }
        }
    }
    fclose(f);
}

static int save_boot(void)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", bootdev_file);
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    if (boot.valid && boot.device)
        fprintf(f, "%s %s%s\n", boot.http && boot.device == 1 ? "http" : device_names[boot.device],
                boot.persistent ? "persistent" : "once", boot.efi ? " efi" : "");
    else
        fprintf(f, "none\n");
    if (fclose(f) != 0 || rename(tmp, bootdev_file) != 0)
        return -1;
    return 0;
}

static void set_boot_options(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                             unsigned int *rdata_len, void *cb_data)
{
    unsigned char *d = msg->data;
    unsigned int need[6] = { 2, 2, 3, 2, 3, 6 };
    unsigned char param;
    unsigned char dev;

    (void) mc;
    (void) cb_data;
    *rdata_len = 1;
    rdata[0] = 0;
    if (msg->len < 1) {
        rdata[0] = IPMI_REQUEST_DATA_LENGTH_INVALID_CC;
        return;
    }
    param = d[0] & 0x7f;
    if (param > 5) {
        rdata[0] = PARAM_NOT_SUPPORTED_CC;
        return;
    }
    if (msg->len < need[param]) {
        rdata[0] = IPMI_REQUEST_DATA_LENGTH_INVALID_CC;
        return;
    }
    load_boot();
    switch (param) {
    case 0: /* set in progress */
        boot.in_progress = d[1] & 3;
        return;
    case 1: /* service partition selector */
    case 2: /* service partition scan */
        return;
    case 3: /* which events clear the valid bit */
        boot.clear_mask = d[1] & 0x1f;
        return;
    case 4: /* boot info acknowledge: d[1] is the write mask */
        boot.ack = (boot.ack & ~d[1]) | (d[2] & d[1]);
        return;
    case 5: /* boot flags */
        dev = (d[2] >> 2) & 0xf;
        if (!device_names[dev]) {
            rdata[0] = IPMI_INVALID_DATA_FIELD_CC;
            return;
        }
        boot.valid = (d[1] >> 7) & 1;
        boot.persistent = (d[1] >> 6) & 1;
        boot.efi = (d[1] >> 5) & 1;
        boot.device = dev;
        boot.http = 0;
        if (save_boot() != 0) {
            rdata[0] = IPMI_UNKNOWN_ERR_CC;
            return;
        }
        if (boot.valid && boot.device)
            say(boot.persistent ? (boot.efi ? "boot device (persistent, UEFI): " : "boot device (persistent): ")
                                : (boot.efi ? "boot device (next boot, UEFI): " : "boot device (next boot): "),
                device_names[boot.device]);
        else
            say("boot device: ", "none (the node's own boot order)");
        return;
    }
}

static void get_boot_options(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                             unsigned int *rdata_len, void *cb_data)
{
    unsigned char param;

    (void) mc;
    (void) cb_data;
    if (msg->len < 3) {
        rdata[0] = IPMI_REQUEST_DATA_LENGTH_INVALID_CC;
        *rdata_len = 1;
        return;
    }
    param = msg->data[0] & 0x7f;
    load_boot();
    rdata[0] = 0;
    rdata[1] = 1; /* parameter version */
    rdata[2] = param;
    switch (param) {
    case 0: rdata[3] = boot.in_progress; *rdata_len = 4; return;
    case 1: case 2: rdata[3] = 0; *rdata_len = 4; return;
    case 3: rdata[3] = boot.clear_mask; *rdata_len = 4; return;
    case 4: rdata[3] = 0; rdata[4] = boot.ack; *rdata_len = 5; return;
    case 5:
        rdata[3] = (boot.valid << 7) | (boot.persistent << 6) | (boot.efi << 5);
        rdata[4] = boot.valid ? boot.device << 2 : 0;
        rdata[5] = rdata[6] = rdata[7] = 0;
        *rdata_len = 8;
        return;
    default:
        rdata[0] = PARAM_NOT_SUPPORTED_CC;
        *rdata_len = 1;
        return;
    }
}

/* ---- 5: Chassis Control 4, the diagnostic interrupt (NMI), and SEL entries ---- */

/* A system event record in the SEL, as a real BMC logs chassis actions: sensor-specific event
 * `offset` of a sensor of `type` (no SDR: event-only), generated by the BMC (0x20). */
static void log_event(lmc_data_t *mc, unsigned char type, unsigned char num, unsigned char offset)
{
    unsigned char ev[13];
    uint32_t now = (uint32_t) time(NULL);
    unsigned int recid;

    ev[0] = now & 0xff;
    ev[1] = (now >> 8) & 0xff;
    ev[2] = (now >> 16) & 0xff;
    ev[3] = now >> 24;
    ev[4] = 0x20;  /* generator: the BMC */
    ev[5] = 0x00;
    ev[6] = 0x04;  /* event message format revision (IPMI 1.5 and later) */
    ev[7] = type;
    ev[8] = num;
    ev[9] = 0x6f;  /* assertion, sensor-specific */
    ev[10] = offset;
    ev[11] = 0xff;
    ev[12] = 0xff;
    ipmi_mc_add_to_sel(mc, 0x02, ev, &recid);
}

/* What each Chassis Control logs: sensor type, sensor number, event offset. */
static const unsigned char control_events[6][3] = {
    [0] = { 0x22, 0x10, 0x06 }, /* System ACPI Power State: G3 mechanical off */
    [1] = { 0x1d, 0x11, 0x00 }, /* System Boot Initiated: by power up */
    [2] = { 0x1d, 0x11, 0x00 }, /* power cycle: by power up */
    [3] = { 0x1d, 0x11, 0x01 }, /* System Boot Initiated: by hard reset */
    [4] = { 0x13, 0x12, 0x00 }, /* Critical Interrupt: front panel NMI / diagnostic interrupt */
    [5] = { 0x22, 0x10, 0x05 }, /* System ACPI Power State: S5 soft off */
};

static void chassis_control(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                            unsigned int *rdata_len, void *cb_data)
{
    channel_t *vm = sysd ? sysd->chan_set[15] : NULL;
    unsigned char c = msg->len >= 1 ? msg->data[0] & 0xf : 0xff;

    if (c != 4) {
        sim_chassis_control(mc, msg, rdata, rdata_len, cb_data);
        if (c <= 5 && *rdata_len >= 1 && rdata[0] == 0) {
            log_event(mc, control_events[c][0], control_events[c][1], control_events[c][2]);
            /* 7: the power asked for last, for the power restore policy "previous". */
            save_word(state_file, c == 0 || c == 5 ? "off" : "on");
            /* A hard reset keeps the QEMU process (no new "power on" from lab-vm): say it, so
             * that lab's boot phases start again from this boot (src/phase.rs). */
            if (c == 3)
                say("power reset: the VM restarts", "");
        }
        return;
    }
    *rdata_len = 1;
    rdata[0] = 0;
    if (ipmi_mc_is_power_on(mc) != 1 || !vm || !vm->hw_op || !HW_OP_CAN_NMI(vm)) {
        rdata[0] = IPMI_NOT_SUPPORTED_IN_PRESENT_STATE_CC;
        say("diagnostic interrupt refused: ", "the VM is off or not connected to the BMC");
        return;
    }
    if (vm->hw_op(vm, HW_OP_SEND_NMI) != 0) {
        rdata[0] = IPMI_UNKNOWN_ERR_CC;
        return;
    }
    log_event(mc, control_events[4][0], control_events[4][1], control_events[4][2]);
    say("diagnostic interrupt: NMI sent to the VM", "");
}

/* ---- 7: the power restore policy and the power asked for last ---- */

/* Writes "WORD\n" to FILE through a temporary file and a rename; 0 on success. */
static int write_word(const char *file, const char *word)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", word);
    if (fclose(f) != 0 || rename(tmp, file) != 0)
        return -1;
    return 0;
}

static void save_word(const char *file, const char *word)
{
    if (write_word(file, word) != 0) {
        fprintf(stderr, "lab: error: bmc: cannot write %s: %s\n", file, strerror(errno));
        fflush(stderr);
    }
}

static int policy_from_word(const char *w)
{
    int i;

    for (i = 0; i < 3; i++)
        if (strcmp(w, policy_names[i]) == 0)
            return i;
    return -1;
}

/* The policy file when it holds one, else the lab file's (restore=), which is then written. */
static void load_policy(unsigned char initial)
{
    char word[16] = "";
    FILE *f = fopen(policy_file, "r");
    int p = -1;

    if (f) {
        if (fscanf(f, "%15s", word) == 1)
            p = policy_from_word(word);
        fclose(f);
    }
    if (p >= 0) {
        restore_policy = p;
        return;
    }
    restore_policy = initial;
    save_word(policy_file, policy_names[initial]);
}

/* Get Chassis Status: ipmi_sim leaves the power restore policy (current power state, bits 6:5)
 * at 0 ("always off"); we put ours there. */
static void chassis_status(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                           unsigned int *rdata_len, void *cb_data)
{
    sim_chassis_status(mc, msg, rdata, rdata_len, cb_data);
    if (*rdata_len >= 2 && rdata[0] == 0)
        rdata[1] = (rdata[1] & ~0x60) | (restore_policy << 5);
}

/* Set Power Restore Policy (`ipmitool chassis policy`): ipmi_sim has none. Kept in the policy
 * file, which lab-node reads when the node's container restarts. */

static void power_restore_policy(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                                 unsigned int *rdata_len, void *cb_data)
{
    (void) mc;
    (void) cb_data;
    *rdata_len = 1;
    if (msg->len < 1) {
        rdata[0] = IPMI_REQUEST_DATA_LENGTH_INVALID_CC;
        return;
    }
    if ((msg->data[0] & 7) < 3) {
        if (write_word(policy_file, policy_names[msg->data[0] & 7]) != 0) {
            rdata[0] = IPMI_UNKNOWN_ERR_CC;
            return;
        }
        restore_policy = msg->data[0] & 7;
        say("power restore policy: ", policy_names[restore_policy]);
    } else if ((msg->data[0] & 7) != 3) {
        rdata[0] = IPMI_INVALID_DATA_FIELD_CC;
        return;
    }
    rdata[0] = 0;
    rdata[1] = 0x07; /* all three policies supported */
    *rdata_len = 2;
}

/* BMC Warm Reset (`ipmitool mc reset warm`, Ironic's `bmc reset warm`): ipmi_sim has none. Like
 * a real BMC's, it keeps the host running; there is nothing of ipmi_sim's to restart. */
static void warm_reset(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len,
                       void *cb_data)
{
    (void) mc;
    (void) msg;
    (void) cb_data;
    rdata[0] = 0;
    *rdata_len = 1;
    say("warm reset asked: the BMC keeps running", "");
}

/* Read FRU Data asking for more than fits in one answer: ipmi_sim says "request data field length
 * limit exceeded" (0xc8); a real BMC says "cannot return the number of bytes requested" (0xca),
 * after which clients (pyghmi) ask for less. */
static void read_fru(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len,
                     void *cb_data)
{
    sim_read_fru(mc, msg, rdata, rdata_len, cb_data);
    if (*rdata_len >= 1 && rdata[0] == IPMI_REQUESTED_DATA_LENGTH_EXCEEDED_CC)
        rdata[0] = IPMI_CANNOT_RETURN_REQ_LENGTH_CC;
}

/* ---- 6: DCMI (group extension 0xdc) ---- */

#define DCMI_GROUP 0xdc

static void dcmi(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len,
                 void *cb_data)
{
    unsigned int watts = 0;
    long now = (long) time(NULL);
    unsigned int i;

    (void) cb_data;
    rdata[0] = 0;
    rdata[1] = DCMI_GROUP;
    switch (msg->cmd) {
    case 0x01: /* Get DCMI Capabilities Info */
        if (msg->len < 2 || msg->data[1] != 1) {
            rdata[0] = IPMI_INVALID_DATA_FIELD_CC;
            *rdata_len = 2;
            return;
        }
        rdata[2] = 1;    /* DCMI 1.5 */
        rdata[3] = 5;
        rdata[4] = 2;    /* parameter revision */
        rdata[5] = 0;    /* reserved */
        rdata[6] = 0x01; /* mandatory platform capabilities: identification support */
        rdata[7] = 0x00;
        rdata[8] = 0x01; /* optional: power management */
        rdata[9] = 0;
        *rdata_len = 10;
        return;
    case 0x02: /* Get Power Reading, mode 1 (system power statistics) */
        if (msg->len < 4 || msg->data[1] != 1) {
            rdata[0] = IPMI_INVALID_DATA_FIELD_CC;
            *rdata_len = 2;
            return;
        }
        if (ipmi_mc_is_power_on(mc) == 1)
            watts = 118 + (unsigned int) (now % 7);
        rdata[2] = watts & 0xff;
        rdata[3] = watts >> 8;
        rdata[4] = watts ? 112 : 0;      /* minimum */
        rdata[5] = 0;
        rdata[6] = watts ? 131 : 0;      /* maximum */
        rdata[7] = 0;
        rdata[8] = watts ? 121 : 0;      /* average */
        rdata[9] = 0;
        for (i = 0; i < 4; i++)
            rdata[10 + i] = (now >> (8 * i)) & 0xff;
        rdata[14] = 0x60;                /* statistics period: 60000 ms */
        rdata[15] = 0xea;
        rdata[16] = 0;
        rdata[17] = 0;
        rdata[18] = watts ? 0x40 : 0;    /* power measurement active */
        *rdata_len = 19;
        return;
    default:
        rdata[0] = IPMI_INVALID_CMD_CC;
        *rdata_len = 1;
        return;
    }
}

/* ---- module entry points ---- */

static void parse_options(const char *initstr)
{
    char *opts = strdup(initstr ? initstr : ""), *save = NULL, *tok, *p, *end;
    unsigned long v;
    int restore = -1;

    if (!opts)
        fail("out of memory", "");
    for (tok = strtok_r(opts, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (strncmp(tok, "ports=", 6) == 0) {
            for (p = tok + 6; *p; p = *end ? end + 1 : end) {
                v = strtoul(p, &end, 10);
                if (end == p || v == 0 || v > 65535 || (*end && *end != ',') || num_ports == MAX_PORTS)
                    fail("bad ports option: ", tok);
                ports[num_ports++].port = v;
            }
        } else if (strncmp(tok, "bootdev=", 8) == 0 && tok[8] == '/') {
            bootdev_file = strdup(tok + 8);
        } else if (strncmp(tok, "policy=", 7) == 0 && tok[7] == '/') {
            policy_file = strdup(tok + 7);
        } else if (strncmp(tok, "state=", 6) == 0 && tok[6] == '/') {
            state_file = strdup(tok + 6);
        } else if (strncmp(tok, "restore=", 8) == 0) {
            if ((restore = policy_from_word(tok + 8)) < 0)
                fail("bad restore option (previous, on or off): ", tok);
        } else {
            fail("unknown option: ", tok);
        }
    }
    free(opts);
    if (num_ports == 0 || !bootdev_file || !policy_file || !state_file || restore < 0)
        fail("loadlib options need ports=PORT[,PORT] bootdev=/FILE policy=/FILE state=/FILE "
             "restore=previous|on|off, got: ", initstr ? initstr : "");
    load_policy(restore);
}

int ipmi_sim_module_init(sys_data_t *sys, const char *initstr)
{
    sysd = sys;
    parse_options(initstr);
    sim_chassis_control = chassis_netfn_handlers[IPMI_CHASSIS_CONTROL_CMD];
    if (!sim_chassis_control)
        fail("ipmi_sim has no Chassis Control handler", "");
    if (ipmi_emu_register_cmd_handler(IPMI_CHASSIS_NETFN, IPMI_CHASSIS_CONTROL_CMD,
                                      chassis_control, NULL))
        fail("cannot register the chassis control command", "");
    sim_chassis_status = chassis_netfn_handlers[IPMI_GET_CHASSIS_STATUS_CMD];
    if (!sim_chassis_status
        || ipmi_emu_register_cmd_handler(IPMI_CHASSIS_NETFN, IPMI_GET_CHASSIS_STATUS_CMD,
                                         chassis_status, NULL))
        fail("cannot register the Get Chassis Status command", "");
    sim_read_fru = storage_netfn_handlers[IPMI_READ_FRU_DATA_CMD];
    if (!sim_read_fru || ipmi_emu_register_cmd_handler(IPMI_STORAGE_NETFN, IPMI_READ_FRU_DATA_CMD,
                                                       read_fru, NULL))
        fail("cannot register the Read FRU Data command", "");
    if (ipmi_emu_register_cmd_handler(IPMI_CHASSIS_NETFN, 0x06, power_restore_policy, NULL)
        || ipmi_emu_register_cmd_handler(IPMI_APP_NETFN, IPMI_WARM_RESET_CMD, warm_reset, NULL))
        fail("cannot register the power restore policy and warm reset commands", "");
    ipmi_emu_register_group_extension_handler(DCMI_GROUP, dcmi, NULL);
    if (ipmi_emu_register_cmd_handler(IPMI_CHASSIS_NETFN, IPMI_SET_SYSTEM_BOOT_OPTIONS_CMD,
                                      set_boot_options, NULL)
        || ipmi_emu_register_cmd_handler(IPMI_CHASSIS_NETFN, IPMI_GET_SYSTEM_BOOT_OPTIONS_CMD,
                                         get_boot_options, NULL))
        fail("cannot register the boot options commands", "");
    return 0;
}

void ipmi_sim_module_post_init(sys_data_t *sys)
{
    unsigned int i;
    char detail[64];

    for (i = 0; i < 16 && !lan; i++) {
        channel_t *chan = sys->chan_set[i];
        if (chan && chan->medium_type == IPMI_CHANNEL_MEDIUM_8023_LAN && chan->chan_info)
            lan = chan->chan_info;
    }
    if (!lan)
        fail("lan.conf has no LAN channel (startlan ... endlan)", "");
    if (lan->lan_addr_set)
        fail("the LAN channel must have no addr line: lab-bmc opens its ports itself", "");
    lan->send_out = send_out;
    for (i = 0; i < num_ports; i++)
        open_port(sys, &ports[i]);
    for (i = 0; i < num_ports; i++) {
        snprintf(detail, sizeof(detail), "%s%u/udp", i ? ", " : "", ports[i].port);
        if (i == 0)
            printf("lab: bmc: IPMI over LAN on ");
        printf("%s", detail);
    }
    printf("\n");
    fflush(stdout);
}
