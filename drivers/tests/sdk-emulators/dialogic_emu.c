/*
 * dialogic_emu.c: a TEST FIXTURE, NOT an SDK.
 *
 * A small emulator of the Dialogic-style GlobalCall (gc_), Voice (dx_), SRL (sr_) and
 * SCbus routing (nr_) functions Hotline's Dialogic adapter calls, with scripted
 * behaviour, so the adapter can be tested on machines without Dialogic boards or the
 * Dialogic system release. Built into a shared library at test time and loaded through
 * the same run-time loading path a real SDK uses. It follows the public API references
 * as Hotline reads them (see sys/src/dialogic.rs); written from scratch, it shares no
 * code with the vendor's libraries.
 *
 * Line devices are numbered 1.. in gc_OpenEx order, voice devices 101.., network
 * (timeslot) devices 201.., call reference numbers 1001... Events go to a queue that
 * sr_waitevt takes from; the emu_* functions are the emulator's control API for tests.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef long LINEDEV;
typedef long CRN;

typedef struct {
    long magicno; unsigned long flags; void *evtdatap; long evtlen; long evtdev; long evttype;
    LINEDEV linedev; CRN crn; void *extevtdatap; void *usrattr; int cclibid; int rfu1;
} METAEVENT;
typedef struct {
    int gcValue; const char *gcMsg; int ccLibId; const char *ccLibName; long ccValue;
    const char *ccMsg; const char *additionalInfo;
} GC_INFO;
typedef struct DX_IOTT {
    unsigned short io_type, rfu; int io_fhandle; char *io_bufp; unsigned long io_offset;
    long io_length; struct DX_IOTT *io_nextp, *io_prevp;
} DX_IOTT;
typedef struct DV_TPT {
    unsigned short tp_type, tp_termno, tp_length, tp_flags, tp_data, rfu; struct DV_TPT *tp_nextp;
} DV_TPT;
typedef struct { unsigned short wFileFormat, wDataFormat; unsigned long nSamplesPerSec, wBitsPerSample; } DX_XPB;
typedef struct { char dg_value[32]; char dg_type[32]; } DV_DIGIT;

#define DT_GC 0x800
enum {
    GCEV_ANSWERED = DT_GC | 0x02, GCEV_ACCEPT = DT_GC | 0x04, GCEV_DROPCALL = DT_GC | 0x05,
    GCEV_OPENEX = DT_GC | 0x17, GCEV_ALERTING = DT_GC | 0x21, GCEV_CONNECTED = DT_GC | 0x22,
    GCEV_OFFERED = DT_GC | 0x24, GCEV_DISCONNECTED = DT_GC | 0x26, GCEV_BLOCKED = DT_GC | 0x32,
    GCEV_UNBLOCKED = DT_GC | 0x33, GCEV_RELEASECALL = DT_GC | 0x59,
    TDX_PLAY = 0x81, TDX_GETDIG = 0x83, TDX_DIAL = 0x84
};
#define TM_MAXDTMF 0x01
#define TM_USRSTOP 0x20000
#define NLINE 8

struct ev { long type, dev; LINEDEV ld; CRN crn; long cause; };
struct line {
    int open; CRN crn; char ani[64], dnis[64];
    int playing, play_maxdtmf; DV_DIGIT *getdig; long termmsk; char digit_buf[32];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct ev queue[1024];
static int qhead, qlen;
static struct ev current;
static struct line lines[NLINE + 1];
static int nlines, nvoice;
static CRN next_crn = 1001;
static char calls[65536];
static char errmsg[128] = "emulator: no error";

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    va_list ap;
    size_t n = strlen(calls);
    va_start(ap, fmt);
    if (n + 200 < sizeof calls) { vsnprintf(calls + n, sizeof calls - n - 1, fmt, ap); strcat(calls, "\n"); }
    va_end(ap);
}

/* Call with the lock held. */
static void post(long type, long dev, LINEDEV ld, CRN crn, long cause) {
    if (qlen == 1024) return;
    struct ev e = { type, dev, ld, crn, cause };
    queue[(qhead + qlen++) % 1024] = e;
    pthread_cond_broadcast(&cond);
}
static int line_of_crn(CRN crn) {
    for (int i = 1; i <= nlines; i++) if (lines[i].crn == crn && crn) return i;
    return 0;
}
static int line_of_voice(int vdev) { return vdev > 100 && vdev <= 100 + nlines ? vdev - 100 : 0; }

