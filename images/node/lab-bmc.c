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
 *    ipmi_sim would grant at any privilege) gets "no cipher suite match" (so does any suite
 *    we do not grant, see 13).
 * 3. System boot options (`ipmitool chassis bootdev pxe|disk|cdrom [options=persistent,efiboot]`):
 *    ipmi_sim drops the persistent flag and keeps no state. We keep the boot flags in a file that
 *    the node's power-on script (lab-vm) reads, and clears after one boot unless persistent:
 *    "<device> once|persistent [efi]", or "none". A change while the VM runs, and a BMC reset,
 *    also runs lab-bootorder, which gives the running VM that boot order for its next reset. The device "http" (UEFI HTTP boot, which IPMI
 *    has no selector for; Redfish's UefiHttp writes it) reads over IPMI as PXE in UEFI mode.
 *
 * 4. RMCP+ Open Session Requests that ask for "the highest privilege level available" (0), as
 *    freeipmi's tools do by default: ipmi_sim answers with maximum privilege 0, which freeipmi
 *    rejects ("privilege level cannot be obtained for this user"). We put the channel's privilege
 *    limit in the answer (the Open Session Response carries no authentication code; the privilege
 *    the session gets is still the one the client asks for in RAKP message 1, checked there).
 * 5. Chassis Control 4 (pulse diagnostic interrupt, `ipmitool power diag`), which ipmi_sim
 *    refuses: we send an NMI to the VM over the VM channel (QEMU's ipmi-bmc-extern injects it);
 *    power on, off and cycle go to ipmi_sim's own handler (reset and soft off: see 8).
 * 6. DCMI Get Power Reading (`ipmitool dcmi power reading`) and Get DCMI Capabilities, which
 *    ipmi_sim lacks: the input power of the power sensor (see 10), a standby draw while off.
 *
 * 7. The power restore policy (`ipmitool chassis policy`, shown by `chassis status`), which
 *    ipmi_sim lacks: kept in a file of the node's volume (initialised from the lab file's
 *    `power_restore` when missing), and the power last asked for by Chassis Control kept beside
 *    it (lab-qmp writes off there when the guest powers itself off), so that lab-node powers the
 *    VM on or not when its container restarts (engine restart).
 *
 * 8. Hard reset and soft off (Chassis Control 3 and 5) go to QEMU over its QMP socket
 *    (system_reset, system_powerdown: the ACPI power button), so that QEMU's events name the
 *    BMC as their cause (lab-qmp logs them). ipmi_sim would send a reset over the VM channel,
 *    which QEMU reports as the guest's own, and refuses a soft off (QEMU's ipmi-bmc-extern has
 *    no graceful shutdown). Without QMP (the VM is starting) a reset falls back to ipmi_sim's.
 *    A reset whose next boot is a UEFI HTTP boot and the running VM's not (or the other way
 *    round) is a power cycle: OVMF's PXE switch is set only when QEMU starts (lab-bootorder).
 *    A power off stays ipmi_sim's (over the VM channel, SIGTERM if QEMU lingers); QEMU reports it
 *    as the guest's shutdown, so we leave a mark (/run/lab/bmc-power-off) for lab-qmp first.
 * 9. Serial over LAN sessions start clean and a dead console does not hold the port: see
 *    "SOL" below.
 *
 * 8. Get Device GUID, which ipmi_sim lacks, and Get System GUID in-band (KCS), which it answers
 *    only over LAN: both give the node's uuid (lan.conf's `guid`).
 *
 * 10. Sensors that follow the power (readings on, standby or "no reading" off), the SEL entries a
 *    real BMC makes (the guest's own power off, boot device changes, a cleared log): see "10".
 * 11. IPMI 1.5 sessions number their answers after the Activate Session Response (see send_out).
 * 12. The SDR repository's timestamp stays the same across restarts (see Get SDR Repository Info).
 * 13. Cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128), which ipmi_sim 2.0.33
 *    lacks: the algorithms are ours, registered in libIPMIlanserv's tables. Get Channel Cipher
 *    Suites (in and outside a session) and `lan print` list the suites the BMC grants (17, 3, ...):
 *    see "13".
 * 14. Get System Info Parameters (`bmc-info`'s system firmware version), which ipmi_sim lacks,
 *    and, at user and operator privilege, DCMI's power reading, which ipmi_sim's privilege table
 *    leaves to administrators: see "14".
 * 15. SOL configuration parameters 2, 3, 4, 7 and 8 (SOL authentication, enforced at activation;
 *    the others read-only), which ipmi_sim lacks: see "15".
 * 16. Sixteen user IDs, not ipmi_sim's 63 (`user list`, bmc-config's user sections): see "16".
 *
 * Options (second argument of loadlib): "ports=623,6230 bootdev=/var/lib/lab/bootdev
 * policy=/var/lib/lab/power-policy state=/var/lib/lab/power-state restore=previous
 * [qmp=/run/lab/qmp-bmc.sock]".
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <OpenIPMI/ipmi_auth.h>
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
static const char *qmp_socket = "/run/lab/qmp-bmc.sock";
static int apply_boot_order(void);
/* Written just before a power off (or the off of a cycle) goes to QEMU over the VM channel, which
 * QEMU reports as the guest's own shutdown: lab-qmp reads it to name the BMC instead. */
static const char *power_off_mark = "/run/lab/bmc-power-off";

/* ipmi_sim's own tables and helpers (global symbols of the ipmi_sim binary, see bmc.h). */
extern cmd_handler_f app_netfn_handlers[256];
extern cmd_handler_f chassis_netfn_handlers[256];
extern ipmi_payload_handler_cb payload_handlers[64]; /* libIPMIlanserv's, by RMCP+ payload type */
extern cmd_handler_f storage_netfn_handlers[256];
extern cmd_handler_f sensor_event_netfn_handlers[256];
extern cmd_handler_f transport_netfn_handlers[256];
extern int ipmi_mc_is_power_on(lmc_data_t *mc);
extern int ipmi_mc_add_to_sel(lmc_data_t *mc, unsigned char record_type, unsigned char event[13],
                              unsigned int *recid);
static cmd_handler_f sim_chassis_control;
static cmd_handler_f sim_read_fru;
static cmd_handler_f sim_chassis_status;
static void save_word(const char *file, const char *word);
static void log_event(lmc_data_t *mc, unsigned char type, unsigned char num, unsigned char offset);
static const char *const policy_names[3] = { "off", "previous", "on" };
/* 10: a power change within this many seconds of a chassis control is that control's doing. */
#define BMC_CHANGE_WINDOW 15
static double bmc_change_until;

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

/* ---- 9: SOL ----
 *
 * ipmi_sim keeps the sequence number of the last SOL packet it acknowledged across sessions, and
 * takes a packet with that number for a resend, which it acknowledges and drops. Every ipmitool
 * session numbers its packets from 1, so a new session's first keystroke was lost whenever the
 * last session's last packet was number 1 as well. When a session's first packet carries that
 * number, we first hand ipmi_sim an empty packet with another number (its acknowledgement goes
 * nowhere), so the keystroke is taken as new.
 *
 * A console that is gone (its client was killed, never sent Deactivate Payload) held SOL until
 * its session timed out (30 s of silence); meanwhile every Activate Payload got "payload already
 * active". A live console acknowledges each SOL packet the BMC sends at once, and ipmitool sends
 * a keepalive after 15 s without traffic. So when another session activates SOL, the session
 * holding it is taken for dead if it left SOL data unacknowledged for 3 s or sent nothing for 20 s:
 * its SOL is released and the session closed at the next tick, as a timeout would, and the new
 * session gets the console. A live console is never taken over ("payload already active").
 */
#define SOL_PAYLOAD 1
#define SOL_UNACKED_DEAD 3   /* seconds SOL data may wait for the console's acknowledgement */
#define SOL_SILENT_DEAD 20   /* seconds a console may stay silent (ipmitool: keepalive at 15) */

static ipmi_payload_handler_cb sim_sol_payload;
static cmd_handler_f sim_activate_payload;
static void (*sim_return_rsp)(channel_t *chan, msg_t *msg, rsp_msg_t *rsp);
static uint32_t sol_sid;            /* the session that activated SOL last (0: none) */
static int sol_fresh;               /* no SOL packet from that session yet */
static unsigned char sol_last_seq;  /* the last nonzero sequence number ipmi_sim took */
static double sol_rx;               /* when that session last sent anything */
static double sol_unacked;          /* since when SOL data to it waits for an ack (0: none) */
static int drop_rsp;                /* set around a packet whose answer must not go out */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Any packet of the session that holds SOL shows its console is there. */
static void sol_heard_from(uint32_t sid)
{
    if (sid && sid == sol_sid) {
        sol_rx = now_s();
        sol_unacked = 0;
    }
}

