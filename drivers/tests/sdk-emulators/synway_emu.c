/*
 * synway_emu.c: a TEST FIXTURE, NOT an SDK.
 *
 * A small emulator of the Synway-style SynCTI functions Hotline's Synway adapter
 * calls, with scripted behaviour, so the adapter can be tested on machines without
 * Synway cards or the Synway SDK. It is built into a shared library at test time and
 * loaded through the same run-time loading path a real SDK uses. It follows the
 * public SynCTI documentation as Hotline reads it (see sys/src/synway.rs); it was
 * written from scratch and shares no code with the vendor's SDK.
 *
 * Channels: 0-3 analog trunks, 4-5 stations, 6-35 ISDN PRI (user side).
 * Events are delivered synchronously on the calling thread (the "SDK thread").
 * The emu_* functions are the emulator's own control API for tests.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned int DWORD;

typedef struct {
    unsigned short wEventCode;
    int nReference;
    DWORD dwParam, dwUser, dwSubReason, dwXtraInfo;
    void *pvBuffer;
    DWORD dwBufferLength, dwDataLength, dwEventFlag, dwReserved1;
    long long llReserved1;
} SSM_EVENT;

typedef int (*event_cb)(const SSM_EVENT *);

typedef struct {
    DWORD dwWorkMode;
    event_cb lpHandlerParam;
    DWORD dwOutCondition, dwOutParamVal, dwUser;
} EVENT_SET_INFO;

#define NCH 36
enum { E_CHG_RcvDTMF = 0x0c, E_PROC_PlayEnd = 0x0f, E_CHG_ChState = 0x18, E_PROC_AutoDial = 0x19 };
enum { S_STANDBY = 0, S_PICKUPED = 1, S_RINGING = 2, S_TALKING = 3, S_PENDING = 7, S_LOCAL_BLOCK = 20 };

struct ch {
    int type, state, playing, dtmf_stop_play;
    int pending_reason, release_reason, autodial_failure;
    char callerid[64], phonum[64];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ch chans[NCH];
static event_cb callback;
static int started;
static char last_err[256];
static char calls[65536];
static int last_cb_status;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    va_list ap;
    size_t n = strlen(calls);
    va_start(ap, fmt);
    if (n + 200 < sizeof calls) {
        vsnprintf(calls + n, sizeof calls - n - 1, fmt, ap);
        strcat(calls, "\n");
    }
    va_end(ap);
}

static int fire(unsigned short code, int ch, DWORD param) {
    SSM_EVENT ev;
    memset(&ev, 0, sizeof ev);
    ev.wEventCode = code;
    ev.nReference = ch;
    ev.dwParam = param;
    if (callback) last_cb_status = callback(&ev);
    return 0;
}

static int bad(int ch) {
    if (!started || ch < 0 || ch >= NCH) {
        snprintf(last_err, sizeof last_err, "emulator: bad channel %d or SDK not started", ch);
        return 1;
    }
    return 0;
}

static void set_state(int ch, int s) {
    chans[ch].state = s;
    fire(E_CHG_ChState, ch, (DWORD)s);
}

int SsmStartCti(const char *cfg, const char *idx) {
    (void)cfg; (void)idx;
    memset(chans, 0, sizeof chans);
    for (int i = 0; i < NCH; i++) chans[i].type = i < 4 ? 0 : i < 6 ? 2 : 7;
    calls[0] = 0;
    callback = NULL;
    started = 1;
    logf_("SsmStartCti");
    return 0;
}
int SsmCloseCti(void) { started = 0; callback = NULL; logf_("SsmCloseCti"); return 0; }
void SsmGetLastErrMsg(char *buf) { strcpy(buf, last_err); }
int SsmGetMaxCh(void) { return NCH; }
int SsmGetChType(int ch) { return bad(ch) ? -1 : chans[ch].type; }
int SsmGetChState(int ch) { return bad(ch) ? -1 : chans[ch].state; }
int SsmSetEvent(int ev, int ref, int enable, const EVENT_SET_INFO *set) {
    if (ev != 0xffff || ref != -1 || !enable || !set || set->dwWorkMode != 5) {
        snprintf(last_err, sizeof last_err, "emulator: only EVENT_CALLBACKA for all events is emulated");
        return -1;
    }
    callback = set->lpHandlerParam;
    logf_("SsmSetEvent");
    return 0;
}
int SsmPickup(int ch) {
    if (bad(ch)) return -1;
    logf_("SsmPickup(%d)", ch);
    if (chans[ch].state == S_RINGING) set_state(ch, S_TALKING);
    return 0;
}
int SsmHangup(int ch) {
    if (bad(ch)) return -1;
    logf_("SsmHangup(%d)", ch);
    chans[ch].playing = 0;
    set_state(ch, S_STANDBY);
    return 0;
}
int SsmAutoDial(int ch, const char *num) {
    if (bad(ch)) return -1;
    if (chans[ch].state != S_STANDBY) {
        snprintf(last_err, sizeof last_err, "emulator: channel %d is not idle", ch);
        return -1;
    }
    logf_("SsmAutoDial(%d,%s)", ch, num);
    chans[ch].state = S_PICKUPED;
    return 0;
}
int SsmSetTxCallerId(int ch, const char *num) { if (bad(ch)) return -1; logf_("SsmSetTxCallerId(%d,%s)", ch, num); return 0; }
int SsmGetCallerId(int ch, char *buf) { if (bad(ch)) return -1; strcpy(buf, chans[ch].callerid); return 0; }
int SsmGetPhoNumStr(int ch, char *buf) { if (bad(ch)) return -1; strcpy(buf, chans[ch].phonum); return 0; }
int SsmGetPendingReason(int ch) { return bad(ch) ? -1 : chans[ch].pending_reason; }
int SsmGetAutoDialFailureReason(int ch) { return bad(ch) ? -1 : chans[ch].autodial_failure; }
int SsmGetReleaseReason(int ch) { return bad(ch) ? -1 : chans[ch].release_reason; }
int SsmPlayFile(int ch, const char *file, int fmt, DWORD start, DWORD len) {
    (void)fmt; (void)start; (void)len;
    if (bad(ch)) return -1;
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(last_err, sizeof last_err, "emulator: cannot open voice file %s", file);
        return -1;
    }
    fclose(f);
    logf_("SsmPlayFile(%d,%s)", ch, file);
    chans[ch].playing = 1;
    return 0;
}
int SsmStopPlay(int ch) {
    if (bad(ch)) return -1;
    logf_("SsmStopPlay(%d)", ch);
    if (chans[ch].playing) { chans[ch].playing = 0; fire(E_PROC_PlayEnd, ch, 0); }
    return 0;
}
int SsmSetDtmfStopPlay(int ch, int en) { if (bad(ch)) return -1; chans[ch].dtmf_stop_play = en; return 0; }
int SsmTxDtmf(int ch, const char *d) { if (bad(ch)) return -1; logf_("SsmTxDtmf(%d,%s)", ch, d); return 0; }
int SsmTalkWith(int a, int b) { if (bad(a) || bad(b)) return -1; logf_("SsmTalkWith(%d,%d)", a, b); return 0; }
int SsmStopTalkWith(int a, int b) { if (bad(a) || bad(b)) return -1; logf_("SsmStopTalkWith(%d,%d)", a, b); return 0; }
int SsmListenTo(int a, int b) { if (bad(a) || bad(b)) return -1; logf_("SsmListenTo(%d,%d)", a, b); return 0; }
int SsmStopListenTo(int a, int b) { if (bad(a) || bad(b)) return -1; logf_("SsmStopListenTo(%d,%d)", a, b); return 0; }
int SsmStartRing(int ch) { if (bad(ch)) return -1; logf_("SsmStartRing(%d)", ch); chans[ch].state = S_RINGING; return 0; }
int SsmStartRingWithCIDStr(int ch, const char *t, DWORD len, DWORD d) {
    (void)d;
    if (bad(ch)) return -1;
    logf_("SsmStartRingWithCIDStr(%d,%.*s)", ch, (int)len, t);
    chans[ch].state = S_RINGING;
    return 0;
}
int SsmStopRing(int ch) { if (bad(ch)) return -1; logf_("SsmStopRing(%d)", ch); chans[ch].state = S_STANDBY; return 0; }
int SsmJoinConfGroup(int grp, int ch, unsigned short mode, int vol, int create, int exit_prev) {
    if (bad(ch)) return -1;
    if (!create || !exit_prev) { snprintf(last_err, sizeof last_err, "emulator: only create/exit-previous joins"); return -1; }
    logf_("SsmJoinConfGroup(%d,%d,%s,%d)", grp, ch, mode == 0 ? "speak+listen" : mode == 1 ? "listen" : "?", vol);
    return 0;
}
int SsmExitConfGroup(int ch, int free_always) { if (bad(ch)) return -1; logf_("SsmExitConfGroup(%d,%d)", ch, free_always); return 0; }
int SsmBlockLocalCh(int ch) { if (bad(ch)) return -1; logf_("SsmBlockLocalCh(%d)", ch); set_state(ch, S_LOCAL_BLOCK); return 0; }
int SsmUnblockLocalCh(int ch) { if (bad(ch)) return -1; logf_("SsmUnblockLocalCh(%d)", ch); set_state(ch, S_STANDBY); return 0; }

/* ---- the emulator's control API (tests only) ---- */