int gc_Start(const void *p) {
    (void)p;
    pthread_mutex_lock(&lock);
    memset(lines, 0, sizeof lines); nlines = nvoice = 0; qhead = qlen = 0; calls[0] = 0; next_crn = 1001;
    logf_("gc_Start");
    pthread_mutex_unlock(&lock);
    return 0;
}
int gc_Stop(void) { pthread_mutex_lock(&lock); logf_("gc_Stop"); pthread_mutex_unlock(&lock); return 0; }
int gc_OpenEx(LINEDEV *ld, const char *name, int mode, void *usr) {
    (void)mode; (void)usr;
    pthread_mutex_lock(&lock);
    if (nlines == NLINE) { pthread_mutex_unlock(&lock); return -1; }
    *ld = ++nlines;
    lines[*ld].open = 1;
    logf_("gc_OpenEx(%s)=%ld", name, *ld);
    post(GCEV_OPENEX, *ld, *ld, 0, 0);
    post(GCEV_UNBLOCKED, *ld, *ld, 0, 0);
    pthread_mutex_unlock(&lock);
    return 0;
}
int gc_Close(LINEDEV ld) { pthread_mutex_lock(&lock); logf_("gc_Close(%ld)", ld); pthread_mutex_unlock(&lock); return 0; }
int gc_WaitCall(LINEDEV ld, CRN *c, void *w, int t, unsigned long m) {
    (void)c; (void)w; (void)t; (void)m;
    pthread_mutex_lock(&lock); logf_("gc_WaitCall(%ld)", ld); pthread_mutex_unlock(&lock);
    return 0;
}
int gc_GetMetaEvent(METAEVENT *me) {
    memset(me, 0, sizeof *me);
    me->evttype = current.type; me->evtdev = current.dev; me->linedev = current.ld; me->crn = current.crn;
    return 0;
}
int gc_GetCallInfo(CRN crn, int id, char *buf) {
    pthread_mutex_lock(&lock);
    int l = line_of_crn(crn);
    if (!l) { pthread_mutex_unlock(&lock); return -1; }
    strcpy(buf, id == 0x107 ? lines[l].ani : id == 0x108 ? lines[l].dnis : "");
    pthread_mutex_unlock(&lock);
    return 0;
}
static int call_op(const char *name, CRN crn, long reply, long extra) {
    pthread_mutex_lock(&lock);
    int l = line_of_crn(crn);
    if (!l) { snprintf(errmsg, sizeof errmsg, "emulator: bad CRN %ld", crn); pthread_mutex_unlock(&lock); return -1; }
    logf_("%s(line=%d,%ld)", name, l, extra);
    if (reply) post(reply, l, l, crn, 0);
    pthread_mutex_unlock(&lock);
    return 0;
}
int gc_AcceptCall(CRN crn, int rings, unsigned long m) { (void)m; return call_op("gc_AcceptCall", crn, GCEV_ACCEPT, rings); }
int gc_AnswerCall(CRN crn, int rings, unsigned long m) { (void)m; return call_op("gc_AnswerCall", crn, GCEV_ANSWERED, rings); }
int gc_DropCall(CRN crn, int cause, unsigned long m) { (void)m; return call_op("gc_DropCall", crn, GCEV_DROPCALL, cause); }
int gc_ReleaseCallEx(CRN crn, unsigned long m) {
    (void)m;
    int rc = call_op("gc_ReleaseCallEx", crn, GCEV_RELEASECALL, 0);
    pthread_mutex_lock(&lock);
    int l = line_of_crn(crn);
    if (l) lines[l].crn = 0;
    pthread_mutex_unlock(&lock);
    return rc;
}
int gc_SetCallingNum(LINEDEV ld, const char *num) {
    pthread_mutex_lock(&lock); logf_("gc_SetCallingNum(line=%ld,%s)", ld, num); pthread_mutex_unlock(&lock);
    return 0;
}
int gc_MakeCall(LINEDEV ld, CRN *crn, const char *num, void *mk, int t, unsigned long m) {
    (void)mk; (void)t; (void)m;
    pthread_mutex_lock(&lock);
    if (ld < 1 || ld > nlines || lines[ld].crn) { snprintf(errmsg, sizeof errmsg, "emulator: line %ld busy", ld); pthread_mutex_unlock(&lock); return -1; }
    *crn = lines[ld].crn = next_crn++;
    logf_("gc_MakeCall(line=%ld,%s)", ld, num);
    pthread_mutex_unlock(&lock);
    return 0;
}
int gc_ResultInfo(const METAEVENT *me, GC_INFO *info) {
    memset(info, 0, sizeof *info);
    info->ccValue = me->evttype == GCEV_DISCONNECTED ? current.cause : 0;
    info->gcMsg = "emulated result";
    return 0;
}
int gc_ErrorInfo(GC_INFO *info) { memset(info, 0, sizeof *info); info->gcMsg = errmsg; return 0; }
int gc_SetChanState(LINEDEV ld, int state, unsigned long m) {
    (void)m;
    pthread_mutex_lock(&lock);
    logf_("gc_SetChanState(line=%ld,%s)", ld, state == 2 ? "out-of-service" : state == 0 ? "in-service" : "?");
    post(DT_GC | 0x09, ld, ld, 0, 0);
    pthread_mutex_unlock(&lock);
    return 0;
}
int gc_GetNetworkH(LINEDEV ld, int *h) { *h = 200 + (int)ld; return 0; }
int dx_open(const char *name, int flags) {
    (void)flags;
    pthread_mutex_lock(&lock);
    int v = 100 + ++nvoice;
    logf_("dx_open(%s)=%d", name, v);
    pthread_mutex_unlock(&lock);
    return v;
}
int dx_close(int v) { (void)v; return 0; }
int dx_playiottdata(int v, DX_IOTT *iott, DV_TPT *tpt, DX_XPB *xpb, unsigned short mode) {
    (void)xpb; (void)mode;
    struct stat st;
    pthread_mutex_lock(&lock);
    int l = line_of_voice(v);
    if (!l || !iott || fstat(iott->io_fhandle, &st) != 0) {
        snprintf(errmsg, sizeof errmsg, "emulator: bad device or file");
        pthread_mutex_unlock(&lock);
        return -1;
    }
    if (lines[l].playing || lines[l].getdig) { snprintf(errmsg, sizeof errmsg, "emulator: device busy"); pthread_mutex_unlock(&lock); return -1; }
    lines[l].playing = 1;
    lines[l].play_maxdtmf = tpt && tpt->tp_termno == 1;
    logf_("dx_playiottdata(%d,%s)", v, lines[l].play_maxdtmf ? "barge-in" : "plain");
    pthread_mutex_unlock(&lock);
    return 0;
}
int dx_stopch(int v, unsigned short mode) {
    (void)mode;
    pthread_mutex_lock(&lock);
    int l = line_of_voice(v);
    logf_("dx_stopch(%d)", v);
    if (l && lines[l].playing) { lines[l].playing = 0; lines[l].termmsk = TM_USRSTOP; post(TDX_PLAY, v, 0, 0, 0); }
    if (l && lines[l].getdig) { lines[l].getdig = NULL; post(TDX_GETDIG, v, 0, 0, 0); }
    pthread_mutex_unlock(&lock);
    return 0;
}
int dx_dial(int v, const char *s, void *cap, unsigned short mode) {
    (void)cap; (void)mode;
    pthread_mutex_lock(&lock); logf_("dx_dial(%d,%s)", v, s); post(TDX_DIAL, v, 0, 0, 0); pthread_mutex_unlock(&lock);
    return 0;
}
/* Call with the lock held: hand buffered digits to an armed dx_getdig. */
static void deliver_digits(int l) {
    if (lines[l].getdig && lines[l].digit_buf[0]) {
        lines[l].getdig->dg_value[0] = lines[l].digit_buf[0];
        lines[l].getdig->dg_value[1] = 0;
        memmove(lines[l].digit_buf, lines[l].digit_buf + 1, strlen(lines[l].digit_buf));
        lines[l].getdig = NULL;
        post(TDX_GETDIG, 100 + l, 0, 0, 0);
    }
}
int dx_getdig(int v, DV_TPT *tpt, DV_DIGIT *dig, unsigned short mode) {
    (void)tpt; (void)mode;
    pthread_mutex_lock(&lock);
    int l = line_of_voice(v);
    if (!l || lines[l].playing || lines[l].getdig) { snprintf(errmsg, sizeof errmsg, "emulator: device busy"); pthread_mutex_unlock(&lock); return -1; }
    lines[l].getdig = dig;
    logf_("dx_getdig(%d)", v);
    deliver_digits(l);
    pthread_mutex_unlock(&lock);
    return 0;
}
const char *ATDV_ERRMSGP(int dev) { (void)dev; return errmsg; }
long ATDX_TERMMSK(int v) {
    pthread_mutex_lock(&lock);
    int l = line_of_voice(v);
    long t = l ? lines[l].termmsk : 0;
    pthread_mutex_unlock(&lock);
    return t;
}
long sr_waitevt(long timeout_ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&lock);
    while (qlen == 0) {
        if (pthread_cond_timedwait(&cond, &lock, &until) != 0) { pthread_mutex_unlock(&lock); return -1; }
    }
    current = queue[qhead];
    qhead = (qhead + 1) % 1024;
    qlen--;
    pthread_mutex_unlock(&lock);
    return 0;
}
long sr_getevttype(long h) { (void)h; return current.type; }
long sr_getevtdev(long h) { (void)h; return current.dev; }
int nr_scroute(int a, unsigned short ta, int b, unsigned short tb, unsigned int mode) {
    pthread_mutex_lock(&lock); logf_("nr_scroute(%d,%u,%d,%u,%s)", a, ta, b, tb, mode ? "half" : "full"); pthread_mutex_unlock(&lock);
    return 0;
}
int nr_scunroute(int a, unsigned short ta, int b, unsigned short tb, unsigned int mode) {
    pthread_mutex_lock(&lock); logf_("nr_scunroute(%d,%u,%d,%u,%s)", a, ta, b, tb, mode ? "half" : "full"); pthread_mutex_unlock(&lock);
    return 0;
}