/* The open session SID (NULL: none). */
static session_t *session_of(uint32_t sid)
{
    unsigned int i;

    for (i = 1; sid && i <= MAX_SESSIONS; i++)
        if (lan->sessions[i].active && lan->sessions[i].sid == sid)
            return &lan->sessions[i];
    return NULL;
}

/* The session that holds SOL, if it is still open and still has SOL. */
static session_t *sol_holder(void)
{
    session_t *ses = session_of(sol_sid);

    return ses && ses->closers[SOL_PAYLOAD].mc ? ses : NULL;
}

static void sol_payload(lanserv_data_t *l, msg_t *msg)
{
    unsigned char seq = msg->len >= 4 ? msg->data[0] & 0xf : 0;
    unsigned char empty[4] = { 0, 0, 0, 0 };
    msg_t first;

    if (msg->sid == sol_sid && msg->len >= 4) {
        if (sol_fresh && seq && seq == sol_last_seq) {
            first = *msg;
            empty[0] = seq % 15 + 1;
            first.data = empty;
            first.len = sizeof(empty);
            drop_rsp = 1;
            sim_sol_payload(l, &first);
            drop_rsp = 0;
        }
        sol_fresh = 0;
        if (seq)
            sol_last_seq = seq;
    }
    sim_sol_payload(l, msg);
}

/* Every answer of the LAN channel: SOL data to the console starts the wait for its ack. */
static void return_rsp(channel_t *chan, msg_t *msg, rsp_msg_t *rsp)
{
    if (drop_rsp)
        return;
    if (msg->rmcpp.payload == SOL_PAYLOAD && msg->sid == sol_sid && rsp->data_len > 4
        && rsp->data[0] != 0 && sol_unacked == 0)
        sol_unacked = now_s();
    sim_return_rsp(chan, msg, rsp);
}

static unsigned char sol_auth_refuses(const session_t *session); /* 15 */

static void activate_payload(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                             unsigned int *rdata_len, void *cb_data)
{
    int sol = msg->len >= 2 && (msg->data[0] & 0x3f) == SOL_PAYLOAD && (msg->data[1] & 0xf) == 1;
    session_t *holder = sol ? sol_holder() : NULL, *ses;
    double t = now_s();
    unsigned char refused;

    if (holder && holder->sid != msg->sid
        && ((sol_unacked && t - sol_unacked >= SOL_UNACKED_DEAD) || t - sol_rx >= SOL_SILENT_DEAD)) {
        holder->closers[SOL_PAYLOAD].close_cb(holder->closers[SOL_PAYLOAD].mc, holder->sid,
                                              holder->closers[SOL_PAYLOAD].close_cb_data);
        holder->closers[SOL_PAYLOAD].close_cb = NULL;
        holder->closers[SOL_PAYLOAD].mc = NULL;
        holder->time_left = 0; /* closed at the next tick, as by a timeout */
        say("SOL: the console holding it does not answer: released for a new session", "");
    }
    if (sol && (ses = session_of(msg->sid)) && (refused = sol_auth_refuses(ses))) {
        rdata[0] = refused;
        *rdata_len = 1;
        return;
    }
    sim_activate_payload(mc, msg, rdata, rdata_len, cb_data);
    if (sol && *rdata_len > 1 && rdata[0] == 0) {
        sol_sid = msg->sid;
        sol_fresh = 1;
        sol_rx = t;
        sol_unacked = 0;
    }
}

/* ---- 15: SOL configuration parameters ----
 *
 * ipmi_sim keeps SOL parameters 0 (set in progress), 1 (enable) and 5/6 (bit rates), and answers
 * "parameter not supported" for the rest, so `ipmitool sol info` and freeipmi's `bmc-config`
 * (SOL_Conf) lacked them, and MAAS's commissioning, which forces SOL authentication and
 * encryption there, could not. We add:
 * 2 (SOL authentication): force encryption (bit 7), force authentication (bit 6), the privilege
 *   level SOL needs (bits 3:0, default user). Kept in the node's volume (sol-auth beside the power
 *   state) and enforced at activation: a session below that privilege gets "insufficient
 *   privilege"; forced encryption (authentication) refuses a session whose cipher suite has no
 *   confidentiality (integrity) algorithm, with "cannot activate payload without encryption".
 * 3 and 4 (character accumulate interval and send threshold, retry count and interval): what
 *   ipmi_sim does (sends at once, 5 retries 1 s apart, then drops the data), read-only: writing the
 *   same values back (a bmc-config commit of a checkout) is accepted, others get "read-only".
 * 7 and 8 (payload channel, payload port): the LAN channel and 623, read-only.
 */
#define SOL_PRIV_DEFAULT IPMI_PRIVILEGE_USER
#define SOL_READ_ONLY_CC 0x82        /* attempt to write a read-only parameter */
#define SOL_NEEDS_ENCRYPTION_CC 0x84 /* Activate Payload: cannot activate without encryption */

static cmd_handler_f sim_set_sol_config;
static cmd_handler_f sim_get_sol_config;
static char *sol_auth_file;
static unsigned char sol_auth = SOL_PRIV_DEFAULT; /* param 2: bit 7 enc, bit 6 auth, 3:0 priv */

/* Parameters 3, 4, 7, 8 as this BMC has them; returns their length (0: not one of them). */
static unsigned int sol_fixed_param(unsigned char param, unsigned char *out)
{
    switch (param) {
    case 3: out[0] = 1; out[1] = 1; return 2;    /* 5 ms (the least there is), 1 character */
    case 4: out[0] = 5; out[1] = 100; return 2;  /* 5 retries, 100 x 10 ms */
    case 7: out[0] = lan->channel.channel_num; return 1;
    case 8: out[0] = 623 & 0xff; out[1] = 623 >> 8; return 2;
    default: return 0;
    }
}

static void load_sol_auth(void)
{
    char word[16] = "";
    unsigned long v;
    char *end;
    FILE *f = fopen(sol_auth_file, "r");

    if (!f)
        return;
    if (fscanf(f, "%15s", word) == 1) {
        v = strtoul(word, &end, 0);
        if (*end == 0 && v <= 0xff && (v & 0xf) >= IPMI_PRIVILEGE_USER
            && (v & 0xf) <= IPMI_PRIVILEGE_ADMIN)
            sol_auth = v & 0xcf;
    }
    fclose(f);
}

/* Parameter PARAM's value as this BMC has it (2, or one of sol_fixed_param's) in OUT; its
 * length, 0 for a parameter left to ipmi_sim. */
static unsigned int sol_param(unsigned char param, unsigned char *out)
{
    if (param != 2)
        return sol_fixed_param(param, out);
    out[0] = sol_auth;
    return 1;
}

static void get_sol_config(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                           unsigned int *rdata_len, void *cb_data)
{
    unsigned int n = msg->len >= 4 ? sol_param(msg->data[1], rdata + 2) : 0;

    if (!n) {
        sim_get_sol_config(mc, msg, rdata, rdata_len, cb_data);
        return;
    }
    rdata[0] = 0;
    rdata[1] = 0x11; /* parameter revision */
    *rdata_len = msg->data[0] & 0x80 ? 2 : 2 + n; /* bit 7: the revision only */
}

static void set_sol_config(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                           unsigned int *rdata_len, void *cb_data)
{
    unsigned char now[2], priv;
    unsigned int n = msg->len >= 3 ? sol_param(msg->data[1], now) : 0;
    char word[8];

    if (!n) {
        sim_set_sol_config(mc, msg, rdata, rdata_len, cb_data);
        return;
    }
    *rdata_len = 1;
    rdata[0] = 0;
    if (msg->data[1] != 2) {
        if (msg->len < 2 + n || memcmp(msg->data + 2, now, n) != 0)
            rdata[0] = SOL_READ_ONLY_CC;
        return;
    }
    priv = msg->data[2] & 0xf;
    if (priv < IPMI_PRIVILEGE_USER || priv > IPMI_PRIVILEGE_ADMIN) {
        rdata[0] = IPMI_INVALID_DATA_FIELD_CC;
        return;
    }
    sol_auth = msg->data[2] & 0xcf;
    snprintf(word, sizeof(word), "0x%02x", sol_auth);
    save_word(sol_auth_file, word);
}