void emu_inject_incoming(int ch, const char *ani, const char *dnis) {
    pthread_mutex_lock(&lock);
    snprintf(chans[ch].callerid, sizeof chans[ch].callerid, "%s", ani ? ani : "");
    snprintf(chans[ch].phonum, sizeof chans[ch].phonum, "%s", dnis ? dnis : "");
    pthread_mutex_unlock(&lock);
    set_state(ch, S_RINGING);
}
/* The far end hangs up: the channel goes pending with these reasons. */
void emu_far_end_hangup(int ch, int pending_reason, int release_reason) {
    chans[ch].pending_reason = pending_reason;
    chans[ch].release_reason = release_reason;
    set_state(ch, S_PENDING);
}
void emu_dial_progress(int ch, int progress, int failure_reason) {
    chans[ch].autodial_failure = failure_reason;
    if (progress == 7) chans[ch].state = S_TALKING;
    fire(E_PROC_AutoDial, ch, (DWORD)progress);
}
void emu_dtmf(int ch, char digit) {
    fire(E_CHG_RcvDTMF, ch, (DWORD)(unsigned char)digit);
    if (chans[ch].playing && chans[ch].dtmf_stop_play) {
        chans[ch].playing = 0;
        fire(E_PROC_PlayEnd, ch, 0);
    }
}
void emu_play_end(int ch) {
    if (chans[ch].playing) { chans[ch].playing = 0; fire(E_PROC_PlayEnd, ch, 0); }
}
void emu_station_hook(int ch, int off_hook) { set_state(ch, off_hook ? S_PICKUPED : S_STANDBY); }
/* Fire an arbitrary event; returns what the application's callback returned. */
int emu_fire_raw(int code, int ch, unsigned int param) { fire((unsigned short)code, ch, param); return last_cb_status; }
int emu_fire_null(void) { return callback ? callback(NULL) : -100; }
const char *emu_calls_log(void) { return calls; }