/* ---- the emulator's control API (tests only) ---- */

void emu_inject_incoming(int l, const char *ani, const char *dnis) {
    pthread_mutex_lock(&lock);
    snprintf(lines[l].ani, sizeof lines[l].ani, "%s", ani ? ani : "");
    snprintf(lines[l].dnis, sizeof lines[l].dnis, "%s", dnis ? dnis : "");
    lines[l].crn = next_crn++;
    post(GCEV_OFFERED, l, l, lines[l].crn, 0);
    pthread_mutex_unlock(&lock);
}
static void line_event(int l, long type, long cause) {
    pthread_mutex_lock(&lock); post(type, l, l, lines[l].crn, cause); pthread_mutex_unlock(&lock);
}
void emu_alerting(int l) { line_event(l, GCEV_ALERTING, 0); }
void emu_connected(int l) { line_event(l, GCEV_CONNECTED, 0); }
/* The far end releases with this ISDN cause (Q.850 value in ccValue). */
void emu_far_end_hangup(int l, long cause) { line_event(l, GCEV_DISCONNECTED, cause); }
void emu_block(int l, int blocked) { line_event(l, blocked ? GCEV_BLOCKED : GCEV_UNBLOCKED, 0); }
void emu_play_end(int l) {
    pthread_mutex_lock(&lock);
    if (lines[l].playing) { lines[l].playing = 0; lines[l].termmsk = 0; post(TDX_PLAY, 100 + l, 0, 0, 0); }
    pthread_mutex_unlock(&lock);
}
void emu_dtmf(int l, char d) {
    pthread_mutex_lock(&lock);
    size_t n = strlen(lines[l].digit_buf);
    if (n + 1 < sizeof lines[l].digit_buf) { lines[l].digit_buf[n] = d; lines[l].digit_buf[n + 1] = 0; }
    if (lines[l].playing && lines[l].play_maxdtmf) {
        lines[l].playing = 0; lines[l].termmsk = TM_MAXDTMF; post(TDX_PLAY, 100 + l, 0, 0, 0);
    }
    deliver_digits(l);
    pthread_mutex_unlock(&lock);
}
const char *emu_calls_log(void) {
    static char snapshot[sizeof calls];
    pthread_mutex_lock(&lock);
    memcpy(snapshot, calls, sizeof calls);
    pthread_mutex_unlock(&lock);
    return snapshot;
}