/* Activate Payload of SOL in SESSION: 0 if parameter 2 allows it (the session's privilege, and
 * its cipher suite's confidentiality and integrity algorithms where forced), else the completion
 * code. */
static unsigned char sol_auth_refuses(const session_t *session)
{
    if (session->priv < (sol_auth & 0xf))
        return IPMI_INSUFFICIENT_PRIVILEGE_CC;
    if (((sol_auth & 0x80) && !session->conf) || ((sol_auth & 0x40) && !session->integ))
        return SOL_NEEDS_ENCRYPTION_CC;
    return 0;
}

static void send_out(lanserv_data_t *l, struct iovec *data, int vecs, void *addr, int addr_len);

/* ---- 13: cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) ----
 *
 * libIPMIlanserv (OpenIPMI 2.0.33) has RAKP and integrity algorithms for SHA-1 and MD5 only, in
 * tables it exports (auths, integs, confs: by algorithm number; valid_cipher_suites: the
 * combinations an Open Session Request may ask for). We add RAKP-HMAC-SHA256 (authentication 3)
 * and HMAC-SHA256-128 (integrity 4) there, and rewrite the combinations to the suites we grant
 * (granted_suites, 17 among them); AES-CBC-128 is lanserv's own. IPMI v2.0 §13.28-13.32 with
 * SHA-256 (as ipmitool computes it, lanplus_crypt.c):
 *   RAKP 2 code  HMAC-SHA256(Kuid, SIDm|SIDc|Rm|Rc|GUIDc|ROLEm|ULENm|UNAMEm), all 32 bytes
 *   SIK          HMAC-SHA256(Kg or Kuid, Rm|Rc|ROLEm|ULENm|UNAMEm); K1, K2: HMAC-SHA256(SIK,
 *                20 bytes of 1 or of 2); Kuid and Kg are 20 bytes (zero-padded password)
 *   RAKP 3 code  HMAC-SHA256(Kuid, Rc|SIDm|ROLEm|ULENm|UNAMEm), all 32 bytes
 *   RAKP 4 ICV   HMAC-SHA256(SIK, Rm|SIDc|GUIDc), the first 16 bytes
 *   integrity    HMAC-SHA256(K1, from the session header's auth type to the next header byte),
 *                the first 16 bytes; AES-CBC-128 uses the first 16 bytes of K2.
 * lanserv keeps 20 bytes of SIK, K1 and K2 per session: the 32-byte keys live here, by session
 * handle. Its RAKP 1 handler builds RAKP 2 in a 64-byte buffer, too small for a 32-byte code
 * after the 40 bytes before it: our set2 leaves the code out, and send_out appends it.
 */
#define AUTH_RAKP_HMAC_SHA256 3
#define INTEG_HMAC_SHA256_128 4
#define CONF_AES_CBC_128 1
#define SHA256_LEN 32
#define SHA256_ICV_LEN 16
#define KUID_LEN 20
#define RAKP2_PAYLOAD 0x13

struct lab_cipher_suite_row {
    int auth, integ, conf;
};

extern auth_handlers_t *auths[64];
extern integ_handlers_t *integs[64];
extern conf_handlers_t *confs[64];
extern struct lab_cipher_suite_row valid_cipher_suites[]; /* ends with auth -1 */

struct sha256_keys {
    unsigned char sik[SHA256_LEN], k1[SHA256_LEN], k2[SHA256_LEN];
};
static struct sha256_keys sha256_keys[MAX_SESSIONS + 1]; /* by session handle */
static unsigned char rakp2_code[SHA256_LEN];              /* for the RAKP 2 going out next */
static uint32_t rakp2_console_sid;
static int rakp2_pending;

/* The cipher suites this BMC grants (IPMI 1.5 sessions aside): the only ones an Open Session
 * Request gets, the answer to Get Channel Cipher Suites, LAN parameters 22 and 23. Each: id,
 * authentication, integrity, confidentiality algorithm. Not granted: suite 0 (no
 * authentication, see 2), the xRC4 suites (lanserv lacks xRC4), and lanserv's suites 7, 8 and
 * 12, which neither ipmitool nor freeipmi could use (the session opens, the first protected
 * message fails). Suite 11 works with freeipmi (ipmitool has no MD5-128 integrity). */
static const unsigned char granted_suites[][4] = {
    { 1, 1, 0, 0 }, { 2, 1, 1, 0 }, { 3, 1, 1, 1 },
    { 6, 2, 0, 0 }, { 11, 2, 3, 0 }, { 17, 3, 4, 1 },
};
#define NUM_GRANTED_SUITES (sizeof(granted_suites) / sizeof(granted_suites[0]))

static struct sha256_keys *keys_of(session_t *session)
{
    return &sha256_keys[(unsigned int) session->handle % (MAX_SESSIONS + 1)];
}

static const unsigned char *kuid_of(session_t *session)
{
    return lan->users[session->userid].pw;
}

static void hmac_sha256(const void *key, int key_len, const unsigned char *data, size_t len,
                        unsigned char out[SHA256_LEN])
{
    unsigned int out_len = SHA256_LEN;

    if (!HMAC(EVP_sha256(), key, key_len, data, len, out, &out_len))
        memset(out, 0, SHA256_LEN); /* fails every check that follows */
}

static int rakp_sha256_init(lanserv_data_t *l, session_t *session)
{
    (void) l;
    session->auth_data.akey = EVP_sha256();
    session->auth_data.akey_len = SHA256_LEN;
    session->auth_data.integ_len = SHA256_ICV_LEN;
    memset(keys_of(session), 0, sizeof(struct sha256_keys));
    return 0;
}

/* RAKP 2: the code (appended by send_out), and the session's keys. */
static int rakp_sha256_set2(lanserv_data_t *l, session_t *session, unsigned char *data,
                            unsigned int *data_len, unsigned int max_len)
{
    auth_data_t *a = &session->auth_data;
    struct sha256_keys *k = keys_of(session);
    unsigned char in[58 + 16], konst[KUID_LEN];
    unsigned int n = a->username_len > 16 ? 16 : a->username_len;

    (void) data;
    (void) data_len;
    (void) max_len;
    ipmi_set_uint32(in, session->rem_sid);
    ipmi_set_uint32(in + 4, session->sid);
    memcpy(in + 8, a->rem_rand, 16);
    memcpy(in + 24, a->rand, 16);
    memcpy(in + 40, l->guid, 16);
    in[56] = a->role;
    in[57] = n;
    memcpy(in + 58, a->username, n);
    hmac_sha256(kuid_of(session), KUID_LEN, in, 58 + n, rakp2_code);
    rakp2_console_sid = session->rem_sid;
    rakp2_pending = 1;

    memcpy(in, a->rem_rand, 16);
    memcpy(in + 16, a->rand, 16);
    in[32] = a->role;
    in[33] = n;
    memcpy(in + 34, a->username, n);
    hmac_sha256(l->bmc_key ? l->bmc_key : kuid_of(session), KUID_LEN, in, 34 + n, k->sik);
    memset(konst, 1, sizeof(konst));
    hmac_sha256(k->sik, SHA256_LEN, konst, sizeof(konst), k->k1);
    memset(konst, 2, sizeof(konst));
    hmac_sha256(k->sik, SHA256_LEN, konst, sizeof(konst), k->k2);
    /* lanserv's AES-CBC-128 takes its key from here (16 of these 20 bytes). */
    memcpy(a->sik, k->sik, sizeof(a->sik));
    memcpy(a->k1, k->k1, sizeof(a->k1));
    memcpy(a->k2, k->k2, sizeof(a->k2));
    return 0;
}

static int rakp_sha256_check3(lanserv_data_t *l, session_t *session, unsigned char *data,
                              unsigned int *data_len)
{
    auth_data_t *a = &session->auth_data;
    unsigned char in[22 + 16], code[SHA256_LEN];
    unsigned int n = a->username_len > 16 ? 16 : a->username_len;

    (void) l;
    if (*data_len < 8 + SHA256_LEN)
        return E2BIG;
    memcpy(in, a->rand, 16);
    ipmi_set_uint32(in + 16, session->rem_sid);
    in[20] = a->role;
    in[21] = n;
    memcpy(in + 22, a->username, n);
    hmac_sha256(kuid_of(session), KUID_LEN, in, 22 + n, code);
    if (CRYPTO_memcmp(code, data + *data_len - SHA256_LEN, SHA256_LEN) != 0)
        return EINVAL;
    *data_len -= SHA256_LEN;
    return 0;
}

static int rakp_sha256_set4(lanserv_data_t *l, session_t *session, unsigned char *data,
                            unsigned int *data_len, unsigned int max_len)
{
    unsigned char in[36], icv[SHA256_LEN];

    if (*data_len + SHA256_ICV_LEN > max_len)
        return E2BIG;
    memcpy(in, session->auth_data.rem_rand, 16);
    ipmi_set_uint32(in + 16, session->sid);
    memcpy(in + 20, l->guid, 16);
    hmac_sha256(keys_of(session)->sik, SHA256_LEN, in, sizeof(in), icv);
    memcpy(data + *data_len, icv, SHA256_ICV_LEN);
    *data_len += SHA256_ICV_LEN;
    return 0;
}

static int integ_sha256_init(lanserv_data_t *l, session_t *session)
{
    (void) l;
    if (session->auth != AUTH_RAKP_HMAC_SHA256)
        return EINVAL; /* K1 would be SHA-1's: suite 17 alone pairs them */
    session->auth_data.integ_len = SHA256_ICV_LEN;
    return 0;
}

static void integ_sha256_cleanup(lanserv_data_t *l, session_t *session)
{
    (void) l;
    memset(keys_of(session), 0, sizeof(struct sha256_keys));
}

/* POS: the packet from its RMCP header; *DATA_LEN: up to the next header byte. */
static int integ_sha256_add(lanserv_data_t *l, session_t *session, unsigned char *pos,
                            unsigned int *data_len, unsigned int data_size)
{
    unsigned char code[SHA256_LEN];

    (void) l;
    if (*data_len < 4 || *data_len + SHA256_ICV_LEN > data_size)
        return E2BIG;
    hmac_sha256(keys_of(session)->k1, SHA256_LEN, pos + 4, *data_len - 4, code);
    memcpy(pos + *data_len, code, SHA256_ICV_LEN);
    *data_len += SHA256_ICV_LEN;
    return 0;
}

/* MSG: from the session header's auth type to the end of the authentication code. */
static int integ_sha256_check(lanserv_data_t *l, session_t *session, msg_t *msg)
{
    unsigned char code[SHA256_LEN];

    (void) l;
    if (msg->len < SHA256_ICV_LEN + 5)
        return E2BIG;
    hmac_sha256(keys_of(session)->k1, SHA256_LEN, msg->data, msg->len - SHA256_ICV_LEN, code);
    if (CRYPTO_memcmp(code, msg->data + msg->len - SHA256_ICV_LEN, SHA256_ICV_LEN) != 0)
        return EINVAL;
    return 0;
}

static auth_handlers_t rakp_hmac_sha256 = {
    .init = rakp_sha256_init,
    .set2 = rakp_sha256_set2,
    .check3 = rakp_sha256_check3,
    .set4 = rakp_sha256_set4,
};

static integ_handlers_t hmac_sha256_128 = {
    .init = integ_sha256_init,
    .cleanup = integ_sha256_cleanup,
    .add = integ_sha256_add,
    .check = integ_sha256_check,
};

/* A RAKP 2 going out (RMCP+ payload 0x13, outside a session) with status 0 gets its code. */
static size_t append_rakp2_code(unsigned char *buf, size_t len, size_t size)
{
    size_t plen;

    if (len < 16 + 8 || buf[4] != AUTHTYPE_RMCPP || (buf[5] & 0x3f) != RAKP2_PAYLOAD)
        return len;
    if (!rakp2_pending)
        return len;
    rakp2_pending = 0;
    plen = buf[14] | (buf[15] << 8);
    if (buf[17] != 0 || 16 + plen != len || len + SHA256_LEN > size
        || ipmi_get_uint32(buf + 20) != rakp2_console_sid)
        return len;
    memcpy(buf + len, rakp2_code, SHA256_LEN);
    plen += SHA256_LEN;
    buf[14] = plen & 0xff;
    buf[15] = plen >> 8;
    return len + SHA256_LEN;
}

/* Get Channel Cipher Suites (request data: channel, payload type, list index): the records of
 * granted_suites, or the algorithms they use, 16 bytes a page. Returns the answer's length. */
static unsigned int cipher_suites_answer(const unsigned char *req, unsigned int req_len,
                                         unsigned char *out)
{
    unsigned char all[NUM_GRANTED_SUITES * 5];
    unsigned int n = 0, i, j, start;

    if (req_len < 3) {
        out[0] = IPMI_REQUEST_DATA_LENGTH_INVALID_CC;
        return 1;
    }
    for (i = 0; i < NUM_GRANTED_SUITES; i++) {
        const unsigned char *s = granted_suites[i];
        if (req[2] & 0x80) { /* list by cipher suite */
            all[n++] = 0xc0;
            all[n++] = s[0];
            all[n++] = s[1];
            all[n++] = 0x40 | s[2];
            all[n++] = 0x80 | s[3];
            continue;
        }
        for (j = 1; j < 4; j++) { /* each algorithm once */
            unsigned char tag = (unsigned char) ((j - 1) << 6) | s[j];
            if (!memchr(all, tag, n))
                all[n++] = tag;
        }
    }
    start = (req[2] & 0x3f) * 16u;
    out[0] = 0;
    out[1] = (req[0] & 0xf) == 0xe ? lan->channel.channel_num : req[0] & 0xf;
    if (start >= n)
        return 2;
    n = n - start > 16 ? 16 : n - start;
    memcpy(out + 2, all + start, n);
    return 2 + n;
}

/* A sessionless IPMI 1.5 request (in BUF, as lan_ready hands it to ipmi_sim) that is Get Channel
 * Cipher Suites: answered here through send_out (which puts it in RMCP+ framing if it came so). */
static int answer_cipher_suites(struct lab_addr *a, const unsigned char *buf, size_t len)
{
    const unsigned char *m = buf + 14;
    unsigned char out[14 + 7 + 18];
    struct iovec iov;
    unsigned int mlen, n;

    if (len < 14 + 7 || buf[4] != AUTHTYPE_NONE || memcmp(buf + 9, "\0\0\0\0", 4) != 0
        || (mlen = buf[13]) < 7 || 14 + mlen > len
        || (m[1] >> 2) != IPMI_APP_NETFN || m[5] != IPMI_GET_CHANNEL_CIPHER_SUITES_CMD)
        return 0;
    memcpy(out, buf, 13);                           /* RMCP header, authtype 0, seq 0, sid 0 */
    n = cipher_suites_answer(m + 6, mlen - 7, out + 20);
    out[13] = n + 7;
    out[14] = m[3];                                 /* the requester */
    out[15] = ((IPMI_APP_NETFN | 1) << 2) | (m[4] & 3);
    out[16] = -ipmb_checksum(out + 14, 2, 0);
    out[17] = m[0];                                 /* us */
    out[18] = (m[4] & 0xfc) | (m[1] & 3);
    out[19] = m[5];
    out[20 + n] = -ipmb_checksum(out + 17, 3 + n, 0);
    iov.iov_base = out;
    iov.iov_len = 21 + n;
    send_out(lan, &iov, 1, a, sizeof(*a));
    return 1;
}

/* In an RMCP+ session (after lanserv checked and decrypted it), the same request. */
static ipmi_payload_handler_cb sim_ipmi_payload;

static void ipmi_payload(lanserv_data_t *l, msg_t *msg)
{
    unsigned char out[18];
    rsp_msg_t rsp;

    if (msg->sid == 0 || msg->len < 7 || (msg->data[1] >> 2) != IPMI_APP_NETFN
        || msg->data[5] != IPMI_GET_CHANNEL_CIPHER_SUITES_CMD
        || ipmb_checksum(msg->data, 3, 0) || ipmb_checksum(msg->data + 3, msg->len - 3, 0)) {
        sim_ipmi_payload(l, msg);
        return;
    }
    msg->rs_addr = msg->data[0];
    msg->netfn = msg->data[1] >> 2;
    msg->rs_lun = msg->data[1] & 3;
    msg->rq_addr = msg->data[3];
    msg->rq_seq = msg->data[4] >> 2;
    msg->rq_lun = msg->data[4] & 3;
    msg->cmd = msg->data[5];
    rsp.netfn = IPMI_APP_NETFN | 1;
    rsp.cmd = msg->cmd;
    rsp.data = out;
    rsp.data_len = cipher_suites_answer(msg->data + 6, msg->len - 7, out);
    l->channel.return_rsp(&l->channel, msg, &rsp);
}

/* At start: the SHA-256 algorithms, and lanserv's table of the suites an Open Session Request
 * may ask for rewritten to granted_suites. */
static void grant_cipher_suites(void)
{
    unsigned int i, rows;

    if (auths[AUTH_RAKP_HMAC_SHA256] || integs[INTEG_HMAC_SHA256_128] || !confs[CONF_AES_CBC_128])
        fail("this OpenIPMI already has SHA-256 algorithms or lacks AES-CBC-128: "
             "check lab-bmc.c", "");
    for (rows = 0; valid_cipher_suites[rows].auth != -1; rows++)
        if (rows > 64)
            fail("OpenIPMI's cipher suite table has no end: check lab-bmc.c", "");
    if (rows < NUM_GRANTED_SUITES)
        fail("OpenIPMI's cipher suite table is too short for lab's: check lab-bmc.c", "");
    auths[AUTH_RAKP_HMAC_SHA256] = &rakp_hmac_sha256;
    integs[INTEG_HMAC_SHA256_128] = &hmac_sha256_128;
    for (i = 0; i < NUM_GRANTED_SUITES; i++) {
        valid_cipher_suites[i].auth = granted_suites[i][1];
        valid_cipher_suites[i].integ = granted_suites[i][2];
        valid_cipher_suites[i].conf = granted_suites[i][3];
    }
    valid_cipher_suites[i].auth = -1;
    sim_ipmi_payload = payload_handlers[0];
    payload_handlers[0] = ipmi_payload;
}

/* After lanserv's init: LAN parameters 22 and 23 (`ipmitool lan print`: RMCP+ Cipher Suites). */
static void list_cipher_suites(void)
{
    unsigned int i;

    memset(lan->lanparm.cipher_suite_entry, 0, sizeof(lan->lanparm.cipher_suite_entry));
    for (i = 0; i < NUM_GRANTED_SUITES; i++)
        lan->lanparm.cipher_suite_entry[1 + i] = granted_suites[i][0];
    lan->lanparm.num_cipher_suites = NUM_GRANTED_SUITES;
}

/* ---- 1 and 2: the LAN sockets ---- */

/* 11: the IPMI 1.5 session SID numbers its answers from after SEQ, if it was to use SEQ next. */
static void next_outbound_seq(uint32_t sid, uint32_t seq)
{
    unsigned int i;

    for (i = 1; i <= MAX_SESSIONS; i++) {
        session_t *ses = &lan->sessions[i];
        if (ses->active && !ses->rmcpplus && ses->sid == sid && ses->xmit_seq == seq) {
            ses->xmit_seq++;
            if (ses->xmit_seq == 0)
                ses->xmit_seq++;
        }
    }
}

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
    /* 11: an IPMI 1.5 Activate Session Response (authenticated: a 16-byte code; app response,
     * command 0x3a, completion 0). ipmi_sim sends it with the console's initial outbound
     * sequence number and then starts the session's own numbering at that same number, so the
     * next answer repeats it; freeipmi drops that answer as a duplicate and retransmits after
     * 1 s (every `ipmi-sensors`, `ipmi-fru`, `bmc-info` took 1.1 s). The session's numbering
     * goes on from the next number, as on a real BMC. */
    if (len >= 47 && buf[4] != AUTHTYPE_NONE && buf[4] != AUTHTYPE_RMCPP && (buf[31] >> 2) == 0x07
        && buf[35] == IPMI_ACTIVATE_SESSION_CMD && buf[36] == 0)
        next_outbound_seq(buf[38] | (buf[39] << 8) | (buf[40] << 16) | ((uint32_t) buf[41] << 24),
                          buf[5] | (buf[6] << 8) | (buf[7] << 16) | ((uint32_t) buf[8] << 24));
    len = append_rakp2_code(buf, len, sizeof(buf)); /* 13 */
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
    if (len >= 10 && buf[3] == 7 && buf[4] == AUTHTYPE_RMCPP)
        sol_heard_from(buf[6] | (buf[7] << 8) | (buf[8] << 16) | ((uint32_t) buf[9] << 24));
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
        if (!answer_cipher_suites(&a, v15, 14 + plen))
            ipmi_handle_lan_msg(lan, v15, 14 + plen, &a, sizeof(a));
    } else if (buf[3] == 7 && answer_cipher_suites(&a, buf, len)) {
        /* 13: answered */
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
    struct boot_flags before;

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
        before = boot;
        boot.valid = (d[1] >> 7) & 1;
        boot.persistent = (d[1] >> 6) & 1;
        boot.efi = (d[1] >> 5) & 1;
        boot.device = dev;
        boot.http = 0;
        if (save_boot() != 0) {
            rdata[0] = IPMI_UNKNOWN_ERR_CC;
            return;
        }
        if (ipmi_mc_is_power_on(mc) == 1)
            apply_boot_order();
        /* 10: a change of the boot device is in the SEL (System Event: system reconfigured). */
        if (before.valid != boot.valid || before.http
            || (boot.valid && (before.device != boot.device || before.persistent != boot.persistent
                               || before.efi != boot.efi)))
            log_event(mc, 0x12, 0x14, 0x00);
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
    [0] = { 0x22, 0x10, 0x0a }, /* System ACPI Power State: S5 entered by override */
    [1] = { 0x1d, 0x11, 0x00 }, /* System Boot Initiated: by power up */
    [2] = { 0x1d, 0x11, 0x00 }, /* power cycle: by power up */
    [3] = { 0x1d, 0x11, 0x01 }, /* System Boot Initiated: by hard reset */
    [4] = { 0x13, 0x12, 0x00 }, /* Critical Interrupt: front panel NMI / diagnostic interrupt */
    [5] = { 0x22, 0x10, 0x05 }, /* System ACPI Power State: S5 soft off */
};

/* ---- 8: QEMU's QMP socket, for a reset and the power button ---- */

/* Gives the running VM the boot order of the current boot override (lab-bootorder: QEMU takes
 * the devices' bootindex into the firmware's boot order at every reset), so that an override set
 * while the VM runs takes effect at the next reset, as a real server's firmware asks its BMC at
 * every POST. Without a running QEMU it does nothing: lab-vm applies the override at power on.
 * 3: the next boot needs OVMF's PXE switched (UEFI HTTP boot <-> PXE), which only a power on sets
 * (QEMU's fw_cfg): a reset is then a power cycle. */
static int apply_boot_order(void)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        execl("/usr/local/bin/lab-bootorder", "lab-bootorder", qmp_socket, (char *) NULL);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    return pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs one QMP command (no arguments) on QEMU's second QMP socket (lab-vm makes it): 0 when QEMU
 * answered it with "return". QEMU answers within milliseconds; a 2 s timeout bounds the wait. */
static int qmp(const char *command)
{
    struct sockaddr_un sun;
    struct timeval tv = { 2, 0 };
    char buf[4096], out[128];
    size_t have = 0;
    ssize_t n;
    int fd, returns = 0, rv = -1;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", qmp_socket);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    snprintf(out, sizeof(out), "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"%s\"}\n",
             command);
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0
        || write(fd, out, strlen(out)) != (ssize_t) strlen(out))
        goto out;
    /* The greeting, the answer to qmp_capabilities, events, then the command's answer. */
    while (returns < 2 && (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
        char *line, *nl;

        have += n;
        buf[have] = 0;
        for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
            *nl = 0;
            if (strstr(line, "\"error\""))
                goto out;
            if (strstr(line, "\"return\""))
                returns++;
        }
        have = strlen(line);
        memmove(buf, line, have + 1);
        if (have == sizeof(buf) - 1)
            have = 0; /* a line longer than the buffer: not one we look for */
    }
    if (returns == 2)
        rv = 0;
out:
    close(fd);
    return rv;
}

static void chassis_control(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                            unsigned int *rdata_len, void *cb_data)
{
    channel_t *vm = sysd ? sysd->chan_set[15] : NULL;
    unsigned char c = msg->len >= 1 ? msg->data[0] & 0xf : 0xff;
    int on = ipmi_mc_is_power_on(mc) == 1;
    int as_cycle = 0;

    if (c == 5) {
        /* Soft off: the ACPI power button; the guest decides (lab-qmp records its shutdown and
         * the power it leaves). With the VM off there is no button to press. */
        *rdata_len = 1;
        rdata[0] = 0;
        if (!on) {
            say("soft off asked: the VM is already off", "");
            return;
        }
        if (qmp("system_powerdown") != 0) {
            rdata[0] = IPMI_NOT_SUPPORTED_IN_PRESENT_STATE_CC;
            say("soft off refused: ", "QEMU's QMP socket does not answer (the VM is starting)");
            return;
        }
        log_event(mc, control_events[5][0], control_events[5][1], control_events[5][2]);
        say("soft off: ACPI power button pressed", "");
        return;
    }
    if (c != 4) {
        if (c <= 2)
            bmc_change_until = now_s() + BMC_CHANGE_WINDOW;
        if ((c == 0 || c == 2) && on)
            save_word(power_off_mark, "off");
        if (c == 3 && on)
            as_cycle = apply_boot_order() == 3;
        if (as_cycle) {
            /* ipmi_sim's power cycle (QEMU stops, lab-vm starts it again); the SEL has the reset */
            msg_t cycle = *msg;
            unsigned char data[1] = { 2 };

            cycle.data = data;
            cycle.len = 1;
            bmc_change_until = now_s() + BMC_CHANGE_WINDOW;
            save_word(power_off_mark, "off");
            sim_chassis_control(mc, &cycle, rdata, rdata_len, cb_data);
        } else if (c == 3 && on && qmp("system_reset") == 0) {
            *rdata_len = 1;
            rdata[0] = 0;
        } else {
            sim_chassis_control(mc, msg, rdata, rdata_len, cb_data);
        }
        if (c <= 3 && *rdata_len >= 1 && rdata[0] == 0) {
            log_event(mc, control_events[c][0], control_events[c][1], control_events[c][2]);
            /* 7: the power asked for last, for the power restore policy "previous". */
            save_word(state_file, c == 0 ? "off" : "on");
            /* A hard reset keeps the QEMU process (no new "power on" from lab-vm): say it before
             * the answer goes out, so that lab's boot phases start again from this boot at once
             * (src/phase.rs; lab-qmp's "lab: vm: reset" line follows). */
            if (c == 3 && as_cycle)
                say("power on: power reset as a power cycle: ",
                    "the next boot switches OVMF's PXE (UEFI HTTP boot), which QEMU sets at its start");
            else if (c == 3)
                say("power reset: the VM restarts", "");
            /* A power on (or cycle) starts QEMU through lab-vm, which logs "lab: power on" only
             * once it runs: say it here too, before the answer, so that a `wait` right after a
             * power on does not take the last boot's phases for this one's. */
            else if (c == 1 && !on)
                say("power on: the VM starts", "");
            else if (c == 2 && on)
                say("power on: power cycle, the VM starts again", "");
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

/* Get Device GUID and Get System GUID from the host (KCS): ipmi_sim answers Get System GUID only
 * on the LAN channel, from lan.conf's `guid`, and Get Device GUID nowhere. Both name the node's
 * uuid, which lan.conf's `guid` holds in IPMI byte order. */
static void get_guid(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len,
                     void *cb_data)
{
    (void) mc;
    (void) msg;
    (void) cb_data;
    if (!lan || !lan->guid) {
        rdata[0] = IPMI_INVALID_CMD_CC;
        *rdata_len = 1;
        return;
    }
    rdata[0] = 0;
    memcpy(rdata + 1, lan->guid, 16);
    *rdata_len = 17;
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

/* ---- 10: sensors that follow the power ----
 *
 * ipmi_sim's sensors keep the value node.emu gives them. A real server's do not: with the host
 * off its fans stand and the BMC stops scanning what sits on the main power rail (CPU temperature,
 * fans, main voltages: "no reading"), while the inlet temperature, standby voltages and the PSU's
 * standby draw still read. node.emu describes each such sensor with `lab_sensor` (an emulation
 * command this module adds):
 *
 *   lab_sensor MC NUM on=RAW [jitter=N] off=RAW|na [start=RAW ramp=SECONDS] [watts=M]
 *
 * With the power on the raw reading is `on`, moved by up to `jitter` counts every 3 s (reached
 * from `start` in `ramp` seconds after a power on: a CPU warming up); off it is `off`, or with
 * `na` the reading is unavailable (Get Sensor Reading byte 2 bit 5: ipmitool prints "no reading",
 * freeipmi "N/A", pyghmi no value). `watts=M`: raw * M is the system's input power, which DCMI reports too.
 * Readings are made when a client asks (Get Sensor Reading), from the power state at that moment.
 * A 1 s timer watches the power: a power off that no chassis control asked for (the guest's own
 * shutdown) is logged in the SEL as a soft off (S5), as a real BMC does.
 */
#define MAX_LAB_SENSORS 32

struct lab_sensor {
    unsigned char num, on, off, start, jitter, off_na;
    unsigned int ramp, watts;
};

static struct lab_sensor lab_sensors[MAX_LAB_SENSORS];
static unsigned int num_lab_sensors;
static lmc_data_t *sensor_mc;       /* the BMC, as node.emu's lab_sensor lines name it */
static int power_seen = -1;         /* the power last seen: 1 on, 0 off, -1 not yet looked */
static double power_since;          /* when that power was first seen (monotonic seconds) */
static cmd_handler_f sim_get_sensor_reading;
static cmd_handler_f sim_clear_sel;
static cmd_handler_f sim_get_sdr_info;
static ipmi_timer_t *power_timer;

/* The power now; notes when it changed, and logs a power off that is the guest's own. */
static int power_now(void)
{
    int on;

    if (!sensor_mc)
        return 0;
    on = ipmi_mc_is_power_on(sensor_mc) == 1;
    if (on != power_seen) {
        if (power_seen == 1 && !on && now_s() > bmc_change_until)
            log_event(sensor_mc, control_events[5][0], control_events[5][1], control_events[5][2]);
        power_seen = on;
        power_since = now_s();
    }
    return on;
}

static void power_tick(void *cb_data)
{
    struct timeval tv = { 1, 0 };

    (void) cb_data;
    power_now();
    sysd->start_timer(power_timer, &tv);
}

static const struct lab_sensor *find_lab_sensor(unsigned char num)
{
    unsigned int i;

    for (i = 0; i < num_lab_sensors; i++)
        if (lab_sensors[i].num == num)
            return &lab_sensors[i];
    return NULL;
}

/* The raw reading of S with the power ON at monotonic time T. */
static unsigned char sensor_raw(const struct lab_sensor *s, int on, double t)
{
    double base = s->on;
    uint32_t h = (uint32_t) (t / 3) * 2654435761u ^ (uint32_t) s->num * 40503u;
    int v;

    if (!on)
        return s->off;
    if (s->ramp && t - power_since < s->ramp)
        base = s->start + ((double) s->on - s->start) * (t - power_since) / s->ramp;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    v = (int) (base + 0.5) + (s->jitter ? (int) (h % (2u * s->jitter + 1)) - s->jitter : 0);
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

static void get_sensor_reading(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                               unsigned int *rdata_len, void *cb_data)
{
    const struct lab_sensor *s = msg->len >= 1 && msg->rs_lun == 0
        ? find_lab_sensor(msg->data[0]) : NULL;
    int on;

    if (s) {
        on = power_now();
        if (!on && s->off_na) {
            rdata[0] = 0;
            rdata[1] = 0;
            rdata[2] = 0x60; /* scanning on, reading unavailable: "no reading" */
            rdata[3] = 0;
            rdata[4] = 0;
            *rdata_len = 5;
            return;
        }
        ipmi_mc_sensor_set_value(mc, 0, s->num, sensor_raw(s, on, now_s()), 0);
    }
    sim_get_sensor_reading(mc, msg, rdata, rdata_len, cb_data);
}

/* The system's input power in watts now, from the sensor marked watts=M (0 without one). */
static unsigned int input_watts(void)
{
    unsigned int i;
    int on = power_now();

    for (i = 0; i < num_lab_sensors; i++)
        if (lab_sensors[i].watts && !(lab_sensors[i].off_na && !on))
            return sensor_raw(&lab_sensors[i], on, now_s()) * lab_sensors[i].watts;
    return 0;
}

/* Clear SEL: ipmi_sim empties the log; a real BMC then logs that it was cleared. */
static void clear_sel(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len,
                      void *cb_data)
{
    sim_clear_sel(mc, msg, rdata, rdata_len, cb_data);
    if (msg->len >= 6 && msg->data[5] == 0xaa && *rdata_len >= 1 && rdata[0] == 0)
        log_event(mc, 0x10, 0x13, 0x02); /* Event Logging Disabled: log area reset/cleared */
}

/* Get SDR Repository Info: ipmi_sim stamps the SDR repository's most recent addition with the
 * time node.emu added the records, i.e. every start of the BMC, which makes freeipmi's SDR
 * caches "out of date" (ipmi-sensors and ipmi-sel then fail until the cache is flushed) after
 * every container restart. A real BMC's SDR keeps its timestamp across its own restarts; ours
 * is derived from the records themselves (FNV-1a of every record, read through ipmi_sim's Get
 * SDR), so it changes exactly when the sensors do. */
static void get_sdr_repository_info(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                                    unsigned int *rdata_len, void *cb_data)
{
    cmd_handler_f get_sdr = storage_netfn_handlers[IPMI_GET_SDR_CMD];
    unsigned char req[6] = { 0, 0, 0, 0, 0, 0 }, rsp[64];
    unsigned int rsp_len, i, n = 0, id = 0, next = 0, off, size;
    uint32_t h = 2166136261u, stamp;
    msg_t m;

    sim_get_sdr_info(mc, msg, rdata, rdata_len, cb_data);
    if (*rdata_len < 15 || rdata[0] != 0 || !get_sdr)
        return;
    /* Each record in pieces of at most 16 bytes (ipmi_sim answers 0xca to longer reads): its
     * 5-byte header first, which gives its length. */
    while (id != 0xffff && n++ < 1024) {
        for (off = 0, size = 5; off < size; off += req[5]) {
            memset(&m, 0, sizeof(m));
            m.netfn = IPMI_STORAGE_NETFN;
            m.cmd = IPMI_GET_SDR_CMD;
            req[2] = id & 0xff;
            req[3] = id >> 8;
            req[4] = off;
            req[5] = size - off < 16 ? size - off : 16;
            m.data = req;
            m.len = sizeof(req);
            rsp_len = sizeof(rsp); /* in: the room for the answer */
            get_sdr(mc, &m, rsp, &rsp_len, NULL);
            if (rsp_len < 3u + req[5] || rsp[0] != 0)
                return; /* leave ipmi_sim's answer */
            if (off == 0)
                size = 5 + rsp[3 + 4];
            for (i = 3; i < rsp_len; i++)
                h = (h ^ rsp[i]) * 16777619u;
            next = rsp[1] | (rsp[2] << 8);
        }
        id = next;
    }
    stamp = 0x60000000u + h % 0x10000000u; /* a time between 2021 and 2029 */
    for (i = 0; i < 4; i++)
        rdata[6 + i] = (stamp >> (8 * i)) & 0xff;
}

/* ipmi_sim's SEL clock starts at 0 (the SEL shows "Pre-Init" times) until a client sets it; a
 * real BMC has a clock. Set it to the system time at start, before the first power on. */
static void set_sel_clock(void)
{
    cmd_handler_f set = storage_netfn_handlers[IPMI_SET_SEL_TIME_CMD];
    unsigned char data[4], rdata[8];
    unsigned int rdata_len = sizeof(rdata), i;
    uint32_t now = (uint32_t) time(NULL);
    msg_t m;

    if (!sensor_mc || !set)
        return;
    for (i = 0; i < 4; i++)
        data[i] = (now >> (8 * i)) & 0xff;
    memset(&m, 0, sizeof(m));
    m.netfn = IPMI_STORAGE_NETFN;
    m.cmd = IPMI_SET_SEL_TIME_CMD;
    m.data = data;
    m.len = sizeof(data);
    set(sensor_mc, &m, rdata, &rdata_len, NULL);
}

/* `lab_sensor MC NUM on=RAW [jitter=N] off=RAW|na [start=RAW ramp=SECONDS] [watts=M]` */
static int emu_lab_sensor(emu_out_t *out, emu_data_t *emu, lmc_data_t *mc, char **toks)
{
    struct lab_sensor s;
    int have_on = 0, have_off = 0, have_start = 0;
    char *tok, *end;
    unsigned long v;

    (void) emu;
    memset(&s, 0, sizeof(s));
    tok = strtok_r(NULL, " \t\n", toks);
    v = tok ? strtoul(tok, &end, 0) : 0;
    if (!tok || *end || v == 0 || v >= 255) {
        out->eprintf(out, "**lab_sensor: no sensor number (1-254) after the MC address\n");
        return EINVAL;
    }
    s.num = v;
    while ((tok = strtok_r(NULL, " \t\n", toks))) {
        char *eq = strchr(tok, '=');

        if (!eq) {
            out->eprintf(out, "**lab_sensor %u: %s is not KEY=VALUE\n", s.num, tok);
            return EINVAL;
        }
        *eq = 0;
        if (strcmp(tok, "off") == 0 && strcmp(eq + 1, "na") == 0) {
            s.off_na = 1;
            have_off = 1;
            continue;
        }
        v = strtoul(eq + 1, &end, 0);
        if (*end || eq[1] == 0 || v > (strcmp(tok, "ramp") == 0 ? 3600ul : 255ul)) {
            out->eprintf(out, "**lab_sensor %u: bad value for %s: %s\n", s.num, tok, eq + 1);
            return EINVAL;
        }
        if (strcmp(tok, "on") == 0)
            s.on = v, have_on = 1;
        else if (strcmp(tok, "off") == 0)
            s.off = v, have_off = 1;
        else if (strcmp(tok, "jitter") == 0)
            s.jitter = v;
        else if (strcmp(tok, "start") == 0)
            s.start = v, have_start = 1;
        else if (strcmp(tok, "ramp") == 0)
            s.ramp = v;
        else if (strcmp(tok, "watts") == 0)
            s.watts = v;
        else {
            out->eprintf(out, "**lab_sensor %u: unknown key %s\n", s.num, tok);
            return EINVAL;
        }
    }
    if (!have_on || !have_off || (s.ramp && !have_start) || num_lab_sensors == MAX_LAB_SENSORS
        || find_lab_sensor(s.num)) {
        out->eprintf(out, "**lab_sensor %u: needs on= and off= (and start= with ramp=), once\n",
                     s.num);
        return EINVAL;
    }
    sensor_mc = mc;
    lab_sensors[num_lab_sensors++] = s;
    return 0;
}

/* ---- 6: DCMI (group extension 0xdc) ---- */

#define DCMI_GROUP 0xdc

static void dcmi(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len,
                 void *cb_data)
{
    unsigned int watts, min, max;
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
        (void) mc;
        watts = input_watts();
        rdata[2] = watts & 0xff;
        rdata[3] = watts >> 8;
        min = watts - watts / 16;
        max = watts + watts / 10;
        rdata[4] = min & 0xff;           /* minimum, maximum, average over the period */
        rdata[5] = min >> 8;
        rdata[6] = max & 0xff;
        rdata[7] = max >> 8;
        rdata[8] = watts & 0xff;
        rdata[9] = watts >> 8;
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

/* ---- 14: Get System Info Parameters, and privileges ipmi_sim's table leaves to admins ----
 *
 * ipmi_sim's privilege table (lanserv/priv_table.c) ends at Get System Interface Capabilities
 * (app 0x57) and has no group extensions: every command past it needs administrator privilege.
 * IPMI 2.0 (table G-1) and DCMI 1.5 give the ones below to users, so `bmc-info` (which asks Get
 * System Info Parameters last, and failed on it) and `dcmi power reading` work at user and
 * operator privilege as on a real BMC. Everything else is left to the table.
 */
/* The system firmware's version: lab-vm's SMBIOS type 0 (BIOS version) says the same. */
#define SYSTEM_FIRMWARE_VERSION "1.4.0"
#define GET_SYSTEM_INFO_PARAMETERS_CMD 0x59 /* app netfn */

/* Get System Info Parameters, which ipmi_sim lacks (it answered "invalid command"): parameter 0
 * (set in progress: complete) and 1 (the system firmware version). Parameters 2 to 4 (system
 * name, primary and running OS name) are set by a host's OS agent on a real server: "parameter
 * not supported" here, as no OS sets them. Request: get revision only (bit 7), parameter, set
 * selector, block selector. */
static void get_system_info(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                            unsigned int *rdata_len, void *cb_data)
{
    const char *version = SYSTEM_FIRMWARE_VERSION;

    (void) mc;
    (void) cb_data;
    if (msg->len < 4) {
        rdata[0] = IPMI_REQUEST_DATA_LENGTH_INVALID_CC;
        *rdata_len = 1;
        return;
    }
    rdata[0] = 0;
    rdata[1] = 0x11; /* parameter revision */
    *rdata_len = 2;
    if (msg->data[0] & 0x80)
        return;
    if (msg->data[1] == 0) {
        rdata[2] = 0; /* set complete */
        *rdata_len = 3;
    } else if (msg->data[1] == 1) {
        /* Set 0: set selector, encoding (ASCII+Latin-1), length, the first 14 bytes; later sets:
         * the selector and 16 more bytes (none: the version fits in set 0). */
        memset(rdata + 2, 0, 17);
        rdata[2] = msg->data[2];
        if (msg->data[2] == 0) {
            rdata[4] = strlen(version);
            memcpy(rdata + 5, version, strlen(version));
        }
        *rdata_len = 19;
    } else {
        rdata[0] = PARAM_NOT_SUPPORTED_CC;
        *rdata_len = 1;
    }
}

static int check_permitted(unsigned char priv, unsigned char netfn, unsigned char cmd)
{
    int user_cmd = (netfn == IPMI_APP_NETFN && cmd == GET_SYSTEM_INFO_PARAMETERS_CMD)
        || (netfn == IPMI_GROUP_EXTENSION_NETFN && (cmd == 0x01  /* DCMI Capabilities Info */
                                                    || cmd == 0x02)); /* DCMI Power Reading */

    if (user_cmd && priv >= IPMI_PRIVILEGE_USER && priv <= IPMI_PRIVILEGE_ADMIN)
        return IPMI_PRIV_PERMITTED;
    return IPMI_PRIV_INVALID;
}

/* ---- 16: sixteen user slots ----
 *
 * ipmi_sim has 63 user IDs (MAX_USERS), so `ipmitool user list` listed 63 users and freeipmi's
 * `bmc-config --checkout` (MAAS's commissioning reads it whole) had 63 user sections, about four
 * times the work of a real BMC's (iDRAC and most others have 16). Get User Access says 16, and
 * every user command refuses an ID above 16 with "invalid data field", as a BMC with 16 slots does.
 */
#define LAB_USERS 16

/* The user commands and the request byte that holds the user ID (bits 5:0). */
static const struct { unsigned char cmd, uid_byte; } user_cmds[] = {
    { IPMI_SET_USER_ACCESS_CMD, 1 }, { IPMI_GET_USER_ACCESS_CMD, 1 },
    { IPMI_SET_USER_NAME_CMD, 0 }, { IPMI_GET_USER_NAME_CMD, 0 },
    { IPMI_SET_USER_PASSWORD_CMD, 0 }, { IPMI_SET_USER_PAYLOAD_ACCESS_CMD, 1 },
    { IPMI_GET_USER_PAYLOAD_ACCESS_CMD, 1 },
};
#define NUM_USER_CMDS (sizeof(user_cmds) / sizeof(user_cmds[0]))
static cmd_handler_f sim_user_cmds[NUM_USER_CMDS];

static void user_cmd(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len,
                     void *cb_data)
{
    unsigned int i = (unsigned int) (uintptr_t) cb_data;
    unsigned char at = user_cmds[i].uid_byte;

    if (msg->len > at && (msg->data[at] & 0x3f) > LAB_USERS) {
        rdata[0] = IPMI_INVALID_DATA_FIELD_CC;
        *rdata_len = 1;
        return;
    }
    sim_user_cmds[i](mc, msg, rdata, rdata_len, NULL);
    /* Get User Access: maximum user IDs (bits 5:0 of the first data byte) */
    if (user_cmds[i].cmd == IPMI_GET_USER_ACCESS_CMD && *rdata_len >= 2 && rdata[0] == 0)
        rdata[1] = (rdata[1] & 0xc0) | LAB_USERS;
}

static void limit_users(void)
{
    unsigned int i;

    for (i = 0; i < NUM_USER_CMDS; i++) {
        sim_user_cmds[i] = app_netfn_handlers[user_cmds[i].cmd];
        if (!sim_user_cmds[i])
            continue; /* one ipmi_sim lacks (user payload access): "invalid command" as before */
        if (ipmi_emu_register_cmd_handler(IPMI_APP_NETFN, user_cmds[i].cmd, user_cmd,
                                          (void *) (uintptr_t) i))
            fail("cannot take over the user commands", "");
    }
    if (!sim_user_cmds[1])
        fail("ipmi_sim has no Get User Access", "");
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
        } else if (strncmp(tok, "qmp=", 4) == 0 && tok[4] == '/') {
            qmp_socket = strdup(tok + 4);
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
    /* 15: SOL's authentication parameter, beside the power state in the node's volume */
    sol_auth_file = malloc(strlen(state_file) + sizeof("/sol-auth"));
    if (!sol_auth_file)
        fail("out of memory", "");
    strcpy(sol_auth_file, state_file);
    strcpy(strrchr(sol_auth_file, '/'), "/sol-auth");
    load_sol_auth();
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
    if (ipmi_emu_register_cmd_handler(IPMI_APP_NETFN, IPMI_GET_DEVICE_GUID_CMD, get_guid, NULL)
        || ipmi_emu_register_cmd_handler(IPMI_APP_NETFN, IPMI_GET_SYSTEM_GUID_CMD, get_guid, NULL))
        fail("cannot register the Get Device GUID and Get System GUID commands", "");
    ipmi_emu_register_group_extension_handler(DCMI_GROUP, dcmi, NULL);
    if (ipmi_emu_register_cmd_handler(IPMI_APP_NETFN, GET_SYSTEM_INFO_PARAMETERS_CMD,
                                      get_system_info, NULL))
        fail("cannot take over Get System Info Parameters", "");
    limit_users();
    sim_get_sensor_reading = sensor_event_netfn_handlers[IPMI_GET_SENSOR_READING_CMD];
    sim_clear_sel = storage_netfn_handlers[IPMI_CLEAR_SEL_CMD];
    sim_get_sdr_info = storage_netfn_handlers[IPMI_GET_SDR_REPOSITORY_INFO_CMD];
    if (!sim_get_sensor_reading || !sim_clear_sel || !sim_get_sdr_info
        || ipmi_emu_register_cmd_handler(IPMI_STORAGE_NETFN, IPMI_GET_SDR_REPOSITORY_INFO_CMD,
                                         get_sdr_repository_info, NULL)
        || ipmi_emu_register_cmd_handler(IPMI_SENSOR_EVENT_NETFN, IPMI_GET_SENSOR_READING_CMD,
                                         get_sensor_reading, NULL)
        || ipmi_emu_register_cmd_handler(IPMI_STORAGE_NETFN, IPMI_CLEAR_SEL_CMD, clear_sel, NULL)
        || ipmi_emu_add_cmd("lab_sensor", MC, emu_lab_sensor))
        fail("cannot take over Get Sensor Reading and Clear SEL, or add lab_sensor", "");
    sim_activate_payload = app_netfn_handlers[IPMI_ACTIVATE_PAYLOAD_CMD];
    sim_sol_payload = payload_handlers[SOL_PAYLOAD];
    if (!sim_activate_payload || !sim_sol_payload
        || ipmi_emu_register_cmd_handler(IPMI_APP_NETFN, IPMI_ACTIVATE_PAYLOAD_CMD,
                                         activate_payload, NULL))
        fail("cannot take over SOL activation (ipmi_sim has no SOL?)", "");
    payload_handlers[SOL_PAYLOAD] = sol_payload;
    sim_get_sol_config = transport_netfn_handlers[IPMI_GET_SOL_CONFIGURATION_PARAMETERS];
    sim_set_sol_config = transport_netfn_handlers[IPMI_SET_SOL_CONFIGURATION_PARAMETERS];
    if (!sim_get_sol_config || !sim_set_sol_config
        || ipmi_emu_register_cmd_handler(IPMI_TRANSPORT_NETFN,
                                         IPMI_GET_SOL_CONFIGURATION_PARAMETERS, get_sol_config,
                                         NULL)
        || ipmi_emu_register_cmd_handler(IPMI_TRANSPORT_NETFN,
                                         IPMI_SET_SOL_CONFIGURATION_PARAMETERS, set_sol_config,
                                         NULL))
        fail("cannot take over the SOL configuration parameters", "");
    grant_cipher_suites();
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
    if (lan->channel.oem.oem_check_permitted)
        fail("the LAN channel already has an OEM privilege check", "");
    lan->channel.oem.oem_check_permitted = check_permitted;
    list_cipher_suites();
    if (sys->alloc_timer(sys, power_tick, NULL, &power_timer))
        fail("cannot make the power watch timer", "");
    power_tick(NULL);
    set_sel_clock();
    sim_return_rsp = lan->channel.return_rsp;
    lan->channel.return_rsp = return_rsp;
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
